import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_compress.nmt import search  # noqa: E402
from keras_compress.nmt import decoding  # noqa: E402
from keras_compress.nmt import (  # noqa: E402
    PRESETS,
    SmoothedSparseCategoricalCrossentropy,
    beam_search,
    greedy_decode,
    transformer,
    transformer_layers,
)

VOCAB = 30


def copy_task(rows=64, length=5, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(4, VOCAB, (rows, length)).astype("int32")
    source = np.concatenate([tokens, np.full((rows, 1), 3)], 1).astype("int32")
    decoder_inputs = np.concatenate([np.full((rows, 1), 2), tokens], 1).astype("int32")
    return source, decoder_inputs, source.copy()


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(1)
    return transformer(VOCAB, "small", num_layers=2, d_model=16, d_ff=32, num_heads=2, dropout=0.0)


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    model = transformer(VOCAB, "small", num_layers=1, d_model=32, d_ff=64, num_heads=2, dropout=0.0)
    source, decoder_inputs, labels = copy_task(rows=256)
    model.compile(keras.optimizers.Adam(0.005), SmoothedSparseCategoricalCrossentropy(0.1))
    model.fit([source, decoder_inputs], labels, epochs=15, batch_size=16, verbose=0)
    return model


@pytest.mark.parametrize("preset, width, ff, heads", [("base", 128, 512, 8), ("medium", 64, 256, 4),
                                                      ("small", 32, 128, 4)])
def test_presets_scale_keeping_ratios(preset, width, ff, heads):
    keras_hub = pytest.importorskip("keras_hub")
    model = transformer(VOCAB, preset, num_layers=1, scale=0.25)
    assert model.get_layer("embedding").embedding_dim == width
    assert isinstance(model.get_layer("encoder_0"), keras_hub.layers.TransformerEncoder)
    assert model.get_layer("encoder_0").intermediate_dim == ff
    assert isinstance(model.get_layer("decoder_0"), keras_hub.layers.TransformerDecoder)
    assert model.get_layer("decoder_0").num_heads == heads
    assert PRESETS["base"] == {"d_model": 512, "d_ff": 2048, "num_heads": 8}


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="preset"):
        transformer(VOCAB, "huge")
    with pytest.raises(ValueError, match="divisible"):
        transformer(VOCAB, "small", d_model=30, num_heads=4)
    with pytest.raises(ValueError, match="vocab_size"):
        transformer(2)


@pytest.mark.parametrize("self_attention,mask_kind", [
    ("matmul", "margin"), ("products", "margin"), ("products", "additive")])
def test_cached_decoding_equals_uncached(model, self_attention, mask_kind):
    source, decoder_inputs, _ = copy_task(rows=4, seed=1)
    source[0, 3:] = 0  # a padded source row
    source[0, 2] = 3
    logits, caches = decoding.encode(model, source, decoder_inputs.shape[1], mask=mask_kind)
    mask = source != 0
    for length in range(1, decoder_inputs.shape[1] + 1):
        if length > 1:
            logits, keys, values = decoding.decode_step(
                model, decoder_inputs[:, length - 1 : length], length - 1, caches, mask,
                self_attention=self_attention, mask=mask_kind)
            caches = {**caches, "self_keys": keys, "self_values": values}
        full = decoding.uncached_logits(model, source, decoder_inputs[:, :length])
        np.testing.assert_allclose(keras.ops.convert_to_numpy(logits),
                                   keras.ops.convert_to_numpy(full), atol=1e-5)
    assert len(transformer_layers(model)["decoders"]) == 2
    with pytest.raises(ValueError, match="self_attention"):
        decoding.decode_step(model, decoder_inputs[:, :1], 0, caches, mask, self_attention="dot")
    with pytest.raises(ValueError, match="mask"):
        decoding.decode_step(model, decoder_inputs[:, :1], 0, caches, mask, mask="zero")


def test_step_layer_norm_and_head_rows_give_keras_values(model):
    # the step's LayerNorm in 10 operators gives Keras's layer's values; the cache rows of
    # hypotheses from a constant table equal the arithmetic ones
    norm = decoding.transformer_decoder_parts(
        transformer_layers(model)["decoders"][0])["feedforward_norm"]
    x = np.random.default_rng(0).normal(size=(3, 1, 16)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(decoding._layer_norm(norm, x)),
                               keras.ops.convert_to_numpy(norm(x)), rtol=1e-6, atol=1e-6)
    rows = np.array([2, 0, 2], "int32")
    expected = (rows[:, None] * 4 + np.arange(4)).reshape(-1)
    for cache_rows in (12, keras.ops.convert_to_tensor(12)):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(decoding._head_rows(rows, 4, cache_rows)), expected)


def test_step_without_special_logits_gives_the_same_candidates(model):
    # decode_step(suppress="drop") multiplies by the kernel's columns but padding and BOS, and
    # its query/key/value projections run as one matrix product: the same logits and candidates
    source, decoder_inputs, _ = copy_task(rows=3, seed=3)
    logits, caches = decoding.encode(model, source, decoder_inputs.shape[1])
    step = (model, decoder_inputs[:, 1:2], 1, caches, source != 0)
    full, keys, _ = decoding.decode_step(*step, suppress=False)
    kept, kept_keys, _ = decoding.decode_step(*step, suppress="drop")
    full, kept = keras.ops.convert_to_numpy(full), keras.ops.convert_to_numpy(kept)
    assert kept.shape == (3, VOCAB - 2)
    np.testing.assert_allclose(kept, np.delete(full, [0, 2], axis=1), atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(kept_keys[1]),
                               keras.ops.convert_to_numpy(keys[1]), atol=1e-6)
    values, ids = decoding.top_candidates(full, 3)
    kept_values, kept_ids = decoding.top_candidates(kept, 3, special_dropped=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(kept_ids),
                                  keras.ops.convert_to_numpy(ids))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(kept_values),
                               keras.ops.convert_to_numpy(values), atol=1e-5)
    # layers that are not float EinsumDense run one by one, with the same results
    hidden = np.random.default_rng(0).normal(size=(3, 1, 16)).astype("float32")
    attention = decoding.transformer_decoder_parts(
        transformer_layers(model)["decoders"][0])["self_attention"]
    layers = [attention["query"], attention["key"]]
    fused = decoding._projections(layers, hidden, 0.5)
    separate = decoding._projections([lambda x, f=layer: f(x) for layer in layers], hidden, 0.5)
    for a, b in zip(fused, separate):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b),
                                   atol=1e-6)


def test_hypotheses_share_the_source_cache_and_reorder_inside_the_step(model):
    source, prefixes, _ = copy_task(rows=2, seed=5)
    source = source[:1]  # one sentence, two hypotheses (beams)
    _, caches = decoding.encode(model, source, prefixes.shape[1])
    caches = {name: [keras.ops.convert_to_numpy(value) for value in values]
              for name, values in caches.items()}
    caches, _ = search.cache_reorder(2)((caches, None), [0, 0])
    assert caches["self_keys"][1].shape[0] == 4 and caches["cross_keys"][1].shape[0] == 2
    for length in range(2, prefixes.shape[1] + 1):
        rows = np.array([0, 1], "int32")
        if length == 3:  # the hypotheses swap places: the step gathers the cache rows
            prefixes, rows = prefixes[::-1].copy(), np.array([1, 0], "int32")
        logits, keys, values = decoding.decode_step(
            model, prefixes[:, length - 1 : length], length - 1, caches, source != 0, rows)
        caches = {**caches, "self_keys": keys, "self_values": values}
        full = decoding.uncached_logits(model, np.repeat(source, 2, 0), prefixes[:, :length])
        np.testing.assert_allclose(keras.ops.convert_to_numpy(logits),
                                   keras.ops.convert_to_numpy(full), atol=1e-5)


def test_beam_size_one_equals_greedy(model):
    source, _, _ = copy_task(rows=8, seed=2)
    greedy = greedy_decode(model, source, max_length=8)  # keras-hub's GreedySampler
    assert greedy == beam_search(model, source, beam_size=1, max_length=8)  # ours
    assert len({len(row) for row in greedy}) > 1 or len(greedy[0]) == 8  # varied, not empty


@pytest.mark.slow
def test_beam_search_learns_the_copy_task(trained):
    source, _, _ = copy_task(rows=8, seed=3)
    result = beam_search(trained, source, beam_size=4, length_penalty=0.6, max_length=8)
    exact = sum(row == list(src[:-1]) for row, src in zip(result, source))
    assert exact >= 6, result


def test_smoothed_loss_matches_numpy_and_ignores_padding():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 5)).astype("float32")
    labels = np.array([[1, 4, 0], [2, 0, 0]])
    got = float(SmoothedSparseCategoricalCrossentropy(0.1)(labels, logits))
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    per_token = -0.9 * np.take_along_axis(log_probs, labels[..., None], -1)[..., 0] - 0.1 * log_probs.mean(-1)
    np.testing.assert_allclose(got, per_token[labels != 0].mean(), rtol=1e-5)


def test_save_and_load(tmp_path, model):
    source, decoder_inputs, _ = copy_task(rows=4, seed=4)
    path = tmp_path / "transformer.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict([source, decoder_inputs], verbose=0),
                               model.predict([source, decoder_inputs], verbose=0), atol=1e-5)


def test_translation_helpers(tmp_path, model):
    from keras_compress.nmt import corpus_bleu, make_examples, perplexity, train_tokenizer

    words = ["light", "day", "night", "water", "earth", "heaven", "luz", "dia", "noche", "agua"]
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, 6)) for _ in range(200)]
    tokenizer = train_tokenizer(texts, str(tmp_path / "sp"), vocab_size=VOCAB)
    assert tokenizer.pad_id() == 0 and tokenizer.bos_id() == 2 and tokenizer.eos_id() == 3
    ((encoder_inputs, decoder_inputs), labels), kept = make_examples(tokenizer, texts[:20], texts[:20], max_length=12)
    assert encoder_inputs.shape == decoder_inputs.shape == labels.shape == (len(kept), 13)
    assert (decoder_inputs[:, 0] == 2).all()
    shifted = labels[:, :-1]
    assert ((decoder_inputs[:, 1:] == shifted) | (shifted == 3)).all()
    assert ((labels == 3).sum(1) == 1).all()
    sentence = "in the beginning god created the heaven and the earth"
    assert corpus_bleu([sentence], [sentence]).score == pytest.approx(100.0)
    value = perplexity(model, [encoder_inputs, decoder_inputs], labels)
    assert np.isfinite(value) and value > 1.0
