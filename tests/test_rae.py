import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
from gensim.models import KeyedVectors  # noqa: E402
from gensim.test.utils import common_texts  # noqa: E402
from keras import ops  # noqa: E402

from keras_compress.rae import recursive_autoencoder as rae_module  # noqa: E402
from keras_compress.rae import (  # noqa: E402
    LSTMAutoencoder,
    RecursiveAutoencoder,
    average_overlaps,
    lstm_autoencoder_params,
    matched_lstm_units,
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
    np.testing.assert_allclose(table[:, 0], np.arange(9) / 9)  # scaled into (0, 1)
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


def unrolled_reference(model, vectors, lengths):
    """The recursion written out in NumPy, one level at a time (the paper's equations)."""
    weights = {mlp.name: mlp for mlp in (model.input_mlp, model.encoder_mlp, model.decoder_mlp, model.output_mlp)}
    table = step_features(model.max_length)
    d = model.embedding_dim
    words = numpy(model.decode(model.encode(vectors, lengths), lengths))
    for row, length in enumerate(lengths):
        level = numpy(weights["input_mlp"](vectors[row : row + 1, :length]))[0]
        spans = {(0, i): level[i] for i in range(length)}
        for step in range(1, length):
            pairs = np.concatenate([level[:-1], level[1:], np.repeat(table[step][None], len(level) - 1, 0)], -1)
            level = numpy(weights["encoder_mlp"](pairs[None]))[0]
            spans.update({(step, i): level[i] for i in range(len(level))})
        level = level[:1]
        for split in range(1, length):
            step = np.repeat(table[length - split][None], len(level), 0)
            halves = numpy(weights["decoder_mlp"](np.concatenate([level, step], -1)[None]))[0]
            level = numpy(average_overlaps(halves[None, :, :d], halves[None, :, d:]))[0]
        yield row, spans, numpy(weights["output_mlp"](level[None]))[0], words[row, :length]


@pytest.mark.parametrize("unroll_width", [0, 12], ids=["loops", "unrolled"])
def test_loops_match_the_recursion_written_out_level_by_level(unroll_width, monkeypatch):
    """Both code paths: symbolic loops (wide batches) and the recursion unrolled (width <= 12)."""
    monkeypatch.setattr(rae_module, "_UNROLL_WIDTH", unroll_width)
    rae, _ = make_models(max_length=7)
    vectors, lengths = padded_batch([7, 5, 1, 2], 7, padding_noise=10.0)
    _, spans = rae.encode(vectors, lengths, return_spans=True)
    spans = numpy(spans)
    for row, expected_spans, expected_words, words in unrolled_reference(rae, vectors, lengths):
        for (step, position), vector in expected_spans.items():
            np.testing.assert_allclose(spans[row, step, position], vector, atol=1e-5)
        np.testing.assert_allclose(words, expected_words, atol=1e-5)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="counts TensorFlow graph ops")
def test_graph_size_does_not_grow_with_the_width():
    """Past the unrolled widths the recursion is a symbolic loop: width 28 traces what width 13 does."""
    import tensorflow as tf

    assert rae_module._UNROLL_WIDTH < 13
    rae, _ = make_models(max_length=28)
    sizes = []
    for width in (13, 28):
        signature = [tf.TensorSpec((None, width, WORD_DIM)), tf.TensorSpec((None,), tf.int32)]
        traced = tf.function(lambda vectors, lengths: rae((vectors, lengths)), input_signature=signature)
        graph = traced.get_concrete_function().graph.as_graph_def()
        # The loop bodies live in the graph's function library.
        sizes.append(len(graph.node) + sum(len(function.node_def) for function in graph.library.function))
    assert sizes[0] == sizes[1], sizes


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
    by_cosine = nearest_words(queries, keyed_vectors, metric="cosine", batch_size=3)
    assert (by_cosine == words[cosine.argmax(1)].reshape(2, 7)).all()
    # Euclidean (the paper's MSE distance) is the default.
    assert (nearest_words(queries, keyed_vectors, batch_size=5) == words[euclidean.argmin(1)].reshape(2, 7)).all()
    # The two metrics disagree here, so the test tells them apart.
    assert (words[cosine.argmax(1)] != words[euclidean.argmin(1)]).any()
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


@pytest.mark.parametrize("which", ["rae", "lstm"])
def test_decode_accepts_one_int_length_for_the_batch(which):
    model = dict(zip(("rae", "lstm"), make_models(max_length=6)))[which]
    vectors, lengths = padded_batch([4, 4, 4], 4)
    z = model.encode(vectors, lengths)
    np.testing.assert_allclose(numpy(model.decode(z, 4)), numpy(model.decode(z, lengths)), atol=1e-6)
    assert numpy(model.decode(z, np.int64(2))).shape == (3, 2, WORD_DIM)
    with pytest.raises(ValueError, match="lengths for a batch"):
        model.decode(z, [4, 4])


BAD_LENGTHS = [(2.5, "integers"), (2.9, "integers"), ("3", "string"), (2**32 + 3, "must lie in"), (True, "integers"),
               ([[2], [3], [2]], "1-d"), (np.array([2.0, 3.0, 2.0]), "integers"), ([2, 3, 2**40], "must lie in"),
               (np.array([True, True, False]), "integers"), ([2, "3", 2], "integers")]


@pytest.mark.parametrize("which", ["rae", "lstm"])
def test_decode_refuses_lengths_that_are_not_integers(which):
    """Issue 24: 2.5 became 2, '3' was accepted, 2**32 + 3 wrapped to 3, True gave 1, [[2], [3]] was flattened."""
    model = dict(zip(("rae", "lstm"), make_models(max_length=6)))[which]
    z = np.zeros((3, 8), "float32")
    for lengths, reason in BAD_LENGTHS:
        with pytest.raises(ValueError, match=reason):
            model.decode(z, lengths)
        with pytest.raises(ValueError, match=reason):
            model.encode(np.zeros((3, 4, WORD_DIM), "float32"), lengths)
    assert numpy(model.decode(z, np.array([2, 3, 1], dtype="uint8"))).shape == (3, 3, WORD_DIM)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="shape relaxation is TensorFlow's")
@pytest.mark.parametrize("which", ["rae", "lstm"])
def test_unknown_width_gives_the_static_width_result(which):
    """Keras' TF trainer traces (None, None, dim) once batch widths vary (length buckets)."""
    import tensorflow as tf

    model = dict(zip(("rae", "lstm"), make_models(max_length=12)))[which]
    signature = [tf.TensorSpec((None, None, WORD_DIM)), tf.TensorSpec((None,), tf.int32)]
    dynamic = tf.function(lambda vectors, lengths: model((vectors, lengths)), input_signature=signature)
    for width in (3, 7, 12):
        vectors, lengths = padded_batch([width, 1, max(1, width - 2)], width)
        np.testing.assert_allclose(dynamic(vectors, lengths).numpy(), numpy(model((vectors, lengths))), atol=1e-5)


def random_vocabulary(size=300, dim=WORD_DIM, seed=0):
    keyed_vectors = KeyedVectors(dim)
    vectors = np.random.default_rng(seed).normal(size=(size, dim)).astype("float32")
    keyed_vectors.add_vectors([f"w{i}" for i in range(size)], vectors)
    return keyed_vectors


def random_sentences(keyed_vectors, count, min_length, max_length, seed=0):
    rng = np.random.default_rng(seed)
    words = keyed_vectors.index_to_key
    lengths = [min_length + i % (max_length - min_length + 1) for i in range(count)]
    return [[words[j] for j in rng.integers(len(words), size=length)] for length in lengths]


def overfit_report(model, sentences, keyed_vectors, width):
    from keras_compress.rae import SentenceBatches

    whole = SentenceBatches(sentences, keyed_vectors, batch_size=len(sentences), bucket_width=width, shuffle=False)
    vectors, lengths = whole.padded(np.arange(len(sentences)), width)
    decoded = numpy(model.decode(model.encode(vectors, lengths), lengths))
    mask = np.arange(decoded.shape[1])[None] < lengths[:, None]
    mse = float(np.square(decoded - vectors[:, : decoded.shape[1]])[mask].mean())
    return mse, reconstruction_accuracy(decoded, sentences, keyed_vectors)


def test_overfits_16_sentences_of_2_to_12_words():
    from keras_compress.rae import SentenceBatches

    keyed_vectors = random_vocabulary()
    sentences = random_sentences(keyed_vectors, 16, 2, 12)
    vectors, lengths = SentenceBatches(sentences, keyed_vectors, batch_size=16).padded(np.arange(16), 12)
    keras.utils.set_random_seed(0)
    model = RecursiveAutoencoder(WORD_DIM, 48, max_length=12)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit((vectors, lengths), epochs=150, batch_size=16, verbose=0)  # one static width: one trace
    mse, report = overfit_report(model, sentences, keyed_vectors, 12)
    assert mse < 0.05, mse  # the word vectors have variance 1
    assert report["word_accuracy"] == 1.0, report


@pytest.mark.slow
def test_overfits_200_sentences_of_2_to_20_words():
    from keras_compress.rae import SentenceBatches

    keyed_vectors = random_vocabulary()
    sentences = random_sentences(keyed_vectors, 200, 2, 20)
    keras.utils.set_random_seed(0)
    # d_emb 128 holds a 20-word sentence (6 numbers a word) without compression, so this
    # checks that training reaches a lossless code through 19 levels of recursion.
    model = RecursiveAutoencoder(WORD_DIM, 128, max_length=20)
    batches = SentenceBatches(sentences, keyed_vectors, batch_size=20, bucket_width=5)
    # 9,600 steps with the learning rate decayed to zero (docs/rae.md): at a constant
    # 3e-3, 3,000 steps recovered only the sentences of up to 5 words, and longer
    # training stalled near MSE 0.1 with the loss jumping from epoch to epoch.
    epochs = 800
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(3e-3, epochs * len(batches))))
    model.fit(batches, epochs=epochs, verbose=0)
    mse, report = overfit_report(model, sentences, keyed_vectors, 20)
    # Measured (benchmarks/results/rae_overfit_d128.json): every word of every sentence
    # from epoch 400 on, MSE 3e-5 at the end; the mean vector scores about 1.
    assert mse < 0.02, mse
    assert report["word_accuracy"] == 1.0 and report["sentence_accuracy"] == 1.0, report


def test_sentence_batches_bucket_pad_and_cover_every_sentence():
    from keras_compress.rae import SentenceBatches

    keyed_vectors = random_vocabulary()
    sentences = random_sentences(keyed_vectors, 23, 1, 11, seed=2)
    batches = SentenceBatches(sentences, keyed_vectors, batch_size=4, bucket_width=4, seed=0)
    seen = set()
    widths = []
    for index in range(len(batches)):
        (vectors, lengths), target = batches[index]
        width = vectors.shape[1]
        widths.append(width)
        assert vectors.shape == (4, width, WORD_DIM) and (width % 4 == 0 or width == 11)  # 11: the longest
        assert target is vectors
        assert lengths.max() <= width and lengths.min() > 4 * ((width - 1) // 4)
        for row, sentence_row in enumerate(batches.plan[index][1]):
            np.testing.assert_array_equal(vectors[row, : lengths[row]], keyed_vectors[sentences[sentence_row]])
            assert not vectors[row, lengths[row] :].any()
            seen.add(int(sentence_row))
    assert seen == set(range(len(sentences)))
    assert widths[0] != widths[1]  # Keras' TF adapter must see the width vary
    first = [rows.tolist() for _, rows in batches.plan]
    batches.on_epoch_end()
    assert [rows.tolist() for _, rows in batches.plan] != first
    with pytest.raises(KeyError, match="nope"):
        SentenceBatches([["w1", "nope"]], keyed_vectors)


def test_sentence_batches_refuse_a_string_and_non_integer_sizes():
    """Issue 24: SentenceBatches("abc", kv) made three one-letter sentences; batch_size=2.5 became 2."""
    from keras_compress.rae import SentenceBatches

    keyed_vectors = random_vocabulary()
    sentences = random_sentences(keyed_vectors, 5, 1, 4, seed=2)
    with pytest.raises(ValueError, match="got a string"):
        SentenceBatches("w1", keyed_vectors)
    with pytest.raises(ValueError, match="Sentence 1 is a string"):
        SentenceBatches([["w1"], "w1 w2"], keyed_vectors)
    for argument, value in (("batch_size", 2.5), ("batch_size", True), ("batch_size", "4"), ("bucket_width", 1.5),
                            ("bucket_width", 0), ("batch_size", -1), ("batch_size", 2**40)):
        with pytest.raises(ValueError, match=argument):
            SentenceBatches(sentences, keyed_vectors, **{argument: value})
    assert SentenceBatches(sentences, keyed_vectors, batch_size=np.int64(2)).batch_size == 2


def test_read_sentences_skips_an_over_long_line(tmp_path):
    """A line over max_line_chars (here a run of NULs with no newline, a small gzip bomb) is skipped with a warning."""
    import gzip

    from keras_compress.rae import read_sentences, sample_sentences

    vocabulary = {"a": 0, "b": 1}
    path = tmp_path / "bomb.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("a b\n" + "\0" * 300_000 + " a\nb a\n" + "\0" * 5000)  # the last line has no newline
    with pytest.warns(UserWarning, match="skipped 2 lines longer than 1000"):
        assert read_sentences(path, vocabulary, 2, 4, max_line_chars=1000) == [["a", "b"], ["b", "a"]]
    with pytest.warns(UserWarning, match="skipped 2 lines"):
        assert len(sample_sentences(path, 5, vocabulary, 2, 4, max_line_chars=1000)) == 2
    with pytest.raises(ValueError, match="max_line_chars"):
        read_sentences(path, vocabulary, max_line_chars=0)


@pytest.mark.slow
def test_read_sentences_on_a_gzip_nul_bomb_stays_in_bounded_memory(tmp_path):
    """Issue 24: read_sentences on a NUL bomb took 3.0 GB. 2 GB of NULs (2 MB gzipped) in one line."""
    import gzip
    import subprocess
    import sys

    path = tmp_path / "bomb.txt.gz"
    block = b"\0" * (1 << 24)
    with gzip.open(path, "wb", compresslevel=1) as handle:
        handle.write(b"a b\n")
        for _ in range(128):
            handle.write(block)
        handle.write(b"\nb a\n")
    script = (
        "import resource, sys, warnings; warnings.simplefilter('ignore')\n"
        "from keras_compress.rae import read_sentences\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"print(read_sentences({str(path)!r}, {{'a': 0, 'b': 1}}, 2, 4))\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": root})
    assert done.returncode == 0, done.stderr[-2000:]
    sentences, growth_mb = done.stdout.strip().splitlines()[-2:]
    assert sentences == "[['a', 'b'], ['b', 'a']]"
    # Peak memory after the imports: the 2 GB line is read 64k characters at a time.
    assert int(growth_mb) < 100, f"peak memory grew by {growth_mb} MB"


def test_sample_and_read_sentences_stream_a_gzip_file(tmp_path):
    import gzip

    from keras_compress.rae import read_sentences, sample_sentences

    vocabulary = {"a": 0, "b": 1, "c": 2}
    lines = ["a b", "a b c", "a x", "c", "b b b b b", "a b"] * 50
    path = tmp_path / "corpus.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    assert read_sentences(path, vocabulary, 2, 4) == [["a", "b"], ["a", "b", "c"]]  # deduplicated, filtered
    assert len(read_sentences(path, vocabulary, 1, 5, deduplicate=False, limit=7)) == 7
    drawn = sample_sentences(path, 40, vocabulary, 2, 3, seed=1)
    assert len(drawn) == 40 and all(s in (["a", "b"], ["a", "b", "c"]) for s in drawn)
    # Sampling reaches the end of the file, not only its head.
    assert sample_sentences(path, 5, vocabulary, 5, 5) == [["b"] * 5] * 5


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="uses tf.GradientTape")
def test_gradient_reaches_the_leaves_through_a_deep_recursion():
    """At width 20 the first version's raw step scalar shrank the gradient 1e8-fold (docs/rae.md).

    The gradient also has to flow back through the symbolic loops (TensorFlow's
    while_loop gradient), into every weight.
    """
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = RecursiveAutoencoder(WORD_DIM, 16, max_length=20)
    model.build()
    vectors, lengths = padded_batch([20] * 8, 20)

    @tf.function
    def gradients(vectors, lengths):
        with tf.GradientTape() as tape:
            leaves = model.input_mlp(vectors)
            tape.watch(leaves)
            decoded = model._decode(model._merge_levels(leaves, lengths), lengths, 20)
            tape.watch(decoded)
            loss = tf.reduce_mean(tf.square(decoded - vectors))
        return tape.gradient(loss, [decoded, leaves, model.trainable_variables])

    at_output, at_leaves, at_weights = gradients(tf.constant(vectors), tf.constant(lengths))
    ratio = float(tf.reduce_mean(tf.norm(at_leaves, axis=-1)) / tf.reduce_mean(tf.norm(at_output, axis=-1)))
    assert ratio > 1e-3, ratio
    for variable, gradient in zip(model.trainable_variables, at_weights):
        assert gradient is not None and float(tf.reduce_max(tf.abs(gradient))) > 0, variable.path


@pytest.mark.parametrize("model_class", [RecursiveAutoencoder, LSTMAutoencoder])
def test_encode_and_decode_build_the_model_on_first_use(model_class):
    vectors = np.random.default_rng(0).normal(size=(3, 5, WORD_DIM)).astype("float32")
    lengths = np.array([5, 3, 1])
    first, second = model_class(WORD_DIM, 8, max_length=5), model_class(WORD_DIM, 8, max_length=5)
    sentence = first.encode(vectors, lengths)  # not built yet: builds, as a Keras layer does
    assert first.built and tuple(sentence.shape) == (3, 8)
    rebuilt = second.decode(np.zeros((3, 8), "float32"), lengths)
    assert second.built and tuple(rebuilt.shape) == (3, 5, WORD_DIM)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(first.decode(sentence, lengths)),
                               keras.ops.convert_to_numpy(first((vectors, lengths))), atol=1e-5)
