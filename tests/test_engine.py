"""The engine: one loop for every change, typed change records, revert, and nothing compiled from
the old model served after a change (Keras's functions, keras-hub's generate_function, the
library's decoding cache). Also every private Keras attribute it relies on, probed by name."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_compress import compress_embeddings, engine, quantize_model, strip  # noqa: E402
from keras_compress.layers import FactorizedEmbedding, QuantizedDense, QuantizedFactorizedEmbedding  # noqa: E402


@pytest.mark.parametrize("name", sorted(engine.KERAS_INTERNALS))
def test_keras_internal_is_where_the_engine_expects(name):
    engine.KERAS_INTERNALS[name]()  # raises, and this test's id names the attribute, if Keras moved it


def classifier():
    tokens = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(200, 16, name="embedding")(tokens)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(tokens, keras.layers.Dense(3, name="out")(x))


def test_changes_are_recorded_typed_and_reverted():
    model = classifier()
    compress_embeddings(model, reduction=0.9)
    embedding, out = model.get_layer("embedding"), model.get_layer("out")
    assert engine.changes(embedding) == (engine.Change("factorize", keras.layers.Embedding),)
    quantize_model(model, bits=4)
    assert type(out) is QuantizedDense and type(embedding) is QuantizedFactorizedEmbedding
    assert engine.changes(out) == (engine.Change("quantize", keras.layers.Dense, ("bits",)),)
    assert [change.rule for change in engine.changes(embedding)] == ["factorize", "quantize"]
    assert engine.changed_by(embedding, "quantize") and not engine.changed_by(out, "factorize")
    strip(model)
    # strip reverts the quantization only; the factorization is the compression and stays
    assert type(out) is keras.layers.Dense and type(embedding) is FactorizedEmbedding
    assert not hasattr(out, "bits") and not hasattr(embedding, "bits")
    assert engine.changes(out) == () and [change.rule for change in engine.changes(embedding)] == ["factorize"]


def test_layers_built_quantized_are_stripped_too():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, QuantizedDense(2, bits=4, name="q")(inputs))
    assert engine.changes(model.get_layer("q")) == ()
    strip(model)
    assert type(model.get_layer("q")) is keras.layers.Dense and not hasattr(model.get_layer("q"), "bits")


def test_a_named_layer_the_rule_refuses_raises_and_factorizing_after_quantizing_says_the_order():
    model = quantize_model(classifier(), bits=8)
    with pytest.raises(ValueError, match=r"embedding \(QuantizedEmbedding, changed by quantize: "
                                         r"compress_embeddings must come first\)"):
        compress_embeddings(model, layers=["embedding"])
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.LayerNormalization(name="ln")(keras.layers.Dense(3, name="d")(inputs)))
    with pytest.raises(ValueError, match=r"cannot convert the layers named in layers=: ln \(LayerNormalization"):
        quantize_model(model, layers=["d", "ln"])
    assert type(model.get_layer("d")) is keras.layers.Dense  # nothing changed


def test_engine_refuses_a_rule_that_does_not_change_the_layer():
    rule = engine.Rule(name="noop", function="noop", targets=lambda: {keras.layers.Dense: QuantizedDense},
                       considers=lambda site: isinstance(site.layer, keras.layers.Dense),
                       check=lambda layer: (None, {}), convert=lambda layer, swap: None)
    model = classifier()
    with pytest.raises(RuntimeError, match="did not change 'out'"):
        engine.apply(model, engine.plan(model, rule))


def greedy_by_hand(lm, ids, steps):
    """Greedy decoding with full forward passes (no cache, no compiled function)."""
    ids = ids.copy()
    start = int((ids[0] != 0).sum())
    for position in range(start, start + steps):
        logits = keras.ops.convert_to_numpy(lm({"token_ids": ids, "padding_mask": (ids != 0).astype("int32")}))
        ids[0, position] = int(np.argmax(logits[0, position - 1]))
    return ids


@pytest.mark.parametrize("change", ["compress_embeddings", "quantize_model", "strip"])
def test_causal_lm_generates_from_the_changed_model(change):
    """keras-hub caches a compiled generate_function; a change must drop it (issue 22's reproducer)."""
    keras_hub = pytest.importorskip("keras_hub")
    keras.utils.set_random_seed(0)
    lm = keras_hub.models.GemmaCausalLM(keras_hub.models.GemmaBackbone(
        vocabulary_size=1000, num_layers=1, num_query_heads=2, num_key_value_heads=1, hidden_dim=64,
        intermediate_dim=128, head_dim=32), preprocessor=None)
    lm.compile(sampler="greedy")
    ids = np.array([[5, 6, 7, 8, 0, 0, 0, 0]], "int32")
    prompt = {"token_ids": ids, "padding_mask": (ids != 0).astype("int32")}
    before = keras.ops.convert_to_numpy(lm.generate(prompt, stop_token_ids=None)["token_ids"])
    if change == "compress_embeddings":
        compress_embeddings(lm, reduction=0.95)
    else:
        quantize_model(lm, bits=2)
        if change == "strip":
            lm.generate(prompt, stop_token_ids=None)  # compiled on the quantized model, then stripped
            for layer in engine.all_layers(lm):  # move the weights off the grid: strip must be seen
                if hasattr(layer, "kernel") and layer.trainable_weights:
                    variable = layer.trainable_weights[0]
                    variable.assign(variable * 3.0)
            strip(lm)
    expected = greedy_by_hand(lm, ids, steps=4)
    assert not np.array_equal(expected, before), "the change must change the tokens for this test to mean anything"
    after = keras.ops.convert_to_numpy(lm.generate(prompt, stop_token_ids=None)["token_ids"])
    np.testing.assert_array_equal(after, expected)


def test_decoding_cache_is_dropped_by_a_change():
    pytest.importorskip("keras_hub")
    from keras_compress.nmt import EOS_ID, decoding, greedy_decode, transformer

    def greedy_uncached(model, source, steps):
        prefix = [2]  # BOS
        for _ in range(steps):
            logits = keras.ops.convert_to_numpy(decoding.uncached_logits(model, source, np.array([prefix], "int32")))
            prefix.append(int(np.argmax(logits[0])))
            if prefix[-1] == EOS_ID:
                return prefix[1:-1]
        return prefix[1:]

    keras.utils.set_random_seed(1)
    model = transformer(40, "small", num_layers=1, scale=0.125)
    source = np.array([[5, 9, 12, 7, 3]], "int32")
    before = greedy_decode(model, source, max_length=4)
    assert model in decoding._COMPILED
    quantize_model(model, bits=2)
    assert model not in decoding._COMPILED
    expected = greedy_uncached(model, source, steps=4)
    assert expected != before[0], "the change must change the tokens for this test to mean anything"
    assert greedy_decode(model, source, max_length=4) == [expected]
