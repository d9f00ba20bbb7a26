# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Exact top-k search on bit-packed Word2Bits codes (Lam 2018, section 3; the XOR-popcount
dot product of binary codes). Only the hot loops live here, as C in the extern block below
(GCC or Clang), run without the GIL; :mod:`gensim_bits.packing` and
:class:`gensim_bits.QuantizedKeyedVectors` check arguments, build the query terms and split
the work over threads.
"""
import numpy as np

cimport numpy as cnp
from libc.stdint cimport int8_t, int64_t, uint8_t

cnp.import_array()


cdef extern from * nogil:
    """
    /* Exact dot products and top-k on bit-packed Word2Bits codes (see gensim_bits/packing.py).
     *
     * A word is `planes` bit-planes of `plane_bytes` bytes each, stored one after another.
     * Plane j holds bit j of every element's level index, so an element's scaled value is
     * sum_j 2^j s_j with s_j = +-1, and for two words
     *     D = sum_{i,j} 2^(i+j) S_ij,   S_ij = d - 2 popcount(plane_i(x) XOR plane_j(y)).
     * The padding bits at the end of each plane are zero in every word, so they never
     * count in the XOR.
     *
     * A query is a list of terms. A code term contributes weight * D(row, term); a table term
     * (a float vector) contributes constant + sum_t table[t][row byte t], the classic
     * lookup-table trick, so nothing is unpacked. "add" queries score
     * sum(terms) * (1 / row_norm) (gensim's most_similar); "mul" queries score
     * prod_pos (1 + c) / 2 / (prod_neg (1 + c) / 2 + epsilon), c = term * (1 / row_norm)
     * (most_similar_cosmul, Levy & Goldberg 2014). The k best rows are kept in a bounded heap,
     * worst on top (lower score, then higher row), so nothing of size n reaches Python.
     * A 1-bit query of one code term with a positive weight is ranked by Hamming distance,
     * an integer compared against the current k-th distance, which rejects almost every row
     * with one comparison.
     *
     * Rows are scanned in blocks of about ROW_BLOCK_BYTES, each block against every query of
     * the call, so a block read from memory serves all of them from L1/L2.
     *
     * With GCC or Clang on x86 the loops are compiled twice: once for the POPCNT instruction
     * (chosen at run time when the CPU has it) and once portable, so one binary runs on every
     * x86-64 without -mpopcnt. The loops are specialised for common plane widths (a constant
     * width unrolls into straight-line whole-word popcounts). Other compilers (MSVC) get a
     * plain C popcount.
     */
    #include <stdint.h>
    #include <string.h>
    #include <stdlib.h>
    #include <math.h>

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

    #define GB_ROW_BLOCK_BYTES 32768
    #define GB_MODE_ADD 0
    #define GB_MODE_MUL 1

    GB_INLINE uint64_t gb_load64(const uint8_t *p)
    {
        uint64_t x;
        memcpy(&x, p, 8);
        return x;
    }

    /* The last n < 8 bytes of a plane, assembled in a register from 4-, 2- and 1-byte loads
     * (copying them into a zeroed word in memory stalls store forwarding). A constant n folds
     * to its one to three loads. Where the bytes land in the word does not matter: both sides
     * are loaded the same way. */
    GB_INLINE uint64_t gb_load_tail(const uint8_t *p, int64_t n)
    {
        uint64_t x = 0;
        int shift = 0;
        if (n & 4) { uint32_t v; memcpy(&v, p, 4); x = v; p += 4; shift = 32; }
        if (n & 2) { uint16_t v; memcpy(&v, p, 2); x |= (uint64_t)v << shift; p += 2; shift += 16; }
        if (n & 1) { x |= (uint64_t)p[0] << shift; }
        return x;
    }

    GB_INLINE int64_t gb_xor_popcount(const uint8_t *a, const uint8_t *b, int64_t nbytes)
    {
        int64_t total = 0;
        int64_t offset = 0;
        for (; offset + 8 <= nbytes; offset += 8) {
            total += GB_POPCOUNT64(gb_load64(a + offset) ^ gb_load64(b + offset));
        }
        if (nbytes & 7) {
            total += GB_POPCOUNT64(gb_load_tail(a + offset, nbytes & 7) ^ gb_load_tail(b + offset, nbytes & 7));
        }
        return total;
    }

    /* sum_{i,j} 2^(i+j) popcount(plane_i(row) XOR plane_j(query)) */
    GB_INLINE int64_t gb_weighted_popcount(const uint8_t *row, const uint8_t *query, int planes, int64_t width)
    {
        if (planes == 1) {
            return gb_xor_popcount(row, query, width);
        }
        int64_t weighted = 0;
        for (int i = 0; i < planes; i++) {
            for (int j = 0; j < planes; j++) {
                weighted += gb_xor_popcount(row + i * width, query + j * width, width) << (i + j);
            }
        }
        return weighted;
    }

    /* ------------------------------------------------------------ bounded heap */

    typedef struct {
        double *score;
        int64_t *row;
        int64_t size;
        int64_t capacity;
    } gb_heap;

    GB_INLINE int gb_worse(double score_a, int64_t row_a, double score_b, int64_t row_b)
    {
        return score_a < score_b || (score_a == score_b && row_a > row_b);
    }

    static void gb_sift_down(gb_heap *heap, int64_t position)
    {
        const int64_t size = heap->size;
        const double score = heap->score[position];
        const int64_t row = heap->row[position];
        for (;;) {
            int64_t child = 2 * position + 1;
            if (child >= size) break;
            if (child + 1 < size && gb_worse(heap->score[child + 1], heap->row[child + 1],
                                             heap->score[child], heap->row[child])) {
                child++;
            }
            if (!gb_worse(heap->score[child], heap->row[child], score, row)) break;
            heap->score[position] = heap->score[child];
            heap->row[position] = heap->row[child];
            position = child;
        }
        heap->score[position] = score;
        heap->row[position] = row;
    }

    static int gb_is_excluded(int64_t row, const int64_t *excluded, int64_t count)
    {
        for (int64_t e = 0; e < count; e++) {
            if (excluded[e] == row) return 1;
        }
        return 0;
    }

    /* Offer (score, row); the caller has checked it beats the worst kept one or the heap is not full. */
    static void gb_heap_offer(gb_heap *heap, double score, int64_t row, const int64_t *excluded, int64_t nexcluded)
    {
        if (nexcluded && gb_is_excluded(row, excluded, nexcluded)) return;
        if (heap->size < heap->capacity) {
            int64_t position = heap->size++;
            while (position > 0) {
                int64_t parent = (position - 1) / 2;
                if (!gb_worse(score, row, heap->score[parent], heap->row[parent])) break;
                heap->score[position] = heap->score[parent];
                heap->row[position] = heap->row[parent];
                position = parent;
            }
            heap->score[position] = score;
            heap->row[position] = row;
        } else if (gb_worse(heap->score[0], heap->row[0], score, row)) {
            heap->score[0] = score;
            heap->row[0] = row;
            gb_sift_down(heap, 0);
        }
    }

    /* Best first into out_score/out_row (k slots); missing ones are -inf / -1. Empties the heap. */
    static void gb_heap_drain(gb_heap *heap, double *out_score, int64_t *out_row)
    {
        for (int64_t slot = heap->size; slot < heap->capacity; slot++) {
            out_score[slot] = -INFINITY;
            out_row[slot] = -1;
        }
        /* out_score/out_row may be the heap's own storage: the slot freed by each pop
         * receives the popped (worst remaining) entry. */
        while (heap->size > 0) {
            const int64_t last = --heap->size;
            const double score = heap->score[0];
            const int64_t row = heap->row[0];
            heap->score[0] = heap->score[last];
            heap->row[0] = heap->row[last];
            if (heap->size) gb_sift_down(heap, 0);
            out_score[last] = score;
            out_row[last] = row;
        }
    }

    /* Rounding can put a cosine a hair outside [-1, 1]; clipping after selection keeps the order. */
    GB_INLINE double gb_clip(double score) { return score > 1.0 ? 1.0 : (score < -1.0 ? -1.0 : score); }

    static void gb_clip_rows(double *scores, const int64_t *rows, int64_t count)
    {
        for (int64_t slot = 0; slot < count; slot++) {
            if (rows[slot] >= 0) scores[slot] = gb_clip(scores[slot]);
        }
    }

    /* ------------------------------------------------------------ the search description */

    typedef struct {
        const uint8_t *codes;       /* rows [0, nrows), row_bytes apart */
        int64_t nrows;
        int64_t first_row;          /* absolute row number of codes row 0 */
        int planes;
        int64_t plane_bytes;
        int64_t offset;             /* d (2^planes - 1)^2 */
        const float *row_norm;      /* per row, or NULL: then `norm` for every row */
        double norm;
        const int64_t *term_start;  /* query q owns terms [term_start[q], term_start[q + 1]) */
        const uint8_t *term_codes;  /* one packed row a term (unused for table terms) */
        const double *term_weight;
        const int8_t *term_negative;
        const int64_t *term_table;  /* table number, or -1 for a code term */
        const double *tables;       /* (tables, row_bytes, 256) */
        const double *table_constant;
        const int64_t *exclude_start;
        const int64_t *excluded;    /* absolute rows */
        int mode;
        double epsilon;
        int clip;                   /* clip the scores written out to [-1, 1] (cosines) */
        int64_t k;
        double *out_score;          /* (queries, k), or (queries, nrows) when k == 0 */
        int64_t *out_row;
    } gb_search;

    GB_INLINE int64_t gb_row_bytes(const gb_search *s) { return s->planes * s->plane_bytes; }

    GB_INLINE int64_t gb_block_rows(const gb_search *s)
    {
        int64_t rows = GB_ROW_BLOCK_BYTES / gb_row_bytes(s);
        return rows < 16 ? 16 : rows;
    }

    static void gb_heaps_init(gb_heap *heaps, double *scores, int64_t *rows, int64_t count, int64_t k)
    {
        for (int64_t q = 0; q < count; q++) {
            heaps[q].score = scores + q * k;
            heaps[q].row = rows + q * k;
            heaps[q].size = 0;
            heaps[q].capacity = k;
        }
    }

    /* 1 bit, one code term of positive weight a query: rank by Hamming distance.
     * score = ((double)(d - 2 h) * weight) * (1 / norm), the same expression as the general path.
     * Distances of GB_CHUNK rows go to a small buffer first (a tight loop), then their minimum
     * (vectorized) decides whether any of them can enter the top-k: after the first few
     * thousand rows almost no chunk can, and the branchy heap code is skipped. */
    #define GB_CHUNK 64
    GB_INLINE void gb_scan_hamming_body(const gb_search *s, int64_t q0, int64_t q1, gb_heap *heaps,
                                        int64_t *limits, int64_t width)
    {
        const uint8_t *codes = s->codes;
        const int64_t block = gb_block_rows(s);
        int32_t distances[GB_CHUNK];
        for (int64_t q = q0; q < q1; q++) limits[q - q0] = INT32_MAX;
        for (int64_t block_start = 0; block_start < s->nrows; block_start += block) {
            const int64_t block_end = block_start + block < s->nrows ? block_start + block : s->nrows;
            for (int64_t q = q0; q < q1; q++) {
                const uint8_t *query = s->term_codes + s->term_start[q] * width;
                const int64_t *excluded = s->excluded + s->exclude_start[q];
                const int64_t nexcluded = s->exclude_start[q + 1] - s->exclude_start[q];
                gb_heap *heap = heaps + (q - q0);
                int32_t limit = (int32_t)limits[q - q0];
                for (int64_t chunk = block_start; chunk < block_end; chunk += GB_CHUNK) {
                    const int64_t rows = block_end - chunk < GB_CHUNK ? block_end - chunk : GB_CHUNK;
                    const uint8_t *row = codes + chunk * width;
                    int32_t lowest = INT32_MAX;
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                    if (width < 8 && rows == GB_CHUNK && (chunk + GB_CHUNK) * width + 8 <= s->nrows * width) {
                        /* Rows under 8 bytes: one 8-byte load a row, masked to the row's bytes
                         * (the bytes past it belong to the next rows, inside the array). */
                        const uint64_t mask = (1ULL << (8 * width)) - 1;
                        const uint64_t query_word = gb_load_tail(query, width);
                        for (int64_t r = 0; r < GB_CHUNK; r++) {
                            distances[r] = (int32_t)GB_POPCOUNT64((gb_load64(row + r * width) & mask) ^ query_word);
                        }
                        for (int64_t r = 0; r < GB_CHUNK; r++) lowest = distances[r] < lowest ? distances[r] : lowest;
                    } else
    #endif
                    if (rows == GB_CHUNK) {
                        for (int64_t r = 0; r < GB_CHUNK; r++) {
                            distances[r] = (int32_t)gb_xor_popcount(row + r * width, query, width);
                        }
                        for (int64_t r = 0; r < GB_CHUNK; r++) lowest = distances[r] < lowest ? distances[r] : lowest;
                    } else {
                        for (int64_t r = 0; r < rows; r++) {
                            distances[r] = (int32_t)gb_xor_popcount(row + r * width, query, width);
                            lowest = distances[r] < lowest ? distances[r] : lowest;
                        }
                    }
                    if (lowest >= limit) continue;
                    for (int64_t r = 0; r < rows; r++) {
                        if (distances[r] < limit) {
                            gb_heap_offer(heap, -(double)distances[r], s->first_row + chunk + r, excluded, nexcluded);
                            if (heap->size == heap->capacity) limit = (int32_t)(-heap->score[0]);
                        }
                    }
                }
                limits[q - q0] = limit;
            }
        }
    }

    /* Any bits, one code term a query, "add": scores of GB_CHUNK rows go to a buffer (popcounts
     * in a tight loop, then one multiply a row), their maximum decides whether any can enter
     * the top-k. score = ((double)D * weight) * inverse_norm, the general path's expression. */
    GB_INLINE void gb_scan_single_body(const gb_search *s, int64_t q0, int64_t q1, gb_heap *heaps,
                                       double *inverse_norms, int planes, int64_t width)
    {
        const int64_t row_bytes = planes * width;
        const int64_t block = gb_block_rows(s);
        int64_t weighted[GB_CHUNK];
        double scores[GB_CHUNK];
        for (int64_t block_start = 0; block_start < s->nrows; block_start += block) {
            const int64_t block_end = block_start + block < s->nrows ? block_start + block : s->nrows;
            for (int64_t r = block_start; r < block_end; r++) {
                inverse_norms[r - block_start] = 1.0 / (s->row_norm ? (double)s->row_norm[r] : s->norm);
            }
            for (int64_t q = q0; q < q1; q++) {
                const int64_t t = s->term_start[q];
                const uint8_t *query = s->term_codes + t * row_bytes;
                const double weight = s->term_weight[t];
                const int64_t *excluded = s->excluded + s->exclude_start[q];
                const int64_t nexcluded = s->exclude_start[q + 1] - s->exclude_start[q];
                gb_heap *heap = heaps + (q - q0);
                for (int64_t chunk = block_start; chunk < block_end; chunk += GB_CHUNK) {
                    const int64_t rows = block_end - chunk < GB_CHUNK ? block_end - chunk : GB_CHUNK;
                    const uint8_t *row = s->codes + chunk * row_bytes;
                    const double *inverse = inverse_norms + (chunk - block_start);
                    for (int64_t r = 0; r < rows; r++) {
                        weighted[r] = gb_weighted_popcount(row + r * row_bytes, query, planes, width);
                    }
                    double best = -INFINITY;
                    for (int64_t r = 0; r < rows; r++) {
                        scores[r] = ((double)(s->offset - 2 * weighted[r]) * weight) * inverse[r];
                        best = scores[r] > best ? scores[r] : best;
                    }
                    if (heap->size == heap->capacity && !(best > heap->score[0])) continue;
                    for (int64_t r = 0; r < rows; r++) {
                        if (heap->size < heap->capacity || scores[r] > heap->score[0]) {
                            gb_heap_offer(heap, scores[r], s->first_row + chunk + r, excluded, nexcluded);
                        }
                    }
                }
            }
        }
    }

    /* Any bits, any terms: score every row, keep the k best (or write all when k == 0). */
    GB_INLINE void gb_scan_general_body(const gb_search *s, int64_t q0, int64_t q1, gb_heap *heaps,
                                        double *inverse_norms, int planes, int64_t width)
    {
        const int64_t row_bytes = planes * width;
        const int64_t block = gb_block_rows(s);
        const int add = s->mode == GB_MODE_ADD;
        for (int64_t block_start = 0; block_start < s->nrows; block_start += block) {
            const int64_t block_end = block_start + block < s->nrows ? block_start + block : s->nrows;
            /* One division a row per block, shared by every query (a division a row and query
             * cost more than the popcounts). */
            for (int64_t r = block_start; r < block_end; r++) {
                inverse_norms[r - block_start] = 1.0 / (s->row_norm ? (double)s->row_norm[r] : s->norm);
            }
            for (int64_t q = q0; q < q1; q++) {
                const int64_t t0 = s->term_start[q], t1 = s->term_start[q + 1];
                const int64_t *excluded = s->excluded + s->exclude_start[q];
                const int64_t nexcluded = s->exclude_start[q + 1] - s->exclude_start[q];
                gb_heap *heap = s->k ? heaps + (q - q0) : NULL;
                double *all = s->k ? NULL : s->out_score + q * s->nrows;
                for (int64_t r = block_start; r < block_end; r++) {
                    const uint8_t *row = s->codes + r * row_bytes;
                    const double inverse_norm = inverse_norms[r - block_start];
                    double sum = 0.0, numerator = 1.0, denominator = 1.0;
                    for (int64_t t = t0; t < t1; t++) {
                        double value;
                        const int64_t table = s->term_table[t];
                        if (table >= 0) {
                            const double *entries = s->tables + table * row_bytes * 256;
                            value = s->table_constant[table];
                            for (int64_t b = 0; b < row_bytes; b++) value += entries[b * 256 + row[b]];
                        } else {
                            const int64_t weighted = gb_weighted_popcount(row, s->term_codes + t * row_bytes, planes, width);
                            value = (double)(s->offset - 2 * weighted) * s->term_weight[t];
                        }
                        if (add) {
                            sum += value;
                        } else {
                            const double shifted = (1.0 + value * inverse_norm) * 0.5;
                            if (s->term_negative[t]) denominator *= shifted; else numerator *= shifted;
                        }
                    }
                    const double score = add ? sum * inverse_norm : numerator / (denominator + s->epsilon);
                    if (all) {
                        all[r] = s->clip ? gb_clip(score) : score;
                    } else if (heap->size < heap->capacity || score > heap->score[0]) {
                        gb_heap_offer(heap, score, s->first_row + r, excluded, nexcluded);
                    }
                }
            }
        }
    }

    /* The widths with their own unrolled copy: plane bytes of d = 50 (GloVe), 64, 100, 128,
     * 200, 256, 300, 400, 512, 800, 1024 at one bit, and the 2-bit planes of d = 200-800. */
    #define GB_HAMMING_CASE(W) case W: gb_scan_hamming_body(s, q0, q1, heaps, limits, W); break;
    #define GB_SINGLE_CASE(P, W) if (planes == P && width == W) { gb_scan_single_body(s, q0, q1, heaps, inverse_norms, P, W); return; }
    #define GB_GENERAL_CASE(P, W) if (planes == P && width == W) { gb_scan_general_body(s, q0, q1, heaps, inverse_norms, P, W); return; }

    #define GB_DEFINE_SCANS(SUFFIX, ATTRIBUTE)                                                       \
    ATTRIBUTE static void gb_scan_hamming_##SUFFIX(const gb_search *s, int64_t q0, int64_t q1,         \
                                                   gb_heap *heaps, int64_t *limits)                  \
    {                                                                                                \
        switch (s->plane_bytes) {                                                                    \
        GB_HAMMING_CASE(4) GB_HAMMING_CASE(7) GB_HAMMING_CASE(8) GB_HAMMING_CASE(13) GB_HAMMING_CASE(16)                \
        GB_HAMMING_CASE(25) GB_HAMMING_CASE(32) GB_HAMMING_CASE(38) GB_HAMMING_CASE(50)              \
        GB_HAMMING_CASE(64) GB_HAMMING_CASE(100) GB_HAMMING_CASE(128)                                \
        default: gb_scan_hamming_body(s, q0, q1, heaps, limits, s->plane_bytes); break;              \
        }                                                                                            \
    }                                                                                                \
    ATTRIBUTE static void gb_scan_single_##SUFFIX(const gb_search *s, int64_t q0, int64_t q1,          \
                                                  gb_heap *heaps, double *inverse_norms)             \
    {                                                                                                \
        const int planes = s->planes;                                                                \
        const int64_t width = s->plane_bytes;                                                        \
        GB_SINGLE_CASE(1, 32) GB_SINGLE_CASE(1, 100)                                                 \
        GB_SINGLE_CASE(2, 7) GB_SINGLE_CASE(2, 25) GB_SINGLE_CASE(2, 32) GB_SINGLE_CASE(2, 50)       \
        GB_SINGLE_CASE(2, 64) GB_SINGLE_CASE(2, 100) GB_SINGLE_CASE(4, 7) GB_SINGLE_CASE(4, 25)      \
        if (planes == 1) { gb_scan_single_body(s, q0, q1, heaps, inverse_norms, 1, width); return; }  \
        if (planes == 2) { gb_scan_single_body(s, q0, q1, heaps, inverse_norms, 2, width); return; }  \
        gb_scan_single_body(s, q0, q1, heaps, inverse_norms, planes, width);                         \
    }                                                                                                \
    ATTRIBUTE static void gb_scan_general_##SUFFIX(const gb_search *s, int64_t q0, int64_t q1,         \
                                                   gb_heap *heaps, double *inverse_norms)            \
    {                                                                                                \
        const int planes = s->planes;                                                                \
        const int64_t width = s->plane_bytes;                                                        \
        GB_GENERAL_CASE(1, 7) GB_GENERAL_CASE(1, 32) GB_GENERAL_CASE(1, 50) GB_GENERAL_CASE(1, 100)   \
        GB_GENERAL_CASE(1, 128) GB_GENERAL_CASE(2, 7) GB_GENERAL_CASE(2, 64)                          \
        GB_GENERAL_CASE(2, 25) GB_GENERAL_CASE(2, 32) GB_GENERAL_CASE(2, 50) GB_GENERAL_CASE(2, 100) \
        if (planes == 1) { gb_scan_general_body(s, q0, q1, heaps, inverse_norms, 1, width); return; } \
        if (planes == 2) { gb_scan_general_body(s, q0, q1, heaps, inverse_norms, 2, width); return; } \
        gb_scan_general_body(s, q0, q1, heaps, inverse_norms, planes, width);                        \
    }

    #if (defined(__GNUC__) || defined(__clang__)) && !defined(GENSIM_BITS_PLAIN_POPCOUNT) && (defined(__x86_64__) || defined(__i386__))
    GB_DEFINE_SCANS(popcnt, __attribute__((target("popcnt"))))
    #define GB_HAVE_POPCNT_DISPATCH 1
    #endif
    GB_DEFINE_SCANS(portable, )

    static int gb_use_popcnt(void)
    {
    #ifdef GB_HAVE_POPCNT_DISPATCH
        static int cached = -1;
        if (cached < 0) cached = __builtin_cpu_supports("popcnt") ? 1 : 0;
        return cached;
    #else
        return 0;
    #endif
    }

    static const char *gb_instruction_set(void) { return gb_use_popcnt() ? "popcnt" : "portable"; }

    /* Is every query a single positive 1-bit code term of an "add" search? */
    static int gb_hamming_eligible(const gb_search *s, int64_t q0, int64_t q1)
    {
        if (s->planes != 1 || s->mode != GB_MODE_ADD || s->k == 0 || s->row_norm != NULL || !(s->norm > 0)) return 0;
        for (int64_t q = q0; q < q1; q++) {
            const int64_t t = s->term_start[q];
            if (s->term_start[q + 1] != t + 1 || s->term_table[t] >= 0 || !(s->term_weight[t] > 0)) return 0;
        }
        return 1;
    }

    /* Is every query a single code term of an "add" top-k search? */
    static int gb_single_eligible(const gb_search *s, int64_t q0, int64_t q1)
    {
        if (s->mode != GB_MODE_ADD || s->k == 0) return 0;
        for (int64_t q = q0; q < q1; q++) {
            const int64_t t = s->term_start[q];
            if (s->term_start[q + 1] != t + 1 || s->term_table[t] >= 0) return 0;
        }
        return 1;
    }

    /* Queries [q0, q1). Returns 0, or -1 when memory runs out. */
    static int gb_search_run(const gb_search *s, int64_t q0, int64_t q1)
    {
        const int64_t count = q1 - q0;
        if (count <= 0) return 0;
        gb_heap *heaps = NULL;
        int64_t *limits = NULL;
        if (s->k) {
            heaps = (gb_heap *)malloc(sizeof(gb_heap) * count);
            limits = (int64_t *)malloc(sizeof(int64_t) * count);
            if (!heaps || !limits) { free(heaps); free(limits); return -1; }
            gb_heaps_init(heaps, s->out_score + q0 * s->k, s->out_row + q0 * s->k, count, s->k);
        }
        const int popcnt = gb_use_popcnt();
        if (gb_hamming_eligible(s, q0, q1)) {
    #ifdef GB_HAVE_POPCNT_DISPATCH
            if (popcnt) gb_scan_hamming_popcnt(s, q0, q1, heaps, limits); else
    #endif
            gb_scan_hamming_portable(s, q0, q1, heaps, limits);
            for (int64_t q = 0; q < count; q++) {
                double *scores = s->out_score + (q0 + q) * s->k;
                gb_heap_drain(heaps + q, scores, s->out_row + (q0 + q) * s->k);
                const double weight = s->term_weight[s->term_start[q0 + q]];
                for (int64_t slot = 0; slot < s->k; slot++) {
                    if (s->out_row[(q0 + q) * s->k + slot] >= 0) {
                        scores[slot] = ((double)(s->offset + 2 * (int64_t)scores[slot]) * weight) * (1.0 / s->norm);
                    }
                }
            }
        } else {
            double *inverse_norms = (double *)malloc(sizeof(double) * gb_block_rows(s));
            if (!inverse_norms) { free(heaps); free(limits); return -1; }
            if (gb_single_eligible(s, q0, q1)) {
    #ifdef GB_HAVE_POPCNT_DISPATCH
                if (popcnt) gb_scan_single_popcnt(s, q0, q1, heaps, inverse_norms); else
    #endif
                gb_scan_single_portable(s, q0, q1, heaps, inverse_norms);
            } else {
    #ifdef GB_HAVE_POPCNT_DISPATCH
                if (popcnt) gb_scan_general_popcnt(s, q0, q1, heaps, inverse_norms); else
    #endif
                gb_scan_general_portable(s, q0, q1, heaps, inverse_norms);
            }
            free(inverse_norms);
            for (int64_t q = 0; q < count && s->k; q++) {
                gb_heap_drain(heaps + q, s->out_score + (q0 + q) * s->k, s->out_row + (q0 + q) * s->k);
            }
        }
        if (s->clip && s->k) gb_clip_rows(s->out_score + q0 * s->k, s->out_row + q0 * s->k, count * s->k);
        free(heaps);
        free(limits);
        return 0;
    }

    /* out[r * nqueries + q] = scale * D(row r, query q): every pair, for callers that want all of them. */
    GB_INLINE void gb_packed_dots(const uint8_t *codes, int64_t nrows, const uint8_t *queries, int64_t nqueries,
                               int planes, int64_t plane_bytes, int64_t dimension, double scale, double *out)
    {
        const int64_t row_bytes = planes * plane_bytes;
        const int64_t max_level = ((int64_t)1 << planes) - 1;
        const int64_t offset = dimension * max_level * max_level;
        for (int64_t r = 0; r < nrows; r++) {
            for (int64_t q = 0; q < nqueries; q++) {
                const int64_t weighted = gb_weighted_popcount(codes + r * row_bytes, queries + q * row_bytes, planes, plane_bytes);
                out[r * nqueries + q] = scale * (double)(offset - 2 * weighted);
            }
        }
    }
    #ifdef GB_HAVE_POPCNT_DISPATCH
    __attribute__((target("popcnt"))) static void gb_packed_dots_popcnt(
        const uint8_t *codes, int64_t nrows, const uint8_t *queries, int64_t nqueries,
        int planes, int64_t plane_bytes, int64_t dimension, double scale, double *out)
    {
        gb_packed_dots(codes, nrows, queries, nqueries, planes, plane_bytes, dimension, scale, out);
    }
    #endif
    static void packed_dots(const uint8_t *codes, int64_t nrows, const uint8_t *queries, int64_t nqueries,
                            int planes, int64_t plane_bytes, int64_t dimension, double scale, double *out)
    {
    #ifdef GB_HAVE_POPCNT_DISPATCH
        if (gb_use_popcnt()) {
            gb_packed_dots_popcnt(codes, nrows, queries, nqueries, planes, plane_bytes, dimension, scale, out);
            return;
        }
    #endif
        gb_packed_dots(codes, nrows, queries, nqueries, planes, plane_bytes, dimension, scale, out);
    }

    /* Dot of a float query with every row: out[r] = constant + sum_t table[t][row byte t]. */
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
    ctypedef struct gb_search:
        const uint8_t *codes
        int64_t nrows
        int64_t first_row
        int planes
        int64_t plane_bytes
        int64_t offset
        const float *row_norm
        double norm
        const int64_t *term_start
        const uint8_t *term_codes
        const double *term_weight
        const int8_t *term_negative
        const int64_t *term_table
        const double *tables
        const double *table_constant
        const int64_t *exclude_start
        const int64_t *excluded
        int mode
        double epsilon
        int clip
        int64_t k
        double *out_score
        int64_t *out_row
    int gb_search_run(const gb_search *s, int64_t q0, int64_t q1)
    const char *gb_instruction_set()
    void packed_dots(const uint8_t *codes, int64_t nrows, const uint8_t *queries, int64_t nqueries,
                     int planes, int64_t plane_bytes, int64_t dimension, double scale, double *out)
    void table_dots(const uint8_t *codes, int64_t nrows, int64_t row_bytes,
                    const double *table, double constant, double *out)


MODE_ADD = 0
MODE_MUL = 1


def instruction_set():
    """The popcount the kernel uses on this CPU: ``"popcnt"`` or ``"portable"``."""
    return gb_instruction_set().decode()


cdef cnp.ndarray _EMPTY = np.zeros(8, dtype=np.uint8)


cdef void *_data(cnp.ndarray array, int typenum, int ndim, str name) except NULL:
    """The buffer of a C-contiguous array of type ``typenum`` (a dummy address when empty)."""
    if cnp.PyArray_TYPE(array) != typenum or array.ndim != ndim or not cnp.PyArray_IS_C_CONTIGUOUS(array):
        raise ValueError(f"{name} must be a C-contiguous {ndim}-d {cnp.PyArray_DescrFromType(typenum)} array")
    if array.size == 0:
        return <void *> _EMPTY.data
    return cnp.PyArray_DATA(array)


cdef bint _rising(const int64_t *starts, int64_t count, int64_t total):
    cdef int64_t q
    if starts[0] != 0 or starts[count] != total:
        return False
    for q in range(count):
        if starts[q + 1] < starts[q]:
            return False
    return True


def search_terms(cnp.ndarray codes, int64_t first_row, object row_norm, double norm, int planes,
                 int64_t dimension, cnp.ndarray term_start, cnp.ndarray term_codes,
                 cnp.ndarray term_weight, cnp.ndarray term_negative, cnp.ndarray term_table,
                 cnp.ndarray tables, cnp.ndarray table_constant, cnp.ndarray exclude_start,
                 cnp.ndarray excluded, int mode, double epsilon, int64_t k,
                 cnp.ndarray out_score, cnp.ndarray out_row, bint clip=False):
    """Top-``k`` rows of ``codes`` for every query (or every score when ``k == 0``), GIL released.

    Scores are divided by the row's norm: ``row_norm[r]`` (float32), or ``norm`` for every
    row when ``row_norm`` is None (1 bit).

    ``codes`` (rows, planes * plane_bytes) uint8; query q owns terms
    ``term_start[q]:term_start[q + 1]``: a packed row ``term_codes[t]`` times ``term_weight[t]``,
    or table ``term_table[t]`` (>= 0) of ``tables`` (n, row_bytes * 256) plus
    ``table_constant``. Rows ``excluded[exclude_start[q]:exclude_start[q + 1]]`` (absolute,
    i.e. ``first_row`` + local row) never appear in query q's results. Writes best first into
    ``out_score`` (queries, k) float64 and ``out_row`` (queries, k) int64, -inf / -1 where
    fewer than k rows qualify; with ``clip`` the written scores are clipped to [-1, 1] (after
    selection). Callers in :mod:`gensim_bits.keyedvectors` build these arrays.
    """
    cdef gb_search s
    cdef int64_t queries = term_start.shape[0] - 1 if term_start.ndim == 1 else -1
    cdef int64_t plane_bytes = (dimension + 7) // 8
    cdef int64_t row_bytes = planes * plane_bytes
    cdef int64_t terms, max_level, tabs, t
    cdef int status
    if not 1 <= planes <= 8 or dimension < 1:
        raise ValueError("planes must be 1..8 and dimension >= 1")
    s.codes = <const uint8_t *> _data(codes, cnp.NPY_UINT8, 2, "codes")
    if codes.shape[1] != row_bytes:
        raise ValueError(f"codes must have {row_bytes} bytes a row")
    s.term_start = <const int64_t *> _data(term_start, cnp.NPY_INT64, 1, "term_start")
    s.exclude_start = <const int64_t *> _data(exclude_start, cnp.NPY_INT64, 1, "exclude_start")
    s.term_codes = <const uint8_t *> _data(term_codes, cnp.NPY_UINT8, 2, "term_codes")
    s.term_weight = <const double *> _data(term_weight, cnp.NPY_FLOAT64, 1, "term_weight")
    s.term_negative = <const int8_t *> _data(term_negative, cnp.NPY_INT8, 1, "term_negative")
    s.term_table = <const int64_t *> _data(term_table, cnp.NPY_INT64, 1, "term_table")
    s.tables = <const double *> _data(tables, cnp.NPY_FLOAT64, 2, "tables")
    s.table_constant = <const double *> _data(table_constant, cnp.NPY_FLOAT64, 1, "table_constant")
    s.excluded = <const int64_t *> _data(excluded, cnp.NPY_INT64, 1, "excluded")
    s.out_score = <double *> _data(out_score, cnp.NPY_FLOAT64, 2, "out_score")
    s.out_row = <int64_t *> _data(out_row, cnp.NPY_INT64, 2, "out_row")
    terms = term_weight.shape[0]
    tabs = tables.shape[0]
    # Every offset the C loops follow is checked here, so a wrong call raises instead of crashing.
    if queries < 0 or exclude_start.shape[0] != queries + 1:
        raise ValueError("term_start and exclude_start must have one entry a query plus one")
    if term_codes.shape[0] != terms or term_codes.shape[1] != row_bytes or term_negative.shape[0] != terms \
            or term_table.shape[0] != terms:
        raise ValueError("term arrays disagree in length or width")
    if tables.shape[1] != row_bytes * 256 or table_constant.shape[0] != tabs:
        raise ValueError("tables must have shape (tables, row_bytes * 256) with one constant each")
    if not _rising(s.term_start, queries, terms) or not _rising(s.exclude_start, queries, excluded.shape[0]):
        raise ValueError("term_start and exclude_start must rise from 0 to the number of terms / excluded rows")
    for t in range(terms):
        if s.term_table[t] < -1 or s.term_table[t] >= tabs:
            raise ValueError("term_table entries must be -1 or a table number")
    if k < 0:
        raise ValueError("k must be >= 0")
    width = k if k else codes.shape[0]
    if out_score.shape[0] != queries or out_score.shape[1] != width:
        raise ValueError(f"out_score must have shape ({queries}, {width})")
    if k and (out_row.shape[0] != queries or out_row.shape[1] != k):
        raise ValueError(f"out_row must have shape ({queries}, {k})")
    if row_norm is None:
        s.row_norm = NULL
    else:
        if row_norm.shape[0] != codes.shape[0]:
            raise ValueError("row_norm must have one entry a row")
        s.row_norm = <const float *> _data(<cnp.ndarray?> row_norm, cnp.NPY_FLOAT32, 1, "row_norm")
    if mode not in (MODE_ADD, MODE_MUL):
        raise ValueError("mode must be MODE_ADD or MODE_MUL")
    max_level = (1 << planes) - 1
    s.nrows = codes.shape[0]
    s.first_row = first_row
    s.planes = planes
    s.plane_bytes = plane_bytes
    s.offset = dimension * max_level * max_level
    s.norm = norm
    s.mode = mode
    s.epsilon = epsilon
    s.clip = clip
    s.k = k
    with nogil:
        status = gb_search_run(&s, 0, queries)
    if status != 0:
        raise MemoryError("out of memory for the top-k heaps")


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
