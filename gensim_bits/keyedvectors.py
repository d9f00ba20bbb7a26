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
import logging
from numbers import Integral

import numpy as np
from gensim.models import KeyedVectors

from gensim_bits import fileformat, packing
from gensim_bits.quantizers import levels, quantize_codes
from gensim_bits.vocabulary import KeyToIndex, Vocabulary

logger = logging.getLogger(__name__)

KEY_TYPES = (str, Integral)
# Rows converted at a time, so packing a large float matrix never holds a second full copy.
CONVERT_CHUNK = 65536
# How far a value may sit from its level and still count as on it (text files keep ~8 digits).
LEVEL_TOLERANCE = 1e-6
# A query mean shorter than this times the summed length of its terms has cancelled: what is
# left is rounding (~1e-17 relative), far below the smallest mean two different codes give.
CANCELLED = 1e-10


def _as_list(value):
    """gensim's ``_ensure_list``: a single key or vector becomes a one-item list."""
    if value is None:
        return []
    if isinstance(value, KEY_TYPES) or (isinstance(value, np.ndarray) and value.ndim == 1):
        return [value]
    return list(value)


def top_indices(scores, count):
    """Indices of the ``count`` largest scores, best first; ties go to the lower index."""
    count = min(int(count), scores.shape[0])
    if count <= 0:
        return np.empty(0, dtype=np.int64)
    if count < scores.shape[0]:
        threshold = np.partition(scores, scores.shape[0] - count)[scores.shape[0] - count]
        candidates = np.flatnonzero(scores >= threshold)
    else:
        candidates = np.arange(scores.shape[0])
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order][:count]


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

    def __init__(self, codes, bits, vector_size, index_to_key, counts=None):
        # The same validator as save() and load(), so every object built here can be saved and read back.
        self.bits, self.vector_size, index_to_key, self.counts, self.codes = fileformat.check_contents(
            bits, vector_size, index_to_key, counts, codes)
        # Compact list and dict stand-ins: ~24 bytes a word instead of ~170 (see vocabulary.py).
        self.index_to_key = index_to_key
        self.key_to_index = KeyToIndex(index_to_key)
        if self.bits == 1:
            self.norms = np.broadcast_to(np.sqrt(self.vector_size) * packing.level_unit(1), (len(self),))
        else:
            self.norms = np.sqrt(packing.squared_norms(codes, self.bits, self.vector_size)).astype(np.float32)

    # ---------------------------------------------------------------- conversions

    @classmethod
    def from_keyed_vectors(cls, keyed_vectors, bits=None, quantize=False):
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
    def from_model(cls, model):
        """Pack the final vectors ``model.wv`` of a trained :class:`gensim_bits.Word2Bits`."""
        bits = getattr(model, "bits", None)
        if bits is None:
            raise TypeError(f"expected a Word2Bits model with a .bits attribute, got {type(model).__name__}")
        if bits not in packing.PACKED_BITS:
            raise ValueError(f"the model was trained with bits={bits} (float); use "
                             "from_keyed_vectors(model.wv, bits=..., quantize=True) to threshold it")
        return cls.from_keyed_vectors(model.wv, bits=bits)

    def to_keyed_vectors(self):
        """A plain gensim ``KeyedVectors`` with the unpacked float32 values and the counts."""
        keyed_vectors = KeyedVectors(self.vector_size, count=0)
        if len(self):
            keyed_vectors.add_vectors(list(self.index_to_key), self.vectors_for(np.arange(len(self))))
            # add_vectors(extras=...) is broken in gensim 4.4 (it iterates the dict's keys).
            keyed_vectors.allocate_vecattrs(attrs=["count"], types=[np.int64])
            keyed_vectors.expandos["count"][:] = self.counts
        return keyed_vectors

    def vectors_for(self, indices):
        """Unpacked float32 vectors of the rows ``indices``."""
        return packing.unpack_values(self.codes[np.asarray(indices, dtype=np.int64)], self.bits, self.vector_size)

    # ---------------------------------------------------------------- files

    def save(self, path):
        """Write the packed file atomically (see :mod:`gensim_bits.fileformat`)."""
        fileformat.write_packed(path, self.bits, self.vector_size, self.index_to_key, self.counts, self.codes)

    @classmethod
    def load(cls, path, mmap=None):
        """Read a file written by :meth:`save`; ``mmap='r'`` maps the codes read-only.

        Raises :class:`gensim_bits.fileformat.QuantizedVectorsFormatError` for a truncated,
        corrupt or inconsistent file.
        """
        bits, dimension, vocabulary, counts, codes = fileformat.read_packed(path, mmap=mmap)
        return cls(codes, bits, dimension, vocabulary, counts)

    def save_word2vec_format(self, fname, binary=False, **kwargs):
        """Write the unpacked values in word2vec text or binary format (through gensim)."""
        self.to_keyed_vectors().save_word2vec_format(fname, binary=binary, **kwargs)

    @classmethod
    def load_word2vec_format(cls, fname, binary=False, bits=None, quantize=False, **kwargs):
        """Read a word2vec text/binary file (through gensim) and pack it; see :meth:`from_keyed_vectors`."""
        keyed_vectors = KeyedVectors.load_word2vec_format(fname, binary=binary, **kwargs)
        return cls.from_keyed_vectors(keyed_vectors, bits=bits, quantize=quantize)

    # ---------------------------------------------------------------- lookup

    @property
    def nbytes(self):
        """Bytes of the packed codes."""
        return int(self.codes.nbytes)

    def __len__(self):
        return len(self.index_to_key)

    def __contains__(self, key):
        return self.has_index_for(key)

    def __repr__(self):
        return (f"<QuantizedKeyedVectors bits={self.bits} vector_size={self.vector_size} "
                f"words={len(self)} codes={self.nbytes} bytes>")

    def has_index_for(self, key):
        return self.get_index(key, -1) >= 0

    def get_index(self, key, default=None):
        """Row of ``key`` (or ``key`` itself if it is an int row number), as gensim does."""
        index = self.index_to_key.find(key)
        if index >= 0:
            return index
        if isinstance(key, Integral) and 0 <= key < len(self):
            return int(key)
        if default is not None:
            return default
        raise KeyError(f"Key '{key}' not present")

    def get_vecattr(self, key, attr):
        if attr != "count":
            raise KeyError(f"QuantizedKeyedVectors stores only the 'count' attribute, not {attr!r}")
        return int(self.counts[self.get_index(key)])

    def get_vector(self, key, norm=False):
        """The unpacked float32 vector of ``key``; unit length if ``norm``."""
        index = self.get_index(key)
        vector = self.vectors_for([index])[0]
        return vector / np.float32(self.norms[index]) if norm else vector

    def __getitem__(self, key_or_keys):
        if isinstance(key_or_keys, KEY_TYPES):
            return self.get_vector(key_or_keys)
        return np.vstack([self.get_vector(key) for key in key_or_keys])

    # ---------------------------------------------------------------- similarity

    def cosines(self, indices, start=0, end=None):
        """Cosine similarities (end - start, len(indices)) of rows ``start:end`` with rows ``indices``."""
        indices = np.asarray(indices, dtype=np.int64)
        end = len(self) if end is None else end
        dots = packing.dots_with_packed(self.codes[start:end], self.codes[indices], self.bits, self.vector_size)
        # float32 norms can put a word's cosine with itself a hair above 1.
        return np.clip(dots / np.outer(self.norms[start:end], self.norms[indices]), -1.0, 1.0)

    def _dots_with_vector(self, vector, start, end):
        return packing.dots_with_vector(self.codes[start:end], vector, self.bits, self.vector_size)

    def similarity(self, w1, w2):
        """Cosine similarity of two keys."""
        first = self.get_index(w1)
        return float(self.cosines([self.get_index(w2)], first, first + 1)[0, 0])

    def distance(self, w1, w2):
        """Cosine distance, ``1 - similarity``."""
        return 1.0 - self.similarity(w1, w2)

    def distances(self, word_or_vector, other_words=()):
        """Cosine distances from a key or vector to ``other_words`` (default: every word)."""
        if isinstance(word_or_vector, KEY_TYPES):
            index = self.get_index(word_or_vector)
            sims = self.cosines([index])[:, 0]
        else:
            vector = np.asarray(word_or_vector, dtype=np.float64)
            sims = np.clip(self._dots_with_vector(vector, 0, len(self)) / (self.norms * np.linalg.norm(vector)),
                           -1.0, 1.0)
        if other_words:
            sims = sims[[self.get_index(word) for word in other_words]]
        return (1.0 - sims).astype(np.float32)

    def most_similar(self, positive=None, negative=None, topn=10, clip_start=0, clip_end=None,
                     restrict_vocab=None, indexer=None):
        """gensim's ``KeyedVectors.most_similar`` on the packed codes, same arguments and results.

        The query is the normalized mean of the unit vectors of the positive keys (weight +1
        or given) and negative keys (weight -1); vectors enter as they are. Its dot product
        with every row is a sum of exact popcount dot products (one per query word) plus one
        lookup-table pass for any raw vectors. Ties are ordered by row (lower index first).
        """
        if isinstance(topn, Integral) and topn < 1:
            return []
        positive, negative = _as_list(positive), _as_list(negative)
        clip_end = clip_end or len(self)
        if restrict_vocab:
            clip_start, clip_end = 0, restrict_vocab
        items = [(item, 1.0) for item in positive] + [(item, -1.0) for item in negative]
        keys, weights = [], []
        for item, default_weight in items:
            if isinstance(item, KEY_TYPES + (np.ndarray,)):
                keys.append(item)
                weights.append(default_weight)
            else:
                keys.append(item[0])
                weights.append(float(item[1]))
        if not keys:
            raise ValueError("cannot compute mean with no input")

        word_rows, word_weights = [], []
        raw_vector = np.zeros(self.vector_size, dtype=np.float64)
        has_raw_vector = False
        magnitude = 0.0  # sum of the lengths of the weighted terms, the scale of the rounding error
        for key, weight in zip(keys, weights):
            if not np.isfinite(weight):
                raise ValueError(f"query weights must be finite, got {weight}")
            if isinstance(key, np.ndarray):
                key = np.asarray(key, dtype=np.float64)
                if key.shape != (self.vector_size,) or not np.all(np.isfinite(key)):
                    raise ValueError(f"query vectors must be finite with shape ({self.vector_size},), "
                                     f"got shape {key.shape}")
                raw_vector += weight * key
                magnitude += abs(weight) * float(np.linalg.norm(key))
                has_raw_vector = True
            else:
                index = self.get_index(key)
                word_rows.append(index)
                word_weights.append(weight / float(self.norms[index]))
                magnitude += abs(weight)
        word_weights = np.asarray(word_weights, dtype=np.float64)
        # The mean itself is only needed for its norm; it is built from the few query rows.
        mean = raw_vector + (self.vectors_for(word_rows).T.astype(np.float64) @ word_weights if word_rows else 0.0)
        mean_norm = float(np.linalg.norm(mean))
        # A query that cancels (w - w, or two words with the same codes) leaves rounding noise of
        # ~1e-17, not 0; dividing by it gave cosines up to 2.4. gensim's float32 mean is exactly 0.
        if mean_norm <= CANCELLED * magnitude:
            mean_norm = 0.0

        if indexer is not None and isinstance(topn, int):
            return indexer.most_similar((mean / mean_norm if mean_norm else mean).astype(np.float32), topn)

        dists = np.zeros(max(0, min(clip_end, len(self)) - clip_start), dtype=np.float64)
        if word_rows:
            rows = self.codes[np.asarray(word_rows, dtype=np.int64)]
            pair_dots = packing.dots_with_packed(self.codes[clip_start:clip_end], rows, self.bits, self.vector_size)
            dists = pair_dots[:, 0] * word_weights[0] if len(word_rows) == 1 else pair_dots @ word_weights
        if has_raw_vector:
            dists += self._dots_with_vector(raw_vector, clip_start, clip_end)
        if mean_norm == 0:
            dists[:] = 0.0  # gensim's unitvec leaves a zero mean at zero
        elif self.bits == 1:  # every norm is the same
            dists *= 1.0 / (float(self.norms[0]) * mean_norm)
        else:
            dists /= self.norms[clip_start:clip_end]
            dists /= mean_norm
        np.clip(dists, -1.0, 1.0, out=dists)  # rounding may not leave [-1, 1]
        if not topn:
            return dists.astype(np.float32)
        exclude = {self.get_index(key) for key in keys if isinstance(key, KEY_TYPES) and self.has_index_for(key)}
        best = top_indices(dists, topn + len(exclude))
        result = [(self.index_to_key[index + clip_start], float(dists[index]))
                  for index in best if index + clip_start not in exclude]
        return result[:topn]

    def similar_by_key(self, key, topn=10, restrict_vocab=None):
        return self.most_similar(positive=[key], topn=topn, restrict_vocab=restrict_vocab)

    similar_by_word = similar_by_key

    def similar_by_vector(self, vector, topn=10, restrict_vocab=None):
        return self.most_similar(positive=[vector], topn=topn, restrict_vocab=restrict_vocab)

    def most_similar_cosmul(self, positive=None, negative=None, topn=10, restrict_vocab=None):
        """gensim's ``most_similar_cosmul`` (Levy & Goldberg 2014, 3CosMul, epsilon 1e-6).

        Cosines are shifted to [0, 1] as (1 + cos) / 2. Unlike gensim 4.4, ``restrict_vocab``
        is honoured: only the first ``restrict_vocab`` words are searched.
        """
        if isinstance(topn, Integral) and topn < 1:
            return []
        positive, negative = _as_list(positive), _as_list(negative)
        if not positive:
            raise ValueError("cannot compute similarity with no input")
        end = min(restrict_vocab or len(self), len(self))
        norms = self.norms[:end]

        def shifted_cosines(term):
            if isinstance(term, np.ndarray):  # gensim does not normalize raw vectors here
                return (1.0 + self._dots_with_vector(term, 0, end) / norms) / 2.0
            return (1.0 + self.cosines([self.get_index(term)], 0, end)[:, 0]) / 2.0

        dists = np.prod([shifted_cosines(term) for term in positive], axis=0)
        dists = dists / (np.prod([shifted_cosines(term) for term in negative], axis=0) + 0.000001)
        if not topn:
            return dists.astype(np.float32)
        exclude = {self.get_index(word) for word in positive + negative
                   if isinstance(word, KEY_TYPES) and self.has_index_for(word)}
        best = top_indices(dists, topn + len(exclude))
        return [(self.index_to_key[index], float(dists[index])) for index in best if index not in exclude][:topn]

    def rank_by_centrality(self, words, use_norm=True):
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

    def doesnt_match(self, words):
        """The word furthest from the mean of all the given words."""
        return self.rank_by_centrality(words)[-1][1]

    def closer_than(self, key1, key2):
        """Words closer to ``key1`` than ``key2`` is."""
        first, second = self.get_index(key1), self.get_index(key2)
        sims = self.cosines([first])[:, 0]
        closer = np.flatnonzero(sims > sims[second])
        return [self.index_to_key[index] for index in closer if index != first]

    def rank(self, key1, key2):
        """Rank of ``key2`` among the neighbours of ``key1`` (1 = nearest)."""
        return len(self.closer_than(key1, key2)) + 1
