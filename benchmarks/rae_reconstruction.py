"""Recursive autoencoder vs stacked LSTM autoencoder: reconstruction and sentiment.

CPU-scale reproduction of Prato et al. 2019 ("Towards Lossless Encoding of
Sentences"), Table 1 / thesis Table 4.1 (dev MSE against d_emb) and Figure 2 / thesis
Figure 4.2 (words recovered against sentence length), on short sentences of the
shared English corpus (en25m) with GloVe 6B 50d instead of BookCorpus with GloVe
300d. Then a linear classifier on the frozen sentence embeddings predicts
rt_polarity sentiment.

    nice -n 10 python benchmarks/rae_reconstruction.py            # ~30 min on 2 busy cores
    nice -n 10 python benchmarks/rae_reconstruction.py --sizes 32 --epochs 1 --train-sentences 500  # smoke run

Writes benchmarks/results/rae_reconstruction.json (numbers and command line) and
benchmarks/results/rae_reconstruction.png.
"""

import argparse
import json
import os
import re
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# GloVe 6B splits clitics off ("does n't", "it 's"), so the tokenizer does too.
TOKEN = re.compile(r"\w+(?=n't)|n't|'\w+|\w+|[^\w\s]")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.path.join(ROOT, "..", "shared", "data", "classify", "rt_polarity"))
    parser.add_argument("--corpus", default=os.path.join(ROOT, "..", "shared", "data", "corpus", "en25m.txt.gz"))
    parser.add_argument(
        "--vectors", default=os.path.join(ROOT, "..", "shared", "data", "vectors", "glove6b50d_100k.txt.gz")
    )
    parser.add_argument("--vocab-limit", type=int, default=100000, help="GloVe words loaded (most frequent first)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200], help="embedding sizes d_emb")
    parser.add_argument("--max-length", type=int, default=10, help="longest sentence kept")
    parser.add_argument("--min-length", type=int, default=2, help="shortest corpus sentence kept")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--train-sentences", type=int, default=6000, help="autoencoder training sentences")
    parser.add_argument("--dev-sentences", type=int, default=1000, help="held-out sentences for dev MSE and accuracy")
    parser.add_argument("--metric", choices=["cosine", "euclidean"], default="cosine", help="nearest-word distance")
    parser.add_argument(
        "--jit", action="store_true", help="compile the training step with XLA (2.5x faster steps, minutes to compile)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "results", "rae_reconstruction.json"))
    parser.add_argument("--plot", default=os.path.join(ROOT, "benchmarks", "results", "rae_reconstruction.png"))
    return parser.parse_args(argv)


def read_split(data_dir, split):
    from keras_compress.datasets import read_tsv

    labels, texts = read_tsv(os.path.join(data_dir, f"{split}.tsv"))
    return np.array(labels, dtype="float32"), [TOKEN.findall(text.lower()) for text in texts]


def read_corpus(path, vocabulary, min_length, max_length, count, seed):
    """`count` random corpus lines of min_length..max_length words, every word in the vocabulary."""
    import gzip

    with gzip.open(path, "rt", encoding="utf-8") as handle:
        kept = {tuple(tokens) for tokens in (line.split() for line in handle)
                if min_length <= len(tokens) <= max_length and all(word in vocabulary for word in tokens)}
    kept = sorted(kept)  # de-duplicated, so train and dev never share a sentence
    order = np.random.default_rng(seed).permutation(len(kept))[:count]
    return [list(kept[index]) for index in order]


def pad(sentences, keyed_vectors, width):
    vectors = np.zeros((len(sentences), width, keyed_vectors.vector_size), dtype="float32")
    for row, tokens in enumerate(sentences):
        vectors[row, : len(tokens)] = keyed_vectors[tokens]
    return vectors, np.array([len(tokens) for tokens in sentences], dtype="int32")


def encode_in_batches(model, vectors, lengths, batch_size=512):
    """`model.encode` through `predict`, so the recursion runs as one compiled graph."""
    import keras

    class Encoder(keras.Model):
        def __init__(self, autoencoder):
            super().__init__()
            self.autoencoder = autoencoder

        def call(self, inputs):
            return self.autoencoder._encode(*self.autoencoder._split_inputs(inputs))

    return Encoder(model).predict((vectors, lengths), batch_size=batch_size, verbose=0)


def linear_probe(features, labels, seed):
    """Logistic regression (one Dense unit) on standardised features; dev picks the epoch."""
    import keras

    mean, std = features["train"].mean(axis=0), features["train"].std(axis=0) + 1e-6
    scaled = {split: (values - mean) / std for split, values in features.items()}
    keras.utils.set_random_seed(seed)
    classifier = keras.Sequential([keras.Input((scaled["train"].shape[1],)), keras.layers.Dense(1, activation="sigmoid")])
    classifier.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy", metrics=["accuracy"])
    classifier.fit(
        scaled["train"],
        labels["train"],
        validation_data=(scaled["dev"], labels["dev"]),
        epochs=60,
        batch_size=128,
        verbose=0,
        callbacks=[keras.callbacks.EarlyStopping("val_accuracy", patience=8, restore_best_weights=True)],
    )
    return {split: float(classifier.evaluate(scaled[split], labels[split], verbose=0)[1]) for split in ("dev", "test")}


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, size in enumerate(results["sizes"]):
        for model, style in (("rae", "-"), ("lstm", "--")):
            by_length = results["models"][f"{model}_{size}"]["accuracy"]["by_length"]
            lengths = sorted(int(length) for length in by_length)
            left.plot(
                lengths,
                [by_length[str(length)]["word_accuracy"] for length in lengths],
                style,
                color=colors[index % len(colors)],
                marker="o" if model == "rae" else "x",
                label=f"{model.upper()} d_emb={size}",
            )
    left.set_xlabel("sentence length (words)")
    left.set_ylabel("dev words recovered (nearest GloVe word)")
    left.set_ylim(0, 1.02)
    left.legend(fontsize=8)
    left.set_title("Reconstruction accuracy by length (cf. Prato et al. Fig. 2)")
    for model, marker in (("rae", "o"), ("lstm", "x")):
        right.plot(
            results["sizes"],
            [results["models"][f"{model}_{size}"]["dev_mse"] for size in results["sizes"]],
            marker=marker,
            label=model.upper(),
        )
    right.set_xscale("log", base=2)
    right.set_xlabel("d_emb")
    right.set_ylabel("dev MSE")
    right.set_title("Dev MSE (cf. Prato et al. Table 1)")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv=None):
    args = parse_args(argv)
    for path in (args.vectors, args.corpus, os.path.join(args.data_dir, "train.tsv")):
        if not os.path.exists(path):
            print(f"skipping: {path} not found (see ../shared/data/README.md)")
            return 0

    import keras
    from gensim.models import KeyedVectors

    from keras_compress.lstm_autoencoder import LSTMAutoencoder, matched_lstm_units
    from keras_compress.rae import RecursiveAutoencoder, reconstruction_accuracy

    started = time.time()
    keyed_vectors = KeyedVectors.load_word2vec_format(args.vectors, limit=args.vocab_limit)
    vocabulary = keyed_vectors.key_to_index
    labels, tokens = {}, {}
    for split in ("train", "dev", "test"):
        labels[split], tokens[split] = read_split(args.data_dir, split)

    # Reconstruction: corpus sentences whose every word has a vector, as in the paper.
    corpus = read_corpus(
        args.corpus, vocabulary, args.min_length, args.max_length, args.train_sentences + args.dev_sentences, args.seed
    )
    reconstruction = {"train": corpus[: args.train_sentences], "dev": corpus[args.train_sentences :]}
    padded = {split: pad(sentences, keyed_vectors, args.max_length) for split, sentences in reconstruction.items()}
    word_variance = float(np.concatenate([keyed_vectors[s] for s in reconstruction["train"]]).var(axis=0).mean())
    # Sentiment: every sentence, unknown words dropped, cut at max_length words.
    sentiment_tokens = {
        split: [[w for w in s if w in vocabulary][: args.max_length] or ["."] for s in tokens[split]]
        for split in ("train", "dev", "test")
    }
    sentiment_inputs = {split: pad(s, keyed_vectors, args.max_length) for split, s in sentiment_tokens.items()}
    print(
        f"GloVe {len(vocabulary)} words x {keyed_vectors.vector_size}; autoencoder train/dev sentences "
        f"{len(reconstruction['train'])}/{len(reconstruction['dev'])} (all words known, <= {args.max_length} words); "
        f"per-dimension variance of their word vectors {word_variance:.4f}",
        flush=True,
    )

    results = {
        "command": "python " + " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
        "settings": {key: value for key, value in vars(args).items() if key not in ("output", "plot")},
        "data": {
            "vocabulary": len(vocabulary),
            "word_dim": keyed_vectors.vector_size,
            "autoencoder_train_sentences": len(reconstruction["train"]),
            "autoencoder_dev_sentences": len(reconstruction["dev"]),
            "word_vector_variance": word_variance,
            "sentiment_sentences": {split: len(s) for split, s in sentiment_tokens.items()},
        },
        "sizes": args.sizes,
        "models": {},
        "paper": {
            "rae_dev_mse": {"300": 0.0208, "512": 0.0124, "1024": 0.0075, "2048": 0.0019},
            "lstm_dev_mse": {"300": 0.0274, "512": 0.0231, "1024": 0.0191},
        },
    }

    mean_glove = {
        split: np.stack([keyed_vectors[s].mean(axis=0) for s in sentiment_tokens[split]])
        for split in ("train", "dev", "test")
    }
    results["sentiment_mean_glove"] = linear_probe(mean_glove, labels, args.seed)
    print(f"sentiment, mean of GloVe vectors + logistic regression: {results['sentiment_mean_glove']}", flush=True)

    train_x, train_lengths = padded["train"]
    dev_x, dev_lengths = padded["dev"]
    for size in args.sizes:
        keras.utils.set_random_seed(args.seed)
        rae = RecursiveAutoencoder(keyed_vectors.vector_size, size, max_length=args.max_length)
        rae.build()
        units = matched_lstm_units(keyed_vectors.vector_size, size, rae.count_params())
        lstm = LSTMAutoencoder(keyed_vectors.vector_size, size, units=units, max_length=args.max_length)
        lstm.build()
        for name, model in (("rae", rae), ("lstm", lstm)):
            print(f"\n== {name.upper()} d_emb={size}: {model.count_params()} parameters", flush=True)
            model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), jit_compile=args.jit)
            tick = time.time()
            history = model.fit(
                (train_x, train_lengths),
                train_x,
                epochs=args.epochs,
                batch_size=args.batch_size,
                shuffle=True,
                verbose=2,
            )
            train_seconds = time.time() - tick
            # XLA would pay off over thousands of training steps, not one pass of evaluation.
            model.jit_compile = False
            dev_mse = float(model.evaluate((dev_x, dev_lengths), dev_x, batch_size=256, verbose=0))
            decoded = model.predict((dev_x, dev_lengths), batch_size=256, verbose=0)
            accuracy = reconstruction_accuracy(decoded, reconstruction["dev"], keyed_vectors, metric=args.metric)
            features = {split: encode_in_batches(model, *sentiment_inputs[split]) for split in ("train", "dev", "test")}
            sentiment = linear_probe(features, labels, args.seed)
            results["models"][f"{name}_{size}"] = {
                "parameters": int(model.count_params()),
                "lstm_units": units if name == "lstm" else None,
                "dev_mse": dev_mse,
                "dev_mse_over_word_variance": dev_mse / word_variance,
                "train_mse_last_epoch": float(history.history["loss"][-1]),
                "train_seconds": train_seconds,
                "accuracy": {
                    **accuracy,
                    "by_length": {str(length): value for length, value in accuracy["by_length"].items()},
                },
                "sentiment": sentiment,
            }
            print(
                f"{name.upper()} d_emb={size}: dev MSE {dev_mse:.4f}, words recovered "
                f"{accuracy['word_accuracy']:.3f}, sentences recovered {accuracy['sentence_accuracy']:.3f}, "
                f"sentiment test accuracy {sentiment['test']:.3f}, trained in {train_seconds:.0f} s",
                flush=True,
            )
        rae_entry, lstm_entry = results["models"][f"rae_{size}"], results["models"][f"lstm_{size}"]
        rae_entry["train_time_over_lstm"] = rae_entry["train_seconds"] / lstm_entry["train_seconds"]

    results["total_seconds"] = time.time() - started
    print("\n| model | d_emb | params | dev MSE | MSE/var | words recovered | sentences recovered | sentiment test |")
    print("|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        for name in ("rae", "lstm"):
            entry = results["models"][f"{name}_{size}"]
            print(
                f"| {name.upper()} | {size} | {entry['parameters']} | {entry['dev_mse']:.4f} | "
                f"{entry['dev_mse_over_word_variance']:.3f} | {entry['accuracy']['word_accuracy']:.3f} | "
                f"{entry['accuracy']['sentence_accuracy']:.3f} | {entry['sentiment']['test']:.3f} |"
            )
    print(f"| mean GloVe | - | - | - | - | - | - | {results['sentiment_mean_glove']['test']:.3f} |")
    print("\nwords recovered by sentence length (dev):")
    lengths = sorted({int(k) for entry in results["models"].values() for k in entry["accuracy"]["by_length"]})
    print("model      " + " ".join(f"{length:>5d}" for length in lengths))
    for key, entry in results["models"].items():
        by_length = entry["accuracy"]["by_length"]
        print(
            f"{key:<10} "
            + " ".join(f"{by_length[str(length)]['word_accuracy']:5.2f}" if str(length) in by_length else "    -" for length in lengths)
        )
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
    plot(results, args.plot)
    print(f"\nwrote {args.output} and {args.plot} in {results['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
