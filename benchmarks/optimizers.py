"""Paper Table 1: Adam, Adagrad, CLR and CALR for DAN-RAND and an LSTM, mean and std over seeds.

Acharya et al., "Online Embedding Compression for Text Classification using Low Rank Matrix
Factorization" (AAAI 2019), Section 3.2 (CALR) and Table 1. CLR is Smith (2017), triangular.
Both cyclic schedules drive Adam here (as the authors' fine-tuning code does); each epoch holds
one full triangle (step_size = half an epoch) because the runs are only a few epochs long.
Also draws the schedules as in the paper's Figure 2.

Data: ../shared/data/classify/{rt_polarity,trec}; the LSTM starts from GloVe 6B 50d (the only
pretrained vectors available here; the paper used 300-d).

    nice -n 10 python benchmarks/optimizers.py
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from embedding_compression import add_common_arguments, build_classifier, load_dataset, missing_inputs  # noqa: E402

OPTIMIZERS = ("adam", "adagrad", "clr", "calr")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--adam-lr", type=float, default=1e-3)
    parser.add_argument("--adagrad-lr", type=float, default=1e-2)
    parser.add_argument("--max-lr", type=float, default=3e-3, help="upper bound of CLR and CALR")
    parser.add_argument("--out", default="benchmarks/results/optimizers.json")
    return parser.parse_args(argv)


def make_optimizer(name, args, steps_per_epoch):
    from keras_compress.training import CALR, CyclicLR

    half_cycle = max(1, steps_per_epoch // 2)
    if name == "adam":
        return keras.optimizers.Adam(args.adam_lr)
    if name == "adagrad":
        return keras.optimizers.Adagrad(args.adagrad_lr)
    if name == "clr":
        return keras.optimizers.Adam(CyclicLR(args.max_lr / 30, args.max_lr, step_size=half_cycle))
    if name == "calr":
        return keras.optimizers.Adam(
            CALR(args.max_lr, decay=0.1, step_size=half_cycle, steps_per_epoch=steps_per_epoch)
        )
    raise ValueError(f"unknown optimizer {name!r}; choose from {OPTIMIZERS}")


def plot_schedules(args, steps_per_epoch, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keras_compress.training import plot_schedule

    figure, ax = plt.subplots(figsize=(8, 3.5))
    steps = steps_per_epoch * max(args.epochs, 4)
    for name in ("clr", "calr"):
        schedule = make_optimizer(name, args, steps_per_epoch)._learning_rate
        plot_schedule(schedule, steps, ax=ax, label=name.upper(), steps_per_epoch=steps_per_epoch)
    ax.set_title("CLR (triangular) and CALR learning rates (paper Figure 2)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv=None):
    args = parse_args(argv)
    datasets = [name for name in args.datasets.split(",") if name]
    models = [name for name in args.models.split(",") if name]
    optimizers = [name for name in args.optimizers.split(",") if name]
    missing = missing_inputs(args)
    if missing:
        print(f"skipping: missing data {missing}")
        return 0
    print(
        f"scale: {args.epochs} epochs, {args.seeds} seeds, batch {args.batch_size}, DAN embedding "
        f"{args.embedding_dim} hidden {args.hidden} L2 {args.l2}, LSTM units {args.lstm_units} on GloVe 50d; "
        f"Adam {args.adam_lr}, Adagrad {args.adagrad_lr}, CLR/CALR on Adam with max {args.max_lr}"
    )
    started = time.time()
    results = {"command": " ".join(["python"] + sys.argv), "settings": vars(args), "accuracy": {}}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    for dataset in datasets:
        data, glove = load_dataset(args, dataset)
        (x_train, y_train), (x_test, y_test) = data["splits"]["train"], data["splits"]["test"]
        steps_per_epoch = -(-len(x_train) // args.batch_size)
        if dataset == datasets[0]:
            plot_schedules(args, steps_per_epoch, os.path.splitext(args.out)[0] + "_schedules.png")
        for kind in models:
            for optimizer_name in optimizers:
                scores = []
                for seed in range(args.seeds):
                    keras.utils.set_random_seed(seed)
                    model = build_classifier(kind, args, data, glove)
                    model.compile(make_optimizer(optimizer_name, args, steps_per_epoch), "sparse_categorical_crossentropy")
                    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=0)
                    predicted = model.predict(x_test, batch_size=512, verbose=0).argmax(-1)
                    scores.append(float(np.mean(predicted == y_test)))
                key = f"{dataset}/{'DAN-RAND' if kind == 'dan' else 'LSTM'}/{optimizer_name}"
                results["accuracy"][key] = {"seeds": scores, "mean": float(np.mean(scores)), "std": float(np.std(scores))}
                print(f"{key:<32} {np.mean(scores):.4f} +- {np.std(scores):.4f}  {scores}  ({time.time() - started:.0f} s)", flush=True)
                results["elapsed_s"] = round(time.time() - started, 1)
                with open(args.out, "w") as handle:
                    json.dump(results, handle, indent=1)

    print(f"\nTest accuracy, mean +- std over {args.seeds} seeds ({args.epochs} epochs)")
    print(f"{'dataset / model':<24}" + "".join(f"{name.upper():>18}" for name in optimizers))
    for dataset in datasets:
        for kind in models:
            label = f"{dataset}/{'DAN-RAND' if kind == 'dan' else 'LSTM'}"
            cells = [results["accuracy"][f"{label}/{name}"] for name in optimizers]
            print(f"{label:<24}" + "".join(f"{c['mean']:>11.4f}+-{c['std']:.4f}" for c in cells))
    print(f"\nwrote {args.out} ({results['elapsed_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
