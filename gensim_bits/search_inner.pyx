# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Exact top-k search on bit-packed Word2Bits codes (Lam 2018, section 3; the XOR-popcount
dot product of binary codes). Only the hot loops live here, as C in the extern block below
(GCC or Clang), run without the GIL; :mod:`gensim_bits.packing` and
:class:`gensim_bits.QuantizedKeyedVectors` check arguments, build the query terms and split
the work over threads.
"""
from numbers import Integral

import numpy as np

cimport numpy as cnp
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.math cimport fabs, isfinite, sqrt
from libc.string cimport memcmp, memcpy, memmove

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

    /* ------------------------------------------------------------ blocked Hamming distances
     *
     * Distances of GB_CHUNK rows to one query, several rows a step in vector registers. At
     * 32 bytes (d = 256) AVX2, which has no vector popcount, takes each byte's count from a
     * 16-entry nibble table (vpshufb), vpsadbw sums them in four 64-bit lanes a row, and a
     * 4 x 4 transpose-add leaves one count a row; AVX-512 VPOPCNTDQ counts two rows a
     * register directly and an 8-row transpose-add finishes. AVX-512 also serves any width
     * from 16 bytes (d = 800: 100 bytes, its own inlined copy). All give the exact counts of
     * the scalar loop, chosen at run time (gb_isa) like the POPCNT build. */
    #define GB_CHUNK 64  /* rows scored into a buffer before any is offered to the heap */
    typedef int32_t (*gb_distances_fn)(const uint8_t *rows, const uint8_t *query, int32_t *out, int64_t width);

    #define GB_ISA_PORTABLE 0
    #define GB_ISA_POPCNT 1
    #define GB_ISA_AVX2 2
    #define GB_ISA_AVX512 3
    static const char *gb_isa_names[] = {"portable", "popcnt", "avx2", "avx512"};

    #if (defined(__GNUC__) || defined(__clang__)) && !defined(GENSIM_BITS_PLAIN_POPCOUNT) && defined(__x86_64__)
    #define GB_HAVE_SIMD_DISPATCH 1
    #include <immintrin.h>

    __attribute__((target("avx2"))) static int32_t gb_distances32_avx2(const uint8_t *rows, const uint8_t *query,
                                                                        int32_t *out, int64_t width)
    {
        __m128i lowest = _mm_set1_epi32(INT32_MAX);
        const __m256i q = _mm256_loadu_si256((const __m256i *)query);
        const __m256i table = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                               0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
        const __m256i nibble = _mm256_set1_epi8(0x0f);
        const __m256i zero = _mm256_setzero_si256();
        const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
        for (int r = 0; r < GB_CHUNK; r += 4) {
            __m256i sums[4];
            for (int i = 0; i < 4; i++) {
                const __m256i x = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(rows + (r + i) * 32)), q);
                const __m256i counts = _mm256_add_epi8(
                    _mm256_shuffle_epi8(table, _mm256_and_si256(x, nibble)),
                    _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(x, 4), nibble)));
                sums[i] = _mm256_sad_epu8(counts, zero);  /* 4 partial sums of 8 bytes */
            }
            /* lane l of t01: [row0 parts 2l + 2l+1, row1 parts 2l + 2l+1] */
            const __m256i t01 = _mm256_add_epi64(_mm256_unpacklo_epi64(sums[0], sums[1]),
                                                 _mm256_unpackhi_epi64(sums[0], sums[1]));
            const __m256i t23 = _mm256_add_epi64(_mm256_unpacklo_epi64(sums[2], sums[3]),
                                                 _mm256_unpackhi_epi64(sums[2], sums[3]));
            const __m256i total = _mm256_add_epi64(_mm256_permute2x128_si256(t01, t23, 0x20),
                                                   _mm256_permute2x128_si256(t01, t23, 0x31));
            const __m128i distances = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(total, even));
            _mm_storeu_si128((__m128i *)(out + r), distances);
            lowest = _mm_min_epi32(lowest, distances);
        }
        lowest = _mm_min_epi32(lowest, _mm_shuffle_epi32(lowest, _MM_SHUFFLE(1, 0, 3, 2)));
        lowest = _mm_min_epi32(lowest, _mm_shuffle_epi32(lowest, _MM_SHUFFLE(2, 3, 0, 1)));
        return _mm_cvtsi128_si32(lowest);
    }

    __attribute__((target("avx2"))) static inline int32_t gb_min8_avx2(__m256i values)
    {
        __m128i lowest = _mm_min_epi32(_mm256_castsi256_si128(values), _mm256_extracti128_si256(values, 1));
        lowest = _mm_min_epi32(lowest, _mm_shuffle_epi32(lowest, _MM_SHUFFLE(1, 0, 3, 2)));
        lowest = _mm_min_epi32(lowest, _mm_shuffle_epi32(lowest, _MM_SHUFFLE(2, 3, 0, 1)));
        return _mm_cvtsi128_si32(lowest);
    }

    __attribute__((target("avx512f,avx512vpopcntdq"))) static int32_t gb_distances32_avx512(
        const uint8_t *rows, const uint8_t *query, int32_t *out, int64_t width)
    {
        __m256i lowest = _mm256_set1_epi32(INT32_MAX);
        const __m512i q = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)query));
        const __m512i order = _mm512_setr_epi64(0, 2, 1, 3, 4, 6, 5, 7);
        for (int r = 0; r < GB_CHUNK; r += 8) {
            const uint8_t *p = rows + r * 32;
            const __m512i a = _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512((const void *)p), q));
            const __m512i b = _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512((const void *)(p + 64)), q));
            const __m512i c = _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512((const void *)(p + 128)), q));
            const __m512i d = _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512((const void *)(p + 192)), q));
            /* 128-bit lanes of ab: [r0 q0+q1, r2 q0+q1], [r0 q2+q3, r2 q2+q3], [r1 ..., r3 ...], [r1, r3] */
            const __m512i ab = _mm512_add_epi64(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
            const __m512i cd = _mm512_add_epi64(_mm512_unpacklo_epi64(c, d), _mm512_unpackhi_epi64(c, d));
            const __m512i total = _mm512_add_epi64(_mm512_shuffle_i64x2(ab, cd, _MM_SHUFFLE(2, 0, 2, 0)),
                                                   _mm512_shuffle_i64x2(ab, cd, _MM_SHUFFLE(3, 1, 3, 1)));
            /* total holds rows 0 2 1 3 4 6 5 7 */
            const __m256i distances = _mm512_cvtepi64_epi32(_mm512_permutexvar_epi64(order, total));
            _mm256_storeu_si256((__m256i *)(out + r), distances);
            lowest = _mm256_min_epi32(lowest, distances);
        }
        return gb_min8_avx2(lowest);
    }

    /* Any width of at least 16 bytes (d = 800: 100 bytes): 64 bytes a step, the last ones
     * through a masked load (no read past the row), 8 rows summed side by side, then the
     * same kind of transpose-add leaves one count a row. Up to 128 bytes the query stays in
     * two registers; the body is inlined with a constant width for d = 800. */
    #define GB_AVX512 __attribute__((target("avx512f,avx512bw,avx512vpopcntdq")))
    GB_AVX512 static inline __attribute__((always_inline)) __m512i gb_row_counts_avx512(
        const uint8_t *row, const uint8_t *query, __m512i q0, __m512i q1, int64_t width)
    {
        if (width <= 128) {
            const __mmask64 low = width >= 64 ? ~0ULL : (~0ULL >> (64 - width));
            const __mmask64 high = width >= 128 ? ~0ULL : (width > 64 ? (~0ULL >> (128 - width)) : 0);
            __m512i sum = _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_maskz_loadu_epi8(low, row), q0));
            if (width > 64) {
                sum = _mm512_add_epi64(sum, _mm512_popcnt_epi64(_mm512_xor_si512(
                    _mm512_maskz_loadu_epi8(high, row + 64), q1)));
            }
            return sum;
        }
        const int64_t full = width / 64, tail = width % 64;
        __m512i sum = _mm512_setzero_si512();
        for (int64_t c = 0; c < full; c++) {
            sum = _mm512_add_epi64(sum, _mm512_popcnt_epi64(_mm512_xor_si512(
                _mm512_loadu_si512((const void *)(row + 64 * c)), _mm512_loadu_si512((const void *)(query + 64 * c)))));
        }
        if (tail) {
            const __mmask64 mask = ~0ULL >> (64 - tail);
            sum = _mm512_add_epi64(sum, _mm512_popcnt_epi64(_mm512_xor_si512(
                _mm512_maskz_loadu_epi8(mask, row + 64 * full), _mm512_maskz_loadu_epi8(mask, query + 64 * full))));
        }
        return sum;
    }

    GB_AVX512 static inline __attribute__((always_inline)) int32_t gb_distances_avx512_body(
        const uint8_t *rows, const uint8_t *query, int32_t *out, int64_t width)
    {
        __m512i q0 = _mm512_setzero_si512(), q1 = _mm512_setzero_si512();
        if (width <= 128) {
            q0 = _mm512_maskz_loadu_epi8(width >= 64 ? ~0ULL : (~0ULL >> (64 - width)), query);
            if (width > 64) q1 = _mm512_maskz_loadu_epi8(width >= 128 ? ~0ULL : (~0ULL >> (128 - width)), query + 64);
        }
        __m256i lowest = _mm256_set1_epi32(INT32_MAX);
        for (int r = 0; r < GB_CHUNK; r += 8) {
            __m512i sums[8];
            for (int i = 0; i < 8; i++) sums[i] = gb_row_counts_avx512(rows + (r + i) * width, query, q0, q1, width);
            /* pairs: [A_l, B_l] in 128-bit lane l; then lanes 0+1, 2+3; then the halves */
            __m512i pairs[4], quads[2];
            for (int i = 0; i < 4; i++) {
                pairs[i] = _mm512_add_epi64(_mm512_unpacklo_epi64(sums[2 * i], sums[2 * i + 1]),
                                            _mm512_unpackhi_epi64(sums[2 * i], sums[2 * i + 1]));
            }
            for (int i = 0; i < 2; i++) {
                quads[i] = _mm512_add_epi64(_mm512_shuffle_i64x2(pairs[2 * i], pairs[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                                            _mm512_shuffle_i64x2(pairs[2 * i], pairs[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
            }
            const __m512i total = _mm512_add_epi64(_mm512_shuffle_i64x2(quads[0], quads[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                                   _mm512_shuffle_i64x2(quads[0], quads[1], _MM_SHUFFLE(3, 1, 3, 1)));
            const __m256i distances = _mm512_cvtepi64_epi32(total);
            _mm256_storeu_si256((__m256i *)(out + r), distances);
            lowest = _mm256_min_epi32(lowest, distances);
        }
        return gb_min8_avx2(lowest);
    }

    GB_AVX512 static int32_t gb_distances100_avx512(const uint8_t *rows, const uint8_t *query, int32_t *out, int64_t width)
    {
        return gb_distances_avx512_body(rows, query, out, 100);
    }

    GB_AVX512 static int32_t gb_distances_avx512(const uint8_t *rows, const uint8_t *query, int32_t *out, int64_t width)
    {
        return gb_distances_avx512_body(rows, query, out, width);
    }
    #endif

    static int gb_isa_forced = -1;

    /* The best instruction set this CPU runs (cached). */
    static int gb_isa_best(void)
    {
        static int cached = -1;
        if (cached >= 0) return cached;
        int best = GB_ISA_PORTABLE;
    #if (defined(__GNUC__) || defined(__clang__)) && !defined(GENSIM_BITS_PLAIN_POPCOUNT) && (defined(__x86_64__) || defined(__i386__))
        __builtin_cpu_init();
        if (__builtin_cpu_supports("popcnt")) best = GB_ISA_POPCNT;
    #endif
    #ifdef GB_HAVE_SIMD_DISPATCH
        if (best == GB_ISA_POPCNT && __builtin_cpu_supports("avx2")) best = GB_ISA_AVX2;
        if (best == GB_ISA_AVX2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vpopcntdq"))
            best = GB_ISA_AVX512;
    #endif
        cached = best;
        return best;
    }

    /* The instruction set in use: the best, unless a lower one was chosen (tests, benchmarks). */
    static int gb_isa(void) { return gb_isa_forced >= 0 ? gb_isa_forced : gb_isa_best(); }

    /* The blocked distance routine for rows of `width` bytes in the instruction set in use,
     * or NULL for the scalar loop. */
    static gb_distances_fn gb_distances_for(int64_t width)
    {
    #ifdef GB_HAVE_SIMD_DISPATCH
        const int isa = gb_isa();
        if (width == 32 && isa == GB_ISA_AVX512) return gb_distances32_avx512;
        if (width == 32 && isa == GB_ISA_AVX2) return gb_distances32_avx2;
        if (width == 100 && isa == GB_ISA_AVX512) return gb_distances100_avx512;
        if (width >= 16 && isa == GB_ISA_AVX512) return gb_distances_avx512;
    #endif
        return NULL;
    }

    /* 1 bit, one code term of positive weight a query: rank by Hamming distance.
     * score = ((double)(d - 2 h) * weight) * (1 / norm), the same expression as the general path.
     * Distances of GB_CHUNK rows go to a small buffer first (a tight loop), then their minimum
     * (vectorized) decides whether any of them can enter the top-k: after the first few
     * thousand rows almost no chunk can, and the branchy heap code is skipped. */
    GB_INLINE void gb_scan_hamming_body(const gb_search *s, int64_t q0, int64_t q1, gb_heap *heaps,
                                        int64_t *limits, int64_t width, gb_distances_fn blocked)
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
                    if (blocked != NULL && rows == GB_CHUNK) {
                        lowest = blocked(row, query, distances, width);
                    } else if (rows == GB_CHUNK) {
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
    #define GB_HAMMING_CASE(W) case W: gb_scan_hamming_body(s, q0, q1, heaps, limits, W, blocked); break;
    #define GB_SINGLE_CASE(P, W) if (planes == P && width == W) { gb_scan_single_body(s, q0, q1, heaps, inverse_norms, P, W); return; }
    #define GB_GENERAL_CASE(P, W) if (planes == P && width == W) { gb_scan_general_body(s, q0, q1, heaps, inverse_norms, P, W); return; }

    #define GB_DEFINE_SCANS(SUFFIX, ATTRIBUTE)                                                       \
    ATTRIBUTE static void gb_scan_hamming_##SUFFIX(const gb_search *s, int64_t q0, int64_t q1,         \
                                                   gb_heap *heaps, int64_t *limits,                  \
                                                   gb_distances_fn blocked)                          \
    {                                                                                                \
        switch (s->plane_bytes) {                                                                    \
        GB_HAMMING_CASE(4) GB_HAMMING_CASE(7) GB_HAMMING_CASE(8) GB_HAMMING_CASE(13) GB_HAMMING_CASE(16)                \
        GB_HAMMING_CASE(25) GB_HAMMING_CASE(32) GB_HAMMING_CASE(38) GB_HAMMING_CASE(50)              \
        GB_HAMMING_CASE(64) GB_HAMMING_CASE(100) GB_HAMMING_CASE(128)                                \
        default: gb_scan_hamming_body(s, q0, q1, heaps, limits, s->plane_bytes, blocked); break;     \
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
        return gb_isa() >= GB_ISA_POPCNT;
    #else
        return 0;
    #endif
    }

    static const char *gb_instruction_set(void) { return gb_isa_names[gb_isa()]; }

    /* Use instruction set `isa` (a GB_ISA_* at most the best), or the best for -1; 0 if not available. */
    static int gb_choose_instruction_set(int isa)
    {
        if (isa > gb_isa_best()) return 0;
        gb_isa_forced = isa;
        return 1;
    }

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
            if (popcnt) gb_scan_hamming_popcnt(s, q0, q1, heaps, limits, gb_distances_for(s->plane_bytes)); else
    #endif
            gb_scan_hamming_portable(s, q0, q1, heaps, limits, NULL);
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
    enum:
        GB_MODE_ADD
        GB_MODE_MUL
    int gb_search_run(const gb_search *s, int64_t q0, int64_t q1)
    int64_t gb_weighted_popcount(const uint8_t *row, const uint8_t *query, int planes, int64_t width)
    const char *gb_instruction_set()
    int gb_choose_instruction_set(int isa)
    int gb_isa_best()
    const char *gb_isa_names[4]
    void packed_dots(const uint8_t *codes, int64_t nrows, const uint8_t *queries, int64_t nqueries,
                     int planes, int64_t plane_bytes, int64_t dimension, double scale, double *out)
    void table_dots(const uint8_t *codes, int64_t nrows, int64_t row_bytes,
                    const double *table, double constant, double *out)


MODE_ADD = 0
MODE_MUL = 1


INSTRUCTION_SETS = ("portable", "popcnt", "avx2", "avx512")


def instruction_set():
    """The instruction set the kernel uses: ``"portable"``, ``"popcnt"`` (scalar POPCNT),
    ``"avx2"`` or ``"avx512"`` (VPOPCNTDQ; the vector ones serve 1-bit d = 256 Hamming scans)."""
    return gb_instruction_set().decode()


def available_instruction_sets():
    """The instruction sets this CPU and build can run, lowest first."""
    return INSTRUCTION_SETS[:gb_isa_best() + 1]


def use_instruction_set(name=None):
    """Make the kernel use ``name`` (one of :func:`available_instruction_sets`), or the best
    for None; returns the previous one. For comparing the paths in tests and benchmarks:
    every path gives the same results."""
    previous = instruction_set()
    if name is None:
        gb_choose_instruction_set(-1)
    elif name not in INSTRUCTION_SETS or not gb_choose_instruction_set(INSTRUCTION_SETS.index(name)):
        raise ValueError(f"instruction set {name!r} is not available here; choose from {available_instruction_sets()}")
    return previous


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


cdef extern from "Python.h":
    object PyUnicode_DecodeUTF8(const char *data, Py_ssize_t size, const char *errors)


cdef double _safe_norm(const double *vector, int64_t count) noexcept nogil:
    """Euclidean norm, each value divided by the largest first (no overflow or underflow in the squares)."""
    cdef double largest = 0.0, total = 0.0
    cdef int64_t element
    for element in range(count):
        largest = fabs(vector[element]) if fabs(vector[element]) > largest else largest
    if largest == 0.0 or not isfinite(largest):
        return largest
    for element in range(count):
        total += (vector[element] / largest) * (vector[element] / largest)
    return largest * sqrt(total)


cdef class PackedIndex:
    """The state every query over one set of packed codes needs, prepared once.

    A single word's ``most_similar`` is then one call here: the word's row (the vocabulary's
    hash table read in C), the kernel on a term that points into the codes (nothing copied),
    and the result list, with no NumPy array built on the way. What Python touches per call
    stays small, which matters because a scan of the codes evicts it from the caches.

    ``vocabulary`` is a :class:`gensim_bits.vocabulary.Vocabulary` (looked up here) or any
    object with ``find(key, default)`` and ``keys_at(rows)`` (looked up through Python).
    """
    cdef readonly object codes
    cdef readonly object vocabulary
    cdef const uint8_t *code_data
    cdef readonly int64_t nrows
    cdef readonly int planes
    cdef readonly int64_t dimension
    cdef int64_t plane_bytes, row_bytes, offset
    cdef object norms_ref
    cdef const float *row_norm
    cdef double norm
    cdef double unit_squared
    cdef bint compact
    cdef object text_ref, offsets_ref, hashes_ref, order_ref
    cdef const char *text
    cdef const uint32_t *offsets32
    cdef const int64_t *offsets64
    cdef const uint64_t *hashes
    cdef const int32_t *order32
    cdef const int64_t *order64
    cdef int64_t nhashes
    cdef double level_values[256]
    cdef double cancelled

    def __init__(self, cnp.ndarray codes, int planes, int64_t dimension, object row_norm, double norm,
                 double unit_squared, object vocabulary, levels, double cancelled):
        if not 1 <= planes <= 8 or dimension < 1:
            raise ValueError("planes must be 1..8 and dimension >= 1")
        self.codes = codes
        self.planes = planes
        self.dimension = dimension
        self.plane_bytes = (dimension + 7) // 8
        self.row_bytes = planes * self.plane_bytes
        self.code_data = <const uint8_t *> _data(codes, cnp.NPY_UINT8, 2, "codes")
        if codes.shape[1] != self.row_bytes:
            raise ValueError(f"codes must have {self.row_bytes} bytes a row")
        self.nrows = codes.shape[0]
        self.offset = dimension * ((1 << planes) - 1) * ((1 << planes) - 1)
        self.norm = norm
        self.unit_squared = unit_squared
        self.cancelled = cancelled
        if len(levels) != 1 << planes:
            raise ValueError(f"levels must have {1 << planes} values")
        for position in range(1 << planes):
            self.level_values[position] = levels[position]
        self.norms_ref = row_norm
        if row_norm is None:
            self.row_norm = NULL
        else:
            if row_norm.shape[0] != self.nrows:
                raise ValueError("row_norm must have one entry a row")
            self.row_norm = <const float *> _data(<cnp.ndarray?> row_norm, cnp.NPY_FLOAT32, 1, "row_norm")
        self.vocabulary = vocabulary
        self.compact = False
        text = getattr(vocabulary, "text", None)
        if isinstance(text, bytes) and hasattr(vocabulary, "_hashes"):
            offsets, hashes, order = vocabulary.offsets, vocabulary._hashes, vocabulary._order
            if len(offsets) != self.nrows + 1 or len(hashes) != self.nrows or len(order) != self.nrows:
                raise ValueError("the vocabulary and the codes disagree in length")
            self.text_ref, self.offsets_ref, self.hashes_ref, self.order_ref = text, offsets, hashes, order
            self.text = <const char *> text
            self.offsets32 = <const uint32_t *> _data(offsets, cnp.NPY_UINT32, 1, "offsets") \
                if offsets.dtype == np.uint32 else NULL
            self.offsets64 = NULL if self.offsets32 != NULL else \
                <const int64_t *> _data(offsets, cnp.NPY_INT64, 1, "offsets")
            self.hashes = <const uint64_t *> _data(hashes, cnp.NPY_UINT64, 1, "hashes")
            self.order32 = <const int32_t *> _data(order, cnp.NPY_INT32, 1, "order") \
                if order.dtype == np.int32 else NULL
            self.order64 = NULL if self.order32 != NULL else <const int64_t *> _data(order, cnp.NPY_INT64, 1, "order")
            self.nhashes = len(hashes)
            self.compact = True

    cdef inline int64_t _text_start(self, int64_t row) noexcept:
        return self.offsets32[row] if self.offsets32 != NULL else self.offsets64[row]

    cdef int64_t _find(self, object word) except -2:
        """Row of ``word``, or -1 (the lookup of ``Vocabulary.find``, in C)."""
        cdef bytes data
        cdef uint64_t wanted
        cdef int64_t low, high, middle, row, start, length
        if not self.compact:
            return self.vocabulary.find(word, -1)
        if not isinstance(word, str):
            return -1
        try:
            data = (<str> word).encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates cannot be in the vocabulary
            return -1
        # Vocabulary hashes words with Python's bytes hash, masked to 64 bits.
        wanted = <uint64_t> hash(data)
        length = len(data)
        low, high = 0, self.nhashes
        while low < high:
            middle = (low + high) >> 1
            if self.hashes[middle] < wanted:
                low = middle + 1
            else:
                high = middle
        while low < self.nhashes and self.hashes[low] == wanted:
            row = self.order32[low] if self.order32 != NULL else self.order64[low]
            start = self._text_start(row)
            if self._text_start(row + 1) - start == length and memcmp(self.text + start, <const char *> data, length) == 0:
                return row
            low += 1
        return -1

    def find(self, word):
        """Row of ``word`` in the vocabulary, or -1."""
        return self._find(word)

    def rows_of(self, keys):
        """Rows (int64) of ``keys``: words, or int row numbers as gensim accepts; KeyError names a missing key."""
        cdef Py_ssize_t count = len(keys), position
        cdef int64_t row
        rows = np.empty(count, dtype=np.int64)
        cdef int64_t[::1] out = rows
        for position in range(count):
            key = keys[position]
            row = self._find(key)
            out[position] = row if row >= 0 else self._row_number(key)
        return rows

    cdef int64_t _row_number(self, key) except -1:
        """A key not in the vocabulary: an int row number, as ``QuantizedKeyedVectors.get_index`` accepts."""
        if isinstance(key, Integral) and 0 <= key < self.nrows:
            return int(key)
        raise KeyError(f"Key '{key}' not present")

    cdef object _key(self, int64_t row):
        cdef int64_t start
        if self.compact:
            start = self._text_start(row)
            return PyUnicode_DecodeUTF8(self.text + start, self._text_start(row + 1) - start, NULL)
        return self.vocabulary[row]

    cdef int64_t _clamp(self, int64_t topn, int64_t *start, int64_t *end) noexcept:
        """Clamp ``start:end`` to the rows (``end`` -1: every row); returns ``topn`` clipped to them."""
        if end[0] < 0 or end[0] > self.nrows:
            end[0] = self.nrows
        start[0] = 0 if start[0] < 0 else (end[0] if start[0] > end[0] else start[0])
        return topn if topn < end[0] - start[0] else end[0] - start[0]

    cdef double word_weight(self, int64_t row) noexcept nogil:
        """A word's term weight in popcount units: its unit vector (as ``_word_terms`` computes it)."""
        return self.unit_squared * (1.0 / (<double> self.row_norm[row] if self.row_norm != NULL else self.norm)) / 1.0

    cdef void _describe(self, gb_search *s, int64_t start, int64_t end, const int64_t *term_start,
                        const uint8_t *term_codes, const double *weights, const int8_t *negative,
                        const int64_t *tables, const int64_t *exclude_start, const int64_t *excluded, int64_t k,
                        double *out_score, int64_t *out_row) noexcept nogil:
        """Fill ``s`` for "add" queries of code terms over rows ``start:end``, cosines clipped."""
        s.codes = self.code_data + start * self.row_bytes
        s.nrows = end - start
        s.first_row = start
        s.planes = self.planes
        s.plane_bytes = self.plane_bytes
        s.offset = self.offset
        s.row_norm = NULL if self.row_norm == NULL else self.row_norm + start
        s.norm = self.norm
        s.term_start = term_start
        s.term_codes = term_codes
        s.term_weight = weights
        s.term_negative = negative
        s.term_table = tables
        s.tables = NULL
        s.table_constant = NULL
        s.exclude_start = exclude_start
        s.excluded = excluded
        s.mode = GB_MODE_ADD
        s.epsilon = 0.0
        s.clip = True
        s.k = k
        s.out_score = out_score
        s.out_row = out_row

    cdef int _search(self, const uint8_t *term_codes, const double *weights, const int8_t *negative,
                     const int64_t *tables, int64_t nterms, const int64_t *excluded, int64_t nexcluded,
                     int64_t start, int64_t end, int64_t k, double *out_score, int64_t *out_row) noexcept nogil:
        """One query of ``nterms`` code terms over rows ``start:end``; 0, or -1 without memory."""
        cdef gb_search s
        cdef int64_t term_start[2]
        cdef int64_t exclude_start[2]
        term_start[0], term_start[1] = 0, nterms
        exclude_start[0], exclude_start[1] = 0, nexcluded
        self._describe(&s, start, end, term_start, term_codes, weights, negative, tables, exclude_start, excluded,
                       k, out_score, out_row)
        return gb_search_run(&s, 0, 1)

    cdef list _neighbours(self, const double *scores, const int64_t *rows, int64_t k):
        cdef int64_t slot, count = 0
        while count < k and rows[count] >= 0:
            count += 1
        if not self.compact:
            found = np.asarray(<int64_t[:count]> rows) if count else np.zeros(0, dtype=np.int64)
            return list(zip(self.vocabulary.keys_at(found), [scores[slot] for slot in range(count)]))
        return [(self._key(rows[slot]), scores[slot]) for slot in range(count)]

    def most_similar_word(self, word, int64_t topn, int64_t start=0, int64_t end=-1):
        """gensim's ``most_similar(word, topn)`` over rows ``start:end`` (``end`` -1: every row).

        The same scores, in the same order, as the general path (the query is the word's unit
        vector, the word itself excluded); ``topn`` is clipped to the rows searched.
        """
        cdef int64_t row = self._find(word)
        cdef int64_t k, status
        cdef double weight
        cdef int8_t negative = 0
        cdef int64_t table = -1
        cdef double *scores
        cdef int64_t *rows
        if row < 0:
            row = self._row_number(word)
        k = self._clamp(topn, &start, &end)
        if k <= 0:
            return []
        weight = self.word_weight(row)
        scores = <double *> malloc(k * (sizeof(double) + sizeof(int64_t)))
        if scores == NULL:
            raise MemoryError("out of memory for the top-k heap")
        rows = <int64_t *> (scores + k)
        try:
            with nogil:
                status = self._search(self.code_data + row * self.row_bytes, &weight, &negative, &table, 1,
                                      &row, 1, start, end, k, scores, rows)
            if status != 0:
                raise MemoryError("out of memory for the top-k heap")
            return self._neighbours(scores, rows, k)
        finally:
            free(scores)

    def top_of_row(self, int64_t row, double[::1] out_score, int64_t[::1] out_row):
        """The kernel alone: the ``len(out_score)`` best rows for row ``row``'s word (itself
        excluded), written best first into the given arrays; nothing is looked up or built.
        ``most_similar_word`` is this plus the key lookup and the result list."""
        cdef int64_t k = out_score.shape[0], status
        cdef double weight
        cdef int8_t negative = 0
        cdef int64_t table = -1
        if not 0 <= row < self.nrows:
            raise IndexError(f"row {row} out of range for {self.nrows} rows")
        if out_row.shape[0] != k or not 0 < k <= self.nrows:
            raise ValueError(f"out_score and out_row must have the same length, 1 to {self.nrows}")
        weight = self.word_weight(row)
        with nogil:
            status = self._search(self.code_data + row * self.row_bytes, &weight, &negative, &table, 1,
                                  &row, 1, 0, self.nrows, k, &out_score[0], &out_row[0])
        if status != 0:
            raise MemoryError("out of memory for the top-k heap")

    cdef void _accumulate_mean(self, const int64_t *rows, const double *weights, int64_t nterms,
                               double *mean) noexcept nogil:
        """mean += sum_t weights[t] * (unit vector of row rows[t]), element by element in float64."""
        cdef int64_t term, element, row
        cdef int plane, code
        cdef double coefficient
        cdef const uint8_t *word
        for term in range(nterms):
            row = rows[term]
            word = self.code_data + row * self.row_bytes
            coefficient = weights[term] / (<double> self.row_norm[row] if self.row_norm != NULL else self.norm)
            for element in range(self.dimension):
                code = 0
                for plane in range(self.planes):
                    code |= ((word[plane * self.plane_bytes + (element >> 3)] >> (element & 7)) & 1) << plane
                mean[element] += coefficient * self.level_values[code]

    def add_word_mean(self, int64_t[::1] rows, double[::1] weights, double[::1] mean):
        """``mean += sum_t weights[t] * unit(row rows[t])`` in place; returns the norm of the result
        (scaled against overflow). The same arithmetic as :meth:`most_similar_rows`."""
        cdef int64_t term
        if weights.shape[0] != rows.shape[0] or mean.shape[0] != self.dimension:
            raise ValueError(f"rows and weights must have the same length and mean {self.dimension} values")
        for term in range(rows.shape[0]):
            if not 0 <= rows[term] < self.nrows:
                raise IndexError(f"row {rows[term]} out of range for {self.nrows} rows")
        if rows.shape[0]:
            self._accumulate_mean(&rows[0], &weights[0], rows.shape[0], &mean[0])
        return _safe_norm(&mean[0], self.dimension)

    def most_similar_rows(self, int64_t[::1] rows, double[::1] weights, int64_t topn, int64_t start=0,
                          int64_t end=-1):
        """gensim's ``most_similar`` of words only: rows with weights (+1 positive, -1 negative).

        As :func:`gensim_bits.search.add_mean_query` builds it, in C: the mean of the unit
        vectors (element by element in float64), its norm scaled against overflow, the
        cancelled-query rule, one code term a word, the words themselves excluded.
        """
        cdef int64_t nterms = rows.shape[0], term, element, row, k, status, nexcluded = 0, other
        cdef double mean_norm, magnitude = 0.0, scale
        cdef double *mean
        cdef double *scores
        cdef int64_t *out_rows
        cdef uint8_t *term_codes
        cdef double *term_weight
        cdef int8_t *negative
        cdef int64_t *tables
        cdef int64_t *excluded
        if weights.shape[0] != nterms or nterms == 0:
            raise ValueError("rows and weights must have the same length, at least 1")
        for term in range(nterms):
            if not 0 <= rows[term] < self.nrows:
                raise IndexError(f"row {rows[term]} out of range for {self.nrows} rows")
            if not isfinite(weights[term]):
                raise ValueError(f"query weights must be finite, got {weights[term]}")
        k = self._clamp(topn, &start, &end)
        if k <= 0:
            return []
        buffer = np.empty(self.dimension + 2 * k + 2 * nterms, dtype=np.float64)
        mean = <double *> cnp.PyArray_DATA(buffer)
        scores = mean + self.dimension
        term_weight = scores + k
        out_rows = <int64_t *> (term_weight + nterms)
        excluded = out_rows + k
        index_buffer = np.empty((nterms, self.row_bytes + 9), dtype=np.uint8)
        term_codes = <uint8_t *> cnp.PyArray_DATA(index_buffer)
        negative = <int8_t *> (term_codes + nterms * self.row_bytes)
        table_buffer = np.full(nterms, -1, dtype=np.int64)
        tables = <int64_t *> cnp.PyArray_DATA(table_buffer)
        with nogil:
            for element in range(self.dimension):
                mean[element] = 0.0
            for term in range(nterms):
                magnitude += fabs(weights[term])
            self._accumulate_mean(&rows[0], &weights[0], nterms, mean)
            mean_norm = _safe_norm(mean, self.dimension)
            if mean_norm <= self.cancelled * magnitude:
                mean_norm = 0.0
            scale = 1.0 / mean_norm if mean_norm != 0.0 else 0.0
            for term in range(nterms):
                row = rows[term]
                memcpy(term_codes + term * self.row_bytes, self.code_data + row * self.row_bytes, self.row_bytes)
                term_weight[term] = self.unit_squared * (weights[term] / (
                    <double> self.row_norm[row] if self.row_norm != NULL else self.norm)) / 1.0 * scale
                negative[term] = 0
                # the excluded rows, sorted and without repeats (insertion into a short list)
                other = nexcluded
                while other > 0 and excluded[other - 1] > row:
                    other -= 1
                if other > 0 and excluded[other - 1] == row:
                    continue
                memmove(excluded + other + 1, excluded + other, (nexcluded - other) * sizeof(int64_t))
                excluded[other] = row
                nexcluded += 1
            status = self._search(term_codes, term_weight, negative, tables, nterms, excluded, nexcluded,
                                  start, end, k, scores, out_rows)
        if status != 0:
            raise MemoryError("out of memory for the top-k heap")
        return self._neighbours(scores, out_rows, k)

    cdef tuple _search_single_terms(self, uint8_t *term_codes, double *weights, const int64_t *excluded, int64_t n,
                                    int64_t topn, int64_t start, int64_t end):
        """Queries of one code term each (``excluded[q]``: the row query q leaves out, or NULL).

        Takes ownership of ``term_codes`` and ``weights`` (malloc'd) and frees them."""
        cdef gb_search s
        cdef int64_t q, k, status = 0
        cdef int64_t *starts = NULL
        cdef int64_t *tables = NULL
        cdef int8_t *negative = NULL
        k = self._clamp(topn, &start, &end)
        k = k if k > 0 else 1  # no rows searched: one column of -inf / -1
        scores = np.empty((n, k), dtype=np.float64)
        rows = np.empty((n, k), dtype=np.int64)
        try:
            starts = <int64_t *> malloc((2 * (n + 1) + n) * sizeof(int64_t) + n)
            if starts == NULL:
                raise MemoryError("out of memory for the query terms")
            tables = starts + 2 * (n + 1)
            negative = <int8_t *> (tables + n)
            for q in range(n + 1):
                starts[q] = q
                starts[n + 1 + q] = q if excluded != NULL else 0
            for q in range(n):
                tables[q] = -1
                negative[q] = 0
            self._describe(&s, start, end, starts, term_codes, weights, negative, tables, starts + n + 1,
                           excluded if excluded != NULL else starts, k, <double *> cnp.PyArray_DATA(scores),
                           <int64_t *> cnp.PyArray_DATA(rows))
            if n:
                with nogil:
                    status = gb_search_run(&s, 0, n)
            if status != 0:
                raise MemoryError("out of memory for the top-k heaps")
        finally:
            free(starts)
            free(term_codes)
            free(weights)
        return scores, rows

    cdef int _term_buffers(self, int64_t n, uint8_t **term_codes, double **weights) except -1:
        """malloc the codes and weights of ``n`` one-term queries (freed by _search_single_terms)."""
        term_codes[0] = <uint8_t *> malloc(n * self.row_bytes + 1)
        weights[0] = <double *> malloc(n * sizeof(double) + 1)
        if term_codes[0] == NULL or weights[0] == NULL:
            free(term_codes[0])
            free(weights[0])
            raise MemoryError("out of memory for the query terms")
        return 0

    def search_words(self, const int64_t[::1] rows, int64_t topn, int64_t start=0, int64_t end=-1):
        """Top-``topn`` (float64 scores, int64 rows), shape (len(rows), k), of the words of ``rows``
        over rows ``start:end``, each word left out of its own list: what ``most_similar(word)``
        returns, for a batch, the rows scanned once per block for every query."""
        cdef int64_t n = rows.shape[0], q
        cdef uint8_t *term_codes
        cdef double *weights
        for q in range(n):
            if not 0 <= rows[q] < self.nrows:
                raise IndexError(f"row {rows[q]} out of range for {self.nrows} rows")
        self._term_buffers(n, &term_codes, &weights)
        for q in range(n):
            memcpy(term_codes + q * self.row_bytes, self.code_data + rows[q] * self.row_bytes, self.row_bytes)
            weights[q] = self.word_weight(rows[q])
        return self._search_single_terms(term_codes, weights, &rows[0] if n else NULL, n, topn, start, end)

    def search_word_list(self, list words, int64_t topn):
        """``QuantizedKeyedVectors.search(words, topn, workers=1)`` for a list of str in one
        compiled call: (float32 scores, int64 rows) of shape (len(words), k). None when some
        item is not a str (the caller takes the general path)."""
        cdef Py_ssize_t n = len(words), q
        cdef int64_t row
        for q in range(n):
            if not isinstance(words[q], str):
                return None
        rows = np.empty(n, dtype=np.int64)
        cdef int64_t[::1] found = rows
        for q in range(n):
            row = self._find(words[q])
            found[q] = row if row >= 0 else self._row_number(words[q])
        scores, neighbours = self.search_words(rows, topn)
        return scores.astype(np.float32), neighbours

    def search_codes(self, const uint8_t[:, ::1] codes, int64_t topn, int64_t start=0, int64_t end=-1):
        """Top-``topn`` (float64 scores, int64 rows), shape (len(codes), k), of packed codes as
        queries (cosines; no row left out) over rows ``start:end``, like faiss ``search``.
        Codes with padding bits set are refused (see :mod:`gensim_bits.packing`)."""
        cdef int64_t n = codes.shape[0], q, plane, scaled
        cdef uint8_t padding = (0xFF << (self.dimension % 8)) & 0xFF if self.dimension % 8 else 0
        cdef uint8_t *term_codes
        cdef double *weights
        if codes.shape[1] != self.row_bytes:
            raise ValueError(f"packed queries must have {self.row_bytes} bytes a row, got {codes.shape[1]}")
        for q in range(n):
            for plane in range(self.planes if padding else 0):
                if codes[q, plane * self.plane_bytes + self.plane_bytes - 1] & padding:
                    raise ValueError("packed queries have padding bits set (see gensim_bits.packing)")
        self._term_buffers(n, &term_codes, &weights)
        for q in range(n):
            memcpy(term_codes + q * self.row_bytes, &codes[q, 0], self.row_bytes)
            if self.planes == 1:  # every 1-bit norm is the same
                weights[q] = self.unit_squared * (1.0 / self.norm) / 1.0
            else:  # the exact squared norm, as packing.squared_norms computes it
                scaled = self.offset - 2 * gb_weighted_popcount(&codes[q, 0], &codes[q, 0], self.planes,
                                                                 self.plane_bytes)
                weights[q] = self.unit_squared * (1.0 / sqrt(self.unit_squared * <double> scaled)) / 1.0
        return self._search_single_terms(term_codes, weights, NULL, n, topn, start, end)

    def vector_norms(self, const double[:, ::1] vectors):
        """The norm of every row, each value divided by the row's largest first (no overflow or
        underflow in the squares): the arithmetic of :meth:`add_word_mean`."""
        norms = np.empty(vectors.shape[0], dtype=np.float64)
        cdef double[::1] out = norms
        cdef Py_ssize_t row
        if vectors.shape[1] != self.dimension:
            raise ValueError(f"query vectors must have {self.dimension} values, got {vectors.shape[1]}")
        with nogil:
            for row in range(vectors.shape[0]):
                out[row] = _safe_norm(&vectors[row, 0], self.dimension)
        return norms


def vector_tables(const double[:, ::1] vectors, int planes, int64_t dimension, double unit):
    """Lookup tables (n, planes * ceil(dimension / 8) * 256) of float vectors: entry
    [plane, byte t, value b] is ``2 * unit * 2**plane`` times the sum of the vector over the
    elements whose bit is set in b at byte t. Each sum is built from b without its lowest bit
    (one fixed order of additions); :func:`gensim_bits.packing.vector_tables` adds the constants."""
    cdef int64_t count = vectors.shape[0], width = (dimension + 7) // 8, q, t, element
    cdef int value, lowest, plane
    cdef double ones[256]
    cdef double factor
    cdef double *out
    if vectors.shape[1] != dimension or not 1 <= planes <= 8:
        raise ValueError(f"vectors must have {dimension} values a row and planes 1..8")
    tables = np.empty((count, planes * width * 256), dtype=np.float64)
    cdef double *data = <double *> cnp.PyArray_DATA(tables)
    with nogil:
        for q in range(count):
            for t in range(width):
                ones[0] = 0.0
                for value in range(1, 256):
                    lowest = 0
                    while not (value >> lowest) & 1:
                        lowest += 1
                    element = t * 8 + lowest
                    ones[value] = ones[value & (value - 1)] + (vectors[q, element] if element < dimension else 0.0)
                for plane in range(planes):
                    factor = 2.0 * unit * <double> (1 << plane)
                    out = data + (q * planes + plane) * width * 256 + t * 256
                    for value in range(256):
                        out[value] = ones[value] * factor
    return tables
