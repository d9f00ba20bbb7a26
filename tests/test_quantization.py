import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from keras_compress import quantization as q  # noqa: E402
from keras_compress.layers import FactorizedEmbedding  # noqa: E402
from keras_compress.layers import quantized as quantized_layers  # noqa: E402


def nudged_formula(w, bits):
    """Numpy reference: the thesis formula with the range widened to contain 0 and nudged by
    less than s/2 so that 0 is a grid point (TF's FakeQuantWithMinMaxVars)."""
    w = np.asarray(w, np.float32)
    levels = 2**bits - 1
    a, b = np.float32(min(w.min(), 0)), np.float32(max(w.max(), 0))
    s = np.float32((b - a) / levels)
    zero_point = np.floor(-a / s + np.float32(0.5))
    a_nudged = np.float32(-zero_point * s)
    clipped = np.clip(w, a_nudged, a_nudged + np.float32(levels) * s)
    return np.floor((clipped - a_nudged) / s + np.float32(0.5)) * s + a_nudged


def tiny_model(vocab=20, length=6):
    tokens = keras.Input((length,), dtype="int32")
    x = keras.layers.Embedding(vocab, 8, name="emb")(tokens)
    attention = keras.layers.MultiHeadAttention(2, 4, name="mha")(x, x)
    x = keras.layers.LayerNormalization(name="ln")(x + attention)
    x = keras.layers.Dense(16, activation="relu", name="ffn")(x)
    return keras.Model(tokens, keras.layers.Dense(vocab, name="out")(x))


def tiny_data(vocab=20, length=6, rows=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, vocab, (rows, length)), rng.integers(0, vocab, (rows, length))


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_fake_quant_forward_equals_nudged_formula(bits):
    w = np.random.default_rng(bits).normal(size=(7, 5)).astype("float32")
    got = keras.ops.convert_to_numpy(quantized_layers.fake_quantize(w, bits))
    np.testing.assert_allclose(got, nudged_formula(w, bits), atol=1e-6)
    assert len(np.unique(got)) <= 2**bits
    codes, scale, offset = quantized_layers.quantize_codes(w, bits)
    np.testing.assert_allclose(codes * scale + offset, got, atol=1e-6)


def test_fake_quant_is_the_thesis_formula_when_the_minimum_is_on_the_grid():
    # a = -1, b = 2, k = 2: s = 1 and -a/s is an integer, so no nudging happens.
    w = np.array([-1.0, -0.4, 0.2, 0.6, 1.4, 2.0], "float32")
    a, b, bits = -1.0, 2.0, 2
    s = (b - a) / (2**bits - 1)
    thesis = np.round((w - a) / s) * s + a
    np.testing.assert_allclose(keras.ops.convert_to_numpy(quantized_layers.fake_quantize(w, bits)), thesis)


def test_range_contains_zero_for_one_signed_tensors():
    w = np.linspace(0.5, 1.0, 11).astype("float32")
    got = keras.ops.convert_to_numpy(quantized_layers.fake_quantize(w, 8))
    assert abs(got.max() - 1.0) < 1.0 / 255  # the maximum is kept, not clipped to b - a


def test_gradient_passes_straight_through():
    w = tf.Variable(np.array([[-1.0, -0.3], [0.25, 0.9], [1.6, 2.0]], "float32"))
    upstream = np.random.default_rng(0).normal(size=(3, 2)).astype("float32")
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(quantized_layers.fake_quantize(w, 2) * upstream)
    np.testing.assert_allclose(tape.gradient(loss, w).numpy(), upstream)


def test_quantize_model_replaces_supported_layers_and_keeps_weights():
    model = tiny_model()
    before = [w.copy() for w in model.get_weights()]
    quantized = q.quantize_model(model, bits=8)
    assert quantized is model  # changed in place, like keras.Model.quantize
    kinds = {layer.name: type(layer).__name__ for layer in quantized.layers}
    assert kinds["emb"] == "QuantizedEmbedding" and kinds["ffn"] == "QuantizedDense"
    assert kinds["mha"] == "QuantizedMultiHeadAttention" and kinds["ln"] == "LayerNormalization"
    for name in ("_query_dense", "_key_dense", "_value_dense", "_output_dense"):
        assert isinstance(getattr(quantized.get_layer("mha"), name), quantized_layers.QuantizedEinsumDense)
    for original, kept in zip(before, quantized.get_weights()):
        np.testing.assert_array_equal(original, kept)


def test_training_keeps_quantized_kernels_on_the_grid_and_float_parts_float():
    bits = 3
    quantized = q.quantize_model(tiny_model(), bits=bits)
    quantized.compile(keras.optimizers.Adam(0.01),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = tiny_data()
    quantized.fit(x, y, epochs=3, batch_size=8, verbose=0)
    leaves = list(q.quantized_weights(quantized))
    assert len(leaves) == 7  # embedding, 4 attention projections, 2 dense kernels
    for layer, variable, value in leaves:
        value = keras.ops.convert_to_numpy(value)
        assert len(np.unique(value)) <= 2**bits
        np.testing.assert_allclose(value, nudged_formula(variable.numpy(), bits), atol=1e-6)
        assert len(np.unique(variable.numpy())) > 2**bits  # float master weights keep moving
    float_parts = [quantized.get_layer("ffn").bias, quantized.get_layer("ln").gamma,
                   quantized.get_layer("mha")._query_dense.bias]
    for variable in float_parts:  # trained, and not snapped to a grid
        value = variable.numpy()
        assert not np.allclose(value, nudged_formula(value, bits), atol=1e-4), variable.path
        assert not np.allclose(value, value.flat[0])


def test_strip_gives_plain_layers_with_grid_weights_and_same_outputs():
    quantized = q.quantize_model(tiny_model(), bits=4)
    quantized.get_layer("ffn").bias.assign(np.linspace(-1, 1, 16).astype("float32"))
    x, _ = tiny_data()
    expected = quantized.predict(x, verbose=0)
    bias = quantized.get_layer("ffn").bias.numpy().copy()
    codes = q.quantized_codes(quantized)
    assert len(codes) == 7 and all(c.dtype == np.uint8 and c.max() < 16 for c, _, _ in codes.values())
    stripped = q.strip(quantized)
    assert not any(q.is_quantized(layer) for layer in stripped._flatten_layers())
    assert type(stripped.get_layer("mha")) is keras.layers.MultiHeadAttention
    np.testing.assert_allclose(stripped.predict(x, verbose=0), expected, atol=1e-5)
    np.testing.assert_array_equal(stripped.get_layer("ffn").bias.numpy(), bias)
    assert len(np.unique(stripped.get_layer("out").kernel.numpy())) <= 16


def test_save_and_load_keeps_quantized_attention_and_float_weights(tmp_path):
    quantized = q.quantize_model(tiny_model(), bits=4)
    path = tmp_path / "qat.keras"
    quantized.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    attention = loaded.get_layer("mha")
    assert type(attention) is quantized_layers.QuantizedMultiHeadAttention and attention.bits == 4
    assert all(type(getattr(attention, n)) is quantized_layers.QuantizedEinsumDense and getattr(attention, n).bits == 4
               for n in ("_query_dense", "_key_dense", "_value_dense", "_output_dense"))
    for saved, reloaded in zip(quantized.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(saved, reloaded)  # the float weights, not their grid
    x, _ = tiny_data()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), quantized.predict(x, verbose=0))


def test_layer_choice_and_exclusion():
    only = q.quantize_model(tiny_model(), layers=["ffn", "emb"])
    assert {l.name for l in only._flatten_layers() if q.is_quantized(l)} == {"ffn", "emb"}
    excluded = q.quantize_model(tiny_model(), exclude=["out"])
    assert type(excluded.get_layer("out")) is keras.layers.Dense
    assert type(excluded.get_layer("mha")) is quantized_layers.QuantizedMultiHeadAttention
    predicate = q.quantize_model(tiny_model(), layers=lambda layer: type(layer) is keras.layers.Dense)
    assert {l.name for l in predicate._flatten_layers() if q.is_quantized(l)} == {"ffn", "out"}
    by_path = q.quantize_model(tiny_model(), layers=["mha/query"])
    assert [l.name for l in by_path._flatten_layers() if q.is_quantized(l)] == ["query"]


@pytest.mark.parametrize("bits, error", [(1, ValueError), (9, ValueError), (True, TypeError), (4.0, TypeError)])
def test_bad_bits(bits, error):
    with pytest.raises(error, match="bits"):
        q.quantize_model(tiny_model(), bits=bits)


def test_unknown_layer_names_are_rejected():
    with pytest.raises(ValueError, match="does not have: \\['nope'\\]"):
        q.quantize_model(tiny_model(), layers=["nope"])
    with pytest.raises(TypeError, match="layers must be"):
        q.quantize_model(tiny_model(), layers=3)
    with pytest.raises(TypeError, match="Keras model"):
        q.quantize_model("x")  # issue 10: was an AttributeError


def test_factorized_embedding_both_factors_quantized():
    tokens = keras.Input((5,), dtype="int32")
    model = keras.Model(tokens, FactorizedEmbedding(30, 8, rank=3, name="fe")(tokens))
    quantized = q.quantize_model(model, bits=2)
    layer = quantized.get_layer("fe")
    assert type(layer) is quantized_layers.QuantizedFactorizedEmbedding
    factors = [keras.ops.convert_to_numpy(v) for _, v in layer.quantized_factors()]
    assert all(len(np.unique(f)) <= 4 for f in factors)
    x = np.random.default_rng(0).integers(0, 30, (4, 5))
    expected = factors[0][x] @ factors[1]
    np.testing.assert_allclose(quantized.predict(x, verbose=0), expected, atol=1e-5)
    stripped = q.strip(quantized)
    assert type(stripped.get_layer("fe")) is FactorizedEmbedding
    np.testing.assert_allclose(stripped.predict(x, verbose=0), expected, atol=1e-5)


def test_qat_transformer_exports_int8_tflite(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from keras_compress.export import export_tflite
    from keras_compress.nmt import SmoothedSparseCategoricalCrossentropy, transformer

    vocab, length, width, ff = 40, 6, 32, 64
    model = q.quantize_model(transformer(vocab, "small", num_layers=1, d_model=width, d_ff=ff,
                                         num_heads=2, dropout=0.0, source_length=length,
                                         target_length=length), bits=8)
    rng = np.random.default_rng(0)
    source, target = (rng.integers(1, vocab, (32, length)).astype("int32") for _ in range(2))
    model.compile("adam", SmoothedSparseCategoricalCrossentropy(0.1))
    model.fit([source, target], target, epochs=1, batch_size=16, verbose=0)
    result = export_tflite(q.strip(model), str(tmp_path / "qat.tflite"), quantization="int8",
                           sample_inputs=[source, target])
    logits = model.predict([source, target], verbose=0)
    # int8 weights, float activations (dynamic range), as in the thesis.
    assert result.max_abs_diff < 0.05 * np.abs(logits).max()
    interpreter = Interpreter(model_path=result.path)
    produced = {index for op in interpreter._get_ops_details() for index in op["outputs"]}
    produced |= {detail["index"] for detail in interpreter.get_input_details()}
    stored = [t for t in interpreter.get_tensor_details() if t["index"] not in produced]
    kernel_shapes = {(vocab, width), (ff, width), (width, ff), (width, width)}
    kernels = [t for t in stored if tuple(t["shape"]) in kernel_shapes]
    assert len(kernels) == 2 + 2 * 2 + 3 * 4  # embedding, logits, 2 x ffn, 3 attentions x 4
    assert all(t["dtype"] == np.int8 for t in kernels), [(t["name"], t["dtype"]) for t in kernels]
    norms = [t for t in stored if "norm" in t["name"]]
    assert norms and all(t["dtype"] == np.float32 for t in norms)  # LayerNorm stays float


def test_sequential_models_and_unreachable_or_subclassed_layers():
    sequential = keras.Sequential([keras.Input((5,), dtype="int32"), keras.layers.Embedding(10, 4),
                                   keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(3)])
    quantized = q.quantize_model(sequential, bits=4)
    assert [type(layer).__name__ for layer in quantized.layers] == [
        "QuantizedEmbedding", "GlobalAveragePooling1D", "QuantizedDense"]

    class Block(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(4)

        def call(self, inputs):
            return self.dense(inputs)

    inputs = keras.Input((3,))
    with pytest.warns(UserWarning, match="created by their parent.*block/dense"):
        reached = q.quantize_model(keras.Model(inputs, Block(name="block")(inputs)))
    assert q.is_quantized(reached.get_layer("block").dense)  # reached inside the custom layer

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)
            self.recurrent = keras.layers.LSTM(2)

        def call(self, inputs):
            return self.dense(inputs) + self.recurrent(inputs[:, None, :])

    model = Subclassed()
    model(np.ones((1, 3), "float32"))
    with pytest.warns(UserWarning, match=r"left these layers float \(1 quantized\): lstm(_\d+)?/lstm_cell \(LSTMCell, a class quantize_model does not"):
        q.quantize_model(model)
    assert type(model) is Subclassed and q.is_quantized(model.dense)
    with pytest.raises(ValueError, match="no layer quantize_model can quantize"):
        q.quantize_model(keras.Sequential([keras.Input((3,)), keras.layers.LayerNormalization()]))
