# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Popcount search on bit-packed Word2Bits codes (Lam 2018, section 3; the XOR-popcount
dot product of binary codes). Only the hot loops live here, in ``search_kernels.h``;
:mod:`gensim_bits.packing` checks shapes and calls them without the GIL.
"""
import numpy as np

from libc.stdint cimport int64_t, uint8_t


cdef extern from "search_kernels.h" nogil:
    void packed_dots(const uint8_t *codes, int64_t nrows, const uint8_t *queries, int64_t nqueries,
                     int planes, int64_t plane_bytes, int64_t dimension, double scale, double *out)
    void table_dots(const uint8_t *codes, int64_t nrows, int64_t row_bytes,
                    const double *table, double constant, double *out)


def dots_with_rows(const uint8_t[:, ::1] codes, const uint8_t[:, ::1] queries, int planes,
                   int64_t plane_bytes, int64_t dimension, double scale):
    """Exact dot products of every row of ``codes`` with every row of ``queries``.

    Both are packed words (``planes * plane_bytes`` bytes a row). Returns a float64
    array of shape ``(len(codes), len(queries))``.
    """
    if codes.shape[1] != planes * plane_bytes or queries.shape[1] != planes * plane_bytes:
        raise ValueError("packed rows must be planes * plane_bytes bytes long")
    out = np.empty((codes.shape[0], queries.shape[0]), dtype=np.float64)
    cdef double[:, ::1] out_view = out
    if codes.shape[0] == 0 or queries.shape[0] == 0:
        return out
    with nogil:
        packed_dots(&codes[0, 0], codes.shape[0], &queries[0, 0], queries.shape[0],
                    planes, plane_bytes, dimension, scale, &out_view[0, 0])
    return out


def dots_with_table(const uint8_t[:, ::1] codes, const double[:, ::1] table, double constant):
    """``constant + sum_t table[t, codes[r, t]]`` for every row ``r``, as float64."""
    if table.shape[0] != codes.shape[1] or table.shape[1] != 256:
        raise ValueError("table must have shape (row bytes, 256)")
    out = np.empty(codes.shape[0], dtype=np.float64)
    cdef double[::1] out_view = out
    if codes.shape[0] == 0:
        return out
    with nogil:
        table_dots(&codes[0, 0], codes.shape[0], codes.shape[1], &table[0, 0], constant, &out_view[0])
    return out
