"""The packed vectors file: round trips, atomic save, and a loader that only ever raises
QuantizedVectorsFormatError on bad input (explicit cases plus hypothesis fuzzing)."""
import os
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gensim_bits import QuantizedKeyedVectors, QuantizedVectorsFormatError, fileformat, packing

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def make_packed(bits=2, dimension=13, words=20, seed=0):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 2 ** bits, size=(words, dimension), dtype=np.uint8)
    keys = [f"wörd{index}" for index in range(words)]
    return QuantizedKeyedVectors(packing.pack_codes(codes, bits), bits, dimension, keys, np.arange(words) * 3)


def valid_bytes(tmp_path, **kwargs):
    path = tmp_path / "valid.gbits"
    make_packed(**kwargs).save(path)
    return path.read_bytes()


def with_checksum(body):
    """``body`` (everything but the checksum) followed by its correct CRC-32."""
    return body + struct.pack("<I", zlib.crc32(body))


def load_bytes(tmp_path, data, mmap=None):
    path = tmp_path / "candidate.gbits"
    path.write_bytes(data)
    return QuantizedKeyedVectors.load(path, mmap=mmap)


@pytest.mark.parametrize("bits", packing.PACKED_BITS)
@pytest.mark.parametrize("mmap", [None, "r"])
def test_save_load_round_trip(tmp_path, bits, mmap):
    packed = make_packed(bits=bits, dimension=67)
    path = tmp_path / "vectors.gbits"
    packed.save(path)
    loaded = QuantizedKeyedVectors.load(path, mmap=mmap)
    assert (loaded.bits, loaded.vector_size, loaded.index_to_key) == (bits, 67, packed.index_to_key)
    np.testing.assert_array_equal(loaded.codes, packed.codes)
    np.testing.assert_array_equal(loaded.counts, packed.counts)
    assert isinstance(loaded.codes, np.memmap) == (mmap == "r")
    assert loaded.most_similar("wörd3") == packed.most_similar("wörd3")
    header_and_vocabulary = os.path.getsize(path) - packed.nbytes
    assert header_and_vocabulary < 64 + 40 + 4 * 2 ** bits + 12 * 20 + 10 * 20 + 4


def test_empty_vocabulary_round_trip(tmp_path):
    empty = QuantizedKeyedVectors(np.zeros((0, 2), dtype=np.uint8), 1, 13, [])
    empty.save(tmp_path / "empty.gbits")
    assert len(QuantizedKeyedVectors.load(tmp_path / "empty.gbits")) == 0


def test_interrupted_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "vectors.gbits"
    make_packed(seed=1).save(path)
    before = path.read_bytes()

    def failing_fsync(descriptor):
        raise OSError("disk full")

    monkeypatch.setattr(fileformat.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        make_packed(seed=2).save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["vectors.gbits"]  # no temporary file left behind


@pytest.mark.parametrize("corrupt,reason", [
    (lambda data: data[:-1], "describes"),
    (lambda data: data + b"\0", "describes"),
    (lambda data: b"NOTGBITS" + data[8:], "magic"),
    (lambda data: data[:100] + bytes([data[100] ^ 1]) + data[101:], "checksum"),
    (lambda data: data[:-4] + bytes([data[-4] ^ 0xFF]) + data[-3:], "checksum"),
    (lambda data: b"", "shorter than the header"),
])
def test_corrupt_files_raise_a_clear_error(tmp_path, corrupt, reason):
    data = valid_bytes(tmp_path)
    with pytest.raises(QuantizedVectorsFormatError, match=reason):
        load_bytes(tmp_path, corrupt(data))


def rewrite_header(data, **fields):
    names = ["magic", "version", "bits", "dimension", "count", "text_bytes", "level_count", "reserved"]
    values = dict(zip(names, fileformat.HEADER.unpack(data[:fileformat.HEADER.size])))
    values.update(fields)
    body = fileformat.HEADER.pack(*[values[name] for name in names]) + data[fileformat.HEADER.size:-4]
    return with_checksum(body)


@pytest.mark.parametrize("fields,reason", [
    (dict(count=2 ** 62), "describes"),  # would be an exabyte allocation
    (dict(text_bytes=2 ** 63), "describes"),
    (dict(dimension=2 ** 31), "dimension"),
    (dict(dimension=0), "dimension"),
    (dict(version=2), "version"),
    (dict(bits=3), "bits"),
    (dict(level_count=8), "bits"),
    (dict(reserved=1), "reserved"),
])
def test_hostile_headers_are_refused_before_allocating(tmp_path, fields, reason):
    data = rewrite_header(valid_bytes(tmp_path), **fields)
    with pytest.raises(QuantizedVectorsFormatError, match=reason):
        load_bytes(tmp_path, data)


def test_inconsistent_contents_with_a_valid_checksum(tmp_path):
    data = valid_bytes(tmp_path, bits=1, dimension=13)
    head = fileformat.HEADER.size
    # A level value that is not the 1-bit level.
    bad_level = data[:head] + struct.pack("<f", 0.5) + data[head + 4:-4]
    with pytest.raises(QuantizedVectorsFormatError, match="level values"):
        load_bytes(tmp_path, with_checksum(bad_level))
    # A negative count.
    counts_at = head + 4 * 2
    negative = data[:counts_at] + struct.pack("<q", -1) + data[counts_at + 8:-4]
    with pytest.raises(QuantizedVectorsFormatError, match="negative"):
        load_bytes(tmp_path, with_checksum(negative))
    # A padding bit set in the codes (dimension 13 leaves 3 spare bits a plane).
    codes_at = len(data) - 4 - 20 * 2
    padded = bytearray(data[:-4])
    padded[codes_at + 1] |= 0x80
    with pytest.raises(QuantizedVectorsFormatError, match="padding"):
        load_bytes(tmp_path, with_checksum(bytes(padded)))


def test_duplicate_or_invalid_words(tmp_path):
    packed = make_packed(words=3)
    packed.index_to_key = ["ab", "ab", "cd"]  # bypass the constructor's check: save() refuses it too
    with pytest.raises(ValueError, match="duplicate"):
        packed.save(tmp_path / "dup.gbits")
    assert not os.listdir(tmp_path)
    packed.index_to_key = ["ab", "ac", "cd"]
    packed.save(tmp_path / "dup.gbits")
    duplicate = (tmp_path / "dup.gbits").read_bytes().replace(b"abaccd", b"ababcd")[:-4]
    with pytest.raises(QuantizedVectorsFormatError, match="duplicate"):
        load_bytes(tmp_path, with_checksum(duplicate))
    packed.index_to_key = ["é", "x", "y"]
    packed.save(tmp_path / "utf.gbits")
    data = (tmp_path / "utf.gbits").read_bytes()
    broken = data.replace("é".encode("utf-8"), b"\xff\xfe", 1)[:-4]
    with pytest.raises(QuantizedVectorsFormatError, match="UTF-8"):
        load_bytes(tmp_path, with_checksum(broken))


def test_word_boundary_inside_a_character(tmp_path):
    packed = make_packed(words=2)
    packed.index_to_key = ["é", "x"]  # lengths 2 and 1; rewrite them as 1 and 2
    packed.save(tmp_path / "split.gbits")
    data = bytearray((tmp_path / "split.gbits").read_bytes()[:-4])
    lengths_at = fileformat.HEADER.size + 4 * 4 + 8 * 2
    data[lengths_at:lengths_at + 8] = struct.pack("<II", 1, 2)
    with pytest.raises(QuantizedVectorsFormatError, match="splits a UTF-8 character"):
        load_bytes(tmp_path, with_checksum(bytes(data)))


def test_bad_mmap_argument_and_missing_file(tmp_path):
    path = tmp_path / "vectors.gbits"
    make_packed().save(path)
    with pytest.raises(ValueError, match="mmap"):
        QuantizedKeyedVectors.load(path, mmap="w+")
    with pytest.raises(FileNotFoundError):
        QuantizedKeyedVectors.load(tmp_path / "missing.gbits")


def assert_loads_or_format_error(tmp_path, data, mmap=None):
    try:
        loaded = load_bytes(tmp_path, data, mmap=mmap)
    except QuantizedVectorsFormatError:
        return
    # Anything that loads must be fully usable.
    if len(loaded):
        loaded.most_similar(loaded.index_to_key[0], topn=3)


@FUZZ
@given(data=st.binary(max_size=600))
def test_fuzz_random_bytes(tmp_path, data):
    assert_loads_or_format_error(tmp_path, data)


@FUZZ
@given(cut=st.integers(min_value=0, max_value=10_000), mmap=st.sampled_from([None, "r"]))
def test_fuzz_truncations(tmp_path, cut, mmap):
    data = valid_bytes(tmp_path)
    assert_loads_or_format_error(tmp_path, data[:cut % len(data)], mmap=mmap)


@FUZZ
@given(flips=st.lists(st.integers(min_value=0, max_value=10 ** 6), min_size=1, max_size=4),
       fix_checksum=st.booleans())
def test_fuzz_bit_flips(tmp_path, flips, fix_checksum):
    data = bytearray(valid_bytes(tmp_path))
    for flip in flips:
        bit = flip % (8 * len(data))
        data[bit // 8] ^= 1 << (bit % 8)
    data = bytes(data)
    if fix_checksum:
        data = with_checksum(data[:-4])
    assert_loads_or_format_error(tmp_path, data)


@FUZZ
@given(field=st.sampled_from(["version", "bits", "dimension", "count", "text_bytes", "level_count", "reserved"]),
       value=st.integers(min_value=0, max_value=2 ** 16 - 1) | st.sampled_from([2 ** 31, 2 ** 32 - 1]))
def test_fuzz_header_fields(tmp_path, field, value):
    limits = {"version": 2 ** 16 - 1, "bits": 2 ** 16 - 1, "dimension": 2 ** 32 - 1, "level_count": 2 ** 32 - 1,
              "reserved": 2 ** 32 - 1, "count": 2 ** 64 - 1, "text_bytes": 2 ** 64 - 1}
    data = rewrite_header(valid_bytes(tmp_path), **{field: min(value, limits[field])})
    assert_loads_or_format_error(tmp_path, data)
