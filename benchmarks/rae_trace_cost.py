"""First-batch (graph tracing) and per-batch training time of the recursive autoencoder by width.

The recursion of `keras_compress.rae.RecursiveAutoencoder` once ran as a Python
loop unrolled over the padded width, so its TensorFlow graph had O(width^2) ops and
the first batch at width 30 took minutes; it is now a symbolic loop over levels. This
script measures both costs at a few widths, one fresh process a width (so each first
batch pays its own tracing), and writes benchmarks/results/rae_trace_cost.json.

    nice -n 10 python benchmarks/rae_trace_cost.py --widths 10 20 30
    nice -n 10 python benchmarks/rae_trace_cost.py --widths 10 20 30 --code /tmp/old_checkout --label before

`--code` imports `keras_compress` from another checkout (e.g. `git archive` of an
older commit), so the old and the new code are timed by the same script.
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=[10, 20, 30])
    parser.add_argument("--embedding-dim", type=int, default=50)
    parser.add_argument("--word-dim", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=30)
    parser.add_argument("--steps", type=int, default=10, help="timed batches after the first")
    parser.add_argument("--code", default=ROOT, help="checkout whose keras_compress is timed")
    parser.add_argument("--label", default="after", help="key of this run in the JSON")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed a width")
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "results", "rae_trace_cost.json"))
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: time one width
    parser.add_argument("--parallel", action="store_true", help="time the widths in parallel processes (CPU time stays fair)")
    return parser.parse_args(argv)


def time_one_width(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, os.path.abspath(args.code))
    import keras
    import numpy as np

    from keras_compress.rae import RecursiveAutoencoder

    width = args.one
    keras.utils.set_random_seed(0)
    model = RecursiveAutoencoder(args.word_dim, args.embedding_dim, max_length=args.max_length)
    model.build()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(args.batch_size, width, args.word_dim)).astype("float32")
    lengths = rng.integers(max(1, width - 4), width + 1, size=args.batch_size).astype("int32")
    # CPU seconds of this process (all its threads) as well as wall clock: on a
    # loaded machine the wall clock mostly measures the other jobs.
    tick, cpu = time.perf_counter(), time.process_time()
    first_loss = float(model.train_on_batch((vectors, lengths), vectors))
    first, first_cpu = time.perf_counter() - tick, time.process_time() - cpu
    tick, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        loss = float(model.train_on_batch((vectors, lengths), vectors))
    per_batch, per_batch_cpu = (time.perf_counter() - tick) / args.steps, (time.process_time() - cpu) / args.steps
    print(json.dumps({"width": width, "first_batch_seconds": first, "seconds_per_batch": per_batch,
                      "first_batch_cpu_seconds": first_cpu, "cpu_seconds_per_batch": per_batch_cpu,
                      "first_loss": first_loss, "last_loss": loss, "backend": keras.backend.backend(),
                      "keras_compress": os.path.dirname(sys.modules["keras_compress"].__file__)}))


def main(argv=None):
    args = parse_args(argv)
    if args.one is not None:
        time_one_width(args)
        return 0
    results = {}
    command = "python " + " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])
    run = {"command": command, "settings": {k: v for k, v in vars(args).items() if k not in ("output", "one")},
           "load": os.getloadavg(), "widths": {}}
    def child(width):
        command = [sys.executable, os.path.abspath(__file__), "--one", str(width)] + [
            item for key in ("embedding_dim", "word_dim", "batch_size", "max_length", "steps", "code")
            for item in (f"--{key.replace('_', '-')}", str(getattr(args, key)))
        ]
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), time.time()

    running = {width: child(width) for width in args.widths} if args.parallel else {}
    for width in args.widths:
        process, tick = running.pop(width) if width in running else child(width)
        try:
            stdout, stderr = process.communicate(timeout=max(1.0, args.timeout - (time.time() - tick)))
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            entry = {"width": width, "timed_out_after_seconds": args.timeout}
        else:
            if process.returncode != 0:
                raise SystemExit(f"width {width} failed:\n{stderr[-3000:]}")
            entry = json.loads(stdout.strip().splitlines()[-1])
        entry["process_seconds"] = time.time() - tick
        run["widths"][str(width)] = entry
        print(f"{args.label} width {width}: {entry}", flush=True)
        if os.path.exists(args.output):  # another run (e.g. the other backend, side by side) may have written
            with open(args.output, encoding="utf-8") as handle:
                results = json.load(handle)
        results[args.label] = run
        with open(args.output, "w", encoding="utf-8") as handle:  # keep what is done so far
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
