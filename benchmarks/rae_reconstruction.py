"""Recursive autoencoder vs stacked LSTM autoencoder: reconstruction, sentiment, speed.

CPU-scale reproduction of Prato et al. 2019 ("Towards Lossless Encoding of
Sentences"; Prato's M.Sc. thesis, chapter 4): dev MSE against d_emb (Table 4.1),
words recovered against sentence length (Figure 4.2), sentiment from the root and the
span embeddings (section 4.3), on corpus sentences of 2-30 words (en25m) with GloVe
6B 50d instead of BookCorpus with GloVe 300d. d_emb keeps the paper's ratios to the
word size (300, 512, 1024, 2048 over 300: 1x, 1.7x, 3.4x, 6.8x -> 50, 85, 170, 340).

    nice -n 10 python benchmarks/rae_reconstruction.py --sizes 50 85 --output a.json
    nice -n 10 python benchmarks/rae_reconstruction.py --combine a.json b.json   # one JSON + plot
    python benchmarks/rae_reconstruction.py --sizes 32 --train-sentences 2000 --dev-sentences 200 --sentiment-limit 500  # smoke run

Training data is sampled from the whole corpus in one streamed pass
(`keras_compress.rae.sample_sentences`) and batched by length
(`SentenceBatches`). Writes benchmarks/results/rae_reconstruction.json (numbers and
command line) and benchmarks/results/rae_reconstruction.png.
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
sys.path.insert(0, ROOT)  # this checkout's keras_compress, not another installed one
DATA = os.path.join(ROOT, "..", "shared", "data")
# GloVe 6B splits clitics off ("does n't", "it 's"), so the tokenizer does too.
TOKEN = re.compile(r"\w+(?=n't)|n't|'\w+|\w+|[^\w\s]")
PAPER = {
    "rae_dev_mse": {"300": 0.0208, "512": 0.0124, "1024": 0.0075, "2048": 0.0019},
    "lstm_dev_mse": {"300": 0.0274, "512": 0.0231, "1024": 0.0191},
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.path.join(DATA, "classify", "rt_polarity"))
    parser.add_argument("--corpus", default=os.path.join(DATA, "corpus", "en25m.txt.gz"))
    parser.add_argument("--vectors", default=os.path.join(DATA, "vectors", "glove6b50d_100k.txt.gz"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 85, 170, 340], help="embedding sizes d_emb")
    parser.add_argument("--models", nargs="+", default=["rae", "lstm"], choices=["rae", "lstm"])
    parser.add_argument("--min-length", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=30, help="longest sentence, trained and evaluated")
    parser.add_argument("--train-sentences", type=int, default=200000, help="sentences sampled for training")
    parser.add_argument("--dev-sentences", type=int, default=3000, help="held-out sentences (dev MSE, accuracy)")
    parser.add_argument("--steps", type=int, default=3000, help="training batches per model")
    parser.add_argument("--minutes", type=float, default=None, help="also stop a model's training after this long")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--bucket-width", type=int, default=5)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--rae-learning-rate", type=float, default=None,
                        help="the RAE's (peak) learning rate when it differs from --learning-rate; with Adam the "
                        "best rate falls as d_emb grows (docs/rae.md)")
    parser.add_argument("--schedule", choices=["constant", "cosine"], default="constant",
                        help="learning rate: constant, or cosine decay to zero over --steps")
    parser.add_argument("--curriculum", nargs="+", default=[], metavar="WORDS:SHARE",
                        help="train the first SHARE of the steps on sentences of at most WORDS words, in order "
                        "(e.g. 10:0.3 20:0.3: 30%% on <=10 words, 30%% on <=20, the rest on all)")
    parser.add_argument("--metric", choices=["euclidean", "cosine"], default="euclidean", help="nearest-word distance")
    parser.add_argument("--sentiment-limit", type=int, default=None, help="rt_polarity sentences a split (all)")
    parser.add_argument("--log-every", type=int, default=100, help="batches between progress lines")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sentence-cache", help="text file of the sampled sentences (one a line): read when it "
                        "exists, written after sampling otherwise, so later runs skip the pass over the corpus")
    parser.add_argument("--training-log", help="result JSON of the run that trained the models of --save-dir: "
                        "a loaded model's training record (time, batches, loss curve) is copied from it")
    parser.add_argument("--save-dir", help="save each trained model here; a model already saved there is loaded, not trained")
    parser.add_argument("--checkpoint-dir", help="save each model's training state here (<model>_<d_emb>.npz: weights, "
                        "optimizer state, batch count, data position, loss record) every --checkpoint-every batches, "
                        "and write the partial results to --output; keep it outside the repository (docs/rae.md)")
    parser.add_argument("--checkpoint-every", type=int, default=500, help="batches between checkpoints")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoints of --checkpoint-dir "
                        "(a model without one trains from batch 0, and says so)")
    parser.add_argument("--init-from", metavar="DIR", help="start each model from the weights of the checkpoint "
                        "<model>_<d_emb>.npz in DIR (an earlier run's --checkpoint-dir): weights only, with a fresh "
                        "optimizer, schedule and data order (a warm restart); --resume still continues this run's "
                        "own checkpoint")
    parser.add_argument("--eval-every", type=int, default=0, help="also measure dev MSE and words recovered every "
                        "this many batches (0: only at the end); recorded as 'evals' in the partial results")
    parser.add_argument("--throughput-only", action="store_true", help="only time encode + decode of untrained models")
    parser.add_argument("--combine", nargs="+", help="merge these result JSONs into --output and --plot, then exit")
    parser.add_argument("--output", default=os.path.join(ROOT, "benchmarks", "results", "rae_reconstruction.json"))
    parser.add_argument("--plot", default=os.path.join(ROOT, "benchmarks", "results", "rae_reconstruction.png"))
    return parser.parse_args(argv)


def command_line():
    return "python " + " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])


def resume_command():
    """This run's command line with --resume: what continues it from its checkpoints."""
    line = command_line()
    return line if "--resume" in sys.argv[1:] else line + " --resume"


def cached_sample(args, vocabulary, sample_sentences):
    """The sentences sampled from the corpus, from `--sentence-cache` when it holds a sample of these settings."""
    count = 2 * (args.train_sentences + args.dev_sentences)
    header = f"# {os.path.basename(args.corpus)} count={count} lengths={args.min_length}-{args.max_length} seed={args.seed}"
    if args.sentence_cache and os.path.exists(args.sentence_cache):
        with open(args.sentence_cache, encoding="utf-8") as handle:
            first = handle.readline().rstrip("\n")
            if first == header:
                print(f"sentences from {args.sentence_cache}", flush=True)
                return [line.split() for line in handle]
        print(f"{args.sentence_cache} holds another sample ({first!r}); sampling again", flush=True)
    drawn = sample_sentences(
        args.corpus, count, vocabulary, min_length=args.min_length, max_length=args.max_length, seed=args.seed
    )
    if args.sentence_cache:
        with open(args.sentence_cache, "w", encoding="utf-8") as handle:
            handle.write(header + "\n")
            handle.writelines(" ".join(tokens) + "\n" for tokens in drawn)
    return drawn


def read_split(data_dir, split, limit):
    from keras_compress.models import read_tsv

    labels, texts = read_tsv(os.path.join(data_dir, f"{split}.tsv"))
    if limit is not None and limit < len(labels):
        # A seeded random subset: the files are sorted by label (train.tsv starts with
        # 1,946 positives in its first 2,000 rows), so the first rows would be one class.
        keep = np.sort(np.random.default_rng(0).permutation(len(labels))[:limit])
        labels, texts = [labels[i] for i in keep], [texts[i] for i in keep]
    return np.array(labels, dtype="float32"), [TOKEN.findall(text.lower()) for text in texts]


CHECKPOINT_FORMAT = 1
# Settings that define a training run: a checkpoint resumes only under the same ones.
RUN_SETTINGS = ("min_length", "max_length", "train_sentences", "dev_sentences", "steps", "batch_size",
                "bucket_width", "schedule", "curriculum", "seed")


class BatchStream:
    """Batches of one `SentenceBatches`, epoch after epoch, from a position that can be saved and restored.

    The position is the epoch, the index in the epoch's batch plan, the plan itself and
    the state of the generator that shuffles the next epoch, so a restored stream yields
    the batches the original would have yielded.
    """

    def __init__(self, batches):
        self.batches, self.epoch, self.index = batches, 0, 0

    def next(self):
        if self.index == len(self.batches):
            self.batches.on_epoch_end()
            self.epoch, self.index = self.epoch + 1, 0
        item = self.batches[self.index]
        self.index += 1
        return item

    def fingerprint(self):
        """SHA-256 of the sentences (word ids and lengths): a checkpoint resumes on the same data only."""
        import hashlib

        digest = hashlib.sha256(self.batches.lengths.tobytes())
        digest.update(self.batches.ids.tobytes())
        return digest.hexdigest()

    def state(self, key):
        """(JSON-able position, arrays) for a checkpoint."""
        plan = self.batches.plan
        arrays = {f"plan_widths_{key}": np.array([width for width, _ in plan], dtype="int32"),
                  f"plan_rows_{key}": np.stack([rows for _, rows in plan]).astype("int32")}
        meta = {"epoch": self.epoch, "index": self.index, "rng": self.batches.rng.bit_generator.state,
                "fingerprint": self.fingerprint()}
        return meta, arrays

    def restore(self, key, meta, arrays):
        if meta["fingerprint"] != self.fingerprint():
            raise SystemExit("the checkpoint was trained on other sentences (the sample differs); "
                             "use the run's --sentence-cache or another --checkpoint-dir")
        widths, rows = arrays[f"plan_widths_{key}"], arrays[f"plan_rows_{key}"].astype("int64")
        self.batches.plan = [(int(width), row) for width, row in zip(widths, rows)]
        self.batches.rng.bit_generator.state = meta["rng"]
        self.epoch, self.index = int(meta["epoch"]), int(meta["index"])


def _atomic_write(path, write):
    """Write `path` through `write(handle)` on a temporary file, then rename it over `path`."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temporary = f"{path}.tmp{os.getpid()}"
    try:
        with open(temporary, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_json(path, results):
    """Results JSON, written atomically: a reader never sees half a file."""
    _atomic_write(path, lambda handle: handle.write(json.dumps(results, indent=2).encode("utf-8")))


def save_checkpoint(path, model, streams, record, settings):
    """Weights, optimizer variables, step, data position and loss record of a run, in one `.npz`.

    Every variable is a plain array in the order of `model.variables` and
    `model.optimizer.variables`; nothing is pickled, so the file does not depend on
    module paths or class names. Written to a temporary file and renamed, so a run
    killed while saving keeps its previous checkpoint.
    """
    arrays = {}
    for prefix, variables in (("model", model.variables), ("optimizer", model.optimizer.variables)):
        for index, variable in enumerate(variables):
            arrays[f"{prefix}_{index:04d}"] = np.asarray(keras_numpy(variable))
    stream_meta = {}
    for key, stream in streams.items():
        stream_meta[str(key)], stream_arrays = stream.state(key)
        arrays.update(stream_arrays)
    arrays["losses"] = np.asarray(record["losses"], dtype="float64")
    meta = {"format": CHECKPOINT_FORMAT, "settings": settings, "streams": stream_meta,
            **{key: value for key, value in record.items() if key != "losses"},
            "model_variables": len(model.variables), "optimizer_variables": len(model.optimizer.variables)}
    arrays["meta"] = np.array(json.dumps(meta))
    _atomic_write(path, lambda handle: np.savez(handle, **arrays))


def keras_numpy(variable):
    from keras import ops

    return ops.convert_to_numpy(variable.value)


def _read_checkpoint(path):
    with np.load(path, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    meta = json.loads(str(arrays["meta"]))
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise SystemExit(f"{path}: checkpoint format {meta.get('format')!r}, this code reads {CHECKPOINT_FORMAT}")
    return arrays, meta


def _assign(path, prefix, variables, arrays, meta):
    """Assign the checkpoint's `prefix` ("model" or "optimizer") arrays to `variables`, checked
    one by one: a count or shape that differs is a one-line error naming the variable."""
    if meta[f"{prefix}_variables"] != len(variables):
        raise SystemExit(f"{path}: {meta[f'{prefix}_variables']} {prefix} variables saved, this model has "
                         f"{len(variables)}")
    for index, variable in enumerate(variables):
        value = arrays[f"{prefix}_{index:04d}"]
        if tuple(value.shape) != tuple(variable.shape):
            raise SystemExit(f"{path}: {prefix} variable {index} ({variable.path}) has shape {value.shape} "
                             f"saved, {tuple(variable.shape)} in this model")
        variable.assign(value)


def load_weights_from_checkpoint(path, model):
    """Only the model weights of a checkpoint (`--init-from`): the optimizer, step and data
    position stay fresh. Returns the batch the checkpoint was saved at."""
    if not os.path.exists(path):
        raise SystemExit(f"--init-from: no checkpoint at {path}")
    arrays, meta = _read_checkpoint(path)
    _assign(path, "model", model.variables, arrays, meta)
    return meta["seen"]


def load_checkpoint(path, model, streams, settings):
    """Restore what `save_checkpoint` wrote into a built, compiled `model` and its `streams`; return the record."""
    arrays, meta = _read_checkpoint(path)
    changed = [key for key in settings if meta["settings"].get(key) != settings[key]]
    if changed:
        raise SystemExit(f"{path} was made with other settings ("
                         + ", ".join(f"{key}={meta['settings'].get(key)!r}, now {settings[key]!r}" for key in changed)
                         + "); rerun with the checkpoint's settings or use another --checkpoint-dir")
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    for prefix, variables in (("model", model.variables), ("optimizer", model.optimizer.variables)):
        _assign(path, prefix, variables, arrays, meta)
    for key, stream in streams.items():
        stream.restore(key, meta["streams"][str(key)], arrays)
    record = {key: meta[key] for key in ("seen", "curve", "evals", "train_seconds", "first_batch_seconds")}
    record["losses"] = arrays["losses"].tolist()
    return record


class _Stop:
    """SIGINT / SIGTERM ask the training loop to save a checkpoint and stop after the current batch."""

    def __init__(self):
        self.requested = None

    def __enter__(self):
        import signal

        self.previous = {}
        for number in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[number] = signal.signal(number, self.request)
            except ValueError:  # not the main thread: no handler
                pass
        return self

    def request(self, number, frame):
        self.requested = number

    def __exit__(self, *exc):
        import signal

        for number, handler in self.previous.items():
            signal.signal(number, handler)


def train_batches(model, name, phases, streams, batch_size, log_every=100, minutes=None, checkpoint=None,
                  checkpoint_every=500, resume=False, settings=None, evaluate=None, eval_every=0, on_progress=None,
                  stop_at=None):
    """Train `model` on `phases` ((stream key, batches) in order) with one `train_on_batch` a batch.

    With `checkpoint` (a path), every `checkpoint_every` batches, at a stop and at the end
    the weights, optimizer state, batch count, data position and loss record are saved
    there; with `resume` a saved run continues from it, so the losses equal those of an
    uninterrupted run. `evaluate(model)` runs every `eval_every` batches (at a checkpoint);
    `on_progress(record)` after each checkpoint and evaluation (partial results). Stops
    early after `minutes` of training, at batch `stop_at`, or on SIGINT / SIGTERM (saving
    first). Returns the record: `seen` (batches), `losses` (each batch's loss), `curve`
    (mean loss every `log_every` batches), `evals`, `train_seconds`, `stopped` (why it
    ended before the last batch, or None).
    """
    settings = dict(settings or {})
    record = {"seen": 0, "losses": [], "curve": [], "evals": [], "train_seconds": 0.0, "first_batch_seconds": None}
    if checkpoint and os.path.exists(checkpoint):
        if not resume:
            raise SystemExit(f"{checkpoint} exists: pass --resume to continue that run, or remove it to start afresh")
        record = load_checkpoint(checkpoint, model, streams, settings)
        print(f"  {name}: resumed from {checkpoint} at batch {record['seen']}", flush=True)
    elif checkpoint and resume:
        print(f"  {name}: no checkpoint at {checkpoint}: training from batch 0", flush=True)
    total = sum(batches for _, batches in phases)
    started = time.time() - record["train_seconds"]
    tick, last_seen = time.time(), record["seen"]
    deadline = None if minutes is None else time.time() + 60 * minutes

    def save():
        record["train_seconds"] = time.time() - started
        if checkpoint:
            save_checkpoint(checkpoint, model, streams, record, settings)
        if on_progress:
            on_progress(record)

    record["stopped"] = None
    with _Stop() as stop:
        while record["seen"] < total:
            # The phase of the next batch: the curriculum's phases, in order.
            before, key = record["seen"], None
            for key, batches in phases:
                if before < batches:
                    break
                before -= batches
            (vectors, lengths), target = streams[key].next()
            loss = model.train_on_batch((vectors, lengths), target, return_dict=True)["loss"]
            record["losses"].append(float(loss))
            record["seen"] += 1
            seen = record["seen"]
            if record["first_batch_seconds"] is None:
                record["first_batch_seconds"] = time.time() - started
                print(f"  {name}: first batch (graph tracing) took {record['first_batch_seconds']:.0f} s", flush=True)
                if deadline is not None:  # the clock starts after the first batch: tracing is not training
                    deadline = time.time() + 60 * minutes
            if seen % log_every == 0:
                now = time.time()
                recent = float(np.mean(record["losses"][-log_every:]))
                record["curve"].append({"batch": seen, "loss": recent, "seconds": now - started})
                rate = (seen - last_seen) * batch_size / max(now - tick, 1e-9)
                print(f"  {name} batch {seen}: loss {recent:.4f}, {rate:.0f} sentences/s", flush=True)
                tick, last_seen = now, seen
            if evaluate is not None and eval_every and seen % eval_every == 0 and seen < total:
                record["evals"].append({"batch": seen, **evaluate(model)})
                save()
            elif checkpoint and checkpoint_every and seen % checkpoint_every == 0:
                save()
            if stop.requested is not None:
                record["stopped"] = f"signal {stop.requested}"
            elif deadline is not None and time.time() > deadline:
                record["stopped"] = f"{minutes} minutes"
            elif stop_at is not None and seen >= stop_at:
                record["stopped"] = f"batch {stop_at}"
            if record["stopped"]:
                break
    save()
    if record["stopped"]:
        print(f"  {name}: stopped at batch {record['seen']} of {total} ({record['stopped']})"
              + (f"; checkpoint {checkpoint}" if checkpoint else ""), flush=True)
    return record


def evaluate_reconstruction(model, sentences, keyed_vectors, batch_size, bucket_width, metric):
    """Dev MSE over real positions and words recovered (nearest over the whole vocabulary)."""
    from keras import ops

    from keras_compress.rae import SentenceBatches, reconstruction_accuracy

    batches = SentenceBatches(sentences, keyed_vectors, batch_size=batch_size, bucket_width=bucket_width, shuffle=False)
    squared, count, per_length = 0.0, 0, {}
    words_right = sentences_right = 0
    seen = set()
    for index in range(len(batches)):
        width, rows = batches.plan[index]
        (vectors, lengths), _ = batches[index]
        fresh = [position for position, row in enumerate(rows) if row not in seen]  # topped-up rows repeat
        seen.update(rows.tolist())
        if not fresh:
            continue
        decoded = ops.convert_to_numpy(model.predict_on_batch((vectors, lengths)))[fresh]
        vectors, lengths = vectors[fresh], lengths[fresh]
        mask = np.arange(width)[None, :] < lengths[:, None]
        squared += float(np.square(decoded - vectors)[mask].sum())
        count += int(mask.sum()) * vectors.shape[-1]
        report = reconstruction_accuracy(decoded, [sentences[rows[p]] for p in fresh], keyed_vectors, metric=metric)
        for length, entry in report["by_length"].items():
            counts = per_length.setdefault(length, [0, 0, 0])
            counts[0] += entry["word_accuracy"] * length * entry["sentences"]
            counts[1] += entry["sentence_accuracy"] * entry["sentences"]
            counts[2] += entry["sentences"]
    words = sum(length * counts[2] for length, counts in per_length.items())
    by_length = {
        str(length): {
            "word_accuracy": counts[0] / (length * counts[2]),
            "sentence_accuracy": counts[1] / counts[2],
            "sentences": counts[2],
        }
        for length, counts in sorted(per_length.items())
    }
    up_to_10 = [(length, counts) for length, counts in per_length.items() if length <= 10]
    return {
        "dev_mse": squared / count,
        "word_accuracy": sum(counts[0] for counts in per_length.values()) / words,
        "word_accuracy_up_to_10": sum(c[0] for _, c in up_to_10) / max(sum(n * c[2] for n, c in up_to_10), 1),
        "sentence_accuracy": sum(counts[1] for counts in per_length.values()) / len(sentences),
        "by_length": by_length,
    }


def sentence_features(model, vectors, lengths, batch_size=128):
    """Root embedding, and (RAE) the mean and max over every span embedding of each sentence."""
    import keras
    from keras import ops

    class Features(keras.Model):
        def __init__(self, autoencoder):
            super().__init__()
            self.autoencoder = autoencoder

        def call(self, inputs):
            vectors, lengths = self.autoencoder._split_inputs(inputs)
            if not hasattr(self.autoencoder, "_encode_spans"):
                return {"root": self.autoencoder._encode(vectors, lengths)}
            # spans[b, t, i] embeds words i..i+t: valid when i + t < length (zero elsewhere).
            root, spans = self.autoencoder._encode_spans(vectors, lengths)
            width = vectors.shape[1]
            span_end = ops.reshape(ops.arange(width), (1, -1, 1)) + ops.reshape(ops.arange(width), (1, 1, -1))
            valid = ops.expand_dims(ops.cast(span_end < ops.reshape(lengths, (-1, 1, 1)), spans.dtype), -1)
            count = ops.cast(lengths * (lengths + 1) // 2, root.dtype)
            total = ops.sum(spans, axis=(1, 2))
            largest = ops.max(spans - 1e9 * (1.0 - valid), axis=(1, 2))
            return {"root": root, "span_mean": total / ops.expand_dims(count, -1), "span_max": largest}

    return Features(model).predict((vectors, lengths), batch_size=batch_size, verbose=0)


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


def throughput(models, sentences, keyed_vectors, batch_size, bucket_width, repeats=5):
    """Encode + decode sentences/s of each model on the same bucketed batches, side by side.

    The models take turns, one pass over all batches each, `repeats` times, and each
    keeps its fastest pass: on a shared machine a load change then hits both models
    instead of the one that happened to run during it.
    """
    from keras_compress.rae import SentenceBatches

    batches = SentenceBatches(sentences, keyed_vectors, batch_size=batch_size, bucket_width=bucket_width, shuffle=False)
    inputs = [batches[index][0] for index in range(len(batches))]
    count = sum(len(lengths) for _, lengths in inputs)
    for model in models.values():
        for vectors, lengths in inputs:  # trace every width before timing
            model.predict_on_batch((vectors, lengths))
    best = {}
    for _ in range(repeats):
        for name, model in models.items():
            tick = time.time()
            for vectors, lengths in inputs:
                model.predict_on_batch((vectors, lengths))
            best[name] = min(best.get(name, float("inf")), time.time() - tick)
    return {name: count / elapsed for name, elapsed in best.items()}


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, size in enumerate(results["sizes"]):
        for model, style in (("rae", "-"), ("lstm", "--")):
            entry = results["models"].get(f"{model}_{size}")
            if entry is None:
                continue
            by_length = entry["accuracy"]["by_length"]
            lengths = sorted(int(length) for length in by_length)
            left.plot(
                lengths,
                [by_length[str(length)]["word_accuracy"] for length in lengths],
                style,
                color=colors[index % len(colors)],
                marker="o" if model == "rae" else "x",
                markersize=3,
                label=f"{model.upper()} d_emb={size}",
            )
    left.set_xlabel("sentence length (words)")
    left.set_ylabel(f"dev words recovered (nearest GloVe word, {results['settings']['metric']})")
    left.set_ylim(0, 1.02)
    left.set_xlim(1, results["settings"]["max_length"] + 1)
    left.legend(fontsize=8)
    left.set_title("Reconstruction accuracy by length (cf. thesis Fig. 4.2)")
    for model, marker in (("rae", "o"), ("lstm", "x")):
        sizes = [size for size in results["sizes"] if f"{model}_{size}" in results["models"]]
        right.plot(sizes, [results["models"][f"{model}_{size}"]["dev_mse"] for size in sizes], marker=marker, label=model.upper())
    right.set_xscale("log", base=2)
    right.set_xlabel("d_emb")
    right.set_ylabel("dev MSE")
    right.set_title("Dev MSE (cf. thesis Table 4.1)")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def print_table(results):
    print("\n| model | d_emb | params | dev MSE | MSE/var | words | words (<=10) | sentences | root sent. | span-mean sent. | span-max sent. | enc+dec sent/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for size in results["sizes"]:
        for name in ("rae", "lstm"):
            entry = results["models"].get(f"{name}_{size}")
            if entry is None:
                continue
            sentiment = entry["sentiment"]
            spans = [f"{sentiment[key]['test']:.3f}" if key in sentiment else "-" for key in ("span_mean", "span_max")]
            print(
                f"| {name.upper()} | {size} | {entry['parameters']} | {entry['dev_mse']:.4f} | "
                f"{entry['dev_mse_over_word_variance']:.3f} | {entry['accuracy']['word_accuracy']:.3f} | "
                f"{entry['accuracy']['word_accuracy_up_to_10']:.3f} | {entry['accuracy']['sentence_accuracy']:.3f} | "
                f"{sentiment['root']['test']:.3f} | {spans[0]} | {spans[1]} | {entry.get('sentences_per_second', float('nan')):.0f} |"
            )
    extra = results.get("sentiment_baselines", {})
    for key, value in extra.items():
        print(f"| {key} | | | | | | | | {value:.3f} | | | |")


def combine(paths, output, plot_path):
    merged = None
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            part = json.load(handle)
        if merged is None:
            merged = {**part, "commands": [], "sizes": []}
        merged["commands"].append(part["command"])
        merged["sizes"] = sorted(set(merged["sizes"]) | set(part["sizes"]))
        merged["models"].update(part["models"])
    merged["command"] = command_line()
    with open(output, "w", encoding="utf-8") as handle:
        json.dump(merged, handle, indent=2)
    plot(merged, plot_path)
    print_table(merged)
    print(f"\nwrote {output} and {plot_path}")
    return 0


def main(argv=None):
    args = parse_args(argv)
    if args.combine:
        return combine(args.combine, args.output, args.plot)
    for path in (args.vectors, args.corpus, os.path.join(args.data_dir, "train.tsv")):
        if not os.path.exists(path):
            print(f"skipping: {path} not found (see ../shared/data/README.md)")
            return 0

    import keras
    from gensim.models import KeyedVectors

    from keras_compress.rae import LSTMAutoencoder, RecursiveAutoencoder, SentenceBatches, matched_lstm_units, sample_sentences

    started = time.time()
    keyed_vectors = KeyedVectors.load_word2vec_format(args.vectors)
    vocabulary = keyed_vectors.key_to_index

    # One streamed pass over the corpus, every word known; duplicates dropped so
    # train and dev never share a sentence.
    if args.throughput_only:
        sentences = sample_sentences(
            args.corpus, args.dev_sentences, vocabulary, args.min_length, args.max_length, seed=args.seed
        )
        results = {"command": command_line(), "settings": {k: v for k, v in vars(args).items() if k != "combine"},
                   "backend": keras.backend.backend(), "sizes": args.sizes, "throughput": {}}
        for size in args.sizes:
            rae = RecursiveAutoencoder(keyed_vectors.vector_size, size, max_length=args.max_length)
            rae.build()
            units = matched_lstm_units(keyed_vectors.vector_size, size, rae.count_params())
            lstm = LSTMAutoencoder(keyed_vectors.vector_size, size, units=units, max_length=args.max_length)
            lstm.build()
            rates = throughput({"rae": rae, "lstm": lstm}, sentences, keyed_vectors, 128, args.bucket_width)
            results["throughput"][str(size)] = {**rates, "rae_over_lstm": rates["rae"] / rates["lstm"],
                                                "parameters": {"rae": rae.count_params(), "lstm": lstm.count_params()}}
            print(f"d_emb={size}: encode+decode sentences/s {rates}", flush=True)
        with open(args.output, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
        return 0
    drawn = cached_sample(args, vocabulary, sample_sentences)
    unique = list({" ".join(tokens): tokens for tokens in drawn}.values())
    order = np.random.default_rng(args.seed).permutation(len(unique))
    dev = [unique[i] for i in order[: args.dev_sentences]]
    train = [unique[i] for i in order[args.dev_sentences : args.dev_sentences + args.train_sentences]]
    word_variance = float(np.concatenate([keyed_vectors[s] for s in dev]).var(axis=0).mean())
    print(
        f"GloVe {len(vocabulary)} x {keyed_vectors.vector_size}; {len(train)} train / {len(dev)} dev sentences of "
        f"{args.min_length}-{args.max_length} words ({time.time() - started:.0f} s); dev word-vector variance "
        f"{word_variance:.4f}",
        flush=True,
    )

    labels, sentiment_inputs = {}, {}
    sentiment_width = args.max_length
    for split in ("train", "dev", "test"):
        labels[split], tokens = read_split(args.data_dir, split, args.sentiment_limit)
        kept = [[w for w in s if w in vocabulary][:sentiment_width] or ["."] for s in tokens]
        vectors = np.zeros((len(kept), sentiment_width, keyed_vectors.vector_size), dtype="float32")
        for row, sentence in enumerate(kept):
            vectors[row, : len(sentence)] = keyed_vectors[sentence]
        sentiment_inputs[split] = (vectors, np.array([len(s) for s in kept], dtype="int32"))
    mean_glove = {
        split: vectors.sum(axis=1) / lengths[:, None] for split, (vectors, lengths) in sentiment_inputs.items()
    }

    results = {
        "command": command_line(),
        "settings": {key: value for key, value in vars(args).items() if key not in ("output", "plot", "combine")},
        "backend": keras.backend.backend(),
        "data": {
            "vocabulary": len(vocabulary),
            "word_dim": keyed_vectors.vector_size,
            "train_sentences": len(train),
            "dev_sentences": len(dev),
            "train_sentences_seen_per_model": args.steps * args.batch_size,
            "dev_word_vector_variance": word_variance,
            "sentiment_sentences": {split: len(v[1]) for split, v in sentiment_inputs.items()},
        },
        "sizes": args.sizes,
        "models": {},
        "paper": PAPER,
        "sentiment_baselines": {"mean GloVe + logistic regression": linear_probe(mean_glove, labels, args.seed)["test"]},
    }
    dan = os.path.join(ROOT, "benchmarks", "results", "embedding_compression.json")
    if os.path.exists(dan):
        with open(dan, encoding="utf-8") as handle:
            runs = json.load(handle)["experiments"].get("rt_polarity_dan", {})
        for row in runs.get("rows", []):
            if row.get("method") == "uncompressed":
                results["sentiment_baselines"]["DAN, end to end (embedding_compression.json)"] = row["test_accuracy_keras"]

    # Length curriculum (--curriculum): (longest sentence, batches) phases, the last on every sentence.
    phases = []  # (longest sentence, batches)
    for spec in args.curriculum:
        longest, share = spec.split(":")
        phases.append((min(int(longest), args.max_length), int(round(float(share) * args.steps))))
    phases.append((args.max_length, args.steps - sum(batches for _, batches in phases)))
    subsets = {longest: [s for s in train if len(s) <= longest] for longest, _ in phases}

    def fresh_streams():
        # Each model its own streams, all seeded alike: every model sees the same batches in the same order.
        return {
            longest: BatchStream(SentenceBatches(sentences, keyed_vectors, batch_size=args.batch_size,
                                                 bucket_width=args.bucket_width, seed=args.seed))
            for longest, sentences in subsets.items()
        }

    def evaluate(model):
        accuracy = evaluate_reconstruction(model, dev, keyed_vectors, 256, args.bucket_width, args.metric)
        accuracy["dev_mse_over_word_variance"] = accuracy["dev_mse"] / word_variance
        return accuracy

    for size in args.sizes:
        keras.utils.set_random_seed(args.seed)
        rae = RecursiveAutoencoder(keyed_vectors.vector_size, size, max_length=args.max_length)
        rae.build()
        units = matched_lstm_units(keyed_vectors.vector_size, size, rae.count_params())
        lstm = LSTMAutoencoder(keyed_vectors.vector_size, size, units=units, max_length=args.max_length)
        lstm.build()
        trained = {}
        for name, model in (("rae", rae), ("lstm", lstm)):
            if name not in args.models:
                continue
            print(f"\n== {name.upper()} d_emb={size}: {model.count_params()} parameters", flush=True)
            peak = args.rae_learning_rate if name == "rae" and args.rae_learning_rate else args.learning_rate
            rate = peak
            if args.schedule == "cosine":
                rate = keras.optimizers.schedules.CosineDecay(peak, args.steps)
            model.compile(optimizer=keras.optimizers.Adam(rate))
            saved = os.path.join(args.save_dir, f"{name}_{size}.keras") if args.save_dir else None
            checkpoint = os.path.join(args.checkpoint_dir, f"{name}_{size}.npz") if args.checkpoint_dir else None
            key = f"{name}_{size}"
            tick = time.time()
            if saved and os.path.exists(saved):
                model = keras.saving.load_model(saved)
                print(f"loaded {saved} instead of training", flush=True)
                progress = {"seen": 0, "curve": [], "evals": [], "train_seconds": None, "first_batch_seconds": None}
            else:
                if len(phases) > 1:
                    print(f"  {name} {size}: curriculum (longest sentence, batches) {phases}", flush=True)
                settings = {**{k: getattr(args, k) for k in RUN_SETTINGS}, "model": name, "size": size,
                            "peak_learning_rate": peak, "vectors": os.path.basename(args.vectors)}
                if args.init_from:
                    source = os.path.join(args.init_from, f"{name}_{size}.npz")
                    settings["init_from"] = os.path.abspath(source)
                    at = load_weights_from_checkpoint(source, model)
                    print(f"  {name} {size}: weights from {source} (batch {at} of that run); fresh optimizer, "
                          f"schedule and data order", flush=True)

                def partial(record, key=key, peak=peak, units=units, checkpoint=checkpoint):
                    results["models"][key] = {
                        "status": f"partial: {record['seen']} of {args.steps} batches",
                        "parameters": int(model.count_params()), "lstm_units": units if name == "lstm" else None,
                        "learning_rate": peak, "train_batches": record["seen"],
                        "train_seconds": record["train_seconds"], "first_batch_seconds": record["first_batch_seconds"],
                        "loss_curve": record["curve"], "evals": record["evals"], "checkpoint": checkpoint,
                        "resume_command": resume_command(),
                    }
                    write_json(args.output, results)

                progress = train_batches(
                    model, f"{name} {size}", phases, fresh_streams(), args.batch_size, log_every=args.log_every,
                    minutes=args.minutes, checkpoint=checkpoint, checkpoint_every=args.checkpoint_every,
                    resume=args.resume, settings=settings, evaluate=evaluate if args.eval_every else None,
                    eval_every=args.eval_every, on_progress=partial if (checkpoint or args.eval_every) else None,
                )
                if progress["stopped"] and progress["stopped"].startswith("signal"):
                    print(f"partial results in {args.output}; continue with: {resume_command()}", flush=True)
                    return 1
                if saved:
                    os.makedirs(args.save_dir, exist_ok=True)
                    model.save(saved)
            train_seconds = time.time() - tick
            accuracy = evaluate_reconstruction(model, dev, keyed_vectors, 256, args.bucket_width, args.metric)
            sentiment = {}
            features = {split: sentence_features(model, *sentiment_inputs[split]) for split in ("train", "dev", "test")}
            for kind in features["train"]:
                sentiment[kind] = linear_probe({s: features[s][kind] for s in features}, labels, args.seed)
            record = {"train_seconds": progress["train_seconds"] or train_seconds, "train_batches": progress["seen"],
                      "first_batch_seconds": progress["first_batch_seconds"], "loss_curve": progress["curve"],
                      "evals": progress["evals"]}
            if saved and progress["seen"] == 0 and args.training_log:
                with open(args.training_log, encoding="utf-8") as handle:
                    logged = json.load(handle)["models"][f"{name}_{size}"]
                record = {key: logged.get(key) for key in record}
                record["training_log"] = args.training_log
            results["models"][f"{name}_{size}"] = {
                "parameters": int(model.count_params()),
                "lstm_units": units if name == "lstm" else None,
                "learning_rate": peak,
                "dev_mse": accuracy.pop("dev_mse"),
                "status": "loaded from --save-dir" if progress["seen"] == 0 else "done"
                if record["train_batches"] >= args.steps else f"stopped at batch {record['train_batches']}",
                **record,
                "accuracy": accuracy,
                "sentiment": sentiment,
            }
            entry = results["models"][f"{name}_{size}"]
            entry["dev_mse_over_word_variance"] = entry["dev_mse"] / word_variance
            trained[name] = model
            print(
                f"{name.upper()} d_emb={size}: dev MSE {entry['dev_mse']:.4f}, words recovered "
                f"{accuracy['word_accuracy']:.3f} (<=10 words: {accuracy['word_accuracy_up_to_10']:.3f}), sentences "
                f"{accuracy['sentence_accuracy']:.3f}, sentiment test "
                + ", ".join(f"{kind} {value['test']:.3f}" for kind, value in sentiment.items())
                + f"; trained in {entry['train_seconds']:.0f} s",
                flush=True,
            )
        rates = throughput(trained, dev[:1024], keyed_vectors, 128, args.bucket_width)
        for name, rate in rates.items():
            results["models"][f"{name}_{size}"]["sentences_per_second"] = rate
        if len(rates) == 2:
            results["models"][f"rae_{size}"]["speed_over_lstm"] = rates["rae"] / rates["lstm"]
        print(f"encode+decode sentences/s, same dev batches: {rates}", flush=True)
        write_json(args.output, results)  # keep what is done so far

    results["total_seconds"] = time.time() - started
    print_table(results)
    write_json(args.output, results)
    plot(results, args.plot)
    print(f"\nwrote {args.output} and {args.plot} in {results['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
