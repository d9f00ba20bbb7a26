"""The word2vec text and binary vector formats of Mikolov et al.'s C tool, read strictly and
written only when they can be read back; the files gensim's ``load_word2vec_format`` and
``save_word2vec_format`` handle.

A file starts with ``"<words> <dimension>\\n"``; then, one record a word, ``word`` and a
space followed by the values as decimal text and a newline (text), or as ``dimension``
little-endian float32 (binary, an optional newline before the next word).

Unlike gensim's reader, nothing is allocated from the header. Before any record is read the
header must fit the data: an uncompressed file's size, a gzip file's size times 1032 (the
most deflate can expand), and the machine's physical memory (count x dimension x the item
size); ``limit=`` reads fewer. The vectors are then stored block by block as the records
arrive, and a duplicate word's record is checked but not stored, so memory follows the
distinct words actually read: at most the header's count x dimension x item size, plus one
16 MiB block and one line. Records with
the wrong number of values, non-finite values, bad UTF-8 or an over-long word raise
:class:`Word2VecFormatError` naming the line or record.

Words the formats cannot carry: the empty word and words holding a space or a newline (they
split a record) and words that are not valid Unicode (a lone surrogate). They are refused
when writing, by name, rather than escaped: the C tool, gensim and every other reader of
these formats would not undo an escape.

Word counts are not in these formats; gensim keeps them in a separate vocabulary file, one
``word count`` line a word (``fvocab`` in ``save_word2vec_format``/``load_word2vec_format``).
:func:`save_word2vec` writes that file beside the vectors, at ``<vectors path>.vocab``
(:func:`counts_path`), and :func:`read_word2vec` reads it from there when it exists; without
one the counts are gensim's made-up descending ones, and writing without one logs a warning.
"""
from __future__ import annotations

import logging
import lzma
import os
import warnings
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from gensim_bits.fileformat import MAX_DIMENSION, atomic_output

if TYPE_CHECKING:  # gensim is imported when first used
    from gensim.models import KeyedVectors

logger = logging.getLogger(__name__)

# Longest header line and word accepted; real words are a few dozen bytes.
MAX_HEADER_BYTES = 256
MAX_WORD_BYTES = 1 << 16
# Longest text a value may take ("-1.2345678901234567e-308" is 24 characters).
MAX_VALUE_CHARACTERS = 64
# Rows stored per block while reading: about 16 MiB of float32.
BLOCK_BYTES = 1 << 24
READ_CHUNK = 1 << 20
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".lzma")
#: The counts file's name is the vectors file's plus this suffix (``vectors.txt.vocab``).
COUNTS_SUFFIX = ".vocab"
# Longest count a counts-file line may hold: int64's 19 digits.
MAX_COUNT_DIGITS = 19
# Set (True) on the KeyedVectors read_word2vec returns when it made the counts up.
COUNTS_MADE_UP = "counts_made_up"
# The most a deflate (gzip) stream expands: 258 bytes from one 2-bit code, about 1032:1.
DEFLATE_MAX_RATIO = 1032


def _memory_bytes():
    """This machine's physical memory in bytes, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


class Word2VecFormatError(ValueError):
    """The file is not valid word2vec text or binary: bad header, truncated, or a bad record."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: not a valid word2vec file ({reason})")
        self.path, self.reason = path, reason

    def __reduce__(self):
        return type(self), (self.path, self.reason)


def _fail(path, reason):
    raise Word2VecFormatError(path, reason)


def check_words(keys: Iterable[object]) -> None:
    """Raise ValueError naming the first word the word2vec formats cannot carry."""
    for key in keys:
        word = str(key)
        if not word:
            raise ValueError("the word2vec formats cannot carry the empty word (a record would start with "
                             "its separator); rename it or save as .gbits, which can")
        if " " in word or "\n" in word:
            raise ValueError(f"the word2vec formats cannot carry the word {word!r}: a space or newline in a "
                             "word splits its record; rename it or save as .gbits, which can")
        try:
            word.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"the word {word!r} is not valid Unicode (a lone surrogate) and cannot be "
                             "written as UTF-8") from None


def counts_path(path: str | os.PathLike) -> str:
    """Where the word counts of the vectors file ``path`` are written and looked for."""
    return os.fspath(path) + COUNTS_SUFFIX


def save_word2vec(keyed_vectors: KeyedVectors, path: str | os.PathLike, binary: bool = False,
                  fvocab: str | os.PathLike | bool | None = True, **kwargs: Any) -> str | None:
    """``keyed_vectors.save_word2vec_format`` after :func:`check_words`, written atomically,
    with the word counts in gensim's vocabulary file.

    Args:
        fvocab: where to write the counts: True (the default) beside the vectors, at
            :func:`counts_path`; a path; or False/None for no counts file, which logs a
            warning that the counts are dropped (and removes a counts file left beside
            ``path`` by an earlier save, which would no longer match).

    Returns the counts file's path, or None when none was written. Vectors with counts are
    written most frequent first, as gensim does. Counts :func:`read_word2vec` made up (its
    input had no counts file) are not written as if they were real.
    """
    check_words(keyed_vectors.index_to_key)
    has_counts = ("count" in keyed_vectors.expandos and len(keyed_vectors.index_to_key) > 0
                  and not getattr(keyed_vectors, COUNTS_MADE_UP, False))
    if fvocab is True:
        fvocab = counts_path(path)
    if not fvocab or not has_counts:
        if has_counts:
            logger.warning("%s: word counts dropped (fvocab=%r); the word2vec formats hold none, and read "
                           "back the counts will be made up", os.fspath(path), fvocab)
        with atomic_output(path) as temporary:
            _gensim_save(keyed_vectors, path, temporary, binary=binary, **kwargs)
        stale = counts_path(path)
        if os.path.isfile(stale):
            os.remove(stale)
        return None
    with atomic_output(path) as temporary, atomic_output(fvocab) as temporary_counts:
        _gensim_save(keyed_vectors, path, temporary, fvocab=temporary_counts, binary=binary, **kwargs)
    return os.fspath(fvocab)


def _gensim_save(keyed_vectors, path, temporary, **kwargs):
    """gensim's save into ``temporary``, compressed as ``path``'s suffix says (``.gz``, ``.bz2``):
    gensim's ``utils.open`` picks the compression from the name it is given."""
    suffix = next((suffix for suffix in COMPRESSED_SUFFIXES if os.fspath(path).endswith(suffix)), "")
    if not suffix:
        keyed_vectors.save_word2vec_format(temporary, **kwargs)
        return
    try:
        keyed_vectors.save_word2vec_format(temporary + suffix, **kwargs)
        os.replace(temporary + suffix, temporary)
    finally:
        if os.path.exists(temporary + suffix):
            os.remove(temporary + suffix)


def _read_counts(path, fvocab, key_to_index, encoding, unicode_errors):
    """int64 counts, in the rows' order, from the counts file ``fvocab`` of the vectors ``path``.

    Lines are ``word count``; lines of words not in ``key_to_index`` (read with ``limit``) are
    skipped. Every word read must have a count; memory follows the vectors, not the file.
    """
    from gensim import utils

    counts = np.full(len(key_to_index), -1, dtype=np.int64)
    longest = MAX_WORD_BYTES + MAX_COUNT_DIGITS + 2
    where = f"its counts file {os.fspath(fvocab)}"
    with utils.open(fvocab, "rb") as stream:  # a missing file raises FileNotFoundError, as gensim's
        try:
            for number, line in enumerate(iter(lambda: stream.readline(longest + 1), b""), start=1):
                if len(line) > longest:
                    _fail(path, f"{where}, line {number}: longer than {longest:,} bytes")
                try:
                    text = line.decode(encoding, errors=unicode_errors).rstrip("\r\n")
                except UnicodeDecodeError as error:
                    _fail(path, f"{where}, line {number}: not valid {encoding} ({error.reason})")
                word, _, count = text.rpartition(" ")
                if not word or not count.isdigit() or not count.isascii() or len(count) > MAX_COUNT_DIGITS:
                    _fail(path, f"{where}, line {number}: must be a word, a space and a count, got {text[:80]!r}")
                if int(count) > np.iinfo(np.int64).max:
                    _fail(path, f"{where}, line {number}: the count {count} does not fit 64 bits")
                row = key_to_index.get(word)
                if row is not None:
                    counts[row] = int(count)
        except (EOFError, OSError, zlib.error, lzma.LZMAError) as error:
            _fail(path, f"{where}: reading failed (a damaged compressed stream?): {type(error).__name__}: {error}")
    missing = np.flatnonzero(counts < 0)
    if missing.size:
        word = next(word for word, row in key_to_index.items() if row == missing[0])
        _fail(path, f"{where} has no count for {missing.size:,} of its {len(counts):,} words, "
                    f"{word!r} the first; fix or remove it (or read with fvocab=None)")
    return counts


def _parse_header(path, line, limit):
    if not line.endswith(b"\n"):
        _fail(path, "the first line must be '<words> <dimension>'" +
              (" and is too long" if len(line) >= MAX_HEADER_BYTES else ""))
    parts = line.split()
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        _fail(path, f"the first line must be '<words> <dimension>', got {line[:80]!r}")
    count, dimension = int(parts[0]), int(parts[1])
    if not 1 <= dimension <= MAX_DIMENSION:
        _fail(path, f"dimension {dimension} is out of range [1, {MAX_DIMENSION}]")
    if limit is not None:
        count = min(count, int(limit))
    return count, dimension


def _check_size(path, count, dimension, header_bytes, binary, itemsize):
    """Refuse a header that promises more records than the data can hold, or memory can."""
    # The shortest record: a one-byte word, its space and 4 bytes a value (binary); or a
    # one-byte word and a space plus one digit for each value, the last newline optional (text).
    shortest = 2 + 4 * dimension if binary else 2 * dimension + 1
    needed = count * shortest - (0 if binary else 1)
    promise = f"the header promises {count} vectors of {dimension} values"
    if os.path.isfile(path):
        size = os.path.getsize(path)
        if not str(path).endswith(COMPRESSED_SUFFIXES):
            if needed > size - header_bytes:
                _fail(path, f"{promise}, at least {count * shortest:,} bytes, but the file has "
                            f"{size - header_bytes:,} bytes after it")
        elif str(path).endswith(".gz") and needed + header_bytes > DEFLATE_MAX_RATIO * size:
            _fail(path, f"{promise}, at least {needed + header_bytes:,} bytes uncompressed, but {size:,} bytes "
                        f"of gzip data expand to at most {DEFLATE_MAX_RATIO * size:,}")
    memory = _memory_bytes()
    if memory and count * dimension * itemsize > memory:
        _fail(path, f"{promise}: {count * dimension * itemsize / 2 ** 30:,.1f} GiB, more than this machine's "
                    f"{memory / 2 ** 30:,.1f} GiB of memory (read fewer with limit=)")


class _Rows:
    """Float32 rows stored in fixed-size blocks, so memory follows the records actually read."""

    def __init__(self, dimension, dtype):
        self.dimension, self.dtype = dimension, dtype
        self.block_rows = max(1, BLOCK_BYTES // (4 * dimension))
        self.blocks, self.filled = [], 0

    def add(self, values):
        if not self.blocks or self.filled == self.block_rows:
            self.blocks.append(np.empty((self.block_rows, self.dimension), dtype=self.dtype))
            self.filled = 0
        self.blocks[-1][self.filled] = values
        self.filled += 1

    def matrix(self):
        if not self.blocks:
            return np.zeros((0, self.dimension), dtype=self.dtype)
        self.blocks[-1] = self.blocks[-1][:self.filled]
        return np.concatenate(self.blocks)


def _check_finite(path, where, values):
    if not np.all(np.isfinite(values)):
        _fail(path, f"{where} holds a NaN or infinite value")


def _store(word, vector, rows, keys):
    """Keep the first vector of each word (gensim's rule); a duplicate is counted, not stored."""
    if word in keys:
        keys.duplicates += 1
    else:
        keys[word] = len(keys)
        rows.add(vector)


class _Keys(dict):
    """Word -> row of the words read so far, and how many duplicate records were skipped."""
    duplicates = 0


def _read_text_records(path, stream, count, dimension, encoding, unicode_errors, rows, keys):
    longest = MAX_WORD_BYTES + dimension * MAX_VALUE_CHARACTERS
    for number in range(2, count + 2):
        line = stream.readline(longest + 2)
        if not line:
            _fail(path, f"the header promises {count} vectors but the file ends after {number - 2}")
        if len(line) > longest and not line.endswith(b"\n"):
            _fail(path, f"line {number} is longer than {longest:,} bytes")
        try:
            text = line.decode(encoding, errors=unicode_errors).rstrip()
        except UnicodeDecodeError as error:
            _fail(path, f"line {number} is not valid {encoding}: {error.reason} at byte {error.start}")
        word, separator, rest = text.partition(" ")
        if not word or not separator:
            _fail(path, f"line {number} must be a word, a space and {dimension} values, got {text[:80]!r}")
        try:
            # Parsed in C, never as a list of Python strings (50 bytes each, 25x the file).
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                vector = np.fromstring(rest, dtype=np.float64, sep=" ")
        except (ValueError, DeprecationWarning):
            _fail(path, f"line {number} has a value that is not a number: {rest[:80]!r}")
        if vector.shape[0] != dimension:
            _fail(path, f"line {number} has {vector.shape[0]} values, the header says {dimension}")
        with np.errstate(over="ignore"):  # beyond float32 becomes inf, refused just below
            vector = vector.astype(rows.dtype)
        _check_finite(path, f"line {number} (values beyond float32 included)", vector)
        _store(word, vector, rows, keys)


def _read_binary_records(path, stream, count, dimension, encoding, unicode_errors, rows, keys):
    vector_bytes = 4 * dimension
    buffer, position = b"", 0

    def ensure(size):
        nonlocal buffer, position
        if len(buffer) - position < size:
            buffer = buffer[position:] + stream.read(max(READ_CHUNK, size))
            position = 0
        return len(buffer) - position >= size

    for number in range(1, count + 1):
        # A word ends at its space; look for it in the buffer, reading more up to the longest word.
        while True:
            space = buffer.find(b" ", position, position + MAX_WORD_BYTES + 1)
            if space >= 0:
                break
            available = len(buffer) - position
            if available > MAX_WORD_BYTES:
                _fail(path, f"record {number}: no word of at most {MAX_WORD_BYTES:,} bytes")
            ensure(available + 1)
            if len(buffer) - position == available:  # nothing more to read
                _fail(path, f"the header promises {count} vectors but the file ends after {number - 1}")
        raw_word = buffer[position:space].lstrip(b"\n")
        try:
            word = raw_word.decode(encoding, errors=unicode_errors)
        except UnicodeDecodeError as error:
            _fail(path, f"record {number}: the word is not valid {encoding} ({error.reason})")
        if not word:
            _fail(path, f"record {number}: empty word")
        position = space + 1
        if not ensure(vector_bytes):
            _fail(path, f"record {number} ({word!r}) is cut short: the file ends inside its vector")
        vector = np.frombuffer(buffer, dtype="<f4", count=dimension, offset=position)
        vector = vector.astype(rows.dtype)
        _check_finite(path, f"record {number} ({word!r})", vector)
        position += vector_bytes
        _store(word, vector, rows, keys)


def read_word2vec(path: str | os.PathLike, binary: bool = False, limit: int | None = None, encoding: str = "utf8",
                  unicode_errors: str = "strict", datatype: type = np.float32,
                  fvocab: str | os.PathLike | bool | None = True) -> KeyedVectors:
    """Read a word2vec text or binary file into a gensim ``KeyedVectors``.

    Takes gensim's ``load_word2vec_format`` arguments of the same names (``.gz``/``.bz2``
    files are read through gensim's ``utils.open``). Duplicate words keep their first vector,
    with a warning, as gensim does.

    ``fvocab`` is gensim's vocabulary file of word counts: True (the default) reads
    :func:`counts_path` when that file exists, a path reads that file (it must exist),
    False/None reads none. Without counts they are gensim's made-up descending ones (logged).

    Raises:
        Word2VecFormatError: (a ValueError) for any file that is not what its header says.
        OSError: the file cannot be opened (FileNotFoundError, IsADirectoryError, ...).
    """
    from gensim import utils
    from gensim.models import KeyedVectors

    path = os.fspath(path)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 0):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
    limit = int(limit) if limit else None  # gensim reads everything for limit=0 too
    if os.path.isdir(path):
        raise IsADirectoryError(21, "is a folder, not a vectors file", path)
    with utils.open(path, "rb") as stream:
        try:
            header = stream.readline(MAX_HEADER_BYTES)
            count, dimension = _parse_header(path, header, limit)
            _check_size(path, count, dimension, len(header), binary, np.dtype(datatype).itemsize)
            rows, keys = _Rows(dimension, datatype), _Keys()
            read_records = _read_binary_records if binary else _read_text_records
            read_records(path, stream, count, dimension, encoding, unicode_errors, rows, keys)
        except (EOFError, OSError, zlib.error, lzma.LZMAError) as error:  # a damaged compressed stream
            _fail(path, f"reading failed (a damaged compressed stream?): {type(error).__name__}: {error}")
    vectors = rows.matrix()
    if keys.duplicates:
        logger.warning("%s: %d duplicate words, keeping the first vector of each", path, keys.duplicates)
    words = list(keys)
    keyed_vectors = KeyedVectors(dimension, count=0, dtype=datatype)
    if words:
        keyed_vectors.add_vectors(words, vectors)
        keyed_vectors.allocate_vecattrs(attrs=["count"], types=[np.int64])
        counts = _counts_for(path, fvocab, keyed_vectors.key_to_index, encoding, unicode_errors)
        if counts is None:
            logger.info("%s: no counts file (%s); counts made up, descending from %d", path, counts_path(path), count)
            counts = np.arange(count, count - len(words), -1)
            setattr(keyed_vectors, COUNTS_MADE_UP, True)
        keyed_vectors.expandos["count"][:] = counts
    return keyed_vectors


def _counts_for(path, fvocab, key_to_index, encoding, unicode_errors):
    """The counts from ``fvocab`` (see :func:`read_word2vec`), or None where there are none."""
    if fvocab is True:
        fvocab = counts_path(path) if os.path.isfile(counts_path(path)) else None
    if not fvocab:
        return None
    if os.path.isdir(fvocab):
        raise IsADirectoryError(21, "is a folder, not a counts file", os.fspath(fvocab))
    return _read_counts(path, fvocab, key_to_index, encoding, unicode_errors)
