"""Reading and annotating `.tflite` flatbuffers (the TFLite schema as `ai_edge_litert` ships it):
the builtin operators a file runs, and named metadata entries. NumPy and `ai_edge_litert` only,
no Keras or TensorFlow, so on-device runtimes can import it."""

import numpy as np

__all__ = ["operators", "add_metadata", "read_metadata"]


def operators(path):
    """The builtin operator names (custom ones by their code) of every subgraph of a .tflite
    file, sorted."""
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


def add_metadata(content, name, data):
    """The flatbuffer `content` (bytes) with one more metadata entry `name` holding the bytes
    `data` (TFLite keeps metadata entries as named buffers; the runtime ignores them)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(data, np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = name, len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    builder = flatbuffers.Builder(len(content) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def read_metadata(path, name):
    """The bytes of the metadata entry `name` of a .tflite file, or None."""
    from ai_edge_litert import schema_py_generated as schema

    with open(path, "rb") as handle:
        model = schema.Model.GetRootAsModel(handle.read(), 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name().decode() == name:
            return model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    return None


def operator_types(path):
    """How each builtin operator of a .tflite file computes: `{name: {"integer": n, "float": m,
    "other": k}}` over all subgraphs, by the type of each operator's first output (int8 or
    int16: integer; float32 or float16: float; int32, bool and the like: other, e.g. token ids,
    shapes and control flow). QUANTIZE and DEQUANTIZE count as what they output."""
    from ai_edge_litert import schema_py_generated as schema

    with open(path, "rb") as handle:
        model = schema.Model.GetRootAsModel(handle.read(), 0)
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
