# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Quantized CBOW with negative sampling: the Word2Bits training kernel (Lam 2018, section 3.2).

The forward pass reads Q(v) of the context (input) rows and Q(u) of the output rows;
the backward pass is the straight-through estimator, so each gradient lands on the
full-precision row. The update order, the sigmoid table, the gradient clipping at
|f| >= 6 and the LCG random draws follow word2vec.c and the authors' word2bits.cpp;
the batch preparation (vocabulary lookup, downsampling, reduced windows, negative
draws from ``cum_table``) follows gensim's ``train_batch_cbow`` draw for draw.
Only the hot loop lives here; :mod:`gensim_bits.word2bits` is the Python shell.

Speed: quantization happens on the fly inside loops the compiler vectorizes (one pass
per context row, one for the score, one fused update per output row); the negative
targets are drawn before the context is summed and their rows prefetched, which hides
most of the cache misses that bound gensim's own CBOW loop.
"""
import numpy as np

cimport numpy as np
from libc.math cimport exp, log
from libc.string cimport memset
from scipy.linalg.cython_blas cimport saxpy, sscal

from gensim_bits.quantizers import check_bits

np.import_array()

REAL = np.float32
ctypedef np.float32_t REAL_t

cdef enum:
    MAX_SENTENCE_LEN = 10000  # gensim's job size limit, in words
    EXP_TABLE_SIZE = 1000
    MAX_EXP = 6
    FLOAT_BITS = 32
    TARGET_CHUNK = 16  # negative targets drawn (and prefetched) ahead of their use
    FLOATS_PER_CACHE_LINE = 16

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define W2B_PREFETCH(address) __builtin_prefetch((address), 1, 3)
    #else
    #define W2B_PREFETCH(address) ((void)(address))
    #endif
    """
    void W2B_PREFETCH(const void *address) noexcept nogil

cdef REAL_t[EXP_TABLE_SIZE] EXP_TABLE
cdef REAL_t[EXP_TABLE_SIZE] LOG_TABLE
cdef int ONE = 1
cdef REAL_t ONEF = 1.0
cdef unsigned long long LCG_MODULO = 281474976710655ULL

for _i in range(EXP_TABLE_SIZE):
    _e = exp((_i / <double>EXP_TABLE_SIZE * 2 - 1) * MAX_EXP)
    EXP_TABLE[_i] = <REAL_t>(_e / (_e + 1))
    LOG_TABLE[_i] = <REAL_t>log(EXP_TABLE[_i])


cdef struct Word2BitsConfig:
    int negative, sample, cbow_mean, window, size, bits, compute_loss
    REAL_t alpha
    double running_training_loss
    REAL_t *syn0
    REAL_t *syn1neg
    REAL_t *neu1
    REAL_t *neu1e
    REAL_t *quantized_row
    np.uint32_t *cum_table
    unsigned long long cum_table_len
    unsigned long long next_random
    np.uint32_t indexes[MAX_SENTENCE_LEN]
    np.uint32_t reduced_windows[MAX_SENTENCE_LEN]
    int sentence_idx[MAX_SENTENCE_LEN + 1]


cdef extern from *:
    """
    #include <math.h>
    /* The three hot loops of the kernel, quantizing on the fly. On x86-64 Linux with GCC
       each is compiled twice, for AVX2 and for the baseline, and the loader picks one
       for the running CPU (gensim's BLAS does the same); elsewhere, the baseline only. */
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
        && !defined(W2B_NO_MULTIVERSION)
    #define W2B_MULTIVERSION __attribute__((target_clones("avx2", "default")))
    #else
    #define W2B_MULTIVERSION
    #endif
    #if defined(_MSC_VER)
    #define restrict __restrict
    #endif
    #define W2B_FLOAT_BITS 32

    /* One and two bits copy the sign bit (two vector operations, not a compare and a
       select). This reads -0.0 as negative where the paper's "x >= 0" reads it as
       positive; training never produces -0.0 (it needs -0.0 + -0.0). */
    static inline float w2b_one_bit(float x) { return copysignf(1.0f / 3.0f, x); }
    static inline float w2b_two_bits(float x) { return copysignf(fabsf(x) > 0.5f ? 0.75f : 0.25f, x); }

    /* 2**bits uniform levels, the midpoints of equal bins over [-1, 1] (quantizers.py).
       A value on a positive threshold goes to the lower bin, on a negative one to the
       upper bin: the paper's "0 <= x <= 1/2" and "-1/2 <= x < 0" at two bits. */
    static inline float w2b_uniform(float x, int bits) {
        float half = (float)(1 << (bits - 1));
        float top = (half - 0.5f) / half;
        float scaled = x * half;
        float q = x > 0 ? (ceilf(scaled) - 0.5f) / half : (floorf(scaled) + 0.5f) / half;
        return q > top ? top : (q < -top ? -top : q);
    }

    /* dst += Q(src) */
    W2B_MULTIVERSION static void w2b_add_quantized(float *restrict dst, const float *restrict src, int n, int bits) {
        int a;
        if (bits == 1) { for (a = 0; a < n; a++) dst[a] += w2b_one_bit(src[a]); }
        else if (bits == 2) { for (a = 0; a < n; a++) dst[a] += w2b_two_bits(src[a]); }
        else if (bits == W2B_FLOAT_BITS) { for (a = 0; a < n; a++) dst[a] += src[a]; }
        else { for (a = 0; a < n; a++) dst[a] += w2b_uniform(src[a], bits); }
    }

    /* dot(neu1, Q(row)). Wider codes also keep Q(row) in `quantized` for the update; at one
       and two bits recomputing Q is cheaper than storing it. */
    W2B_MULTIVERSION static float w2b_quantized_dot(float *restrict quantized, const float *restrict row,
                                                    const float *restrict neu1, int n, int bits) {
        int a;
        float f = 0.0f, q;
        if (bits == 1) { for (a = 0; a < n; a++) f += w2b_one_bit(row[a]) * neu1[a]; }
        else if (bits == 2) { for (a = 0; a < n; a++) f += w2b_two_bits(row[a]) * neu1[a]; }
        else if (bits == W2B_FLOAT_BITS) { for (a = 0; a < n; a++) f += row[a] * neu1[a]; }
        else { for (a = 0; a < n; a++) { q = w2b_uniform(row[a], bits); quantized[a] = q; f += q * neu1[a]; } }
        return f;
    }

    /* neu1e += g * Q(row), then row += g * neu1: the straight-through estimator puts the
       gradient with respect to Q(u) on u. Each element of row is read before it is
       written, so at 32 bits `quantized` is row itself. */
    W2B_MULTIVERSION static void w2b_straight_through_update(float *restrict neu1e, float *row, const float *restrict neu1,
                                                             const float *quantized, float g, int n, int bits) {
        int a;
        if (bits == 1) { for (a = 0; a < n; a++) { neu1e[a] += g * w2b_one_bit(row[a]); row[a] += g * neu1[a]; } }
        else if (bits == 2) { for (a = 0; a < n; a++) { neu1e[a] += g * w2b_two_bits(row[a]); row[a] += g * neu1[a]; } }
        else { for (a = 0; a < n; a++) { neu1e[a] += g * quantized[a]; row[a] += g * neu1[a]; } }
    }
    """
    void add_quantized "w2b_add_quantized"(REAL_t *dst, const REAL_t *src, int size, int bits) noexcept nogil
    REAL_t quantized_dot "w2b_quantized_dot"(REAL_t *quantized, const REAL_t *row, const REAL_t *neu1,
                                             int size, int bits) noexcept nogil
    void straight_through_update "w2b_straight_through_update"(
        REAL_t *neu1e, REAL_t *row, const REAL_t *neu1, const REAL_t *quantized, REAL_t g, int size,
        int bits) noexcept nogil


cdef inline unsigned long long lower_bound(const np.uint32_t *table, unsigned long long length,
                                           unsigned long long x) noexcept nogil:
    """bisect_left(table, x) for x < table[-1], without branches the CPU could mispredict."""
    cdef const np.uint32_t *base = table
    cdef unsigned long long half
    while length > 1:
        half = length >> 1
        base = base + half if base[half - 1] < x else base
        length -= half
    return (base - table) + (base[0] < x)


cdef inline unsigned long long random_int32(unsigned long long *next_random) noexcept nogil:
    """The word2vec.c / gensim LCG; returns the draw and advances the state."""
    cdef unsigned long long this_random = next_random[0] >> 16
    next_random[0] = (next_random[0] * <unsigned long long>25214903917ULL + 11) & LCG_MODULO
    return this_random


cdef inline double negative_log_sigmoid(REAL_t z) noexcept nogil:
    """-log(sigmoid(z)) from the table; outside +-MAX_EXP its asymptotes (0 and -z)."""
    if z >= MAX_EXP:
        return 0.0
    if z <= -MAX_EXP:
        return -z
    return -LOG_TABLE[<int>((z + MAX_EXP) * (EXP_TABLE_SIZE / MAX_EXP / 2))]


cdef inline int draw_targets(Word2BitsConfig *c, np.uint32_t *targets, const np.uint32_t word_index,
                             const int first, const int count) noexcept nogil:
    """Targets of samples first .. first+count-1 (sample 0 is the word itself), their rows prefetched.

    The draws are gensim's, in gensim's order; only the memory requests come early, so
    the cache misses on random output rows overlap with the work before they are read.
    """
    cdef int t, line
    cdef REAL_t *row
    for t in range(count):
        if first + t == 0:
            targets[t] = word_index
        else:
            targets[t] = <np.uint32_t>lower_bound(
                c.cum_table, c.cum_table_len, (c.next_random >> 16) % c.cum_table[c.cum_table_len - 1])
            c.next_random = (c.next_random * <unsigned long long>25214903917ULL + 11) & LCG_MODULO
        row = &c.syn1neg[<long long>targets[t] * c.size]
        line = 0
        while line < c.size:
            W2B_PREFETCH(&row[line])
            line += FLOATS_PER_CACHE_LINE
    return count


cdef void cbow_negative_step(Word2BitsConfig *c, const int i, const int j, const int k) noexcept nogil:
    """Train on the word at position i with context positions [j, k) other than i."""
    cdef int size = c.size, bits = c.bits
    cdef int d, m, t, first = 0, count = k - j - 1
    cdef int samples = c.negative + 1
    cdef REAL_t inv_count, f, g, label
    cdef np.uint32_t word_index = c.indexes[i], target_index
    cdef np.uint32_t targets[TARGET_CHUNK]
    cdef int drawn
    cdef REAL_t *neu1 = c.neu1
    cdef REAL_t *neu1e = c.neu1e
    cdef REAL_t *output_row
    cdef REAL_t *quantized

    if count <= 0:
        return  # word2bits.cpp trains nothing (and draws nothing) without a context
    drawn = draw_targets(c, targets, word_index, 0, min(samples, TARGET_CHUNK))

    memset(neu1, 0, size * sizeof(REAL_t))
    for m in range(j, k):
        if m != i:
            add_quantized(neu1, &c.syn0[<long long>c.indexes[m] * size], size, bits)
    inv_count = ONEF / count
    if c.cbow_mean:
        sscal(&size, &inv_count, neu1, &ONE)

    memset(neu1e, 0, size * sizeof(REAL_t))
    while True:
        for t in range(drawn):
            d = first + t
            target_index = targets[t]
            if d == 0:
                label = ONEF
            elif target_index == word_index:
                continue
            else:
                label = 0
            output_row = &c.syn1neg[<long long>target_index * size]
            quantized = output_row if bits == FLOAT_BITS else c.quantized_row
            f = quantized_dot(quantized, output_row, neu1, size, bits)
            # word2vec.c clipping: a saturated score still trains with the limit gradient
            # (gensim skips it, which freezes every output row of a quantized model).
            if f >= MAX_EXP:
                g = (label - ONEF) * c.alpha
            elif f <= -MAX_EXP:
                g = label * c.alpha
            else:
                g = (label - EXP_TABLE[<int>((f + MAX_EXP) * (EXP_TABLE_SIZE / MAX_EXP / 2))]) * c.alpha
            if c.compute_loss:
                c.running_training_loss += negative_log_sigmoid(f if d == 0 else -f)
            straight_through_update(neu1e, output_row, neu1, quantized, g, size, bits)
        first += drawn
        if first >= samples:
            break
        drawn = draw_targets(c, targets, word_index, first, min(samples - first, TARGET_CHUNK))

    if not c.cbow_mean:  # gensim's convention: a summed context shares the error
        sscal(&size, &inv_count, neu1e, &ONE)
    for m in range(j, k):
        if m != i:
            saxpy(&size, &ONEF, neu1e, &ONE, &c.syn0[<long long>c.indexes[m] * size], &ONE)


cdef fill_config(Word2BitsConfig *c, syn0, syn1neg, cum_table, int size, int bits, int negative,
                 int cbow_mean, int window, alpha, compute_loss, neu1e, neu1, quantized_row):
    for array in (syn0, syn1neg, neu1e, neu1, quantized_row):
        if array.dtype != np.float32 or not array.flags.c_contiguous:
            raise TypeError("the kernel needs C-contiguous float32 arrays")
    if syn0.shape[1] != size or syn1neg.shape != syn0.shape:
        raise ValueError(f"weight shapes {syn0.shape} and {syn1neg.shape} do not match vector_size {size}")
    if min(len(neu1e), len(neu1), len(quantized_row)) < size:
        raise ValueError("working memory is smaller than vector_size")
    if cum_table.dtype != np.uint32 or len(cum_table) == 0 or len(cum_table) > len(syn1neg):
        raise ValueError("cum_table must be a non-empty uint32 array no longer than the vocabulary")
    bits = check_bits(bits)
    c.size = size
    c.bits = bits
    c.negative = negative
    c.cbow_mean = cbow_mean
    c.window = window
    c.alpha = alpha
    c.compute_loss = 1 if compute_loss else 0
    c.running_training_loss = 0
    c.syn0 = <REAL_t *>np.PyArray_DATA(syn0)
    c.syn1neg = <REAL_t *>np.PyArray_DATA(syn1neg)
    c.cum_table = <np.uint32_t *>np.PyArray_DATA(cum_table)
    c.cum_table_len = len(cum_table)
    c.neu1e = <REAL_t *>np.PyArray_DATA(neu1e)
    c.neu1 = <REAL_t *>np.PyArray_DATA(neu1)
    c.quantized_row = <REAL_t *>np.PyArray_DATA(quantized_row)


def train_batch_cbow_bits(model, sentences, alpha, neu1e, neu1, quantized_row, bits, compute_loss):
    """Train ``model`` (a :class:`~gensim_bits.word2bits.Word2Bits`) on one job of sentences.

    Same contract as gensim's ``train_batch_cbow``: returns the number of words trained
    (in vocabulary and kept by downsampling) and adds to ``model.running_training_loss``.
    ``neu1e``, ``neu1`` and ``quantized_row`` are the calling thread's scratch vectors.
    """
    cdef Word2BitsConfig c
    cdef int i, j, k
    cdef int effective_words = 0, effective_sentences = 0
    cdef int sent_idx, idx_start, idx_end
    cdef np.uint32_t *vocab_sample_ints = NULL

    fill_config(&c, model.syn0_full, model.syn1neg, model.cum_table, model.wv.vector_size, bits,
                model.negative, model.cbow_mean, model.window, alpha, compute_loss, neu1e, neu1, quantized_row)
    c.sample = (model.sample != 0)
    c.next_random = (2**24) * model.random.randint(0, 2**24) + model.random.randint(0, 2**24)
    if c.sample:
        vocab_sample_ints = <np.uint32_t *>np.PyArray_DATA(model.wv.expandos['sample_int'])
    key_to_index = model.wv.key_to_index

    c.sentence_idx[0] = 0
    for sent in sentences:
        if not sent:
            continue
        for token in sent:
            word_index = key_to_index.get(token)
            if word_index is None:
                continue  # unknown words shorten the sentence, as in gensim
            if c.sample and vocab_sample_ints[word_index] < random_int32(&c.next_random):
                continue
            c.indexes[effective_words] = word_index
            effective_words += 1
            if effective_words == MAX_SENTENCE_LEN:
                break
        effective_sentences += 1
        c.sentence_idx[effective_sentences] = effective_words
        if effective_words == MAX_SENTENCE_LEN:
            break

    if model.shrink_windows:
        for i, item in enumerate(model.random.randint(0, c.window, effective_words)):
            c.reduced_windows[i] = item
    else:
        for i in range(effective_words):
            c.reduced_windows[i] = 0

    with nogil:
        for sent_idx in range(effective_sentences):
            idx_start = c.sentence_idx[sent_idx]
            idx_end = c.sentence_idx[sent_idx + 1]
            for i in range(idx_start, idx_end):
                j = i - c.window + c.reduced_windows[i]
                if j < idx_start:
                    j = idx_start
                k = i + c.window + 1 - c.reduced_windows[i]
                if k > idx_end:
                    k = idx_end
                cbow_negative_step(&c, i, j, k)

    model.running_training_loss += c.running_training_loss
    return effective_words


def cbow_step(syn0, syn1neg, cum_table, context, center, alpha, bits, negative,
              cbow_mean=1, next_random=1, compute_loss=False):
    """Test hook: one kernel update of ``center`` from the word indexes in ``context``.

    Runs exactly the code of a training step (negative draws from ``next_random`` included)
    on the given arrays in place. Returns ``(next_random, loss)``.
    """
    cdef Word2BitsConfig c
    cdef int end
    context = [int(index) for index in context]
    if len(context) + 1 > MAX_SENTENCE_LEN:
        raise ValueError("context too long")
    for index in context + [int(center)]:
        if not 0 <= index < len(syn0):
            raise IndexError(f"word index {index} out of range")
    size = syn0.shape[1]
    work = [np.zeros(size, dtype=REAL) for _ in range(3)]
    fill_config(&c, syn0, syn1neg, cum_table, size, bits, negative, cbow_mean, 0, alpha, compute_loss,
                work[0], work[1], work[2])
    c.next_random = next_random
    c.indexes[0] = center
    for position, index in enumerate(context):
        c.indexes[position + 1] = index
    end = len(context) + 1
    with nogil:
        cbow_negative_step(&c, 0, 0, end)
    return c.next_random, c.running_training_loss
