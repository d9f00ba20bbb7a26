"""Quantization as a regularizer: Lam 2018, section 4.3, Figure 1.

Trains float32 (``bits=32``, same kernel) and 1-bit Word2Bits CBOW vectors on a slice of
the shared corpus and tracks the training loss and the Google-analogy accuracy:

* panel (a), against epochs at a fixed dimension: one run per model of ``--max-epochs``
  epochs (the learning rate decays over all of them); loss and accuracy are recorded at the
  end of every epoch;
* panel (b), against the dimension at ``--fixed-epochs`` epochs: one run per dimension.

The loss is the negative-sampling loss of the last epoch (the quantized forward pass for
1 bit) divided by the words in the corpus slice. Accuracy: 3CosAdd and 3CosMul over the
Google questions whose words are among the 30,000 most frequent (coverage reported).
Paper hyperparameters otherwise: window 10, negative 12, sample 1e-4, alpha 0.05 -> 0.0001,
min_count 5.

    nice -n 10 python benchmarks/regularization.py --words 2000000
"""
import argparse
import json
import os
import sys
import time

from gensim.models.callbacks import CallbackAny2Vec

from gensim_bits import Word2Bits, evaluate
from train_speed import read_slice  # benchmarks/train_speed.py, next to this script

MODELS = {"float32": 32, "1-bit": 1}


class EpochRecorder(CallbackAny2Vec):
    """Loss of each epoch (the difference of gensim's running total) and its analogy accuracy."""

    def __init__(self, analogies, corpus_words, evaluate_every_epoch):
        self.analogies, self.corpus_words = analogies, corpus_words
        self.evaluate_every_epoch = evaluate_every_epoch
        self.previous_loss, self.epochs = 0.0, []

    def on_epoch_end(self, model):
        total = model.get_latest_training_loss()
        record = {"epoch": len(self.epochs) + 1, "loss_per_word": (total - self.previous_loss) / self.corpus_words}
        self.previous_loss = total
        if self.evaluate_every_epoch:
            record.update(score(model, self.analogies))
        self.epochs.append(record)


def score(model, analogies):
    result = evaluate(model.wv, analogies=[analogies], restrict_vocab=30000, verbose=False)
    google = next(iter(result["analogies"].values()))
    return {"accuracy_3cosadd": google["total"]["accuracy_3cosadd"],
            "accuracy_3cosmul": google["total"]["accuracy_3cosmul"],
            "questions": google["total"]["questions"], "coverage": google["coverage"]}


def train(sentences, corpus_words, bits, dimension, epochs, analogies, args, every_epoch):
    recorder = EpochRecorder(analogies, corpus_words, every_epoch)
    started = time.perf_counter()
    model = Word2Bits(sentences, vector_size=dimension, bits=bits, epochs=epochs, window=args.window,
                      negative=args.negative, sample=1e-4, alpha=0.05, min_alpha=0.0001, min_count=5,
                      workers=args.workers, seed=args.seed, compute_loss=True, callbacks=[recorder])
    seconds = time.perf_counter() - started
    final = dict(recorder.epochs[-1])
    if not every_epoch:
        final.update(score(model, analogies))
    final.update({"bits": bits, "dimension": dimension, "epochs": epochs, "train_seconds": seconds,
                  "vocabulary": len(model.wv)})
    return final, recorder.epochs


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {"float32": "tab:blue", "1-bit": "tab:red"}
    panels = [("epochs", "epoch", results["by_epoch"], "(a) against epochs, dimension {}".format(results["dimension"])),
              ("dimension", "dimension", results["by_dimension"],
               "(b) against dimension, {} epochs".format(results["fixed_epochs"]))]
    accuracy_axes = []
    for axis, (_, key, series, title) in zip(axes, panels):
        accuracy_axis = axis.twinx()
        accuracy_axes.append(accuracy_axis)
        for name, rows in series.items():
            x = [row[key] for row in rows]
            axis.plot(x, [row["loss_per_word"] for row in rows], "--", marker="o", color=colors[name],
                      label=f"{name} training loss")
            accuracy_axis.plot(x, [100 * row["accuracy_3cosadd"] for row in rows], "-", marker="s",
                               color=colors[name], label=f"{name} analogy accuracy")
        axis.set_xlabel(key)
        axis.set_ylabel("training loss per corpus word (dashed)")
        accuracy_axis.set_ylabel("Google analogy accuracy, 3CosAdd % (solid)")
        if key == "dimension":
            axis.set_xscale("log", base=2)
            axis.set_xticks(x, [str(value) for value in x])
        axis.set_title(title)
    lines, labels = axes[0].get_legend_handles_labels()
    more_lines, more_labels = accuracy_axes[0].get_legend_handles_labels()
    figure.legend(lines + more_lines, labels + more_labels, loc="lower center", ncol=4, fontsize=8)
    figure.suptitle(f"Word2Bits regularization (Lam 2018, Fig. 1) on {results['corpus_words']:,} words of en25m")
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    figure.savefig(path, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--words", type=int, default=2_000_000, help="corpus slice, in tokens")
    parser.add_argument("--dimension", type=int, default=200, help="dimension of panel (a)")
    parser.add_argument("--max-epochs", type=int, default=10, help="epochs of panel (a)")
    parser.add_argument("--dimensions", type=int, nargs="+", default=[50, 100, 200, 400], help="panel (b)")
    parser.add_argument("--fixed-epochs", type=int, default=4, help="epochs of panel (b)")
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--negative", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/regularization")
    parser.add_argument("--replot", action="store_true", help="redraw the figure from the JSON of --out")
    args = parser.parse_args(argv)
    if args.replot:
        with open(args.out + ".json") as saved:
            plot(json.load(saved), args.out + ".png")
        return 0

    corpus = os.path.join(args.data_dir, "corpus", "en25m.txt.gz")
    analogies = os.path.join(args.data_dir, "analogy", "google.txt")
    for path in (corpus, analogies):
        if not os.path.isfile(path):
            print(f"skipping: {path} not found")
            return 0
    sentences, corpus_words = read_slice(corpus, args.words)
    print(f"corpus slice: {corpus_words:,} words, {len(sentences):,} lines; dimension {args.dimension}, "
          f"epochs 1..{args.max_epochs}; dimensions {args.dimensions} at {args.fixed_epochs} epochs")
    results = {"command": "python " + " ".join([os.path.relpath(__file__)] + sys.argv[1:]),
               "corpus_words": corpus_words, "dimension": args.dimension, "fixed_epochs": args.fixed_epochs,
               "window": args.window, "negative": args.negative, "by_epoch": {}, "by_dimension": {}}
    print(f"{'model':<8} {'dim':>4} {'epoch':>5} {'loss/word':>10} {'3CosAdd':>8} {'3CosMul':>8} {'seconds':>8}")
    for name, bits in MODELS.items():
        _, epochs = train(sentences, corpus_words, bits, args.dimension, args.max_epochs, analogies, args, True)
        results["by_epoch"][name] = epochs
        for row in epochs:
            print(f"{name:<8} {args.dimension:>4} {row['epoch']:>5} {row['loss_per_word']:>10.4f} "
                  f"{row['accuracy_3cosadd']:>8.2%} {row['accuracy_3cosmul']:>8.2%}", flush=True)
    for name, bits in MODELS.items():
        rows = []
        for dimension in args.dimensions:
            final, _ = train(sentences, corpus_words, bits, dimension, args.fixed_epochs, analogies, args, False)
            rows.append(final)
            print(f"{name:<8} {dimension:>4} {args.fixed_epochs:>5} {final['loss_per_word']:>10.4f} "
                  f"{final['accuracy_3cosadd']:>8.2%} {final['accuracy_3cosmul']:>8.2%} "
                  f"{final['train_seconds']:>8.1f}", flush=True)
        results["by_dimension"][name] = rows
    coverage = results["by_dimension"]["1-bit"][-1]
    print(f"analogy questions answered: {coverage['questions']} ({coverage['coverage']:.1%} coverage)")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out + ".json", "w") as out:
        json.dump(results, out, indent=2)
    plot(results, args.out + ".png")
    print(f"wrote {args.out}.json and {args.out}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
