"""Word2Bits: CBOW word2vec trained with quantized vectors (Lam 2018, "Word2Bits - Quantized
Word Vectors", section 3.2), as a drop-in subclass of :class:`gensim.models.Word2Vec`.

The model keeps two full-precision matrices, the input vectors ``syn0_full`` and the output
vectors ``syn1neg``, and trains them with the quantized kernel of
:mod:`gensim_bits.word2bits_inner`. What users query, ``model.wv``, always holds the paper's
final vectors Q(u + v), refreshed after every epoch.
"""
import logging

import numpy as np
from gensim import matutils
from gensim.models import KeyedVectors, Word2Vec
from gensim.models.word2vec import MAX_WORDS_IN_BATCH

from gensim_bits.quantizers import FLOAT_BITS, check_bits, quantize
from gensim_bits.word2bits_inner import train_batch_cbow_bits

logger = logging.getLogger(__name__)

#: The paper's hyperparameters (section 4; text8 study used negative=24), for ``Word2Bits(**PAPER_HYPERPARAMETERS)``.
PAPER_HYPERPARAMETERS = dict(window=10, negative=12, min_count=5, sample=1e-4, alpha=0.05, min_alpha=0.0001, epochs=25)

# word2bits.cpp starts both matrices uniform in [-0.5, 0.5): with gensim's all-zero output
# matrix every quantized output row would start as the same +1/3 vector.
INIT_RANGE = 0.5


class Word2Bits(Word2Vec):
    """CBOW with negative sampling whose forward pass uses quantized vectors.

    Takes every argument of :class:`gensim.models.Word2Vec` with the same name, default and
    meaning, plus ``bits`` and ``thresholded``. Differences from gensim:

    * Only CBOW with negative sampling is implemented: ``sg=1``, ``hs=1`` or ``negative=0``
      raise ValueError. ``corpus_file=`` raises ValueError; pass
      ``sentences=gensim.models.word2vec.LineSentence(path)`` instead (same workers, same speed
      as gensim's iterable mode).
    * Both weight matrices start uniform in [-0.5, 0.5), as in the authors' code.
    * A score with ``|f| >= 6`` still trains, with the clipped gradient of word2vec.c
      (gensim skips such samples, which would freeze a quantized model).
    * A word with no context word in its window trains nothing (word2bits.cpp), where gensim
      still updates nothing but draws its negatives.
    * ``cbow_mean=1`` (the default, and the paper's setting) averages the quantized context
      vectors over the context words present and adds the undivided error to each of them, as
      word2vec.c, word2bits.cpp and gensim do. ``cbow_mean=0`` sums them and divides the error
      by the context size, as gensim does.
    * ``wv.vectors_lockf`` is ignored. ``vector_size``, ``window`` and ``workers`` below 1
      raise ValueError (gensim would fail later or silently train nothing).
    * The kernel's one- and two-bit quantizers copy the sign bit, so they read -0.0 as
      negative where the paper's "x >= 0" reads it as positive; training never produces -0.0
      (it needs -0.0 + -0.0), and the final vectors use :func:`gensim_bits.quantize` exactly.

    The paper's hyperparameters differ from gensim's defaults; they are in
    :data:`PAPER_HYPERPARAMETERS`: window 10, negative 12, min_count 5, sample 1e-4, alpha
    0.05 decayed linearly to 0.0001, 25 epochs, 1 bit at dimension 800 or 2 bits at 400.

    Parameters
    ----------
    bits : {1, 2, 4, 8, 32}
        Bits per vector value. 1: levels +-1/3; 2: +-1/4, +-3/4; 4 and 8: uniform levels over
        [-1, 1]; 32: no quantization, through the same kernel (the float baseline).
    thresholded : bool
        Train without quantization and quantize only the final vectors to ``bits``: the
        paper's T1 baseline at ``bits=1``.

    Attributes
    ----------
    wv : KeyedVectors
        The final vectors Q(u + v); every value is one of the ``2**bits`` levels.
    syn0_full, syn1neg : numpy.ndarray
        The full-precision input and output vectors, used by further ``train()`` calls and
        kept by ``save()``.

    Examples
    --------
    >>> from gensim.test.utils import common_texts
    >>> from gensim_bits import Word2Bits
    >>> model = Word2Bits(common_texts, vector_size=16, min_count=1, bits=1, workers=1)
    >>> sorted(set(model.wv.vectors.ravel().round(4)))
    [-0.3333, 0.3333]
    """

    def __init__(
            self, sentences=None, corpus_file=None, vector_size=100, alpha=0.025, window=5, min_count=5,
            max_vocab_size=None, sample=1e-3, seed=1, workers=3, min_alpha=0.0001,
            sg=0, hs=0, negative=5, ns_exponent=0.75, cbow_mean=1, hashfxn=hash, epochs=5, null_word=0,
            trim_rule=None, sorted_vocab=1, batch_words=MAX_WORDS_IN_BATCH, compute_loss=False, callbacks=(),
            comment=None, max_final_vocab=None, shrink_windows=True, bits=1, thresholded=False,
    ):
        # Validate everything before gensim builds a vocabulary or trains, so a bad
        # argument never leaves a half-built model behind.
        self.bits = check_bits(bits)
        self.thresholded = bool(thresholded)
        for name, value in (("vector_size", vector_size), ("window", window), ("workers", workers)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        _check_supported(sg=sg, hs=hs, negative=negative, corpus_file=corpus_file)
        super().__init__(
            sentences=sentences, vector_size=vector_size, alpha=alpha, window=window, min_count=min_count,
            max_vocab_size=max_vocab_size, sample=sample, seed=seed, workers=workers, min_alpha=min_alpha,
            sg=sg, hs=hs, negative=negative, ns_exponent=ns_exponent, cbow_mean=cbow_mean, hashfxn=hashfxn,
            epochs=epochs, null_word=null_word, trim_rule=trim_rule, sorted_vocab=sorted_vocab,
            batch_words=batch_words, compute_loss=compute_loss, callbacks=callbacks, comment=comment,
            max_final_vocab=max_final_vocab, shrink_windows=shrink_windows,
        )

    @property
    def training_bits(self):
        """Bits the kernel quantizes to in the forward pass (32 for a thresholded run)."""
        return FLOAT_BITS if self.thresholded else self.bits

    @property
    def bytes_per_word(self):
        """Storage of one final vector once its codes are bit-packed."""
        return self.vector_size * self.bits / 8

    # -- weights ---------------------------------------------------------------------------

    def prepare_weights(self, update=False):
        if not update and len(self.wv) == 0:
            if not self.corpus_total_words:
                raise ValueError("the corpus is empty: it has no words to build a vocabulary from")
            raise ValueError(
                f"no word occurs at least min_count={self.min_count} times in the corpus "
                f"({self.corpus_total_words} words); lower min_count or give a larger corpus")
        super().prepare_weights(update=update)

    def init_weights(self):
        super().init_weights()  # sizes wv.vectors and its per-word attributes
        rng = np.random.default_rng(self.seed)
        shape = (len(self.wv), self.layer1_size)
        self.syn0_full = _uniform(rng, shape)
        self.syn1neg = _uniform(rng, shape)
        self._refresh_vectors()

    def update_weights(self):
        old_count = len(self.syn0_full)
        super().update_weights()  # grows wv.vectors and pads syn1neg with zeros
        gained = len(self.wv) - old_count
        rng = np.random.default_rng([self.seed, old_count])
        self.syn0_full = np.vstack([self.syn0_full, _uniform(rng, (gained, self.layer1_size))])
        self.syn1neg[old_count:] = _uniform(rng, (gained, self.layer1_size))
        self._refresh_vectors()

    def estimate_memory(self, vocab_size=None, report=None):
        report = super().estimate_memory(vocab_size=vocab_size, report=report)
        report['syn0_full'] = (vocab_size or len(self.wv)) * self.layer1_size * np.dtype(np.float32).itemsize
        report['total'] += report['syn0_full']
        return report

    def final_vectors(self, bits=None):
        """Q(u + v) of every word as a float32 array; ``bits`` defaults to the model's."""
        return quantize(self.syn0_full + self.syn1neg, self.bits if bits is None else bits)

    def quantized_vectors(self, bits=1):
        """A new KeyedVectors holding Q_bits(u + v), e.g. the T1 baseline of a float run."""
        vectors = KeyedVectors(self.vector_size, count=len(self.wv))
        vectors.index_to_key = list(self.wv.index_to_key)
        vectors.key_to_index = dict(self.wv.key_to_index)
        vectors.expandos = {name: values.copy() for name, values in self.wv.expandos.items()}
        vectors.vectors = self.final_vectors(bits)
        return vectors

    def _refresh_vectors(self):
        self.wv.vectors = self.final_vectors()
        self.wv.norms = None

    # -- training hooks --------------------------------------------------------------------

    def train(self, corpus_iterable=None, corpus_file=None, *args, **kwargs):
        _check_supported(sg=self.sg, hs=self.hs, negative=self.negative, corpus_file=corpus_file)
        return super().train(corpus_iterable, None, *args, **kwargs)

    def _check_training_sanity(self, epochs=0, total_examples=None, total_words=None, **kwargs):
        _check_supported(sg=self.sg, hs=self.hs, negative=self.negative)
        super()._check_training_sanity(epochs=epochs, total_examples=total_examples, total_words=total_words)

    def _get_thread_working_mem(self):
        # error, context and quantized-output-row scratch vectors, private to each worker
        return tuple(matutils.zeros_aligned(self.layer1_size, dtype=np.float32) for _ in range(3))

    def _do_train_job(self, sentences, alpha, inits):
        neu1e, neu1, quantized_row = inits
        tally = train_batch_cbow_bits(
            self, sentences, alpha, neu1e, neu1, quantized_row, self.training_bits, self.compute_loss)
        return tally, self._raw_word_count(sentences)

    def _train_epoch(self, *args, **kwargs):
        report = super()._train_epoch(*args, **kwargs)
        # Callbacks at epoch end look at model.wv, so it shows this epoch's Q(u + v).
        self._refresh_vectors()
        return report

    def __str__(self):
        kind = "thresholded" if self.thresholded else "quantized"
        return (f"{self.__class__.__name__}<vocab={len(self.wv)}, vector_size={self.vector_size}, "
                f"bits={self.bits} ({kind}), alpha={self.alpha}>")


def _uniform(rng, shape):
    return (rng.random(shape, dtype=np.float32) * np.float32(2 * INIT_RANGE) - np.float32(INIT_RANGE))


def _check_supported(sg=0, hs=0, negative=5, corpus_file=None):
    if sg:
        raise ValueError("Word2Bits implements CBOW only (the paper's setting); use sg=0")
    if hs:
        raise ValueError("Word2Bits trains with negative sampling only; use hs=0 and negative > 0")
    if not negative or negative < 1:
        raise ValueError(f"Word2Bits needs negative sampling: negative must be >= 1, got {negative!r}")
    if corpus_file is not None:
        raise ValueError(
            "Word2Bits does not read corpus_file; pass "
            "sentences=gensim.models.word2vec.LineSentence(corpus_file) instead")
