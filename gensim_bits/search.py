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
"""
import os
from concurrent.futures import ThreadPoolExecutor
from threading import Lock

import numpy as np

from gensim_bits import packing
from gensim_bits.search_inner import MODE_ADD, MODE_MUL, search_terms

__all__ = ["QueryTerms", "run_search", "resolve_workers", "MODE_ADD", "MODE_MUL"]

# A single query is split over threads only when each thread gets at least this many rows
# (below that, starting a thread costs more than it saves).
MIN_ROWS_PER_THREAD = 16384

_executors = {}
_executors_lock = Lock()


def resolve_workers(workers):
    """``workers`` as a thread count: None or 0 means every core; otherwise a positive int."""
    if workers is None or workers == 0:
        return os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 0:
        raise ValueError(f"workers must be a positive int, 0 or None (every core), got {workers!r}")
    return int(workers)


def _executor(workers):
    with _executors_lock:
        if workers not in _executors:
            _executors[workers] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gensim_bits_search")
        return _executors[workers]


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


def run_search(codes, row_norm, norm, bits, dimension, terms, k, start=0, end=None, workers=1,
               mode=MODE_ADD, epsilon=0.0, clip=False):
    """Top-``k`` (scores float64, rows int64) of every query of ``terms`` over rows ``start:end``.

    ``k == 0`` returns every score (queries, end - start) and no rows. ``row_norm`` (float32 a
    row) or the constant ``norm`` divides each row's score; ``clip`` clips the returned scores
    to [-1, 1] (cosines that rounding put a hair outside).
    """
    end = len(codes) if end is None else min(end, len(codes))
    start = max(0, min(start, end))
    codes = codes[start:end]
    row_norm = None if row_norm is None else np.ascontiguousarray(row_norm[start:end], dtype=np.float32)
    arrays = terms.arrays() if isinstance(terms, QueryTerms) else terms
    queries = len(arrays["term_start"]) - 1
    workers = resolve_workers(workers)
    if not codes.flags.c_contiguous:
        codes = np.ascontiguousarray(codes)
    args = (bits, dimension)
    if workers == 1 or queries == 0 or len(codes) == 0:
        return _call(codes, start, row_norm, norm, *args, arrays, k, mode, epsilon, clip)
    if queries >= workers or k == 0:
        # Split the queries: each thread scans every row for its share.
        bounds = np.linspace(0, queries, min(workers, queries) + 1).astype(int)
        jobs = [_executor(workers).submit(_call, codes, start, row_norm, norm, *args,
                                          _slice_arrays(arrays, first, last), k, mode, epsilon, clip)
                for first, last in zip(bounds[:-1], bounds[1:]) if last > first]
        parts = [job.result() for job in jobs]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    # Fewer queries than threads: split the rows, keep each part's top-k, merge.
    parts_count = max(1, min(workers, len(codes) // MIN_ROWS_PER_THREAD))
    if parts_count == 1:
        return _call(codes, start, row_norm, norm, *args, arrays, k, mode, epsilon, clip)
    bounds = np.linspace(0, len(codes), parts_count + 1).astype(int)
    jobs = [_executor(workers).submit(_call, codes[first:last], start + first,
                                      None if row_norm is None else row_norm[first:last], norm, *args,
                                      arrays, k, mode, epsilon, clip)
            for first, last in zip(bounds[:-1], bounds[1:])]
    parts = [job.result() for job in jobs]
    return merge_top(np.concatenate([p[0] for p in parts], axis=1),
                     np.concatenate([p[1] for p in parts], axis=1), k)
