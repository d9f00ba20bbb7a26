"""FactorizedEmbedding, the rank formula, SVD factors and compress_embeddings."""

import math

import keras
import numpy as np
import pytest

from keras_compress import FactorizedEmbedding, compress_embeddings
from keras_compress.layers import rank_for_reduction, svd_factors

VOCAB, DIM, LENGTH = 60, 12, 7


def token_rows(count=24, seed=0):
    rng = np.random.default_rng(seed)
    rows = rng.integers(1, VOCAB, size=(count, LENGTH)).astype("int32")
    rows[:, 5:] = 0
    return rows


def functional_model():
    keras.utils.set_random_seed(0)
    tokens = keras.Input((LENGTH,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, DIM, mask_zero=True, name="words")(tokens)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dense(8, activation="relu", name="hidden")(x)
    return keras.Model(tokens, keras.layers.Dense(3, name="logits")(x))


def sequential_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((LENGTH,), dtype="int32"),
            keras.layers.Embedding(VOCAB, DIM, mask_zero=True, name="words"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(3, name="logits"),
        ]
    )


@pytest.mark.parametrize("vocab,dim,reduction", [(60, 12, 0.5), (10000, 300, 0.9), (100, 50, 0.0), (7, 3, 0.25)])
def test_rank_formula(vocab, dim, reduction):
    rank = rank_for_reduction(vocab, dim, reduction)
    assert rank == math.floor((1 - reduction) * vocab * dim / (vocab + dim))
    assert rank * (vocab + dim) <= (1 - reduction) * vocab * dim + 1e-9
    assert (rank + 1) * (vocab + dim) > (1 - reduction) * vocab * dim


def test_rank_formula_rejects_bad_reductions():
    for reduction in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="reduction"):
            rank_for_reduction(60, 12, reduction)
    with pytest.raises(ValueError, match="smaller reduction"):
        rank_for_reduction(60, 12, 0.99)


@pytest.mark.parametrize("placement", ["first", "second", "split"])
def test_svd_factors_equal_numpy_truncated_svd(placement):
    matrix = np.random.default_rng(1).standard_normal((40, 9))
    first, second = svd_factors(matrix, 4, placement)
    u, s, vt = np.linalg.svd(matrix, full_matrices=False)
    best = (u[:, :4] * s[:4]) @ vt[:4]
    assert first.shape == (40, 4) and second.shape == (4, 9)
    np.testing.assert_allclose(first @ second, best, atol=1e-5)
    expected_first = {"first": u[:, :4] * s[:4], "second": u[:, :4], "split": u[:, :4] * np.sqrt(s[:4])}[placement]
    np.testing.assert_allclose(np.abs(first), np.abs(expected_first), atol=1e-5)  # up to sign
    with pytest.raises(ValueError, match="rank"):
        svd_factors(matrix, 10)
    with pytest.raises(ValueError, match="singular_values"):
        svd_factors(matrix, 2, "middle")


def test_layer_call_matches_numpy_and_masks():
    layer = FactorizedEmbedding(VOCAB, DIM, rank=4, mask_zero=True)
    rows = token_rows()
    outputs = keras.ops.convert_to_numpy(layer(rows))
    table, projection = (keras.ops.convert_to_numpy(w) for w in layer.weights)
    np.testing.assert_allclose(outputs, table[rows] @ projection, rtol=1e-5, atol=1e-6)
    assert outputs.shape == (24, LENGTH, DIM)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.compute_mask(rows)), rows != 0)
    assert layer.count_params() == 4 * (VOCAB + DIM)
    assert FactorizedEmbedding(VOCAB, DIM, 4).compute_mask(rows) is None


def test_layer_rejects_bad_arguments():
    for bad in ({"rank": 0}, {"rank": 2.5}, {"input_dim": -1}):
        arguments = {"input_dim": VOCAB, "output_dim": DIM, "rank": 3, **bad}
        with pytest.raises(ValueError):
            FactorizedEmbedding(**arguments)


def test_from_embedding_is_the_truncated_svd():
    embedding = keras.layers.Embedding(VOCAB, DIM, mask_zero=True, name="words")
    embedding.build()
    factorized = FactorizedEmbedding.from_embedding(embedding, reduction=0.5)
    assert factorized.rank == rank_for_reduction(VOCAB, DIM, 0.5)
    assert factorized.name == "words" and factorized.mask_zero
    matrix = keras.ops.convert_to_numpy(embedding.embeddings)
    first, second = svd_factors(matrix, factorized.rank)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(factorized.embedding_matrix), first @ second, atol=1e-5)
    full_rank = FactorizedEmbedding.from_embedding(embedding, rank=DIM)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(full_rank.embedding_matrix), matrix, atol=1e-5)
    with pytest.raises(ValueError, match="exactly one"):
        FactorizedEmbedding.from_embedding(embedding)
    with pytest.raises(TypeError):
        FactorizedEmbedding.from_embedding(keras.layers.Dense(3))


def test_keras_file_round_trip_in_safe_mode(tmp_path):
    tokens = keras.Input((LENGTH,), dtype="int32")
    x = FactorizedEmbedding(VOCAB, DIM, rank=3, mask_zero=True, embeddings_regularizer="l2")(tokens)
    model = keras.Model(tokens, keras.layers.GlobalAveragePooling1D()(x))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    layer = loaded.layers[1]
    assert isinstance(layer, FactorizedEmbedding)
    assert layer.get_config() == model.layers[1].get_config()
    np.testing.assert_allclose(loaded.predict(token_rows(), verbose=0), model.predict(token_rows(), verbose=0))


@pytest.mark.parametrize("make_model", [functional_model, sequential_model])
def test_compress_embeddings_changes_only_the_embedding(make_model):
    model = make_model()
    before = {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers}
    old_matrix = before["words"][0]
    compressed = compress_embeddings(model, reduction=0.5)
    assert compressed is model
    rank = rank_for_reduction(VOCAB, DIM, 0.5)
    for layer in compressed.layers:
        if layer.name == "words":
            assert isinstance(layer, FactorizedEmbedding) and layer.rank == rank
            first, second = svd_factors(old_matrix, rank)
            np.testing.assert_allclose(layer.get_weights()[0] @ layer.get_weights()[1], first @ second, atol=1e-5)
        else:
            assert type(layer) is not FactorizedEmbedding
            for new, old in zip(layer.get_weights(), before[layer.name]):
                np.testing.assert_array_equal(new, old)
    assert compressed.count_params() == model_params_without_embedding(before) + rank * (VOCAB + DIM)
    # The compressed model computes the network on the rank-k embedding, masks included.
    outputs = compressed.predict(token_rows(), verbose=0)
    assert outputs.shape == (24, 3) and np.all(np.isfinite(outputs))


def model_params_without_embedding(weights_by_layer):
    return sum(w.size for name, weights in weights_by_layer.items() if name != "words" for w in weights)


def test_compress_embeddings_of_subclassed_model_and_errors():
    class Classifier(keras.Model):
        def __init__(self):
            super().__init__()
            self.words = keras.layers.Embedding(VOCAB, DIM)
            self.out = keras.layers.Dense(2)

        def call(self, tokens):
            return self.out(keras.ops.mean(self.words(tokens), axis=1))

    model = Classifier()
    model(token_rows())
    dense_before = model.out.get_weights()
    compressed = compress_embeddings(model, reduction=0.75)
    assert isinstance(compressed.words, FactorizedEmbedding)
    assert len(compressed.trainable_variables) == 4  # two factors + dense kernel and bias
    np.testing.assert_array_equal(compressed.out.get_weights()[0], dense_before[0])
    assert compressed(token_rows()).shape == (24, 2)

    with pytest.raises(ValueError, match="no embedding to factorize"):
        compress_embeddings(compressed)
    with pytest.raises(ValueError, match="does not have"):
        compress_embeddings(functional_model(), layers=["nope"])


def test_pretrained_vectors_to_compressed_classifier(tmp_path):
    """datasets: TSV -> TextVectorization ids -> word2vec matrix -> DAN -> factorized DAN."""
    from keras_compress.models import load_classification, pretrained_matrix, read_tsv
    from keras_compress.models import dan

    rows = ["POS:a\tgood fine movie", "NEG:b\tbad dull movie", "POS:c\tfine good fun"]
    for split in ("train", "test"):
        (tmp_path / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert read_tsv(tmp_path / "train.tsv")[0] == ["POS:a", "NEG:b", "POS:c"]
    data = load_classification(tmp_path, sequence_length=5, splits=("train", "test"))
    assert data["classes"] == ["NEG", "POS"]
    x, y = data["splits"]["train"]
    assert x.dtype == np.int32 and x.shape == (3, 5) and list(y) == [1, 0, 1]
    (tmp_path / "vectors.txt").write_text("2 3\ngood 1 0 0\nmovie 0 1 0\n", encoding="utf-8")
    matrix, found = pretrained_matrix(data["vocabulary"], str(tmp_path / "vectors.txt"))
    assert found == 2 and matrix.shape == (len(data["vocabulary"]), 3) and not matrix[0].any()
    np.testing.assert_array_equal(matrix[data["vocabulary"].index("good")], [1, 0, 0])
    model = dan(len(data["vocabulary"]), 2, embeddings=matrix, hidden=(4,), sequence_length=5)
    np.testing.assert_array_equal(model.get_layer("embedding").get_weights()[0], matrix)
    small = compress_embeddings(model, rank=2)
    assert small.get_layer("embedding").rank == 2 and small.predict(x, verbose=0).shape == (3, 2)


def test_compress_embeddings_inside_a_nested_model():
    tokens = keras.Input((LENGTH,), dtype="int32")
    words = keras.layers.Embedding(VOCAB, DIM, name="words")(tokens)
    encoder = keras.Model(tokens, keras.layers.GlobalAveragePooling1D()(words), name="encoder")
    outer_tokens = keras.Input((LENGTH,), dtype="int32")
    model = keras.Model(outer_tokens, keras.layers.Dense(2, name="logits")(encoder(outer_tokens)))
    logits_before = model.get_layer("logits").get_weights()
    compressed = compress_embeddings(model, rank=3)
    assert isinstance(compressed.get_layer("encoder").get_layer("words"), FactorizedEmbedding)
    assert compressed.count_params() == 3 * (VOCAB + DIM) + DIM * 2 + 2
    np.testing.assert_array_equal(compressed.get_layer("logits").get_weights()[0], logits_before[0])
    assert compressed.predict(token_rows(), verbose=0).shape == (24, 2)


def test_keras_internals_the_engine_relies_on_are_still_there():
    from keras_compress import engine

    assert engine.check_keras_internals()
    assert keras.__version__.startswith(engine.TESTED_KERAS), (
        f"keras_compress.engine is tested with Keras {engine.TESTED_KERAS}; got {keras.__version__}: "
        "rerun tests/test_compatibility.py and update TESTED_KERAS")


@pytest.mark.parametrize("arguments, error", [
    ({"reduction": "0.5"}, TypeError), ({"reduction": True}, TypeError), ({"reduction": float("nan")}, ValueError),
    ({"reduction": 1.0}, ValueError), ({"rank": 0}, ValueError), ({"singular_values": "middle"}, ValueError),
    ({"layers": 3}, TypeError),
])
def test_bad_arguments_fail_before_any_work(arguments, error):
    from keras_compress.training import EmbeddingCompression

    model = functional_model()
    with pytest.raises(error):
        compress_embeddings(model, **arguments)
    assert type(model.get_layer("words")) is keras.layers.Embedding
    with pytest.raises(error):
        EmbeddingCompression(at_epoch=1, **arguments)
    with pytest.raises(TypeError, match="Keras model"):
        compress_embeddings("x")


@keras.saving.register_keras_serializable(package="repro")
class TokenEmbedding(keras.layers.Layer):
    def __init__(self, vocab, dim, **kw):
        super().__init__(**kw)
        self.vocab, self.dim = vocab, dim
        self.emb = keras.layers.Embedding(vocab, dim)

    def call(self, x):
        return self.emb(x)

    def get_config(self):
        return {**super().get_config(), "vocab": self.vocab, "dim": self.dim}


def test_issue_9_reproducer_is_no_longer_a_silent_no_op():
    inp = keras.Input((8,), dtype="int32")
    m = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(TokenEmbedding(1000, 32)(inp))))
    before = m.count_params()
    with pytest.warns(UserWarning, match="merged V x d product"):
        c = compress_embeddings(m, reduction=0.9)
    assert c is m and c.count_params() < before
    assert c.count_params() == rank_for_reduction(1000, 32, 0.9) * 1032 + 32 * 2 + 2
