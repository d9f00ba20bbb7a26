"""Reading and annotating `.tflite` flatbuffers (the TFLite schema as `ai_edge_litert` ships it):
the builtin operators a file runs, and named metadata entries. NumPy and `ai_edge_litert` only,
no Keras or TensorFlow, so on-device runtimes can import it."""

import numpy as np

__all__ = ["operators", "constant_tensors", "operator_types", "add_metadata", "read_metadata"]

# TensorType -> numpy dtype. Sub-byte integers (INT4, INT2, UINT4) have no numpy dtype: they are
# reported as the byte-sized integer of the same sign, so that they count as integer tensors.
_NUMPY_TYPES = {
    "FLOAT32": np.float32, "FLOAT16": np.float16, "FLOAT64": np.float64, "INT32": np.int32,
    "UINT8": np.uint8, "INT64": np.int64, "BOOL": np.bool_, "INT16": np.int16, "INT8": np.int8,
    "UINT64": np.uint64, "UINT32": np.uint32, "UINT16": np.uint16, "INT4": np.int8, "INT2": np.int8,
    "UINT4": np.uint8,
}


def _model(source):
    """The schema's `Model` of a .tflite file (a path) or of flatbuffer bytes."""
    from ai_edge_litert import schema_py_generated as schema

    if isinstance(source, (bytes, bytearray, memoryview)):
        content = bytes(source)
    else:
        with open(source, "rb") as handle:
            content = handle.read()
    return schema.Model.GetRootAsModel(content, 0)


def operators(source):
    """The builtin operator names (custom ones by their code) of every subgraph of a .tflite
    file (a path, or the flatbuffer's bytes), sorted."""
    from ai_edge_litert import schema_py_generated as schema

    model = _model(source)
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


def constant_tensors(source, min_rank=0):
    """``(name, numpy dtype, shape)`` of the constant tensors (stored with data in the file) of
    at least ``min_rank`` dimensions, over every subgraph of a .tflite file or its bytes."""
    from ai_edge_litert import schema_py_generated as schema

    model = _model(source)
    types = {value: name for name, value in vars(schema.TensorType).items() if not name.startswith("_")}
    found = []
    for graph_index in range(model.SubgraphsLength()):
        graph = model.Subgraphs(graph_index)
        for tensor_index in range(graph.TensorsLength()):
            tensor = graph.Tensors(tensor_index)
            buffer = model.Buffers(tensor.Buffer())
            # data inline, or (files over 2 GB) at an offset after the flatbuffer
            stored = buffer is not None and (buffer.DataLength() > 0 or buffer.Offset() > 1)
            shape = tuple(int(size) for size in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
            if stored and not tensor.IsVariable() and len(shape) >= min_rank:
                kind = types.get(tensor.Type(), str(tensor.Type()))
                found.append((tensor.Name().decode(), np.dtype(_NUMPY_TYPES.get(kind, np.void)), shape))
    return found


class _PackedOnce:
    """A flatbuffer object-API table packed once, however many tables refer to it (flatbuffers
    allow shared sub-tables; TFLite reads each tensor's own copy of the values)."""

    def __init__(self, table):
        self.table, self.offset = table, None

    def Pack(self, builder):  # noqa: N802 (the object API's name)
        if self.offset is None:
            self.offset = self.table.Pack(builder)
        return self.offset


def _share_quantization(model):
    """Point every tensor's equal quantization parameters at one table. Signatures that read the
    same weights have a tensor each in their own subgraphs, and TFLite's converter writes each
    one's per-channel scales and int64 zero points again (12 bytes a weight row a subgraph)."""
    shared = {}
    for graph in model.subgraphs or []:
        for tensor in graph.tensors or []:
            parameters = tensor.quantization
            if parameters is None or parameters.details is not None:
                continue
            key = tuple(None if values is None else np.asarray(values).tobytes() for values in (
                parameters.scale, parameters.zeroPoint, parameters.min, parameters.max)) + (
                parameters.quantizedDimension, parameters.detailsType)
            tensor.quantization = shared.setdefault(key, _PackedOnce(parameters))


def add_metadata(content, name, data):
    """The flatbuffer `content` (bytes) with one more metadata entry `name` holding the bytes
    `data` (TFLite keeps metadata entries as named buffers; the runtime ignores them). Equal
    quantization parameters of tensors are stored once (`_share_quantization`)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(data, np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = name, len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    _share_quantization(model)
    builder = flatbuffers.Builder(len(content) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def read_metadata(source, name):
    """The bytes of the metadata entry `name` of a .tflite file (or its bytes), or None."""
    model = _model(source)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name().decode() == name:
            return model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    return None


def operator_types(source):
    """How each builtin operator of a .tflite file computes: `{name: {"integer": n, "float": m,
    "other": k}}` over all subgraphs, by the type of each operator's first output (int8 or
    int16: integer; float32 or float16: float; int32, bool and the like: other, e.g. token ids,
    shapes and control flow). QUANTIZE and DEQUANTIZE count as what they output."""
    from ai_edge_litert import schema_py_generated as schema

    model = _model(source)
    names = {value: name for name, value in vars(schema.BuiltinOperator).items()
             if not name.startswith("_")}
    kinds = {schema.TensorType.INT8: "integer", schema.TensorType.INT16: "integer",
             schema.TensorType.FLOAT32: "float", schema.TensorType.FLOAT16: "float"}
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        custom = code.CustomCode()
        codes.append(custom.decode() if custom else names.get(
            max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?"))
    counts = {}
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for o in range(graph.OperatorsLength()):
            operator = graph.Operators(o)
            kind = "other"
            if operator.OutputsLength():
                kind = kinds.get(graph.Tensors(operator.Outputs(0)).Type(), "other")
            entry = counts.setdefault(codes[operator.OpcodeIndex()],
                                      {"integer": 0, "float": 0, "other": 0})
            entry[kind] += 1
    return counts
