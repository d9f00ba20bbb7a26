"""Static quantization of a float32 `.tflite` file with Google's `ai-edge-quantizer`: int8
per-channel weights and int16 (its `static_wi8_ai16` recipe) or int8 (`static_wi8_ai8`)
per-tensor activations calibrated on sample inputs. For int16 it is the route TensorFlow's own
converter cannot take for models with token ids (its 16x8 mode asks a calibrated range for the
int32 ids: tensorflow/model-optimization issue 1090); for int8 it is the same recipe with the
converter's blind spots left float (below), which TensorFlow's full-integer mode quantizes.

The quantizer reads the flatbuffer and calibrates by running it in LiteRT's interpreter, per
signature, so files with several signatures and a `WHILE` loop work. What stays float32, and why:

- every signature's inputs and outputs (callers feed and read float; a step's caches are fed
  back as they came out, which two independently calibrated int16 scales would break);
- the operators downstream of `LOG_SOFTMAX` and `TOPK_V2` (beam bookkeeping: scores summed over
  steps and masked with large negatives, no meaningful int16 range; the quantizer keeps
  `LOG_SOFTMAX` and `TOPK_V2` float itself);
- an operator with a constant input of magnitude 1e6 or more (attention masks filled with -1e9:
  an integer grid spanning 1e9 would round every score to zero) and the `SOFTMAX` it feeds;
- a `BATCH_MATMUL` whose first operand is a folded constant, and `DYNAMIC_UPDATE_SLICE` /
  `SELECT` / `CONCATENATION` / `PACK` with a float constant operand (the quantizer would give
  them int8 weight types or fail on broadcast constants).

Needs `pip install ai-edge-quantizer` (the `aeq` extra). `QUANTIZER_INTERNALS` lists, with a
probe each, what this module uses below the quantizer's public API (the test suite runs them by
name).
"""

import contextlib
import io
import logging
import re
import struct
import warnings

import numpy as np

__all__ = ["quantize_static", "float_scopes", "check_installed", "MISSING", "QUANTIZER_INTERNALS",
           "ACTIVATION_BITS"]

# the quantization modes of export_tflite and export_translator that this module makes -> the
# activation bits of their recipe
ACTIVATION_BITS = {"int16x8": 16, "int8x8": 8}

MISSING = ("quantization={!r} needs Google's ai-edge-quantizer: pip install ai-edge-quantizer "
           "(or nlp-compress[aeq])")
# beam bookkeeping starts at these: everything computed from their outputs stays float
_SEARCH_OPERATORS = ("LOG_SOFTMAX", "TOPK_V2")
_SAME_SCALE_OPERATORS = ("DYNAMIC_UPDATE_SLICE", "SELECT", "SELECT_V2", "CONCATENATION", "PACK")
_WEIGHT_OPERATORS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "EMBEDDING_LOOKUP",
                     "GATHER", "BATCH_MATMUL")
_MASK_MAGNITUDE = 1e6


def check_installed(mode):
    """ImportError with a one-line install hint, naming `mode`, when ai-edge-quantizer is
    missing."""
    _import(mode)


def _import(mode=None):
    try:
        from ai_edge_quantizer import calibrator, quantizer, recipe
        from ai_edge_quantizer.utils import qsv_utils
    except ImportError as error:
        raise ImportError(MISSING.format(mode)) from error
    return calibrator, quantizer, recipe, qsv_utils


def _operator_names():
    from ai_edge_litert import schema_py_generated as schema

    return {value: name for name, value in vars(schema.BuiltinOperator).items()
            if not name.startswith("_")}


def float_scopes(content):
    """The quantizer's scope (output tensor names, each followed by ';') of every operator of
    `content` that stays float32 (see the module docstring)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(content, 0)
    names = _operator_names()
    codes = [names.get(max(model.OperatorCodes(i).BuiltinCode(),
                           model.OperatorCodes(i).DeprecatedBuiltinCode()), "?")
             for i in range(model.OperatorCodesLength())]
    scopes = []
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        searched, masked = set(), set()  # tensors computed from search / mask-filled operators
        for o in range(graph.OperatorsLength()):
            operator = graph.Operators(o)
            name = codes[operator.OpcodeIndex()]
            inputs = [operator.Inputs(i) for i in range(operator.InputsLength()) if operator.Inputs(i) >= 0]
            outputs = [operator.Outputs(i) for i in range(operator.OutputsLength())]
            if not outputs:
                continue
            constants = [graph.Tensors(i) for i in inputs
                         if model.Buffers(graph.Tensors(i).Buffer()).DataLength() > 0]
            float_constants = [t for t in constants if t.Type() == schema.TensorType.FLOAT32]
            keep = False
            if name in _SEARCH_OPERATORS or any(i in searched for i in inputs):
                keep = True
                searched.update(outputs)
            if any(np.abs(model.Buffers(t.Buffer()).DataAsNumpy().view(np.float32)).max(initial=0)
                   >= _MASK_MAGNITUDE for t in float_constants):
                keep = True
                masked.update(outputs)
            elif name == "SOFTMAX" and any(i in masked for i in inputs):
                keep = True
            if name == "BATCH_MATMUL" and model.Buffers(graph.Tensors(inputs[0]).Buffer()).DataLength():
                keep = True
            if name in _SAME_SCALE_OPERATORS and float_constants:
                keep = True
            output_rank = graph.Tensors(outputs[0]).ShapeLength()
            if name not in _WEIGHT_OPERATORS and any(0 < t.ShapeLength() != output_rank
                                                     for t in float_constants):
                keep = True
            if keep:
                scopes.append("".join(graph.Tensors(i).Name().decode() + ";" for i in outputs))
    return scopes


def _float_outputs(content):
    """Point every subgraph output (and signature output) that the quantizer replaced by the
    QUANTIZE of a float tensor back at the float tensor (it does so for a WHILE body's loop
    variables that pass through unchanged, and for outputs of operators kept float). In place:
    only tensor indices change."""
    from ai_edge_litert import schema_py_generated as schema

    content = bytearray(content)
    model = schema.Model.GetRootAsModel(content, 0)
    quantize = schema.BuiltinOperator.QUANTIZE
    codes = [max(model.OperatorCodes(i).BuiltinCode(), model.OperatorCodes(i).DeprecatedBuiltinCode())
             for i in range(model.OperatorCodesLength())]
    replaced = {}
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        producers = {}
        for o in range(graph.OperatorsLength()):
            operator = graph.Operators(o)
            for j in range(operator.OutputsLength()):
                producers[operator.Outputs(j)] = operator
        outputs = graph.OutputsAsNumpy() if graph.OutputsLength() else []
        for i in range(len(outputs)):
            operator = producers.get(int(outputs[i]))
            if (operator is not None and codes[operator.OpcodeIndex()] == quantize
                    and graph.Tensors(operator.Inputs(0)).Type() == schema.TensorType.FLOAT32):
                replaced[(g, int(outputs[i]))] = operator.Inputs(0)
                outputs[i] = operator.Inputs(0)
    for s in range(model.SignatureDefsLength()):
        signature = model.SignatureDefs(s)
        for j in range(signature.OutputsLength()):
            entry = signature.Outputs(j)
            key = (signature.SubgraphIndex(), entry.TensorIndex())
            if key in replaced:
                offset = entry._tab.Offset(6)  # TensorMap.tensor_index, present when non-zero
                struct.pack_into("<I", content, entry._tab.Pos + offset, replaced[key])
    return bytes(content)


def quantize_static(content, calibration, activation_bits=16):
    """`content` (a float32 .tflite file's bytes) with int8 weights and int16 or int8
    activations.

    Args:
        content: the float32 flatbuffer.
        calibration: `{signature: [inputs dict, ...]}`, the sample inputs of each signature to
            calibrate on (every signature the file has).
        activation_bits: 16 or 8.

    Returns:
        The quantized flatbuffer's bytes (metadata kept).
    """
    if activation_bits not in (8, 16):
        raise ValueError(f"activation_bits must be 8 or 16, got {activation_bits!r}")
    calibrator, quantizer, recipe, qsv_utils = _import(f"int{activation_bits}x8")
    content = bytes(content)
    rules = (recipe.static_wi8_ai16 if activation_bits == 16 else recipe.static_wi8_ai8)()
    rules += [{"regex": ".*", "operation": name, "algorithm_key": "no_quantize"}
              for name in ("INPUT", "OUTPUT")]
    rules += [{"regex": "^" + re.escape(scope) + "$", "operation": "*", "algorithm_key": "no_quantize"}
              for scope in float_scopes(content)]
    engine = quantizer.Quantizer(content, rules)
    modes = calibrator.CalibrationMode
    ranges = {}
    # Ranges over all calibration inputs (min/max, not the quantizer's moving average, which
    # clips the extremes that later inputs reach). Signatures with a WHILE loop are calibrated by the
    # interpreter's profiler, which sees every iteration; the others keep all tensors.
    loops = [key for key in calibration if _has_loop(content, key)]
    for keys, mode in ((loops, modes.CALIBRATION_PROFILER_BASED),
                       ([key for key in calibration if key not in loops],
                        modes.CALIBRATION_PRESERVE_ALL_TENSORS)):
        if not keys:
            continue
        with _quiet():
            runner = calibrator.Calibrator(content, num_threads=1, mode=mode,
                                           qsv_update_func=qsv_utils.min_max_update)
            runner.calibrate({key: list(calibration[key]) for key in keys}, engine._recipe_manager)
        for name, value in runner.get_model_qsvs().items():
            ranges[name] = qsv_utils.min_max_update(ranges[name], value) if name in ranges else value
    with _quiet():
        result = engine.quantize(ranges, enable_progress_bar=False, enable_progress_report=False)
    return _float_outputs(result.quantized_model)


def _has_loop(content, signature):
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(content, 0)
    for s in range(model.SignatureDefsLength()):
        if model.SignatureDefs(s).SignatureKey().decode() == signature:
            graph = model.Subgraphs(model.SignatureDefs(s).SubgraphIndex())
            loop = schema.BuiltinOperator.WHILE
            return any(max(model.OperatorCodes(graph.Operators(o).OpcodeIndex()).BuiltinCode(),
                           model.OperatorCodes(graph.Operators(o).OpcodeIndex()).DeprecatedBuiltinCode())
                       == loop for o in range(graph.OperatorsLength()))
    raise ValueError(f"the file has no signature {signature!r}")


@contextlib.contextmanager
def _quiet():
    """The quantizer's progress bars (tqdm, on stderr), report (stdout), buffer-sharing warnings
    (logging) and the interpreter's warning about its keep-all-tensors calibration mode are not
    ours to print."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
            yield
    finally:
        logger.setLevel(level)


def _probe_recipe_manager():
    from keras_compress.export.litert import _tiny_model

    _, quantizer, recipe, _ = _import("int16x8")
    engine = quantizer.Quantizer(_tiny_model(), recipe.static_wi8_ai16())
    assert engine._recipe_manager is not None


def _probe_calibrator():
    import inspect

    calibrator, _, _, qsv_utils = _import("int16x8")
    parameters = inspect.signature(calibrator.Calibrator).parameters
    assert {"num_threads", "mode", "qsv_update_func"} <= set(parameters)
    assert {"CALIBRATION_PROFILER_BASED", "CALIBRATION_PRESERVE_ALL_TENSORS"} <= set(
        calibrator.CalibrationMode.__members__)
    assert callable(qsv_utils.min_max_update)


def _probe_tensor_map_table():
    import tempfile

    import tensorflow as tf
    from ai_edge_litert import schema_py_generated as schema

    module = tf.Module()
    module.double = tf.function(lambda x: {"y": x * 2.0}, input_signature=[tf.TensorSpec((1, 4), tf.float32)])
    with tempfile.TemporaryDirectory() as folder:
        tf.saved_model.save(module, folder, signatures={"double": module.double})
        content = tf.lite.TFLiteConverter.from_saved_model(folder).convert()
    model = schema.Model.GetRootAsModel(content, 0)
    entry = model.SignatureDefs(0).Outputs(0)
    offset = entry._tab.Offset(6)
    stored = struct.unpack_from("<I", content, entry._tab.Pos + offset)[0] if offset else 0
    assert stored == entry.TensorIndex()


# The ai-edge-quantizer and flatbuffer interfaces below their public API that `quantize_static`
# uses, each with a probe; tests run every probe by name, so a release that moves one fails
# naming it.
QUANTIZER_INTERNALS = {
    "ai_edge_quantizer Quantizer._recipe_manager (passed to Calibrator.calibrate)": _probe_recipe_manager,
    "ai_edge_quantizer Calibrator(num_threads, mode, qsv_update_func), CalibrationMode, "
    "qsv_utils.min_max_update": _probe_calibrator,
    "flatbuffers Table _tab of TensorMap (signature outputs repointed in place)": _probe_tensor_map_table,
}
