"""The engine on models users bring: keras.io custom layers, keras-hub, nested, subclassed, frozen.

Each family is built tiny from constructors (no downloads) and goes through every operation:
compress_embeddings (checked against a NumPy truncated SVD), EmbeddingCompression inside fit,
quantize_model (every supported kernel reached, counted by walking the layer tree), `.keras`
save and reload in safe_mode with equal outputs, and a dynamic-range TFLite export run in
ai_edge_litert.
"""

import warnings

import keras
import numpy as np
import pytest

from keras_compress import compress_embeddings, export_tflite, quantization
from keras_compress.training import EmbeddingCompression
from keras_compress.layers import FactorizedEmbedding, QuantizedFactorizedReversibleEmbedding, rank_for_reduction

VOCAB, LENGTH, WIDTH, ROWS = 64, 8, 16, 16
REDUCTION = 0.5


@keras.saving.register_keras_serializable(package="compat_test")
class TokenAndPositionEmbedding(keras.layers.Layer):
    """keras.io "Text classification with Transformer": two Embeddings made in __init__."""

    def __init__(self, maxlen, vocab_size, embed_dim, **kwargs):
        super().__init__(**kwargs)
        self.maxlen, self.vocab_size, self.embed_dim = maxlen, vocab_size, embed_dim
        self.token_emb = keras.layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
        self.pos_emb = keras.layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

    def call(self, x):
        positions = keras.ops.arange(0, keras.ops.shape(x)[-1], 1)
        return self.token_emb(x) + self.pos_emb(positions)

    def get_config(self):
        return {**super().get_config(), "maxlen": self.maxlen, "vocab_size": self.vocab_size,
                "embed_dim": self.embed_dim}


@keras.saving.register_keras_serializable(package="compat_test")
class TransformerBlock(keras.layers.Layer):
    """keras.io "Text classification with Transformer": MHA and a Sequential FFN made in __init__."""

    def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim, self.num_heads, self.ff_dim, self.rate = embed_dim, num_heads, ff_dim, rate
        self.att = keras.layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.ffn = keras.Sequential([keras.layers.Dense(ff_dim, activation="relu"), keras.layers.Dense(embed_dim)])
        self.layernorm1 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.dropout1 = keras.layers.Dropout(rate)
        self.dropout2 = keras.layers.Dropout(rate)

    def call(self, inputs, training=False):
        attn_output = self.dropout1(self.att(inputs, inputs), training=training)
        out1 = self.layernorm1(inputs + attn_output)
        ffn_output = self.dropout2(self.ffn(out1), training=training)
        return self.layernorm2(out1 + ffn_output)

    def get_config(self):
        return {**super().get_config(), "embed_dim": self.embed_dim, "num_heads": self.num_heads,
                "ff_dim": self.ff_dim, "rate": self.rate}


@keras.saving.register_keras_serializable(package="compat_test")
class SubclassedClassifier(keras.Model):
    def __init__(self, vocab, width, **kwargs):
        super().__init__(**kwargs)
        self.vocab, self.width = vocab, width
        self.words = keras.layers.Embedding(vocab, width)
        self.hidden = keras.layers.Dense(width, activation="relu")
        self.out = keras.layers.Dense(2, activation="softmax")

    def call(self, tokens):
        return self.out(self.hidden(keras.ops.mean(self.words(tokens), axis=1)))

    def get_config(self):
        return {**super().get_config(), "vocab": self.vocab, "width": self.width}


def keras_io_classifier():
    inputs = keras.layers.Input(shape=(LENGTH,), dtype="int32")
    x = TokenAndPositionEmbedding(LENGTH, VOCAB, WIDTH)(inputs)
    x = TransformerBlock(WIDTH, 2, WIDTH)(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dense(8, activation="relu")(x)
    return keras.Model(inputs=inputs, outputs=keras.layers.Dense(2, activation="softmax")(x))


def bert_classifier():
    keras_hub = pytest.importorskip("keras_hub")
    backbone = keras_hub.models.BertBackbone(vocabulary_size=VOCAB, num_layers=1, num_heads=2, hidden_dim=WIDTH,
                                             intermediate_dim=2 * WIDTH, max_sequence_length=LENGTH)
    return keras_hub.models.BertTextClassifier(backbone, num_classes=2, preprocessor=None, activation="softmax")


def nested_functional():
    tokens = keras.Input((LENGTH,), dtype="int32")
    words = keras.layers.Embedding(VOCAB, WIDTH, name="words")(tokens)
    encoder = keras.Model(tokens, keras.layers.GlobalAveragePooling1D()(words), name="encoder")
    outer = keras.Input((LENGTH,), dtype="int32")
    return keras.Model(outer, keras.layers.Dense(2, activation="softmax")(encoder(outer)))


def subclassed():
    model = SubclassedClassifier(VOCAB, WIDTH)
    model(np.zeros((1, LENGTH), "int32"))
    return model


def frozen_glove():
    vectors = np.random.default_rng(3).normal(size=(VOCAB, WIDTH)).astype("float32")
    tokens = keras.Input((LENGTH,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, WIDTH, weights=[vectors], trainable=False, name="glove")(tokens)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(tokens, keras.layers.Dense(2, activation="softmax")(x))


FAMILIES = {
    "keras_io": keras_io_classifier,
    "bert": bert_classifier,
    "nested": nested_functional,
    "subclassed": subclassed,
    "frozen_glove": frozen_glove,
}


def inputs_for(name, rows=ROWS, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, VOCAB, (rows, LENGTH)).astype("int32")
    if name == "bert":
        return {"token_ids": tokens, "segment_ids": np.zeros_like(tokens), "padding_mask": np.ones_like(tokens)}
    return tokens


def leaves(model):
    return [layer for layer in model._flatten_layers(include_self=False)
            if not list(layer._flatten_layers(include_self=False, recursive=False))]


def predict(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.mark.parametrize("family", FAMILIES)
def test_compress_quantize_save_export(family, tmp_path):
    keras.utils.set_random_seed(0)
    model = FAMILIES[family]()
    model_class, x = type(model), inputs_for(family)
    embeddings = {id(layer): (layer, keras.ops.convert_to_numpy(layer.embeddings))
                  for layer in leaves(model) if isinstance(layer, keras.layers.Embedding)}
    frozen = {layer.name for layer in leaves(model) if layer.weights and not layer.trainable}
    others = {id(v): keras.ops.convert_to_numpy(v) for layer in leaves(model)
              if not isinstance(layer, keras.layers.Embedding) for v in layer.weights}

    # compress_embeddings: in place, every reachable embedding is the NumPy truncated SVD.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert compress_embeddings(model, reduction=REDUCTION) is model
    assert type(model) is model_class
    factorized = 0
    for layer, matrix in embeddings.values():
        rank = rank_for_reduction(*matrix.shape, REDUCTION) if min(matrix.shape) > 2 else 0
        if rank * sum(matrix.shape) >= matrix.size or rank < 1:
            assert any(layer.name in str(w.message) and "uncompressed" in str(w.message) for w in caught)
            continue
        assert isinstance(layer, FactorizedEmbedding) and layer.rank == rank
        u, s, vt = np.linalg.svd(matrix.astype(np.float64), full_matrices=False)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.embeddings), (u[:, :rank] * s[:rank]) @ vt[:rank],
                                   atol=1e-5)
        factorized += 1
    assert factorized >= 1
    assert {layer.name for layer in leaves(model) if layer.weights and not layer.trainable} == frozen
    for layer in leaves(model):  # every other weight is the same variable with the same value
        for variable in layer.weights:
            if id(variable) in others:
                np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), others[id(variable)])

    # quantize_model reaches every Dense/EinsumDense/embedding kernel at every depth.
    supported = (keras.layers.Dense, keras.layers.EinsumDense, keras.layers.Embedding)
    targets = [layer for layer in leaves(model) if isinstance(layer, supported)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert quantization.quantize_model(model, bits=8) is model
    assert all(quantization.is_quantized(layer) for layer in targets), [
        layer.name for layer in targets if not quantization.is_quantized(layer)]
    assert len({id(layer) for layer, _, _ in quantization.quantized_weights(model)}) == len(targets)
    assert type(model) is model_class

    # .keras save and reload in safe_mode: equal outputs.
    expected = predict(model, x)
    path = tmp_path / f"{family}.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert type(reloaded) is model_class
    np.testing.assert_allclose(predict(reloaded, x), expected, atol=1e-5)

    # Dynamic-range TFLite export runs in ai_edge_litert and matches Keras.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = export_tflite(model, tmp_path / f"{family}.tflite", quantization="dynamic", sample_inputs=x)
    assert result.max_abs_diff < 0.05, result


@pytest.mark.parametrize("family", FAMILIES)
def test_callback_shrinks_parameters_inside_fit(family):
    keras.utils.set_random_seed(0)
    model = FAMILIES[family]()
    # Eager steps: tracing costs more than these tiny steps; test_callbacks covers traced fit.
    model.compile("adam", "sparse_categorical_crossentropy", run_eagerly=True)
    x, y = inputs_for(family), np.arange(ROWS) % 2
    callback = EmbeddingCompression(at_epoch=1, reduction=REDUCTION, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        history = model.fit(x, y, batch_size=ROWS // 2, epochs=2, callbacks=[callback], verbose=0)
    assert callback.params_after < callback.params_before
    assert model.count_params() == callback.params_after
    assert np.all(np.isfinite(history.history["loss"]))


def test_keras_hub_causal_lm_keeps_generating_with_tied_factorized_quantized_embedding(tmp_path):
    keras_hub = pytest.importorskip("keras_hub")
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.GPT2Backbone(vocabulary_size=VOCAB, num_layers=1, num_heads=2, hidden_dim=WIDTH,
                                             intermediate_dim=2 * WIDTH, max_sequence_length=LENGTH)
    lm = keras_hub.models.GPT2CausalLM(backbone, preprocessor=None)
    lm.compile(sampler="greedy")
    ids = np.array([[5, 6, 7, 0, 0, 0, 0, 0]], "int32")
    prompt = {"token_ids": ids, "padding_mask": ids != 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compress_embeddings(lm, reduction=REDUCTION)
        quantization.quantize_model(lm, bits=8)
    embedding = backbone.token_embedding
    assert isinstance(embedding, QuantizedFactorizedReversibleEmbedding) and embedding.tie_weights
    # Tied logits use the same (quantized) factors as the lookup.
    hidden = np.random.default_rng(0).normal(size=(2, WIDTH)).astype("float32")
    table = keras.ops.convert_to_numpy(embedding.embeddings)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(embedding(hidden, reverse=True)), hidden @ table.T,
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(embedding(ids))[0, :3], table[[5, 6, 7]], atol=1e-6)
    generated = lm.generate(prompt, stop_token_ids=None)["token_ids"]
    assert type(lm).__name__ == "GPT2CausalLM" and generated.shape == ids.shape
    np.testing.assert_array_equal(generated[:, :3], ids[:, :3])
    path = tmp_path / "lm.keras"
    lm.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(predict(reloaded, prompt), predict(lm, prompt), atol=1e-5)
    reloaded.compile(sampler="greedy")
    np.testing.assert_array_equal(reloaded.generate(prompt, stop_token_ids=None)["token_ids"], generated)


# In the default run (~15 s of CPU: converter + interpreter on a 2-layer seq2seq): the path the
# translation models take, QAT -> fit -> strip -> int8 TFLite, on keras-hub layers.
def test_qat_keras_hub_encoder_decoder_exports_int8_tflite(tmp_path):
    """What the translation model on keras-hub needs: every kernel of TransformerEncoder,
    TransformerDecoder and a tied ReversibleEmbedding trains quantized and exports as int8."""
    keras_hub = pytest.importorskip("keras_hub")
    from keras_compress.export import stored_kernels

    keras.utils.set_random_seed(0)
    width = 32  # TFLite stores kernels of >= 1024 elements as int8
    source = keras.Input((LENGTH,), dtype="int32", name="source")
    target = keras.Input((LENGTH,), dtype="int32", name="target")
    embed = keras_hub.layers.TokenAndPositionEmbedding(VOCAB, LENGTH, width)
    encoded = keras_hub.layers.TransformerEncoder(2 * width, 2)(embed(source))
    decoded = keras_hub.layers.TransformerDecoder(2 * width, 2)(embed(target), encoded)
    logits = embed.token_embedding(decoded, reverse=True)
    model = keras.Model([source, target], logits)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantization.quantize_model(model, bits=8)
    kernels = [layer for layer in leaves(model) if isinstance(layer, (keras.layers.Dense, keras.layers.EinsumDense))]
    assert len(kernels) == 4 + 2 + 4 + 4 + 2 and all(quantization.is_quantized(layer) for layer in kernels)
    rng = np.random.default_rng(0)
    x = [rng.integers(1, VOCAB, (ROWS, LENGTH)).astype("int32") for _ in range(2)]
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, x[1], batch_size=ROWS, epochs=1, verbose=0)
    expected = predict(model, x)
    quantization.strip(model)
    np.testing.assert_allclose(predict(model, x), expected, atol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = export_tflite(model, tmp_path / "seq2seq.tflite", quantization="int8", sample_inputs=x)
    assert result.max_abs_diff < 0.05 * np.abs(expected).max()
    stored = stored_kernels(open(result.path, "rb").read())
    integer = [name for name, dtype, shape in stored if dtype == np.int8]
    floats = [(name, shape) for name, dtype, shape in stored if dtype == np.float32 and np.prod(shape) >= 1024]
    assert len(integer) >= len(kernels) + 1 and not floats, (integer, floats)  # + the tied embedding
