"""Do the classifier builders learn at their defaults? Test accuracy of `dan()` and
`lstm_classifier()` on the shared Rotten Tomatoes and TREC sets, trained as a Keras user would
(Adam at its default rate, batch 32, a few epochs), next to the paper's L2 of 0.005 and the
majority class. Writes benchmarks/results/classifier_defaults.json (or --output).

    python benchmarks/classifier_defaults.py [--data-dir ../shared/data] [--epochs 5] [--l2 0.005 1e-4 0]
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data-dir", default=os.path.join(HERE, "..", "..", "shared", "data"),
                        help="folder holding classify/rt_polarity and classify/trec")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs per model")
    parser.add_argument("--l2", type=float, nargs="+", default=[0.005], help="extra dan() l2 values to compare with the default")
    parser.add_argument("--datasets", nargs="+", default=["rt_polarity", "trec"], help="folders under classify/")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "classifier_defaults.json"), help="JSON result file")
    args = parser.parse_args(argv)
    if not os.path.isdir(os.path.join(args.data_dir, "classify")):
        print(f"skipping: {args.data_dir}/classify not found")
        return 0

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import inspect

    import keras
    import numpy as np

    from keras_compress.models import load_classification
    from keras_compress.models import dan, lstm_classifier

    default_l2 = inspect.signature(dan).parameters["l2"].default
    rows = []
    for name in args.datasets:
        data = load_classification(os.path.join(args.data_dir, "classify", name), sequence_length=40)
        (x_train, y_train), (x_dev, y_dev), (x_test, y_test) = (data["splits"][s] for s in ("train", "dev", "test"))
        vocab, classes = len(data["vocabulary"]), len(data["classes"])
        majority = float(np.mean(y_test == np.bincount(y_train).argmax()))
        configs = [("dan()", lambda: dan(vocab, classes))]
        configs += [(f"dan(l2={l2:g})", lambda l2=l2: dan(vocab, classes, l2=l2)) for l2 in args.l2 if l2 != default_l2]
        configs += [("lstm_classifier()", lambda: lstm_classifier(vocab, classes))]
        for label, build in configs:
            keras.utils.set_random_seed(0)
            model = build()
            model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
            start = time.perf_counter()
            history = model.fit(x_train, y_train, batch_size=32, epochs=args.epochs,
                                validation_data=(x_dev, y_dev), verbose=2)
            seconds = time.perf_counter() - start
            _, accuracy = model.evaluate(x_test, y_test, verbose=0)
            row = {"dataset": name, "model": label, "test_accuracy": round(float(accuracy), 4),
                   "dev_accuracy_per_epoch": [round(float(a), 4) for a in history.history["val_accuracy"]],
                   "majority_class": round(majority, 4), "train_seconds": round(seconds, 1)}
            rows.append(row)
            print(f"{name:>12} {label:<18} test {accuracy:.4f} (majority {majority:.4f}) {seconds:6.1f}s", flush=True)

    print(f"\n{'dataset':>12} {'model':<18} {'test acc':>8} {'majority':>8}")
    for row in rows:
        print(f"{row['dataset']:>12} {row['model']:<18} {row['test_accuracy']:8.4f} {row['majority_class']:8.4f}")
    result = {"command": "python benchmarks/classifier_defaults.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "dan_default_l2": default_l2, "epochs": args.epochs, "optimizer": "adam (lr 1e-3)", "batch_size": 32,
              "sequence_length": 40, "keras": keras.__version__, "backend": keras.backend.backend(), "rows": rows}
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as handle:
        json.dump(result, handle, indent=2)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
