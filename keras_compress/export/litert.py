"""Driving `ai_edge_litert` below its public API: the one place that knows LiteRT's private
interpreter wrapper. Keras-free, so on-device runtimes can import it.

`LITERT_INTERNALS` lists every LiteRT interface below the public Interpreter API that the
library uses (this wrapper, and the flatbuffer schema `keras_compress.export.flatbuffer` reads)
with a probe; the test suite runs every probe by name, so an `ai_edge_litert` release that moves
one fails naming it.
"""

from keras_compress.export import flatbuffer

__all__ = ["litert_wrapper", "LITERT_WRAPPER_METHODS", "LITERT_INTERNALS"]

# The ai_edge_litert Interpreter's own wrapper methods that `keras_compress.nmt.translator` drives
# subgraphs with (any subgraph, by index; the public Interpreter methods reach only the first
# one, and signature runners resize, re-allocate and copy every input on every call).
LITERT_WRAPPER_METHODS = ("GetSubgraphIndexFromSignature", "ResizeInputTensor", "AllocateTensors",
                          "SetTensor", "Invoke", "GetTensor", "tensor")


def litert_wrapper(interpreter):
    """The private wrapper of an `ai_edge_litert` Interpreter, or None when it lacks any of
    `LITERT_WRAPPER_METHODS` (callers then fall back to the public signature runners)."""
    wrapper = getattr(interpreter, "_interpreter", None)
    if wrapper is None or not all(hasattr(wrapper, name) for name in LITERT_WRAPPER_METHODS):
        return None
    return wrapper


def _tiny_model():
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((1, 4), tf.float32)])
    def double(x):
        return {"y": tf.matmul(x, tf.ones((4, 2))) * 2.0}

    converter = tf.lite.TFLiteConverter.from_concrete_functions([double.get_concrete_function()], double)
    return converter.convert()


def _probe_interpreter_wrapper():
    from ai_edge_litert.interpreter import Interpreter

    assert litert_wrapper(Interpreter(model_content=_tiny_model())) is not None


def _probe_flatbuffer_schema():
    content = _tiny_model()
    assert {"FULLY_CONNECTED", "BATCH_MATMUL"} & set(flatbuffer.operators(content))
    assert [shape for _, _, shape in flatbuffer.constant_tensors(content, min_rank=2)] in ([(2, 4)], [(4, 2)])
    assert flatbuffer.read_metadata(flatbuffer.add_metadata(content, "probe", b"42"), "probe") == b"42"


# Every LiteRT interface below the public Interpreter API that the library uses, with a probe.
LITERT_INTERNALS = {
    "Interpreter._interpreter (the wrapper's methods of LITERT_WRAPPER_METHODS)": _probe_interpreter_wrapper,
    "ai_edge_litert.schema_py_generated (Model, Tensor, Buffer, OperatorCode, Metadata)": _probe_flatbuffer_schema,
}
