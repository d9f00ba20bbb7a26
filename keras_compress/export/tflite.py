"""Export a Keras 3 model to a TFLite flatbuffer that a phone runs, and check it.

The paper's deployment target (Acharya et al., AAAI 2019, Sections 4-5: model size and
on-device latency) and the post-training 16- and 8-bit baselines of its Tables 2 and 4.
The route is the one TensorFlow documents for Keras 3: ``keras.export.ExportArchive`` writes a
SavedModel with a fixed input signature, ``tf.lite.TFLiteConverter.from_saved_model`` converts
it with builtin ops only, and the result is run in ``ai_edge_litert``'s Interpreter (the
runtime phones ship; ``tf.lite.Interpreter`` is deprecated and gave wrong int8 results) on
sample inputs and compared with the Keras model.
"""

import dataclasses
import os
import re
import tempfile
import warnings
from typing import Any, Sequence

import numpy as np

from keras_compress import engine
from keras_compress.export import flatbuffer
from keras_compress.export.static_quantization import ACTIVATION_BITS

__all__ = ["TFLiteExportError", "TFLiteExport", "export_tflite"]

QUANTIZATIONS = (None, "float16", "dynamic", "int8", "int16x8", "int8x8")
# ai-edge-quantizer's static recipes on the float32 file (keras_compress.export.static_quantization):
# mode -> activation bits
STATIC = ACTIVATION_BITS


class TFLiteExportError(ValueError):
    """The model cannot be converted to TFLite with builtin ops only."""


@dataclasses.dataclass(frozen=True)
class TFLiteExport:
    """What :func:`export_tflite` wrote and how close the TFLite model is to Keras.

    Attributes:
        path: the ``.tflite`` file.
        size_bytes: its size on disk.
        quantization: the ``quantization`` argument used.
        max_abs_diff: largest absolute difference between the Keras outputs and the
            ``ai_edge_litert`` Interpreter outputs over ``num_samples`` sample rows.
        num_samples: how many sample rows were compared.
    """

    path: str
    size_bytes: int
    quantization: str | None
    max_abs_diff: float
    num_samples: int

    def as_dict(self):
        return dataclasses.asdict(self)


def _as_input_list(data, num_inputs, names=None):
    """One array per model input from an array, a list of arrays, a dict of arrays keyed by
    input name (keras-hub models) or an ``(x, y)`` pair."""
    if hasattr(data, "shape"):
        return [np.asarray(data)]
    if isinstance(data, dict):
        if names is None:
            raise TypeError("got a dict of inputs for a model whose inputs are not a dict")
        missing = [name for name in names if name not in data]
        if missing:
            raise ValueError(f"the input dict lacks {missing}; the model takes {names}")
        return [np.asarray(data[name]) for name in names]
    if isinstance(data, (list, tuple)):
        if len(data) == num_inputs and all(hasattr(item, "shape") for item in data):
            return [np.asarray(item) for item in data]
        if len(data) == 2:  # (x, y) as fit() takes it: keep x
            return _as_input_list(data[0], num_inputs, names)
    raise TypeError(
        f"expected an array, a list of {num_inputs} arrays (one per model input), a dict of "
        f"arrays or an (x, y) pair, got {type(data).__name__}"
    )


def _input_names(model):
    """The keys of a model that takes a dict of inputs (every keras-hub model), else None."""
    structure = getattr(model, "input", None) if getattr(model, "inputs", None) else None
    return sorted(structure) if isinstance(structure, dict) else None


def _pack(names, arrays):
    """What the model's call takes: one array, a list, or a dict keyed by input name."""
    if names is not None:
        return dict(zip(names, arrays))
    return arrays[0] if len(arrays) == 1 else list(arrays)


def _collect_rows(data, num_inputs, limit, names=None):
    """Up to ``limit`` rows from arrays, or from a tf.data.Dataset / generator of batches."""
    if data is None:
        return None
    if callable(data) and not hasattr(data, "shape"):
        data = data()
    if hasattr(data, "shape") or isinstance(data, (list, tuple, dict)):
        return [array[:limit] for array in _as_input_list(data, num_inputs, names)]
    chunks, count = None, 0
    for batch in data:
        arrays = _as_input_list(batch, num_inputs, names)
        chunks = chunks or [[] for _ in arrays]
        for store, array in zip(chunks, arrays):
            store.append(array)
        count += len(arrays[0])
        if count >= limit:
            break
    if chunks is None:
        raise ValueError("representative_data / sample_inputs yielded no batches")
    return [np.concatenate(store)[:limit] for store in chunks]


def _input_specs(model, rows, batch_size, sequence_length=None):
    """One ``tf.TensorSpec`` per model input; int inputs become int32, floats float32; a
    dynamic sequence dimension (axis 1) becomes ``sequence_length`` when given."""
    import tensorflow as tf

    specs = []
    known = getattr(model, "inputs", None)
    names = _input_names(model)
    if names is not None:
        known = [model.input[name] for name in names]
    if known:
        for index, tensor in enumerate(known):
            dtype = tf.as_dtype(tensor.dtype)
            specs.append((tuple(tensor.shape), dtype, getattr(tensor, "name", None) or f"input_{index}"))
    elif rows is not None:
        for index, array in enumerate(rows):
            specs.append(((None,) + array.shape[1:], tf.as_dtype(array.dtype), f"input_{index}"))
    else:
        raise ValueError(
            f"Model {model.name!r} has no symbolic inputs (subclassed model?): pass "
            "sample_inputs=... or representative_data=... so the input signature is known."
        )
    result = []
    for index, (shape, dtype, name) in enumerate(specs):
        if dtype.is_integer:
            dtype = tf.int32  # TFLite gathers with int32 ids; int64 would add casts.
        elif dtype.is_floating:
            dtype = tf.float32
        shape = (batch_size,) + tuple(shape[1:])
        if sequence_length is not None and len(shape) > 1 and shape[1] is None:
            shape = (shape[0], sequence_length) + shape[2:]
        name = re.sub(r"[^A-Za-z0-9_]", "_", name) or f"input_{index}"
        result.append(tf.TensorSpec(shape, dtype, name=name))
    return result


def _random_rows(model, specs, count, seed=0):
    """Sample rows when the caller gave none: ids below the smallest embedding vocabulary."""
    rng = np.random.default_rng(seed)
    vocab = [layer.input_dim for layer in engine.all_layers(model) if hasattr(layer, "input_dim")]
    high = min(vocab) if vocab else 2
    rows = []
    for spec in specs:
        shape = (count,) + tuple(spec.shape[1:])
        if None in shape:
            raise ValueError(
                f"Input {spec.name!r} has a dynamic dimension {tuple(spec.shape)}: "
                "pass sample_inputs=... with concrete shapes, or sequence_length=N."
            )
        if spec.dtype.is_integer:
            rows.append(rng.integers(0, high, size=shape).astype(np.int32))
        else:
            rows.append(rng.standard_normal(shape).astype(np.float32))
    return rows


def converter_error(error):
    """The converter's own error messages (its structured ``ConverterError.errors``, else the
    ``error:`` lines of its MLIR diagnostics without their ``loc(...)`` prefix), not the
    ``note: called from`` line that ends the message."""
    found = [str(getattr(item, "error_message", "")).strip() for item in getattr(error, "errors", None) or []]
    found = [text for text in found if text]
    if not found:
        for line in str(error).splitlines():
            if "error:" in line:
                found.append(_without_location(line.split("error:", 1)[1].strip()))
    if not found:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        found = lines[-1:] or [repr(error)]
    unique = list(dict.fromkeys(found))
    return " | ".join(unique[:3])[:1500]


def _without_location(text):
    """``text`` without a leading MLIR location ``loc(...):`` (nested parentheses)."""
    if not text.startswith("loc("):
        return text
    depth = 0
    for index, character in enumerate(text[3:], 3):  # from the "(" of "loc("
        depth += {"(": 1, ")": -1}.get(character, 0)
        if depth == 0:
            return text[index + 1:].lstrip(": ").strip()
    return text


def _unsupported_ops(message):
    ops = re.findall(r"'(tf\.[A-Za-z0-9_]+)'", message)
    ops += re.findall(r"\b(tf\.[A-Za-z0-9_]+)\b", message)
    return sorted({op for op in ops if op != "tf.lite"})  # tf.lite: the converter's advice, not an op


def convert(model, endpoints, quantization=None, representative_dataset=None, integer_io=False,
            integer_ops_only=True):
    """The one conversion pipeline: `model`'s `endpoints` (`[(name, function, input_signature)]`)
    written as a SavedModel by `keras.export.ExportArchive` and converted by
    `tf.lite.TFLiteConverter.from_saved_model` with builtin operators only; returns the
    flatbuffer's bytes (the converter's own exception when it fails).

    `quantization`: None (float32), "float16", "dynamic" or "int8". With "int8" and a
    `representative_dataset` (the converter's: lists of inputs, or `(signature, inputs)` pairs for
    several endpoints), activations are calibrated: full-integer quantization, every operator an
    int8 kernel when `integer_ops_only` (else float fallbacks are allowed), and int8 float inputs
    and outputs with `integer_io`."""
    import keras
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as saved_model_dir:
        archive = keras.export.ExportArchive()
        archive.track(model)
        for name, function, signature in endpoints:
            archive.add_endpoint(name, function, input_signature=signature)
        archive.write_out(saved_model_dir, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            saved_model_dir, signature_keys=[name for name, _, _ in endpoints])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization is not None:
            # Optimize.DEFAULT alone is dynamic-range quantization (int8 weights, float
            # activations); it also turns FakeQuant ops from quantization-aware training
            # into real int8 tensors with the trained ranges.
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantization == "int8" and representative_dataset is not None:
            if integer_ops_only:
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.representative_dataset = representative_dataset
            if integer_io:
                converter.inference_input_type = tf.int8
                converter.inference_output_type = tf.int8
        return converter.convert()


def _calibration_batches(calibration_rows, specs):
    """The calibration rows as whole batches of the exported inputs' static batch size (1 when
    dynamic; a last, partial batch is dropped), each a list of arrays in `specs`' order and
    dtypes: what TF's converter and ai-edge-quantizer both calibrate on."""
    step = specs[0].shape[0] or 1  # a static batch size must be matched
    for start in range(0, len(calibration_rows[0]) - step + 1, step):
        yield [np.asarray(array[start : start + step], dtype=spec.dtype.as_numpy_dtype)
               for array, spec in zip(calibration_rows, specs)]


def _convert(model, specs, quantization, calibration_rows, integer_io, names=None):
    def serve(*args):
        return model(_pack(names, args), training=False)

    representative_dataset = None
    if quantization == "int8" and calibration_rows is not None:

        def representative_dataset():
            yield from _calibration_batches(calibration_rows, specs)

    try:
        return convert(model, [("serve", serve, specs)], quantization, representative_dataset,
                       integer_io)
    except Exception as error:  # ConverterError and friends carry MLIR text
        message = str(error)
        ops = _unsupported_ops(message)
        raise TFLiteExportError(
            f"TFLite cannot convert model {model.name!r} with builtin ops only "
            f"(quantization={quantization!r}). Unsupported: {', '.join(ops) or 'see below'}."
            f"{_shape_hint(model, specs)}{_low_bit_hint(model, quantization)}\n"
            f"Converter said: {converter_error(error)}"
        ) from error


def _low_bit_hint(model, quantization):
    """Fake-quantized tables under 8 bits convert to 4-bit (or narrower) tensors that TFLite's
    GATHER does not take; `strip` puts the weights on their grid and they export as int8."""
    if quantization not in ("dynamic", "int8"):
        return ""
    from keras_compress.quantization import is_quantized

    low = [layer.name for layer in engine.all_layers(model) if is_quantized(layer) and layer.bits < 8]
    if not low:
        return ""
    return (f" The model is fake-quantized under 8 bits ({', '.join(low[:5])}{', ...' if len(low) > 5 else ''}): "
            "call keras_compress.strip(model) first, which puts every weight on its grid and keeps the "
            "model's outputs; the file then stores the weights as int8.")


def _rolled_recurrent_layers(model):
    import keras

    return [layer.name for layer in engine.all_layers(model) if isinstance(layer, keras.layers.RNN) and not layer.unroll]


def _shape_hint(model, specs):
    """What to change for a model whose shapes TFLite cannot express: a rolled LSTM/GRU needs
    unroll=True (or a static batch); any other dynamic length needs sequence_length=N."""
    recurrent = _rolled_recurrent_layers(model)
    if recurrent:
        return (f" The recurrent layers {recurrent} need unroll=True (with a fixed sequence length), "
                "or pass batch_size=1 to export_tflite for a static batch.")
    dynamic = [spec.name for spec in specs if None in tuple(spec.shape)[1:]]
    if dynamic:
        return (f" The inputs {dynamic} have a dynamic length: pass sequence_length=N (the fixed length "
                "the TFLite model will take).")
    return ""


def _check_calibratable(model):
    import keras

    for layer in engine.all_layers(model):
        if isinstance(layer, keras.layers.RNN) and not layer.unroll:
            # TF 2.21's calibrator segfaults on the While loop of a rolled LSTM/GRU: refuse
            # instead of taking the Python process down.
            raise TFLiteExportError(
                f"Full-integer int8 calibration of the recurrent layer {layer.name!r} needs "
                "unroll=True (TensorFlow's calibrator crashes on the rolled loop); rebuild it "
                "with unroll=True and a fixed sequence length, or use quantization='dynamic'."
            )


def _keras_outputs(model, rows, names=None):
    import keras

    outputs = model(_pack(names, rows), training=False)
    if isinstance(outputs, dict):
        outputs = [outputs[key] for key in sorted(outputs)]
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return [np.asarray(keras.ops.convert_to_numpy(output)) for output in outputs]


def run_tflite(model_content: bytes, rows: Sequence[np.ndarray], batch_size: int | None = None,
               input_names: Sequence[str] | None = None) -> list[np.ndarray]:
    """Run a TFLite flatbuffer in ``ai_edge_litert`` on a list of input arrays.

    ``input_names`` gives the signature input each array feeds (the model's input order); without
    it the signature's own order is used, which is alphabetical, not the model's.

    Inputs are fed in chunks of ``batch_size`` rows (all at once when ``None``); integer
    quantized inputs and outputs are (de)quantized with the tensor's scale and zero point.
    Returns a list of float arrays, one per output, in output-name order.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_content)
    runner = interpreter.get_signature_runner()
    input_details = runner.get_input_details()
    output_details = runner.get_output_details()
    names = list(input_names) if input_names is not None else list(input_details)
    total = len(rows[0])
    step = batch_size or total
    collected = {name: [] for name in output_details}
    for start in range(0, total, step):
        feed = {}
        for name, array in zip(names, rows):
            chunk = array[start : start + step]
            detail = input_details[name]
            scale, zero_point = detail["quantization"]
            if scale and np.issubdtype(detail["dtype"], np.integer) and not np.issubdtype(chunk.dtype, np.integer):
                chunk = np.round(chunk / scale + zero_point)
            feed[name] = chunk.astype(detail["dtype"])
        for name, value in runner(**feed).items():
            scale, zero_point = output_details[name]["quantization"]
            value = value.astype(np.float32)
            if scale:
                value = (value - zero_point) * scale
            collected[name].append(value)
    return [np.concatenate(collected[name]) for name in sorted(collected, key=_natural_key)]


def _natural_key(name):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _check_writable(path):
    """Create the folder and prove a file can be written there, before any conversion."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot write the TFLite model to {path!r}: it is a directory")
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise NotADirectoryError(f"cannot write the TFLite model to {path!r}: {directory!r} is a file")
    try:
        os.makedirs(directory, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, suffix=".tflite"):
            pass
    except OSError as error:
        raise type(error)(f"cannot write the TFLite model to {path!r}: {error.strerror or error}") from error


def stored_kernels(model_content: bytes) -> list[tuple[str, np.dtype, tuple[int, ...]]]:
    """(name, numpy dtype, shape) of the constant tensors of at least 2 dimensions in a TFLite
    model (sub-byte integer kernels are reported as int8/uint8)."""
    return flatbuffer.constant_tensors(model_content, min_rank=2)


# TFLite's dynamic-range quantization leaves weights with fewer elements than this float.
TFLITE_MIN_QUANTIZED_ELEMENTS = 1024


def _warn_float_kernels(content, model, quantization):
    kernels = stored_kernels(content)
    integer = [name for name, dtype, _ in kernels if np.issubdtype(dtype, np.integer)]
    large_float = [f"{name} {shape}" for name, dtype, shape in kernels
                   if dtype == np.float32 and int(np.prod(shape)) >= TFLITE_MIN_QUANTIZED_ELEMENTS]
    if not integer:
        warnings.warn(
            f"export_tflite(quantization={quantization!r}): the TFLite model of {model.name!r} has no "
            "integer kernel; every weight stayed float32"
            + (f" ({len(kernels)} kernels, all under {TFLITE_MIN_QUANTIZED_ELEMENTS} elements, which "
               "TFLite keeps float unless they are fake-quantized: see quantize_model)" if not large_float else ""),
            UserWarning, stacklevel=3)
    if large_float:
        warnings.warn(
            f"export_tflite(quantization={quantization!r}) left these kernels of {model.name!r} float32: "
            + ", ".join(large_float), UserWarning, stacklevel=3)


def export_tflite(
    model: Any,
    path: str | os.PathLike,
    quantization: str | None = None,
    representative_data: Any = None,
    sample_inputs: Any = None,
    batch_size: int | None = None,
    num_samples: int = 64,
    integer_io: bool = False,
    sequence_length: int | None = None,
) -> TFLiteExport:
    """Convert ``model`` to a ``.tflite`` file with builtin ops and check it against Keras.

    Args:
        model: a built Keras 3 model (Functional, Sequential, or subclassed when
            ``sample_inputs``/``representative_data`` gives the input shapes).
        path: where to write the ``.tflite`` file (its folder is created).
        quantization: ``None`` (float32), ``"float16"`` (float16 weights),
            ``"dynamic"`` (int8 weights, float activations: post-training dynamic range) or
            ``"int8"``. With ``representative_data``, ``"int8"`` is full-integer
            quantization: int8 weights and activations calibrated on those rows, float
            inputs and outputs unless ``integer_io=True`` (integer token ids stay int32).
            Without it, ``"int8"`` is meant for models trained with fake-quant ops
            (``keras.quantizers.fake_quant_with_min_max_vars``): the converter turns them into
            int8 tensors using the trained ranges; weights become int8 too. ``"int16x8"`` and
            ``"int8x8"`` (int16 / int8 activations, int8 per-channel weights) quantize the
            float32 file with Google's ai-edge-quantizer (``pip install ai-edge-quantizer``),
            calibrated on ``representative_data`` (required); inputs and outputs stay as they
            are (see ``keras_compress.export.static_quantization``).
        representative_data: calibration inputs for ``"int8"``: an array, a list of arrays
            (one per model input), an ``(x, y)`` pair, a ``tf.data.Dataset`` or a generator
            of batches. Its first ``num_samples`` rows are also the check inputs.
        sample_inputs: inputs used to compare Keras and TFLite (same forms as above). When
            neither this nor ``representative_data`` is given, random rows are drawn (ids below
            the smallest embedding vocabulary for integer inputs).
        batch_size: fix the batch dimension (e.g. ``1``) instead of leaving it dynamic. LSTM
            and GRU layers convert with builtin ops only if built with ``unroll=True`` or
            exported with a static batch.
        num_samples: rows used for calibration and for the check.
        integer_io: with full-integer ``"int8"``, make float inputs and outputs int8 too.
        sequence_length: fix a dynamic sequence dimension (axis 1 of every input whose
            length is ``None``, as in keras-hub models) to this length, for models the
            converter cannot express with a dynamic length (the error says so).

    Models with a dict of inputs (every keras-hub model) take ``sample_inputs`` and
    ``representative_data`` as dicts of arrays keyed by input name; the TFLite signature has
    one input per key. The output path is checked (its folder created and written to) before
    anything is converted, and the file is written only once the TFLite model matched Keras (an
    export or check that fails leaves the path as it was). With ``"dynamic"`` or ``"int8"``, a UserWarning names the model's
    large kernels that TFLite left float32, and says so when no kernel came out as integers.

    Returns:
        A :class:`TFLiteExport` with ``path``, ``size_bytes``, ``quantization``,
        ``max_abs_diff`` (largest absolute difference between Keras and TFLite outputs on the
        sample rows) and ``num_samples``.

    Raises:
        ValueError: a bad argument.
        OSError: the output path cannot be written (checked before converting).
        TFLiteExportError: the converter cannot express the model with TFLite builtin ops
            (the message names the ops, e.g. ``tf.TensorListReserve`` from a non-unrolled LSTM,
            what to change - ``unroll=True``, ``sequence_length=N``, ``strip(model)`` for a
            model fake-quantized under 8 bits - and the converter's own error lines), or the
            TFLite model's outputs do not have the Keras model's shapes.

    Example:

    ```python
    model = keras_compress.models.dan(vocab_size=20000, num_classes=2)
    result = keras_compress.export_tflite(model, "dan.tflite", quantization="dynamic",
                                          sample_inputs=x_test[:32])
    print(result.size_bytes, result.max_abs_diff)
    ```
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive int, got {num_samples!r}")
    if sequence_length is not None and (isinstance(sequence_length, bool) or not isinstance(sequence_length, int)
                                        or sequence_length < 1):
        raise ValueError(f"sequence_length must be a positive int or None, got {sequence_length!r}")
    if not getattr(model, "built", False):
        raise ValueError(f"Model {getattr(model, 'name', model)!r} is not built: call it on data or build() it first")
    if quantization in STATIC:
        if representative_data is None:
            raise ValueError(f"quantization={quantization!r} calibrates activations: pass representative_data")
        if integer_io:
            raise ValueError(f"integer_io=True is for quantization='int8'; {quantization!r} keeps float inputs and outputs")
        from keras_compress.export import static_quantization

        static_quantization.check_installed(quantization)
    path = os.fspath(path)
    if not path.endswith(".tflite"):
        raise ValueError(f"path must end with '.tflite', got {path!r}")
    _check_writable(path)

    names = _input_names(model)
    known_inputs = len(model.inputs) if getattr(model, "inputs", None) else None
    calibration_rows = _collect_rows(representative_data, known_inputs or 1, num_samples, names)
    check_rows = _collect_rows(sample_inputs, known_inputs or 1, num_samples, names)
    specs = _input_specs(model, check_rows if check_rows is not None else calibration_rows, batch_size,
                         sequence_length)
    if check_rows is None:
        check_rows = calibration_rows if calibration_rows is not None else _random_rows(model, specs, min(num_samples, 8))
    if len(check_rows) != len(specs):
        raise ValueError(f"model has {len(specs)} inputs but the sample data has {len(check_rows)} arrays")
    check_rows = [np.asarray(array, dtype=spec.dtype.as_numpy_dtype) for array, spec in zip(check_rows, specs)]
    for array, spec in zip(check_rows, specs):
        fixed = tuple(spec.shape)[1:]
        if any(want is not None and want != got for want, got in zip(fixed, array.shape[1:])):
            raise ValueError(f"sample input {spec.name!r} has shape {array.shape}, the model takes {tuple(spec.shape)}")
    if batch_size is not None:
        usable = len(check_rows[0]) // batch_size * batch_size
        if usable == 0:
            raise ValueError(f"need at least batch_size={batch_size} sample rows")
        check_rows = [array[:usable] for array in check_rows]

    if quantization == "int8" and calibration_rows is not None:
        _check_calibratable(model)
    content = _convert(model, specs, None if quantization in STATIC else quantization, calibration_rows,
                       integer_io, names)
    if quantization in STATIC:
        from keras_compress.export import static_quantization

        calibration = {"serve": [dict(zip([spec.name for spec in specs], batch))
                                 for batch in _calibration_batches(calibration_rows, specs)]}
        content = static_quantization.quantize_static(content, calibration, STATIC[quantization])
    # Everything is checked on the bytes in memory; only a model that passed is written.
    try:
        tflite_outputs = run_tflite(content, check_rows, batch_size, [spec.name for spec in specs])
    except (RuntimeError, ValueError) as error:
        raise TFLiteExportError(
            f"the TFLite model of {model.name!r} does not run in ai_edge_litert on inputs of shapes "
            f"{[tuple(array.shape) for array in check_rows]}: {error}{_shape_hint(model, specs)}") from error
    keras_outputs = _keras_outputs(model, check_rows, names)
    max_diff = _compare(model, specs, tflite_outputs, keras_outputs)
    if quantization in ("dynamic", "int8", *STATIC):
        _warn_float_kernels(content, model, quantization)
    write_atomically(path, content)
    return TFLiteExport(
        path=path,
        size_bytes=len(content),
        quantization=quantization,
        max_abs_diff=max_diff,
        num_samples=len(check_rows[0]),
    )


def _compare(model, specs, tflite_outputs, keras_outputs):
    """Largest absolute difference between the TFLite and the Keras outputs; TFLiteExportError
    naming the shapes when they cannot be compared."""
    if len(tflite_outputs) != len(keras_outputs):
        raise TFLiteExportError(
            f"the TFLite model of {model.name!r} has {len(tflite_outputs)} outputs, the Keras model "
            f"{len(keras_outputs)}")
    largest = 0.0
    for index, (lite, expected) in enumerate(zip(tflite_outputs, keras_outputs)):
        if lite.size != expected.size:
            raise TFLiteExportError(
                f"output {index} of the TFLite model of {model.name!r} has shape {tuple(lite.shape)}, "
                f"the Keras model's {tuple(expected.shape)}: the converted model computes something "
                f"else.{_shape_hint(model, specs)}")
        if expected.size:
            largest = max(largest, float(np.max(np.abs(lite.reshape(expected.shape) - expected))))
    return largest


def write_atomically(path: str, content: bytes) -> None:
    """Write ``content`` to ``path`` through a temporary file in the same folder: ``path`` holds
    either its old content or all of the new one, never a part."""
    directory = os.path.dirname(os.path.abspath(path))
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix=".", suffix=".tflite.partial", delete=False)
    try:
        with handle:
            handle.write(content)
        os.replace(handle.name, path)
    except BaseException:
        if os.path.exists(handle.name):
            os.remove(handle.name)
        raise
