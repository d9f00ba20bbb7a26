"""Quality of Word2Bits vectors (Lam 2018, section 4, tables 2-3) on a slice of the shared corpus.

Trains each requested configuration with the paper's hyperparameters (window 10, negative
12, min_count 5, sample 1e-4, alpha 0.05 -> 0.0001) and scores Spearman correlation on the
word-similarity sets and accuracy on the Google analogies (3CosAdd, and 3CosMul beside
it), both through :func:`gensim_bits.evaluate`. ``T1`` is the paper's thresholded baseline: Q1 of the
full-precision u + v of the float32 run of the same dimension (no extra training).

    nice -n 10 python benchmarks/quality.py --words 4000000 --epochs 5 --runs 32:200 1:800 2:400 T1:200
"""
import argparse
import glob
import json
import os
import sys
import time

from gensim.models import Word2Vec
from gensim.models.callbacks import CallbackAny2Vec
from gensim.models.word2vec import LineSentence

from gensim_bits import Word2Bits, evaluate

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_speed import read_slice  # noqa: E402  (the same corpus slicing for both benchmarks)

DATA = os.path.join("..", "shared", "data")


def score(vectors, wordsim_paths, analogy_path, restrict_vocab):
    """Spearman (and pair coverage) per similarity file, Google analogy accuracy and coverage."""
    result = evaluate(vectors, similarity=wordsim_paths, analogies=[analogy_path] if analogy_path else [],
                      restrict_vocab=restrict_vocab, verbose=False)
    scores = {os.path.splitext(name)[0]: dict(spearman=round(row["spearman"], 4), coverage=round(row["coverage"], 4))
              for name, row in result["similarity"].items()}
    for google in result["analogies"].values():
        total = google["total"]
        scores["google_analogy"] = dict(accuracy=round(total["accuracy_3cosadd"], 4),
                                        accuracy_3cosmul=round(total["accuracy_3cosmul"], 4),
                                        answered=total["questions"], questions=google["questions_in_file"])
    return scores


class EpochCurve(CallbackAny2Vec):
    """The paper's Figure 1: training loss and Google analogy accuracy after every epoch.

    The loss is the model's summed negative-sampling loss of that epoch (gensim's
    ``running_training_loss`` is cumulative within one ``train()`` call); the accuracy is
    3CosAdd on ``model.wv``, which Word2Bits refreshes to Q(u + v) before callbacks run.
    """

    def __init__(self, analogy_path, restrict_vocab, on_epoch=None):
        self.analogy_path, self.restrict_vocab, self.on_epoch = analogy_path, restrict_vocab, on_epoch
        self.epochs, self.previous_loss, self.started = [], 0.0, time.perf_counter()
        self.evaluation_seconds = 0.0  # left out of the run's train_seconds

    def on_epoch_end(self, model):
        loss = model.get_latest_training_loss()
        row = dict(epoch=len(self.epochs) + 1, loss=round(loss - self.previous_loss, 1),
                   seconds=round(time.perf_counter() - self.started, 1))
        self.previous_loss = loss
        if self.analogy_path:
            evaluation_start = time.perf_counter()
            result = evaluate(model.wv, analogies=[self.analogy_path], restrict_vocab=self.restrict_vocab,
                              verbose=False)
            total = next(iter(result["analogies"].values()))["total"]
            row.update(accuracy_3cosadd=round(total["accuracy_3cosadd"], 4),
                       accuracy_3cosmul=round(total["accuracy_3cosmul"], 4))
            self.evaluation_seconds += time.perf_counter() - evaluation_start
        self.epochs.append(row)
        print(f"  epoch {row}", flush=True)
        if self.on_epoch:
            self.on_epoch(self.epochs)


def plot_curves(reports, path):
    """The paper's Figure 1 from saved reports: loss and analogy accuracy after each epoch."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for report in reports:
        runs = [(run["label"], run["epochs"]) for run in report["runs"] if run.get("epochs")]
        if report.get("in_progress"):
            kind, dimension = report["in_progress"]["run"].split(":")
            runs.append((f"{kind}{'-bit' if kind.isdigit() else ''} d={dimension} (epochs so far)",
                         report["in_progress"]["epochs"]))
        for label, epochs in runs:
            x = [row["epoch"] for row in epochs]
            loss_axis.plot(x, [row["loss"] for row in epochs], marker=".", label=label)
            accuracy_axis.plot(x, [row["accuracy_3cosadd"] for row in epochs], marker=".", label=label)
    loss_axis.set(xlabel="epoch", ylabel="training loss (epoch sum)", title="training loss")
    accuracy_axis.set(xlabel="epoch", ylabel="Google 3CosAdd", title="analogy accuracy")
    accuracy_axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    print(f"wrote {path}")


def decompress(source, target):
    """Write an uncompressed copy of ``source`` (corpus_file mode reads plain text), atomically."""
    import gzip
    import shutil
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    partial = target + ".partial"
    with gzip.open(source, "rb") as reader, open(partial, "wb") as writer:
        shutil.copyfileobj(reader, writer, 1 << 20)
    os.replace(partial, target)


def add_recipe_arguments(parser, workers):
    """The paper's recipe (section 4) as options, defaults from PAPER_HYPERPARAMETERS; and --workers."""
    from gensim_bits.word2bits import PAPER_HYPERPARAMETERS as paper
    parser.add_argument("--window", type=int, default=paper["window"])
    parser.add_argument("--negative", type=int, default=paper["negative"])
    parser.add_argument("--min-count", type=int, default=paper["min_count"])
    parser.add_argument("--sample", type=float, default=paper["sample"])
    parser.add_argument("--alpha", type=float, default=paper["alpha"])
    parser.add_argument("--min-alpha", type=float, default=paper["min_alpha"])
    parser.add_argument("--workers", type=int, default=workers)


def write_report(path, report):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(report, handle, indent=2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=os.path.join(DATA, "corpus", "en25m.txt.gz"))
    parser.add_argument("--wordsim", nargs="*", default=sorted(glob.glob(os.path.join(DATA, "wordsim", "*.tsv"))))
    parser.add_argument("--analogies", default=os.path.join(DATA, "analogy", "google.txt"))
    parser.add_argument("--words", type=int, default=4_000_000,
                        help="corpus slice, in tokens; 0 streams the whole corpus from disk")
    parser.add_argument("--corpus-file", metavar="PATH",
                        help="with --words 0: train in corpus_file mode (gensim's compiled reader in each "
                             "worker) on this uncompressed copy of --corpus, written once if missing")
    parser.add_argument("--save-dir", help="save each run's vectors here (QuantizedKeyedVectors / KeyedVectors)")
    parser.add_argument("--curves", nargs="*", default=[],
                        help="runs (as in --runs) that log loss and analogy accuracy after every epoch")
    parser.add_argument("--runs", nargs="+", default=["32:200", "1:800", "2:400", "T1:200"],
                        help="BITS:DIMENSION; BITS is 1, 2, 4, 8, 32, T1 (threshold of the 32-bit run) "
                             "or gensim (gensim's own Word2Vec CBOW, input vectors)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--sg", action="store_true",
                        help="skip-gram for every run (Word2Bits' quantized skip-gram is our extension)")
    add_recipe_arguments(parser, workers=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--restrict-vocab", type=int, default=30000,
                        help="evaluate among the most frequent words only, as word2vec's compute-accuracy")
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "results", "quality.json"))
    parser.add_argument("--plot-from", nargs="+", metavar="JSON",
                        help="only plot the per-epoch curves of these saved reports to --plot")
    parser.add_argument("--plot", default=os.path.join(os.path.dirname(__file__), "results", "quality_curves.png"))
    args = parser.parse_args(argv)
    if args.plot_from:
        reports = []
        for path in args.plot_from:
            with open(path) as handle:
                reports.append(json.load(handle))
        plot_curves(reports, args.plot)
        return 0

    if not os.path.exists(args.corpus):
        print(f"corpus {args.corpus} not found; skipping the benchmark")
        return 0
    wordsim = [path for path in args.wordsim if os.path.exists(path)]
    analogies = args.analogies if os.path.exists(args.analogies) else None
    if not wordsim and not analogies:
        print("no evaluation data found; skipping the benchmark")
        return 0

    data = {}  # sentences= or corpus_file= for every model
    if args.words:
        sentences, count = read_slice(args.corpus, args.words)
        described = f"slice: first {count:,} words ({len(sentences):,} lines)"
    elif args.corpus_file:
        if not os.path.exists(args.corpus_file):
            decompress(args.corpus, args.corpus_file)
        sentences, count = None, None
        data = dict(corpus_file=args.corpus_file)
        described = f"the whole corpus in corpus_file mode ({args.corpus_file})"
    else:
        sentences, count = LineSentence(args.corpus), None
        described = "the whole corpus, streamed"
    print(f"{described} of {args.corpus}; {args.epochs} epochs, "
          f"window={args.window}, negative={args.negative}, min_count={args.min_count}, sample={args.sample}, "
          f"alpha={args.alpha}->{args.min_alpha}, workers={args.workers}")
    hyper = dict(window=args.window, negative=args.negative, min_count=args.min_count, sample=args.sample,
                 alpha=args.alpha, min_alpha=args.min_alpha, epochs=args.epochs, workers=args.workers,
                 seed=args.seed, sg=int(args.sg), hs=0, cbow_mean=1)
    command = "python " + " ".join([sys.argv[0]] + (argv if argv is not None else sys.argv[1:]))
    report = dict(command=command, corpus=args.corpus, slice_words=count, parameters=vars(args), runs=[])

    data = data or dict(sentences=sentences)
    float_models = {}
    for run in args.runs:
        kind, dimension = run.split(":")
        dimension = int(dimension)
        def save_partial(epochs, run=run):  # a run cut short still leaves its curve
            write_report(args.output, dict(report, in_progress=dict(run=run, epochs=epochs)))

        curve = EpochCurve(analogies, args.restrict_vocab, save_partial) if run in args.curves or (
            kind == "T1" and f"32:{dimension}" in args.curves) else None
        extra = dict(compute_loss=True, callbacks=[curve]) if curve else {}
        start = time.perf_counter()

        def elapsed():
            return time.perf_counter() - start - (curve.evaluation_seconds if curve else 0.0)

        if kind == "T1":
            if dimension not in float_models:
                float_models[dimension] = (Word2Bits(**data, vector_size=dimension, bits=32, **hyper, **extra),
                                           elapsed())
            source, seconds = float_models[dimension]
            vectors, bits = source.quantized_vectors(1), 1
            label = f"T1 (threshold of float32 u+v) d={dimension}"
        elif kind == "gensim":
            model = Word2Vec(**data, vector_size=dimension, **hyper, **extra)
            vectors, seconds, bits = model.wv, elapsed(), 32
            label = f"gensim Word2Vec {'skip-gram' if args.sg else 'CBOW'} float32 d={dimension}"
        else:
            bits = int(kind)
            model = Word2Bits(**data, vector_size=dimension, bits=bits, **hyper, **extra)
            vectors, seconds = model.wv, elapsed()
            if bits == 32:
                float_models[dimension] = (model, seconds)
            label = f"Word2Bits {'float32' if bits == 32 else f'{bits}-bit'} d={dimension}"
        if args.save_dir:
            os.makedirs(args.save_dir, exist_ok=True)
            vectors.save(os.path.join(args.save_dir, run.replace(":", "_") + ".kv"))
        scores = score(vectors, wordsim, analogies, args.restrict_vocab)
        entry = dict(run=run, label=label, bits=bits, vector_size=dimension, train_seconds=round(seconds, 1),
                     bytes_per_word=dimension * bits / 8, vocabulary=len(vectors), scores=scores)
        if curve and kind != "T1":
            entry["epochs"] = curve.epochs
        report["runs"].append(entry)
        print(f"{label}: {seconds:.0f}s, {entry['bytes_per_word']:g} bytes/word, {json.dumps(scores)}", flush=True)
        write_report(args.output, report)  # after every run, so a cut-short study keeps what it has

    names = list(report["runs"][0]["scores"])
    print("\n" + " | ".join(["run", "train s", "bytes/word"] + names))
    for entry in report["runs"]:
        values = [entry["scores"][name].get("spearman", entry["scores"][name].get("accuracy")) for name in names]
        print(" | ".join([entry["label"], f"{entry['train_seconds']:.0f}", f"{entry['bytes_per_word']:g}"]
                         + [f"{value:.3f}" for value in values]))
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
