"""Hostile calls of ``search`` and ``most_similar`` (issue 24): bounded threads and memory,
arguments refused with one clear error instead of a silent other meaning, and the compiled
single-word and words-only paths (issue 26) equal to the general one."""
import pickle
import threading
import tracemalloc

import numpy as np
import pytest

from gensim_bits import QuantizedKeyedVectors, packing, search


def make(bits=1, dimension=64, words=300, seed=0, keys=None):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 2 ** bits, size=(words, dimension), dtype=np.uint8)
    codes[7] = codes[3]  # an exact tie
    return QuantizedKeyedVectors(packing.pack_codes(codes, bits), bits, dimension,
                                 keys or [f"w{i}" for i in range(words)])


def search_threads():
    return [thread for thread in threading.enumerate() if thread.name.startswith("gensim_bits_search")]


def test_threads_stay_bounded_by_the_largest_workers_asked_for():
    vectors = make(words=200)
    queries = [f"w{i}" for i in range(40)]
    for workers in range(1, 33):
        vectors.search(queries, topn=3, workers=workers)
    # One pool, grown to the largest split asked for (32 here); the earlier leak kept a pool a value: 528 threads.
    assert len(search_threads()) <= 32
    for workers in range(1, 33):
        vectors.search(queries, topn=3, workers=workers)
    assert len(search_threads()) <= 32


@pytest.mark.parametrize("workers", [-1, search.MAX_WORKERS + 1, 2 ** 30, 2.5, "2", True])
def test_workers_out_of_range_or_not_an_int_are_refused(workers):
    vectors = make(words=20)
    with pytest.raises(ValueError, match="workers"):
        vectors.search(["w1"], workers=workers)


def test_memory_follows_the_vocabulary_not_topn():
    vectors = make(words=500)
    tracemalloc.start()
    try:
        scores, rows = vectors.search(["w1", "w2"], topn=10 ** 12, workers=1)
        neighbours = vectors.most_similar("w1", topn=10 ** 12)
        analogy = vectors.most_similar(positive=["w1", "w2"], negative=["w3"], topn=10 ** 12)
        cosmul = vectors.most_similar_cosmul(positive=["w1"], topn=10 ** 12)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert scores.shape == rows.shape == (2, 500) and rows[0, -1] == -1  # w1 excludes itself
    assert len(neighbours) == 499 and len(analogy) == 497 and len(cosmul) == 499
    assert peak < 2 << 20  # 2 MiB for 500 words; topn-sized buffers would be terabytes


def test_float_query_batches_run_in_bounded_blocks(monkeypatch):
    vectors = make(dimension=64, words=200)
    queries = np.random.default_rng(1).standard_normal((300, 64))
    expected = vectors.search(queries, topn=5, workers=1)
    table_bytes = 8 * 256 * 8  # one 1-bit d=64 query's lookup tables
    monkeypatch.setattr(search, "TABLE_BLOCK_BYTES", 40 * table_bytes)  # 8 blocks
    tracemalloc.start()
    try:
        got = vectors.search(queries, topn=5, workers=2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    # 300 queries' tables at once were 4.9 MB (twice with the stacked copy); a block is 40 of them.
    assert peak < 3 * 40 * table_bytes + (1 << 20)
    # Vectors one by one (a list, dicts, most_similar) score exactly as the batched tables do.
    for one_by_one in (list(queries[:50]), [{"positive": [query]} for query in queries[:50]]):
        np.testing.assert_array_equal(vectors.search(one_by_one, topn=5)[0], expected[0][:50])
        np.testing.assert_array_equal(vectors.search(one_by_one, topn=5)[1], expected[1][:50])
    scores, rows = vectors._run_search(search._vector_query_terms(vectors, queries[7:8]), 5, 0, len(vectors))
    assert vectors.most_similar(positive=[queries[7]], topn=5) == vectors._neighbours(scores[0], rows[0])


@pytest.mark.parametrize("restrict_vocab", [-5, True, False, 2.5, "10"])
def test_restrict_vocab_must_be_a_non_negative_int(restrict_vocab):
    vectors = make(words=100)
    with pytest.raises(ValueError, match="restrict_vocab"):
        vectors.search(["w1"], restrict_vocab=restrict_vocab)
    with pytest.raises(ValueError, match="restrict_vocab"):
        vectors.most_similar("w1", restrict_vocab=restrict_vocab)


@pytest.mark.parametrize("topn", [2.7, "5", True, None, np.float64(3.0)])
def test_topn_must_be_an_int(topn):
    vectors = make(words=30)
    with pytest.raises((TypeError, ValueError), match="topn"):
        vectors.search(["w1"], topn=topn)
    if topn is not None:  # most_similar(topn=None) returns every score, as gensim's
        with pytest.raises(TypeError, match="topn"):
            vectors.most_similar("w1", topn=topn)
    assert vectors.search(["w1"], topn=np.int64(3))[1].shape == (1, 3)


def test_complex_and_non_numeric_query_vectors_are_refused():
    vectors = make(words=30)
    vector = np.ones(64) + 1j
    for call in (lambda: vectors.search(vector[None]), lambda: vectors.search([vector]),
                 lambda: vectors.most_similar(positive=[vector]), lambda: vectors.most_similar_cosmul(positive=[vector]),
                 lambda: vectors.search(np.array([["a"] * 64], dtype=object))):
        with pytest.raises(TypeError, match="dtype"):
            call()


def test_a_list_of_ints_is_rows_and_an_int_array_is_refused():
    vectors = make(words=30)
    scores, rows = vectors.search([1, 2, 3], topn=4)
    np.testing.assert_array_equal(rows, vectors.search(["w1", "w2", "w3"], topn=4)[1])
    for queries in (np.array([1, 2, 3]), np.arange(8, dtype=np.uint8), np.ones((2, 64), dtype=np.int64),
                    np.ones(8, dtype=bool)):
        with pytest.raises(TypeError, match="ambiguous"):
            vectors.search(queries)
    # A float array is vectors, a 2-d uint8 array packed codes: one meaning each.
    np.testing.assert_array_equal(vectors.search(vectors.codes[[4]], topn=2)[1],
                                  vectors.search(vectors.vectors_for([4]), topn=2)[1])


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e-300, 1e300])
def test_scaled_query_vectors_keep_their_direction(scale):
    vectors = make(bits=2, dimension=32, words=80)
    query = np.random.default_rng(2).standard_normal(32)
    expected_scores, expected_rows = vectors.search(query, topn=6)
    scores, rows = vectors.search(query * scale, topn=6)
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-6)
    assert [word for word, _ in vectors.most_similar(positive=[query * scale], topn=6)] == \
        [vectors.index_to_key[row] for row in expected_rows[0]]


def test_a_sum_that_overflows_float64_is_refused():
    vectors = make(words=30)
    huge = np.full(64, 1e308)
    with pytest.raises(ValueError, match="overflow"):
        vectors.most_similar(positive=[huge, huge])


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_compiled_paths_equal_the_general_path(bits, monkeypatch):
    words = [f"w{i}" for i in range(199)] + ["東京", "café", "naïve"]
    vectors = make(bits=bits, dimension=50, words=202, keys=words)
    for word in ("w3", "東京", "café", "naïve"):
        fast = vectors.most_similar(word, topn=12)
        general_scores, general_rows = vectors._run_search(search.word_terms(vectors, [vectors.get_index(word)]),
                                                           12, 0, len(vectors))
        assert fast == vectors._neighbours(general_scores[0], general_rows[0])
        assert vectors.most_similar([word], topn=12) == fast
    analogy = dict(positive=["w9", "東京"], negative=["café"])
    fast = vectors.most_similar(**analogy, topn=12)
    terms = vectors._new_terms()
    search.add_mean_query(vectors, terms, analogy["positive"], analogy["negative"])
    scores, rows = vectors._run_search(terms, 12, 0, len(vectors))
    assert fast == vectors._neighbours(scores[0], rows[0])
    everything = vectors.most_similar(**analogy, topn=len(vectors))
    assert vectors.most_similar(**analogy, topn=12, restrict_vocab=150) == \
        [pair for pair in everything if vectors.get_index(pair[0]) < 150][:12]
    assert vectors.most_similar(positive=["w1"], negative=["w1"], topn=5) == \
        [(f"w{i}", 0.0) for i in (0, 2, 3, 4, 5)]  # a cancelled query scores 0 everywhere
    with pytest.raises(KeyError, match="nope"):
        vectors.most_similar("nope")
    with pytest.raises(KeyError, match="nope"):
        vectors.most_similar(positive=["w1", "nope"])
    assert vectors.most_similar(5, topn=3) == vectors.most_similar("w5", topn=3)  # an int key is a row


def test_vocabularies_of_other_keys_and_pickling():
    vectors = make(words=40, keys=[f"w{i}" for i in range(39)] + [("tuple", "key")])
    assert [key for key, _ in vectors.most_similar("w1", topn=40)] == \
        [vectors.index_to_key[row] for row in vectors.search(["w1"], topn=40)[1][0] if row >= 0]
    vectors.most_similar("w2")
    copy = pickle.loads(pickle.dumps(make(words=40)))
    assert copy.most_similar("w1") == make(words=40).most_similar("w1")


def test_workers_are_checked_before_anything_and_cosmul_overflow_is_refused():
    vectors = make(words=30)
    for call in (vectors.most_similar, vectors.most_similar_cosmul):
        with pytest.raises(ValueError, match="workers"):
            call("w1", topn=0, workers=2 ** 30)
        assert call("w1", topn=0) == []  # gensim returns [] for topn < 1
    huge = np.full(64, 1e300)
    for topn in (3, None):
        with pytest.raises(ValueError, match="overflow"):
            vectors.most_similar_cosmul(positive=[huge, huge], topn=topn)
