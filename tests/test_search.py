"""Exact top-k search on packed codes (gensim_bits.search and search_inner): the kernel's
top-k equals a NumPy float reference for every bit width and code width, batches equal
single queries, and threads neither change results nor race."""
import threading

import numpy as np
import pytest

from gensim_bits import QuantizedKeyedVectors, packing, search
from gensim_bits.search_inner import instruction_set


def make(bits, dimension, words=60, seed=0, duplicates=True):
    """Random packed vectors; with ``duplicates`` some rows repeat, so exact ties occur."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 2 ** bits, size=(words, dimension), dtype=np.uint8)
    if duplicates:
        codes[words // 2:words // 2 + 6] = codes[3]
    return QuantizedKeyedVectors(packing.pack_codes(codes, bits), bits, dimension, [f"w{i}" for i in range(words)])


def reference_top(vectors, query, topn, excluded=()):
    """NumPy float64 cosines of every row with ``query`` and its top-n (ties by lower row)."""
    floats = vectors.vectors_for(np.arange(len(vectors))).astype(np.float64)
    scores = floats @ query / (np.linalg.norm(floats, axis=1) * np.linalg.norm(query))
    keyed = np.round(scores, 9)  # equal cosines computed in different orders are still equal
    keyed[list(excluded)] = -np.inf
    order = np.lexsort((np.arange(len(scores)), -keyed))[:topn]
    return scores[order], order


def assert_matches_reference(scores, rows, ref_scores, ref_rows, exact_rows):
    np.testing.assert_allclose(scores, ref_scores, atol=1e-6)  # float32 scores and norms
    if exact_rows:
        np.testing.assert_array_equal(rows, ref_rows)
    else:  # rows may swap only inside a tie (equal cosines reached through float32 norms)
        cutoff = ref_scores[-1] + 1e-6
        assert set(rows[scores > cutoff].tolist()) == set(ref_rows[ref_scores > cutoff].tolist())


@pytest.mark.parametrize("bits", packing.PACKED_BITS)
def test_top_k_equals_float_reference_for_every_code_width(bits):
    """Plane widths 1..130 bytes at 1 bit (every tail length, every specialised width), fewer at more bits."""
    widths = range(1, 131) if bits == 1 else [1, 3, 7, 8, 13, 25, 32, 50, 64, 65]
    for width in widths:
        dimension = 8 * width - (width % 8)  # varies the padding bits too
        vectors = make(bits, dimension, words=40, seed=width)
        words = [0, 3, 17, 39]
        scores, rows = vectors.search(words, topn=7, workers=1)
        for query, score, row in zip(words, scores, rows):
            vector = vectors.vectors_for([query])[0].astype(np.float64)
            ref_scores, ref_rows = reference_top(vectors, vector, 7, excluded=[query])
            assert_matches_reference(score, row, ref_scores, ref_rows, exact_rows=bits == 1)


@pytest.mark.parametrize("bits,dimension", [(1, 50), (1, 256), (1, 800), (2, 13), (2, 400), (4, 30), (8, 9)])
def test_batch_equals_single_and_workers_change_nothing(bits, dimension, monkeypatch):
    monkeypatch.setattr(search, "MIN_ROWS_PER_THREAD", 8)  # let a single query split its rows
    vectors = make(bits, dimension, words=97)
    queries = ["w1", "w3", "w40", "w96", "w50"]
    single = [vectors.most_similar(word, topn=9) for word in queries]
    for workers in (1, 2, 3):
        scores, rows = vectors.search(queries, topn=9, workers=workers)
        for (expected, score, row) in zip(single, scores, rows):
            assert [(vectors.index_to_key[r], s) for r, s in zip(row, score.astype(np.float64))] == \
                [(word, np.float32(value).item()) for word, value in expected]
        for position, word in enumerate(queries):
            alone = vectors.most_similar(word, topn=9, workers=workers)
            assert alone == single[position]
    # Packed codes and vectors as queries: the row itself is not excluded and comes first.
    codes = vectors.codes[[1, 3]]
    code_scores, code_rows = vectors.search(codes, topn=4, workers=2)
    vector_scores, vector_rows = vectors.search(vectors.vectors_for([1, 3]), topn=4, workers=2)
    np.testing.assert_allclose(code_scores, vector_scores, atol=1e-6)
    assert code_rows[0, 0] == 1 and code_scores[0, 0] == pytest.approx(1.0)
    for query, score, row in zip(vectors.vectors_for([1, 3]).astype(np.float64), code_scores, code_rows):
        ref_scores, ref_rows = reference_top(vectors, query, 4)
        assert_matches_reference(score, row, ref_scores, ref_rows, exact_rows=bits == 1)


def test_ties_are_ordered_by_row_and_duplicates_all_found():
    vectors = make(1, 64, words=80)  # rows 3 and 40..45 are the same code
    scores, rows = vectors.search(["w3"], topn=6, workers=1)
    assert rows[0].tolist() == [40, 41, 42, 43, 44, 45]
    assert np.all(scores == 1.0)
    scores, rows = vectors.search(vectors.codes[[3]], topn=8, workers=2)
    assert rows[0, :7].tolist() == [3, 40, 41, 42, 43, 44, 45]


@pytest.mark.parametrize("bits", [1, 2])
def test_analogies_and_cosmul_through_the_kernel_equal_numpy(bits):
    vectors = make(bits, 37, words=70, duplicates=False)
    floats = vectors.vectors_for(np.arange(len(vectors))).astype(np.float64)
    unit = floats / np.linalg.norm(floats, axis=1, keepdims=True)
    a, b, c = 5, 9, 11
    mean = unit[b] + unit[c] - unit[a]
    expected = unit @ mean / np.linalg.norm(mean)
    expected[[a, b, c]] = -np.inf
    order = np.lexsort((np.arange(len(expected)), -np.round(expected, 9)))[:5]
    query = {"positive": ["w9", "w11"], "negative": ["w5"]}
    result = vectors.most_similar(**query, topn=5)
    np.testing.assert_allclose([value for _, value in result], expected[order], atol=1e-6)
    scores, rows = vectors.search([query, "w2", query], topn=5, workers=2)
    assert [vectors.index_to_key[row] for row in rows[0]] == [word for word, _ in result]
    np.testing.assert_array_equal(scores[0], scores[2])
    shifted = (1 + unit @ unit.T) / 2
    cosmul = shifted[b] * shifted[c] / (shifted[a] + 1e-6)
    all_scores = vectors.most_similar_cosmul(positive=["w9", "w11"], negative=["w5"], topn=None)
    np.testing.assert_allclose(all_scores, cosmul, rtol=1e-5)
    cosmul[[a, b, c]] = -np.inf
    top = vectors.most_similar_cosmul(positive=["w9", "w11"], negative=["w5"], topn=4)
    np.testing.assert_allclose([value for _, value in top], np.sort(cosmul)[::-1][:4], rtol=1e-6)


def test_concurrent_calls_from_many_threads_agree_with_sequential():
    vectors = make(2, 200, words=500)
    queries = [f"w{index}" for index in range(0, 500, 7)]
    expected = vectors.search(queries, topn=5, workers=1)
    failures = []

    def worker(workers):
        for _ in range(5):
            got = vectors.search(queries, topn=5, workers=workers)
            if not (np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])):
                failures.append(workers)
            single = vectors.most_similar(queries[3], topn=5, workers=workers)
            if [vectors.get_index(word) for word, _ in single] != expected[1][3].tolist():
                failures.append(("single", workers))

    threads = [threading.Thread(target=worker, args=(workers,)) for workers in (1, 2, 3, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures


def test_search_arguments_and_padding():
    vectors = make(1, 13, words=10)
    scores, rows = vectors.search(["w1"], topn=20, workers=1)  # more than there are words: clipped to 10
    assert rows.shape == (1, 10) and rows[0, 9] == -1 and np.isneginf(scores[0, 9])  # w1 excludes itself
    assert scores.dtype == np.float32 and rows.dtype == np.int64
    scores, rows = vectors.search("w1", topn=3, restrict_vocab=5)
    assert rows.shape == (1, 3) and np.all(rows[0] < 5)
    bad = vectors.codes[:1].copy()
    bad[0, 1] |= 0x80  # a padding bit of d=13
    with pytest.raises(ValueError, match="padding"):
        vectors.search(bad)
    with pytest.raises(ValueError, match="bytes a row"):
        vectors.search(np.zeros((1, 5), dtype=np.uint8))
    with pytest.raises(ValueError, match="finite"):
        vectors.search(np.full((1, 13), np.nan))
    with pytest.raises(KeyError):
        vectors.search(["w1", "nope"])
    with pytest.raises(ValueError, match="workers"):
        vectors.search(["w1"], workers=-2)
    with pytest.raises(ValueError, match="topn"):
        vectors.search(["w1"], topn=0)
    with pytest.raises(TypeError):
        vectors.search([["w1", "w2"]])
    assert instruction_set() in ("portable", "popcnt", "avx2", "avx512")


def test_kernel_refuses_inconsistent_term_arrays():
    vectors = make(1, 16, words=4)
    terms = search.word_terms(vectors, [0, 1])
    terms["term_start"] = np.array([0, 5, 2], dtype=np.int64)
    with pytest.raises(ValueError):
        search.run_search(vectors.codes, None, 1.0, 1, 16, terms, 3)


def test_indexer_receives_the_unit_mean_and_zero_for_a_cancelled_query():
    vectors = make(2, 20, words=30, duplicates=False)

    class Recorder:
        def most_similar(self, vector, topn):
            self.vector = vector
            return [("recorded", topn)]

    recorder = Recorder()
    assert vectors.most_similar(positive=["w1", "w2"], topn=3, indexer=recorder) == [("recorded", 3)]
    unit = vectors.vectors_for([1, 2]).astype(np.float64)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    mean = unit.sum(axis=0)
    np.testing.assert_allclose(recorder.vector, mean / np.linalg.norm(mean), atol=1e-6)
    vectors.most_similar(positive=["w1"], negative=["w1"], topn=3, indexer=recorder)
    assert not np.any(recorder.vector)


@pytest.mark.parametrize("dimension", [256, 800, 136, 1030])
def test_every_instruction_set_gives_the_same_top_k(dimension):
    """The blocked AVX2 / AVX-512 Hamming scans (d = 256; AVX-512 at any width from 16 bytes: d = 800,
    17 bytes, 129 with a masked tail), the scalar POPCNT and the portable loop agree exactly."""
    from gensim_bits import search_inner

    rng = np.random.default_rng(5)
    codes = rng.integers(0, 2, size=(1000 + 37, dimension), dtype=np.uint8)  # a tail shorter than a chunk
    codes[500:520] = codes[11]  # exact ties across chunks
    vectors = QuantizedKeyedVectors(packing.pack_codes(codes, 1), 1, dimension, [f"w{i}" for i in range(len(codes))])
    queries = ["w11", "w0", "w1036", "w700"]
    results = {}
    try:
        for name in search_inner.available_instruction_sets():
            search_inner.use_instruction_set(name)
            assert search_inner.instruction_set() == name
            results[name] = (vectors.search(queries, topn=25, workers=1), vectors.search(vectors.codes[:9], topn=3),
                             vectors.most_similar("w11", topn=30))
    finally:
        search_inner.use_instruction_set(None)
    reference = results.pop("portable")
    for name, got in results.items():
        for ours, theirs in zip(got[:2], reference[:2]):
            np.testing.assert_array_equal(ours[0], theirs[0], err_msg=name)
            np.testing.assert_array_equal(ours[1], theirs[1], err_msg=name)
        assert got[2] == reference[2], name
    assert [word for word, _ in reference[2][:20]] == [f"w{i}" for i in range(500, 520)]
    with pytest.raises(ValueError, match="not available"):
        search_inner.use_instruction_set("sse9")


@pytest.mark.parametrize("bits", [1, 2])
def test_word_batches_split_by_rows_or_queries_equal_one_thread(bits, monkeypatch):
    monkeypatch.setattr(search, "MIN_ROWS_PER_THREAD", 8)  # let one query split its rows
    vectors = make(bits, 100, words=90)
    for queries in (["w3"], ["w3", "w40"], [f"w{i}" for i in range(0, 90, 7)]):
        expected = vectors.search(queries, topn=8, workers=1)
        for workers in (2, 3, 5):
            got = vectors.search(queries, topn=8, workers=workers)
            np.testing.assert_array_equal(got[0], expected[0])
            np.testing.assert_array_equal(got[1], expected[1])
        assert [[vectors.index_to_key[r] for r in row] for row in expected[1]] == \
            [[word for word, _ in vectors.most_similar(query, topn=8)] for query in queries]
