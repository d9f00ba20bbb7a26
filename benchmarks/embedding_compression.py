"""Paper Tables 2 and 4 and Figure 3: online SVD embedding compression against its baselines.

Acharya et al., "Online Embedding Compression for Text Classification using Low Rank Matrix
Factorization" (AAAI 2019). For each reduction R of the embedding's parameters:
  * online SVD: train the uncompressed model E1 epochs, factorize its embedding by SVD inside the
    same optimizer state (keras_compress.EmbeddingCompression), train E2 more epochs;
  * offline SVD: factorize the *initial* embedding (random for DAN-RAND, GloVe for the LSTM)
    and train the factorized model E1 + E2 epochs;
  * post-training quantization of the uncompressed model (trained E1 + E2 epochs): TFLite
    float16 (16-bit), TFLite dynamic range and Keras ``model.quantize("int8")`` (8-bit).
Reported: parameters, .keras and .tflite bytes, test accuracy (Keras and TFLite), TFLite
batch-1 latency (one thread, same run), dev accuracy against mini-batches after compression
(Figure 3), and which placement of the singular values recovers fastest.

Data: ../shared/data/classify/{rt_polarity,trec}; GloVe 6B 50d (100k words) is the only
pretrained vector set available here, so the LSTM uses 50-d GloVe (the paper used 300-d).

    nice -n 10 python benchmarks/embedding_compression.py
"""

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

SEQUENCE_LENGTH = {"rt_polarity": 40, "trec": 20}


def add_common_arguments(parser):
    """Data and model arguments shared with benchmarks/optimizers.py."""
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--datasets", default="rt_polarity,trec")
    parser.add_argument("--models", default="dan,lstm", help="dan (DAN-RAND) and/or lstm (GloVe)")
    parser.add_argument("--embedding-dim", type=int, default=300, help="DAN-RAND embedding size")
    parser.add_argument("--hidden", default="1024,512", help="DAN hidden sizes")
    parser.add_argument(
        "--l2", type=float, default=1e-4,
        help="DAN L2 weight; the paper's 0.005 with Keras's L2 (sum of squares) drowns the loss "
        "of a 1024x512 layer and the DAN predicts one class after 3 epochs on rt_polarity",
    )
    parser.add_argument("--lstm-units", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=20000)


def missing_inputs(args):
    """Data files the run needs that are not there (the benchmark then skips)."""
    needed = [os.path.join(args.data_dir, "classify", name, "train.tsv") for name in args.datasets.split(",") if name]
    if "lstm" in args.models:
        needed.append(glove_path(args))
    return [path for path in needed if not os.path.exists(path)]


def glove_path(args):
    return os.path.join(args.data_dir, "vectors", "glove6b50d_100k.txt.gz")


def load_dataset(args, dataset):
    """Padded id arrays of one dataset and, when an LSTM is asked for, its GloVe matrix."""
    from keras_compress.models import load_classification, pretrained_matrix

    data = load_classification(
        os.path.join(args.data_dir, "classify", dataset),
        max_tokens=args.max_tokens,
        sequence_length=SEQUENCE_LENGTH.get(dataset, 40),
    )
    glove = None
    if "lstm" in args.models:
        glove, found = pretrained_matrix(data["vocabulary"], glove_path(args))
        print(f"  GloVe 50d covers {found}/{len(data['vocabulary'])} words of {dataset}")
    return data, glove


def build_classifier(kind, args, data, glove):
    """DAN-RAND or the GloVe LSTM for ``data``, uncompiled."""
    from keras_compress.models import dan, lstm_classifier

    vocab, classes = len(data["vocabulary"]), len(data["classes"])
    length = data["splits"]["train"][0].shape[1]
    if kind == "dan":
        hidden = tuple(int(h) for h in args.hidden.split(","))
        return dan(vocab, classes, embedding_dim=args.embedding_dim, hidden=hidden, l2=args.l2, sequence_length=length)
    return lstm_classifier(vocab, classes, embeddings=glove, units=args.lstm_units, sequence_length=length)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--reductions", default="0,50,75,90,95", help="percent of embedding parameters removed")
    parser.add_argument("--epochs", type=int, default=2, help="E1: epochs before compression")
    parser.add_argument("--finetune-epochs", type=int, default=1, help="E2: epochs after compression")
    parser.add_argument("--eval-every", type=int, default=20, help="mini-batches between Figure-3 points")
    parser.add_argument("--timing-rows", type=int, default=300)
    parser.add_argument("--placement-reduction", type=int, default=90)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/embedding_compression.json")
    return parser.parse_args(argv)


class RecoveryCurve(keras.callbacks.Callback):
    """Dev accuracy every few mini-batches from the start of epoch ``start_epoch`` (Figure 3)."""

    def __init__(self, start_epoch, x, y, every):
        super().__init__()
        self.start_epoch, self.x, self.y, self.every = start_epoch, x, y, every
        self.points, self.batches, self.active = [], 0, False

    def _record(self):
        # predict() leaves the compiled metrics alone, unlike evaluate() inside fit().
        predicted = self.model.predict(self.x, batch_size=512, verbose=0).argmax(-1)
        self.points.append((self.batches, float(np.mean(predicted == self.y))))

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.start_epoch:
            self.active = True
            self._record()

    def on_train_batch_end(self, batch, logs=None):
        if self.active:
            self.batches += 1
            if self.batches % self.every == 0:
                self._record()


def build(kind, args, data, glove, seed):
    keras.utils.set_random_seed(seed)
    model = build_classifier(kind, args, data, glove)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def tflite_latency_ms(path, rows, rounds=5):
    """Batch-1 invoke time of a .tflite file on one thread, ms per example.

    The best of ``rounds`` passes over ``rows``: the machine is shared, and the minimum is the
    least disturbed estimate.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=1)
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], (1,) + rows.shape[1:])
    interpreter.allocate_tensors()
    batches = [row[None].astype(detail["dtype"]) for row in rows]
    for batch in batches[:20]:  # warm-up: XNNPACK packs weights on the first invokes
        interpreter.set_tensor(detail["index"], batch)
        interpreter.invoke()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for batch in batches:
            interpreter.set_tensor(detail["index"], batch)
            interpreter.invoke()
        best = min(best, (time.perf_counter() - start) / len(batches))
    return 1000 * best


def model_bytes(model, path):
    """Size of the model alone as a .keras file (no optimizer state: fit() would add 2x for Adam)."""
    bare = keras.Model.from_config(model.get_config())
    bare.set_weights(model.get_weights())
    bare.save(path)
    return os.path.getsize(path)


def accuracy(model, x, y):
    return float(np.mean(model.predict(x, batch_size=512, verbose=0).argmax(-1) == y))


def measure(name, reduction, model, x_test, y_test, workdir, args, quantization=None):
    """One table row: sizes, Keras and TFLite accuracy, TFLite batch-1 latency."""
    from keras_compress.export import export_tflite, run_tflite

    keras_path = os.path.join(workdir, f"{name}-{reduction}.keras")
    tflite_path = os.path.join(workdir, f"{name}-{reduction}.tflite")
    # Batch 1, static: the phone setting, and what LSTMs need to convert with builtin ops.
    export = export_tflite(
        model, tflite_path, quantization=quantization, representative_data=x_test[:64], batch_size=1
    )
    with open(tflite_path, "rb") as handle:
        lite = run_tflite(handle.read(), [x_test], batch_size=1)[0]
    return {
        "method": name,
        "reduction": reduction,
        "params": int(model.count_params()),
        "keras_bytes": model_bytes(model, keras_path),
        "tflite_bytes": export.size_bytes,
        "test_accuracy_keras": accuracy(model, x_test, y_test),
        "test_accuracy_tflite": float(np.mean(lite.argmax(-1) == y_test)),
        "tflite_max_abs_diff": export.max_abs_diff,
        "latency_ms": tflite_latency_ms(tflite_path, x_test[: args.timing_rows]),
    }


def run_one(dataset, kind, args, reductions, workdir, data, glove):
    from keras_compress import compress_embeddings
    from keras_compress.training import EmbeddingCompression

    (x_train, y_train), (x_dev, y_dev), (x_test, y_test) = (data["splits"][s] for s in ("train", "dev", "test"))
    e1, e2 = args.epochs, args.finetune_epochs
    fit = dict(batch_size=args.batch_size, verbose=0)

    # The uncompressed model after E1 epochs, saved with its optimizer state.
    base = build(kind, args, data, glove, args.seed)
    base.fit(x_train, y_train, epochs=e1, **fit)
    base_path = os.path.join(workdir, "base.keras")
    base.save(base_path)

    rows, curves = [], {}
    reference = keras.models.load_model(base_path)
    curve = RecoveryCurve(e1, x_dev, y_dev, args.eval_every)
    reference.fit(x_train, y_train, initial_epoch=e1, epochs=e1 + e2, callbacks=[curve], **fit)
    curves["uncompressed"] = curve.points
    rows.append(measure("uncompressed", 0, reference, x_test, y_test, workdir, args))
    # Post-training 16- and 8-bit baselines of the uncompressed model.
    rows.append(measure("ptq_float16_tflite", None, reference, x_test, y_test, workdir, args, quantization="float16"))
    rows.append(measure("ptq_int8_tflite", None, reference, x_test, y_test, workdir, args, quantization="dynamic"))
    # Keras's own 8-bit post-training quantization (int8 weights, per-channel scales).
    quantized = keras.models.load_model(base_path)
    quantized.set_weights(reference.get_weights())
    quantized.quantize("int8")
    rows.append({
        "method": "ptq_int8_keras", "reduction": None, "params": int(reference.count_params()),
        "keras_bytes": model_bytes(quantized, os.path.join(workdir, "keras-int8.keras")), "tflite_bytes": None,
        "test_accuracy_keras": accuracy(quantized, x_test, y_test), "test_accuracy_tflite": None,
        "tflite_max_abs_diff": None, "latency_ms": None,
    })

    for reduction in reductions:
        if reduction == 0:
            continue
        online = keras.models.load_model(base_path)
        curve = RecoveryCurve(e1, x_dev, y_dev, args.eval_every)
        online.fit(x_train, y_train, initial_epoch=e1, epochs=e1 + e2,
                   callbacks=[EmbeddingCompression(e1, reduction / 100, verbose=0), curve], **fit)
        curves[f"online_{reduction}"] = curve.points
        rows.append(measure("online_svd", reduction, online, x_test, y_test, workdir, args))

        offline = build(kind, args, data, glove, args.seed)
        offline = compress_embeddings(offline, reduction / 100)
        offline.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
        offline.fit(x_train, y_train, epochs=e1 + e2, **fit)
        rows.append(measure("offline_svd", reduction, offline, x_test, y_test, workdir, args))
        print(f"  R={reduction}%: online {rows[-2]['test_accuracy_keras']:.4f}, offline {rows[-1]['test_accuracy_keras']:.4f}")

    placement = {}
    for singular_values in ("first", "second", "split"):
        model = keras.models.load_model(base_path)
        curve = RecoveryCurve(e1, x_dev, y_dev, args.eval_every)
        compress = EmbeddingCompression(e1, args.placement_reduction / 100, singular_values=singular_values, verbose=0)
        model.fit(x_train, y_train, initial_epoch=e1, epochs=e1 + e2, callbacks=[compress, curve], **fit)
        placement[singular_values] = curve.points
    return rows, curves, placement


def plot(curves, title, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(7, 4))
    for label, points in curves.items():
        if points:
            batches, accuracy = zip(*points)
            ax.plot(batches, accuracy, marker=".", label=label)
    ax.set_xlabel("mini-batches after compression")
    ax.set_ylabel("dev accuracy")
    ax.set_title(title)
    ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def print_table(title, rows):
    print(f"\n{title}")
    header = f"{'method':<20}{'R%':>4}{'params':>10}{'.keras KB':>11}{'.tflite KB':>11}{'acc keras':>10}{'acc tflite':>11}{'ms/ex':>8}"
    print(header)
    print("-" * len(header))
    def cell(value, width, form):
        return f"{'-':>{width}}" if value is None else f"{value:>{width}{form}}"

    for row in rows:
        print(
            f"{row['method']:<20}{cell(row['reduction'], 4, '')}{row['params']:>10,}{row['keras_bytes'] / 1024:>11.1f}"
            + cell(None if row["tflite_bytes"] is None else row["tflite_bytes"] / 1024, 11, ".1f")
            + cell(row["test_accuracy_keras"], 10, ".4f")
            + cell(row["test_accuracy_tflite"], 11, ".4f")
            + cell(row["latency_ms"], 8, ".3f")
        )


def main(argv=None):
    args = parse_args(argv)
    datasets = [name for name in args.datasets.split(",") if name]
    missing = missing_inputs(args)
    if missing:
        print(f"skipping: missing data {missing}")
        return 0
    reductions = [int(r) for r in args.reductions.split(",")]
    print(
        f"scale: E1={args.epochs} epochs before compression, E2={args.finetune_epochs} after, batch {args.batch_size}, "
        f"DAN embedding {args.embedding_dim} hidden {args.hidden} L2 {args.l2}, LSTM units {args.lstm_units} on GloVe 50d, "
        f"seed {args.seed} (the paper trains to convergence; this is a scaled-down single-seed run)"
    )
    started = time.time()
    results = {
        "command": " ".join(["python"] + sys.argv),
        "settings": vars(args),
        "experiments": {},
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    for dataset in datasets:
        data, glove = load_dataset(args, dataset)
        for kind in args.models.split(","):
            print(f"\n== {dataset} / {kind} ==", flush=True)
            with tempfile.TemporaryDirectory() as workdir:
                rows, curves, placement = run_one(dataset, kind, args, reductions, workdir, data, glove)
            key = f"{dataset}_{kind}"
            results["experiments"][key] = {"rows": rows, "curves": curves, "placement": placement}
            print_table(f"{dataset} / {'DAN-RAND' if kind == 'dan' else 'LSTM (GloVe 50d)'}", rows)
            stem = os.path.splitext(args.out)[0]
            plot(curves, f"{key}: recovery after compression (Figure 3)", f"{stem}_{key}_recovery.png")
            plot(
                {f"S in {name} factor": points for name, points in placement.items()},
                f"{key}: singular-value placement at R={args.placement_reduction}%",
                f"{stem}_{key}_placement.png",
            )
            # Recovery speed = mean dev accuracy over the points after compression (area under
            # the Figure-3 curve); the first point, before any step, is the same for all three.
            summary = {name: float(np.mean([a for _, a in points[1:]])) for name, points in placement.items()}
            results["experiments"][key]["placement_mean_dev_accuracy"] = summary
            for name, points in placement.items():
                print(f"  placement {name:<6}: mean {summary[name]:.4f}; dev accuracy " + " ".join(f"{a:.3f}" for _, a in points))
            results["elapsed_s"] = round(time.time() - started, 1)
            with open(args.out, "w") as handle:
                json.dump(results, handle, indent=1)
    print(f"\nwrote {args.out} ({results['elapsed_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
