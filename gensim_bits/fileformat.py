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
import contextlib
import errno
import logging
import os
import secrets
import struct
import zlib
from numbers import Integral

import numpy as np

from gensim_bits.packing import PACKED_BITS, check_packed_bits, plane_bytes
from gensim_bits.quantizers import levels
from gensim_bits.vocabulary import Vocabulary, vocabulary_of

MAGIC = b"GBITSKV\0"
VERSION = 1
HEADER = struct.Struct("<8sHHIQQII")
CHECKSUM = struct.Struct("<I")
CODES_ALIGNMENT = 64
MAX_DIMENSION = 1 << 24
COPY_CHUNK = 1 << 24

logger = logging.getLogger(__name__)


class QuantizedVectorsFormatError(ValueError):
    """The file is not a valid packed-vectors file: truncated, corrupt, or inconsistent."""


def _aligned(offset):
    return -(-offset // CODES_ALIGNMENT) * CODES_ALIGNMENT


def _current_umask():
    """The process umask, read without changing it where Linux allows (os.umask races threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _process_is_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else
        return True
    return True


def _remove_stale_temporaries(folder, name):
    """Delete temporaries of ``name`` left by writers that were killed (SIGKILL cannot be caught)."""
    prefix = f".{name}.tmp-"
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        if not entry.startswith(prefix):
            continue
        pid = entry[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_is_alive(int(pid)):
            try:
                os.unlink(os.path.join(folder, entry))
                logger.info("removed %s, left by an interrupted save", entry)
            except OSError:
                pass


def _fsync_folder(folder):
    """Make the rename itself durable; not every system can open a folder, which is then skipped."""
    try:
        descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError as error:  # some file systems refuse fsync on folders; the data is already safe
        logger.warning("could not fsync folder %s: %s", folder, error)
    finally:
        os.close(descriptor)


def check_output_path(path):
    """Raise OSError now if ``path`` cannot be written, before any long work is done for it.

    Writes through a symlink (its target is checked) and creates and removes one empty
    temporary file next to the target.
    """
    target = os.path.realpath(os.fspath(path))
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, "the output path is a folder", os.fspath(path))
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, "the output folder does not exist", folder)
    with atomic_output(path, replace=False):
        pass


@contextlib.contextmanager
def atomic_output(path, replace=True):
    """Yield a temporary path next to ``path``'s target; after the block it replaces the target.

    The target of a symlink is written (the link stays). The new file's mode follows the umask
    (0o666 & ~umask), as ``open`` would give it. The temporary file is removed on every failure
    the process survives, including KeyboardInterrupt, and temporaries of killed writers are
    removed by the next save. File and folder are fsynced, so the rename survives a crash.
    """
    target = os.path.realpath(os.fspath(path))
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, "is a folder", os.fspath(path))
    folder, name = os.path.split(target)
    _remove_stale_temporaries(folder, name)
    # Named before it exists, so an interrupt anywhere after the open still finds it.
    temporary = os.path.join(folder, f".{name}.tmp-{os.getpid()}-{secrets.token_hex(6)}")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(descriptor, 0o666 & ~_current_umask())
        finally:
            os.close(descriptor)
        yield temporary
        if replace:
            with open(temporary, "rb+") as written:
                os.fsync(written.fileno())
            os.replace(temporary, target)
            temporary = None
            _fsync_folder(folder)
    finally:
        if temporary is not None:
            try:
                os.unlink(temporary)
            except FileNotFoundError:
                pass


def check_contents(bits, dimension, keys, counts, codes):
    """The one validator of packed vectors, shared by the constructor, ``save`` and ``load``.

    Returns ``(bits, dimension, vocabulary, counts, codes)`` normalized (a
    :class:`~gensim_bits.vocabulary.Vocabulary`, int64 counts); raises ValueError (TypeError
    for a word that is not a str) naming the first problem, so nothing is written that
    :func:`read_packed` would refuse.
    """
    bits = check_packed_bits(bits)
    if isinstance(dimension, bool) or not isinstance(dimension, (Integral, np.integer)):
        raise TypeError(f"vector_size must be an integer, got {dimension!r}")
    dimension = int(dimension)
    if not 1 <= dimension <= MAX_DIMENSION:
        raise ValueError(f"vector_size must be in [1, {MAX_DIMENSION}], got {dimension}")
    row_bytes = bits * plane_bytes(dimension)
    if not isinstance(codes, np.ndarray) or codes.ndim != 2 or codes.dtype != np.uint8 or codes.shape[1] != row_bytes:
        shape = getattr(codes, "shape", None)
        raise ValueError(f"codes must be uint8 of shape (words, {row_bytes}), got "
                         f"{getattr(codes, 'dtype', type(codes).__name__)} {shape}")
    vocabulary = vocabulary_of(keys)  # a KeyList where some key is not a str (in memory only)
    if len(vocabulary) != codes.shape[0]:
        raise ValueError(f"{len(vocabulary)} keys for {codes.shape[0]} code rows")
    if counts is None:
        counts = np.zeros(len(vocabulary), dtype=np.int64)
    else:
        counts = np.asarray(counts)
        if counts.dtype.kind not in "iu" and not (counts.dtype.kind == "f" and np.all(counts == np.round(counts))):
            raise ValueError(f"counts must be integers, got dtype {counts.dtype}")
        if counts.dtype.kind == "u" and counts.size and counts.max() > np.iinfo(np.int64).max:
            raise ValueError("counts must fit in int64")
        counts = counts.astype(np.int64)
    if counts.shape != (len(vocabulary),):
        raise ValueError(f"counts must have one entry a word, got shape {counts.shape}")
    if (counts < 0).any():
        raise ValueError(f"negative word count {int(counts.min())}")
    if not _padding_is_clear(codes, bits, dimension):
        raise ValueError("padding bits of the codes are set (the bits past vector_size in the last "
                         "byte of each plane must be zero)")
    return bits, dimension, vocabulary, counts, codes


def write_packed(path, bits, dimension, keys, counts, codes):
    """Write the file atomically: a temporary file next to the target, then ``os.replace``.

    Everything is validated first (:func:`check_contents`), so a save that would write a file
    :func:`read_packed` refuses raises instead, and the previous file stays.
    """
    bits, dimension, vocabulary, counts, codes = check_contents(bits, dimension, keys, counts, codes)
    if not isinstance(vocabulary, Vocabulary):
        key = next(key for key in vocabulary if not isinstance(key, str))
        raise TypeError(f"the .gbits format stores str words; key {key!r} is {type(key).__name__} "
                        "(save_word2vec_format writes str(key))")
    text, lengths = vocabulary.text, np.diff(vocabulary.offsets).astype("<u4")
    level_values = levels(bits)
    head = b"".join([
        HEADER.pack(MAGIC, VERSION, bits, dimension, len(lengths), len(text), len(level_values), 0),
        level_values.astype("<f4").tobytes(), counts.astype("<i8").tobytes(), lengths.tobytes(), text,
    ])
    head += b"\0" * (_aligned(len(head)) - len(head))
    with atomic_output(path) as temporary, open(temporary, "wb") as out:
        out.write(head)
        checksum = zlib.crc32(head)
        rows_per_chunk = max(1, COPY_CHUNK // max(1, codes.shape[1]))
        for start in range(0, codes.shape[0], rows_per_chunk):
            chunk = np.ascontiguousarray(codes[start:start + rows_per_chunk]).tobytes()
            checksum = zlib.crc32(chunk, checksum)
            out.write(chunk)
        out.write(CHECKSUM.pack(checksum))


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
    if any(head[offset + text_bytes:codes_start]):
        _fail(path, "non-zero padding")
    if mmap is not None:
        codes = np.memmap(path, dtype=np.uint8, mode="r", offset=codes_start, shape=(count, row_bytes))
    try:
        return check_contents(bits, dimension, Vocabulary(text, offsets), counts, codes)
    except ValueError as error:
        _fail(path, error)


def _padding_is_clear(codes, bits, dimension):
    """Padding bits must be zero, else XOR-popcount would count them."""
    spare = plane_bytes(dimension) * 8 - dimension
    if spare == 0 or codes.shape[0] == 0:
        return True
    mask = np.uint8((0xFF << (8 - spare)) & 0xFF)
    last_bytes = [(plane + 1) * plane_bytes(dimension) - 1 for plane in range(bits)]
    return not (codes[:, last_bytes] & mask).any()
