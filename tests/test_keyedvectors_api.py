"""QuantizedKeyedVectors answers gensim's read-only KeyedVectors methods exactly as gensim does
on the unpacked float vectors (issue 15): same signatures, same return values."""
import os

import numpy as np
import pytest
from gensim.models import KeyedVectors
from gensim.test.utils import datapath

from gensim_bits import QuantizedKeyedVectors, packing

# wmdistance needs POT, which would import every array library installed as a backend
# (TensorFlow alone takes tens of seconds); none is needed for its NumPy solver.
for _backend in ("PYTORCH", "JAX", "CUPY", "TENSORFLOW"):
    os.environ.setdefault(f"POT_BACKEND_DISABLE_{_backend}", "1")


@pytest.fixture(scope="module", params=[1, 2])
def pair(request):
    """(packed, gensim on the same unpacked values) for gensim's 2747-word test vectors."""
    float_vectors = KeyedVectors.load_word2vec_format(datapath("euclidean_vectors.bin"), binary=True)
    float_vectors.vectors /= np.abs(float_vectors.vectors).max()
    packed = QuantizedKeyedVectors.from_keyed_vectors(float_vectors, bits=request.param, quantize=True)
    return packed, packed.to_keyed_vectors()


def test_vectors_and_normed_vectors_unpack_every_row(pair):
    packed, reference = pair
    np.testing.assert_array_equal(packed.vectors, reference.vectors)
    np.testing.assert_allclose(packed.get_normed_vectors(), reference.get_normed_vectors(), rtol=1e-6)
    packed.fill_norms(force=True)  # nothing to fill, still callable as gensim's


def test_mean_and_set_similarities(pair):
    packed, reference = pair
    keys = ["war", "peace", "an out-of-vocabulary word", reference.vectors[3]]
    for options in ({}, dict(weights=[1, 2, 3, 1]), dict(pre_normalize=False), dict(post_normalize=True)):
        np.testing.assert_allclose(packed.get_mean_vector(keys, **options), reference.get_mean_vector(keys, **options),
                                   rtol=1e-5, atol=1e-6)
    with pytest.raises(KeyError):
        packed.get_mean_vector(keys, ignore_missing=False)
    assert packed.n_similarity(["war", "peace"], ["conflict"]) == pytest.approx(
        reference.n_similarity(["war", "peace"], ["conflict"]), abs=1e-6)
    assert packed.most_similar_to_given("war", ["peace", "conflict", "good"]) == \
        reference.most_similar_to_given("war", ["peace", "conflict", "good"])
    assert packed.relative_cosine_similarity("good", "nice") == pytest.approx(
        reference.relative_cosine_similarity("good", "nice"), abs=1e-5)
    np.testing.assert_allclose(packed.cosine_similarities(packed["war"], packed.vectors[:5]),
                               KeyedVectors.cosine_similarities(reference["war"], reference.vectors[:5]), rtol=1e-6)


class TieOrderedKeyedVectors(KeyedVectors):
    """gensim's KeyedVectors, its evaluators unchanged, scoring with one defined order for ties.

    gensim's float32 BLAS search orders exactly tied cosines (common at 1-2 bits) by rounding,
    which differs between CPUs and thread counts. Here every value is computed from the
    integer codes (levels / step) in float64, values within 1e-12 count as tied, and tied
    words are listed by row, lower first: the order QuantizedKeyedVectors documents.
    """

    def set_integer_codes(self, step):
        self.integers = np.rint(self.vectors / step).astype(np.int64)
        np.testing.assert_allclose(self.integers * step, self.vectors, rtol=1e-6)  # the vectors are levels
        self.squared = (self.integers ** 2).sum(axis=1)

    def similarity(self, w1, w2):
        first, second = self.get_index(w1), self.get_index(w2)
        return int(self.integers[first] @ self.integers[second]) / np.sqrt(self.squared[first] * self.squared[second])

    def most_similar(self, positive, negative, topn, restrict_vocab):
        rows = self.integers[:restrict_vocab]
        terms = [(self.get_index(key), 1) for key in positive] + [(self.get_index(key), -1) for key in negative]
        scores = sum(sign * (rows @ self.integers[row]) / np.sqrt(self.squared[row]) for row, sign in terms)
        scores = scores / np.sqrt(self.squared[:restrict_vocab])
        scores[[row for row, _ in terms]] = -np.inf
        order = [row for row in np.argsort(-scores, kind="stable") if np.isfinite(scores[row])]
        groups = [[order[0]]]
        for previous, row in zip(order, order[1:]):
            if scores[previous] - scores[row] <= 1e-12:
                groups[-1].append(row)
            else:
                groups.append([row])
        ranked = [row for group in groups for row in sorted(group)][:topn]
        return [(self.index_to_key[row], float(scores[row])) for row in ranked]


def tie_ordered(packed, reference):
    vectors = TieOrderedKeyedVectors(reference.vector_size)
    vectors.add_vectors(reference.index_to_key, reference.vectors)
    vectors.set_integer_codes(packing.level_unit(packed.bits))
    return vectors


def test_evaluations_match_gensim(pair):
    packed, reference = pair
    exact = tie_ordered(packed, reference)
    pearson, spearman, oov = packed.evaluate_word_pairs(datapath("wordsim353.tsv"))
    expected = exact.evaluate_word_pairs(datapath("wordsim353.tsv"))  # gensim's code, exact cosines
    assert (pearson.statistic, oov) == pytest.approx((expected[0].statistic, expected[2]), abs=1e-12)
    assert spearman.statistic == expected[1].statistic  # same values, same ties, same ranks
    # gensim's own float32 cosines rank a few exactly tied pairs differently.
    assert spearman.statistic == pytest.approx(reference.evaluate_word_pairs(datapath("wordsim353.tsv"))[1].statistic,
                                               abs=2e-3)
    score, sections = packed.evaluate_word_analogies(datapath("questions-words.txt"))
    expected_score, expected_sections = exact.evaluate_word_analogies(datapath("questions-words.txt"))
    assert score == expected_score
    assert sections == expected_sections  # every question, correct or not, in gensim's order


def test_wmdistance_matches_gensim(pair):
    pytest.importorskip("ot")
    packed, reference = pair
    first, second = ["war", "peace", "good"], ["conflict", "nice"]
    assert packed.wmdistance(first, second) == pytest.approx(reference.wmdistance(first, second), rel=1e-6)


def test_keys_of_any_hashable_type_as_gensim_accepts():
    values = np.sign(np.random.default_rng(0).standard_normal((4, 8))).astype(np.float32) / 3
    reference = KeyedVectors(8)
    reference.add_vectors([10, 20, 5, 30], values)
    packed = QuantizedKeyedVectors.from_keyed_vectors(reference, bits=1)
    assert list(packed.index_to_key) == [10, 20, 5, 30] and packed.get_index(5) == 2
    assert packed.similarity(10, 5) == pytest.approx(float(reference.similarity(10, 5)), abs=1e-6)
    assert [key for key, _ in packed.most_similar(10, topn=3)] == [key for key, _ in reference.most_similar(10, topn=3)]
    with pytest.raises(TypeError, match="stores str words"):
        packed.save("never-written.gbits")
