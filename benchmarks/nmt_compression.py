"""Prato 2019 (M.Sc. thesis, ch. 5, Table 5.1), scaled to 2 shared CPU cores: Transformers (built on
keras-hub layers) for English->Spanish compressed by 8-bit quantization-aware training and knowledge
distillation, deployed as on-device translators and compared with CTranslate2.

Default configurations: base fp32 (also the teacher), base 8-bit QAT, small KD + 8-bit (the
others of the thesis table: --configs). Every configuration trains from scratch for the same
number of epochs on the same subset. Reported per configuration:

- dev perplexity (teacher forcing, no label smoothing);
- test BLEU (sacrebleu, beam 4, GNMT length penalty 0.6) of the Keras model (cached decoding),
  of the LiteRT translator (`keras_compress.nmt.translator`) run two ways by `Translator` in
  `ai_edge_litert` -- its `translate` signature (the whole beam search inside the .tflite, one
  call per sentence) and the NumPy search over its `encode` / `decode_step` signatures -- in
  float32 and dynamic-range (int8 weights) files, plus full int8 (step signatures only), and of
  CTranslate2 int8 (our weights through `keras_compress.nmt.ctranslate2_export`); every engine
  generates at most min(2 * (source subwords + 1) + 10, max_length + 10) tokens;
- how often LiteRT gives exactly Keras's translation, at beam 1 and 4;
- batch-1 latency per sentence, median and p90, at beam 1 and 4, on 1 thread, for Keras (cached),
  LiteRT and CTranslate2 int8, measured side by side in this process, plus the decoding of before
  this change (Keras beam search re-running the whole decoder every step, no cache) on the same
  weights;
- the .tflite size and the peak RSS of a fresh process that loads only the runtime (LiteRT or
  CTranslate2) and translates the latency sentences.

Trained weights are kept in --models-dir, so `--stage train` and `--stage evaluate` can run as
separate processes (and a rerun evaluates without retraining). Data: ../shared/data/mt/en-es
(Bible verses, KJV -> Reina-Valera 1909).

    nice -n 10 python benchmarks/nmt_compression.py

`--latency-only` skips BLEU and times, side by side and interleaved, the LiteRT `translate`
signature (float32, dynamic-range), the step-signature Translator (float32, dynamic-range, full
int8), CTranslate2 int8 and Keras (cached), and writes benchmarks/results/nmt_latency.json (the
ratio LiteRT / CTranslate2 per engine and beam). `--compare-quantizers` reports BLEU, weight
bytes and exportability of each configuration and of Keras's own `model.quantize` modes
(benchmarks/results/nmt_quantizers.json):

    PYTHONPATH=. nice -n 10 python benchmarks/nmt_compression.py --latency-only --configs "base fp32"
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from side_by_side import (  # noqa: E402
    clean_process_timing,
    ctranslate2_translate,
    quantiles,
    search_limit,
    time_side_by_side,
)

from keras_compress.export import flatbuffer  # noqa: E402
from keras_compress.nmt import decoding, search  # noqa: E402
from keras_compress.quantization import quantize_model, quantized_weights, strip  # noqa: E402
from keras_compress.training import Distiller  # noqa: E402
from keras_compress.nmt.post_training import calibration_options  # noqa: E402
from keras_compress.nmt import (  # noqa: E402
    SmoothedSparseCategoricalCrossentropy,
    Translator,
    corpus_bleu,
    export_ctranslate2,
    export_translator,
    load_tokenizer,
    make_examples,
    perplexity,
    read_parallel,
    train_tokenizer,
    transformer,
    translate,
)

# name, preset, bits (None = float), distilled from the base fp32 teacher
CONFIGURATIONS = [
    ("base fp32", "base", None, False),
    ("base 8-bit QAT", "base", 8, False),
    ("base 4-bit QAT", "base", 4, False),
    ("base 2-bit QAT", "base", 2, False),
    ("base KD + 8-bit", "base", 8, True),
    ("base KD + 4-bit", "base", 4, True),
    ("base KD + 2-bit", "base", 2, True),
    ("base fp32 fine-tuned", "base", None, False),
    ("medium fp32", "medium", None, False),
    ("medium KD", "medium", None, True),
    ("medium KD + 8-bit", "medium", 8, True),
    ("small fp32", "small", None, False),
    ("small KD", "small", None, True),
    ("small KD + 8-bit", "small", 8, True),
    ("small 8-bit QAT", "small", 8, False),
    ("small 4-bit QAT", "small", 4, False),
    ("small 2-bit QAT", "small", 2, False),
    ("small KD + 4-bit", "small", 4, True),
    ("small KD + 2-bit", "small", 2, True),
    ("small fp32 fine-tuned", "small", None, False),
]
# "<preset> fp32 fine-tuned": the trained float model trained --qat-from-float more epochs in
# float, the control for the QAT fine-tuning (same epochs, no quantization)
DEFAULT_CONFIGS = "base fp32,base 8-bit QAT,small KD + 8-bit"


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data/mt/en-es")
    parser.add_argument("--vocab-size", type=int, default=2000, help="shared sentencepiece vocabulary")
    parser.add_argument("--max-length", type=int, default=32, help="most subwords per side")
    parser.add_argument("--train-pairs", type=int, default=12000, help="training pairs kept (after the length filter)")
    parser.add_argument("--dev-pairs", type=int, default=300)
    parser.add_argument("--test-sentences", type=int, default=200)
    parser.add_argument("--latency-sentences", type=int, default=30)
    parser.add_argument("--calibration-sentences", type=int, default=32,
                        help="dev sentences that calibrate the full-int8 translator's activation "
                             "ranges (and check every export against Keras)")
    parser.add_argument("--baseline-sentences", type=int, default=10,
                        help="sentences timed with the uncached Keras beam search of before")
    parser.add_argument("--layers", type=int, default=2, help="encoder and decoder layers (thesis: 6)")
    parser.add_argument("--scale", type=float, default=0.25, help="d_model and d_ff factor (thesis: 1)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--beam-size", type=int, default=4)
    parser.add_argument("--length-penalty", type=float, default=0.6)
    parser.add_argument("--stop", default="all", choices=("all", "best"),
                        help="when the beam search ends a sentence, for Keras and the LiteRT "
                             "files: every hypothesis ended (all) or the best one (best: "
                             "CTranslate2's rule at its default patience 1)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--qat-from-float", type=int, default=0, metavar="EPOCHS",
                        help="train non-distilled QAT configurations by fine-tuning the float "
                             "model of the same preset (e.g. base fp32) for EPOCHS epochs "
                             "instead of from scratch (0: from scratch, as the thesis)")
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help="comma-separated names, or all")
    parser.add_argument("--stage", choices=["train", "evaluate", "all"], default="all")
    parser.add_argument("--models-dir", default="/tmp/nmt_compression_models",
                        help="trained weights and the tokenizer, reused when present")
    parser.add_argument("--seed", type=int, default=0,
                        help="the training-pair sample and every from-scratch training")
    parser.add_argument("--fine-tune-seed", type=int, default=None, metavar="SEED",
                        help="with --qat-from-float: seeds only the fine-tuning epochs (shuffling, "
                             "dropout, QAT initialization) of the float model, keeping --seed's "
                             "data and the trained float starting point in --models-dir "
                             "(default: --seed)")
    parser.add_argument("--distill-from-float", action="store_true",
                        help="with --qat-from-float, the KD + QAT configurations also fine-tune "
                             "the trained float model of their size (distilled from base fp32) "
                             "instead of training from scratch")
    parser.add_argument("--compare-quantizers", action="store_true",
                        help="BLEU, weight bytes and export of each configuration and of Keras's "
                             "model.quantize modes (int8, int4, gptq, awq) applied to the float "
                             "ones; writes benchmarks/results/nmt_quantizers.json")
    parser.add_argument("--significance", type=int, default=0, metavar="SAMPLES",
                        help="with --compare-quantizers: paired bootstrap (sacrebleu, SAMPLES "
                             "resamples) of each row's BLEU against the float32 row of its size "
                             "(the 'fp32 fine-tuned' control when compared): 95%% confidence "
                             "interval and p-value per row")
    parser.add_argument("--latency-repeats", type=int, default=3, metavar="PASSES",
                        help="passes over the latency sentences of each LiteRT translate file "
                             "timed alone against CTranslate2 int8 (the headline ratio)")
    parser.add_argument("--latency-only", action="store_true",
                        help="skip BLEU: time the LiteRT translator (float32, dynamic-range and "
                             "int8 files), CTranslate2 int8 and Keras side by side (weights from "
                             "--models-dir when there, else trained as set)")
    parser.add_argument("--integer-only", action="store_true",
                        help="the integer-only translators (int16x8 / int8x8: ai-edge-quantizer's "
                             "int16 / int8 activations, int8 weights; TensorFlow's full int8) "
                             "against float32 and "
                             "dynamic-range: operators, BLEU, agreement, latency ratios; writes "
                             "benchmarks/results/nmt_integer_only.json")
    parser.add_argument("--output", default=None, help="default benchmarks/results/"
                        "nmt_compression.json, or nmt_latency.json with --latency-only")
    parser.add_argument("--note", action="append", default=[],
                        help="a line added to the JSON's notes (e.g. what else loaded the "
                             "machine); repeatable")
    args = parser.parse_args(argv)
    if args.fine_tune_seed is not None and not args.qat_from_float:
        parser.error("--fine-tune-seed seeds the --qat-from-float fine-tuning: it needs "
                     "--qat-from-float")
    return args


def load_data(args):
    sources, targets = read_parallel(args.data_dir, "train")
    prefix = os.path.join(args.models_dir, f"spm{args.vocab_size}")
    if os.path.exists(prefix + ".model"):
        tokenizer = load_tokenizer(prefix + ".model")
    else:
        started = time.time()
        tokenizer = train_tokenizer(sources + targets, prefix, args.vocab_size)
        print(f"sentencepiece ({args.vocab_size} shared subwords) trained in "
              f"{time.time() - started:.0f}s", flush=True)
    (train_x, train_y), kept = make_examples(tokenizer, sources, targets, args.max_length)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(train_y))[: args.train_pairs]
    train = ([array[order] for array in train_x], train_y[order])
    dev_sources, dev_targets = read_parallel(args.data_dir, "dev")
    (dev_x, dev_y), _ = make_examples(tokenizer, dev_sources, dev_targets, args.max_length)
    dev = ([array[: args.dev_pairs] for array in dev_x], dev_y[: args.dev_pairs])
    test_sources, test_targets = read_parallel(args.data_dir, "test")
    _, test_kept = make_examples(tokenizer, test_sources, test_targets, args.max_length)
    test_kept = test_kept[: args.test_sentences]
    test = ([test_sources[i] for i in test_kept], [test_targets[i] for i in test_kept])
    counts = {"train_pairs_fitting": int(len(kept)), "train_pairs_used": int(len(train[1])),
              "train_total": len(sources), "dev_pairs": int(len(dev[1])),
              "test_sentences": len(test[0]), "test_total": len(test_sources)}
    print("data:", counts, flush=True)
    return tokenizer, prefix + ".model", train, dev, test, counts


def weight_bits(model, bits):
    """Sum of weights x bits: quantized weights at `bits`, everything else at 32 (call it
    before `strip`, which returns the layers to float in place)."""
    quantized = {id(variable) for _, variable, _ in quantized_weights(model)}
    return sum(int(np.prod(variable.shape)) * (bits if id(variable) in quantized else 32)
               for variable in model.weights)


def build(args, preset, vocab_size, bits):
    model = transformer(vocab_size, preset, num_layers=args.layers, scale=args.scale, dropout=0.1,
                        name=f"transformer_{preset}")
    return quantize_model(model, bits=bits) if bits else model


def train(args, model, train_data, dev_data, teacher=None):
    optimizer = keras.optimizers.Adam(args.learning_rate, beta_2=0.98, clipnorm=1.0)
    if teacher is None:
        trainer = model
        trainer.compile(optimizer, SmoothedSparseCategoricalCrossentropy(0.1))
    else:
        trainer = Distiller(teacher, model, temperature=args.temperature, soft_weight=0.5,
                            hard_weight=0.5, ignore_class=0)
        trainer.compile(optimizer)
    started = time.time()
    trainer.fit(train_data[0], train_data[1], epochs=args.epochs, batch_size=args.batch_size,
                validation_data=dev_data, verbose=2)
    return time.time() - started


def trained_model(args, name, preset, bits, distilled, vocab_size, train_data, dev, teacher):
    """Train, or load the weights a previous run of the same settings saved."""
    slug = name.replace(" ", "_").replace("+", "").replace("__", "_")
    path = os.path.join(args.models_dir, f"{slug}.weights.h5")
    info_path = path + ".json"
    float_path = os.path.join(args.models_dir, f"{preset}_fp32.weights.h5")
    fine_tuned_float = name.endswith("fp32 fine-tuned")
    if fine_tuned_float and not args.qat_from_float:
        raise SystemExit(f"{name!r} is the control of QAT fine-tuning: it needs --qat-from-float")
    fine_tune = ((bits or fine_tuned_float) and args.qat_from_float and not os.path.exists(path)
                 and os.path.exists(float_path)
                 and (not distilled or (args.distill_from_float and teacher is not None)))
    keras.utils.set_random_seed(args.seed if not fine_tune or args.fine_tune_seed is None
                                else args.fine_tune_seed)
    model = build(args, preset, vocab_size, bits)
    if fine_tune:
        # Quantization-aware fine-tuning of the trained float model (Jacob et al. 2018 sec. 3),
        # distilled from the base fp32 teacher for the KD configurations; without bits, the
        # float control of the same fine-tuning
        model = transformer(vocab_size, preset, num_layers=args.layers, scale=args.scale,
                            dropout=0.1, name=f"transformer_{preset}")
        model.load_weights(float_path)
        if bits:
            quantize_model(model, bits=bits)
        epochs, args.epochs = args.epochs, args.qat_from_float
        try:
            seconds = train(args, model, train_data, dev, teacher if distilled else None)
        finally:
            args.epochs = epochs
        model.save_weights(path)
        with open(info_path, "w") as handle:
            training = (f"{'QAT ' if bits else 'float '}{'+ KD ' if distilled else ''}"
                        f"fine-tuning of {preset} fp32 for {args.qat_from_float} epochs")
            json.dump({"train_seconds": seconds, "settings": vars(args), "training": training},
                      handle)
        return model, seconds, False, training
    if os.path.exists(path) and os.path.exists(info_path):
        model.load_weights(path)
        with open(info_path) as handle:
            info = json.load(handle)
        return model, info["train_seconds"], True, info.get("training", "from scratch")
    seconds = train(args, model, train_data, dev, teacher if distilled else None)
    model.save_weights(path)
    with open(info_path, "w") as handle:
        json.dump({"train_seconds": seconds, "settings": vars(args)}, handle)
    return model, seconds, False, "from scratch"


def time_each(function, sentences, warmup=2):
    """Wall-clock and CPU (process_time: every thread of this process) seconds per sentence.
    On the shared, overloaded benchmark machine the wall clock mostly measures waiting for a
    core; the CPU time is the work each engine does."""
    for sentence in sentences[:warmup]:
        function(sentence)
    wall, cpu = [], []
    for sentence in sentences:
        started, started_cpu = time.perf_counter(), time.process_time()
        function(sentence)
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return {"wall": quantiles(wall), "cpu": quantiles(cpu)}


def uncached_beam_search(model, source, beam_size, length_penalty, max_length):
    """The decoding of before this change, on the same weights: every step re-runs the whole
    decoder on the prefix (no key/value cache), compiled once per prefix length."""
    import tensorflow as tf

    logits_of = tf.function(lambda source, prefix: decoding.uncached_logits(model, source, prefix),
                            reduce_retracing=True)
    first = logits_of(source, np.full((len(source), 1), 2, "int32")).numpy()

    def step(tokens, index, beams, state):
        sources, prefix = state
        prefix = np.concatenate([prefix, tokens], axis=1)
        return logits_of(sources, prefix).numpy(), (sources, prefix)

    def reorder(state, rows):
        return state[0][rows], state[1][rows]

    state = (source, np.full((len(source), 1), 2, "int32"))
    return search.beam_search(first, state, step, reorder, beam_size, length_penalty, max_length)


RSS_SCRIPT = r"""
import json, os, sys
runtime, path, tokenizer, beam, sentences = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), json.loads(sys.argv[5])
if runtime.startswith("litert"):
    sys.path.insert(0, sys.argv[7])
    from side_by_side import standalone_translator
    Translator = standalone_translator(sys.argv[6])  # no Keras, no TensorFlow
    if runtime == "litert-graph":  # the file's translate signature: its beam size
        Translator(path, tokenizer, num_threads=1).translate(sentences)
    else:
        Translator(path, tokenizer, num_threads=1, search="steps").translate(sentences, beam_size=beam)
else:
    import ctranslate2, sentencepiece
    sp = sentencepiece.SentencePieceProcessor(model_file=tokenizer)
    translator = ctranslate2.Translator(path, intra_threads=1, inter_threads=1)
    for sentence in sentences:
        translator.translate_batch([sp.encode(sentence, out_type=str) + ["</s>"]], beam_size=beam,
                                   length_penalty=0.6, min_decoding_length=0)
# VmHWM, not ru_maxrss: ru_maxrss keeps the forking parent's size across exec
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def peak_rss_mb(runtime, path, tokenizer_path, beam_size, sentences):
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(decoding.__file__)))  # keras_compress/
    output = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, runtime, path, tokenizer_path, str(beam_size),
         json.dumps(sentences), package_dir, os.path.dirname(os.path.abspath(__file__))],
        capture_output=True, text=True, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return round(int(output.stdout.strip().splitlines()[-1]) / 1024, 1)


def head_to_head_latency(args, slug, ct2_path, tokenizer_path, timed, in_process=None):
    """Each LiteRT `translate` file against CTranslate2 int8 with nothing else in the process,
    as a phone app or a server runs one engine: per mode and beam, (1) the two interleaved
    sentence by sentence (alternating order) in a fresh process that loads only the two runtimes,
    sentencepiece and NumPy, --latency-repeats passes; (2) each alone in a process of its own,
    --latency-repeats passes each, alternating which goes first. `in_process` ({engine:
    f(sentences, beam)} of this process, TensorFlow loaded and run): (3) the same pairs
    interleaved here, the instrument of session 9's full benchmark. Returns {engine_beam<b>:
    {instrument: CPU times of both and ours / CTranslate2's}}."""
    results = {}
    for b in sorted({1, args.beam_size}):
        for label in [mode or "float32" for mode in LITERT_MODES if mode != "int8"]:
            engine = f"translate_{label}"
            path = litert_path(args, slug, label, b)
            settings = {"tokenizer": tokenizer_path, "beam": b, "alpha": args.length_penalty,
                        "target_length": args.max_length + 10, "sentences": timed}
            cpu, outputs = clean_process_timing(settings, {engine: path}, ct2_path,
                                                args.latency_repeats)
            instruments = {"clean_process_interleaved": (cpu[engine], cpu["ctranslate2_int8"])}
            separate = {engine: [], "ctranslate2_int8": []}
            for repeat in range(args.latency_repeats):
                for one in ([engine, "ctranslate2_int8"] if repeat % 2 == 0
                            else ["ctranslate2_int8", engine]):
                    separate[one] += clean_process_timing(
                        settings, {engine: path} if one == engine else {},
                        ct2_path if one != engine else None)[0][one]
            instruments["separate_processes"] = (separate[engine], separate["ctranslate2_int8"])
            if in_process is not None:
                pair = {name: (lambda s, f=in_process[name], b=b: f([s], b)[0])
                        for name in (engine, "ctranslate2_int8")}
                _, _, seconds = time_side_by_side(pair, timed, repeats=args.latency_repeats,
                                                  alternate=True)
                instruments["benchmark_process_interleaved"] = (seconds[engine],
                                                                seconds["ctranslate2_int8"])
            row = {}
            for instrument, (ours, theirs) in instruments.items():
                ours, theirs = quantiles(ours), quantiles(theirs)
                row[instrument] = {
                    "cpu": ours, "ctranslate2_int8_cpu": theirs,
                    "over_ctranslate2_int8_median": round(ours["median_ms"] / theirs["median_ms"], 3),
                    "over_ctranslate2_int8_mean": round(ours["mean_ms"] / theirs["mean_ms"], 3)}
            row["same_translations_as_ctranslate2"] = round(float(np.mean(
                [a == c for a, c in zip(outputs[engine], outputs["ctranslate2_int8"])])), 3)
            results[f"{engine}_beam{b}"] = row
            print(f"  alone with CTranslate2 int8, beam {b}: {engine} " + ", ".join(
                f"{instrument} {value['over_ctranslate2_int8_median']}x / "
                f"{value['over_ctranslate2_int8_mean']}x" for instrument, value in row.items()
                if isinstance(value, dict)) + " (median / mean)", flush=True)
    return results


def litert_path(args, slug, label, beam=None):
    """The file `litert_engines` writes for mode `label` and beam size `beam` (None: the
    step-signature-only int8 file)."""
    return os.path.join(args.models_dir, f"{slug}_{label}" + (f"_beam{beam}" if beam else "")
                        + ".tflite")


LITERT_MODES = (None, "dynamic", "int8")


def max_length_of(tokenizer, sentence, target_length):
    """The translate signature's limit for a sentence: min(2 * (subwords + EOS) + 10, T); every
    engine gets the same one."""
    return search_limit(len(tokenizer.encode(sentence)), target_length)


def keras_translate(deployable, tokenizer, sentences, beam_size, alpha, target_length,
                    stop="all"):
    """Keras cached beam search with each sentence's own max_length (batched by limit)."""
    limits = [max_length_of(tokenizer, s, target_length) for s in sentences]
    results = [None] * len(sentences)
    for limit in sorted(set(limits)):
        chosen = [i for i, value in enumerate(limits) if value == limit]
        for i, text in zip(chosen, translate(deployable, tokenizer, [sentences[i] for i in chosen],
                                             beam_size, alpha, max_length=limit, stop=stop)):
            results[i] = text
    return results


def litert_engines(args, slug, deployable, tokenizer, dev, modes=LITERT_MODES, beams=None):
    """Export `deployable` as LiteRT translators in each of `modes`. Float32, dynamic-range,
    int16x8 and int8x8: one file per beam size (`beams`, default 1 and --beam-size) with the
    `translate` signature (the whole search in the graph; the beam size is fixed at export), the
    --beam-size one also with the step signatures for `beams`; int8 (activations calibrated):
    the step signatures only (TensorFlow's calibrator cannot run the loop). Returns ({engine:
    function(sentences, beam) -> strings}, {engine: Translator per beam}, {engine: path},
    {label: export info})."""
    target_length = args.max_length + 10
    beams = sorted(beams or {1, args.beam_size})
    alpha = args.length_penalty
    engines, translators, paths, info = {}, {}, {}, {}
    common = {"max_source_length": args.max_length + 1, "max_target_length": target_length,
              "sample_sources": dev[0][0][: args.calibration_sentences],
              "length_penalty": alpha}
    for quantization in modes:
        label = quantization or "float32"
        files = {}
        for b in ([None] if quantization == "int8" else beams):
            path = litert_path(args, slug, label, b)
            started = time.time()
            exported = export_translator(
                deployable, path, quantization, beam_size=b,
                step_beam_sizes=beams if b in (None, args.beam_size) else (), stop=args.stop,
                **common)
            key = f"{label}_beam{b}" if b else label
            info[key] = {"bytes": exported.size_bytes,
                         "translate_same_tokens_as_keras_on_calibration": exported.same_tokens,
                         "max_abs_diff": round(exported.max_abs_diff, 4),
                         "export_seconds": round(time.time() - started, 1),
                         "operator_types": flatbuffer.operator_types(path)}
            files[b] = path
            info[key]["operators_by_kind"] = {
                kind: sum(counts[kind] for counts in info[key]["operator_types"].values())
                for kind in ("integer", "float", "other")}
            print(f"  exported LiteRT {key}: bytes {exported.size_bytes}, same tokens "
                  f"{exported.same_tokens}, max diff {exported.max_abs_diff:.4f}", flush=True)
        if quantization != "int8":
            graph = {b: Translator(files[b], tokenizer, num_threads=1) for b in beams}
            translators[f"translate_{label}"] = graph
            paths[f"translate_{label}"] = files[args.beam_size]
            engines[f"translate_{label}"] = (
                lambda sentences, b, graph=graph: graph[b].translate(sentences))
        steps = Translator(files[None if quantization == "int8" else args.beam_size], tokenizer,
                           num_threads=1, search="steps")
        translators[f"steps_{label}"] = {b: steps for b in beams}
        paths[f"steps_{label}"] = files[None if quantization == "int8" else args.beam_size]
        engines[f"steps_{label}"] = (lambda sentences, b, steps=steps:
                                     steps.translate(sentences, b, alpha))
    return engines, translators, paths, info


def side_by_side_latency(args, engines, timed):
    """Batch-1 latency per sentence at beam 1 and --beam-size of every engine, interleaved;
    returns (latency, same-as-Keras share on the timed sentences, LiteRT / CT2 ratios)."""
    latency, same, ratios = {}, {}, {}
    for b in sorted({1, args.beam_size}):
        timings, outputs, _ = time_side_by_side(
            {engine: (lambda s, f=function, b=b: f([s], b)[0]) for engine, function in engines.items()},
            timed)
        for engine, timing in timings.items():
            latency[f"{engine}_beam{b}"] = timing
        for engine in engines:
            if engine.startswith(("translate", "steps")):
                same[f"{engine}_beam{b}"] = round(float(np.mean(
                    [a == k for a, k in zip(outputs[engine], outputs["keras_cached"])])), 3)
                ratios[f"{engine}_beam{b}"] = {
                    clock: round(timings[engine][clock]["median_ms"]
                                 / timings["ctranslate2_int8"][clock]["median_ms"], 2)
                    for clock in ("cpu", "wall")}
    return latency, same, ratios


def interpreter_split(translators, sentences, beams, alpha):
    """Per sentence, the CPU time inside the LiteRT interpreter (translate, or encode and
    decode_step invocations) against the whole translation (sentencepiece, the NumPy beam
    search and copies for the step engines). A separate pass after the side-by-side timing, so
    its clock reads do not touch those figures."""
    split = {}
    for label, per_beam in translators.items():
        for b in beams:
            translator = per_beam[b]
            runtime = translator._runtime
            inside, total = [], []
            runtime.timing = True
            for sentence in sentences:
                runtime.invoke_seconds = 0.0
                started = time.thread_time()
                if translator.search == "graph":
                    translator.translate([sentence])
                else:
                    translator.translate([sentence], b, alpha)
                total.append(time.thread_time() - started)
                inside.append(runtime.invoke_seconds)
            runtime.timing = False
            split[f"{label}_beam{b}"] = {
                "interpreter_cpu_ms_median": round(1000 * float(np.median(inside)), 2),
                "total_cpu_ms_median": round(1000 * float(np.median(total)), 2),
                "interpreter_share": round(float(np.sum(inside) / np.sum(total)), 3)}
    return split


def ctranslate2_engine(args, slug, deployable, tokenizer):
    import ctranslate2

    ct2_path = export_ctranslate2(deployable, tokenizer, os.path.join(args.models_dir, slug + "_ct2"),
                                  quantization="int8", force=True)
    return ct2_path, ctranslate2.Translator(ct2_path, intra_threads=1, inter_threads=1)


def ctranslate2_engine_function(ct2, tokenizer, alpha, target_length):
    def run(sentences, b):
        return [ctranslate2_translate(ct2, tokenizer, s, b, alpha, target_length)
                for s in sentences]

    return run


def latency_comparison(args, name, model, bits, tokenizer, tokenizer_path, dev, test):
    """--latency-only: batch-1 latency per sentence on 1 thread, at beam 1 and --beam-size, of
    the LiteRT translate signature (float32, dynamic-range), the step-signature Translator
    (float32, dynamic-range, full int8), CTranslate2 int8 and Keras (cached), on the same
    weights and sentences, interleaved in this one process."""
    deployable = strip(model) if bits else model
    slug = name.replace(" ", "_").replace("+", "").replace("__", "_")
    target_length = args.max_length + 10
    alpha = args.length_penalty
    timed = test[0][: args.latency_sentences]
    engines, translators, _, info = litert_engines(args, slug, deployable, tokenizer, dev)
    ct2_path, ct2 = ctranslate2_engine(args, slug, deployable, tokenizer)
    engines["ctranslate2_int8"] = ctranslate2_engine_function(ct2, tokenizer, alpha,
                                                              target_length)
    engines["keras_cached"] = lambda sentences, b: keras_translate(
        deployable, tokenizer, sentences, b, alpha, target_length, args.stop)
    alone = head_to_head_latency(args, slug, ct2_path, tokenizer_path, timed, engines)
    latency, same, ratios = side_by_side_latency(args, engines, timed)
    split = interpreter_split(translators, timed, sorted({1, args.beam_size}), alpha)
    return {"tflite": info, "latency_per_sentence_1_thread": latency,
            "litert_alone_with_ctranslate2_int8": alone,
            "litert_over_ctranslate2_int8_median": ratios, "litert_interpreter_split": split,
            "litert_translation_equals_keras": same, "latency_sentences": len(timed)}


INTEGER_MODES = (None, "dynamic", "int16x8", "int8x8", "int8")


def integer_comparison(args, name, model, bits, tokenizer, dev, test):
    """--integer-only: the integer-only translators against float32 and dynamic-range on the
    same weights, at --beam-size: per engine, which operators compute in integers, test BLEU,
    how often it translates as Keras and as the float32 file, and CPU time per sentence side by
    side (interleaved) with its ratio to the float32 and dynamic-range `translate` files."""
    deployable = strip(model) if bits else model
    slug = name.replace(" ", "_").replace("+", "").replace("__", "_")
    target_length = args.max_length + 10
    beam, alpha = args.beam_size, args.length_penalty
    sentences, references = test
    keras_translations = keras_translate(deployable, tokenizer, sentences, beam, alpha,
                                         target_length, args.stop)
    row = {"keras_bleu": round(corpus_bleu(keras_translations, references).score, 2)}
    engines, _, paths, row["litert_files"] = litert_engines(args, slug, deployable, tokenizer,
                                                            dev, INTEGER_MODES, [beam])
    outputs = {engine: function(sentences, beam) for engine, function in engines.items()}
    row["litert"] = {
        engine: {"bleu": round(corpus_bleu(outputs[engine], references).score, 2),
                 "equals_keras": round(float(np.mean([a == k for a, k in zip(
                     outputs[engine], keras_translations)])), 3),
                 "equals_float32": round(float(np.mean([a == f for a, f in zip(
                     outputs[engine], outputs["translate_float32"])])), 3),
                 "bytes": os.path.getsize(paths[engine])}
        for engine in engines}
    timed = sentences[: args.latency_sentences]
    timings, _, _ = time_side_by_side(
        {engine: (lambda s, f=function: f([s], beam)[0]) for engine, function in engines.items()},
        timed)
    for engine, timing in timings.items():
        row["litert"][engine][f"latency_beam{beam}"] = timing
        for reference in ("translate_float32", "translate_dynamic"):
            row["litert"][engine][f"cpu_over_{reference}"] = round(
                timing["cpu"]["median_ms"] / timings[reference]["cpu"]["median_ms"], 2)
        print(f"  {engine}: {row['litert'][engine]}", flush=True)
    row["latency_sentences"] = len(timed)
    return row


def evaluate(args, name, model, bits, tokenizer, tokenizer_path, dev, test, base_bits):
    """The full evaluation of one configuration: BLEU of Keras, of the LiteRT translator in
    each exported mode (float32, dynamic-range, full int8) and of CTranslate2 int8 on the test
    sentences; how often LiteRT gives Keras's translation; side-by-side batch-1 latency; file
    sizes and peak RSS."""
    compression_ratio = round(base_bits / weight_bits(model, bits or 32), 2)
    deployable = strip(model) if bits else model  # in place: weights on the grid, float layers
    slug = name.replace(" ", "_").replace("+", "").replace("__", "_")
    row = {"dev_perplexity": round(perplexity(deployable, dev[0], dev[1]), 2),
           "compression_ratio": compression_ratio}
    max_length = args.max_length + 10
    beam, alpha = args.beam_size, args.length_penalty
    beams = sorted({1, beam})
    sentences, references = test
    keras_translations = {}
    for beam_size in beams:
        started = time.time()
        keras_translations[beam_size] = keras_translate(deployable, tokenizer, sentences,
                                                        beam_size, alpha, max_length, args.stop)
        row[f"keras_decode_seconds_beam{beam_size}"] = round(time.time() - started, 1)
    bleu = corpus_bleu(keras_translations[beam], references)
    row["keras_bleu"] = round(bleu.score, 2)
    row["keras_bleu_beam1"] = round(corpus_bleu(keras_translations[1], references).score, 2)
    row["bleu_signature"] = str(bleu)
    print(f"  Keras BLEU beam {beam} {row['keras_bleu']}, beam 1 {row['keras_bleu_beam1']}",
          flush=True)

    # the on-device translator in each mode a user may deploy
    engines, translators, paths, info = litert_engines(args, slug, deployable, tokenizer, dev)
    row["litert_files"] = info
    timed = sentences[: args.latency_sentences]
    litert_translations, row["litert"] = {}, {}
    for engine, function in engines.items():
        outputs = {b: function(sentences, b) for b in beams}
        litert_translations[engine] = outputs[beam]
        row["litert"][engine] = {
            "bleu": round(corpus_bleu(outputs[beam], references).score, 2),
            "bleu_beam1": round(corpus_bleu(outputs[1], references).score, 2),
            "equals_keras": {f"beam{b}": round(float(np.mean(
                [a == k for a, k in zip(outputs[b], keras_translations[b])])), 3) for b in beams},
            "bytes": os.path.getsize(paths[engine]),
            f"peak_rss_mb_beam{beam}": peak_rss_mb(
                "litert-" + ("graph" if engine.startswith("translate") else "steps"),
                paths[engine], tokenizer_path, beam, timed)}
        print(f"  LiteRT {engine}: {row['litert'][engine]}", flush=True)

    ct2_path, ct2 = ctranslate2_engine(args, slug, deployable, tokenizer)
    ct2_function = ctranslate2_engine_function(ct2, tokenizer, alpha, max_length)
    ct2_translations = ct2_function(sentences, beam)
    row["ctranslate2_int8"] = {
        "bleu": round(corpus_bleu(ct2_translations, references).score, 2),
        "bytes": sum(os.path.getsize(os.path.join(ct2_path, f)) for f in os.listdir(ct2_path)),
        f"peak_rss_mb_beam{beam}": peak_rss_mb("ctranslate2", ct2_path, tokenizer_path, beam,
                                               timed)}
    print(f"  CTranslate2 int8: {row['ctranslate2_int8']}", flush=True)

    engines["ctranslate2_int8"] = ct2_function
    row["litert_alone_with_ctranslate2_int8"] = head_to_head_latency(
        args, slug, ct2_path, tokenizer_path, timed, engines)
    engines["keras_cached"] = lambda batch, b: keras_translate(deployable, tokenizer, batch, b,
                                                               alpha, max_length, args.stop)
    latency, same, ratios = side_by_side_latency(args, engines, timed)

    def uncached(sentence):
        ids = np.array([tokenizer.encode(sentence) + [3]], "int32")
        return uncached_beam_search(deployable, ids, beam, alpha, max_length)

    latency[f"keras_uncached_beam{beam}"] = time_each(uncached, sentences[: args.baseline_sentences], 1)
    row["latency_per_sentence_1_thread"] = latency
    row["litert_over_ctranslate2_int8_median"] = ratios
    row["litert_interpreter_split"] = interpreter_split(translators, timed, beams, alpha)
    row["latency_sentences"] = len(timed)
    row["sample_translation"] = {"source": sentences[0], "reference": references[0],
                                 "keras": keras_translations[beam][0],
                                 **{engine: t[0] for engine, t in litert_translations.items()},
                                 "ctranslate2_int8": ct2_translations[0]}
    return row


# (mode, options other than Keras's defaults): GPTQ at its default 4 bits and at 8, AWQ (4 only)
KERAS_QUANTIZERS = (("int8", {}), ("int4", {}), ("gptq", {}), ("gptq", {"weight_bits": 8}),
                    ("awq", {}))


def stored_weight_bytes(model):
    """Bytes of the model's variables as stored (Keras's int8 and packed int4 kernels at their
    own dtype, scales and float weights at theirs)."""
    return int(sum(int(np.prod(variable.shape)) * np.dtype(variable.dtype).itemsize
                   for variable in model.weights))


def export_check(model, path, quantization, args, dev):
    """Whether `export_translator` takes the model: "yes (<size> bytes)" or its one-line error."""
    try:
        exported = export_translator(model, path, quantization,
                                     max_source_length=args.max_length + 1,
                                     max_target_length=args.max_length + 10,
                                     sample_sources=dev[0][0][:4], beam_size=args.beam_size)
    except Exception as error:  # reported, not raised: the refusal is the result
        return f"no: {type(error).__name__}: {str(error).splitlines()[0][:300]}"
    return f"yes ({quantization or 'float32'}, {exported.size_bytes} bytes)"


# (configuration, row index) -> the row's test translations, for --significance
TRANSLATIONS = {}


def paired_significance(results, references, samples):
    """--significance: sacrebleu's paired bootstrap of every compared row against the float32 row
    of its preset (the fine-tuned control when it was compared, else the 8-epoch model), on the
    same test sentences; adds `bleu_bootstrap` (mean, 95% CI half-width, p-value) to each row."""
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest

    for preset in sorted({row["preset"] for row in results}):
        systems = [(f"{row['config']}: {q['method']}", TRANSLATIONS[(row["config"], index)], q)
                   for row in results if row["preset"] == preset
                   for index, q in enumerate(row.get("quantizers", []))
                   if (row["config"], index) in TRANSLATIONS]
        floats = [system for system in systems if system[2]["method"].startswith("float32")]
        if not floats or len(systems) < 2:
            continue
        baseline = max(floats, key=lambda system: "control" in system[2]["method"])
        others = [system for system in systems if system is not baseline]

        def paired(first, rest):
            _, scores = PairedTest([(first[0], first[1])] + [(n, t) for n, t, _ in rest],
                                   {"BLEU": BLEU()}, [references], test_type="bs",
                                   n_samples=samples)()
            return [{"baseline": first[0], "mean": round(float(result.mean), 2),
                     "ci95": round(float(result.ci), 2),
                     "p_value": None if result.p_value is None else round(float(result.p_value), 4),
                     "samples": samples} for result in scores["BLEU"]]

        for (label, _, row), result in zip([baseline] + others, paired(baseline, others)):
            row["bleu_bootstrap"] = result
            print(f"  {label}: {result}", flush=True)
        # each QAT row against Keras's post-training quantizer of the same bits, when compared
        for system in others:
            method = system[2]["method"]
            if not method.startswith("ours: QAT "):
                continue
            bits = method.split()[2].split("-")[0]
            keras_rows = [s for s in others if s[2]["method"] == f"Keras model.quantize('int{bits}')"]
            if keras_rows:
                system[2]["bleu_against_keras"] = paired(keras_rows[0], [system])[1]
                print(f"  {system[0]} against {keras_rows[0][0]}: {system[2]['bleu_against_keras']}",
                      flush=True)


def quantizer_comparison(args, name, model, bits, tokenizer, dev, test, base_bits):
    """--compare-quantizers: BLEU (Keras cached beam search), weight bytes and whether
    `export_translator` takes the model, for this configuration and, for a float model, for
    each of Keras's post-training `model.quantize` modes applied to a copy of it."""
    slug = name.replace(" ", "_").replace("+", "").replace("__", "_")
    sentences, references = test
    target_length = args.max_length + 10
    rows = []

    def bleu(candidate):
        started = time.time()
        output = keras_translate(candidate, tokenizer, sentences, args.beam_size,
                                 args.length_penalty, target_length)
        TRANSLATIONS[(name, len(rows))] = output  # the row about to be appended
        return round(corpus_bleu(output, references).score, 2), round(time.time() - started, 1)

    if bits:
        deployed_bytes = weight_bits(model, bits) // 8
        deployable = strip(model)
        score, seconds = bleu(deployable)
        rows.append({"method": f"ours: QAT {bits}-bit" + (" + KD" if "KD" in name else ""),
                     "bleu": score, "weight_bytes": int(deployed_bytes),
                     "exports": export_check(deployable, os.path.join(
                         args.models_dir, f"{slug}_cmp.tflite"), "dynamic", args, dev),
                     "decode_seconds": seconds})
        return rows
    score, seconds = bleu(model)
    method = "float32 (no quantization)"
    if name.endswith("fine-tuned"):
        method = f"float32, fine-tuned {args.qat_from_float} more epochs (control)"
    rows.append({"method": method, "bleu": score,
                 "weight_bytes": stored_weight_bytes(model),
                 "exports": export_check(model, os.path.join(args.models_dir, f"{slug}_cmp.tflite"),
                                         "dynamic", args, dev), "decode_seconds": seconds})
    for mode, options in KERAS_QUANTIZERS:
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
        row = {"method": f"Keras model.quantize({mode!r}"
                         + "".join(f", {key}={value}" for key, value in options.items()) + ")"}
        started = time.time()
        try:
            if mode in ("gptq", "awq"):
                # calibrated on the dev pairs through keras_compress.nmt.post_training's
                # structure (one whole pair a window); Keras's defaults otherwise
                config_class = (keras.quantizers.GPTQConfig if mode == "gptq"
                                else keras.quantizers.AWQConfig)
                calibration = calibration_options(copy, *dev[0])
                copy.quantize(mode, config=config_class(**calibration, **options))
                pairs = calibration["quantization_layer_structure"]["pre_block_layers"][0]
                row["calibration"] = {
                    "dev_pairs": int(len(dev[1])), "distinct_pairs_used": len(pairs.records),
                    "pythonhashseed": os.environ.get("PYTHONHASHSEED"),
                    "float32_layers": sorted(
                        layer.path for layer in copy._flatten_layers()
                        if isinstance(layer, (keras.layers.Dense, keras.layers.EinsumDense,
                                              keras.layers.Embedding))
                        and not getattr(layer, f"is_{mode}_calibrated", False))}
            else:
                copy.quantize(mode)
        except Exception as error:
            row.update({"bleu": None, "error": f"{type(error).__name__}: "
                                               f"{str(error).splitlines()[0][:300]}"})
            rows.append(row)
            print(f"  {row}", flush=True)
            continue
        row["quantize_seconds"] = round(time.time() - started, 1)
        score, seconds = bleu(copy)
        row.update({"bleu": score, "weight_bytes": stored_weight_bytes(copy),
                    "exports": export_check(copy, os.path.join(args.models_dir, (
                        f"{slug}_keras_{mode}{options.get('weight_bits', '')}.tflite")),
                        None, args, dev),
                    "decode_seconds": seconds})
        rows.append(row)
        print(f"  {row}", flush=True)
    return rows


def main(argv=None):
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    if args.output is None:
        args.output = ("benchmarks/results/nmt_quantizers.json" if args.compare_quantizers
                       else "benchmarks/results/nmt_integer_only.json" if args.integer_only
                       else "benchmarks/results/nmt_latency.json" if args.latency_only
                       else "benchmarks/results/nmt_compression.json")
    if not os.path.exists(os.path.join(args.data_dir, "train.en")):
        print(f"{args.data_dir} not found: skipping the benchmark")
        return 0
    if args.stage != "train":
        import tensorflow as tf

        # latency is per sentence on one thread, for every engine
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    os.makedirs(args.models_dir, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    known = [c[0] for c in CONFIGURATIONS]
    wanted = known if args.configs == "all" else [name.strip() for name in args.configs.split(",")]
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise SystemExit(f"unknown --configs {unknown}; choose from {known}")
    total_started = time.time()
    load_at_start = [round(value, 2) for value in os.getloadavg()]
    tokenizer, tokenizer_path, train_data, dev, test, counts = load_data(args)
    vocab_size = tokenizer.get_piece_size()
    base_bits = weight_bits(build(args, "base", vocab_size, None), 32)
    teacher, results = None, []
    needs_teacher = any(c[3] for c in CONFIGURATIONS if c[0] in wanted)
    for name, preset, bits, distilled in CONFIGURATIONS:
        if name not in wanted and not (name == "base fp32" and needs_teacher):
            continue
        print(f"\n== {name} ==", flush=True)
        model, seconds, reused, training = trained_model(args, name, preset, bits, distilled, vocab_size,
                                               train_data, dev, teacher)
        if name == "base fp32":
            teacher = model
        if args.stage == "train" or name not in wanted:
            continue
        row = {"config": name, "preset": preset, "bits": bits or 32, "distilled": distilled,
               "parameters": int(model.count_params()),
               "d_model": model.get_layer("embedding").embedding_dim,
               "train_seconds": round(seconds, 1), "training": training,
               "weights_reused": reused}
        if args.compare_quantizers:
            row["quantizers"] = quantizer_comparison(args, name, model, bits, tokenizer, dev,
                                                     test, base_bits)
        elif args.integer_only:
            row.update(integer_comparison(args, name, model, bits, tokenizer, dev, test))
        elif args.latency_only:
            row.update(latency_comparison(args, name, model, bits, tokenizer, tokenizer_path, dev,
                                              test))
        else:
            row.update(evaluate(args, name, model, bits, tokenizer, tokenizer_path, dev, test,
                                base_bits))
        print(json.dumps(row, ensure_ascii=False), flush=True)
        results.append(row)
    if args.stage == "train":
        print(f"trained in {time.time() - total_started:.0f}s; weights in {args.models_dir}")
        return 0
    if args.compare_quantizers and args.significance:
        paired_significance(results, test[1], args.significance)
    report = {
        "command": "python " + shlex.join(sys.argv if argv is None else [__file__] + argv),
        "settings": vars(args),
        "data": counts,
        "total_seconds": round(time.time() - total_started, 1),
        "load_average_1_5_15_min": {"start": load_at_start,
                                    "end": [round(value, 2) for value in os.getloadavg()],
                                    "cores": os.cpu_count()},
        "results": results,
        "notes": [
            "Scaled down from the thesis (6 layers, d_model 512/256/128, full WMT data) to fit "
            "2 shared CPU cores: see settings (layers, scale, epochs, train_pairs).",
            "KD students learn from the base fp32 model of this run (T, w_s = w_t = 0.5).",
            "Test BLEU is on the first test_sentences test pairs whose both sides fit in "
            "max_length subwords, detokenized sentencepiece output vs the raw reference.",
            "LiteRT: one .tflite with encode and decode_step signatures (source length "
            "max_length + 1, target length max_length + 10), exported three times from the same "
            "(stripped) weights: float32, dynamic-range (int8 weights, float activations: the "
            "thesis's setting for a QAT model) and full int8 (int8 weights and activations, "
            "per-tensor ranges calibrated on calibration_sentences dev sentences, float inputs and outputs); each run "
            "by keras_compress.nmt.translator.Translator in ai_edge_litert with 1 thread, batch 1. "
            "litert.<mode>.equals_keras: share of the test sentences translated exactly as Keras "
            "(batched cached decoding) translates them.",
            "CTranslate2: the same weights converted by keras_compress.nmt.ctranslate2_export, "
            "int8 weights, 1 intra thread, batch 1, min_decoding_length 0, the GNMT length penalty.",
            "Latency: per sentence, median and p90 over the first latency_sentences test "
            "sentences (after 2 warm-up sentences), all engines in this one process on the same "
            "loaded machine; keras_uncached is the beam search before this change (whole "
            "decoder re-run per step), on baseline_sentences sentences.",
            "Peak RSS: VmHWM of a fresh Python process loading only the runtime and the "
            "sentencepiece model and translating the latency sentences.",
            "litert_interpreter_split: a separate pass over the latency sentences after the "
            "side-by-side timing, splitting each LiteRT translation's CPU time (thread_time) "
            "into the time inside the interpreter (encode and decode_step invocations) and the "
            "rest (sentencepiece, the NumPy beam search, cache copies): what a native port of "
            "the search loop would leave.",
        ],
    }
    if args.latency_only:
        report["notes"] = LATENCY_NOTES + report["notes"][:1] + report["notes"][-1:]
    if args.compare_quantizers:
        report["notes"] = QUANTIZER_NOTES + report["notes"][:1]
    if args.integer_only:
        report["notes"] = INTEGER_NOTES + report["notes"][:1]
    report["notes"] += args.note
    os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2, ensure_ascii=False)
    (print_quantizer_table if args.compare_quantizers else print_integer_table
     if args.integer_only else print_latency_table if args.latency_only
     else print_table)(results, args.beam_size)
    print(f"\nwrote {args.output} in {report['total_seconds']:.0f}s")
    return 0


LATENCY_NOTES = [
    "litert_alone_with_ctranslate2_int8 is the headline latency: each LiteRT translate file "
    "against CTranslate2 int8 with nothing else run, as a phone app or a server runs one "
    "engine, by three instruments (latency_repeats passes over the timed sentences each): "
    "clean_process_interleaved, the two interleaved sentence by sentence in alternating order "
    "in a fresh process that loads only the two runtimes, sentencepiece and NumPy (no Keras, "
    "no TensorFlow); separate_processes, each engine alone in a fresh process, alternating "
    "which runs first; benchmark_process_interleaved, the pair interleaved in this process, "
    "where TensorFlow is loaded and has run. The all-engine pass below it "
    "(latency_per_sentence_1_thread, litert_over_ctranslate2_int8_median) also runs Keras, the "
    "step-signature files and the other modes between CTranslate2's calls, which slowed "
    "CTranslate2 by 15-30% and flattered the LiteRT ratios (session 9); it gives the "
    "agreement with Keras and the other engines' times.",
    "--latency-only: no BLEU. Per configuration, on the same weights and the first "
    "latency_sentences test sentences: translate_<mode>, the LiteRT translate signature (the "
    "whole beam search inside the .tflite; one file per beam size, the beam size being fixed at "
    "export); steps_<mode>, the NumPy beam search over the encode / decode_step_beam<k> "
    "signatures of the same file (Translator(search='steps')); modes float32 and dynamic "
    "(int8 weights, float activations), plus steps_int8 (int8 weights and activations "
    "calibrated on calibration_sentences dev sentences; TensorFlow's calibrator cannot run the "
    "translate loop, so full int8 has no translate signature); CTranslate2 with int8 weights; "
    "Keras cached beam search. Every engine generates at most min(2 (subwords + 1) + 10, "
    "max_length + 10) tokens per sentence.",
    "Latency per sentence (sentencepiece in and out included), batch 1, 1 thread for every "
    "engine (LiteRT num_threads=1, CTranslate2 intra_threads=1, TensorFlow intra/inter-op 1), "
    "median and p90 after 2 warm-up sentences, CPU time of this process (process_time) and "
    "wall time. Engines run interleaved sentence by sentence in one process, so a change of "
    "load hits all alike.",
    "The machine was loaded (see load_average_1_5_15_min; 2 cores shared by several other "
    "benchmarks and test runs, this one under nice -n 10). Absolute times are inflated and "
    "noisy; the ratios between engines (litert_over_ctranslate2_int8_median, on CPU time and "
    "on wall time) are the result.",
    "litert_translation_equals_keras: fraction of the timed sentences where the LiteRT "
    "translation is exactly Keras's.",
]


QUANTIZER_NOTES = [
    "--compare-quantizers: per configuration, test BLEU of the Keras cached beam search (beam "
    "beam_size, GNMT length penalty, each sentence's max_length min(2 (subwords + 1) + 10, "
    "max_length + 10)), the weight bytes and whether export_translator takes the model. QAT "
    "rows: weights at their bits (weight_bits / 8), exported as dynamic-range LiteRT after strip. "
    "Keras rows: model.quantize(mode) on a copy of the float model (post-training), bytes of the "
    "variables as Keras stores them (int8, packed int4, scales, GPTQ's g_idx, AWQ's scales). "
    "GPTQ/AWQ: keras_compress.nmt.post_training's quantization_layer_structure (encoder "
    "blocks, decoder blocks, then the logits Dense, each calibrated on the outputs of the "
    "quantized blocks before it), calibrated on the dev pairs, one whole (source, target) pair "
    "per window Keras samples (calibration.distinct_pairs_used of them), Keras's defaults "
    "otherwise (num_samples 128, group_size 128, asymmetric, no activation order; AWQ 20 grid "
    "points); the shared embedding stays float32 (Keras's Embedding has no GPTQ/AWQ mode: "
    "calibration.float32_layers). A mode Keras refuses is reported with its error.",
]


INTEGER_NOTES = [
    "--integer-only: per configuration, on the same weights, at beam beam_size (GNMT length "
    "penalty length_penalty): translate_<mode> runs the file's translate signature (the whole "
    "beam search in the graph), steps_<mode> the NumPy search over its encode / "
    "decode_step_beam<k> signatures. Modes: float32; dynamic (int8 weights, float "
    "activations); int16x8 and int8x8 (keras_compress.export.static_quantization: "
    "ai-edge-quantizer's static int16- / int8-activation, int8 per-channel weight recipes on "
    "the float32 file, per-tensor activation ranges (min/max) calibrated on "
    "calibration_sentences dev sentences -- the translate loop by the interpreter's profiler, "
    "the steps on 8 teacher-forced steps; the search bookkeeping after top-k, the encoder's "
    "-1e9-masked softmax and, in int16, LayerNorm's squared difference stay float); int8 "
    "(TensorFlow's full-integer converter, per-tensor activation ranges, step signatures only).",
    "litert_files.<file>.operators_by_kind: operators by the type of their first output "
    "(int8/int16: integer; float32: float; int32/bool: other) over all subgraphs, from "
    "keras_compress.export.flatbuffer.operator_types.",
    "BLEU (sacrebleu) on the test_sentences test verses; equals_keras / equals_float32: share "
    "of those translated exactly as the Keras cached beam search / the float32 translate file.",
    "Latency: CPU time per sentence (process_time; sentencepiece in and out included), batch "
    "1, 1 thread, median and p90 over the first latency_sentences test verses after 2 warm-up "
    "ones, engines interleaved sentence by sentence in one process on the shared, loaded "
    "machine (load_average_1_5_15_min): the ratios cpu_over_translate_float32 / "
    "cpu_over_translate_dynamic are the result, not the milliseconds.",
]


def print_integer_table(results, beam):
    print(f"\n| config | engine | integer / float / other operators | BLEU b{beam} | "
          "same as Keras | same as float32 | CPU ms median | x float32 | x dynamic |"
          "\n|---|---|---|---|---|---|---|---|---|")
    for row in results:
        for engine, info in row["litert"].items():
            label = engine.split("_", 1)[1]
            files = row["litert_files"]
            kinds = (files.get(f"{label}_beam{beam}") or files[label])["operators_by_kind"]
            print(f"| {row['config']} | {engine} | {kinds['integer']} / {kinds['float']} / "
                  f"{kinds['other']} | {info['bleu']} | {info['equals_keras']} | "
                  f"{info['equals_float32']} | {info[f'latency_beam{beam}']['cpu']['median_ms']} | "
                  f"{info['cpu_over_translate_float32']} | {info['cpu_over_translate_dynamic']} |")
        print(f"| {row['config']} | keras_cached | | {row['keras_bleu']} | | | | | |")


def print_quantizer_table(results, beam):
    print(f"\n| config | method | BLEU b{beam} | weight KB | exports through export_translator |"
          "\n|---|---|---|---|---|")
    for row in results:
        for entry in row["quantizers"]:
            size = f"{entry['weight_bytes'] / 1024:.0f}" if "weight_bytes" in entry else ""
            print(f"| {row['config']} | {entry['method']} | {entry.get('bleu')} | {size} | "
                  f"{entry.get('exports', entry.get('error', ''))} |")


def print_latency_table(results, beam):
    print("\n| config | beam | engine | CPU ms median | CPU ms p90 | wall ms median | "
          "x CT2 int8 (CPU) | same as Keras |\n|---|---|---|---|---|---|---|---|")
    for row in results:
        ratios = row["litert_over_ctranslate2_int8_median"]
        for key, timing in row["latency_per_sentence_1_thread"].items():
            engine, b = key.rsplit("_beam", 1)
            ratio = ratios.get(key, {}).get("cpu", "")
            same = row["litert_translation_equals_keras"].get(key, "")
            print(f"| {row['config']} | {b} | {engine} | {timing['cpu']['median_ms']} | "
                  f"{timing['cpu']['p90_ms']} | {timing['wall']['median_ms']} | {ratio} | {same} |")
    print_alone_table(results)


def print_alone_table(results):
    """The headline: each LiteRT translate file against CTranslate2 int8 alone (three
    instruments, `head_to_head_latency`)."""
    print("\n| config | beam | engine | instrument | CPU ms median / mean | CT2 int8 ms median / "
          "mean | x CT2 int8 median | x CT2 int8 mean |\n|---|---|---|---|---|---|---|---|")
    for row in results:
        for key, instruments in row.get("litert_alone_with_ctranslate2_int8", {}).items():
            engine, b = key.rsplit("_beam", 1)
            for instrument, pair in instruments.items():
                if not isinstance(pair, dict):
                    continue
                ours, theirs = pair["cpu"], pair["ctranslate2_int8_cpu"]
                print(f"| {row['config']} | {b} | {engine} | {instrument} | {ours['median_ms']} / "
                      f"{ours['mean_ms']} | {theirs['median_ms']} / {theirs['mean_ms']} | "
                      f"{pair['over_ctranslate2_int8_median']} | "
                      f"{pair['over_ctranslate2_int8_mean']} |")


def print_table(results, beam):
    header = ("config", "params", "dev ppl", "engine", f"BLEU b{beam}", "BLEU b1",
              "same as Keras b1/b" + str(beam), "size KB", f"CPU ms b1 med/p90",
              f"CPU ms b{beam} med/p90", f"x CT2 b{beam} (CPU)", "peak RSS MB")
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in results:
        lat = row["latency_per_sentence_1_thread"]
        ratios = row["litert_over_ctranslate2_int8_median"]
        engines = [("keras_cached", {"bleu": row["keras_bleu"], "bleu_beam1": row["keras_bleu_beam1"]})]
        engines += list(row["litert"].items())
        engines += [("ctranslate2_int8", row["ctranslate2_int8"])]
        for engine, info in engines:
            same = info.get("equals_keras", {})
            cells = [row["config"], f"{row['parameters']:,}", row["dev_perplexity"], engine,
                     info.get("bleu", ""), info.get("bleu_beam1", ""),
                     f"{same['beam1']}/{same[f'beam{beam}']}" if same else "",
                     f"{info['bytes'] / 1024:.0f}" if "bytes" in info else ""]
            for b in (1, beam):
                timing = lat.get(f"{engine}_beam{b}", {}).get("cpu")
                cells.append(f"{timing['median_ms']}/{timing['p90_ms']}" if timing else "")
            cells.append(ratios.get(f"{engine}_beam{beam}", {}).get("cpu", ""))
            cells.append(info.get(f"peak_rss_mb_beam{beam}", ""))
            print("| " + " | ".join(str(cell) for cell in cells) + " |")
        uncached = lat[f"keras_uncached_beam{beam}"]["cpu"]
        print(f"| {row['config']} | | | keras_uncached (before) | | | | | | "
              f"{uncached['median_ms']}/{uncached['p90_ms']} | | |")
    print_alone_table(results)


if __name__ == "__main__":
    sys.exit(main())
