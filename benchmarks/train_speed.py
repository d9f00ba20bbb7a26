"""Training speed of Word2Bits (Lam 2018) against gensim's own CBOW, side by side.

Every model trains one epoch on the same in-memory slice of the shared corpus with the
same parameters and worker count; runs are interleaved (the order rotates each round) so
load from other processes hits all of them alike. Reports raw words per wall-clock second
and per CPU second of this process (the latter barely moves when other processes share
the cores), their medians over rounds, and the per-round ratios to gensim.

    nice -n 10 python benchmarks/train_speed.py --words 2000000 --vector-size 200 --rounds 3
    nice -n 10 python benchmarks/train_speed.py --sg            # skip-gram against gensim's skip-gram
    nice -n 10 python benchmarks/train_speed.py --corpus-file --workers 1 2   # both in corpus_file mode

``--corpus-file`` writes the slice to a plain-text file once and trains every model from it
with ``corpus_file=`` (gensim's compiled reader against ours); with several ``--workers``
it also reports each model's scaling from the first worker count to the others.
"""
import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time

from gensim.models import Word2Vec

from gensim_bits import Word2Bits

DEFAULT_CORPUS = os.path.join("..", "shared", "data", "corpus", "en25m.txt.gz")


def read_slice(path, words):
    """The first ``words`` tokens of a one-sentence-a-line corpus, as lists of tokens."""
    sentences, count = [], 0
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            tokens = line.split()
            if tokens:
                sentences.append(tokens)
                count += len(tokens)
            if count >= words:
                break
    return sentences, count


def words_per_second(factory, sentences, corpus_file=None):
    """Raw words per wall-clock second and per CPU second (all threads) of one epoch."""
    model = factory()
    if corpus_file:
        model.build_vocab(corpus_file=corpus_file)
        wall, cpu = time.perf_counter(), time.process_time()
        _, raw_words = model.train(corpus_file=corpus_file, total_words=model.corpus_total_words, epochs=1)
    else:
        model.build_vocab(sentences)
        wall, cpu = time.perf_counter(), time.process_time()
        _, raw_words = model.train(sentences, total_examples=model.corpus_count, epochs=1)
    return raw_words / (time.perf_counter() - wall), raw_words / (time.process_time() - cpu)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=DEFAULT_CORPUS)
    parser.add_argument("--words", type=int, default=2_000_000, help="corpus slice, in tokens")
    parser.add_argument("--vector-size", type=int, nargs="+", default=[200])
    parser.add_argument("--bits", type=int, nargs="+", default=[1, 2, 32])
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--negative", type=int, default=5)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--sample", type=float, default=1e-3)
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--sg", action="store_true", help="skip-gram (gensim's skip-gram as the baseline)")
    parser.add_argument("--corpus-file", action="store_true", help="train every model with corpus_file=")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "results", "train_speed.json"))
    args = parser.parse_args(argv)

    if not os.path.exists(args.corpus):
        print(f"corpus {args.corpus} not found; skipping the benchmark")
        return 0
    sentences, count = read_slice(args.corpus, args.words)
    print(f"slice: {count:,} words, {len(sentences):,} sentences of {args.corpus}; workers={args.workers}, "
          f"window={args.window}, negative={args.negative}, min_count={args.min_count}, sample={args.sample}, "
          f"{'skip-gram' if args.sg else 'CBOW'}, {'corpus_file' if args.corpus_file else 'iterable'} mode")
    corpus_file = None
    if args.corpus_file:
        handle, corpus_file = tempfile.mkstemp(suffix=".txt")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.writelines(" ".join(sentence) + "\n" for sentence in sentences)

    results = []
    runs = [(size, workers) for workers in args.workers for size in args.vector_size]
    for size, workers in runs:
        common = dict(vector_size=size, window=args.window, negative=args.negative, min_count=args.min_count,
                      sample=args.sample, workers=workers, epochs=1, sg=int(args.sg), hs=0, cbow_mean=1)
        baseline = f"gensim Word2Vec {'skip-gram' if args.sg else 'CBOW'}"
        contenders = {baseline: lambda: Word2Vec(**common)}
        for bits in args.bits:
            contenders[f"Word2Bits bits={bits}"] = lambda bits=bits: Word2Bits(bits=bits, **common)
        speeds = {name: [] for name in contenders}
        names = list(contenders)
        for round_index in range(args.rounds):
            order = names[round_index % len(names):] + names[:round_index % len(names)]
            for name in order:
                speeds[name].append(words_per_second(contenders[name], sentences, corpus_file))
        print(f"\nvector_size={size}, workers={workers}")
        print(f"{'model':<24} {'words/s':>10} {'ratio to gensim (rounds)':<31} {'words/CPU s':>10} ratio (rounds)")
        for name in names:
            entry = dict(model=name, vector_size=size, workers=workers)
            line = f"{name:<24}"
            for clock, column in (("wall", 0), ("cpu", 1)):
                values = [speed[column] for speed in speeds[name]]
                ratios = [speed[column] / base[column] for speed, base in zip(speeds[name], speeds[names[0]])]
                entry.update({f"words_per_{clock}_second": values, f"ratio_to_gensim_{clock}": ratios,
                              f"median_words_per_{clock}_second": statistics.median(values),
                              f"median_ratio_to_gensim_{clock}": statistics.median(ratios)})
                line += (f" {statistics.median(values):>10,.0f} {statistics.median(ratios):>7.3f} "
                         f"({', '.join(f'{r:.2f}' for r in ratios):<22})")
            print(line)
            results.append(entry)

    if corpus_file:
        os.remove(corpus_file)
    if len(args.workers) > 1:  # scaling: median speed at each worker count over that at the first
        print(f"\nscaling from {args.workers[0]} worker(s), median words per wall second")
        for entry in results:
            first = next(other for other in results if other["model"] == entry["model"]
                         and other["vector_size"] == entry["vector_size"] and other["workers"] == args.workers[0])
            entry["scaling_from_first_workers"] = (entry["median_words_per_wall_second"]
                                                   / first["median_words_per_wall_second"])
            if entry["workers"] != args.workers[0]:
                print(f"{entry['model']:<28} d={entry['vector_size']} {args.workers[0]}->{entry['workers']} workers: "
                      f"{entry['scaling_from_first_workers']:.2f}x")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as handle:
        json.dump(dict(command="python " + " ".join([sys.argv[0]] + (argv if argv is not None else sys.argv[1:])),
                       corpus=args.corpus, slice_words=count, sentences=len(sentences), cpu_count=os.cpu_count(),
                       parameters=vars(args), results=results), handle, indent=2)
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
