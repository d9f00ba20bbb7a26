"""An on-device translator: a `keras_compress.nmt.transformer` model exported as ONE TFLite
file whose `translate` signature runs the whole beam search (GNMT length penalty, Wu et al. 2016
sec. 7; Prato 2019 ch. 5) inside the graph, one TFLite `WHILE` loop (`nmt.graph_search`), and
`Translator`, which runs it in `ai_edge_litert` with the sentencepiece model: text in, text out.
`Translator` imports neither Keras nor TensorFlow; a phone app calls the same signature
(docs/mobile_translator.md).

Signatures (B sentences a call, L layers, H heads of E dimensions, S and T the fixed source and
target lengths; cache rows are (hypothesis, head) pairs, hypothesis-major):

- `translate(source int32 (B, S))` -> `tokens int32 (B, T)`, each sentence's best hypothesis
  without EOS, padded with 0, and `score float32 (B,)`, its log-probability over the GNMT length
  penalty. Beam size, length penalty and B are fixed at export (and written in the file's
  metadata, `METADATA_NAME`); at most `min(2 * source length + 10, T)` tokens are generated.
- `translate_<n>(source int32 (B, n))` -> the same outputs, for each source bucket n < S
  (`source_buckets`): the same search for sentences of at most n subwords, whose encoder and
  cross-attention skip the padding up to S (and whose self-attention cache has
  `min(2 * n + 10, T)` positions). Same weights, same tokens; callers pick the smallest bucket
  that holds the sentence.

With `step_beam_sizes`, for debugging and for other beam sizes, the file also has the steps of
the same search, which `Translator(..., search="steps")` drives from NumPy (`nmt.search`):

- `encode(source int32 (1, S))` -> `logits (1, vocab)` of the first target token, and for each
  layer l < L the self-attention caches `self_keys_<l> (H, T, E)`, `self_values_<l> (H, E, T)`
  and the cross-attention caches `cross_keys_<l> (H, S, E)`, `cross_values_<l> (H, E, S)`.
- `decode_step_beam<k>(token int32 (k, 1), index int32 (), rows int32 (k,), source_mask int32
  (1, S), self caches (k * H, ...), cross caches (H, ...))` -> `log_probs`, `ids` (k, k): each
  hypothesis's k best next tokens (padding and BOS never), and the `self_keys_<l>`,
  `self_values_<l>` updated at target position `index`, after gathering the hypotheses `rows`
  (beam search's reordering happens inside the graph). The hypotheses share the sentence's
  cross-attention caches.

The layout is `keras_compress.nmt.decoding`'s, chosen so that no step transposes or copies a cache
in the graph except to gather the hypotheses and write position `index`.
"""

import dataclasses
import json
import math
import os
import tempfile
import threading
import time
import warnings

import numpy as np

from keras_compress.export import flatbuffer, litert
from keras_compress.export.static_quantization import ACTIVATION_BITS
from keras_compress.nmt import search
from keras_compress.nmt.constants import CACHE_NAMES, EOS_ID, PAD_ID

__all__ = ["TranslatorExport", "export_translator", "Translator"]

# "int16x8" is not TFLite's converter's 16x8 mode, which asks for a calibrated range of the int32
# token ids that feed the embedding GATHER and fails (tensorflow/model-optimization issue 1090,
# google-ai-edge/LiteRT issue 168): it is ai-edge-quantizer's static int16-activation recipe
# applied to the float32 file (keras_compress.export.static_quantization); "int8x8" is its int8
# one. "int8" is TensorFlow's full-integer converter.
STATIC = ACTIVATION_BITS  # mode -> activation bits
QUANTIZATIONS = (None, "dynamic", "int8", *STATIC)
CALIBRATED = ("int8", *STATIC)  # activations quantized, ranges from sample sources
TRANSLATE_SIGNATURE = "translate"
BUCKET_SIGNATURE = "translate_{}"  # the translate search for sources of at most {} subwords
STEP_SIGNATURE = "decode_step_beam{}"
# the `translate` signature's fixed search settings, as JSON in the file's metadata
METADATA_NAME = "keras_compress.nmt.translator"


def _flat(caches):
    """{"self_keys": [layer 0, layer 1, ...], ...} -> {"self_keys_0": ..., ...}"""
    return {f"{name}_{layer}": value for name, values in caches.items()
            for layer, value in enumerate(values)}


def _nested(flat, names, layers):
    return {name: [flat[f"{name}_{layer}"] for layer in range(layers)] for name in names}


@dataclasses.dataclass(frozen=True)
class TranslatorExport:
    """What `export_translator` wrote and how close LiteRT is to Keras.

    Attributes:
        path: the `.tflite` file.
        size_bytes: its size on disk.
        quantization: None (float32), "dynamic", "int8", "int16x8" or "int8x8".
        max_source_length, max_target_length: the fixed lengths S and T.
        beam_size, length_penalty, batch_size: the `translate` signature's search (fixed).
        same_tokens: the fraction of the sample sources that `translate` (and each
            `translate_<n>`, on the sources of at most n subwords) translates exactly as Keras
            runs the same in-graph search over S (`keras_compress.nmt.graph_search.translate`);
            NaN without a `translate` signature.
        max_abs_diff: largest |LiteRT - Keras| over the `translate` scores of those sentences
            and, with step signatures, over the first-token logits of `encode` and the best
            next-token log-probabilities of a few teacher-forced decode steps.
        operators: the TFLite builtin operators in the file.
        step_beam_sizes: the beam sizes it has a `decode_step_beam<k>` signature for (with
            `encode`; empty when it has only `translate`).
        source_buckets: the source lengths n < S it has a `translate_<n>` signature for.
        stop: when `translate`'s search ends a sentence ("all" or "best").
    """

    path: str
    size_bytes: int
    quantization: str | None
    max_source_length: int
    max_target_length: int
    max_abs_diff: float
    operators: tuple
    beam_size: int | None = 4
    length_penalty: float = 0.6
    batch_size: int = 1
    same_tokens: float = 1.0
    step_beam_sizes: tuple = ()
    source_buckets: tuple = ()
    stop: str = "all"

    def as_dict(self):
        return dataclasses.asdict(self)


def export_translator(model, path, quantization=None, max_source_length=64,
                      max_target_length=64, sample_sources=None, beam_size=4,
                      length_penalty=0.6, batch_size=1, step_beam_sizes=(),
                      source_buckets="auto", stop="all"):
    """Write `model` (built by `keras_compress.nmt.transformer`; strip a QAT model first) as a
    TFLite translator whose `translate` signature runs the whole beam search (one sentence, or
    `batch_size` sentences, per call), check it runs with builtin operators only in
    `ai_edge_litert`, and compare it with Keras.

    Every shape is fixed (`batch_size` sentences, S and T): the converter folds all shape
    arithmetic away, the search is one TFLite `WHILE` loop, and the runtime plans memory once.

    Args:
        model: the Keras Transformer; after Keras's `model.quantize("gptq" | "awq")` too
            (`keras_compress.nmt.post_training`; the file stores the dequantized weights, as
            float32 or, with "dynamic", int8), not after `quantize("int8" | "int4")`.
        path: the `.tflite` file to write (its folder must exist).
        quantization: None for float32; "dynamic" for int8 weights and float activations (the
            thesis's setting for a QAT model); "int8" for int8 weights and activations calibrated
            on `sample_sources` by TensorFlow's converter (float inputs and outputs; step
            signatures only); "int16x8" / "int8x8" for int8 weights and int16 / int8 activations
            calibrated on `sample_sources` by Google's ai-edge-quantizer (needs `pip install
            ai-edge-quantizer`; inputs and outputs, the beam bookkeeping after top-k and masked
            softmaxes stay float: `keras_compress.export.static_quantization`).
        max_source_length: S, the most source subwords (EOS included) a sentence may have.
        max_target_length: T, the most target positions (BOS included).
        sample_sources: int array `(rows, length <= S)` of source ids for the comparison with
            Keras and the calibration; random ids when None (not allowed for "int8",
            "int16x8" and "int8x8").
        beam_size: hypotheses `translate` keeps per sentence (1 is greedy); None writes no
            `translate` signature (then pass `step_beam_sizes`; required for "int8": TensorFlow's
            calibrator crashes on the loop).
        length_penalty: alpha of `translate`'s GNMT length penalty (0 to 10; GNMT uses 0-1).
        batch_size: sentences per `translate` call (rows of its `source`).
        step_beam_sizes: also write `encode` and one cached `decode_step_beam<k>` signature per
            beam size k, which `Translator(..., search="steps")` drives from NumPy (debugging,
            other beam sizes and length penalties); the weights are stored once.
        source_buckets: source lengths n < S that also get a `translate_<n>` signature (the
            same search without the padding up to S; the weights are stored once); "auto" for
            `default_source_buckets(S)`, () for `translate` alone.
        stop: when `translate` ends a sentence's search (`keras_compress.nmt.search.beam_search`):
            "all", once every hypothesis has ended (the default, as keras-hub's `BeamSampler`),
            or "best", once the best one has (CTranslate2's rule: fewer steps, and sometimes
            another answer); also the step search's default.

    Returns:
        A `TranslatorExport`.
    """
    import tensorflow as tf

    from keras_compress import engine  # imports Keras: not at the top, `Translator` does not
    from keras_compress.export import TFLiteExportError, static_quantization
    from keras_compress.export.tflite import convert, converter_error
    from keras_compress.nmt import decoding, graph_search
    from keras_compress.nmt.transformer import transformer_layers

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    for name, value in (("max_source_length", max_source_length),
                        ("max_target_length", max_target_length)):
        if not _is_int(value) or value < 2:
            raise ValueError(f"{name} must be an int >= 2, got {value!r}")
    if beam_size is not None and (not _is_int(beam_size) or beam_size < 1):
        raise ValueError(f"beam_size must be a positive int or None, got {beam_size!r}")
    if not _is_int(batch_size) or not 1 <= batch_size <= 1024:
        raise ValueError(f"batch_size must be an int in [1, 1024], got {batch_size!r}")
    length_penalty = search.check_length_penalty(length_penalty)
    stop = search.check_stop(stop)
    step_beam_sizes = (tuple(sorted(set(step_beam_sizes)))
                       if isinstance(step_beam_sizes, (list, tuple)) else None)
    if step_beam_sizes is None or not all(_is_int(k) and k >= 1 for k in step_beam_sizes):
        raise ValueError(f"step_beam_sizes must be a list of positive ints, got "
                         f"{step_beam_sizes!r}")
    if beam_size is None and not step_beam_sizes:
        raise ValueError("beam_size=None writes no translate signature: pass step_beam_sizes")
    source_buckets = _check_buckets(source_buckets, max_source_length,
                                    beam_size is not None)
    if quantization in STATIC:
        static_quantization.check_installed(quantization)
    if beam_size is not None and quantization == "int8":
        # TensorFlow 2.21's calibrator (its own TFLite interpreter) segfaults on the WHILE loop
        raise ValueError(f"quantization={quantization!r} calibrates activations, which "
                         "TensorFlow's converter cannot do through the translate signature's "
                         "loop: export beam_size=None with step_beam_sizes")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"folder {directory} for {path} does not exist")
    parts = transformer_layers(model)
    # Keras's int8 and int4 layers multiply in integers, which TFLite has no builtin kernel for;
    # its GPTQ and AWQ layers unpack and scale their 4- or 8-bit kernels back to float before a
    # float matmul, which the converter folds into float constants: they export like a float model
    keras_quantized = [f"{layer.path} ({layer.quantization_mode})"
                       for layer in engine.all_layers(model)
                       if getattr(layer, "quantization_mode", None) not in (None, "gptq", "awq")]
    if keras_quantized:
        raise ValueError(
            f"{model.name!r} was quantized by Keras's model.quantize ({len(keras_quantized)} "
            f"layers, e.g. {keras_quantized[0]}): its integer matmuls have no TFLite builtin "
            "kernel. Export the float model with quantization='dynamic' (int8 weights), or "
            "train with keras_compress.quantize_model and export strip(model)")
    layers, heads, head_dim = len(parts["decoders"]), parts["num_heads"], parts["head_dim"]
    largest = max((beam_size or 1, *step_beam_sizes))
    if largest > parts["vocab_size"] - 2:
        raise ValueError(f"beam size {largest}: at most vocabulary - 2 = "
                         f"{parts['vocab_size'] - 2} candidates exist")
    sources = _sample_sources(sample_sources, max_source_length, parts["vocab_size"],
                              quantization)

    def translate(source):  # the source's static length is the bucket's
        tokens, scores = graph_search.translate(
            model, source, max_target_length, beam_size, length_penalty, stop,
            mask="margin" if quantization in CALIBRATED else "additive")
        return {"tokens": tokens, "score": scores}

    def encode(source):
        logits, caches = decoding.encode(model, source, max_target_length)
        return {"logits": logits, **_flat(caches)}

    def step_function(beams):
        def decode_step(token, index, rows, source_mask, *flat_caches):
            caches = _nested(dict(zip(cache_names, flat_caches)), CACHE_NAMES, layers)
            logits, keys, values = decoding.decode_step(model, token, index, caches,
                                                        source_mask, rows, suppress="drop")
            log_probs, ids = decoding.top_candidates(logits, beams, special_dropped=True)
            return {"log_probs": log_probs, "ids": ids,
                    **_flat({"self_keys": keys, "self_values": values})}

        return decode_step

    def cache(name, rows, length, transposed):
        shape = (rows, head_dim, length) if transposed else (rows, length, head_dim)
        return [tf.TensorSpec(shape, tf.float32, name=f"{name}_{layer}")
                for layer in range(layers)]

    def step_spec(beams):
        caches = [spec for name in CACHE_NAMES for spec in cache(
            name, beams * heads if name.startswith("self") else heads,
            max_target_length if name.startswith("self") else max_source_length,
            name.endswith("values"))]
        return [tf.TensorSpec((beams, 1), tf.int32, name="token"),
                tf.TensorSpec((), tf.int32, name="index"),
                tf.TensorSpec((beams,), tf.int32, name="rows"),
                tf.TensorSpec((1, max_source_length), tf.int32, name="source_mask"), *caches]

    cache_names = [spec.name for spec in step_spec(1)[4:]]
    endpoints = []
    if beam_size is not None:
        endpoints += [(_translate_key(length, max_source_length), translate,
                       [tf.TensorSpec((batch_size, length), tf.int32, name="source")])
                      for length in (*source_buckets, max_source_length)]
    if step_beam_sizes:
        endpoints.append(("encode", encode, [
            tf.TensorSpec((1, max_source_length), tf.int32, name="source")]))
    endpoints += [(STEP_SIGNATURE.format(k), step_function(k), step_spec(k))
                  for k in step_beam_sizes]
    try:
        # int16x8 and int8x8 quantize the float32 file afterwards (ai-edge-quantizer)
        content = convert(model, endpoints, None if quantization in STATIC else quantization,
                          (lambda: _calibration(model, sources, max_target_length, batch_size,
                                                step_beam_sizes))
                          if quantization == "int8" else None, integer_ops_only=False)
    except Exception as error:  # ConverterError carries the MLIR diagnostics
        raise TFLiteExportError(
            f"TFLite cannot convert the translator of {model.name!r} with builtin ops only "
            f"(quantization={quantization!r}): {converter_error(error)}") from error
    settings = {"beam_size": beam_size, "length_penalty": length_penalty, "stop": stop,
                "batch_size": batch_size, "vocab_size": parts["vocab_size"],
                "max_source_length": max_source_length, "max_target_length": max_target_length,
                "source_buckets": list(source_buckets)}
    content = flatbuffer.add_metadata(content, METADATA_NAME, json.dumps(settings).encode())
    if quantization in STATIC:  # after the metadata: the quantizer keeps it, and writes
        # constant buffers past the flatbuffer, which add_metadata's rewrite would lose
        calibration = {}
        for signature, inputs in _calibration(model, sources, max_target_length, batch_size,
                                              step_beam_sizes):
            calibration.setdefault(signature, []).append(inputs)
        if beam_size is not None:
            for length in (*source_buckets, max_source_length):
                calibration[_translate_key(length, max_source_length)] = [
                    {"source": block} for block in _batches(_cut(sources, length), batch_size)]
        content = static_quantization.quantize_static(content, calibration, STATIC[quantization])
    # Checked as a partial file beside `path` and renamed to `path` only when it passed: a failed
    # export or check leaves `path` as it was.
    partial = f"{path}.partial"
    try:
        with open(partial, "wb") as handle:
            handle.write(content)
        runtime = _Runtime(partial)
        operators = tuple(runtime.operators)
        custom = [name for name in operators if not name.isupper() or "FLEX" in name]
        if custom:
            raise TFLiteExportError(f"the translator of {model.name!r} uses non-builtin operators {custom}")
        same, difference = (_compare_translate(model, runtime, sources, settings)
                            if beam_size is not None else (math.nan, 0.0))
        if step_beam_sizes:
            difference = max(difference, _compare(model, runtime, sources, max_target_length,
                                                  step_beam_sizes))
        del runtime  # the interpreter holds the file open
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return TranslatorExport(path, len(content), quantization, max_source_length,
                            max_target_length, difference, operators, beam_size,
                            length_penalty, batch_size, same, step_beam_sizes, source_buckets,
                            stop)


def default_source_buckets(max_source_length):
    """The source lengths `export_translator` writes `translate_<n>` signatures for by default:
    the multiples of 8 up to S - 8 (a sentence pays for at most 7 padding positions, or 15 in
    the last bucket, S). Each bucket stores the search graph once more (not the weights)."""
    return tuple(range(8, int(max_source_length) - 7, 8))


def _check_buckets(source_buckets, max_source_length, has_translate):
    if isinstance(source_buckets, str) and source_buckets == "auto":
        return default_source_buckets(max_source_length) if has_translate else ()
    if not isinstance(source_buckets, (list, tuple)) or not all(
            _is_int(n) and 2 <= n < max_source_length for n in source_buckets):
        raise ValueError(f"source_buckets must be 'auto' or a list of ints in [2, "
                         f"max_source_length={max_source_length}), got {source_buckets!r}")
    if source_buckets and not has_translate:
        raise ValueError("source_buckets are lengths of translate signatures: beam_size=None "
                         "writes none")
    return tuple(sorted({int(n) for n in source_buckets}))


def _translate_key(length, max_source_length):
    """The signature of the translate search for sources of `length` columns."""
    return TRANSLATE_SIGNATURE if length == max_source_length else BUCKET_SIGNATURE.format(length)


def _cut(sources, length):
    """`sources` (rows, S) cut to `length` columns; a longer row keeps its first `length - 1`
    subwords and EOS (calibration data for a bucket)."""
    cut = np.array(sources[:, :length])
    longer = (sources[:, length:] != PAD_ID).any(axis=1)
    cut[longer, -1] = EOS_ID
    return cut


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _sample_sources(sample_sources, max_source_length, vocab_size, quantization):
    if sample_sources is None:
        if quantization in CALIBRATED:
            raise ValueError(f"quantization={quantization!r} calibrates activations: pass "
                             "sample_sources")
        rng = np.random.default_rng(0)
        sources = rng.integers(4, vocab_size, (4, max_source_length // 2)).astype("int32")
        sources[:, -1] = EOS_ID
        sources[1, max_source_length // 4:] = PAD_ID
        sources[1, max_source_length // 4 - 1] = EOS_ID
    else:
        sources = np.asarray(sample_sources)
        if sources.ndim != 2 or not np.issubdtype(sources.dtype, np.integer) or not len(sources):
            raise ValueError(f"sample_sources must be a non-empty 2-D int array, got "
                             f"{sources.shape}")
    if sources.shape[1] > max_source_length:
        raise ValueError(f"sample_sources have {sources.shape[1]} columns, more than "
                         f"max_source_length={max_source_length}")
    padded = np.zeros((len(sources), max_source_length), "int32")
    padded[:, : sources.shape[1]] = sources
    return padded


def _teacher_forced_steps(model, sources, max_target_length, beam_sizes, steps=4):
    """Keras's encode outputs and, per beam size k, the inputs/outputs of `steps` greedy
    decode steps with k (identical) hypotheses per sentence, one record per sentence (the
    file's signatures take one sentence). Keras runs the sentences as one batch."""
    from keras import ops

    from keras_compress.nmt import decoding
    from keras_compress.nmt.transformer import transformer_layers

    heads = transformer_layers(model)["num_heads"]
    logits, caches = decoding.encode(model, sources, max_target_length)
    caches = {name: [ops.convert_to_numpy(value) for value in values]
              for name, values in caches.items()}
    logits = ops.convert_to_numpy(logits)
    count = len(sources)
    records = [("encode", {"source": sources[r : r + 1]}, {"logits": logits[r : r + 1]})
               for r in range(count)]
    mask = (sources != PAD_ID).astype("int32")
    first = np.argmax(logits, axis=-1).astype("int32")
    for beams in beam_sizes:
        state = search.cache_reorder(heads)((caches, None), np.repeat(np.arange(count), beams))[0]
        token = np.repeat(first, beams)[:, None]
        rows = np.arange(count * beams, dtype="int32")
        for index in range(1, min(steps, max_target_length - 1) + 1):
            step_logits, keys, values = decoding.decode_step(model, token, index, state, mask,
                                                             rows, suppress="drop")
            log_probs, ids = (ops.convert_to_numpy(value) for value in
                              decoding.top_candidates(step_logits, beams, special_dropped=True))
            for r in range(count):
                hypotheses, cache_rows = slice(r * beams, (r + 1) * beams), \
                    slice(r * beams * heads, (r + 1) * beams * heads)
                inputs = {"token": token[hypotheses], "index": np.array(index, "int32"),
                          "rows": np.arange(beams, dtype="int32"),
                          "source_mask": mask[r : r + 1]}
                for name, arrays in state.items():
                    picked = cache_rows if name.startswith("self") else slice(r * heads,
                                                                              (r + 1) * heads)
                    inputs.update({f"{name}_{layer}": array[picked]
                                   for layer, array in enumerate(arrays)})
                records.append((STEP_SIGNATURE.format(beams), inputs,
                                {"log_probs": log_probs[hypotheses]}))
            state = {**state, "self_keys": [ops.convert_to_numpy(key) for key in keys],
                     "self_values": [ops.convert_to_numpy(value) for value in values]}
            token = ids[:, :1].astype("int32")
    return records


def _batches(sources, batch_size):
    """`sources` in blocks of `batch_size` rows, the last one padded with empty rows."""
    rows = -(-len(sources) // batch_size) * batch_size
    padded = np.zeros((rows, sources.shape[1]), "int32")
    padded[: len(sources)] = sources
    return [padded[start : start + batch_size] for start in range(0, rows, batch_size)]


def _calibration(model, sources, max_target_length, batch_size, step_beam_sizes):
    if step_beam_sizes:
        for signature, inputs, _ in _teacher_forced_steps(model, sources, max_target_length,
                                                          step_beam_sizes, 8):
            yield signature, inputs


def _keras_translate(model, sources, settings):
    """Keras's in-graph search (`graph_search.translate`, traced once) on `sources` in blocks
    of the file's batch size: `(tokens, scores)` for each row of `sources`."""
    import tensorflow as tf

    from keras_compress.nmt import graph_search

    batch_size, length = settings["batch_size"], settings["max_source_length"]
    @tf.function(input_signature=[tf.TensorSpec((batch_size, length), tf.int32)],
                 autograph=False)  # the loop is ops.while_loop already
    def function(source):
        return graph_search.translate(model, source, settings["max_target_length"],
                                      settings["beam_size"], settings["length_penalty"],
                                      settings.get("stop", "all"))

    tokens, scores = zip(*[(np.asarray(t), np.asarray(s)) for t, s in
                           map(function, _batches(sources, batch_size))])
    return np.concatenate(tokens)[: len(sources)], np.concatenate(scores)[: len(sources)]


def _compare_translate(model, runtime, sources, settings):
    """The fraction of translations whose tokens equal Keras's (`translate` on `sources` and
    each `translate_<n>` on those of at most n subwords, against Keras's search over the full
    S), and the largest score difference over those."""
    expected_tokens, expected_scores = _keras_translate(model, sources, settings)
    # columns up to the last real subword
    lengths = np.where((sources != PAD_ID).any(axis=1),
                       sources.shape[1] - np.argmax((sources != PAD_ID)[:, ::-1], axis=1), 0)
    same, differences = [], [0.0]
    for length in runtime.source_lengths:
        fits = lengths <= length
        if not fits.any():
            continue
        got = [runtime.translate(block) for block in
               _batches(sources[fits, :length], settings["batch_size"])]
        tokens = np.concatenate([t for t, _ in got])[: fits.sum()]
        scores = np.concatenate([s for _, s in got])[: fits.sum()]
        equal = (tokens == expected_tokens[fits]).all(axis=1)
        same += equal.tolist()
        differences.append(float(np.abs(scores - expected_scores[fits])[equal].max())
                           if equal.any() else math.inf)
    return float(np.mean(same)), max(differences)


def _compare(model, runtime, sources, max_target_length, beam_sizes):
    largest = 0.0
    for signature, inputs, expected in _teacher_forced_steps(model, sources, max_target_length,
                                                             beam_sizes):
        got = runtime.run(signature, inputs)
        name = next(iter(expected))
        largest = max(largest, float(np.abs(got[name] - expected[name]).max()))
    return largest


class _Runtime:
    """The signatures of a translator file in `ai_edge_litert`.

    They run directly on their subgraphs through the Interpreter's wrapper (`litert.litert_wrapper`):
    inputs are resized and tensors allocated only when a shape changes (a new number of
    hypotheses), the `decode_step` inputs that stay the same for a sentence (cross-attention
    caches, source mask, beams) are set once per sentence, and the self-attention caches a step
    returns are copied into its inputs inside the interpreter's buffers. Without the wrapper
    (another ai_edge_litert), it warns and runs signature runners, which resize, re-allocate and
    copy every input at every call."""

    def __init__(self, path, num_threads=1):
        from ai_edge_litert.interpreter import Interpreter

        if not os.path.exists(path):
            raise FileNotFoundError(f"translator file {path} does not exist")
        self.interpreter = Interpreter(model_path=path, num_threads=num_threads)
        signatures = self.interpreter.get_signature_list()
        steps = {}
        for key in signatures:
            if key.startswith(STEP_SIGNATURE.format("")) and key.rsplit("beam", 1)[1].isdigit():
                steps[int(key.rsplit("beam", 1)[1])] = key
        if "encode" not in signatures:
            steps = {}
        self.has_translate = TRANSLATE_SIGNATURE in signatures
        # source length -> translate signature: `translate_<n>` buckets and `translate` itself
        prefix = BUCKET_SIGNATURE.format("")
        buckets = {int(key[len(prefix):]): key for key in signatures
                   if key.startswith(prefix) and key[len(prefix):].isdigit()}
        if not self.has_translate and not steps:
            raise ValueError(f"{path} is not a translator: its signatures are {sorted(signatures)}"
                             f" (export_translator writes {TRANSLATE_SIGNATURE}, and encode and "
                             f"{STEP_SIGNATURE.format('<k>')} with step_beam_sizes)")
        metadata = flatbuffer.read_metadata(path, METADATA_NAME)
        self.settings = json.loads(metadata) if metadata else {}
        self.beam_sizes = tuple(sorted(steps))
        self._steps = steps
        self._inputs, self._outputs = {}, {}
        keys = ((*buckets.values(), TRANSLATE_SIGNATURE) if self.has_translate else ()) + (
            ("encode", *steps.values()) if steps else ())
        for key in keys:
            runner = self.interpreter.get_signature_runner(key)
            details = runner.get_input_details()
            self._inputs[key] = {name: detail["index"] for name, detail in details.items()}
            self._outputs[key] = {name: detail["index"] for name, detail in
                                  runner.get_output_details().items()}
            if key == TRANSLATE_SIGNATURE:
                self.batch_size, self.max_source_length = (
                    int(size) for size in details["source"]["shape_signature"])
            elif key in buckets.values():
                pass
            elif key == "encode":
                self.vocab_size = int(runner.get_output_details()["logits"]["shape"][-1])
            else:
                self.max_target_length = int(details["self_keys_0"]["shape_signature"][1])
                self.layers = sum(name.startswith("self_keys_") for name in details)
                self.max_source_length = int(details["source_mask"]["shape_signature"][1])
            del runner
        self._translate_keys = ({**buckets, self.max_source_length: TRANSLATE_SIGNATURE}
                                if self.has_translate else {})
        # the lengths a translate signature takes, shortest first
        self.source_lengths = tuple(sorted(self._translate_keys))
        if "max_target_length" in self.settings:
            self.max_target_length = int(self.settings["max_target_length"])
        self.vocab_size = self.settings.get("vocab_size", getattr(self, "vocab_size", None))
        self.operators = flatbuffer.operators(path)
        self._wrapper = litert.litert_wrapper(self.interpreter)
        self.direct = self._wrapper is not None
        if not self.direct:
            warnings.warn(f"{path}: this ai_edge_litert has no Interpreter wrapper methods "
                          f"{litert.LITERT_WRAPPER_METHODS}, so every call goes through a "
                          "signature runner (slower)", stacklevel=3)
        else:
            self._graphs = {key: int(self._wrapper.GetSubgraphIndexFromSignature(key))
                            for key in self._inputs}
        # the self-attention caches a step returns are the next step's inputs
        self._carry, self._results = {}, {}
        for key in steps.values():
            step_inputs, step_outputs = self._inputs[key], self._outputs[key]
            self._carry[key] = [(step_inputs[name], index) for name, index in
                                step_outputs.items() if name in step_inputs]
            self._results[key] = [(name, index) for name, index in step_outputs.items()
                                  if name not in step_inputs]
        self._constants, self._started = {}, False
        self._key = steps[self.beam_sizes[-1]] if steps else None
        self._invalidate()
        # timing: when true, `invoke_seconds` adds up the CPU time (this thread's) spent inside
        # the interpreter's invocations (the benchmark's split between the graph and the Python
        # around it)
        self.timing, self.invoke_seconds = False, 0.0

    def bucket(self, length):
        """The shortest source length of a translate signature that holds `length` subwords."""
        return next(n for n in self.source_lengths if n >= length)

    def translate(self, source):
        """`(tokens, score)` for `source` (batch_size, n) of the translate signature that takes
        n columns (`translate` for S, `translate_<n>` for a bucket)."""
        key = self._translate_keys.get(source.shape[1])
        if key is None:
            raise ValueError(f"no translate signature takes {source.shape[1]} source columns; "
                             f"this file's take {list(self.source_lengths)}")
        if not self.direct:
            outputs = self.run(key, {"source": source})
        else:
            self._prepare(key, {"source": source})
            graph = self._graphs[key]
            started = time.thread_time() if self.timing else 0.0
            self._wrapper.Invoke(graph)
            if self.timing:
                self.invoke_seconds += time.thread_time() - started
            outputs = {name: self._wrapper.GetTensor(index, graph)
                       for name, index in self._outputs[key].items()}
        return outputs["tokens"], outputs["score"]

    def _invalidate(self):
        """Forget the shapes the subgraphs were allocated with (a signature runner may have
        resized them)."""
        self._shapes = {key: None for key in self._inputs}

    def run(self, signature, inputs):
        """Run a signature through a signature runner (the export checks; the fallback)."""
        self._invalidate()
        self._started = False
        return self.interpreter.get_signature_runner(signature)(**inputs)

    def _prepare(self, key, inputs):
        """Resize the inputs of `key` whose shape changed, allocate, and set `inputs`."""
        wrapper, graph, indices = self._wrapper, self._graphs[key], self._inputs[key]
        shapes = {name: value.shape for name, value in inputs.items()}
        if self._shapes[key] is None or any(self._shapes[key].get(name) != shape
                                            for name, shape in shapes.items()):
            for name, shape in shapes.items():
                wrapper.ResizeInputTensor(indices[name], np.array(shape, "int32"), False, graph)
            wrapper.AllocateTensors(graph)
            self._shapes[key] = shapes
        for name, value in inputs.items():
            wrapper.SetTensor(indices[name], value, graph)

    def encode(self, source):
        """`encode`'s outputs for `source` (sentences, S)."""
        if not self.direct:
            return self.run("encode", {"source": source})
        self._prepare("encode", {"source": source})
        graph = self._graphs["encode"]
        started = time.thread_time() if self.timing else 0.0
        self._wrapper.Invoke(graph)
        if self.timing:
            self.invoke_seconds += time.thread_time() - started
        return {name: self._wrapper.GetTensor(index, graph)
                for name, index in self._outputs["encode"].items()}

    def start_sentence(self, constants, beams):
        """Use the step signature of `beams` hypotheses; `constants` are its inputs that stay
        the same until the next sentence."""
        if beams not in self._steps:
            raise ValueError(f"this translator has decode steps for beam sizes {self.beam_sizes}, "
                             f"not {beams}: export it with export_translator(..., "
                             f"step_beam_sizes=[..., {beams}])")
        self._key = self._steps[beams]
        self._constants, self._started, self._carried = dict(constants), False, {}

    def step(self, inputs):
        """Run the decode step on `inputs` and the sentence's constant inputs, and return its
        outputs other than the self-attention caches. Caches missing from `inputs` are the
        previous step's outputs, which stay inside the interpreter on the direct path."""
        key = self._key
        if not self.direct:
            outputs = self.run(key, {**self._carried, **inputs, **self._constants})
            self._carried = {name: outputs.pop(name) for name in list(outputs)
                             if name in self._inputs[key]}
            return outputs
        wrapper, graph = self._wrapper, self._graphs[key]
        if not self._started:
            everything = {**self._constants, **inputs}
            missing = sorted(set(self._inputs[key]) - set(everything))
            if missing:
                raise ValueError(f"the first decode step of a sentence needs {missing}")
            self._prepare(key, everything)
            self._started = True
        else:
            indices = self._inputs[key]
            for name, value in inputs.items():
                wrapper.SetTensor(indices[name], value, graph)
        if self.timing:
            started = time.thread_time()
            wrapper.Invoke(graph)
            self.invoke_seconds += time.thread_time() - started
        else:
            wrapper.Invoke(graph)
        for target, source in self._carry[key]:  # views made here: none may live across Invoke
            np.copyto(wrapper.tensor(wrapper, target, graph), wrapper.tensor(wrapper, source, graph))
        return {name: wrapper.GetTensor(index, graph) for name, index in self._results[key]}


class Translator:
    """Translate text on device: sentencepiece, then the file's `translate` signature (the
    whole beam search inside the graph, one call per sentence; the `translate_<n>` of the
    smallest source bucket that holds the sentence, when the file has buckets), or, with
    `search="steps"`, the
    NumPy beam search (`keras_compress.nmt.search`) over its `encode` and `decode_step`
    signatures, in `ai_edge_litert`.

    Not thread-safe underneath (one interpreter, one set of buffers): calls from several threads
    are serialized by a lock, so sharing a Translator between threads is safe but not parallel;
    give each thread its own Translator to translate in parallel.

    Args:
        model_path: the `.tflite` translator written by `export_translator`.
        tokenizer: a `sentencepiece.SentencePieceProcessor` or the path of its `.model` file
            (ids as `keras_compress.nmt.data.train_tokenizer` makes them).
        num_threads: interpreter threads (1 for the benchmark's per-sentence latency).
        search: "graph" (the `translate` signature: its beam size and length penalty were
            fixed at export), "steps" (NumPy beam search over the step signatures: any beam size
            exported in `step_beam_sizes`, any length penalty and `max_length`), or None: "graph"
            when the file has `translate`.

    Example (not run: needs a trained model)::

        translator = Translator("translator.tflite", "spm.model")
        translator.translate(["In the beginning God created the heaven and the earth ."])
    """

    def __init__(self, model_path, tokenizer, num_threads=1, search=None):
        if search not in (None, "graph", "steps"):
            raise ValueError(f"search must be None, 'graph' or 'steps', got {search!r}")
        if isinstance(tokenizer, (str, os.PathLike)):
            import sentencepiece

            if not os.path.exists(tokenizer):
                raise FileNotFoundError(f"sentencepiece model {tokenizer} does not exist")
            tokenizer = sentencepiece.SentencePieceProcessor(model_file=os.fspath(tokenizer))
        self.tokenizer = tokenizer
        self._runtime = _Runtime(model_path, num_threads)
        runtime = self._runtime
        if search is None:
            search = "graph" if runtime.has_translate else "steps"
        if search == "graph" and not runtime.has_translate:
            raise ValueError(f"{model_path} has no {TRANSLATE_SIGNATURE!r} signature: use "
                             "search='steps' or export it again with export_translator")
        if search == "steps" and not runtime.beam_sizes:
            raise ValueError(f"{model_path} has no step signatures: export it with "
                             "export_translator(..., step_beam_sizes=[1, 4]) for search='steps'")
        self.search = search
        self.max_source_length = runtime.max_source_length
        self.max_target_length = runtime.max_target_length
        self.vocab_size = runtime.vocab_size
        self.beam_size = runtime.settings.get("beam_size") if search == "graph" else None
        self.length_penalty = (runtime.settings.get("length_penalty") if search == "graph"
                               else None)
        # when the search ends a sentence: the file's (files before session 10: "all")
        self.stop = runtime.settings.get("stop", "all")
        self._lock = threading.Lock()

    def _check_ids(self, source_ids):
        # a dict would give its keys, a set an arbitrary order
        if isinstance(source_ids, (str, bytes, dict, set, frozenset)) \
                or not hasattr(source_ids, "__iter__"):
            raise TypeError(f"source_ids must be a list of token ids, got "
                            f"{type(source_ids).__name__}")
        ids = list(source_ids)
        # Python ints (what sentencepiece gives) take the quick test; bool is not int's type
        if not all(type(token) is int for token in ids):
            if not all(_is_int(token) for token in ids):
                raise ValueError("source_ids must be a flat list of integer token ids")
            ids = [int(token) for token in ids]
        if not ids:
            raise ValueError("source_ids is empty")
        if len(ids) > self.max_source_length:
            raise ValueError(f"{len(ids)} source subwords, more than this translator's "
                             f"max_source_length={self.max_source_length}")
        vocab = self.vocab_size or 2**31
        if min(ids) < 0 or max(ids) >= vocab:
            bad = [t for t in ids if not 0 <= t < vocab]
            raise ValueError(f"source_ids must be in [0, {self.vocab_size}) (the vocabulary), "
                             f"got {bad[:3]}")
        return ids

    def translate_ids(self, source_ids, beam_size=None, length_penalty=None, max_length=None,
                      stop=None):
        """Translate one sentence given as subword ids ending with EOS (3); return target ids
        without BOS and EOS.

        With `search="graph"`, `beam_size`, `length_penalty` and `stop` are the file's (None, or
        the exported values) and `max_length` is `2 * len(source_ids) + 10` at most T. With
        `search="steps"`, `beam_size` defaults to 4, `length_penalty` to 0.6, `stop` to the
        file's (`export_translator`'s `stop`) and `max_length` (generated tokens, EOS included)
        to `2 * len(source_ids) + 10`, at most T."""
        source_ids = self._check_ids(source_ids)
        if stop is not None:
            search.check_stop(stop)
        if beam_size is not None and (not _is_int(beam_size) or beam_size < 1):
            raise ValueError(f"beam_size must be a positive int, got {beam_size!r}")
        if length_penalty is not None:
            length_penalty = search.check_length_penalty(length_penalty)
        if max_length is not None and (not _is_int(max_length) or max_length < 1):
            raise ValueError(f"max_length must be a positive int, got {max_length!r}")
        with self._lock:
            if self.search == "graph":
                return self._translate_graph(source_ids, beam_size, length_penalty, max_length,
                                             stop)
            return self._translate_steps(source_ids, 4 if beam_size is None else beam_size,
                                         0.6 if length_penalty is None else length_penalty,
                                         max_length, self.stop if stop is None else stop)

    def _translate_graph(self, source_ids, beam_size, length_penalty, max_length, stop):
        default_length = min(2 * len(source_ids) + 10, self.max_target_length)
        for name, value, exported in (("beam_size", beam_size, self.beam_size),
                                      ("length_penalty", length_penalty, self.length_penalty),
                                      ("max_length", max_length, default_length),
                                      ("stop", stop, self.stop)):
            if value is not None and value != exported:
                raise ValueError(f"the translate signature was exported with {name}={exported};"
                                 f" for {name}={value} use Translator(..., search='steps') on a"
                                 " file exported with step_beam_sizes")
        runtime = self._runtime
        source = np.zeros((runtime.batch_size, runtime.bucket(len(source_ids))), "int32")
        source[0, : len(source_ids)] = source_ids
        tokens = runtime.translate(source)[0][0]
        return tokens[tokens != PAD_ID].tolist()  # ints; iterating NumPy scalars is slower

    def _translate_steps(self, source_ids, beam_size, length_penalty, max_length, stop):
        if max_length is None:
            max_length = 2 * len(source_ids) + 10
        max_length = min(int(max_length), self.max_target_length)
        source = np.zeros((1, self.max_source_length), "int32")
        source[0, : len(source_ids)] = source_ids
        runtime = self._runtime
        encoded = runtime.encode(source)
        layers = runtime.layers
        caches = _nested(encoded, CACHE_NAMES, layers)
        heads = len(caches["cross_keys"][0])  # one sentence
        runtime.start_sentence({"source_mask": (source != PAD_ID).astype("int32"),
                                **_flat({name: caches.pop(name)
                                         for name in ("cross_keys", "cross_values")})},
                               int(min(beam_size, len(encoded["logits"][0]) - 2)))

        def step(tokens, index, beams, state):
            caches, rows = state  # caches: None once they live in the interpreter
            if rows is None:
                rows = np.arange(len(tokens), dtype="int32")
            inputs = {"token": np.ascontiguousarray(tokens, "int32"),
                      "index": np.array(index, "int32"), "rows": rows}
            if caches is not None:
                inputs.update(_flat(caches))
            out = runtime.step(inputs)
            return (out["log_probs"], out["ids"]), (None, None)

        expand = search.cache_reorder(heads)

        def reorder(state, rows):
            caches, pending = state
            if caches is not None:  # from the sentence to its beams, once, in NumPy
                return expand(state, rows)
            rows = np.asarray(rows, "int32")
            return None, (rows if pending is None else pending[rows])

        return search.beam_search(encoded["logits"], (caches, None), step, reorder, beam_size,
                                  length_penalty, max_length, stop)[0]

    def translate(self, sentences, beam_size=None, length_penalty=None, max_length=None,
                  stop=None):
        """Translate strings and return strings: one sentence per call (as on a phone), or, with
        the `translate` signature of a file exported with `batch_size` B > 1 and the default
        settings, B sentences per call. Sentences longer than the file's source length are cut,
        with a warning."""
        if isinstance(sentences, str):
            raise TypeError("translate takes a list of sentences, not one string")
        sources = []
        for sentence in sentences:
            ids = self.tokenizer.encode(sentence)
            if len(ids) + 1 > self.max_source_length:
                warnings.warn(f"sentence of {len(ids)} subwords cut to "
                              f"{self.max_source_length - 1}: {sentence[:60]!r}", stacklevel=2)
                ids = ids[: self.max_source_length - 1]
            sources.append(ids + [EOS_ID])
        batch = self._runtime.batch_size if self.search == "graph" else 1
        if batch > 1 and (beam_size, length_penalty, max_length, stop) == (None,) * 4:
            targets = []
            with self._lock:
                for start in range(0, len(sources), batch):
                    rows = sources[start : start + batch]
                    block = np.zeros((batch, self._runtime.bucket(max(map(len, rows)))),
                                     "int32")
                    for row, ids in enumerate(rows):
                        block[row, : len(ids)] = self._check_ids(ids)
                    tokens, _ = self._runtime.translate(block)
                    targets += [row[row != PAD_ID].tolist()
                                for row in tokens[: len(sources) - start]]
        else:
            targets = [self.translate_ids(ids, beam_size, length_penalty, max_length, stop)
                       for ids in sources]
        return [self.tokenizer.decode(target) for target in targets]
