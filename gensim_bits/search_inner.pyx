# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Popcount search on bit-packed Word2Bits codes (Lam 2018, section 3; the XOR-popcount
dot product of binary codes). Only the hot loops live here, as C in the extern block below
(GCC or Clang), run without the GIL; :mod:`gensim_bits.packing` checks shapes and calls them.
"""
import numpy as np

from libc.stdint cimport int64_t, uint8_t


cdef extern from * nogil:
    """
    /* Exact dot products on bit-packed Word2Bits codes (see gensim_bits/packing.py).
     *
     * A word is `planes` bit-planes of `plane_bytes` bytes each, stored one after another.
     * Plane j holds bit j of every element's level index, so an element's scaled value is
     * sum_j 2^j s_j with s_j = +-1, and for two words
     *     sum_{i,j} 2^(i+j) S_ij,   S_ij = d - 2 popcount(plane_i(x) XOR plane_j(y)).
     * The padding bits at the end of each plane are zero in every word, so they never
     * count in the XOR.
     *
     * With GCC or Clang on x86 the hot loops are compiled twice: once for the POPCNT
     * instruction, chosen at run time when the CPU has it, and once portable, so one binary
     * runs on every x86-64 without -mpopcnt. Other compilers (MSVC) get a plain C popcount.
     */
    #include <stdint.h>
    #include <string.h>

    #if (defined(__GNUC__) || defined(__clang__)) && !defined(GENSIM_BITS_PLAIN_POPCOUNT)
    #define GB_INLINE static inline __attribute__((always_inline))
    #define GB_POPCOUNT64(x) __builtin_popcountll(x)
    #else
    #define GB_INLINE static __inline
    static __inline int64_t gb_popcount64(uint64_t x)
    {
        /* The SWAR bit count (Hacker's Delight 5-1) for compilers without a builtin. */
        x = x - ((x >> 1) & 0x5555555555555555ULL);
        x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
        x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
        return (int64_t)((x * 0x0101010101010101ULL) >> 56);
    }
    #define GB_POPCOUNT64(x) gb_popcount64(x)
    #endif

    GB_INLINE int64_t xor_popcount(const uint8_t *a, const uint8_t *b, int64_t nbytes)
    {
        /* Rows are byte-aligned and their length need not be a multiple of 8: whole 8-byte
         * words through fixed-size memcpy (one unaligned load), then the tail byte by byte,
         * so nothing is read past the row. */
        int64_t total = 0;
        int64_t offset = 0;
        for (; offset + 8 <= nbytes; offset += 8) {
            uint64_t x, y;
            memcpy(&x, a + offset, 8);
            memcpy(&y, b + offset, 8);
            total += GB_POPCOUNT64(x ^ y);
        }
        for (; offset < nbytes; offset++) {
            total += GB_POPCOUNT64((uint64_t)(a[offset] ^ b[offset]));
        }
        return total;
    }

    /* out[r * nqueries + q] = scale * (d (2^planes - 1)^2 - 2 sum_{i,j} 2^(i+j) popcount(...)) */
    GB_INLINE void packed_dots_body(
        const uint8_t *codes, int64_t nrows, const uint8_t *queries, int64_t nqueries,
        int planes, int64_t plane_bytes, int64_t dimension, double scale, double *out)
    {
        const int64_t row_bytes = planes * plane_bytes;
        const int64_t max_level = ((int64_t)1 << planes) - 1;
        const int64_t offset = dimension * max_level * max_level;
        for (int64_t r = 0; r < nrows; r++) {
            const uint8_t *row = codes + r * row_bytes;
            for (int64_t q = 0; q < nqueries; q++) {
                const uint8_t *query = queries + q * row_bytes;
                int64_t weighted = 0;
                for (int i = 0; i < planes; i++) {
                    for (int j = 0; j < planes; j++) {
                        weighted += xor_popcount(row + i * plane_bytes, query + j * plane_bytes, plane_bytes) << (i + j);
                    }
                }
                out[r * nqueries + q] = scale * (double)(offset - 2 * weighted);
            }
        }
    }

    #if (defined(__GNUC__) || defined(__clang__)) && !defined(GENSIM_BITS_PLAIN_POPCOUNT) && (defined(__x86_64__) || defined(__i386__))
    __attribute__((target("popcnt"))) static void packed_dots_popcnt(
        const uint8_t *codes, int64_t nrows, const uint8_t *queries, int64_t nqueries,
        int planes, int64_t plane_bytes, int64_t dimension, double scale, double *out)
    {
        packed_dots_body(codes, nrows, queries, nqueries, planes, plane_bytes, dimension, scale, out);
    }
    #define HAVE_POPCNT_DISPATCH 1
    #endif

    static void packed_dots_portable(
        const uint8_t *codes, int64_t nrows, const uint8_t *queries, int64_t nqueries,
        int planes, int64_t plane_bytes, int64_t dimension, double scale, double *out)
    {
        packed_dots_body(codes, nrows, queries, nqueries, planes, plane_bytes, dimension, scale, out);
    }

    static void packed_dots(
        const uint8_t *codes, int64_t nrows, const uint8_t *queries, int64_t nqueries,
        int planes, int64_t plane_bytes, int64_t dimension, double scale, double *out)
    {
    #ifdef HAVE_POPCNT_DISPATCH
        if (__builtin_cpu_supports("popcnt")) {
            packed_dots_popcnt(codes, nrows, queries, nqueries, planes, plane_bytes, dimension, scale, out);
            return;
        }
    #endif
        packed_dots_portable(codes, nrows, queries, nqueries, planes, plane_bytes, dimension, scale, out);
    }

    /* Dot of a float query with every row: out[r] = constant + sum_t table[t][row byte t].
     * table[t][b] holds the query's contribution of byte value b at byte position t (the
     * classic lookup-table trick), so nothing is unpacked. */
    static void table_dots(const uint8_t *codes, int64_t nrows, int64_t row_bytes,
                           const double *table, double constant, double *out)
    {
        for (int64_t r = 0; r < nrows; r++) {
            const uint8_t *row = codes + r * row_bytes;
            double total = constant;
            for (int64_t t = 0; t < row_bytes; t++) {
                total += table[t * 256 + row[t]];
            }
            out[r] = total;
        }
    }
    """
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
