# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Quantized CBOW and skip-gram with negative sampling: the Word2Bits training kernel (Lam 2018,
section 3.2; skip-gram is our extension, the paper trains CBOW only).

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
import os

import numpy as np

cimport numpy as np
from libc.math cimport exp, log
from libc.stdint cimport uint64_t
from libc.stdio cimport EOF, FILE, fclose, fgetc, fopen
from libc.stdlib cimport free
from libc.string cimport memcmp, memset
from posix.stdio cimport fseeko, ftello, getline
from scipy.linalg.cython_blas cimport saxpy, sscal

np.import_array()

REAL = np.float32
ctypedef np.float32_t REAL_t

cdef enum:
    MAX_SENTENCE_LEN = 10000  # gensim's job size limit, in words
    EXP_TABLE_SIZE = 1000
    MAX_EXP = 6
    FLOAT_BITS = 32
    MAX_WINDOW = 1 << 30  # keeps every window bound of a chunk inside an int
    MAX_NEGATIVE = 1 << 30
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


# The bit widths of quantizers.SUPPORTED_BITS; the kernel imports no project module.
SUPPORTED_BITS = (1, 2, 4, 8, 32)


cdef struct Word2BitsConfig:
    int hs, negative, sample, cbow_mean, window, size, bits, compute_loss, sg
    REAL_t alpha
    double running_training_loss
    REAL_t *syn0
    REAL_t *syn1neg
    REAL_t *syn1  # hierarchical softmax: one output row per inner node of the Huffman tree
    REAL_t *neu1
    REAL_t *neu1e
    REAL_t *quantized_row
    REAL_t *lockf  # gensim's vectors_lockf: scales every update to a word's input and output rows
    unsigned long long lockf_len
    np.uint32_t *cum_table
    unsigned long long cum_table_len
    unsigned long long next_random
    np.uint32_t indexes[MAX_SENTENCE_LEN]
    np.uint32_t reduced_windows[MAX_SENTENCE_LEN]
    int sentence_idx[MAX_SENTENCE_LEN + 1]
    np.uint8_t *codes[MAX_SENTENCE_LEN]
    np.uint32_t *points[MAX_SENTENCE_LEN]
    int codelens[MAX_SENTENCE_LEN]


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

    /* neu1e += g * Q(row), then row += row_g * neu1 (row_g is g times the row's lock factor):
       the straight-through estimator puts the gradient with respect to Q(u) on u. Each
       element of row is read before it is written, so at 32 bits `quantized` is row itself. */
    W2B_MULTIVERSION static void w2b_straight_through_update(float *restrict neu1e, float *row, const float *restrict neu1,
                                                             const float *quantized, float g, float row_g, int n,
                                                             int bits) {
        int a;
        if (bits == 1) { for (a = 0; a < n; a++) { neu1e[a] += g * w2b_one_bit(row[a]); row[a] += row_g * neu1[a]; } }
        else if (bits == 2) { for (a = 0; a < n; a++) { neu1e[a] += g * w2b_two_bits(row[a]); row[a] += row_g * neu1[a]; } }
        else { for (a = 0; a < n; a++) { neu1e[a] += g * quantized[a]; row[a] += row_g * neu1[a]; } }
    }
    """
    void add_quantized "w2b_add_quantized"(REAL_t *dst, const REAL_t *src, int size, int bits) noexcept nogil
    REAL_t quantized_dot "w2b_quantized_dot"(REAL_t *quantized, const REAL_t *row, const REAL_t *neu1,
                                             int size, int bits) noexcept nogil
    void straight_through_update "w2b_straight_through_update"(
        REAL_t *neu1e, REAL_t *row, const REAL_t *neu1, const REAL_t *quantized, REAL_t g, REAL_t row_g,
        int size, int bits) noexcept nogil


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


cdef inline REAL_t lock_factor(const Word2BitsConfig *c, const np.uint32_t index) noexcept nogil:
    return c.lockf[index % c.lockf_len]


cdef inline void train_output_row(Word2BitsConfig *c, REAL_t *row, const REAL_t label,
                                  const REAL_t row_lock) noexcept nogil:
    """One logistic output (label 1 or 0) scored on Q(row) against ``c.neu1``.

    Adds the error times Q(row) to ``c.neu1e`` and moves ``row`` (straight-through), its step
    scaled by ``row_lock``.
    """
    cdef REAL_t *quantized = row if c.bits == FLOAT_BITS else c.quantized_row
    cdef REAL_t f = quantized_dot(quantized, row, c.neu1, c.size, c.bits)
    cdef REAL_t g
    # word2vec.c clipping: a saturated score still trains with the limit gradient
    # (gensim skips it, which freezes every output row of a quantized model).
    if f >= MAX_EXP:
        g = (label - ONEF) * c.alpha
    elif f <= -MAX_EXP:
        g = label * c.alpha
    else:
        g = (label - EXP_TABLE[<int>((f + MAX_EXP) * (EXP_TABLE_SIZE / MAX_EXP / 2))]) * c.alpha
    if c.compute_loss:
        c.running_training_loss += negative_log_sigmoid(f if label > 0 else -f)
    straight_through_update(c.neu1e, row, c.neu1, quantized, g, g * row_lock, c.size, c.bits)


cdef void negative_sampling(Word2BitsConfig *c, const np.uint32_t word_index, np.uint32_t *targets,
                            int drawn) noexcept nogil:
    """Score Q(output rows) of ``word_index`` and its negatives against ``c.neu1``.

    Adds the error to ``c.neu1e`` and updates each output row (straight-through). ``targets``
    holds the first ``drawn`` targets, already drawn and prefetched by the caller.
    """
    cdef int size = c.size
    cdef int d, t, first = 0
    cdef int samples = c.negative + 1
    cdef REAL_t label
    cdef np.uint32_t target_index

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
            train_output_row(c, &c.syn1neg[<long long>target_index * size], label, lock_factor(c, target_index))
        first += drawn
        if first >= samples:
            break
        drawn = draw_targets(c, targets, word_index, first, min(samples - first, TARGET_CHUNK))


cdef void hierarchical_softmax(Word2BitsConfig *c, const int position) noexcept nogil:
    """Score Q(inner-node rows) on the Huffman path of the word at ``position`` against ``c.neu1``.

    word2vec.c's update (label 1 - code), with the same clipped gradient as negative sampling.
    """
    cdef int b
    for b in range(c.codelens[position]):
        train_output_row(c, &c.syn1[<long long>c.points[position][b] * c.size], ONEF - c.codes[position][b], ONEF)


cdef inline void output_layer(Word2BitsConfig *c, const int position, np.uint32_t *targets,
                              const int drawn) noexcept nogil:
    """The error of ``c.neu1`` into ``c.neu1e``: hierarchical softmax, then negative sampling."""
    memset(c.neu1e, 0, c.size * sizeof(REAL_t))
    if c.hs:
        hierarchical_softmax(c, position)
    if c.negative:
        negative_sampling(c, c.indexes[position], targets, drawn)


cdef void cbow_negative_step(Word2BitsConfig *c, const int i, const int j, const int k) noexcept nogil:
    """Train on the word at position i with context positions [j, k) other than i."""
    cdef int size = c.size, bits = c.bits
    cdef int m, count = k - j - 1
    cdef REAL_t inv_count, step
    cdef np.uint32_t word_index = c.indexes[i]
    cdef np.uint32_t targets[TARGET_CHUNK]
    cdef int drawn

    if count <= 0:
        return  # word2bits.cpp trains nothing (and draws nothing) without a context
    drawn = draw_targets(c, targets, word_index, 0, min(c.negative + 1, TARGET_CHUNK)) if c.negative else 0

    memset(c.neu1, 0, size * sizeof(REAL_t))
    for m in range(j, k):
        if m != i:
            add_quantized(c.neu1, &c.syn0[<long long>c.indexes[m] * size], size, bits)
    inv_count = ONEF / count
    if c.cbow_mean:
        sscal(&size, &inv_count, c.neu1, &ONE)

    output_layer(c, i, targets, drawn)

    if not c.cbow_mean:  # gensim's convention: a summed context shares the error
        sscal(&size, &inv_count, c.neu1e, &ONE)
    for m in range(j, k):
        if m != i:
            step = lock_factor(c, c.indexes[m])
            saxpy(&size, &step, c.neu1e, &ONE, &c.syn0[<long long>c.indexes[m] * size], &ONE)


cdef void skipgram_negative_step(Word2BitsConfig *c, const int i, const int m) noexcept nogil:
    """Predict the word at position i from Q(input row of the word at m): gensim's sg pair order."""
    cdef int size = c.size
    cdef REAL_t step
    cdef np.uint32_t targets[TARGET_CHUNK]
    cdef np.uint32_t context_index = c.indexes[m]
    cdef int drawn = draw_targets(c, targets, c.indexes[i], 0, min(c.negative + 1, TARGET_CHUNK)) if c.negative else 0
    cdef REAL_t *input_row = &c.syn0[<long long>context_index * size]

    memset(c.neu1, 0, size * sizeof(REAL_t))
    add_quantized(c.neu1, input_row, size, c.bits)
    output_layer(c, i, targets, drawn)
    step = lock_factor(c, context_index)
    saxpy(&size, &step, c.neu1e, &ONE, input_row, &ONE)


cdef void train_chunk(Word2BitsConfig *c, const int sentences) noexcept nogil:
    """Train on the ``sentences`` sentences of ``c.indexes`` bounded by ``c.sentence_idx``."""
    cdef int sent_idx, idx_start, idx_end, i, j, k, m
    for sent_idx in range(sentences):
        idx_start = c.sentence_idx[sent_idx]
        idx_end = c.sentence_idx[sent_idx + 1]
        for i in range(idx_start, idx_end):
            j = i - c.window + <int>c.reduced_windows[i]
            if j < idx_start:
                j = idx_start
            k = i + c.window + 1 - <int>c.reduced_windows[i]
            if k > idx_end:
                k = idx_end
            if c.sg:
                for m in range(j, k):
                    if m != i:
                        skipgram_negative_step(c, i, m)
            else:
                cbow_negative_step(c, i, j, k)


cdef check_integer(name, value, int low, int high):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")


cdef fill_config(Word2BitsConfig *c, syn0, syn1neg, cum_table, lockf, size, bits, negative,
                 cbow_mean, window, sg, alpha, compute_loss, neu1e, neu1, quantized_row, syn1=None):
    for array in (syn0, syn1neg, neu1e, neu1, quantized_row, lockf) + (() if syn1 is None else (syn1,)):
        if array.dtype != np.float32 or not array.flags.c_contiguous:
            raise TypeError("the kernel needs C-contiguous float32 arrays")
    # Python ints that do not fit a C int would raise OverflowError on conversion (in a
    # worker thread): every one is range-checked here first.
    check_integer("vector_size", size, 1, 1 << 30)
    check_integer("negative", negative, 0 if syn1 is not None else 1, MAX_NEGATIVE)
    check_integer("window", window, 1, MAX_WINDOW)
    if bits not in SUPPORTED_BITS or isinstance(bits, bool):
        raise ValueError(f"bits must be one of {SUPPORTED_BITS}, got {bits!r}")
    if syn0.ndim != 2 or syn0.shape[1] != size or syn1neg.shape != syn0.shape:
        raise ValueError(f"weight shapes {syn0.shape} and {syn1neg.shape} do not match vector_size {size}")
    if min(len(neu1e), len(neu1), len(quantized_row)) < size:
        raise ValueError("working memory is smaller than vector_size")
    if negative and (cum_table is None or cum_table.dtype != np.uint32 or len(cum_table) == 0
                     or len(cum_table) > len(syn1neg)):
        raise ValueError("cum_table must be a non-empty uint32 array no longer than the vocabulary")
    if syn1 is not None and syn1.shape != syn0.shape:
        raise ValueError(f"syn1 has shape {syn1.shape}, syn0 {syn0.shape}")
    if lockf.ndim != 1 or len(lockf) == 0:
        raise ValueError("vectors_lockf must be a non-empty 1-d array")
    c.size = size
    c.bits = bits
    c.negative = negative
    c.cbow_mean = 1 if cbow_mean else 0
    c.window = window
    c.sg = 1 if sg else 0
    c.alpha = alpha
    c.compute_loss = 1 if compute_loss else 0
    c.running_training_loss = 0
    c.syn0 = <REAL_t *>np.PyArray_DATA(syn0)
    c.syn1neg = <REAL_t *>np.PyArray_DATA(syn1neg)
    c.hs = 0 if syn1 is None else 1
    c.syn1 = NULL if syn1 is None else <REAL_t *>np.PyArray_DATA(syn1)
    c.cum_table = NULL if not negative else <np.uint32_t *>np.PyArray_DATA(cum_table)
    c.cum_table_len = 0 if not negative else len(cum_table)
    c.lockf = <REAL_t *>np.PyArray_DATA(lockf)
    c.lockf_len = len(lockf)
    c.neu1e = <REAL_t *>np.PyArray_DATA(neu1e)
    c.neu1 = <REAL_t *>np.PyArray_DATA(neu1)
    c.quantized_row = <REAL_t *>np.PyArray_DATA(quantized_row)


cdef train_filled(Word2BitsConfig *c, int words, int sentences, random_state, shrink_windows):
    """Draw the reduced windows of the ``words`` words in ``c.indexes``, then train them."""
    cdef int i
    if shrink_windows:
        for i, item in enumerate(random_state.randint(0, c.window, words)):
            c.reduced_windows[i] = item
    else:
        memset(c.reduced_windows, 0, words * sizeof(np.uint32_t))
    with nogil:
        train_chunk(c, sentences)


def train_batch_bits(model, sentences, alpha, neu1e, neu1, quantized_row, bits, compute_loss):
    """Train ``model`` (a :class:`~gensim_bits.word2bits.Word2Bits`) on one job of sentences.

    Same contract as gensim's ``train_batch_cbow`` / ``train_batch_sg``: returns the number of
    words trained (in vocabulary and kept by downsampling) and adds to
    ``model.running_training_loss``. ``neu1e``, ``neu1`` and ``quantized_row`` are the calling
    thread's scratch vectors. ``model.sg`` picks skip-gram or CBOW.

    A job may hold any number of words: it is trained in chunks of at most
    ``MAX_SENTENCE_LEN`` (10000) kept words, so ``batch_words`` above 10000 trains every word
    (gensim drops the rest of such a job). A sentence that straddles two chunks is split
    there; no window crosses the split.
    """
    cdef Word2BitsConfig c
    cdef int words = 0, sentences_in_chunk = 0, trained = 0
    cdef np.uint32_t *vocab_sample_ints = NULL
    cdef object random_state = model.random
    cdef bint shrink_windows = model.shrink_windows
    cdef object code, point

    fill_config(&c, model.syn0_full, model.syn1neg, getattr(model, "cum_table", None), model.wv.vectors_lockf,
                model.wv.vector_size, bits, model.negative, model.cbow_mean, model.window, model.sg,
                alpha, compute_loss, neu1e, neu1, quantized_row, model.syn1 if model.hs else None)
    if c.hs:
        vocab_codes = model.wv.expandos['code']
        vocab_points = model.wv.expandos['point']
    c.sample = (model.sample != 0)
    c.next_random = (2**24) * random_state.randint(0, 2**24) + random_state.randint(0, 2**24)
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
            c.indexes[words] = word_index
            if c.hs:
                code, point = vocab_codes[word_index], vocab_points[word_index]
                c.codelens[words] = <int>len(code)
                if c.codelens[words]:  # a one-word vocabulary's root has an empty path (a list)
                    if code.dtype != np.uint8 or point.dtype != np.uint32 or len(point) != len(code):
                        raise ValueError(f"Huffman code of word {word_index} is not uint8 codes with uint32 points")
                    c.codes[words] = <np.uint8_t *>np.PyArray_DATA(<np.ndarray>code)
                    c.points[words] = <np.uint32_t *>np.PyArray_DATA(<np.ndarray>point)
            words += 1
            if words == MAX_SENTENCE_LEN:
                sentences_in_chunk += 1
                c.sentence_idx[sentences_in_chunk] = words
                train_filled(&c, words, sentences_in_chunk, random_state, shrink_windows)
                trained += words
                words = sentences_in_chunk = 0
        # A sentence whose words were all dropped adds no boundary, so the boundaries
        # never outnumber the words (sentence_idx has MAX_SENTENCE_LEN + 1 slots).
        if words > c.sentence_idx[sentences_in_chunk]:
            sentences_in_chunk += 1
            c.sentence_idx[sentences_in_chunk] = words
    if words:
        train_filled(&c, words, sentences_in_chunk, random_state, shrink_windows)
        trained += words

    model.running_training_loss += c.running_training_loss
    return trained


def _one_step(syn0, syn1neg, cum_table, context, center, alpha, bits, negative, cbow_mean, sg,
              next_random, compute_loss, lockf):
    cdef Word2BitsConfig c
    cdef int end, m
    context = [int(index) for index in context]
    if len(context) + 1 > MAX_SENTENCE_LEN:
        raise ValueError("context too long")
    for index in context + [int(center)]:
        if not 0 <= index < len(syn0):
            raise IndexError(f"word index {index} out of range")
    size = syn0.shape[1]
    work = [np.zeros(size, dtype=REAL) for _ in range(3)]
    lockf = np.ones(1, dtype=REAL) if lockf is None else lockf
    fill_config(&c, syn0, syn1neg, cum_table, lockf, size, bits, negative, cbow_mean, 1, sg, alpha,
                compute_loss, work[0], work[1], work[2])
    c.next_random = next_random
    c.indexes[0] = center
    for position, index in enumerate(context):
        c.indexes[position + 1] = index
    end = len(context) + 1
    with nogil:
        if c.sg:
            for m in range(1, end):
                skipgram_negative_step(&c, 0, m)
        else:
            cbow_negative_step(&c, 0, 0, end)
    return c.next_random, c.running_training_loss


def cbow_step(syn0, syn1neg, cum_table, context, center, alpha, bits, negative,
              cbow_mean=1, next_random=1, compute_loss=False, lockf=None):
    """Test hook: one kernel CBOW update of ``center`` from the word indexes in ``context``.

    Runs exactly the code of a training step (negative draws from ``next_random`` included)
    on the given arrays in place. Returns ``(next_random, loss)``.
    """
    return _one_step(syn0, syn1neg, cum_table, context, center, alpha, bits, negative, cbow_mean, 0,
                     next_random, compute_loss, lockf)


def skipgram_step(syn0, syn1neg, cum_table, context, center, alpha, bits, negative,
                  next_random=1, compute_loss=False, lockf=None):
    """Test hook: the kernel's skip-gram updates predicting ``center`` from each of ``context`` in turn."""
    return _one_step(syn0, syn1neg, cum_table, context, center, alpha, bits, negative, 1, 1,
                     next_random, compute_loss, lockf)


# ------------------------------------------------------------------ corpus_file: a compiled reader
# gensim's corpus_file mode lets each worker read its own part of a LineSentence file without
# the GIL; this is the same for Word2Bits. Worker w of W trains the lines that start in bytes
# [size * w / W, size * (w + 1) / W): every line exactly once an epoch. Tokens are split on
# ASCII whitespace; the vocabulary is looked up in an open-addressing hash table of UTF-8 keys.

cdef inline uint64_t fnv1a(const char *data, Py_ssize_t length) noexcept nogil:
    cdef uint64_t h = 14695981039346656037ULL
    cdef Py_ssize_t i
    for i in range(length):
        h = (h ^ <unsigned char>data[i]) * 1099511628211ULL
    return h


cdef inline Py_ssize_t space_length(const char *text, Py_ssize_t remaining) noexcept nogil:
    """Bytes of the whitespace character at ``text`` (UTF-8), 0 if it is not one.

    The whitespace of Python's ``str.split()``, which gensim's ``LineSentence`` (the vocabulary
    scan of ``corpus_file``) splits on, so the reader sees the tokens that were counted:
    ASCII 9-13, 28-32; U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F,
    U+205F, U+3000.
    """
    cdef const unsigned char *u = <const unsigned char *>text
    cdef unsigned char first = u[0]
    if first == 32 or 9 <= first <= 13 or 28 <= first <= 31:
        return 1
    if first == 0xC2 and remaining >= 2 and (u[1] == 0x85 or u[1] == 0xA0):
        return 2
    if remaining < 3 or first < 0xE1 or first > 0xE3:
        return 0
    if first == 0xE1:
        return 3 if u[1] == 0x9A and u[2] == 0x80 else 0
    if first == 0xE3:
        return 3 if u[1] == 0x80 and u[2] == 0x80 else 0
    if u[1] == 0x80 and (0x80 <= u[2] <= 0x8A or u[2] == 0xA8 or u[2] == 0xA9 or u[2] == 0xAF):
        return 3
    return 3 if u[1] == 0x81 and u[2] == 0x9F else 0


cdef class CorpusVocabulary:
    """The vocabulary of ``wv`` as a hash table the reader can use without the GIL.

    Also holds pointers to each word's downsampling threshold and Huffman path, and keeps
    the arrays they point into alive.
    """
    cdef bytes text
    cdef np.ndarray offsets, hashes, table, code_pointers, point_pointers, code_lengths
    cdef object keep_alive
    cdef uint64_t mask
    # Raw views of the arrays above, for lookups without the GIL.
    cdef const char *text_data
    cdef const np.int64_t *offsets_data
    cdef const np.uint64_t *hashes_data
    cdef const np.int64_t *table_data
    cdef const np.int32_t *code_lengths_data
    cdef const size_t *code_pointers_data
    cdef const size_t *point_pointers_data

    def __init__(self, wv, hs=False):
        encoded = []
        for key in wv.index_to_key:
            if not isinstance(key, str):
                raise TypeError(f"corpus_file training needs str words, got {type(key).__name__} {key!r}")
            encoded.append(key.encode("utf-8"))
        self.text = b"".join(encoded)
        self.offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(word) for word in encoded], out=self.offsets[1:])
        self.hashes = np.empty(len(encoded), dtype=np.uint64)
        size = 1
        while size < 2 * len(encoded) + 1:
            size *= 2
        self.mask = size - 1
        self.table = np.full(size, -1, dtype=np.int64)
        cdef const char *text = self.text
        cdef np.int64_t[::1] offsets = self.offsets
        cdef np.uint64_t[::1] hashes = self.hashes
        cdef np.int64_t[::1] table = self.table
        cdef Py_ssize_t index
        cdef uint64_t slot
        self.text_data = text
        self.offsets_data = &offsets[0]
        self.hashes_data = <np.uint64_t *>np.PyArray_DATA(self.hashes)
        self.table_data = <np.int64_t *>np.PyArray_DATA(self.table)
        for index in range(len(encoded)):
            hashes[index] = fnv1a(text + offsets[index], offsets[index + 1] - offsets[index])
            if self.lookup(text + offsets[index], offsets[index + 1] - offsets[index]) >= 0:
                raise ValueError(f"duplicate word {encoded[index]!r} in the vocabulary")
            slot = hashes[index] & self.mask
            while table[slot] >= 0:
                slot = (slot + 1) & self.mask
            table[slot] = index
        self.keep_alive = []
        self.code_lengths = np.zeros(len(encoded), dtype=np.int32)
        self.code_pointers = np.zeros(len(encoded), dtype=np.uintp)
        self.point_pointers = np.zeros(len(encoded), dtype=np.uintp)
        if hs:
            for index, (code, point) in enumerate(zip(wv.expandos["code"], wv.expandos["point"])):
                if len(code):
                    code = np.ascontiguousarray(code, dtype=np.uint8)
                    point = np.ascontiguousarray(point, dtype=np.uint32)
                    if len(point) != len(code):
                        raise ValueError(f"Huffman code and point of word {index} differ in length")
                    self.keep_alive += [code, point]
                    self.code_lengths[index] = len(code)
                    self.code_pointers[index] = code.ctypes.data
                    self.point_pointers[index] = point.ctypes.data
        self.code_lengths_data = <np.int32_t *>np.PyArray_DATA(self.code_lengths)
        self.code_pointers_data = <size_t *>np.PyArray_DATA(self.code_pointers)
        self.point_pointers_data = <size_t *>np.PyArray_DATA(self.point_pointers)

    def __len__(self):
        return len(self.hashes)

    cdef inline long long lookup(self, const char *word, Py_ssize_t length) noexcept nogil:
        cdef uint64_t h = fnv1a(word, length)
        cdef uint64_t slot = h & self.mask
        cdef const np.int64_t *table = self.table_data
        cdef const np.int64_t *offsets = self.offsets_data
        cdef const np.uint64_t *hashes = self.hashes_data
        cdef const char *text = self.text_data
        cdef long long index
        while True:
            index = table[slot]
            if index < 0:
                return -1
            if (hashes[index] == h and offsets[index + 1] - offsets[index] == length
                    and memcmp(text + offsets[index], word, length) == 0):
                return index
            slot = (slot + 1) & self.mask

    def index(self, word):
        """Row of ``word`` (str), or -1: the lookup the reader does, for tests."""
        data = word.encode("utf-8")
        return self.lookup(data, len(data))


cdef struct CorpusProgress:
    long long lines, raw_words, trained_words
    double start_alpha, end_alpha, expected_words
    int epoch, epochs, shrink_windows


cdef void set_alpha(Word2BitsConfig *c, const CorpusProgress *progress) noexcept nogil:
    """Linear decay over all epochs, by this worker's share of the words (gensim's schedule)."""
    cdef double done = progress.raw_words / progress.expected_words if progress.expected_words > 0 else 1.0
    done = (progress.epoch + (done if done < 1.0 else 1.0)) / progress.epochs
    c.alpha = <REAL_t>(progress.start_alpha - (progress.start_alpha - progress.end_alpha) * done)


cdef void train_buffered(Word2BitsConfig *c, int words, int sentences, CorpusProgress *progress) noexcept nogil:
    cdef int i
    for i in range(words):
        c.reduced_windows[i] = random_int32(&c.next_random) % c.window if progress.shrink_windows else 0
    train_chunk(c, sentences)
    progress.trained_words += words
    set_alpha(c, progress)


cdef int read_and_train(Word2BitsConfig *c, CorpusVocabulary vocabulary, FILE *f, long long start,
                        long long end, const np.uint32_t *sample_ints, CorpusProgress *progress) noexcept nogil:
    """Train on the lines starting in bytes [start, end) of ``f``; returns -1 on a read error."""
    cdef char *line = NULL
    cdef size_t capacity = 0
    cdef Py_ssize_t length, i, token, space
    cdef long long position, index
    cdef int words = 0, sentences = 0, ch
    cdef const np.int32_t *code_lengths = vocabulary.code_lengths_data
    cdef const size_t *code_pointers = vocabulary.code_pointers_data
    cdef const size_t *point_pointers = vocabulary.point_pointers_data

    if start > 0:  # a line that began before `start` belongs to the previous worker
        if fseeko(f, start - 1, 0) != 0:
            return -1
        ch = fgetc(f)
        while ch != EOF and ch != 10:
            ch = fgetc(f)
    position = ftello(f)
    c.sentence_idx[0] = 0
    while position < end:
        length = getline(&line, &capacity, f)
        if length < 0:
            break
        position += length
        progress.lines += 1
        i = 0
        while i < length:
            space = space_length(line + i, length - i)
            while space:
                i += space
                space = space_length(line + i, length - i) if i < length else 0
            token = i
            while i < length and space_length(line + i, length - i) == 0:
                i += 1
            if i == token:
                continue
            progress.raw_words += 1
            index = vocabulary.lookup(line + token, i - token)
            if index < 0:
                continue
            if c.sample and sample_ints[index] < random_int32(&c.next_random):
                continue
            c.indexes[words] = <np.uint32_t>index
            if c.hs:
                c.codelens[words] = code_lengths[index]
                c.codes[words] = <np.uint8_t *>code_pointers[index]
                c.points[words] = <np.uint32_t *>point_pointers[index]
            words += 1
            if words == MAX_SENTENCE_LEN:
                sentences += 1
                c.sentence_idx[sentences] = words
                train_buffered(c, words, sentences, progress)
                words = sentences = 0
        if words > c.sentence_idx[sentences]:
            sentences += 1
            c.sentence_idx[sentences] = words
    if words:
        train_buffered(c, words, sentences, progress)
    free(line)
    return 0


def train_corpus_file_part(model, corpus_file, CorpusVocabulary vocabulary, long long start, long long end,
                           expected_words, int epoch, neu1e, neu1, quantized_row, bits, compute_loss):
    """Train ``model`` on the lines of ``corpus_file`` that start in bytes [start, end), without the GIL.

    gensim's ``train_epoch_cbow`` / ``train_epoch_sg`` contract: returns ``(lines, trained
    words, raw words)`` and adds to ``model.running_training_loss``. The learning rate decays
    linearly from ``model.alpha`` to ``model.min_alpha`` over ``model.epochs``, by this part's
    progress through ``expected_words``.
    """
    cdef Word2BitsConfig c
    cdef CorpusProgress progress
    cdef FILE *f
    cdef int status
    cdef const np.uint32_t *sample_ints = NULL
    if len(vocabulary) != len(model.wv):
        raise ValueError("the corpus vocabulary is out of date with model.wv")
    fill_config(&c, model.syn0_full, model.syn1neg, getattr(model, "cum_table", None), model.wv.vectors_lockf,
                model.wv.vector_size, bits, model.negative, model.cbow_mean, model.window, model.sg,
                model.alpha, compute_loss, neu1e, neu1, quantized_row, model.syn1 if model.hs else None)
    c.sample = (model.sample != 0)
    if c.sample:
        sample_ints = <np.uint32_t *>np.PyArray_DATA(model.wv.expandos['sample_int'])
    c.next_random = (2**24) * model.random.randint(0, 2**24) + model.random.randint(0, 2**24)
    progress.lines = progress.raw_words = progress.trained_words = 0
    progress.start_alpha, progress.end_alpha = model.alpha, model.min_alpha
    progress.expected_words = float(expected_words or 0)
    progress.epoch, progress.epochs = epoch, max(1, int(model.epochs))
    progress.shrink_windows = 1 if model.shrink_windows else 0
    set_alpha(&c, &progress)  # where this epoch starts on the schedule
    path = os.fsencode(corpus_file)
    f = fopen(path, b"rb")
    if f == NULL:
        raise FileNotFoundError(f"cannot open corpus_file {corpus_file!r}")
    try:
        with nogil:
            status = read_and_train(&c, vocabulary, f, start, end, sample_ints, &progress)
    finally:
        fclose(f)
    if status < 0:
        raise OSError(f"cannot read corpus_file {corpus_file!r} at byte {start}")
    model.running_training_loss += c.running_training_loss
    return progress.lines, progress.trained_words, progress.raw_words
