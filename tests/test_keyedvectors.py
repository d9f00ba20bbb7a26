"""QuantizedKeyedVectors: packing round trips and search equal to gensim on the unpacked vectors."""
import numpy as np
import pytest
from gensim.models import KeyedVectors
from gensim.test.utils import common_texts

from gensim_bits import QuantizedKeyedVectors, Word2Bits, levels, quantize
from gensim_bits import packing
from gensim_bits.vocabulary import KeyToIndex, Vocabulary

# gensim's own most_similar_cosmul, the reference here, calls its deprecated init_sims.
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated `init_sims`:DeprecationWarning")

WORDS = 150
BITS_AND_DIMENSIONS = [(1, 13), (1, 67), (2, 13), (2, 67), (8, 13), (8, 67)]


def make_vectors(bits, dimension, words=WORDS, seed=0):
    rng = np.random.default_rng(seed)
    values = quantize(rng.standard_normal((words, dimension)) * 0.6, bits)
    keyed_vectors = KeyedVectors(dimension)
    keyed_vectors.add_vectors([f"w{index}" for index in range(words)], values)
    return keyed_vectors, QuantizedKeyedVectors.from_keyed_vectors(keyed_vectors, bits=bits)


def assert_same_neighbours(ours, theirs, exact_order=False):
    """Same similarity values in the same order; words may differ only inside a tie."""
    assert len(ours) == len(theirs)
    ours_values = np.array([value for _, value in ours])
    theirs_values = np.array([value for _, value in theirs])
    np.testing.assert_allclose(ours_values, theirs_values, atol=1e-5)
    assert np.all(np.diff(ours_values) <= 1e-12)
    if not ours:
        return
    if exact_order:
        assert [word for word, _ in ours] == [word for word, _ in theirs]
    # Words strictly above the last (possibly tied) value are the same set.
    cutoff = ours_values[-1] + 1e-5
    assert {w for w, v in ours if v > cutoff} == {w for w, v in theirs if v > cutoff}


@pytest.mark.parametrize("bits", packing.PACKED_BITS)
@pytest.mark.parametrize("dimension", [1, 13, 64, 67])
def test_pack_unpack_round_trip(bits, dimension):
    rng = np.random.default_rng(bits * 100 + dimension)
    codes = rng.integers(0, 2 ** bits, size=(40, dimension), dtype=np.uint8)
    packed = packing.pack_codes(codes, bits)
    assert packed.shape == (40, bits * ((dimension + 7) // 8))
    np.testing.assert_array_equal(packing.unpack_codes(packed, bits, dimension), codes)
    np.testing.assert_array_equal(packing.unpack_values(packed, bits, dimension), levels(bits)[codes])


@pytest.mark.parametrize("bits,dimension", BITS_AND_DIMENSIONS)
def test_storage_and_conversion_round_trip(bits, dimension):
    keyed_vectors, packed = make_vectors(bits, dimension)
    assert packed.nbytes == WORDS * bits * ((dimension + 7) // 8)
    back = packed.to_keyed_vectors()
    assert back.index_to_key == keyed_vectors.index_to_key
    np.testing.assert_array_equal(back.vectors, keyed_vectors.vectors)
    np.testing.assert_array_equal(back.expandos["count"], packed.counts)
    np.testing.assert_array_equal(packed["w3"], keyed_vectors["w3"])
    np.testing.assert_allclose(packed.get_vector("w3", norm=True), keyed_vectors.get_vector("w3", norm=True),
                               rtol=1e-6)


@pytest.mark.parametrize("bits", packing.PACKED_BITS)
def test_dot_products_equal_float(bits):
    rng = np.random.default_rng(bits)
    codes = rng.integers(0, 2 ** bits, size=(30, 67), dtype=np.uint8)
    packed = packing.pack_codes(codes, bits)
    values = levels(bits)[codes].astype(np.float64)
    np.testing.assert_allclose(packing.dots_with_packed(packed, packed[:4], bits, 67), values @ values[:4].T,
                               rtol=1e-9, atol=1e-9)
    query = rng.standard_normal(67)
    np.testing.assert_allclose(packing.dots_with_vector(packed, query, bits, 67), values @ query, rtol=1e-9)
    np.testing.assert_allclose(packing.squared_norms(packed, bits, 67), (values ** 2).sum(axis=1), rtol=1e-9)


def test_one_bit_cosine_is_hamming():
    _, packed = make_vectors(1, 67)
    codes = packing.unpack_codes(packed.codes, 1, 67)
    hamming = (codes != codes[5]).sum(axis=1)
    np.testing.assert_allclose(packed.cosines([5])[:, 0], 1 - 2 * hamming / 67, atol=1e-12)


@pytest.mark.parametrize("bits,dimension", BITS_AND_DIMENSIONS)
@pytest.mark.parametrize("query", [
    dict(positive=["w1"]),
    dict(positive=["w1", "w2"], negative=["w3"]),
    dict(positive=[("w1", 2.0), "w7"], negative=[("w5", -0.5)], topn=7),
    dict(positive="w9", restrict_vocab=60),
    dict(positive=["w9"], clip_start=20, clip_end=90),
    dict(positive=[4, "w8"], topn=3),
])
def test_most_similar_equals_gensim(bits, dimension, query):
    keyed_vectors, packed = make_vectors(bits, dimension)
    assert_same_neighbours(packed.most_similar(**query), keyed_vectors.most_similar(**query),
                           exact_order=bits == 8)


@pytest.mark.parametrize("bits,dimension", BITS_AND_DIMENSIONS)
def test_most_similar_with_vectors_and_all_similarities(bits, dimension):
    keyed_vectors, packed = make_vectors(bits, dimension)
    vector = np.random.default_rng(1).standard_normal(dimension).astype(np.float32)
    for query in (dict(positive=[vector]), dict(positive=["w2", vector], negative=["w4"])):
        assert_same_neighbours(packed.most_similar(**query), keyed_vectors.most_similar(**query))
    assert_same_neighbours(packed.similar_by_vector(vector, topn=5), keyed_vectors.similar_by_vector(vector, topn=5))
    everything = packed.most_similar(positive=["w1", vector], negative=["w2"], topn=None)
    assert everything.shape == (WORDS,)
    np.testing.assert_allclose(everything, keyed_vectors.most_similar(positive=["w1", vector], negative=["w2"],
                                                                      topn=None), atol=1e-5)
    assert packed.most_similar("w1", topn=0) == []


@pytest.mark.parametrize("bits,dimension", BITS_AND_DIMENSIONS)
def test_other_queries_equal_gensim(bits, dimension):
    keyed_vectors, packed = make_vectors(bits, dimension)
    query = dict(positive=["w1", "w2"], negative=["w3"], topn=8)
    assert_same_neighbours(packed.most_similar_cosmul(**query), keyed_vectors.most_similar_cosmul(**query))
    np.testing.assert_allclose(packed.most_similar_cosmul(["w1"], topn=None),
                               keyed_vectors.most_similar_cosmul(["w1"], topn=None), atol=1e-5)
    for first, second in [("w1", "w2"), ("w0", "w149"), ("w5", "w5")]:
        assert packed.similarity(first, second) == pytest.approx(float(keyed_vectors.similarity(first, second)),
                                                                  abs=1e-6)
        assert packed.distance(first, second) == pytest.approx(float(keyed_vectors.distance(first, second)),
                                                                abs=1e-6)
    np.testing.assert_allclose(packed.distances("w3"), keyed_vectors.distances("w3"), atol=1e-5)
    np.testing.assert_allclose(packed.distances("w3", ["w1", "w9"]), keyed_vectors.distances("w3", ["w1", "w9"]),
                               atol=1e-5)
    words = ["w1", "w2", "w3", "w4", "w5"]
    centrality = packed.rank_by_centrality(words)
    np.testing.assert_allclose([value for value, _ in centrality],
                               [value for value, _ in keyed_vectors.rank_by_centrality(words)], atol=1e-5)
    assert packed.doesnt_match(words) == keyed_vectors.doesnt_match(words)


def test_rank_matches_gensim_without_ties():
    keyed_vectors, packed = make_vectors(8, 67)
    for first, second in [("w1", "w2"), ("w10", "w140"), ("w0", "w1")]:
        assert packed.rank(first, second) == keyed_vectors.rank(first, second)
        assert packed.closer_than(first, second) == keyed_vectors.closer_than(first, second)


def test_ties_go_to_the_lower_index():
    values = quantize(np.random.default_rng(3).standard_normal((6, 16)), 1)
    values[4] = values[2]  # w2 and w4 tie for every query
    keyed_vectors = KeyedVectors(16)
    keyed_vectors.add_vectors([f"w{index}" for index in range(6)], values)
    packed = QuantizedKeyedVectors.from_keyed_vectors(keyed_vectors, bits=1)
    words = [word for word, _ in packed.most_similar("w2", topn=5)]
    assert words[0] == "w4"  # identical vector, similarity 1
    neighbours = [word for word, _ in packed.most_similar("w0", topn=5)]
    assert neighbours.index("w2") < neighbours.index("w4")


def test_missing_words_raise_key_error_like_gensim():
    keyed_vectors, packed = make_vectors(1, 13)
    for vectors in (keyed_vectors, packed):
        with pytest.raises(KeyError):
            vectors.most_similar("nope")
        with pytest.raises(KeyError):
            vectors.similarity("w1", "nope")
        with pytest.raises(KeyError):
            vectors["nope"]
    with pytest.raises(ValueError, match="no input"):
        packed.most_similar(positive=[])
    with pytest.raises(ValueError, match="empty list"):
        packed.doesnt_match(["nope", "nada"])


def test_values_off_the_levels_are_refused_unless_quantized():
    rng = np.random.default_rng(0)
    keyed_vectors = KeyedVectors(10)
    keyed_vectors.add_vectors(["a", "b", "c"], rng.standard_normal((3, 10)).astype(np.float32))
    with pytest.raises(ValueError, match="quantize=True"):
        QuantizedKeyedVectors.from_keyed_vectors(keyed_vectors, bits=2)
    with pytest.raises(ValueError, match="not on the levels"):
        QuantizedKeyedVectors.from_keyed_vectors(keyed_vectors)
    with pytest.raises(ValueError, match="bits must be one of"):
        QuantizedKeyedVectors.from_keyed_vectors(keyed_vectors, bits=3, quantize=True)
    packed = QuantizedKeyedVectors.from_keyed_vectors(keyed_vectors, bits=2, quantize=True)
    np.testing.assert_array_equal(packed.to_keyed_vectors().vectors, quantize(keyed_vectors.vectors, 2))


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_bits_are_inferred_from_the_values(bits):
    keyed_vectors, _ = make_vectors(bits, 13)
    assert QuantizedKeyedVectors.from_keyed_vectors(keyed_vectors).bits == bits


@pytest.mark.parametrize("binary", [False, True])
def test_word2vec_format_round_trip(tmp_path, binary):
    keyed_vectors, packed = make_vectors(2, 67)
    path = tmp_path / ("vectors.bin" if binary else "vectors.txt")
    packed.save_word2vec_format(path, binary=binary)
    np.testing.assert_array_equal(KeyedVectors.load_word2vec_format(path, binary=binary).vectors,
                                  keyed_vectors.vectors)
    again = QuantizedKeyedVectors.load_word2vec_format(path, binary=binary)
    assert again.bits == 2 and again.index_to_key == packed.index_to_key
    np.testing.assert_array_equal(again.codes, packed.codes)


@pytest.mark.parametrize("bits", [1, 2])
def test_from_word2bits_model(bits):
    model = Word2Bits(common_texts, vector_size=13, min_count=1, epochs=2, workers=1, bits=bits, seed=3)
    packed = QuantizedKeyedVectors.from_model(model)
    assert packed.bits == bits and packed.index_to_key == model.wv.index_to_key
    np.testing.assert_array_equal(packed.to_keyed_vectors().vectors, model.wv.vectors)
    assert_same_neighbours(packed.most_similar("computer", topn=4), model.wv.most_similar("computer", topn=4))
    float_model = Word2Bits(common_texts, vector_size=13, min_count=1, epochs=1, workers=1, bits=32)
    with pytest.raises(ValueError, match="bits=32"):
        QuantizedKeyedVectors.from_model(float_model)


def test_constructor_checks_its_arguments():
    codes = np.zeros((2, 2), dtype=np.uint8)
    with pytest.raises(ValueError, match="shape"):
        QuantizedKeyedVectors(codes, 1, 30, ["a", "b"])
    with pytest.raises(ValueError, match="keys"):
        QuantizedKeyedVectors(codes, 1, 13, ["a"])
    with pytest.raises(ValueError, match="duplicate"):
        QuantizedKeyedVectors(codes, 1, 13, ["a", "a"])


def test_compact_vocabulary_behaves_like_gensim_list_and_dict():
    words = ["the", "ünïcode", "", "a b", "x" * 300] + [f"w{index}" for index in range(1000)]
    vocabulary = Vocabulary.from_keys(words)
    assert len(vocabulary) == len(words) and vocabulary == words and list(vocabulary) == words
    assert vocabulary[1] == "ünïcode" and vocabulary[-1] == "w999" and vocabulary[2:4] == ["", "a b"]
    assert all(vocabulary.find(word) == row for row, word in enumerate(words))
    assert vocabulary.find("missing") == -1 and vocabulary.find(3) == -1 and vocabulary.find("\ud800") == -1
    key_to_index = KeyToIndex(vocabulary)
    assert key_to_index["w10"] == 15 and key_to_index.get("nope") is None and "the" in key_to_index
    with pytest.raises(KeyError):
        key_to_index["nope"]
    with pytest.raises(IndexError):
        vocabulary[len(words)]
    with pytest.raises(TypeError, match="str"):
        Vocabulary.from_keys(["a", 5])
    assert vocabulary.nbytes < 40 * len(words)
