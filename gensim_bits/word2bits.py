"""Word2Bits: word2vec trained with quantized vectors (Lam 2018, "Word2Bits - Quantized Word
Vectors", section 3.2: CBOW; skip-gram is our extension), as a drop-in subclass of
:class:`gensim.models.Word2Vec`.

The model keeps two full-precision matrices, the input vectors ``syn0_full`` and the output
vectors ``syn1neg``, and trains them with the quantized kernel of
:mod:`gensim_bits.word2bits_inner`. What users query, ``model.wv``, always holds the paper's
final vectors Q(u + v), refreshed after every epoch.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any
import stat

import numpy as np
from gensim import matutils
from gensim.models import KeyedVectors, Word2Vec
from gensim.models.word2vec import MAX_WORDS_IN_BATCH

from gensim_bits.quantizers import FLOAT_BITS, check_bits, quantize
from gensim_bits.word2bits_inner import CorpusVocabulary, train_batch_bits, train_corpus_file_part

logger = logging.getLogger(__name__)

#: The paper's hyperparameters (section 4; text8 study used negative=24), for ``Word2Bits(**PAPER_HYPERPARAMETERS)``.
PAPER_HYPERPARAMETERS = dict(window=10, negative=12, min_count=5, sample=1e-4, alpha=0.05, min_alpha=0.0001, epochs=25)

# word2bits.cpp starts both matrices uniform in [-0.5, 0.5): with gensim's all-zero output
# matrix every quantized output row would start as the same +1/3 vector.
INIT_RANGE = 0.5
# Rows of Q(u + v) computed at a time, so refreshing wv never holds a second full matrix.
REFRESH_CHUNK = 65536
# Largest window, negative and vector_size: the kernel's bound (2**30), far above any useful setting.
MAX_INTEGER = 2 ** 30
# Most worker threads: gensim starts them all (and a job queue twice as long) in every
# train() call; 2**30 hung building Thread objects and 10000 failed with "can't start new
# thread". Beyond the cores they only add overhead.
MAX_WORKERS = 1024


class EmptyVocabularyError(ValueError, RuntimeError):
    """Training with no vocabulary: gensim raises RuntimeError, older Word2Bits ValueError."""


class WorkerThreadError(RuntimeError):
    """Training could not start its worker threads: the process's thread or memory limit (a
    container's pids limit, ``ulimit -u`` or ``ulimit -v``) is below what ``workers`` needs."""


def check_threads_start(workers):
    """Start the ``workers + 1`` threads a training epoch needs (gensim's workers and its job
    producer) as idle threads, then stop them all. Raises :class:`WorkerThreadError`, leaving no
    thread behind, when the process cannot start that many: otherwise gensim fails half-way
    through starting them with "can't start new thread" and the threads it did start wait on
    their job queue forever."""
    release, started = threading.Event(), []
    try:
        for _ in range(workers + 1):
            thread = threading.Thread(target=release.wait, daemon=True)
            thread.start()
            started.append(thread)
    except RuntimeError as error:
        raise WorkerThreadError(
            f"workers={workers} needs {workers + 1} training threads, but this process could start "
            f"only {len(started)} ({error}): its thread or memory limit (a container's pids limit, "
            f"ulimit -u or -v) is too low; pass fewer workers (under ulimit -v, MALLOC_ARENA_MAX=2 "
            f"in the environment also helps)") from None
    finally:
        release.set()
        for thread in started:
            thread.join()


class Word2Bits(Word2Vec):
    """CBOW (the paper's) or skip-gram (our extension) with negative sampling, quantized in the forward pass.

    Takes every argument of :class:`gensim.models.Word2Vec` with the same name, default and
    meaning, plus ``bits`` and ``thresholded``. Differences from gensim:

    * ``hs=1`` (hierarchical softmax, alone or with negative sampling) runs through the same
      kernel: Q of each inner-node row on the word's Huffman path in the forward pass, the
      straight-through update, the clipped gradient below. The inner-node rows start uniform
      like the others. With ``negative=0`` a word has no output row, so its final vector is Q
      of its input row.
    * ``corpus_file=`` is read by a compiled reader in each worker without the GIL, as in
      gensim. Worker i of n trains the lines that *start* in the i-th n-th of the file's
      bytes, so every line is trained exactly once an epoch (gensim's workers each read a
      word count from their offset). Tokens are split on the whitespace of Python's
      ``str.split()`` (Unicode spaces included), as gensim's vocabulary scan splits them, so
      every counted word is trained; lines of any length are trained whole. Compressed files,
      FIFOs and devices raise ValueError.
    * ``sg=1`` trains skip-gram with negative sampling through the same kernel: the context
      word's input row and the output rows enter quantized, the gradient passes straight
      through to the full-precision rows, and the final vectors are Q(input + output row).
      The paper trains CBOW only; this is our extension.
    * Both weight matrices start uniform in [-0.5, 0.5), as in the authors' code.
    * A score with ``|f| >= 6`` still trains, with the clipped gradient of word2vec.c
      (gensim skips such samples, which would freeze a quantized model).
    * A word with no context word in its window trains nothing (word2bits.cpp), where gensim
      still updates nothing but draws its negatives.
    * ``cbow_mean=1`` (the default, and the paper's setting) averages the quantized context
      vectors over the context words present and adds the undivided error to each of them, as
      word2vec.c, word2bits.cpp and gensim do. ``cbow_mean=0`` sums them and divides the error
      by the context size, as gensim does.
    * ``wv.vectors_lockf`` scales the updates of a word's input row *and* its output row, so
      a locked word's final vector Q(u + v) stays exactly as it was (gensim locks the input row,
      which is its whole final vector).
    * Rows written into ``wv.vectors`` before ``train()`` (seeding with pretrained vectors,
      ``intersect_word2vec_format``) are adopted: u is set to ``written - v``, so Q(u + v)
      starts from the written row. ``wv.vectors`` is updated in place after every epoch, so a
      reference to it stays current.
    * A job of more than 10000 kept words (``batch_words`` > 10000) is trained in chunks of
      10000 words, every word of it; gensim's kernel drops the rest of the job.
    * Every integer that reaches the kernel is range-checked in Python: ``vector_size``,
      ``window`` and ``negative`` in [1, 2**30] (``negative`` >= 1), ``workers`` in [1, 1024], ``batch_words``
      >= 1; ``alpha``, ``min_alpha`` and ``sample`` finite and >= 0. gensim would fail later
      or silently train nothing. An error inside a worker thread is raised by ``train()``
      (gensim's worker would die and leave training waiting forever).
    * ``predict_output_word`` scores with the model's own forward pass (Q(u) of the context,
      Q(v) of the outputs).
    * Training with no vocabulary raises :class:`EmptyVocabularyError`, a subclass of both
      gensim's RuntimeError and ValueError.
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
            self, sentences: Iterable[Sequence[str]] | None = None, corpus_file: str | os.PathLike | None = None,
            vector_size: int = 100, alpha: float = 0.025, window: int = 5, min_count: int = 5,
            max_vocab_size: int | None = None, sample: float = 1e-3, seed: int = 1, workers: int = 3,
            min_alpha: float = 0.0001, sg: int = 0, hs: int = 0, negative: int = 5, ns_exponent: float = 0.75,
            cbow_mean: int = 1, hashfxn: Callable[[str], int] = hash, epochs: int = 5, null_word: int = 0,
            trim_rule: Callable[..., int] | None = None, sorted_vocab: int = 1, batch_words: int = MAX_WORDS_IN_BATCH,
            compute_loss: bool = False, callbacks: Sequence[Any] = (), comment: str | None = None,
            max_final_vocab: int | None = None, shrink_windows: bool = True, bits: int = 1,
            thresholded: bool = False,
    ) -> None:
        # Validate everything before gensim builds a vocabulary or trains, so a bad
        # argument never leaves a half-built model behind.
        self.bits = check_bits(bits)
        self.thresholded = bool(thresholded)
        check_arguments(vector_size=vector_size, window=window, negative=negative, workers=workers,
                        batch_words=batch_words, epochs=epochs, alpha=alpha, min_alpha=min_alpha, sample=sample)
        if corpus_file is not None:  # before gensim's vocabulary scan opens it
            check_corpus_file(corpus_file)
        super().__init__(
            sentences=sentences, corpus_file=corpus_file, vector_size=vector_size, alpha=alpha, window=window,
            min_count=min_count, max_vocab_size=max_vocab_size, sample=sample, seed=seed, workers=workers,
            min_alpha=min_alpha, sg=sg, hs=hs, negative=negative, ns_exponent=ns_exponent, cbow_mean=cbow_mean,
            hashfxn=hashfxn, epochs=epochs, null_word=null_word, trim_rule=trim_rule, sorted_vocab=sorted_vocab,
            batch_words=batch_words, compute_loss=compute_loss, callbacks=callbacks, comment=comment,
            max_final_vocab=max_final_vocab, shrink_windows=shrink_windows,
        )

    @property
    def training_bits(self) -> int:
        """Bits the kernel quantizes to in the forward pass (32 for a thresholded run)."""
        return FLOAT_BITS if self.thresholded else self.bits

    @property
    def bytes_per_word(self) -> float:
        """Storage of one final vector once its codes are bit-packed."""
        return self.vector_size * self.bits / 8

    # -- weights ---------------------------------------------------------------------------

    def init_weights(self) -> None:
        super().init_weights()  # sizes wv.vectors and its per-word attributes
        rng = np.random.default_rng(self.seed)
        shape = (len(self.wv), self.layer1_size)
        self.syn0_full = _uniform(rng, shape)
        # Without negative sampling there is no output row per word: v = 0 and the final vectors are Q(u).
        self.syn1neg = _uniform(rng, shape) if self.negative else np.zeros(shape, dtype=np.float32)
        if self.hs:  # gensim's zero rows would all quantize to the same vector
            self.syn1 = _uniform(rng, shape)
        self._refresh_vectors()

    def update_weights(self) -> None:
        old_count = len(self.syn0_full)
        self._adopt_written_vectors()  # before gensim copies wv.vectors into a larger array
        super().update_weights()  # grows wv.vectors and pads syn1neg with zeros
        gained = len(self.wv) - old_count
        rng = np.random.default_rng([self.seed, old_count])
        self.syn0_full = np.vstack([self.syn0_full, _uniform(rng, (gained, self.layer1_size))])
        if not self.negative:
            self.syn1neg = np.zeros_like(self.syn0_full)
        else:
            self.syn1neg[old_count:] = _uniform(rng, (gained, self.layer1_size))
        if self.hs:
            self.syn1[old_count:] = _uniform(rng, (gained, self.layer1_size))
        self._refresh_vectors()

    def estimate_memory(self, vocab_size: int | None = None, report: dict[str, int] | None = None) -> dict[str, int]:
        report = super().estimate_memory(vocab_size=vocab_size, report=report)
        report['syn0_full'] = (vocab_size or len(self.wv)) * self.layer1_size * np.dtype(np.float32).itemsize
        report['total'] += report['syn0_full']
        return report

    def final_vectors(self, bits: int | None = None) -> np.ndarray:
        """Q(u + v) of every word as a float32 array; ``bits`` defaults to the model's."""
        return quantize(self.syn0_full + self.syn1neg, self.bits if bits is None else bits)

    def quantized_vectors(self, bits: int = 1) -> KeyedVectors:
        """A new KeyedVectors holding Q_bits(u + v), e.g. the T1 baseline of a float run."""
        vectors = KeyedVectors(self.vector_size, count=len(self.wv))
        vectors.index_to_key = list(self.wv.index_to_key)
        vectors.key_to_index = dict(self.wv.key_to_index)
        vectors.expandos = {name: values.copy() for name, values in self.wv.expandos.items()}
        vectors.vectors = self.final_vectors(bits)
        return vectors

    def _refresh_vectors(self):
        """Write Q(u + v) into ``wv.vectors``, in place when it has the right shape.

        In place, so a reference a user took to ``model.wv.vectors`` stays current. A per-row
        fingerprint of what was written lets the next ``train()`` find rows the user wrote.
        """
        shape = (len(self.syn0_full), self.layer1_size)
        vectors = getattr(self.wv, "vectors", None)
        if not (isinstance(vectors, np.ndarray) and vectors.shape == shape and vectors.dtype == np.float32
                and vectors.flags.writeable):
            vectors = self.wv.vectors = np.empty(shape, dtype=np.float32)
        for start in range(0, shape[0], REFRESH_CHUNK):
            stop = start + REFRESH_CHUNK
            vectors[start:stop] = quantize(self.syn0_full[start:stop] + self.syn1neg[start:stop], self.bits)
        self.wv.norms = None
        self._published = (vectors, _fingerprints(vectors))

    def _adopt_written_vectors(self):
        """Rows of ``wv.vectors`` written since the last refresh become the model's vectors.

        Seeding (``wv.vectors[i] = pretrained``, ``intersect_word2vec_format``) then behaves as
        in gensim: the input row u is set so that u + v equals the written row, so the final
        vector Q(u + v) starts as Q(written row), and ``vectors_lockf`` can hold it there.
        """
        vectors = getattr(self.wv, "vectors", None)
        if getattr(self, "syn0_full", None) is None or vectors is None:
            return
        if vectors.shape != self.syn0_full.shape:
            raise ValueError(f"wv.vectors has shape {vectors.shape}; the model's vocabulary and vector_size "
                             f"need {self.syn0_full.shape}")
        published = getattr(self, "_published", None)
        if published is None:  # a loaded model: what it published is Q(u + v) of its weights
            published = (None, np.concatenate([
                _fingerprints(quantize(self.syn0_full[start:start + REFRESH_CHUNK]
                                       + self.syn1neg[start:start + REFRESH_CHUNK], self.bits))
                for start in range(0, len(self.syn0_full), REFRESH_CHUNK)] or [np.zeros(0)]))
        published_array, fingerprints = published
        written = np.flatnonzero(_fingerprints(vectors) != fingerprints)
        if vectors is not published_array or len(written):
            if len(written):
                logger.info("adopting %d rows written into wv.vectors before training", len(written))
            self.syn0_full[written] = vectors[written] - self.syn1neg[written]
            self._refresh_vectors()

    def save(self, *args: Any, **kwargs: Any) -> None:
        """gensim's ``save``, without the training-time helpers (rebuilt as needed after ``load``)."""
        kwargs["ignore"] = set(kwargs.get("ignore", ())) | {"_published", "_corpus_vocabulary", "_worker_error"}
        return super().save(*args, **kwargs)

    # -- training hooks --------------------------------------------------------------------

    def train(self, corpus_iterable: Iterable[Sequence[str]] | None = None,
              corpus_file: str | os.PathLike | None = None, *args: Any, **kwargs: Any) -> tuple[int, int]:
        self._check_training_arguments()
        if corpus_file is not None:
            check_corpus_file(corpus_file)
        check_threads_start(self.workers)
        self._adopt_written_vectors()
        lockf = getattr(self.wv, "vectors_lockf", None)
        lockf = np.ones(1, dtype=np.float32) if lockf is None else lockf
        self.wv.vectors_lockf = np.ascontiguousarray(lockf, dtype=np.float32).reshape(-1)
        self._worker_error = None
        # The reader's hash table, built once a train() call (not once an epoch).
        self._corpus_vocabulary = CorpusVocabulary(self.wv, self.hs) if corpus_file is not None else None
        try:
            return super().train(corpus_iterable, corpus_file, *args, **kwargs)
        finally:
            self._corpus_vocabulary = None

    def _check_training_arguments(self):
        # Attributes may have been changed since the constructor checked them.
        check_arguments(vector_size=self.vector_size, window=self.window, negative=self.negative,
                        workers=self.workers, batch_words=self.batch_words, epochs=self.epochs,
                        alpha=self.alpha, min_alpha=self.min_alpha, sample=self.sample)

    def _check_training_sanity(self, epochs=0, total_examples=None, total_words=None, **kwargs):
        self._check_training_arguments()
        if not self.wv.key_to_index:
            if not self.corpus_total_words:
                raise EmptyVocabularyError(
                    "you must first build vocabulary before training the model: the corpus is empty")
            raise EmptyVocabularyError(
                f"you must first build vocabulary before training the model: no word occurs at least "
                f"min_count={self.min_count} times in the corpus ({self.corpus_total_words} words)")
        super()._check_training_sanity(epochs=epochs, total_examples=total_examples, total_words=total_words)

    def _get_thread_working_mem(self):
        # error, context and quantized-output-row scratch vectors, private to each worker
        return tuple(matutils.zeros_aligned(self.layer1_size, dtype=np.float32) for _ in range(3))

    def _do_train_job(self, sentences, alpha, inits):
        neu1e, neu1, quantized_row = inits
        try:
            tally = train_batch_bits(
                self, sentences, alpha, neu1e, neu1, quantized_row, self.training_bits, self.compute_loss)
        except Exception as error:  # noqa: BLE001 - re-raised in the calling thread
            # gensim's worker thread would die here and leave the main thread waiting forever
            # for its report; keep the first error and raise it once the epoch winds down.
            if getattr(self, "_worker_error", None) is None:
                self._worker_error = error
            tally = 0
        return tally, self._raw_word_count(sentences)

    def _do_train_epoch(self, corpus_file, thread_id, offset, cython_vocab, thread_private_mem, cur_epoch,
                        total_examples=None, total_words=None, **kwargs):
        # gensim's corpus_file hook, called in each worker thread. Worker i trains the lines
        # that start in its 1/workers of the file's bytes (gensim passes only the start).
        neu1e, neu1, quantized_row = thread_private_mem
        size = os.path.getsize(corpus_file)
        start, end = size * thread_id // self.workers, size * (thread_id + 1) // self.workers
        try:
            return train_corpus_file_part(
                self, corpus_file, self._corpus_vocabulary, start, end, (total_words or 0) / self.workers,
                cur_epoch, neu1e, neu1, quantized_row, self.training_bits, self.compute_loss)
        except Exception as error:  # noqa: BLE001 - re-raised in the calling thread, as in _do_train_job
            if getattr(self, "_worker_error", None) is None:
                self._worker_error = error
            return 0, 0, 0

    def _train_epoch_corpusfile(self, *args, **kwargs):
        return self._finish_epoch(super()._train_epoch_corpusfile(*args, **kwargs))

    def _train_epoch(self, *args, **kwargs):
        return self._finish_epoch(super()._train_epoch(*args, **kwargs))

    def _finish_epoch(self, report):
        error, self._worker_error = getattr(self, "_worker_error", None), None
        if error is not None:
            raise error
        # Callbacks at epoch end look at model.wv, so it shows this epoch's Q(u + v).
        self._refresh_vectors()
        return report

    def predict_output_word(self, context_words_list: Sequence[str],
                            topn: int = 10) -> list[tuple[str, float]] | None:
        """gensim's ``predict_output_word``, scored with the model's own forward pass.

        The hidden layer is the mean (``cbow_mean=1``) or sum of Q(u) of the context words, and
        each word's score is its dot product with Q(v) of its output row, as in training;
        the softmax over all words is returned for the ``topn`` best, as ``(word, probability)``.
        Memory: one float32 chunk of ``REFRESH_CHUNK`` rows at a time.
        """
        if not self.negative:
            raise RuntimeError("predict_output_word needs a model trained with negative sampling (negative > 0)")
        if (getattr(self, "syn0_full", None) is None or getattr(self, "syn1neg", None) is None
                or len(self.syn0_full) != len(self.wv)):
            raise RuntimeError("Parameters required for predicting the output words not found.")
        indices = [self.wv.get_index(word) for word in context_words_list if word in self.wv]
        if not indices:
            logger.warning("All the input context words are out-of-vocabulary for the current model.")
            return None
        bits = self.training_bits
        hidden = quantize(self.syn0_full[indices], bits).astype(np.float64).sum(axis=0)
        if self.cbow_mean:
            hidden /= len(indices)
        scores = np.concatenate([
            quantize(self.syn1neg[start:start + REFRESH_CHUNK], bits) @ hidden
            for start in range(0, len(self.syn1neg), REFRESH_CHUNK)])
        probabilities = np.exp(scores - scores.max())
        probabilities /= probabilities.sum()
        best = matutils.argsort(probabilities, topn=topn, reverse=True)
        return [(self.wv.index_to_key[index], float(probabilities[index])) for index in best]

    def __str__(self):
        kind = "thresholded" if self.thresholded else "quantized"
        return (f"{self.__class__.__name__}<vocab={len(self.wv)}, vector_size={self.vector_size}, "
                f"bits={self.bits} ({kind}), alpha={self.alpha}>")


def _uniform(rng, shape):
    return (rng.random(shape, dtype=np.float32) * np.float32(2 * INIT_RANGE) - np.float32(INIT_RANGE))


def check_corpus_file(corpus_file):
    """A readable, uncompressed regular file, as gensim's corpus_file mode needs; ValueError otherwise.

    Checked with ``stat`` before anything opens it: opening a FIFO blocks until a writer
    comes, and corpus_file workers seek to byte offsets, which a pipe or device cannot do.
    """
    if not isinstance(corpus_file, (str, os.PathLike)):
        raise TypeError(f"corpus_file must be a path, got {type(corpus_file).__name__}")
    mode = os.stat(corpus_file).st_mode  # FileNotFoundError names the path
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a character device" if stat.S_ISCHR(mode)
                else "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a file")
        raise ValueError(f"corpus_file {os.fspath(corpus_file)!r} is {kind}; corpus_file mode reads byte ranges "
                         "of a regular file in parallel (pass sentences=LineSentence(path) to read a stream)")
    with open(corpus_file, "rb") as handle:  # IsADirectoryError names the path
        magic = handle.read(3)
    if magic[:2] == b"\x1f\x8b" or magic == b"BZh":
        raise ValueError(f"corpus_file {os.fspath(corpus_file)!r} is compressed; corpus_file mode reads "
                         "plain text (decompress it, or pass sentences=LineSentence(path))")


def _fingerprints(vectors):
    """One float64 per row that changes when any value of the row changes (a random projection)."""
    weights = np.random.default_rng(0).standard_normal(vectors.shape[1])
    return np.concatenate([vectors[start:start + REFRESH_CHUNK].astype(np.float64) @ weights
                           for start in range(0, len(vectors), REFRESH_CHUNK)] or [np.zeros(0)])


def _check_integer(name, value, low, high, note=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        note = f" ({note})" if note else ""
        raise ValueError(f"{name} must be an integer in [{low}, {high}]{note}, got {value!r}")


def _check_real(name, value, low=-np.inf):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or value < low:
        raise ValueError(f"{name} must be a finite number >= {low}, got {value!r}")


def check_arguments(vector_size, window, negative, workers, batch_words, epochs, alpha, min_alpha, sample):
    """Range-check every argument that reaches the compiled kernel as a C number.

    A value a C ``int`` cannot hold would otherwise fail inside a worker thread; the bounds
    are the kernel's (``MAX_INTEGER``), far above any useful setting.
    """
    _check_integer("vector_size", vector_size, 1, MAX_INTEGER)
    _check_integer("window", window, 1, MAX_INTEGER)
    _check_integer("negative", negative, 0, MAX_INTEGER)
    _check_integer("workers", workers, 1, MAX_WORKERS, "threads; more than the machine's cores only add overhead")
    _check_integer("batch_words", batch_words, 1, 2 ** 62)
    _check_integer("epochs", epochs, 0, 2 ** 62)
    _check_real("alpha", alpha, 0.0)
    _check_real("min_alpha", min_alpha, 0.0)
    _check_real("sample", sample, 0.0)
