"""Exact top-k search over bit-packed Word2Bits codes (Lam 2018, section 3): queries as
kernel terms, and the split of one call over worker threads.

A query is a list of terms, each either a packed row times a weight (its dot product with
every row is an exact popcount sum, see :mod:`gensim_bits.packing`) or a float vector as a
per-byte lookup table. gensim's ``most_similar`` is an "add" query (the sum of the terms over
the row's norm), ``most_similar_cosmul`` a "mul" query (Levy & Goldberg 2014, 3CosMul). The
kernel (``search_inner``) keeps the k best rows of every query in a bounded heap and scans
the codes once per block of queries, without the GIL, so ``workers`` threads run in parallel:
a batch is split by queries, a single query by rows (each thread keeps its own top-k, then
they are merged with the same order: higher score, then lower row).

The calls users make most (``most_similar(word)``, ``search(words)``, ``search(codes)``,
words-only analogies) skip the term arrays: ``search_inner.PackedIndex`` answers each in
one compiled call. Query building for ``QuantizedKeyedVectors`` lives here too
(:func:`add_mean_query`, :func:`search_batch`).
"""
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from numbers import Integral
from threading import Lock

import numpy as np

from gensim_bits import packing
from gensim_bits.search_inner import MODE_ADD, MODE_MUL, PackedIndex, search_terms

__all__ = ["QueryTerms", "run_search", "resolve_workers", "check_search_arguments", "add_mean_query",
           "search_batch", "split_search", "word_terms", "PackedIndex", "MODE_ADD", "MODE_MUL", "KEY_TYPES"]

KEY_TYPES = (str, Integral)
# A single query is split over threads only when each thread gets at least this many rows
# (below that, starting a thread costs more than it saves).
MIN_ROWS_PER_THREAD = 16384
# More threads than this is a mistake, not a speed-up: refused with a clear error.
MAX_WORKERS = 256
# Float queries become lookup tables of 256 * bits * d float64 each (64 KiB a query at 1 bit,
# d = 256); a batch builds at most this many bytes of tables at once, then the next block.
TABLE_BLOCK_BYTES = 32 << 20
# A query mean shorter than this times the summed length of its terms has cancelled: what is
# left is rounding (~1e-17 relative), far below the smallest mean two different codes give.
CANCELLED = 1e-10

# One pool for every call, grown to the largest split asked for but never past the cores
# (more threads than cores only wait: the parts queue instead); a pool it replaces is shut
# down, so the threads alive never exceed the cores.
_pool = None
_pool_size = 0
_pool_lock = Lock()


def resolve_workers(workers):
    """``workers`` as a thread count: None or 0 means every core; otherwise an int 1..MAX_WORKERS."""
    if workers is None or (isinstance(workers, Integral) and not isinstance(workers, bool) and workers == 0):
        return os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, Integral) or not 0 < workers <= MAX_WORKERS:
        raise ValueError(f"workers must be an int from 1 to {MAX_WORKERS}, or 0 or None (every core), "
                         f"got {workers!r}")
    return int(workers)


def _submit_all(calls):
    """Start every ``(function, args)`` of ``calls`` on the shared pool; returns their futures."""
    global _pool, _pool_size
    size = max(1, min(len(calls), os.cpu_count() or 1))
    with _pool_lock:  # submitting under the lock: no other call can shut this pool down meanwhile
        if _pool is None or _pool_size < size:
            if _pool is not None:
                _pool.shutdown(wait=False)  # its running jobs finish, then its threads exit
            _pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="gensim_bits_search")
            _pool_size = size
        return [_pool.submit(function, *args) for function, args in calls]


def check_search_arguments(topn, workers=1, **bounds):
    """gensim's types for ``topn`` (an int or None) and the row bounds (ints >= 0 or None),
    and ``workers`` (see :func:`resolve_workers`).

    A negative bound used to slice from the end and silently search the wrong rows; a float
    or str ``topn`` was truncated or parsed.
    """
    if topn is not None and (isinstance(topn, bool) or not isinstance(topn, Integral)):
        raise TypeError(f"topn must be an integer or None, got {topn!r}")
    resolve_workers(workers)
    for name, value in bounds.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, Integral) or value < 0):
            raise ValueError(f"{name} must be a non-negative integer or None, got {value!r}")


def as_list(value):
    """gensim's ``_ensure_list``: a single key or vector becomes a one-item list."""
    if value is None:
        return []
    if isinstance(value, KEY_TYPES) or (isinstance(value, np.ndarray) and value.ndim == 1):
        return [value]
    return list(value)


def words_only(positive, negative):
    """(keys, weights as float64) when a query is str keys only, positive (+1) and negative (-1); else None."""
    positive, negative = as_list(positive), as_list(negative)
    keys = positive + negative
    if not keys or not all(type(key) is str for key in keys):
        return None
    weights = np.ones(len(keys), dtype=np.float64)
    weights[len(positive):] = -1.0
    return keys, weights


def safe_norm(vector):
    """Euclidean norm of a float64 vector without overflow or underflow in its squares."""
    largest = float(np.max(np.abs(vector))) if len(vector) else 0.0
    if largest == 0.0:
        return 0.0
    return largest * float(np.linalg.norm(vector / largest))


def check_vector(vector, dimension):
    """A query vector as float64: real numbers (int or float), finite, of shape (dimension,)."""
    array = np.asarray(vector)
    if array.dtype.kind not in "fiu":
        raise TypeError(f"query vectors must hold real numbers (int or float), got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    if array.shape != (dimension,):
        raise ValueError(f"query vectors must be finite with shape ({dimension},), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"query vectors must be finite with shape ({dimension},), got non-finite values")
    return array


def code_weight(vectors, row, weight, mean_norm=1.0):
    """Term weight of word ``row``: its unit vector times ``weight / mean_norm``, in popcount units."""
    return packing.level_unit(vectors.bits) ** 2 * (weight / float(vectors.norms[row])) / mean_norm


def add_mean_query(vectors, terms, positive, negative, want_mean=False):
    """Append gensim's ``most_similar`` query over ``vectors`` (a QuantizedKeyedVectors) to ``terms``.

    The query is the normalized mean of the unit vectors of the positive keys (weight +1 or
    given) and negative keys (weight -1); vectors enter as they are. With ``want_mean``,
    return (mean, its norm) instead (for an external indexer).
    """
    positive, negative = as_list(positive), as_list(negative)
    items = [(item, 1.0) for item in positive] + [(item, -1.0) for item in negative]
    keys, weights = [], []
    for item, default_weight in items:
        if isinstance(item, KEY_TYPES + (np.ndarray,)):
            keys.append(item)
            weights.append(default_weight)
        else:
            try:
                key, weight = item
                weight = float(weight)
            except (TypeError, ValueError):
                raise TypeError(f"query items must be keys, vectors or (key, weight) pairs, got {item!r}") from None
            keys.append(key)
            weights.append(weight)
    if not keys:
        raise ValueError("cannot compute mean with no input")
    word_rows, word_weights = [], []
    raw_vector = np.zeros(vectors.vector_size, dtype=np.float64)
    has_raw_vector = False
    magnitude = 0.0  # sum of the lengths of the weighted terms, the scale of the rounding error
    for key, weight in zip(keys, weights):
        if not np.isfinite(weight):
            raise ValueError(f"query weights must be finite, got {weight}")
        if isinstance(key, np.ndarray):
            key = check_vector(key, vectors.vector_size)
            with np.errstate(over="ignore"):  # an overflow is refused below, with its cause
                raw_vector += weight * key
            magnitude += abs(weight) * safe_norm(key)
            has_raw_vector = True
        else:
            word_rows.append(vectors.get_index(key))
            word_weights.append(weight)
            magnitude += abs(weight)
    if not (np.isfinite(magnitude) and np.all(np.isfinite(raw_vector))):
        raise ValueError("the query's weighted sum overflows float64: scale its vectors down")
    mean, mean_norm = None, 1.0  # one word: its unit vector has norm exactly 1, the query scores its cosines
    if want_mean or len(word_rows) != 1 or has_raw_vector or word_weights[0] <= 0:
        # The mean itself is only needed for its norm; it is built from the few query rows, in
        # the same compiled arithmetic as a words-only query, so both give identical scores.
        # The norm is taken without squaring overflow: a vector scaled by 1e200 or 1e-200
        # keeps its direction.
        mean = raw_vector.copy()
        mean_norm = vectors.packed_index.add_word_mean(np.asarray(word_rows, dtype=np.int64),
                                                       np.asarray(word_weights, dtype=np.float64), mean)
    # A query that cancels (w - w, or two words with the same codes) leaves rounding noise of
    # ~1e-17, not 0; dividing by it gave cosines up to 2.4. gensim's float32 mean is exactly 0.
    if mean_norm <= CANCELLED * magnitude:
        mean_norm = 0.0
    if want_mean:  # a cancelled mean is exactly zero, as gensim's float32 one is
        return (mean if mean_norm else np.zeros_like(mean)), mean_norm
    # gensim's unitvec leaves a zero mean at zero: every similarity is then 0.
    scale = 1.0 / mean_norm if mean_norm else 0.0
    for row, weight in zip(word_rows, word_weights):
        terms.add_code(vectors.codes[row], code_weight(vectors, row, weight) * scale)
    if has_raw_vector:
        # raw * (1 / norm) would overflow for a huge vector with a tiny norm reciprocal; divide.
        terms.add_vector(raw_vector / mean_norm if mean_norm else raw_vector * 0.0, 1.0)
    terms.end_query(sorted(set(word_rows)))


class QueryTerms:
    """Builds the flat term arrays of a batch of queries for ``search_inner.search_terms``.

    Call :meth:`add_code` / :meth:`add_vector` for the terms of a query, then
    :meth:`end_query` (with the rows it must not return), and so on for the next.
    """

    def __init__(self, bits, dimension):
        self.bits, self.dimension = bits, dimension
        self.row_bytes = bits * packing.plane_bytes(dimension)
        self.term_start, self.exclude_start = [0], [0]
        self.codes, self.weights, self.negative, self.table_of_term = [], [], [], []
        self.tables, self.constants, self.excluded = [], [], []

    def add_code(self, code, weight, negative=False):
        """A packed row (``row_bytes`` uint8) whose contribution is ``weight * dot(row, code) / unit**2``."""
        self.codes.append(code)
        self.weights.append(weight)
        self.negative.append(negative)
        self.table_of_term.append(-1)

    def add_vector(self, vector, weight=1.0, negative=False):
        """A float vector whose contribution is ``weight * dot(row, vector)``, by lookup tables."""
        table, constant = packing.vector_table(np.asarray(vector, dtype=np.float64) * weight,
                                               self.bits, self.dimension)
        self.codes.append(None)
        self.weights.append(0.0)
        self.negative.append(negative)
        self.table_of_term.append(len(self.tables))
        self.tables.append(table.ravel())
        self.constants.append(constant)

    def end_query(self, excluded=()):
        self.term_start.append(len(self.weights))
        self.excluded.extend(excluded)
        self.exclude_start.append(len(self.excluded))

    def __len__(self):
        return len(self.term_start) - 1

    def arrays(self):
        zero_row = np.zeros(self.row_bytes, dtype=np.uint8)
        codes = [zero_row if code is None else code for code in self.codes]
        return dict(
            term_start=np.asarray(self.term_start, dtype=np.int64),
            term_codes=(np.ascontiguousarray(np.vstack(codes), dtype=np.uint8) if codes
                        else np.zeros((0, self.row_bytes), dtype=np.uint8)),
            term_weight=np.asarray(self.weights, dtype=np.float64),
            term_negative=np.asarray(self.negative, dtype=np.int8),
            term_table=np.asarray(self.table_of_term, dtype=np.int64),
            tables=(np.vstack(self.tables) if self.tables else np.zeros((0, self.row_bytes * 256))),
            table_constant=np.asarray(self.constants, dtype=np.float64),
            exclude_start=np.asarray(self.exclude_start, dtype=np.int64),
            excluded=np.asarray(self.excluded, dtype=np.int64),
        )


def _slice_arrays(arrays, first, last):
    """The term arrays of queries ``first:last`` (offsets rebased to 0)."""
    term_start, exclude_start = arrays["term_start"], arrays["exclude_start"]
    t0, t1 = term_start[first], term_start[last]
    e0, e1 = exclude_start[first], exclude_start[last]
    part = dict(arrays)
    part["term_start"] = term_start[first:last + 1] - t0
    part["exclude_start"] = exclude_start[first:last + 1] - e0
    for name in ("term_codes", "term_weight", "term_negative", "term_table"):
        part[name] = arrays[name][t0:t1]
    part["excluded"] = arrays["excluded"][e0:e1]
    return part


def _call(codes, first_row, row_norm, norm, bits, dimension, arrays, k, mode, epsilon, clip=False):
    queries = len(arrays["term_start"]) - 1
    scores = np.empty((queries, k if k else len(codes)), dtype=np.float64)
    rows = np.empty((queries, k), dtype=np.int64)
    search_terms(codes, first_row, row_norm, norm, bits, dimension, arrays["term_start"], arrays["term_codes"],
                 arrays["term_weight"], arrays["term_negative"], arrays["term_table"], arrays["tables"],
                 arrays["table_constant"], arrays["exclude_start"], arrays["excluded"], mode, epsilon, k,
                 scores, rows, clip)
    return scores, rows


def merge_top(scores, rows, k):
    """Per query, the ``k`` best of several candidate lists side by side (higher score, then lower row)."""
    order = np.lexsort((np.where(rows < 0, np.iinfo(np.int64).max, rows), -scores), axis=-1)[:, :k]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(rows, order, axis=1)


def split_search(part, queries, start, end, k, workers):
    """``part(first, last, row_start, row_end)`` -> (scores, rows) of queries ``first:last`` over
    rows ``row_start:row_end``, run on ``workers`` threads: a batch is split by queries; fewer
    queries than threads split the rows, each part keeps its top-k and they are merged in the
    same order (higher score, then lower row), so the results equal one thread's."""
    workers = resolve_workers(workers)
    if workers == 1 or queries == 0 or end - start == 0:
        return part(0, queries, start, end)
    if queries >= workers or k == 0:
        # Split the queries: each thread scans every row for its share.
        bounds = np.linspace(0, queries, min(workers, queries) + 1).astype(int)
        jobs = _submit_all([(part, (first, last, start, end))
                            for first, last in zip(bounds[:-1], bounds[1:]) if last > first])
        parts = [job.result() for job in jobs]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    parts_count = max(1, min(workers, (end - start) // MIN_ROWS_PER_THREAD))
    if parts_count == 1:
        return part(0, queries, start, end)
    bounds = np.linspace(start, end, parts_count + 1).astype(int)
    jobs = _submit_all([(part, (0, queries, first, last)) for first, last in zip(bounds[:-1], bounds[1:])])
    parts = [job.result() for job in jobs]
    return merge_top(np.concatenate([p[0] for p in parts], axis=1),
                     np.concatenate([p[1] for p in parts], axis=1), k)


def run_search(codes, row_norm, norm, bits, dimension, terms, k, start=0, end=None, workers=1,
               mode=MODE_ADD, epsilon=0.0, clip=False):
    """Top-``k`` (scores float64, rows int64) of every query of ``terms`` over rows ``start:end``.

    ``k == 0`` returns every score (queries, end - start) and no rows. ``row_norm`` (float32 a
    row) or the constant ``norm`` divides each row's score; ``clip`` clips the returned scores
    to [-1, 1] (cosines that rounding put a hair outside).
    """
    end = len(codes) if end is None else min(end, len(codes))
    start = max(0, min(start, end))
    if not codes.flags.c_contiguous:
        codes = np.ascontiguousarray(codes)
    if row_norm is not None:
        row_norm = np.ascontiguousarray(row_norm, dtype=np.float32)
    arrays = terms.arrays() if isinstance(terms, QueryTerms) else terms
    queries = len(arrays["term_start"]) - 1

    def part(first, last, row_start, row_end):
        return _call(codes[row_start:row_end], row_start, None if row_norm is None else row_norm[row_start:row_end],
                     norm, bits, dimension, arrays if (first, last) == (0, queries) else
                     _slice_arrays(arrays, first, last), k, mode, epsilon, clip)
    return split_search(part, queries, start, end, k, workers)


# ---------------------------------------------------------------- queries of QuantizedKeyedVectors

@lru_cache(maxsize=64)
def single_term_arrays(count, row_bytes):
    """The read-only term arrays every batch of ``count`` one-code queries shares (built once)."""
    arrays = dict(term_start=np.arange(count + 1, dtype=np.int64), term_negative=np.zeros(count, dtype=np.int8),
                  term_table=np.full(count, -1, dtype=np.int64), tables=np.zeros((0, row_bytes * 256)),
                  table_constant=np.zeros(0), no_exclusions=np.zeros(count + 1, dtype=np.int64),
                  excluded=np.zeros(0, dtype=np.int64))
    for array in arrays.values():
        array.setflags(write=False)
    return arrays


def _single_code_terms(vectors, codes, weights, excluded):
    """Term arrays of queries that are one packed row each, with weight ``weights[q]``."""
    constant = single_term_arrays(len(codes), vectors.codes.shape[1])
    return dict(constant, term_codes=codes, term_weight=weights,
                exclude_start=constant["term_start"] if excluded is not None else constant["no_exclusions"],
                excluded=constant["excluded"] if excluded is None else excluded)


def word_terms(vectors, rows):
    """Queries that are single words (themselves excluded): exactly what add_mean_query builds for them."""
    rows = np.asarray(rows, dtype=np.int64)
    weights = packing.level_unit(vectors.bits) ** 2 * (1.0 / np.asarray(vectors.norms[rows], dtype=np.float64)) / 1.0
    return _single_code_terms(vectors, np.ascontiguousarray(vectors.codes[rows]), weights, rows)


def _vector_query_terms(vectors, block):
    """Term arrays of float vector queries (rows of ``block``), all at once: the same tables
    and scores as :func:`add_mean_query` builds for each vector alone."""
    block = np.asarray(block)
    if block.shape[1:] != (vectors.vector_size,):
        raise ValueError(f"query vectors must be finite with shape ({vectors.vector_size},), "
                         f"got shape {block.shape[1:]}")
    block = np.ascontiguousarray(block, dtype=np.float64)
    if not np.all(np.isfinite(block)):
        raise ValueError(f"query vectors must be finite with shape ({vectors.vector_size},), got non-finite values")
    norms = vectors.packed_index.vector_norms(block)
    # gensim's unitvec leaves a zero vector at zero: every similarity is then 0.
    scaled = np.divide(block, norms[:, None], out=np.zeros_like(block), where=norms[:, None] > 0)
    tables, constants = packing.vector_tables(scaled, vectors.bits, vectors.vector_size)
    count, row_bytes = len(block), vectors.codes.shape[1]
    return dict(term_start=np.arange(count + 1, dtype=np.int64), term_codes=np.zeros((count, row_bytes), np.uint8),
                term_weight=np.zeros(count), term_negative=np.zeros(count, np.int8),
                term_table=np.arange(count, dtype=np.int64), tables=tables, table_constant=constants,
                exclude_start=np.zeros(count + 1, dtype=np.int64), excluded=np.zeros(0, dtype=np.int64))


def _mixed_query_terms(vectors, queries):
    terms = QueryTerms(vectors.bits, vectors.vector_size)
    for query in queries:
        if isinstance(query, dict):
            unknown = set(query) - {"positive", "negative"}
            if unknown:
                raise ValueError(f"a query dict takes 'positive' and 'negative', not {sorted(unknown)}")
            add_mean_query(vectors, terms, query.get("positive"), query.get("negative"))
        elif isinstance(query, KEY_TYPES) or (isinstance(query, np.ndarray) and query.ndim == 1):
            add_mean_query(vectors, terms, [query], None)
        else:
            raise TypeError(f"a query is a key, a 1-d vector or a dict of most_similar arguments, "
                            f"got {type(query).__name__}")
    return terms.arrays()


def _query_kind(queries):
    """("codes", 2-d uint8 array), ("vectors", 2-d float array), ("keys", list) or ("mixed", list)
    for :func:`search_batch`.

    A list (or tuple) holds keys, 1-d vectors or query dicts; an array is vectors (float,
    1-d or 2-d), packed codes (uint8, 2-d) or keys (str). Integer arrays are refused: a list
    of ints means word rows, an int array could mean a vector too.
    """
    if isinstance(queries, KEY_TYPES):
        return "keys", [queries]
    if isinstance(queries, np.ndarray):
        kind = queries.dtype.kind
        if kind == "u" and queries.dtype.itemsize == 1 and queries.ndim == 2:
            return "codes", queries
        if kind == "f" and queries.ndim in (1, 2):
            return "vectors", np.atleast_2d(queries)
        if kind in "US" and queries.ndim == 1:
            queries = queries.tolist()
        elif kind in "iub":
            raise TypeError(
                f"an integer array of queries ({queries.dtype}, shape {queries.shape}) is ambiguous: pass word "
                "rows as a list of ints, vectors as a float array, packed codes as a 2-d uint8 array "
                "(one code a row: codes[None] for a single one)")
        else:
            raise TypeError(f"query arrays must be float vectors (1-d or 2-d), 2-d uint8 packed codes or "
                            f"str keys, got dtype {queries.dtype} with shape {queries.shape}")
    elif not isinstance(queries, (list, tuple)):
        try:
            queries = list(queries)
        except TypeError:
            raise TypeError(f"queries must be a key, a list of queries or an array, got {type(queries).__name__}") \
                from None
    if queries and all(isinstance(query, KEY_TYPES) for query in queries):
        return "keys", list(queries)
    return "mixed", list(queries)


def search_batch(vectors, queries, k, end, workers):
    """:meth:`QuantizedKeyedVectors.search`'s (float32 scores, int64 rows) over rows ``0:end``.

    Words and packed codes go to the compiled batch scan, one call a thread; vectors and
    dicts through term arrays. Queries that build lookup tables (vectors, dicts) run in blocks of
    at most ``TABLE_BLOCK_BYTES`` of tables.
    """
    kind, queries = _query_kind(queries)
    index = vectors.packed_index
    if kind in ("keys", "codes"):
        if kind == "keys":
            rows = index.rows_of(queries)
            part = lambda first, last, row_start, row_end: index.search_words(  # noqa: E731
                rows[first:last], k, row_start, row_end)
        else:
            codes = np.ascontiguousarray(queries)
            part = lambda first, last, row_start, row_end: index.search_codes(  # noqa: E731
                codes[first:last], k, row_start, row_end)
        scores, found = split_search(part, len(queries), 0, end, k, workers)
        return scores.astype(np.float32), found
    block = max(1, TABLE_BLOCK_BYTES // (vectors.codes.shape[1] * 256 * 8))
    terms_of = _vector_query_terms if kind == "vectors" else _mixed_query_terms
    parts = [search_vectors(vectors, terms_of(vectors, queries[first:first + block]), k, 0, end, workers)
             for first in range(0, max(len(queries), 1), block)]
    if len(parts) == 1:
        return parts[0][0].astype(np.float32), parts[0][1]
    return (np.concatenate([scores.astype(np.float32) for scores, _ in parts]),
            np.concatenate([rows for _, rows in parts]))


def search_vectors(vectors, terms, k, start=0, end=None, workers=1, mode=MODE_ADD, epsilon=0.0):
    """(scores, rows) of the kernel over rows ``start:end`` of ``vectors``; see :func:`run_search`."""
    if vectors.bits == 1:
        row_norm, norm = None, float(vectors.norms[0]) if len(vectors) else 1.0
    else:
        row_norm, norm = vectors.norms, 1.0
    # "add" queries score cosines: rounding may not leave [-1, 1] (clipping keeps the order).
    return run_search(vectors.codes, row_norm, norm, vectors.bits, vectors.vector_size, terms, k, start, end,
                      workers=workers, mode=mode, epsilon=epsilon, clip=mode == MODE_ADD)


def packed_index(vectors):
    """The :class:`PackedIndex` of a QuantizedKeyedVectors (its codes, norms and vocabulary)."""
    if vectors.bits == 1:
        row_norm, norm = None, float(vectors.norms[0]) if len(vectors) else 1.0
    else:
        row_norm, norm = np.ascontiguousarray(vectors.norms, dtype=np.float32), 1.0
    codes = vectors.codes if vectors.codes.flags.c_contiguous else np.ascontiguousarray(vectors.codes)
    return PackedIndex(codes, vectors.bits, vectors.vector_size, row_norm, norm,
                       packing.level_unit(vectors.bits) ** 2, vectors.index_to_key,
                       packing.level_table(vectors.bits).astype(np.float64), CANCELLED)
