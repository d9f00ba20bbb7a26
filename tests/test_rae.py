import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
from gensim.models import KeyedVectors  # noqa: E402
from gensim.test.utils import common_texts  # noqa: E402
from keras import ops  # noqa: E402

from keras_compress.lstm_autoencoder import (  # noqa: E402
    LSTMAutoencoder,
    lstm_autoencoder_params,
    matched_lstm_units,
)
from keras_compress.rae import (  # noqa: E402
    RecursiveAutoencoder,
    average_overlaps,
    nearest_words,
    reconstruction_accuracy,
    step_bucket,
    step_features,
)

WORD_DIM = 6


def numpy(tensor):
    return np.asarray(ops.convert_to_numpy(tensor))


def padded_batch(lengths, width, seed=0, padding_noise=0.0):
    """Random word vectors; padding holds noise so any leak would show."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(len(lengths), width, WORD_DIM)).astype("float32")
    for row, length in enumerate(lengths):
        vectors[row, length:] = padding_noise * rng.normal(size=(width - length, WORD_DIM))
    return vectors, np.array(lengths, dtype="int32")


def make_models(max_length=6, embedding_dim=8):
    keras.utils.set_random_seed(1)
    rae = RecursiveAutoencoder(WORD_DIM, embedding_dim, max_length=max_length)
    lstm = LSTMAutoencoder(WORD_DIM, embedding_dim, units=5, max_length=max_length)
    for model in (rae, lstm):
        model.build()
    return rae, lstm


def test_step_buckets_follow_the_paper():
    expected = {1: 0, 2: 1, 3: 2, 4: 2, 5: 3, 6: 3, 7: 3, 8: 4, 9: 4, 10: 4, 11: 5, 13: 5, 14: 6}
    assert {step: step_bucket(step) for step in expected} == expected
    with pytest.raises(ValueError):
        step_bucket(0)


def test_step_features_table():
    table = step_features(9)  # steps 1..8, buckets {1} {2} {3,4} {5,6,7} {8}
    assert table.shape == (9, 1 + 5)
    np.testing.assert_array_equal(table[0], 0.0)
    np.testing.assert_array_equal(table[:, 0], np.arange(9))
    np.testing.assert_array_equal(table[4, 1:], [0, 0, 1, 0, 0])
    np.testing.assert_array_equal(table[8, 1:], [0, 0, 0, 0, 1])
    assert step_features(1).shape == (1, 2)


def test_overlap_averaging_matches_hand_computation():
    left = np.array([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]], dtype="float32")
    right = np.array([[[10.0, 20.0], [30.0, 40.0], [50.0, 60.0]]], dtype="float32")
    expected = [[[1.0, 2.0], [(3 + 10) / 2, (4 + 20) / 2], [(5 + 30) / 2, (6 + 40) / 2], [50.0, 60.0]]]
    np.testing.assert_allclose(numpy(average_overlaps(left, right)), expected)
    # One vector splits into exactly its two halves.
    np.testing.assert_allclose(numpy(average_overlaps(left[:, :1], right[:, :1])), [[[1, 2], [10, 20]]])


@pytest.mark.parametrize("width", [1, 2, 5])
def test_shapes_through_every_recursion_step(width):
    rae, _ = make_models(max_length=6)
    vectors, lengths = padded_batch([width, 1] if width > 1 else [1, 1], width)
    levels = rae._encoder_levels(ops.convert_to_tensor(vectors))
    assert [tuple(level.shape) for level in levels] == [(2, width - step, 8) for step in range(width)]
    embeddings, spans = rae.encode(vectors, lengths, return_spans=True)
    assert tuple(embeddings.shape) == (2, 8)
    assert tuple(spans.shape) == (2, width, width, 8)
    spans = numpy(spans)
    # The widest span of the full row is the sentence embedding; leaves are MLP_in(words).
    np.testing.assert_allclose(spans[0, width - 1, 0], numpy(embeddings)[0], atol=1e-6)
    np.testing.assert_allclose(spans[0, 0], numpy(rae.input_mlp(vectors))[0], atol=1e-6)
    # Spans running past a sentence are zero.
    assert not spans[1, 1:].any() and not spans[1, 0, 1:].any()
    assert tuple(rae.decode(embeddings, lengths).shape) == (2, width, WORD_DIM)
    assert tuple(rae((vectors, lengths)).shape) == (2, width, WORD_DIM)


@pytest.mark.parametrize("which", ["rae", "lstm"])
def test_padding_never_leaks(which):
    model = dict(zip(("rae", "lstm"), make_models(max_length=6)))[which]
    vectors, lengths = padded_batch([6, 4, 1, 2, 5], 6, padding_noise=10.0)
    batch_embeddings = numpy(model.encode(vectors, lengths))
    batch_decoded = numpy(model.decode(batch_embeddings, lengths))
    for row, length in enumerate(lengths):
        alone = numpy(model.encode(vectors[row : row + 1, :length], lengths[row : row + 1]))
        np.testing.assert_allclose(alone[0], batch_embeddings[row], atol=1e-5)
        decoded = numpy(model.decode(alone, lengths[row : row + 1]))
        assert decoded.shape == (1, length, WORD_DIM)
        np.testing.assert_allclose(decoded[0], batch_decoded[row, :length], atol=1e-5)
        np.testing.assert_array_equal(batch_decoded[row, length:], 0.0)


def test_loss_ignores_padding():
    rae, _ = make_models()
    vectors, lengths = padded_batch([6, 3, 1], 6)
    targets = vectors.copy()
    targets[1, 3:] = 100.0  # garbage in the target's padding must not count
    predicted = numpy(rae((vectors, lengths)))
    mask = np.arange(6)[None, :] < lengths[:, None]
    expected = np.square(vectors - predicted)[mask].mean()
    loss = rae.compute_loss(x=(vectors, lengths), y=targets, y_pred=ops.convert_to_tensor(predicted))
    np.testing.assert_allclose(numpy(loss), expected, rtol=1e-5)


def test_tiny_model_overfits_and_every_word_is_recovered():
    words = sorted({word for sentence in common_texts for word in sentence})
    keyed_vectors = KeyedVectors(WORD_DIM)
    keyed_vectors.add_vectors(words, np.random.default_rng(0).normal(size=(len(words), WORD_DIM)).astype("float32"))
    width = max(len(sentence) for sentence in common_texts)  # lengths 1 to 6
    vectors = np.zeros((len(common_texts), width, WORD_DIM), dtype="float32")
    for row, sentence in enumerate(common_texts):
        vectors[row, : len(sentence)] = keyed_vectors[sentence]
    lengths = np.array([len(sentence) for sentence in common_texts])
    keras.utils.set_random_seed(0)
    model = RecursiveAutoencoder(WORD_DIM, 32, max_length=width)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    # No target: an autoencoder's target defaults to its input vectors.
    history = model.fit((vectors, lengths), epochs=100, batch_size=len(vectors), verbose=0)
    assert history.history["loss"][-1] < 5e-3
    decoded = model.decode(model.encode(vectors, lengths), lengths)
    report = reconstruction_accuracy(decoded, common_texts, keyed_vectors)
    assert report["word_accuracy"] == 1.0 and report["sentence_accuracy"] == 1.0
    assert set(report["by_length"]) == set(lengths.tolist())
    for row, sentence in enumerate(common_texts):
        assert list(nearest_words(numpy(decoded)[row, : len(sentence)], keyed_vectors)) == sentence


@pytest.mark.parametrize("which", ["rae", "lstm"])
def test_keras_file_round_trip(which, tmp_path):
    model = dict(zip(("rae", "lstm"), make_models(max_length=5)))[which]
    vectors, lengths = padded_batch([5, 2, 1], 5)
    path = str(tmp_path / f"{which}.keras")
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert type(restored) is type(model)
    assert restored.get_config() == model.get_config()
    for key in ("word_dim", "embedding_dim", "max_length"):
        assert key in model.get_config()
    np.testing.assert_allclose(numpy(restored.encode(vectors, lengths)), numpy(model.encode(vectors, lengths)), atol=1e-6)
    np.testing.assert_allclose(numpy(restored((vectors, lengths))), numpy(model((vectors, lengths))), atol=1e-6)


def test_nearest_words_against_brute_force():
    rng = np.random.default_rng(3)
    keyed_vectors = KeyedVectors(4)
    keyed_vectors.add_vectors([f"w{i}" for i in range(30)], rng.normal(size=(30, 4)).astype("float32"))
    queries = rng.normal(size=(2, 7, 4)).astype("float32")
    flat = queries.reshape(-1, 4)
    vocabulary = keyed_vectors.vectors
    cosine = (flat / np.linalg.norm(flat, axis=1, keepdims=True)) @ (
        vocabulary / np.linalg.norm(vocabulary, axis=1, keepdims=True)
    ).T
    euclidean = np.linalg.norm(flat[:, None] - vocabulary[None], axis=-1)
    words = np.array(keyed_vectors.index_to_key)
    assert (nearest_words(queries, keyed_vectors, batch_size=3) == words[cosine.argmax(1)].reshape(2, 7)).all()
    by_distance = nearest_words(queries, keyed_vectors, metric="euclidean")
    assert (by_distance == words[euclidean.argmin(1)].reshape(2, 7)).all()
    with pytest.raises(ValueError):
        nearest_words(queries, keyed_vectors, metric="manhattan")


def test_lstm_capacity_matching():
    rae, _ = make_models(max_length=6, embedding_dim=16)
    units = matched_lstm_units(WORD_DIM, 16, rae.count_params())
    lstm = LSTMAutoencoder(WORD_DIM, 16, units=units, max_length=6)
    lstm.build()
    assert lstm.count_params() == lstm_autoencoder_params(WORD_DIM, 16, units)
    for neighbour in (units - 1, units + 1):
        gap = abs(lstm_autoencoder_params(WORD_DIM, 16, neighbour) - rae.count_params())
        assert abs(lstm.count_params() - rae.count_params()) <= gap


def test_bad_inputs_raise_clear_errors():
    rae, _ = make_models(max_length=4)
    with pytest.raises(ValueError, match="max_length"):
        rae.encode(np.zeros((1, 5, WORD_DIM), "float32"))
    with pytest.raises(ValueError, match="word vectors"):
        rae.encode(np.zeros((1, 3, WORD_DIM + 1), "float32"))
    with pytest.raises(ValueError, match="Lengths"):
        rae.encode(np.zeros((1, 3, WORD_DIM), "float32"), [0])
    with pytest.raises(ValueError, match="Lengths"):
        rae.encode(np.zeros((1, 3, WORD_DIM), "float32"), [4])  # longer than the padded width
    with pytest.raises(ValueError, match="Lengths"):
        rae.decode(np.zeros((1, 8), "float32"), [9])
    vectors, lengths = padded_batch([3, 1], 3)
    np.testing.assert_allclose(
        numpy(rae.encode({"vectors": vectors, "lengths": lengths})), numpy(rae.encode(vectors, lengths)), atol=1e-6
    )
    with pytest.raises(ValueError, match="embedding_dim"):
        RecursiveAutoencoder(WORD_DIM, 0)
    with pytest.raises(ValueError, match="sentences"):
        reconstruction_accuracy(np.zeros((2, 3, WORD_DIM)), [["a"]], None)
