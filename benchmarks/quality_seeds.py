"""Word2Bits quality with error bars (issue 28): every configuration trained with several seeds
on the same corpus slice, scored on the similarity sets, the Google analogies and a rare-word
view (each similarity set's pairs by corpus-frequency band, ``evaluate(by_frequency=...)``).

Runs are ``KIND:DIMENSION``. KIND is 1, 2 or 32 (Word2Bits, final vectors Q(u + v)), ``1eos``
(Word2Bits 1-bit with the downsampling, negative-sampling and learning-rate floor that
word2bits.cpp's end-of-line token ``</s>`` implies: the one rule where the two differ), ``gensim``
(gensim's Word2Vec CBOW, input vectors) or ``authors1`` / ``authors2`` / ``authors32`` (the
authors' word2bits.cpp, built from source, at bitlevel 1, 2 or 0; needs ``--authors-binary``).
The authors' code has no seed argument; the binary this script expects adds ``-seed S``, which
offsets its two random states by S (``S = 0`` reproduces its draws exactly; see
docs/word2bits.md for the three-line patch).

Every (run, seed) writes its own JSON under ``--runs-dir`` and is skipped when that file
exists, so an interrupted batch resumes; the summary (mean, sample standard deviation, min and
max over seeds for every score) is rebuilt from those files into ``--output`` each time.

    nice -n 5 python benchmarks/quality_seeds.py --lines 200000 --epochs 5 --seeds 1 2 3 \\
        --runs 1:400 gensim:400 authors1:400 --authors-binary /path/word2bits --workers 1
"""
import argparse
import glob
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from quality import DATA, add_recipe_arguments  # noqa: E402  (the same recipe options as quality.py)
AUTHORS_BITLEVEL = {"authors1": 1, "authors2": 2, "authors32": 0}
SENTINEL_SUFFIX = "eos"  # e.g. 1eos: Word2Bits 1-bit with word2bits.cpp's "</s>" rules


def write_slice(corpus, lines, target):
    """The first ``lines`` lines of ``corpus`` (gzip or plain) as a plain-text file, written once."""
    if os.path.exists(target):
        return target
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    opener = gzip.open if corpus.endswith(".gz") else open
    partial = target + ".partial"
    with opener(corpus, "rb") as reader, open(partial, "wb") as writer:
        for number, line in enumerate(reader):
            if number >= lines:
                break
            writer.write(line)
    os.replace(partial, target)
    return target


def corpus_counts(path):
    """Token counts of a plain-text corpus, split on ASCII whitespace as every trainer here does."""
    counts = Counter()
    with open(path, "rb") as lines:
        for line in lines:
            counts.update(line.decode("utf-8").split())
    return counts


def train_ours(kind, dimension, seed, args, corpus_file):
    from gensim.models import Word2Vec

    from gensim_bits import Word2Bits

    hyper = dict(vector_size=dimension, window=args.window, negative=args.negative,
                 min_count=args.min_count, sample=args.sample, alpha=args.alpha, min_alpha=args.min_alpha,
                 epochs=args.epochs, workers=args.workers, seed=seed, sg=0, hs=0, cbow_mean=1)
    if kind == "gensim":
        return Word2Vec(corpus_file=corpus_file, **hyper).wv
    if not kind.endswith(SENTINEL_SUFFIX):
        return Word2Bits(corpus_file=corpus_file, bits=int(kind), **hyper).wv
    model = Word2Bits(bits=int(kind[:-len(SENTINEL_SUFFIX)]), **dict(hyper, min_alpha=args.alpha * 1e-4))
    model.build_vocab(corpus_file=corpus_file)
    apply_sentinel_rules(model, model.corpus_count)
    model.train(corpus_file=corpus_file, total_words=model.corpus_total_words, epochs=model.epochs)
    return model.wv


def apply_sentinel_rules(model, lines):
    """What word2bits.cpp's end-of-line token ``</s>`` changes, applied to a built vocabulary.

    word2bits.cpp counts one ``</s>`` a line into its corpus size T (so the downsampling
    threshold is sample * (T + lines)), gives it a share lines ** 0.75 of the negative-sampling
    table, and replaces every ``</s>`` drawn as a negative by a word drawn uniformly from the
    vocabulary. Its learning rate ends at alpha * 1e-4 (set by the caller through min_alpha).
    This puts the same distributions into the model's ``sample_int`` and ``cum_table``.
    """
    counts = np.array([model.wv.get_vecattr(word, "count") for word in model.wv.index_to_key], dtype=np.float64)
    threshold = model.sample * (counts.sum() + lines)
    keep = np.minimum((np.sqrt(counts / threshold) + 1) * threshold / counts, 1.0)
    model.wv.expandos["sample_int"][:] = (keep * (2 ** 32 - 1)).astype(np.uint32)
    weights = counts ** model.ns_exponent
    sentinel = float(lines) ** model.ns_exponent
    probabilities = weights / (weights.sum() + sentinel) + sentinel / (weights.sum() + sentinel) / len(counts)
    model.cum_table = np.round(np.cumsum(probabilities) / probabilities.sum() * (2 ** 31 - 1)).astype(np.uint32)


def train_authors(kind, dimension, seed, args, corpus_file):
    """Run the authors' binary and load its vectors, without the sentence marker ``</s>``."""
    from gensim.models import KeyedVectors

    if not args.authors_binary or not os.access(args.authors_binary, os.X_OK):
        raise SystemExit(f"run {kind}:{dimension} needs --authors-binary (the built word2bits.cpp)")
    with tempfile.TemporaryDirectory() as folder:
        output = os.path.join(folder, "vectors.bin")
        command = [args.authors_binary, "-train", corpus_file, "-output", output, "-binary", "1",
                   "-bitlevel", str(AUTHORS_BITLEVEL[kind]), "-size", str(dimension), "-window", str(args.window),
                   "-negative", str(args.negative), "-sample", str(args.sample), "-alpha", str(args.alpha),
                   "-min-count", str(args.min_count), "-iter", str(args.epochs), "-threads", str(args.workers),
                   "-seed", str(seed), "-debug", "0"]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        loaded = KeyedVectors.load_word2vec_format(output, binary=True)
    keep = [word for word in loaded.index_to_key if word != "</s>"]
    vectors = KeyedVectors(loaded.vector_size)
    vectors.add_vectors(keep, loaded[keep])
    return vectors


def score(vectors, args, counts):
    from gensim_bits import evaluate

    wordsim = [path for path in args.wordsim if os.path.exists(path)]
    analogies = [args.analogies] if args.analogies and os.path.exists(args.analogies) else []
    result = evaluate(vectors, similarity=wordsim, analogies=analogies, restrict_vocab=args.restrict_vocab,
                      verbose=False, by_frequency=args.bands, counts=counts)
    scores = {}
    for name, row in result["similarity"].items():
        name = os.path.splitext(name)[0]
        scores[name] = round(row["spearman"], 4)
        for band in row["by_frequency"]:
            scores[f"{name} count {band['band']}"] = round(band["spearman"], 4)
    for google in result["analogies"].values():
        scores["google 3cosadd"] = round(google["total"]["accuracy_3cosadd"], 4)
        scores["google 3cosmul"] = round(google["total"]["accuracy_3cosmul"], 4)
    pairs = {os.path.splitext(name)[0]: [band["pairs"] for band in row["by_frequency"]]
             for name, row in result["similarity"].items()}
    return scores, pairs


def band_name(low, high):
    """The band names of ``evaluate(by_frequency=...)``: '< 100', '100-500', '>= 500'."""
    return f"< {high:g}" if low == 0 else (f">= {low:g}" if high == np.inf else f"{low:g}-{high:g}")


def _rank_rows(matrix):
    from scipy.stats import rankdata
    return rankdata(matrix, axis=1)


def _spearman_rows(gold, model):
    """Spearman of every row of ``gold`` with the same row of ``model`` (resampled pair sets)."""
    gold, model = _rank_rows(gold), _rank_rows(model)
    gold -= gold.mean(axis=1, keepdims=True)
    model -= model.mean(axis=1, keepdims=True)
    return (gold * model).sum(axis=1) / np.sqrt((gold ** 2).sum(axis=1) * (model ** 2).sum(axis=1))


def pair_bootstrap(args, counts, runs, saved, resamples):
    """95% intervals of (first run - other run), Spearman averaged over seeds, resampling the pairs.

    The seeds measure training noise; this measures how much a score on a few dozen rare pairs
    depends on which pairs the set happens to hold. Paired: each resample scores every run on
    the same pairs. Pairs are those whose two words every run's vectors hold.
    """
    from gensim.models import KeyedVectors

    loaded = {run: [KeyedVectors.load(path) for path in paths] for run, paths in saved.items() if paths}
    if len(loaded) < 2 or runs[0] not in loaded:
        return {}
    edges = [0.0] + list(args.bands) + [np.inf]
    rng = np.random.default_rng(0)
    intervals = {}
    for path in args.wordsim:
        name = os.path.splitext(os.path.basename(path))[0]
        pairs = []
        for line in open(path, encoding="utf-8"):
            fields = line.rstrip("\n").split("\t")
            if line.startswith("#") or len(fields) != 3:
                continue
            first, second = fields[0].lower(), fields[1].lower()
            if all(first in kv.key_to_index and second in kv.key_to_index for kvs in loaded.values() for kv in kvs):
                pairs.append((first, second, float(fields[2])))
        frequency = np.array([max(counts.get(a, 0), counts.get(b, 0)) for a, b, _ in pairs])
        cosines = {run: np.array([[kv.similarity(a, b) for a, b, _ in pairs] for kv in kvs])
                   for run, kvs in loaded.items()}
        gold = np.array([score for _, _, score in pairs])
        bands = [(name, np.ones(len(pairs), dtype=bool))] + [
            (f"{name} count {band_name(low, high)}", (frequency >= low) & (frequency < high))
            for low, high in zip(edges, edges[1:])]
        for score_name, mask in bands:
            if mask.sum() < 3:
                continue
            picks = rng.integers(0, mask.sum(), (resamples, mask.sum()))
            means = {run: np.mean([_spearman_rows(gold[mask][picks], values[mask][picks]) for values in cos], axis=0)
                     for run, cos in cosines.items()}
            for other in [run for run in runs[1:] if run in means]:
                low, high = np.nanpercentile(means[runs[0]] - means[other], [2.5, 97.5])
                intervals.setdefault(f"{runs[0]} - {other}", {})[score_name] = [round(low, 4), round(high, 4)]
    return intervals


def write_entry(path, entry):
    with open(path + ".partial", "w") as handle:
        json.dump(entry, handle, indent=2)
    os.replace(path + ".partial", path)


def summarize(entries):
    """Per score: mean, sample standard deviation, min, max and the values, over seeds."""
    names = list(entries[0]["scores"])
    summary = {}
    for name in names:
        values = [entry["scores"][name] for entry in entries if name in entry["scores"]]
        finite = [value for value in values if value == value]
        if not finite:
            continue
        summary[name] = dict(mean=round(float(np.mean(finite)), 4),
                             std=round(float(np.std(finite, ddof=1)), 4) if len(finite) > 1 else None,
                             min=min(finite), max=max(finite), values=values)
    return summary


def separated(first, second):
    """'>' or '<' where the min-max ranges over seeds do not overlap, '~' where they do."""
    if first["min"] > second["max"]:
        return ">"
    if first["max"] < second["min"]:
        return "<"
    return "~"


def label(run):
    kind, dimension = run.split(":")
    if kind == "gensim":
        return f"gensim Word2Vec float32 d={dimension}"
    if kind in AUTHORS_BITLEVEL:
        bits = kind[len("authors"):]
        return f"authors' word2bits.cpp {'float32' if bits == '32' else bits + '-bit'} d={dimension}"
    rules = ""
    if kind.endswith(SENTINEL_SUFFIX):
        kind, rules = kind[:-len(SENTINEL_SUFFIX)], " with word2bits.cpp's </s> rules"
    return f"Word2Bits {'float32' if kind == '32' else kind + '-bit'} d={dimension}{rules}"


def plot_report(report, path, title):
    """Mean and min-max over seeds of every score, one marker series per run."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = list(report["runs"])
    names = list(report["runs"][runs[0]]["scores"])
    figure, axis = plt.subplots(figsize=(max(8, 0.55 * len(names)), 4.5))
    width = 0.8 / len(runs)
    for number, run in enumerate(runs):
        scores = report["runs"][run]["scores"]
        x = [index + (number - (len(runs) - 1) / 2) * width for index, name in enumerate(names) if name in scores]
        rows = [scores[name] for name in names if name in scores]
        means = np.array([row["mean"] for row in rows])
        below = means - np.array([row["min"] for row in rows])
        above = np.array([row["max"] for row in rows]) - means
        axis.errorbar(x, means, yerr=[below, above], fmt="o", capsize=3, markersize=4,
                      label=f"{label(run)} ({len(report['runs'][run]['seeds'])} seeds)")
    axis.set_xticks(range(len(names)))
    axis.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
    axis.set_ylabel("Spearman / analogy accuracy")
    axis.set_title(title + " (mean, bars: min-max over seeds)", fontsize=10)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    print(f"wrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=os.path.join(DATA, "corpus", "en25m.txt.gz"))
    parser.add_argument("--lines", type=int, default=200_000, help="train on the first LINES lines of --corpus")
    parser.add_argument("--work-dir", default=os.path.join(tempfile.gettempdir(), "quality_seeds"),
                        help="where the plain-text slice is written (once)")
    parser.add_argument("--wordsim", nargs="*", default=sorted(glob.glob(os.path.join(DATA, "wordsim", "*.tsv"))))
    parser.add_argument("--analogies", default=os.path.join(DATA, "analogy", "google.txt"))
    parser.add_argument("--runs", nargs="+", required=True, help="KIND:DIMENSION, KIND in 1 2 32 gensim "
                        "authors1 authors2 authors32")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--bands", nargs="+", type=float, default=[100, 500],
                        help="corpus-count edges of the rare-word bands (a pair's band is its more frequent word's)")
    parser.add_argument("--authors-binary", help="the authors' word2bits built with the -seed patch")
    parser.add_argument("--epochs", type=int, default=5)
    add_recipe_arguments(parser, workers=1)
    parser.add_argument("--restrict-vocab", type=int, default=30000)
    parser.add_argument("--runs-dir", help="one JSON per (run, seed); default: --output without .json")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "quality_seeds.json"))
    parser.add_argument("--save-dir", help="keep each run's vectors here (gensim KeyedVectors), to rescore later")
    parser.add_argument("--rescore", action="store_true",
                        help="train nothing; score the vectors in --save-dir again (e.g. with other --bands)")
    parser.add_argument("--summary-only", action="store_true", help="train nothing; rebuild --output")
    parser.add_argument("--plot", metavar="PNG", help="also draw every score with its min-max bars")
    parser.add_argument("--bootstrap", type=int, default=0, metavar="N",
                        help="with --save-dir: N paired resamples of each set's pairs, 95%% intervals of the "
                             "first run minus each other (Spearman averaged over seeds)")
    args = parser.parse_args(argv)
    runs_dir = args.runs_dir or os.path.splitext(args.output)[0]
    command = "python " + " ".join([sys.argv[0]] + (argv if argv is not None else sys.argv[1:]))
    for run in args.runs:
        kind, _, dimension = run.partition(":")
        base = kind[:-len(SENTINEL_SUFFIX)] if kind.endswith(SENTINEL_SUFFIX) else kind
        if base not in ("1", "2", "32", "gensim", *AUTHORS_BITLEVEL) or not dimension.isdigit():
            parser.error(f"run {run!r} is not KIND:DIMENSION")
    if not os.path.exists(args.corpus):
        print(f"corpus {args.corpus} not found; skipping the benchmark")
        return 0
    for path in args.wordsim + [args.analogies]:
        if not os.path.exists(path):
            print(f"warning: evaluation file {path} not found; it is left out", flush=True)
    if args.rescore and not args.save_dir:
        parser.error("--rescore needs --save-dir")

    corpus_file = write_slice(args.corpus, args.lines, os.path.join(args.work_dir, f"slice_{args.lines}.txt"))
    counts = None
    os.makedirs(runs_dir, exist_ok=True)
    for seed in args.seeds:  # seed-major, so a cut-short batch has every run at its first seeds
        for run in args.runs:
            path = os.path.join(runs_dir, f"{run.replace(':', '_')}_seed{seed}.json")
            saved = os.path.join(args.save_dir, f"{run.replace(':', '_')}_seed{seed}.kv") if args.save_dir else None
            if args.summary_only or (os.path.exists(path) and not args.rescore):
                continue
            counts = counts or corpus_counts(corpus_file)
            if args.rescore:
                if saved and os.path.exists(saved) and os.path.exists(path):
                    from gensim.models import KeyedVectors
                    with open(path) as handle:
                        entry = json.load(handle)
                    entry["scores"], entry["band_pairs"] = score(KeyedVectors.load(saved), args, counts)
                    write_entry(path, entry)
                continue
            kind, dimension = run.split(":")
            print(f"training {run} seed {seed}", flush=True)
            started, cpu, before = time.perf_counter(), time.process_time(), os.times()
            trainer = train_authors if kind in AUTHORS_BITLEVEL else train_ours
            vectors = trainer(kind, int(dimension), seed, args, corpus_file)
            after = os.times()
            seconds = time.perf_counter() - started
            cpu_seconds = (time.process_time() - cpu + after.children_user - before.children_user
                           + after.children_system - before.children_system)
            if saved:
                os.makedirs(args.save_dir, exist_ok=True)
                vectors.save(saved)
            scores, pairs = score(vectors, args, counts)
            entry = dict(run=run, seed=seed, epochs=args.epochs, vocabulary=len(vectors),
                         train_seconds=round(seconds, 1), cpu_seconds=round(cpu_seconds, 1),
                         load_average=os.getloadavg()[0], scores=scores, band_pairs=pairs, command=command)
            write_entry(path, entry)
            print(f"{run} seed {seed}: {seconds:.0f} s, {json.dumps(scores)}", flush=True)

    report = dict(command=command, corpus=args.corpus, lines=args.lines, seeds=args.seeds, bands=args.bands,
                  parameters={key: value for key, value in vars(args).items() if key not in ("summary_only",)},
                  spread="min and max over seeds; mean and sample standard deviation", runs={})
    for run in args.runs:
        entries = []
        for seed in args.seeds:
            path = os.path.join(runs_dir, f"{run.replace(':', '_')}_seed{seed}.json")
            if os.path.exists(path):
                with open(path) as handle:
                    entries.append(json.load(handle))
        if entries:
            report["runs"][run] = dict(seeds=[entry["seed"] for entry in entries], band_pairs=entries[0]["band_pairs"],
                                       train_seconds=[entry["train_seconds"] for entry in entries],
                                       scores=summarize(entries))
    if args.bootstrap and args.save_dir:
        saved = {run: [os.path.join(args.save_dir, f"{run.replace(':', '_')}_seed{seed}.kv") for seed in args.seeds
                       if os.path.exists(os.path.join(args.save_dir, f"{run.replace(':', '_')}_seed{seed}.kv"))]
                 for run in args.runs}
        report["pair_bootstrap"] = dict(
            resamples=args.bootstrap, what="95% interval of the first run minus the other, Spearman averaged "
            "over seeds, pairs resampled with replacement (the same resample for both runs)",
            intervals=pair_bootstrap(args, counts or corpus_counts(corpus_file), args.runs, saved, args.bootstrap))
    with open(args.output + ".partial", "w") as handle:
        json.dump(report, handle, indent=2)
    os.replace(args.output + ".partial", args.output)

    done = list(report["runs"])
    if done:
        names = list(report["runs"][done[0]]["scores"])
        header = (["score"] + [f"{label(run)} ({len(report['runs'][run]['seeds'])} seeds)" for run in done]
                  + [f"{done[0]} vs {other}" for other in done[1:]])
        print("\nmean [min, max] over seeds; '>'/'<': the ranges do not overlap, '~': they do\n")
        print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
        for name in names:
            cells = []
            for run in done:
                row = report["runs"][run]["scores"].get(name)
                cells.append("-" if row is None else f"{row['mean']:.3f} [{row['min']:.3f}, {row['max']:.3f}]")
            first = report["runs"][done[0]]["scores"].get(name)
            for other in done[1:]:
                row = report["runs"][other]["scores"].get(name)
                cells.append("-" if first is None or row is None else separated(first, row))
            print("| " + " | ".join([name] + cells) + " |")
    for comparison, scores in report.get("pair_bootstrap", {}).get("intervals", {}).items():
        print(f"\n{comparison}, Spearman averaged over seeds: 95% interval over {args.bootstrap} resamples of the pairs")
        for name, (low, high) in scores.items():
            print(f"  {name:<28} [{low:+.3f}, {high:+.3f}]{'  (excludes 0)' if low > 0 or high < 0 else ''}")
    print(f"\nwrote {args.output}")
    if args.plot and done:
        plot_report(report, args.plot, f"{args.lines:,} lines, {args.epochs} epochs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
