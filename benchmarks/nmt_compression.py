"""Prato 2019 (M.Sc. thesis, ch. 5, Table 5.1), scaled to 2 shared CPU cores: Transformers for
English->Spanish compressed by 8-bit quantization-aware training, knowledge distillation and both.

Configurations: base fp32 (also the teacher), base 8-bit QAT, medium and small fp32, KD and
KD + 8-bit QAT, and small 4-bit / 2-bit QAT (where quality breaks). Every configuration trains
from scratch for the same number of epochs on the same subset. Reported per configuration:
dev perplexity (teacher forcing, no label smoothing), test BLEU (sacrebleu, beam 4, length
penalty 0.6), compression ratio ((weights x bits) of base / (weights x bits) of the model; float
parts count 32 bits), the .tflite size (whole encoder-decoder forward pass; int8 weights for the
quantized models via keras_compress.export.export_tflite on the stripped model), and beam-4
translation latency per sentence (batch 1, Keras).

Data: ../shared/data/mt/en-es (Bible verses, KJV -> Reina-Valera 1909).

    nice -n 10 python benchmarks/nmt_compression.py
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

from keras_compress.distillation import Distiller  # noqa: E402
from keras_compress.export import export_tflite  # noqa: E402
from keras_compress.models.transformer import SmoothedSparseCategoricalCrossentropy, transformer  # noqa: E402
from keras_compress.quantization import is_quantized, quantize_model, strip  # noqa: E402
from keras_compress.translation import (  # noqa: E402
    corpus_bleu,
    make_examples,
    perplexity,
    read_parallel,
    train_tokenizer,
    translate,
)

# name, preset, bits (None = float), distilled from the base fp32 teacher
CONFIGURATIONS = [
    ("base fp32", "base", None, False),
    ("base 8-bit QAT", "base", 8, False),
    ("medium fp32", "medium", None, False),
    ("medium KD", "medium", None, True),
    ("medium KD + 8-bit", "medium", 8, True),
    ("small fp32", "small", None, False),
    ("small KD", "small", None, True),
    ("small KD + 8-bit", "small", 8, True),
    ("small 4-bit QAT", "small", 4, False),
    ("small 2-bit QAT", "small", 2, False),
]


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data/mt/en-es")
    parser.add_argument("--vocab-size", type=int, default=1000, help="shared sentencepiece vocabulary")
    parser.add_argument("--max-length", type=int, default=32, help="most subwords per side")
    parser.add_argument("--train-pairs", type=int, default=6000, help="training pairs kept (after the length filter)")
    parser.add_argument("--dev-pairs", type=int, default=300)
    parser.add_argument("--test-sentences", type=int, default=100)
    parser.add_argument("--latency-sentences", type=int, default=3)
    parser.add_argument("--layers", type=int, default=2, help="encoder and decoder layers (thesis: 6)")
    parser.add_argument("--scale", type=float, default=0.25, help="d_model and d_ff factor (thesis: 1)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--beam-size", type=int, default=4)
    parser.add_argument("--length-penalty", type=float, default=0.6)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--configs", default="all", help="comma-separated subset of names")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="benchmarks/results/nmt_compression.json")
    return parser.parse_args(argv)


def load_data(args, workdir):
    sources, targets = read_parallel(args.data_dir, "train")
    started = time.time()
    tokenizer = train_tokenizer(sources + targets, os.path.join(workdir, "spm"), args.vocab_size)
    print(f"sentencepiece ({args.vocab_size} shared subwords) trained in {time.time() - started:.0f}s",
          flush=True)
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
    return tokenizer, train, dev, test, counts


def weight_bits(model, bits):
    """Sum of weights x bits: quantized kernels at `bits`, everything else at 32."""
    quantized = set()
    for layer in model._flatten_layers():
        if is_quantized(layer):
            for name in ("_kernel", "_embeddings"):
                if hasattr(layer, name):
                    quantized.add(id(getattr(layer, name)))
    total = 0
    for variable in model.weights:
        size = int(np.prod(variable.shape))
        total += size * (bits if id(variable) in quantized else 32)
    return total


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


def evaluate(args, name, model, bits, tokenizer, dev, test, base_bits, workdir):
    deployable = strip(model) if bits else model
    dev_perplexity = perplexity(deployable, dev[0], dev[1])
    started = time.time()
    hypotheses = translate(deployable, tokenizer, test[0], args.beam_size, args.length_penalty,
                           max_length=args.max_length + 10)
    decode_seconds = time.time() - started
    bleu = corpus_bleu(hypotheses, test[1])
    latencies = []
    for sentence in test[0][: args.latency_sentences]:
        started = time.time()
        translate(deployable, tokenizer, [sentence], args.beam_size, args.length_penalty,
                  max_length=args.max_length + 10)
        latencies.append(time.time() - started)
    path = os.path.join(workdir, name.replace(" ", "_").replace("+", "") + ".tflite")
    export = export_tflite(deployable, path, quantization="int8" if bits else None,
                           sample_inputs=[array[:16] for array in dev[0]])
    return {
        "dev_perplexity": round(dev_perplexity, 2),
        "test_bleu": round(bleu.score, 2),
        "bleu_signature": str(bleu),
        "compression_ratio": round(base_bits / weight_bits(model, bits or 32), 2),
        "tflite_bytes": export.size_bytes,
        "tflite_max_abs_diff": round(export.max_abs_diff, 4),
        "latency_ms_per_sentence": round(1000 * float(np.median(latencies)), 1),
        "test_decode_seconds": round(decode_seconds, 1),
        "sample_translation": {"source": test[0][0], "reference": test[1][0],
                               "hypothesis": hypotheses[0]},
    }


def main(argv=None):
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    if not os.path.exists(os.path.join(args.data_dir, "train.en")):
        print(f"{args.data_dir} not found: skipping the benchmark")
        return 0
    keras.utils.set_random_seed(args.seed)
    wanted = None if args.configs == "all" else set(args.configs.split(","))
    total_started = time.time()
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        tokenizer, train_data, dev, test, counts = load_data(args, workdir)
        vocab_size = tokenizer.get_piece_size()
        base_bits = weight_bits(build(args, "base", vocab_size, None), 32)
        teacher = None
        for name, preset, bits, distilled in CONFIGURATIONS:
            if wanted is not None and name not in wanted and name != "base fp32":
                continue
            print(f"\n== {name} ==", flush=True)
            keras.utils.set_random_seed(args.seed)
            model = build(args, preset, vocab_size, bits)
            seconds = train(args, model, train_data, dev, teacher if distilled else None)
            row = {"config": name, "preset": preset, "bits": bits or 32, "distilled": distilled,
                   "parameters": int(model.count_params()),
                   "d_model": model.get_layer("embedding").output_dim,
                   "train_seconds": round(seconds, 1)}
            row.update(evaluate(args, name, model, bits, tokenizer, dev, test, base_bits, workdir))
            print(json.dumps(row, ensure_ascii=False), flush=True)
            results.append(row)
            if name == "base fp32":
                teacher = model
    report = {
        "command": "python " + " ".join(sys.argv if argv is None else [__file__] + argv),
        "settings": vars(args),
        "data": counts,
        "total_seconds": round(time.time() - total_started, 1),
        "results": results,
        "notes": [
            "Scaled down from the thesis (6 layers, d_model 512/256/128, full WMT data) to fit "
            "2 shared CPU cores: see settings (layers, scale, epochs, train_pairs).",
            "Every configuration trains from scratch with the same epochs; KD students learn "
            "from the base fp32 model of this run (T, w_s = w_t = 0.5).",
            "Test BLEU is on the first test_sentences test pairs whose both sides fit in "
            "max_length subwords, detokenized sentencepiece output vs the raw reference.",
            "tflite: whole forward pass (encoder + decoder with teacher forcing) of the "
            "stripped model; quantized models export int8 weights (TFLite has no 4- or 2-bit "
            "type, so the 4/2-bit files store their 16/4 levels in int8).",
        ],
    }
    os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2, ensure_ascii=False)
    print_table(results)
    print(f"\nwrote {args.output} in {report['total_seconds']:.0f}s")
    return 0


def print_table(results):
    header = ("config", "params", "dev ppl", "BLEU", "compression", "tflite KB", "latency ms")
    print("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in results:
        print(f"| {row['config']} | {row['parameters']:,} | {row['dev_perplexity']} | "
              f"{row['test_bleu']} | {row['compression_ratio']}x | {row['tflite_bytes'] / 1024:.0f} | "
              f"{row['latency_ms_per_sentence']} |")


if __name__ == "__main__":
    sys.exit(main())
