"""Word2Bits vectors kept bit-packed in memory and searched exactly on the bits (Lam 2018,
section 3: 1-bit cosine = 1 - 2*hamming/d; 2-bit values s1/2 + s2/4, see ``packing``).

:class:`QuantizedKeyedVectors` answers gensim's ``KeyedVectors`` queries
(``most_similar``, ``most_similar_cosmul``, ``similarity``, ``doesnt_match``, ``rank``, ...)
with the same arguments and the same results as gensim on the unpacked float vectors,
while holding d*bits/8 bytes a word.

Example::

    >>> from gensim_bits import QuantizedKeyedVectors
    >>> qkv = QuantizedKeyedVectors.from_keyed_vectors(model.wv, bits=1)  # or .from_model(model)
    >>> qkv.most_similar("king", topn=3)
    >>> qkv.save("vectors.gbits"); qkv = QuantizedKeyedVectors.load("vectors.gbits", mmap="r")
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from functools import cached_property
from numbers import Integral
from typing import Any, Union

import numpy as np
from gensim.models import KeyedVectors

from gensim_bits import fileformat, packing, word2vec_format
from gensim_bits import search as packed_search
from gensim_bits.search import KEY_TYPES, MODE_MUL, QueryTerms, as_list, check_search_arguments
from gensim_bits.quantizers import levels, quantize_codes
from gensim_bits.vocabulary import KeyToIndex, Vocabulary, release_free_heap

logger = logging.getLogger(__name__)

#: A word, or gensim's integer key.
Key = Union[str, int]
#: Query terms as gensim takes them: one word or vector, or a list of them.
Terms = Union[Key, np.ndarray, Sequence[Union[Key, np.ndarray]], None]
#: ``most_similar``'s answer: (word, similarity) pairs, best first.
Neighbours = list[tuple[str, float]]

# Rows converted at a time, so packing a large float matrix never holds a second full copy.
CONVERT_CHUNK = 65536
# How far a value may sit from its level and still count as on it (text files keep ~8 digits).
LEVEL_TOLERANCE = 1e-6
# gensim's most_similar_cosmul epsilon.
COSMUL_EPSILON = 1e-6


def infer_bits(vectors):
    """The smallest packed bit width whose levels contain every value of ``vectors``, or None."""
    for bits in packing.PACKED_BITS:
        codes = quantize_codes(vectors, bits)
        if np.all(np.abs(levels(bits)[codes] - vectors) <= LEVEL_TOLERANCE):
            return bits
    return None


class QuantizedKeyedVectors:
    """Word vectors stored as bit-packed Word2Bits codes, with gensim's query methods.

    Args:
        codes: uint8 array (words, bits * ceil(vector_size / 8)) in the layout of
            :mod:`gensim_bits.packing` (build it with :meth:`from_keyed_vectors`).
        bits: 1, 2, 4 or 8.
        vector_size: the dimension d.
        index_to_key: the words (str), most frequent first as gensim orders them; a list or
            a :class:`~gensim_bits.vocabulary.Vocabulary`.
        counts: optional word frequencies (int64), kept in files and conversions.

    Memory: ``nbytes`` (the codes), plus the vocabulary (its text and 24 bytes a word), plus
    8 bytes a word of counts and, at 2 bits and more, 4 bytes a word of norms (at 1 bit every
    norm is sqrt(d)/3 and none is stored).
    """

    def __init__(self, codes: np.ndarray, bits: int, vector_size: int, index_to_key: Sequence[str],
                 counts: np.ndarray | Sequence[int] | None = None) -> None:
        # The same validator as save() and load(), so every object built here can be saved and read back.
        self.bits, self.vector_size, vocabulary, self.counts, self.codes = fileformat.check_contents(
            bits, vector_size, index_to_key, counts, codes)
        # Compact list and dict stand-ins: ~24 bytes a word instead of ~170 (see vocabulary.py).
        self.index_to_key: Vocabulary = vocabulary
        self.key_to_index = KeyToIndex(vocabulary)
        if self.bits == 1:
            self.norms = np.broadcast_to(np.sqrt(self.vector_size) * packing.level_unit(1), (len(self),))
        else:
            self.norms = np.sqrt(packing.squared_norms(codes, self.bits, self.vector_size)).astype(np.float32)

    # ---------------------------------------------------------------- conversions

    @classmethod
    def from_keyed_vectors(cls, keyed_vectors: KeyedVectors, bits: int | None = None,
                           quantize: bool = False) -> QuantizedKeyedVectors:
        """Pack a gensim ``KeyedVectors`` whose values lie on the Word2Bits levels.

        Args:
            keyed_vectors: gensim KeyedVectors (e.g. ``Word2Bits(...).wv``).
            bits: 1, 2, 4 or 8; None infers the smallest width whose levels hold every value.
            quantize: if True, apply ``quantizers.quantize(x, bits)`` to values that are not
                on the levels (float vectors, thresholded); if False such values raise ValueError.
        """
        vectors = keyed_vectors.vectors
        if bits is None:
            if quantize:
                raise ValueError("quantize=True needs an explicit bits=")
            bits = infer_bits(vectors)
            if bits is None:
                raise ValueError(
                    "the vectors are not on the levels of any packed bit width "
                    f"{packing.PACKED_BITS}; pass bits= and quantize=True to quantize them")
        bits = packing.check_packed_bits(bits)
        rows = []
        for start in range(0, len(vectors), CONVERT_CHUNK):
            chunk = np.asarray(vectors[start:start + CONVERT_CHUNK], dtype=np.float32)
            codes = quantize_codes(chunk, bits)
            if not quantize and not np.all(np.abs(levels(bits)[codes] - chunk) <= LEVEL_TOLERANCE):
                raise ValueError(
                    f"the vectors are not on the {bits}-bit Word2Bits levels {levels(bits).tolist()}; "
                    "pass quantize=True to apply quantizers.quantize")
            rows.append(packing.pack_codes(codes, bits))
        width = bits * packing.plane_bytes(keyed_vectors.vector_size)
        codes = np.concatenate(rows) if rows else np.zeros((0, width), dtype=np.uint8)
        counts = keyed_vectors.expandos.get("count")
        if counts is not None and len(counts) != len(keyed_vectors.index_to_key):
            counts = None
        return cls(codes, bits, keyed_vectors.vector_size, keyed_vectors.index_to_key, counts)

    @classmethod
    def from_model(cls, model: Any) -> QuantizedKeyedVectors:
        """Pack the final vectors ``model.wv`` of a trained :class:`gensim_bits.Word2Bits`."""
        bits = getattr(model, "bits", None)
        if bits is None:
            raise TypeError(f"expected a Word2Bits model with a .bits attribute, got {type(model).__name__}")
        if bits not in packing.PACKED_BITS:
            raise ValueError(f"the model was trained with bits={bits} (float); use "
                             "from_keyed_vectors(model.wv, bits=..., quantize=True) to threshold it")
        return cls.from_keyed_vectors(model.wv, bits=bits)

    def to_keyed_vectors(self) -> KeyedVectors:
        """A plain gensim ``KeyedVectors`` with the unpacked float32 values and the counts."""
        keyed_vectors = KeyedVectors(self.vector_size, count=0)
        if len(self):
            keyed_vectors.add_vectors(list(self.index_to_key), self.vectors_for(np.arange(len(self))))
            # add_vectors(extras=...) is broken in gensim 4.4 (it iterates the dict's keys).
            keyed_vectors.allocate_vecattrs(attrs=["count"], types=[np.int64])
            keyed_vectors.expandos["count"][:] = self.counts
        return keyed_vectors

    def vectors_for(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Unpacked float32 vectors of the rows ``indices``."""
        return packing.unpack_values(self.codes[np.asarray(indices, dtype=np.int64)], self.bits, self.vector_size)

    # ---------------------------------------------------------------- files

    def save(self, path: str | os.PathLike) -> None:
        """Write the packed file atomically (see :mod:`gensim_bits.fileformat`)."""
        fileformat.write_packed(path, self.bits, self.vector_size, self.index_to_key, self.counts, self.codes)

    @classmethod
    def load(cls, path: str | os.PathLike, mmap: str | None = None) -> QuantizedKeyedVectors:
        """Read a file written by :meth:`save`; ``mmap='r'`` maps the codes read-only.

        Raises :class:`gensim_bits.fileformat.QuantizedVectorsFormatError` for a truncated,
        corrupt or inconsistent file.
        """
        bits, dimension, vocabulary, counts, codes = fileformat.read_packed(path, mmap=mmap)
        vectors = cls(codes, bits, dimension, vocabulary, counts)
        release_free_heap()
        return vectors

    def save_word2vec_format(self, fname: str | os.PathLike, binary: bool = False, **kwargs: Any) -> str | None:
        """Write the unpacked values in word2vec text or binary format (through gensim), atomically,
        and the counts in gensim's vocabulary file beside them (``fname + '.vocab'``; ``fvocab``
        names another path, or False for none). Returns the counts file's path, or None.

        Words these formats cannot carry (empty, or holding a space or newline) raise ValueError
        naming the word before anything is written; see :mod:`gensim_bits.word2vec_format`.
        """
        word2vec_format.check_words(self.index_to_key)
        return word2vec_format.save_word2vec(self.to_keyed_vectors(), fname, binary=binary, **kwargs)

    @classmethod
    def load_word2vec_format(cls, fname: str | os.PathLike, binary: bool = False, bits: int | None = None,
                             quantize: bool = False, **kwargs: Any) -> QuantizedKeyedVectors:
        """Read a word2vec text/binary file and pack it; see :meth:`from_keyed_vectors`.

        ``kwargs`` are gensim's (``limit``, ``encoding``, ``unicode_errors``). The reader
        (:func:`gensim_bits.word2vec_format.read_word2vec`) checks the header against the file
        before allocating and raises ``Word2VecFormatError`` (a ValueError) for a bad file.
        """
        keyed_vectors = word2vec_format.read_word2vec(fname, binary=binary, **kwargs)
        return cls.from_keyed_vectors(keyed_vectors, bits=bits, quantize=quantize)

    # ---------------------------------------------------------------- lookup

    @property
    def nbytes(self) -> int:
        """Bytes of the packed codes."""
        return int(self.codes.nbytes)

    def __len__(self):
        return len(self.index_to_key)

    def __contains__(self, key):
        return self.has_index_for(key)

    def __repr__(self):
        return (f"<QuantizedKeyedVectors bits={self.bits} vector_size={self.vector_size} "
                f"words={len(self)} codes={self.nbytes} bytes>")

    def has_index_for(self, key: Key) -> bool:
        return self.get_index(key, -1) >= 0

    def get_index(self, key: Key, default: int | None = None) -> int:
        """Row of ``key`` (or ``key`` itself if it is an int row number), as gensim does."""
        index = self.index_to_key.find(key)
        if index >= 0:
            return index
        if isinstance(key, Integral) and 0 <= key < len(self):
            return int(key)
        if default is not None:
            return default
        raise KeyError(f"Key '{key}' not present")

    def get_vecattr(self, key: Key, attr: str) -> int:
        if attr != "count":
            raise KeyError(f"QuantizedKeyedVectors stores only the 'count' attribute, not {attr!r}")
        return int(self.counts[self.get_index(key)])

    def get_vector(self, key: Key, norm: bool = False) -> np.ndarray:
        """The unpacked float32 vector of ``key``; unit length if ``norm``."""
        index = self.get_index(key)
        vector = self.vectors_for([index])[0]
        return vector / np.float32(self.norms[index]) if norm else vector

    def __getitem__(self, key_or_keys):
        if isinstance(key_or_keys, KEY_TYPES):
            return self.get_vector(key_or_keys)
        return np.vstack([self.get_vector(key) for key in key_or_keys])

    # ---------------------------------------------------------------- similarity

    def cosines(self, indices: Sequence[int] | np.ndarray, start: int = 0, end: int | None = None) -> np.ndarray:
        """Cosine similarities (end - start, len(indices)) of rows ``start:end`` with rows ``indices``."""
        indices = np.asarray(indices, dtype=np.int64)
        end = len(self) if end is None else end
        dots = packing.dots_with_packed(self.codes[start:end], self.codes[indices], self.bits, self.vector_size)
        # float32 norms can put a word's cosine with itself a hair above 1.
        return np.clip(dots / np.outer(self.norms[start:end], self.norms[indices]), -1.0, 1.0)

    def _dots_with_vector(self, vector, start, end):
        return packing.dots_with_vector(self.codes[start:end], vector, self.bits, self.vector_size)

    def similarity(self, w1: Key, w2: Key) -> float:
        """Cosine similarity of two keys."""
        first = self.get_index(w1)
        return float(self.cosines([self.get_index(w2)], first, first + 1)[0, 0])

    def distance(self, w1: Key, w2: Key) -> float:
        """Cosine distance, ``1 - similarity``."""
        return 1.0 - self.similarity(w1, w2)

    def distances(self, word_or_vector: Key | np.ndarray, other_words: Sequence[Key] = ()) -> np.ndarray:
        """Cosine distances from a key or vector to ``other_words`` (default: every word)."""
        if isinstance(word_or_vector, KEY_TYPES):
            index = self.get_index(word_or_vector)
            sims = self.cosines([index])[:, 0]
        else:
            vector = np.asarray(word_or_vector, dtype=np.float64)
            norm = np.linalg.norm(vector)  # a zero vector is similar to nothing, as in most_similar
            sims = np.zeros(len(self)) if norm == 0 else np.clip(
                self._dots_with_vector(vector, 0, len(self)) / (self.norms * norm), -1.0, 1.0)
        if other_words:
            sims = sims[[self.get_index(word) for word in other_words]]
        return (1.0 - sims).astype(np.float32)

    @cached_property
    def packed_index(self):
        """The codes, norms and vocabulary prepared for the compiled search (built on first use)."""
        return packed_search.packed_index(self)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("packed_index", None)  # compiled state, rebuilt on first use
        return state

    def most_similar(self, positive: Terms = None, negative: Terms = None, topn: int | None = 10,
                     clip_start: int = 0, clip_end: int | None = None, restrict_vocab: int | None = None,
                     indexer: Any = None, workers: int = 1) -> Neighbours | np.ndarray:
        """gensim's ``KeyedVectors.most_similar`` on the packed codes, same arguments and results.

        The query is the normalized mean of the unit vectors of the positive keys (weight +1
        or given) and negative keys (weight -1); vectors enter as they are. Its dot product
        with every row is a sum of exact popcount dot products (one per query word) plus one
        lookup-table pass for any raw vectors, and the kernel keeps the ``topn`` best rows
        (``topn`` is clipped to the words searched, as gensim returns at most that many).
        Ties are ordered by row (lower index first). ``workers`` threads split the rows
        (None or 0: every core); for many queries at once see :meth:`search`.
        """
        if (negative is None and type(positive) is str and type(topn) is int and topn > 0 and clip_start == 0
                and clip_end is None and restrict_vocab is None and indexer is None and type(workers) is int
                and workers == 1):
            # One word, the common call: one compiled call from the key to the result list.
            return self.packed_index.most_similar_word(positive, topn)
        check_search_arguments(topn, workers, clip_start=clip_start, clip_end=clip_end, restrict_vocab=restrict_vocab)
        if isinstance(topn, Integral) and topn < 1:
            return []
        clip_end = clip_end or len(self)
        if restrict_vocab:
            clip_start, clip_end = 0, restrict_vocab
        if type(topn) is int and indexer is None and type(workers) is int and workers == 1:
            words = packed_search.words_only(positive, negative)
            if words is not None:  # words only (an analogy, say): compiled from the keys to the list
                keys, weights = words
                if len(keys) == 1 and weights[0] > 0:
                    return self.packed_index.most_similar_word(keys[0], topn, clip_start, clip_end)
                return self.packed_index.most_similar_rows(self.packed_index.rows_of(keys), weights, topn,
                                                           clip_start, clip_end)
        if indexer is not None and isinstance(topn, int):
            mean, mean_norm = packed_search.add_mean_query(self, self._new_terms(), positive, negative,
                                                           want_mean=True)
            return indexer.most_similar((mean / mean_norm if mean_norm else mean).astype(np.float32), topn)
        if isinstance(positive, KEY_TYPES) and not negative:  # one word: no Python work per term
            terms = packed_search.word_terms(self, [self.get_index(positive)])
        else:
            terms = self._new_terms()
            packed_search.add_mean_query(self, terms, positive, negative)
        if not topn:
            return self._run_search(terms, 0, clip_start, clip_end)[0][0].astype(np.float32)
        scores, rows = self._run_search(terms, self._clip_topn(topn, clip_start, clip_end), clip_start, clip_end,
                                        workers=workers)
        return self._neighbours(scores[0], rows[0])

    def similar_by_key(self, key: Key, topn: int | None = 10,
                       restrict_vocab: int | None = None) -> Neighbours | np.ndarray:
        return self.most_similar(positive=[key], topn=topn, restrict_vocab=restrict_vocab)

    similar_by_word = similar_by_key

    def similar_by_vector(self, vector: np.ndarray, topn: int | None = 10,
                          restrict_vocab: int | None = None) -> Neighbours | np.ndarray:
        return self.most_similar(positive=[vector], topn=topn, restrict_vocab=restrict_vocab)

    def most_similar_cosmul(self, positive: Terms = None, negative: Terms = None, topn: int | None = 10,
                            restrict_vocab: int | None = None, workers: int = 1) -> Neighbours | np.ndarray:
        """gensim's ``most_similar_cosmul`` (Levy & Goldberg 2014, 3CosMul, epsilon 1e-6).

        Cosines are shifted to [0, 1] as (1 + cos) / 2. Unlike gensim 4.4, ``restrict_vocab``
        is honoured: only the first ``restrict_vocab`` words are searched. Runs in the same
        top-k kernel as :meth:`most_similar`.
        """
        check_search_arguments(topn, workers, restrict_vocab=restrict_vocab)
        if isinstance(topn, Integral) and topn < 1:
            return []
        positive, negative = as_list(positive), as_list(negative)
        if not positive:
            raise ValueError("cannot compute similarity with no input")
        end = min(restrict_vocab or len(self), len(self))
        terms = self._new_terms()
        excluded = set()
        for items, is_negative in ((positive, False), (negative, True)):
            for term in items:  # type: ignore[union-attr]  # lists now: as_list above
                if isinstance(term, np.ndarray):  # gensim does not normalize raw vectors here
                    terms.add_vector(packed_search.check_vector(term, self.vector_size), 1.0, negative=is_negative)
                else:
                    row = self.get_index(term)
                    terms.add_code(self.codes[row], packed_search.code_weight(self, row, 1.0), negative=is_negative)
                    if isinstance(term, KEY_TYPES):
                        excluded.add(row)
        terms.end_query(sorted(excluded))
        arguments = dict(mode=MODE_MUL, epsilon=COSMUL_EPSILON)
        if not topn:
            scores = self._run_search(terms, 0, 0, end, **arguments)[0][0]
            with np.errstate(over="ignore"):
                scores = scores.astype(np.float32)  # gensim's float32 array of every score
        else:
            scores, rows = self._run_search(terms, self._clip_topn(topn, 0, end), 0, end, workers=workers, **arguments)
            scores, rows = scores[0][rows[0] >= 0], rows[0]
        if not np.all(np.isfinite(scores)):
            # Raw vectors enter 3CosMul unnormalized (as in gensim): huge ones overflow the product.
            raise ValueError("3CosMul scores overflow: scale the query vectors down")
        return scores if not topn else self._neighbours(scores, rows[rows >= 0])

    def search(self, queries: Sequence[Key | np.ndarray] | np.ndarray, topn: int = 10, workers: int | None = None,
               restrict_vocab: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Exact nearest neighbours of many queries in one call, shaped like faiss ``Index.search``.

        Args:
            queries: a list whose items are each a key (its neighbours, the key itself
                excluded, as :meth:`most_similar` returns them; an int is a row number), a
                1-d float vector (cosine to it) or a dict of :meth:`most_similar` arguments
                (``positive``, ``negative``, e.g. an analogy); or a float array of vectors
                (1-d: one query; 2-d: one query a row); or a 2-d uint8 array of packed codes
                (``nbytes / len(self)`` bytes a row, as :mod:`gensim_bits.packing` lays them
                out, zero padding bits). Other integer arrays are refused as ambiguous (row
                numbers or a vector?): pass rows as a list.
            topn: neighbours a query, an int >= 1; clipped to the words searched.
            workers: threads (None or 0: every core; at most ``search.MAX_WORKERS``). A batch
                is split by queries, a single query by rows; the GIL is released while they run.
            restrict_vocab: search only the first ``restrict_vocab`` words (an int >= 0 or
                None; 0 or None: every word).

        Returns:
            ``(similarities, indices)``: float32 and int64 arrays of shape
            (queries, min(topn, words searched)), best first, ties by lower index; row i
            equals ``most_similar`` of query i. Missing entries (a key query excludes
            itself) are ``-inf`` and ``-1``.

        Memory: besides the results, float and dict queries build lookup tables of
        ``256 * bits * vector_size`` float64 each, at most ``search.TABLE_BLOCK_BYTES``
        (32 MiB) at a time: larger batches run block by block.
        """
        if (type(queries) is list and type(topn) is int and topn > 0 and restrict_vocab is None and type(workers) is int
                and workers == 1):
            # Words on one thread, the common call: one compiled call from the keys to the arrays.
            found = self.packed_index.search_word_list(queries, topn)
            if found is not None:
                return found
        elif (type(queries) is np.ndarray and queries.dtype == np.uint8 and queries.ndim == 2 and type(topn) is int
              and topn > 0 and restrict_vocab is None and type(workers) is int and workers == 1):
            scores, rows = self.packed_index.search_codes(np.ascontiguousarray(queries), topn)
            return scores.astype(np.float32), rows
        check_search_arguments(topn, workers, restrict_vocab=restrict_vocab)
        if topn is None or topn < 1:
            raise ValueError(f"topn must be an int >= 1, got {topn!r}")
        end = min(restrict_vocab or len(self), len(self))
        return packed_search.search_batch(self, queries, self._clip_topn(topn, 0, end), end, workers)

    # ---------------------------------------------------------------- search helpers

    def _new_terms(self):
        return QueryTerms(self.bits, self.vector_size)

    @staticmethod
    def _clip_topn(topn, start, end):
        """``topn`` clipped to the rows searched (at least 1): memory follows the vocabulary, not topn."""
        return max(1, min(int(topn), end - start))

    def _run_search(self, terms, k, start=0, end=None, workers=1, mode=packed_search.MODE_ADD, epsilon=0.0):
        """(scores, rows) of the kernel over rows ``start:end``; see :func:`gensim_bits.search.run_search`."""
        return packed_search.search_vectors(self, terms, k, start, end, workers, mode, epsilon)

    def _neighbours(self, scores, rows):
        found = rows >= 0
        return list(zip(self.index_to_key.keys_at(rows[found]), scores[found].tolist()))

    def rank_by_centrality(self, words: Sequence[Key], use_norm: bool = True) -> list[tuple[float, Key]]:
        """Words ranked by cosine to the normalized mean of their vectors, as (similarity, word)."""
        used_words = [word for word in words if word in self]
        if len(used_words) != len(words):
            logger.warning("vectors for words %s are not present in the model, ignoring these words",
                           set(words) - set(used_words))
        if not used_words:
            raise ValueError("cannot select a word from an empty list")
        indices = [self.get_index(word) for word in used_words]
        vectors = self.vectors_for(indices).astype(np.float64)
        if use_norm:
            vectors /= np.asarray(self.norms[indices], dtype=np.float64)[:, None]
        mean = vectors.mean(axis=0)
        mean_norm = np.linalg.norm(mean)
        dists = vectors @ (mean / mean_norm if mean_norm else mean)
        return sorted(zip(dists.tolist(), used_words), reverse=True)

    def doesnt_match(self, words: Sequence[Key]) -> Key:
        """The word furthest from the mean of all the given words."""
        return self.rank_by_centrality(words)[-1][1]

    def closer_than(self, key1: Key, key2: Key) -> list[str]:
        """Words closer to ``key1`` than ``key2`` is."""
        first, second = self.get_index(key1), self.get_index(key2)
        sims = self.cosines([first])[:, 0]
        closer = np.flatnonzero(sims > sims[second])
        return [self.index_to_key[index] for index in closer if index != first]

    def rank(self, key1: Key, key2: Key) -> int:
        """Rank of ``key2`` among the neighbours of ``key1`` (1 = nearest)."""
        return len(self.closer_than(key1, key2)) + 1

    # ---------------------------------------------------------------- gensim's read-only KeyedVectors API
    # Same signatures and return values as gensim 4.4's KeyedVectors. Where gensim's own code
    # only calls methods this class has, it is reused as is. Methods that change vectors
    # (add_vectors, __setitem__, init_sims(replace=True), intersect_word2vec_format, ...)
    # are not offered: the packed codes are read-only.

    n_similarity = KeyedVectors.n_similarity
    most_similar_to_given = KeyedVectors.most_similar_to_given
    relative_cosine_similarity = KeyedVectors.relative_cosine_similarity
    cosine_similarities = staticmethod(KeyedVectors.cosine_similarities)
    wmdistance = KeyedVectors.wmdistance  # needs POT (``pip install pot``), as in gensim
    log_evaluate_word_pairs = staticmethod(KeyedVectors.log_evaluate_word_pairs)
    _log_evaluate_word_analogies = staticmethod(KeyedVectors._log_evaluate_word_analogies)

    @property
    def vectors(self) -> np.ndarray:
        """Every vector unpacked, as a new float32 array (len(self), vector_size).

        Memory: ``4 * vector_size`` bytes a word (32 / bits times the packed codes), built
        ``CONVERT_CHUNK`` rows at a time into one array, on every access: take it once, or
        use :meth:`get_vector` / :meth:`vectors_for` for a few rows.
        """
        return self._unpacked(normed=False)

    def get_normed_vectors(self) -> np.ndarray:
        """Every vector unpacked and scaled to unit length (float32; memory as :attr:`vectors`)."""
        return self._unpacked(normed=True)

    def fill_norms(self, force: bool = False) -> None:
        """Norms are computed from the codes when the vectors are built; nothing to fill."""

    def _unpacked(self, normed):
        out = np.empty((len(self), self.vector_size), dtype=np.float32)
        for start in range(0, len(self), CONVERT_CHUNK):
            stop = min(start + CONVERT_CHUNK, len(self))
            out[start:stop] = self.vectors_for(np.arange(start, stop))
            if normed:
                out[start:stop] /= np.asarray(self.norms[start:stop], dtype=np.float32)[:, None]
        return out

    def get_mean_vector(self, keys: Sequence[Key | np.ndarray], weights: Sequence[float] | np.ndarray | None = None,
                        pre_normalize: bool = True, post_normalize: bool = False,
                        ignore_missing: bool = True) -> np.ndarray:
        """gensim's ``get_mean_vector``: weighted mean of keys' (unit, if ``pre_normalize``) vectors and raw vectors."""
        if len(keys) == 0:
            raise ValueError("cannot compute mean with no input")
        weights = np.ones(len(keys), dtype=np.float32) if weights is None else np.asarray(weights, dtype=np.float32)
        if len(keys) != weights.shape[0]:
            raise ValueError("keys and weights array must have same number of elements")
        mean = np.zeros(self.vector_size, dtype=np.float32)
        total_weight = 0
        for weight, key in zip(weights, keys):
            if isinstance(key, np.ndarray):
                mean += weight * key
            elif key in self:
                mean += weight * self.get_vector(key, norm=pre_normalize)
            elif not ignore_missing:
                raise KeyError(f"Key '{key}' not present in vocabulary")
            else:
                continue
            total_weight += abs(weight)
        if total_weight > 0:
            mean = mean / total_weight
        if post_normalize:
            norm = np.linalg.norm(mean)
            mean = (mean / norm if norm else mean).astype(np.float32)
        return mean

    # Both evaluators read files and score through gensim_bits.evaluation, the one implementation
    # behind gensim_bits.evaluate (same rules for bad lines, same batched search), and return
    # gensim's values.

    def evaluate_word_pairs(self, pairs: str | os.PathLike, delimiter: str = '\t', encoding: str = 'utf8',
                            restrict_vocab: int = 300000, case_insensitive: bool = True,
                            dummy4unknown: bool = False) -> tuple[Any, Any, float]:
        """gensim's ``evaluate_word_pairs``: ``(pearson, spearman, oov_ratio)`` on a word-pair file.

        The file is read by :func:`gensim_bits.evaluation.pair_similarities`: unlike gensim, a
        malformed line is skipped with a warning (not an info message) and a file with no valid
        line raises ValueError. Cosines come from exact popcount dot products, so tied pairs tie
        exactly and rank the same on every machine.
        """
        from scipy import stats

        from gensim_bits import evaluation
        lookup, _, normalize = evaluation._restricted_vocabulary(self, restrict_vocab, case_insensitive)
        gold, model, oov_gold = evaluation.pair_similarities(
            pairs, lookup, normalize, evaluation._cosine_function(self), delimiter, encoding)
        oov = len(oov_gold)
        if dummy4unknown:
            gold, model = gold + oov_gold, model + [0.0] * oov
        if not gold:
            raise ValueError(f"No valid similarity judgements found in {pairs}: either invalid format or "
                             f"all are out-of-vocabulary in {self}")
        spearman = stats.spearmanr(gold, model)
        pearson = stats.pearsonr(gold, model)
        oov_ratio = float(oov) / (len(gold) if dummy4unknown else len(gold) + oov) * 100
        self.log_evaluate_word_pairs(pearson, spearman, oov_ratio, pairs)
        return pearson, spearman, oov_ratio

    def evaluate_word_analogies(self, analogies: str | os.PathLike, restrict_vocab: int = 300000,
                                case_insensitive: bool = True, dummy4unknown: bool = False,
                                similarity_function: str = 'most_similar') -> tuple[float, list[dict]]:
        """gensim's ``evaluate_word_analogies``: ``(score, sections)`` with gensim's section dicts.

        ``similarity_function`` ``'most_similar'`` answers by 3CosAdd, as gensim does;
        ``'most_similar_cosmul'`` by 3CosMul (epsilon 1e-6, as :meth:`most_similar_cosmul`).
        The answer is the best of the first ``restrict_vocab`` words other than the question's
        words and their case variants; equal scores go to the lower row, so the result is the
        same on every CPU (gensim's float32 BLAS search orders exact ties by rounding).
        Questions are read and answered in batches by :mod:`gensim_bits.evaluation`: unlike
        gensim, a malformed line, or a question before the first ``: section`` line, is
        skipped with a warning naming it. For 3CosMul beside 3CosAdd, see :func:`gensim_bits.evaluate`.
        """
        import itertools

        from gensim_bits import evaluation
        methods = {"most_similar": ("3cosadd", evaluation.EPSILON), "most_similar_cosmul": ("3cosmul", COSMUL_EPSILON)}
        if similarity_function not in methods:
            raise ValueError(f"similarity_function must be one of {sorted(methods)}, got {similarity_function!r}")
        method, epsilon = methods[similarity_function]
        lookup, canonical, normalize = evaluation._restricted_vocabulary(self, restrict_vocab, case_insensitive)
        names, questions, parsed = evaluation._read_questions(analogies, lookup, normalize)
        rows = evaluation.answer_analogies(questions, canonical, evaluation._cosine_function(self), len(canonical),
                                           epsilon=epsilon)[method]
        answered = dict(zip(questions[:, 5].tolist(), evaluation.answered_correctly(rows, questions, canonical)))
        sections = [{'section': name, 'correct': [], 'incorrect': []} for name in names]
        for position, (number, words) in enumerate(parsed):
            if position in answered:
                sections[number]['correct' if answered[position] else 'incorrect'].append(words)
            elif dummy4unknown:
                sections[number]['incorrect'].append(words)
        for section in sections:
            self._log_evaluate_word_analogies(section)
        total = {'section': 'Total accuracy',
                 'correct': list(itertools.chain.from_iterable(s['correct'] for s in sections)),
                 'incorrect': list(itertools.chain.from_iterable(s['incorrect'] for s in sections))}
        if parsed:
            logger.info('Quadruplets with out-of-vocabulary words: %.1f%%',
                        100.0 * (len(parsed) - len(questions)) / len(parsed))
        score = self._log_evaluate_word_analogies(total)
        sections.append(total)
        return score, sections
