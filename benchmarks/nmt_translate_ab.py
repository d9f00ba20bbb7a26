"""A/B timing of LiteRT `translate` files against CTranslate2 int8, side by side in one process
(issue 23: the `translate` signature's beam-4 latency).

`nmt_compression.py --latency-only` times the files the current code exports. This script
compares files exported by different versions of the code on the same trained weights, so that
each change to the in-graph search is measured as a ratio in one run:

    # at each commit to compare (a git worktree per commit), one file per beam size:
    PYTHONPATH=<worktree> python benchmarks/nmt_translate_ab.py export --models-dir DIR \\
        --preset base --beam-size 4 --output base_b4_<commit>.tflite
    # then, with any version:
    PYTHONPATH=. nice -n 10 python benchmarks/nmt_translate_ab.py time --models-dir DIR \\
        --preset base --beam-size 4 --repeats 3 --files base_b4_*.tflite

    # one file with source buckets: each bucket's sentences through translate_<n> and through
    # translate (S), interleaved, and whether the tokens are the same
    PYTHONPATH=. nice -n 10 python benchmarks/nmt_translate_ab.py buckets --models-dir DIR \\
        --preset base --repeats 5 --files base_b4_buckets.tflite

`--models-dir` holds what `nmt_compression.py --stage train` saved: `<preset>_fp32.weights.h5`,
`spm<vocab>.model` and the CTranslate2 int8 conversion `<preset>_fp32_ct2` (written by
`nmt_compression.py --latency-only`). Files are dynamic-range (int8 weights), S = max_length +
1 and T = max_length + 10, as in `nmt_compression.py`. Timing: CPU time per sentence
(sentencepiece in and out included), batch 1, 1 thread, engines interleaved sentence by sentence
in alternating order over the first `--sentences` test sentences, `--repeats` passes, in a fresh
process that loads only the LiteRT and CTranslate2 runtimes (`side_by_side.clean_process_timing`;
until session 10 this process, with TensorFlow loaded).
"""

import argparse
import json
import os
import shlex
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("export", "time", "buckets", "bleu"))
    parser.add_argument("--models-dir", required=True)
    parser.add_argument("--data-dir", default="/work/shared/data/mt/en-es")
    parser.add_argument("--preset", default="base", choices=("base", "small"))
    parser.add_argument("--vocab-size", type=int, default=2000)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--scale", type=float, default=0.25)
    parser.add_argument("--beam-size", type=int, default=4)
    parser.add_argument("--length-penalty", type=float, default=0.6)
    parser.add_argument("--sentences", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--source-buckets", default="auto",
                        help="export: comma-separated source lengths of translate_<n> "
                             "signatures, 'none', or 'auto' (export_translator's default; "
                             "versions before buckets take no such argument)")
    parser.add_argument("--stop", default="all", choices=("all", "best"),
                        help="export: when translate ends a sentence's search (export_translator's "
                             "stop; versions before session 10 take no such argument)")
    parser.add_argument("--output", help="export: the .tflite file; time: a JSON report")
    parser.add_argument("--files", nargs="*", default=[], help="time: the .tflite files")
    parser.add_argument("--note", action="append", default=[], help="time: a line for the JSON")
    return parser.parse_args(argv)


def test_sentences(args, tokenizer, references=False):
    """The first --sentences test sentences that fit --max-length (nmt_compression.py's), and
    with `references` their reference translations."""
    from keras_compress.nmt import make_examples, read_parallel

    sources, targets = read_parallel(args.data_dir, "test")
    _, kept = make_examples(tokenizer, sources, targets, args.max_length)
    chosen = [sources[i] for i in kept[: args.sentences]]
    return (chosen, [targets[i] for i in kept[: args.sentences]]) if references else chosen


def bleu_files(args, tokenizer):
    """Test BLEU (sacrebleu) of each file's translate signature and of CTranslate2 int8 (its
    default stop: patience 1) on the first --sentences test sentences, and the average number
    of target tokens."""
    import ctranslate2
    from side_by_side import ctranslate2_translate

    from keras_compress.nmt import Translator, corpus_bleu

    sentences, references = test_sentences(args, tokenizer, references=True)
    ct2 = ctranslate2.Translator(os.path.join(args.models_dir, f"{args.preset}_fp32_ct2"),
                                 intra_threads=1, inter_threads=1)
    outputs = {}
    for path in args.files:
        outputs[os.path.basename(path)] = Translator(path, tokenizer).translate(sentences)
    outputs["ctranslate2_int8"] = [
        ctranslate2_translate(ct2, tokenizer, sentence, args.beam_size, args.length_penalty,
                              args.max_length + 10) for sentence in sentences]
    first = os.path.basename(args.files[0])
    rows = {}
    print(f"| {args.preset} beam {args.beam_size}, {len(sentences)} sentences | BLEU | subwords "
          f"a sentence | same as {first} |\n|---|---|---|---|")
    for name, translations in outputs.items():
        rows[name] = {"bleu": round(corpus_bleu(translations, references).score, 2),
                      "subwords_per_sentence": round(float(np.mean(
                          [len(tokenizer.encode(t)) for t in translations])), 2),
                      "same_as_first_file": round(float(np.mean(
                          [a == b for a, b in zip(translations, outputs[first])])), 3)}
        print(f"| {name} | {rows[name]['bleu']} | {rows[name]['subwords_per_sentence']} | "
              f"{rows[name]['same_as_first_file']} |")
    return rows


def export(args, tokenizer):
    from keras_compress.nmt import export_translator, transformer

    model = transformer(args.vocab_size, args.preset, num_layers=args.layers, scale=args.scale,
                        dropout=0.1, name=f"transformer_{args.preset}")
    model.load_weights(os.path.join(args.models_dir, f"{args.preset}_fp32.weights.h5"))
    rows = [tokenizer.encode(s) + [3] for s in test_sentences(args, tokenizer)]
    sample = np.zeros((len(rows), args.max_length + 1), "int32")
    for i, row in enumerate(rows):
        sample[i, : len(row)] = row
    buckets = {} if args.source_buckets == "auto" else {"source_buckets": [] if (
        args.source_buckets == "none") else [int(n) for n in args.source_buckets.split(",")]}
    if args.stop != "all":
        buckets["stop"] = args.stop
    exported = export_translator(model, args.output, "dynamic", **buckets,
                                 max_source_length=args.max_length + 1,
                                 max_target_length=args.max_length + 10,
                                 sample_sources=sample, beam_size=args.beam_size,
                                 length_penalty=args.length_penalty)
    print(f"wrote {args.output}: {exported.size_bytes} bytes, same tokens as Keras "
          f"{exported.same_tokens}")


def time_files(args, tokenizer):
    from side_by_side import clean_process_timing

    sentences = test_sentences(args, tokenizer)
    engines = {os.path.basename(path): path for path in args.files}
    settings = {"tokenizer": os.path.join(args.models_dir, f"spm{args.vocab_size}.model"),
                "beam": args.beam_size, "alpha": args.length_penalty,
                "target_length": args.max_length + 10, "sentences": sentences}
    # one fresh process that loads only the runtimes, as an app does
    cpu, outputs = clean_process_timing(
        settings, engines, os.path.join(args.models_dir, f"{args.preset}_fp32_ct2"), args.repeats)
    baseline = float(np.median(cpu["ctranslate2_int8"]))
    baseline_mean = float(np.mean(cpu["ctranslate2_int8"]))
    first = next(iter(engines), None)
    rows = {}
    print(f"| {args.preset} beam {args.beam_size} | CPU ms median | p90 | x CT2 int8 | mean ms |"
          f" x CT2 int8 (means) | same as {first} |\n|---|---|---|---|---|---|---|")
    for name in ["ctranslate2_int8", *engines]:
        median = float(np.median(cpu[name]))
        rows[name] = {"cpu_median_ms": round(1000 * median, 2),
                      "cpu_p90_ms": round(1000 * float(np.percentile(cpu[name], 90)), 2),
                      "over_ctranslate2_int8": round(median / baseline, 3),
                      # the total CPU time: less noisy than the median sentence's
                      "cpu_mean_ms": round(1000 * float(np.mean(cpu[name])), 2),
                      "mean_over_ctranslate2_int8": round(float(np.mean(cpu[name]))
                                                          / baseline_mean, 3),
                      "same_translations_as_first_file": round(float(np.mean(
                          [a == b for a, b in zip(outputs[name], outputs[first])])), 3)}
        row = rows[name]
        print(f"| {name} | {row['cpu_median_ms']} | {row['cpu_p90_ms']} | "
              f"{row['over_ctranslate2_int8']} | {row['cpu_mean_ms']} | "
              f"{row['mean_over_ctranslate2_int8']} | {row['same_translations_as_first_file']} |")
    return rows


def time_buckets(args, tokenizer):
    """CPU time of the interpreter call alone for the same sentences through their bucket's
    `translate_<n>` and through `translate`, per bucket: the --sentences test sentences whose
    subwords (EOS included) fit it, and for the smallest bucket, which no test sentence fits,
    their first n - 1 subwords and EOS."""
    from keras_compress.nmt.translator import _Runtime

    runtime = _Runtime(args.files[0])
    lengths = runtime.source_lengths
    sentences = [tokenizer.encode(s) + [3] for s in test_sentences(args, tokenizer)]
    groups = {n: [ids for ids in sentences if runtime.bucket(len(ids)) == n] for n in lengths}
    if not groups[lengths[0]]:
        groups[lengths[0]] = [ids[: lengths[0] - 1] + [3] for ids in sentences]
    rows = {}
    print(f"| {args.preset} beam {runtime.settings.get('beam_size')} | sentences | bucket ms mean "
          f"| translate ms mean | bucket / translate | same tokens |\n|---|---|---|---|---|---|")
    for n, group in groups.items():
        if not group:
            continue
        cpu, same = {"bucket": [], "translate": []}, True
        for _ in range(args.repeats):
            for ids in group:
                tokens = {}
                for kind, width in (("bucket", n), ("translate", lengths[-1])):
                    source = np.zeros((runtime.batch_size, width), "int32")
                    source[0, : len(ids)] = ids
                    started = time.process_time()
                    tokens[kind] = runtime.translate(source)[0]
                    cpu[kind].append(time.process_time() - started)
                same = same and bool((tokens["bucket"] == tokens["translate"]).all())
        bucket, full = float(np.mean(cpu["bucket"])), float(np.mean(cpu["translate"]))
        rows[f"translate_{n}" if n < lengths[-1] else "translate"] = {
            "sentences": len(group), "cut_to_fit": n == lengths[0] and not any(
                runtime.bucket(len(ids)) == n for ids in sentences),
            "bucket_cpu_mean_ms": round(1000 * bucket, 3),
            "translate_cpu_mean_ms": round(1000 * full, 3),
            "bucket_over_translate": round(bucket / full, 3), "same_tokens": same}
        print(f"| {n} | {len(group)} | {1000 * bucket:.3f} | {1000 * full:.3f} | "
              f"{bucket / full:.3f} | {same} |")
    return rows


def main(argv=None):
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    from keras_compress.nmt import load_tokenizer

    tokenizer = load_tokenizer(os.path.join(args.models_dir, f"spm{args.vocab_size}.model"))
    if args.mode == "export":
        if not args.output:
            raise SystemExit("export needs --output FILE.tflite")
        return export(args, tokenizer)
    if not args.files:
        raise SystemExit(f"{args.mode} needs --files")
    load = [round(value, 2) for value in os.getloadavg()]
    rows = {"time": time_files, "buckets": time_buckets, "bleu": bleu_files}[args.mode](
        args, tokenizer)
    if args.output:
        report = {"command": "python " + shlex.join(sys.argv if argv is None else [__file__] + argv),
                  "settings": {k: v for k, v in vars(args).items() if k != "note"},
                  "load_average_1_5_15_min": {"start": load,
                                              "end": [round(v, 2) for v in os.getloadavg()],
                                              "cores": os.cpu_count()},
                  "results": rows, "notes": args.note}
        with open(args.output, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
