"""Why the full-int8 translator translates differently from float: run the float32 and the int8
`decode_step` of one configuration's translator files (written by `nmt_compression.py` into
--models-dir) on the same inputs, tensor by tensor, and report which int8 tensors lose the most.

For a few test sentences, `encode` (float file) and greedy decode steps (the float file's best
token) give the inputs; both files run every step on them with all intermediate tensors kept.
Each int8 tensor of `decode_step` is dequantized and compared with the float tensor of the same
name: values beyond its calibrated per-tensor range (clipped), and its error relative to the
tensor's largest magnitude. Also reported: the grid of the step's output log-probabilities.

    PYTHONPATH=. python benchmarks/nmt_int8_ranges.py --models-dir /work/bench_out/nmt_scaled \
        --config base_fp32 --output benchmarks/results/nmt_int8_ranges.json
"""

import argparse
import json
import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", required=True)
    parser.add_argument("--config", default="base_fp32", help="file prefix, e.g. base_8-bit_QAT")
    parser.add_argument("--vocab-size", type=int, default=2000, help="of the spm<N>.model there")
    parser.add_argument("--data-dir", default="../shared/data/mt/en-es")
    parser.add_argument("--sentences", type=int, default=5)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--beams", type=int, default=4,
                        help="hypotheses per step (the file's decode_step_beam<k>)")
    parser.add_argument("--top", type=int, default=15, help="tensors listed")
    parser.add_argument("--output", default="benchmarks/results/nmt_int8_ranges.json")
    return parser.parse_args(argv)


def interpreter(path):
    from ai_edge_litert.interpreter import Interpreter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # preserve_all_tensors is for debugging: it is
        return Interpreter(model_path=path, num_threads=1, experimental_preserve_all_tensors=True)


def run_step(it, signature, inputs):
    """The decode step's outputs and {tensor name: (float value, detail)} of its subgraph."""
    from keras_compress.export.litert import litert_wrapper

    outputs = it.get_signature_runner(signature)(**inputs)
    graph = int(litert_wrapper(it).GetSubgraphIndexFromSignature(signature))
    values = {}
    for detail in it.get_tensor_details(graph):
        try:
            value = it.get_tensor(detail["index"], graph)
        except ValueError:
            continue
        scale, zero = detail["quantization"]
        if value.dtype == np.int8 and scale:
            value = (value.astype("float32") - zero) * scale
        values[detail["name"]] = (value, detail)
    return outputs, values


def main(argv=None):
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    import sentencepiece

    prefix = os.path.join(args.models_dir, args.config)
    for suffix in ("_float32.tflite", "_int8.tflite"):
        if not os.path.exists(prefix + suffix):
            raise SystemExit(f"{prefix + suffix} not found: run nmt_compression.py first")
    tokenizer = sentencepiece.SentencePieceProcessor(
        model_file=os.path.join(args.models_dir, f"spm{args.vocab_size}.model"))
    floats, int8 = interpreter(prefix + "_float32.tflite"), interpreter(prefix + "_int8.tflite")
    signature = f"decode_step_beam{args.beams}"
    if signature not in floats.get_signature_list():
        raise SystemExit(f"no {signature} signature: export with step_beam_sizes including {args.beams}")
    step_details = floats.get_signature_runner(signature).get_input_details()
    source_length = int(step_details["source_mask"]["shape_signature"][1])
    with open(os.path.join(args.data_dir, "test.en"), encoding="utf-8") as handle:
        sentences = [line.strip() for line in handle]
    sentences = [s for s in sentences if len(tokenizer.encode(s)) < source_length][: args.sentences]
    stats, grids, agree, total = {}, [], 0, 0
    for sentence in sentences:
        ids = tokenizer.encode(sentence) + [3]
        source = np.zeros((1, source_length), "int32")
        source[0, : len(ids)] = ids
        encoded = floats.get_signature_runner("encode")(source=source)
        caches = {name: (np.concatenate([value] * args.beams) if name.startswith("self") else value)
                  for name, value in encoded.items() if name != "logits"}
        token = int(np.argmax(encoded["logits"][0]))
        for index in range(1, args.steps + 1):
            inputs = {"token": np.full((args.beams, 1), token, "int32"),
                      "index": np.array(index, "int32"), "rows": np.arange(args.beams, dtype="int32"),
                      "source_mask": (source != 0).astype("int32"), **caches}
            float_out, float_values = run_step(floats, signature, inputs)
            int8_out, int8_values = run_step(int8, signature, inputs)
            agree += int(np.array_equal(float_out["ids"][0], int8_out["ids"][0]))
            total += 1
            grid = np.diff(np.unique(int8_out["log_probs"]))
            if len(grid):
                grids.append(float(grid.min()))
            for name, (value, detail) in int8_values.items():
                if detail["dtype"] != np.int8 or name not in float_values:
                    continue
                reference = float_values[name][0]
                if reference.shape != value.shape or reference.dtype != np.float32:
                    continue
                scale, zero = detail["quantization"]
                if not scale:  # per-channel (weights): no single range
                    continue
                low, high = (-128 - zero) * scale, (127 - zero) * scale
                beyond = max(float(reference.max()) / high if reference.max() > high > 0 else 1.0,
                             float(reference.min()) / low if reference.min() < low < 0 else 1.0)
                error = float(np.sqrt(np.mean((reference - value) ** 2))
                              / (np.abs(reference).max() + 1e-12))
                entry = stats.setdefault(name, {"int8_range": [round(low, 4), round(high, 4)],
                                                "float_min": 0.0, "float_max": 0.0,
                                                "beyond_range": 1.0, "relative_rmse": []})
                entry["float_min"] = round(min(entry["float_min"], float(reference.min())), 4)
                entry["float_max"] = round(max(entry["float_max"], float(reference.max())), 4)
                entry["beyond_range"] = round(max(entry["beyond_range"], beyond), 3)
                entry["relative_rmse"].append(error)
            caches = {**caches, **{name: value for name, value in float_out.items()
                                   if name.startswith("self")}}
            token = int(float_out["ids"][0, 0])
            del float_values, int8_values
    for entry in stats.values():
        entry["relative_rmse"] = round(float(np.mean(entry["relative_rmse"])), 4)
    clipped = sorted(((name, e) for name, e in stats.items() if e["beyond_range"] > 1.01),
                     key=lambda item: -item[1]["beyond_range"])
    worst = sorted(stats.items(), key=lambda item: -item[1]["relative_rmse"])
    report = {
        "command": "python " + " ".join(sys.argv if argv is None else [__file__] + argv),
        "settings": vars(args),
        "decode_steps": total,
        "best_token_same_as_float": round(agree / max(total, 1), 3),
        "int8_tensors_compared": len(stats),
        "output_log_prob_grid": round(float(np.median(grids)), 4) if grids else None,
        "clipped": [{"tensor": name, **entry} for name, entry in clipped[: args.top]],
        "largest_relative_error": [{"tensor": name, **entry} for name, entry in worst[: args.top]],
        "notes": [
            "Per tensor of decode_step (int8 file, dequantized) against the same-named tensor of "
            "the float32 file on the same inputs: beyond_range = how far float values go past the "
            "per-tensor range calibrated on 8 dev sentences (1 = inside); relative_rmse = RMS "
            "error / largest float magnitude, averaged over the steps.",
            "output_log_prob_grid: the smallest gap between distinct log-probabilities the int8 "
            "step hands out (TFLite's int8 LOG_SOFTMAX has a fixed 16/256 output scale).",
        ],
    }
    os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    print(f"{total} decode steps; best token same as float {report['best_token_same_as_float']}; "
          f"output log-prob grid {report['output_log_prob_grid']}; {len(stats)} int8 tensors")
    print("\n| tensor | int8 range | float range seen | beyond range | relative RMSE |\n|---|---|---|---|---|")
    for name, entry in clipped[: args.top] + worst[: args.top]:
        print(f"| {name[-60:]} | {entry['int8_range']} | [{entry['float_min']}, {entry['float_max']}] "
              f"| {entry['beyond_range']} | {entry['relative_rmse']} |")
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
