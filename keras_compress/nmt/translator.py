"""An on-device translator: a `keras_compress.nmt.transformer` model exported as ONE TFLite
file with the signatures `encode` and `decode_step_beam<k>` (a cached decoder step for k
hypotheses, one signature per beam size; fixed shapes, builtin ops only), and `Translator`,
NumPy beam search (GNMT length penalty, Wu et al. 2016 sec. 7; Prato 2019 ch. 5) over the
`ai_edge_litert` Interpreter with the sentencepiece model: text in, text out. `Translator`
imports neither Keras nor TensorFlow; it is the code a phone app would port.

Signatures (one sentence; L layers, H heads of E dimensions, S and T the fixed source and target
lengths; cache rows are (hypothesis, head) pairs, hypothesis-major):

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
import os
import tempfile
import time
import warnings

import numpy as np

from keras_compress.nmt import search
from keras_compress.nmt.constants import CACHE_NAMES, EOS_ID, PAD_ID

__all__ = ["TranslatorExport", "export_translator", "Translator"]

QUANTIZATIONS = (None, "dynamic", "int8")
STEP_SIGNATURE = "decode_step_beam{}"


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
        quantization: None (float32), "dynamic" or "int8".
        max_source_length, max_target_length: the fixed lengths S and T.
        max_abs_diff: largest |LiteRT - Keras| over the first-token logits of `encode` and
            the 4 best next-token log-probabilities of a few teacher-forced decode steps of the
            sample sources.
        operators: the TFLite builtin operators in the file.
        beam_sizes: the beam sizes it has a `decode_step_beam<k>` signature for.
    """

    path: str
    size_bytes: int
    quantization: str | None
    max_source_length: int
    max_target_length: int
    max_abs_diff: float
    operators: tuple
    beam_sizes: tuple = (1, 4)

    def as_dict(self):
        return dataclasses.asdict(self)


def export_translator(model, path, quantization=None, max_source_length=64,
                      max_target_length=64, sample_sources=None, beam_sizes=(1, 4)):
    """Write `model` (built by `keras_compress.nmt.transformer`; strip a QAT model first) as a
    TFLite translator with the signatures `encode` and `decode_step_beam<k>` (one per beam
    size), check it runs with builtin operators only in `ai_edge_litert`, and compare it with
    Keras.

    Every shape is fixed (one sentence, k hypotheses, S and T): the converter folds all shape
    arithmetic away, and the runtime plans memory once.

    Args:
        model: the Keras Transformer.
        path: the `.tflite` file to write (its folder must exist).
        quantization: None for float32; "dynamic" for int8 weights and float activations (the
            thesis's setting for a QAT model); "int8" for int8 weights and activations
            calibrated on `sample_sources` (float inputs and outputs).
        max_source_length: S, the most source subwords (EOS included) a sentence may have.
        max_target_length: T, the most target positions (BOS included).
        sample_sources: int array `(rows, length <= S)` of source ids for the comparison with
            Keras and the int8 calibration; random ids when None (not allowed for "int8").
        beam_sizes: the beam sizes `Translator` may use with this file (1 is greedy); each
            adds a `decode_step_beam<k>` subgraph, the weights are stored once.

    Returns:
        A `TranslatorExport`.
    """
    import keras
    import tensorflow as tf

    from keras_compress.export import TFLiteExportError
    from keras_compress.nmt import decoding
    from keras_compress.nmt.transformer import transformer_layers

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    for name, value in (("max_source_length", max_source_length),
                        ("max_target_length", max_target_length)):
        if not isinstance(value, int) or value < 2:
            raise ValueError(f"{name} must be an int >= 2, got {value!r}")
    beam_sizes = tuple(sorted(set(beam_sizes))) if isinstance(beam_sizes, (list, tuple)) else ()
    if not beam_sizes or not all(isinstance(k, int) and k >= 1 for k in beam_sizes):
        raise ValueError(f"beam_sizes must be a non-empty list of positive ints")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"folder {directory} for {path} does not exist")
    parts = transformer_layers(model)
    layers, heads, head_dim = len(parts["decoders"]), parts["num_heads"], parts["head_dim"]
    if max(beam_sizes) > parts["vocab_size"] - 2:
        raise ValueError(f"beam_sizes {beam_sizes}: at most vocabulary - 2 = "
                         f"{parts['vocab_size'] - 2} candidates exist")
    sources = _sample_sources(sample_sources, max_source_length, parts["vocab_size"],
                              quantization)

    def encode(source):
        logits, caches = decoding.encode(model, source, max_target_length)
        return {"logits": logits, **_flat(caches)}

    def step_function(beams):
        def decode_step(token, index, rows, source_mask, *flat_caches):
            caches = _nested(dict(zip(cache_names, flat_caches)), CACHE_NAMES, layers)
            logits, keys, values = decoding.decode_step(model, token, index, caches,
                                                        source_mask, rows, suppress=False)
            log_probs, ids = decoding.top_candidates(logits, beams)
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
    signatures = ["encode"] + [STEP_SIGNATURE.format(k) for k in beam_sizes]
    with tempfile.TemporaryDirectory() as saved_model_dir:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("encode", encode, input_signature=[
            tf.TensorSpec((1, max_source_length), tf.int32, name="source")])
        for k in beam_sizes:
            archive.add_endpoint(STEP_SIGNATURE.format(k), step_function(k),
                                 input_signature=step_spec(k))
        archive.write_out(saved_model_dir, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir,
                                                             signature_keys=signatures)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "int8":
            converter.representative_dataset = lambda: _calibration(
                model, sources, max_target_length, beam_sizes)
        try:
            content = converter.convert()
        except Exception as error:  # ConverterError carries the MLIR diagnostics
            raise TFLiteExportError(
                f"TFLite cannot convert the translator of {model.name!r} with builtin ops only "
                f"(quantization={quantization!r}): {str(error).strip()[-1000:]}") from error
    with open(path, "wb") as handle:
        handle.write(content)
    runtime = _Runtime(path)
    custom = [name for name in runtime.operators if not name.isupper() or "FLEX" in name]
    if custom:
        raise TFLiteExportError(f"{path} uses non-builtin operators {custom}")
    difference = _compare(model, runtime, sources, max_target_length, beam_sizes)
    return TranslatorExport(path, os.path.getsize(path), quantization, max_source_length,
                            max_target_length, difference, tuple(runtime.operators), beam_sizes)


def _sample_sources(sample_sources, max_source_length, vocab_size, quantization):
    if sample_sources is None:
        if quantization == "int8":
            raise ValueError("quantization='int8' calibrates activations: pass sample_sources")
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
                                                             rows, suppress=False)
            log_probs, ids = (ops.convert_to_numpy(value) for value in
                              decoding.top_candidates(step_logits, beams))
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


def _calibration(model, sources, max_target_length, beam_sizes):
    for signature, inputs, _ in _teacher_forced_steps(model, sources, max_target_length,
                                                      beam_sizes, 8):
        yield signature, inputs


def _compare(model, runtime, sources, max_target_length, beam_sizes):
    largest = 0.0
    for signature, inputs, expected in _teacher_forced_steps(model, sources, max_target_length,
                                                             beam_sizes):
        got = runtime.run(signature, inputs)
        name = next(iter(expected))
        largest = max(largest, float(np.abs(got[name] - expected[name]).max()))
    return largest


def _operators(path):
    """The builtin operator names of every subgraph of a .tflite file (from its flatbuffer)."""
    from ai_edge_litert import schema_py_generated as schema

    with open(path, "rb") as handle:
        model = schema.Model.GetRootAsModel(handle.read(), 0)
    names = {value: name for name, value in vars(schema.BuiltinOperator).items()
             if not name.startswith("_")}
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        custom = code.CustomCode()
        codes.append(custom.decode() if custom else names.get(builtin, str(builtin)))
    used = set()
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for o in range(graph.OperatorsLength()):
            used.add(codes[graph.Operators(o).OpcodeIndex()])
    return sorted(used)


# The ai_edge_litert Interpreter's own wrapper methods `_Runtime` drives subgraphs with (any
# subgraph, by index; the public Interpreter methods reach only the first one, and signature
# runners resize, re-allocate and copy every input on every call). Private API of
# ai_edge_litert, used here only: `tests/test_translator.py` fails by name if one goes.
LITERT_WRAPPER_METHODS = ("GetSubgraphIndexFromSignature", "ResizeInputTensor", "AllocateTensors",
                          "SetTensor", "Invoke", "GetTensor", "tensor")


def litert_wrapper(interpreter):
    """The private wrapper of an `ai_edge_litert` Interpreter, or None when it lacks any of
    `LITERT_WRAPPER_METHODS`."""
    wrapper = getattr(interpreter, "_interpreter", None)
    if wrapper is None or not all(hasattr(wrapper, name) for name in LITERT_WRAPPER_METHODS):
        return None
    return wrapper


class _Runtime:
    """The two signatures of a translator file in `ai_edge_litert`.

    Both run directly on their subgraphs through the Interpreter's wrapper (`litert_wrapper`):
    inputs are resized and tensors allocated only when a shape changes (a new number of
    hypotheses), the `decode_step` inputs that stay the same for a sentence (cross-attention
    caches, source mask, beams) are set once per sentence, and the self-attention caches a step
    returns are copied into its inputs inside the interpreter's buffers. Without the wrapper
    (another ai_edge_litert), it warns and runs signature runners, which resize, re-allocate and
    copy every input at every step."""

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
        if "encode" not in signatures or not steps:
            raise ValueError(f"{path} is not a translator: its signatures are {sorted(signatures)}"
                             f" (export_translator writes encode and {STEP_SIGNATURE.format('<k>')})")
        self.beam_sizes = tuple(sorted(steps))
        self._steps = steps
        self._inputs, self._outputs = {}, {}
        for key in ("encode", *steps.values()):
            runner = self.interpreter.get_signature_runner(key)
            details = runner.get_input_details()
            self._inputs[key] = {name: detail["index"] for name, detail in details.items()}
            self._outputs[key] = {name: detail["index"] for name, detail in
                                  runner.get_output_details().items()}
            if key != "encode":
                self.max_target_length = int(details["self_keys_0"]["shape_signature"][1])
                self.layers = sum(name.startswith("self_keys_") for name in details)
                self.max_source_length = int(details["source_mask"]["shape_signature"][1])
            del runner
        self.operators = _operators(path)
        self._wrapper = litert_wrapper(self.interpreter)
        self.direct = self._wrapper is not None
        if not self.direct:
            warnings.warn(f"{path}: this ai_edge_litert has no Interpreter wrapper methods "
                          f"{LITERT_WRAPPER_METHODS}, so every decode step goes through a "
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
        self._constants, self._started, self._key = {}, False, steps[self.beam_sizes[-1]]
        self._invalidate()
        # timing: when true, `invoke_seconds` adds up the CPU time (this thread's) spent inside
        # the interpreter's encode and decode steps (the benchmark's split between the graph
        # and the Python beam search around it)
        self.timing, self.invoke_seconds = False, 0.0

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
                             f"beam_sizes=[..., {beams}])")
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
    """Translate text on device: sentencepiece, then beam search over the `encode` and
    `decode_step` signatures of a file written by `export_translator`, in `ai_edge_litert`.

    Args:
        model_path: the `.tflite` translator.
        tokenizer: a `sentencepiece.SentencePieceProcessor` or the path of its `.model` file
            (ids as `keras_compress.nmt.data.train_tokenizer` makes them).
        num_threads: interpreter threads (1 for the benchmark's per-sentence latency).

    Example (not run: needs a trained model)::

        translator = Translator("translator.tflite", "spm.model")
        translator.translate(["In the beginning God created the heaven and the earth ."])
    """

    def __init__(self, model_path, tokenizer, num_threads=1):
        if isinstance(tokenizer, (str, os.PathLike)):
            import sentencepiece

            if not os.path.exists(tokenizer):
                raise FileNotFoundError(f"sentencepiece model {tokenizer} does not exist")
            tokenizer = sentencepiece.SentencePieceProcessor(model_file=os.fspath(tokenizer))
        self.tokenizer = tokenizer
        self._runtime = _Runtime(model_path, num_threads)
        self.max_source_length = self._runtime.max_source_length
        self.max_target_length = self._runtime.max_target_length

    def translate_ids(self, source_ids, beam_size=4, length_penalty=0.6, max_length=None):
        """Translate one sentence given as subword ids ending with EOS (3); return target ids
        without BOS and EOS. `max_length` (generated tokens, EOS included) defaults to
        `2 * len(source_ids) + 10`, at most the file's T."""
        source_ids = [int(token) for token in source_ids]
        if not source_ids:
            raise ValueError("source_ids is empty")
        if len(source_ids) > self.max_source_length:
            raise ValueError(f"{len(source_ids)} source subwords, more than this translator's "
                             f"max_source_length={self.max_source_length}")
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
                                  length_penalty, max_length)[0]

    def translate(self, sentences, beam_size=4, length_penalty=0.6, max_length=None):
        """Translate strings one at a time (batch 1, as on a phone) and return strings.
        Sentences longer than the file's source length are cut, with a warning."""
        if isinstance(sentences, str):
            raise TypeError("translate takes a list of sentences, not one string")
        results = []
        for sentence in sentences:
            ids = self.tokenizer.encode(sentence)
            if len(ids) + 1 > self.max_source_length:
                warnings.warn(f"sentence of {len(ids)} subwords cut to "
                              f"{self.max_source_length - 1}: {sentence[:60]!r}", stacklevel=2)
                ids = ids[: self.max_source_length - 1]
            target = self.translate_ids(ids + [EOS_ID], beam_size, length_penalty, max_length)
            results.append(self.tokenizer.decode(target))
        return results
