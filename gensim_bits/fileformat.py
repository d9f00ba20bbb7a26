"""The packed Word2Bits vector file: a versioned header, the vocabulary, the bit-packed codes
(Lam 2018, section 3.2 levels; layout in :mod:`gensim_bits.packing`), a CRC-32. No pickle.

Layout, little-endian::

    magic        8 bytes  b"GBITSKV\\0"
    version      u16      1
    bits         u16      1, 2, 4 or 8
    dimension    u32
    count        u64      number of words
    text_bytes   u64      UTF-8 bytes of all words together
    level_count  u32      2**bits
    reserved     u32      0
    levels       f32 x level_count      (must equal quantizers.levels(bits))
    counts       i64 x count            word frequencies, >= 0
    key_lengths  u32 x count            UTF-8 bytes of each word
    keys         text_bytes             the words, concatenated
    padding      zeros up to a multiple of 64 bytes from the file start (so mmap'ed codes align)
    codes        count x bits x ceil(dimension / 8) bytes
    crc32        u32      zlib.crc32 of every byte before it

The loader checks that the header's sizes add up to the real file size before it reads
or allocates anything they describe, so a hostile header cannot ask for a huge array.
"""
import os
import struct
import tempfile
import zlib

import numpy as np

from gensim_bits.packing import PACKED_BITS, plane_bytes
from gensim_bits.quantizers import levels
from gensim_bits.vocabulary import Vocabulary

MAGIC = b"GBITSKV\0"
VERSION = 1
HEADER = struct.Struct("<8sHHIQQII")
CHECKSUM = struct.Struct("<I")
CODES_ALIGNMENT = 64
MAX_DIMENSION = 1 << 24
COPY_CHUNK = 1 << 24


class QuantizedVectorsFormatError(ValueError):
    """The file is not a valid packed-vectors file: truncated, corrupt, or inconsistent."""


def _aligned(offset):
    return -(-offset // CODES_ALIGNMENT) * CODES_ALIGNMENT


def write_packed(path, bits, dimension, keys, counts, codes):
    """Write the file atomically: a temporary file in the same folder, then ``os.replace``."""
    path = os.fspath(path)
    if isinstance(keys, Vocabulary):
        text, lengths = keys.text, np.diff(keys.offsets).astype("<u4")
    else:
        encoded = [key.encode("utf-8") for key in keys]
        text, lengths = b"".join(encoded), np.array([len(word) for word in encoded], dtype="<u4")
    level_values = levels(bits)
    counts = np.ascontiguousarray(counts, dtype="<i8")
    head = b"".join([
        HEADER.pack(MAGIC, VERSION, bits, dimension, len(lengths), len(text), len(level_values), 0),
        level_values.astype("<f4").tobytes(), counts.tobytes(), lengths.tobytes(), text,
    ])
    head += b"\0" * (_aligned(len(head)) - len(head))
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".gbits", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(head)
            checksum = zlib.crc32(head)
            codes = np.ascontiguousarray(codes, dtype=np.uint8)
            rows_per_chunk = max(1, COPY_CHUNK // max(1, codes.shape[1]))
            for start in range(0, codes.shape[0], rows_per_chunk):
                chunk = codes[start:start + rows_per_chunk].tobytes()
                checksum = zlib.crc32(chunk, checksum)
                out.write(chunk)
            out.write(CHECKSUM.pack(checksum))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _fail(path, reason):
    raise QuantizedVectorsFormatError(f"{path}: not a valid gensim-bits vectors file ({reason})")


def _read_exact(stream, size, path):
    data = stream.read(size)
    if len(data) != size:
        _fail(path, "truncated")
    return data


def read_packed(path, mmap=None):
    """Read a file written by :func:`write_packed`.

    Returns ``(bits, dimension, vocabulary, counts, codes)``; ``codes`` is a read-only
    ``np.memmap`` when ``mmap='r'``. Raises :class:`QuantizedVectorsFormatError` for any
    file that is not exactly what the header says.
    """
    if mmap not in (None, "r"):
        raise ValueError(f"mmap must be None or 'r', got {mmap!r}")
    path = os.fspath(path)
    file_size = os.path.getsize(path)
    with open(path, "rb") as stream:
        if file_size < HEADER.size + CHECKSUM.size:
            _fail(path, f"{file_size} bytes is shorter than the header")
        header = _read_exact(stream, HEADER.size, path)
        magic, version, bits, dimension, count, text_bytes, level_count, reserved = HEADER.unpack(header)
        if magic != MAGIC:
            _fail(path, "wrong magic bytes")
        if version != VERSION:
            _fail(path, f"unsupported version {version}, this library reads version {VERSION}")
        if bits not in PACKED_BITS or level_count != 2 ** bits or reserved != 0:
            _fail(path, f"bits={bits}, level_count={level_count}, reserved={reserved} are inconsistent")
        if not 1 <= dimension <= MAX_DIMENSION:
            _fail(path, f"dimension {dimension} out of range")
        # Python integers: these products cannot overflow, and they are compared with the
        # real size before anything is allocated.
        row_bytes = bits * plane_bytes(dimension)
        vocabulary_end = HEADER.size + 4 * level_count + 12 * count + text_bytes
        codes_start = _aligned(vocabulary_end)
        expected_size = codes_start + count * row_bytes + CHECKSUM.size
        if expected_size != file_size:
            _fail(path, f"header describes {expected_size} bytes but the file has {file_size}")

        head = header + _read_exact(stream, codes_start - HEADER.size, path)
        checksum = zlib.crc32(head)
        if mmap is None:
            codes = np.empty((count, row_bytes), dtype=np.uint8)
            flat = codes.reshape(-1)
            for start in range(0, flat.size, COPY_CHUNK):
                view = memoryview(flat[start:start + COPY_CHUNK])
                if stream.readinto(view) != len(view):
                    _fail(path, "truncated")
                checksum = zlib.crc32(view, checksum)
        else:
            # Stream the checksum through ordinary reads, so the mapping stays untouched.
            remaining = count * row_bytes
            while remaining:
                chunk = _read_exact(stream, min(remaining, COPY_CHUNK), path)
                checksum = zlib.crc32(chunk, checksum)
                remaining -= len(chunk)
            codes = None
        stored_checksum, = CHECKSUM.unpack(_read_exact(stream, CHECKSUM.size, path))
        if stored_checksum != checksum:
            _fail(path, "checksum mismatch, the file is corrupt")

    offset = HEADER.size
    stored_levels = np.frombuffer(head, dtype="<f4", count=level_count, offset=offset)
    if not np.array_equal(stored_levels, levels(bits)):
        _fail(path, f"level values {stored_levels.tolist()} differ from the {bits}-bit Word2Bits levels")
    offset += 4 * level_count
    counts = np.frombuffer(head, dtype="<i8", count=count, offset=offset).astype(np.int64)
    offset += 8 * count
    lengths = np.frombuffer(head, dtype="<u4", count=count, offset=offset).astype(np.int64)
    offset += 4 * count
    if (counts < 0).any():
        _fail(path, "negative word count")
    if int(lengths.sum()) != text_bytes:
        _fail(path, "word lengths do not add up to the vocabulary size")
    text = head[offset:offset + text_bytes]
    offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        _fail(path, "the vocabulary is not valid UTF-8")
    # Valid as a whole, so a word is valid unless a boundary splits a character, which
    # shows as a word starting with a continuation byte.
    starts = offsets[:-1][lengths > 0]
    if (np.frombuffer(text, dtype=np.uint8)[starts] & 0xC0 == 0x80).any():
        _fail(path, "a word boundary splits a UTF-8 character")
    try:
        vocabulary = Vocabulary(text, offsets)
    except ValueError as error:
        _fail(path, error)
    if any(head[offset + text_bytes:codes_start]):
        _fail(path, "non-zero padding")
    if mmap is not None:
        codes = np.memmap(path, dtype=np.uint8, mode="r", offset=codes_start, shape=(count, row_bytes))
    if not _padding_is_clear(codes, bits, dimension):
        _fail(path, "padding bits of the codes are set")
    return bits, dimension, vocabulary, counts, codes


def _padding_is_clear(codes, bits, dimension):
    """Padding bits must be zero, else XOR-popcount would count them."""
    spare = plane_bytes(dimension) * 8 - dimension
    if spare == 0 or codes.shape[0] == 0:
        return True
    mask = np.uint8((0xFF << (8 - spare)) & 0xFF)
    last_bytes = [(plane + 1) * plane_bytes(dimension) - 1 for plane in range(bits)]
    return not (codes[:, last_bytes] & mask).any()
