"""How fast the recursive autoencoder overfits the 200 sentences of the slow overfit test.

    python benchmarks/rae_overfit.py --epochs 800 --schedule cosine --output benchmarks/results/rae_overfit.json

Trains `RecursiveAutoencoder` on the data of
`tests/test_rae.py::test_overfits_200_sentences_of_2_to_20_words` (200 sentences of 2
to 20 words drawn from a 300-word vocabulary of random 6-d vectors; variance 1, so
predicting the mean scores an MSE of about 1) and prints, ten times during the run,
the training loss, the MSE over real positions and the words recovered overall and
by sentence length. `--code DIR` imports `keras_compress` from another checkout
(e.g. a `git archive` of an older commit) to compare versions on the same data.
docs/rae.md reads the results.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", help="import keras_compress from this directory instead")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--schedule", choices=["constant", "cosine"], default="constant",
                        help="constant rate, or cosine decay to zero over the run")
    parser.add_argument("--embedding-dim", type=int, default=64)
    parser.add_argument("--sentences", type=int, default=200)
    parser.add_argument("--max-length", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--bucket-width", type=int, default=5)
    parser.add_argument("--reports", type=int, default=10, help="evaluations during the run")
    parser.add_argument("--output", help="write the curve and the final report here (JSON)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    # keras_compress from --code or from this checkout (not another installed copy); the test's data helpers.
    sys.path[:0] = [os.path.abspath(args.code or ROOT), os.path.join(ROOT, "tests")]
    import keras
    import numpy as np

    import keras_compress.rae
    from keras_compress.rae import RecursiveAutoencoder
    from keras_compress.rae import SentenceBatches
    from test_rae import WORD_DIM, overfit_report, random_sentences, random_vocabulary

    print(f"keras_compress.rae from {keras_compress.rae.__file__}, backend {keras.backend.backend()}", flush=True)
    keyed_vectors = random_vocabulary()
    sentences = random_sentences(keyed_vectors, args.sentences, 2, args.max_length)
    batches = SentenceBatches(sentences, keyed_vectors, batch_size=args.batch_size, bucket_width=args.bucket_width)
    steps = args.epochs * len(batches)
    keras.utils.set_random_seed(0)
    model = RecursiveAutoencoder(WORD_DIM, args.embedding_dim, max_length=args.max_length)
    rate = args.learning_rate
    if args.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(args.learning_rate, steps)
    model.compile(optimizer=keras.optimizers.Adam(rate))
    curve, started = [], time.time()

    def report(epoch, loss):
        mse, accuracy = overfit_report(model, sentences, keyed_vectors, args.max_length)
        by_length = {length: entry["word_accuracy"] for length, entry in accuracy["by_length"].items()}
        row = {
            "epoch": epoch, "steps": epoch * len(batches), "loss": loss, "mse": mse,
            "word_accuracy": accuracy["word_accuracy"], "sentence_accuracy": accuracy["sentence_accuracy"],
            "word_accuracy_by_length": by_length, "seconds": time.time() - started,
        }
        curve.append(row)
        short, long = (
            float(np.mean(values)) if values else float("nan")
            for values in ([v for n, v in by_length.items() if n <= 10], [v for n, v in by_length.items() if n > 10])
        )
        print(f"epoch {epoch:5d} ({row['steps']:6d} steps): loss {loss:.4f}  MSE {mse:.4f}  words "
              f"{row['word_accuracy']:.3f}  (mean over lengths <=10: {short:.3f}, >10: {long:.3f})  "
              f"{row['seconds']:.0f} s", flush=True)

    every = max(1, args.epochs // args.reports)

    class Report(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if (epoch + 1) % every == 0 or epoch + 1 == args.epochs:
                report(epoch + 1, float(logs["loss"]))

    print(f"{len(sentences)} sentences, {len(batches)} batches an epoch, {steps} steps", flush=True)
    model.fit(batches, epochs=args.epochs, verbose=0, callbacks=[Report()])
    final = curve[-1]
    print("\nwords recovered by length: " + ", ".join(
        f"{length}: {value:.2f}" for length, value in final["word_accuracy_by_length"].items()))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            json.dump({"command": "python " + " ".join(sys.argv), "settings": vars(args), "curve": curve}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
