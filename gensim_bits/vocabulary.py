"""A compact read-only vocabulary for packed word vectors.

A Python list of words plus a dict costs about 150-200 bytes a word, more than the 1-bit
codes of a 800-dimensional vector (100 bytes). Here the words live in one UTF-8 buffer with
an offset array, and lookups go through a sorted array of 64-bit hashes: 16 bytes a word
plus the text (4-byte offsets and rows up to 4 GB of text and 2**31 words), so the resident
memory of loaded vectors stays close to their codes.
``index_to_key`` and ``key_to_index`` keep gensim's list and dict interfaces.
"""
import ctypes
import ctypes.util
import sys
from collections.abc import Mapping, Sequence

import numpy as np

HASH_MASK = (1 << 64) - 1
HASH_CHUNK = 16384


def release_free_heap():
    """Hand the heap pages freed by a load back to the OS (glibc ``malloc_trim``; else nothing).

    Loading builds transient buffers of tens of bytes a word (the file header, decoded text);
    glibc keeps the freed pages resident, which showed as ~37 bytes a word of RSS after a load.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _hash(data):
    # Python's own bytes hash: fast and 64-bit. It is salted per process, which is fine
    # because the index is rebuilt whenever a vocabulary is created, never stored.
    return hash(data) & HASH_MASK


class _KeySequence(Sequence):
    """A read-only sequence of keys that compares equal to any sequence of the same keys
    (a list, gensim's ``index_to_key``), as a list would; unhashable, as a list is."""

    def __eq__(self, other):
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return len(self) == len(other) and all(key == theirs for key, theirs in zip(self, other))
        return NotImplemented

    __hash__ = None


class Vocabulary(_KeySequence):
    """Words in row order, stored as ``text`` (UTF-8, concatenated) and ``offsets`` (n + 1)."""

    def __init__(self, text, offsets):
        self.text = bytes(text)
        # 4-byte offsets and rows where they fit: 16 bytes a word with the hashes, plus the text.
        self.offsets = np.ascontiguousarray(offsets, dtype=np.uint32 if len(self.text) < 2 ** 32 else np.int64)
        count = len(self.offsets) - 1
        hashes = np.empty(count, dtype=np.uint64)
        # Hashed HASH_CHUNK words at a time: the Python ints and slices this needs stay few, so
        # they leave no resident garbage of tens of bytes a word behind.
        for first in range(0, count, HASH_CHUNK):
            last = min(first + HASH_CHUNK, count)
            bounds = self.offsets[first:last + 1].tolist()
            hashes[first:last] = np.fromiter((_hash(self.text[start:end]) for start, end in zip(bounds, bounds[1:])),
                                             dtype=np.uint64, count=last - first)
        self._order = np.argsort(hashes, kind="stable").astype(np.int32 if count < 2 ** 31 else np.int64)
        self._hashes = hashes[self._order]
        # Words sharing a hash are compared in full, every member of the run (not only neighbours).
        equal = np.flatnonzero(self._hashes[1:] == self._hashes[:-1])
        for position in equal.tolist():
            if position > 0 and self._hashes[position - 1] == self._hashes[position]:
                continue  # inside a run already checked from its start
            end = position + 1
            while end + 1 < count and self._hashes[end + 1] == self._hashes[position]:
                end += 1
            members = [self._bytes(int(row)) for row in self._order[position:end + 1]]
            if len(set(members)) != len(members):
                duplicate = next(word for word in members if members.count(word) > 1)
                raise ValueError(f"duplicate word {duplicate.decode('utf-8', 'replace')!r} in the vocabulary")

    @classmethod
    def from_keys(cls, keys):
        encoded = []
        for key in keys:
            if not isinstance(key, str):
                raise TypeError(f"words must be str, got {type(key).__name__} {key!r}")
            try:
                encoded.append(key.encode("utf-8"))
            except UnicodeEncodeError:
                raise ValueError(f"word {key!r} cannot be stored: it is not valid UTF-8 "
                                 "(it holds a lone surrogate)") from None
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(word) for word in encoded], out=offsets[1:])
        return cls(b"".join(encoded), offsets)

    def _bytes(self, row):
        return self.text[self.offsets[row]:self.offsets[row + 1]]

    def __len__(self):
        return len(self.offsets) - 1

    def __getitem__(self, row):
        if isinstance(row, slice):
            return [self[index] for index in range(*row.indices(len(self)))]
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(f"row {row} out of range for {len(self)} words")
        return self._bytes(row).decode("utf-8")

    def keys_at(self, rows):
        """The words of ``rows`` (an int array), as a list of str."""
        rows = np.asarray(rows, dtype=np.int64)
        listed = rows.tolist()
        if listed and (min(listed) < 0 or max(listed) >= len(self)):
            raise IndexError(f"rows out of range for {len(self)} words")
        text = self.text
        return [text[start:end].decode("utf-8")
                for start, end in zip(self.offsets[rows].tolist(), self.offsets[rows + 1].tolist())]

    def __repr__(self):
        return f"Vocabulary({len(self)} words: {self[:5]}{'...' if len(self) > 5 else ''})"

    def find(self, word, default=-1):
        """Row of ``word``, or ``default``."""
        if not isinstance(word, str):
            return default
        try:
            data = word.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates cannot be in the vocabulary
            return default
        wanted = np.uint64(_hash(data))
        position = int(np.searchsorted(self._hashes, wanted))
        while position < len(self._hashes) and self._hashes[position] == wanted:
            row = int(self._order[position])
            if self._bytes(row) == data:
                return row
            position += 1
        return default

    @property
    def nbytes(self):
        return len(self.text) + self.offsets.nbytes + self._order.nbytes + self._hashes.nbytes


class KeyToIndex(Mapping):
    """gensim's ``key_to_index`` dict, as a read-only view of a :class:`Vocabulary`."""

    def __init__(self, vocabulary):
        self.vocabulary = vocabulary

    def __getitem__(self, word):
        row = self.vocabulary.find(word)
        if row < 0:
            raise KeyError(word)
        return row

    def get(self, word, default=None):
        row = self.vocabulary.find(word)
        return default if row < 0 else row

    def __contains__(self, word):
        return self.vocabulary.find(word) >= 0

    def __iter__(self):
        return iter(self.vocabulary)

    def __len__(self):
        return len(self.vocabulary)


class KeyList(_KeySequence):
    """Keys of any hashable type (gensim's ``KeyedVectors`` accepts them), as a list and a dict.

    The in-memory fallback when some key is not a str: about 170 bytes a key, as in gensim.
    The ``.gbits`` format stores UTF-8 words only, so such vectors cannot be saved there.
    """

    def __init__(self, keys):
        self.keys = list(keys)
        self.rows = {}
        for row, key in enumerate(self.keys):
            if self.rows.setdefault(key, row) != row:
                raise ValueError(f"duplicate key {key!r} in the vocabulary")

    def __len__(self):
        return len(self.keys)

    def __getitem__(self, row):
        return self.keys[row]

    def keys_at(self, rows):
        return [self.keys[row] for row in np.asarray(rows, dtype=np.int64).tolist()]

    def find(self, key, default=-1):
        try:
            return self.rows.get(key, default)
        except TypeError:  # unhashable
            return default

    def __repr__(self):
        return f"KeyList({len(self)} keys: {self.keys[:5]}{'...' if len(self) > 5 else ''})"

    @property
    def nbytes(self):
        return sys.getsizeof(self.keys) + sys.getsizeof(self.rows) + sum(sys.getsizeof(key) for key in self.keys)


def vocabulary_of(keys):
    """A compact :class:`Vocabulary` when every key is a str, else a :class:`KeyList`."""
    if isinstance(keys, (Vocabulary, KeyList)):
        return keys
    keys = list(keys)
    return Vocabulary.from_keys(keys) if all(isinstance(key, str) for key in keys) else KeyList(keys)
