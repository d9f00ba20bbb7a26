"""Issue 10: word2vec text/binary import, word-pair and analogy files, TSV data sets.

Regressions for the defects (the 31-byte file that allocated 22 GB, "0/0 pairs" on a
malformed file), words the word2vec formats cannot carry, and fuzzing of every reader in a
forked child under ``resource.setrlimit(RLIMIT_AS)`` and a time limit: only the readers'
clean exceptions, never a MemoryError, a crash or a hang.
"""
import bz2
import gzip
import multiprocessing
import os
import resource
import struct
import traceback

import numpy as np
import pytest
from gensim.models import KeyedVectors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gensim_bits import QuantizedKeyedVectors, Word2VecFormatError, evaluate, packing
from gensim_bits.word2vec_format import check_words, read_word2vec, save_word2vec
from keras_compress.models import read_tsv

# Address space the fuzzing child may add to what it already maps: far below the 22 GB the
# hostile header used to request, far above what any fuzz input legitimately needs.
MEMORY_HEADROOM = 768 << 20
FUZZ_SECONDS = 60
FUZZ = settings(max_examples=120, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def small_vectors(words=("the", "king", "queen", "é", "a\tb")):
    keyed_vectors = KeyedVectors(4)
    keyed_vectors.add_vectors(list(words), np.random.default_rng(0).normal(size=(len(words), 4)).astype(np.float32))
    return keyed_vectors


def _virtual_memory_bytes():
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize")


def _bounded_child(function, errors):
    try:
        limit = _virtual_memory_bytes() + MEMORY_HEADROOM
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        function()
    except BaseException:  # noqa: BLE001 - reported to the parent
        errors.put(traceback.format_exc())
        errors.close()
        errors.join_thread()  # os._exit would drop what the feeder thread has not yet written
        os._exit(1)
    os._exit(0)


def run_bounded(function, seconds=FUZZ_SECONDS):
    """Run ``function`` in a forked child with bounded memory and time; fail with its traceback."""
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs Linux /proc to size the memory limit")
    context = multiprocessing.get_context("fork")
    errors = context.Queue()
    child = context.Process(target=_bounded_child, args=(function, errors))
    child.start()
    child.join(seconds)
    if child.is_alive():
        child.kill()
        child.join()
        pytest.fail(f"fuzzing did not finish in {seconds} s (a hang?)")
    if child.exitcode != 0:
        try:
            message = errors.get(timeout=5)
        except Exception:  # noqa: BLE001 - nothing was reported: the child crashed
            message = f"exit code {child.exitcode} (a crash?)"
        pytest.fail(message)


# ------------------------------------------------------------------ word2vec import: regressions

def test_a_gzip_header_promising_3e9_rows_of_256_is_refused_before_reading(tmp_path, monkeypatch):
    from gensim_bits import word2vec_format
    record = b"w " + b" ".join([b"0.5"] * 256) + b"\n"
    path = tmp_path / "bomb.txt.gz"
    path.write_bytes(gzip.compress(b"3000000000 256\n" + record * 1000))
    with pytest.raises(Word2VecFormatError, match="bytes of gzip data expand to at most"):
        read_word2vec(path)
    # A header the gzip size allows but the machine's memory does not (here, a 1 MiB machine).
    monkeypatch.setattr(word2vec_format, "_memory_bytes", lambda: 1 << 20)
    path.write_bytes(gzip.compress(b"2000 256\n" + record * 2000))
    with pytest.raises(Word2VecFormatError, match=r"2.0 MiB|GiB, more than this machine's .* of memory"):
        read_word2vec(path)
    assert len(read_word2vec(path, limit=100)) == 1  # limit= reads fewer


def test_duplicate_records_are_checked_but_not_stored(tmp_path, monkeypatch, caplog):
    from gensim_bits import word2vec_format
    stored = []
    original_add = word2vec_format._Rows.add
    monkeypatch.setattr(word2vec_format._Rows, "add", lambda self, values: stored.append(1) or original_add(self, values))
    path = tmp_path / "duplicates.txt.gz"
    path.write_bytes(gzip.compress(b"5001 3\nw 1 2 3\n" + b"w 4 5 6\n" * 4999 + b"v 7 8 9\n"))
    vectors = read_word2vec(path)
    assert vectors.index_to_key == ["w", "v"] and len(stored) == 2  # memory follows distinct words
    np.testing.assert_array_equal(vectors["w"], [1, 2, 3])
    assert "4999 duplicate words" in caplog.text
    path.write_bytes(gzip.compress(b"3 3\nw 1 2 3\nw 4 5 nan\nv 7 8 9\n"))
    with pytest.raises(Word2VecFormatError, match="line 3"):  # a duplicate record is still checked
        read_word2vec(path)


@pytest.mark.slow
def test_a_gzip_bomb_of_valid_duplicate_records_reads_in_bounded_memory(tmp_path):
    # 1,000,000 records of 256 values: 513 MB of text from about 0.5 MB of gzip, 1 GB as
    # float32 if every record were stored; the child may map only 768 MiB more than it has.
    path = tmp_path / "bomb.txt.gz"
    record = b"w " + b" ".join([b"0"] * 256) + b"\n"
    with gzip.open(path, "wb") as stream:
        stream.write(b"1000000 256\n")
        for _ in range(1000):
            stream.write(record * 1000)

    def load():
        vectors = read_word2vec(path)
        assert vectors.index_to_key == ["w"]
    run_bounded(load, seconds=600)  # 1-3 minutes on a busy 2-core machine


def test_a_31_byte_header_claiming_3e9_words_is_refused_before_allocating(tmp_path):
    path = tmp_path / "hostile.txt"
    path.write_bytes(b"3000000000 4\na .3 .3 .3 .3\n")
    assert path.stat().st_size == 27 or path.stat().st_size <= 31

    def load():
        for reader in (lambda: read_word2vec(path), lambda: QuantizedKeyedVectors.load_word2vec_format(path)):
            with pytest.raises(Word2VecFormatError, match="promises 3000000000 vectors"):
                reader()
        # Compressed: gzip expands at most 1032 times, so the header cannot fit its file either.
        compressed = tmp_path / "hostile.txt.gz"
        compressed.write_bytes(gzip.compress(path.read_bytes()))
        with pytest.raises(Word2VecFormatError, match="bytes of gzip data expand to at most"):
            read_word2vec(compressed)
        # bz2 has no such bound: its storage grows only with what is read.
        compressed = tmp_path / "hostile.txt.bz2"
        compressed.write_bytes(bz2.compress(b"3 4\na .3 .3 .3 .3\n"))
        with pytest.raises(Word2VecFormatError, match="ends after 1"):
            read_word2vec(compressed)
        binary = tmp_path / "hostile.bin"
        binary.write_bytes(b"1 3000000000\na " + b"\0" * 16)
        with pytest.raises(Word2VecFormatError, match="dimension"):
            read_word2vec(binary, binary=True)

    run_bounded(load)


@pytest.mark.parametrize("binary", [False, True])
def test_same_vectors_as_gensim(tmp_path, binary):
    path = tmp_path / ("v.bin" if binary else "v.txt")
    small_vectors().save_word2vec_format(path, binary=binary)
    ours, theirs = read_word2vec(path, binary=binary), KeyedVectors.load_word2vec_format(path, binary=binary)
    assert ours.index_to_key == theirs.index_to_key
    np.testing.assert_array_equal(ours.vectors, theirs.vectors)
    assert [ours.get_vecattr(word, "count") for word in ours.index_to_key] == \
        [theirs.get_vecattr(word, "count") for word in theirs.index_to_key]
    assert len(read_word2vec(path, binary=binary, limit=2)) == 2
    compressed = tmp_path / (path.name + ".gz")
    compressed.write_bytes(gzip.compress(path.read_bytes()))
    np.testing.assert_array_equal(read_word2vec(compressed, binary=binary).vectors, theirs.vectors)


@pytest.mark.parametrize("content,reason", [
    (b"", "first line"),
    (b"2 4", "first line"),
    (b"two 4\n", "first line"),
    (b"-1 4\n", "first line"),
    (b"1 0\n", "dimension"),
    (b"2 3\na 1.000 2.000 3.000\n", "ends after 1"),
    (b"2 3\na 1 2 3\n", "promises 2 vectors of 3 values"),
    (b"1 3\na 1 2\n", "has 2 values"),
    (b"1 1\na 0.3 0.3 0.3\n", "has 3 values"),  # gensim broadcast this silently into the row
    (b"1 3\na 1 x 3\n", "not a number"),
    (b"1 3\na 1 nan 3\n", "NaN or infinite"),
    (b"1 3\na 1 1e999 3\n", "NaN or infinite"),
    (b"1 3\na 1 1e39 3\n", "NaN or infinite"),  # beyond float32
    (b"1 2\n\xff\xfe 1 2\n", "not valid utf8"),
    (b"1 2\n 1 2\n", "must be a word"),
])
def test_bad_text_files_name_the_problem(tmp_path, content, reason):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(Word2VecFormatError, match=reason):
        read_word2vec(path)


@pytest.mark.parametrize("content,reason", [
    (b"2 2\na " + struct.pack("<2f", 1, 2), "promises 2 vectors of 2 values"),
    (b"2 2\n" + b"a" * 20 + b" " + struct.pack("<2f", 1, 2), "ends after 1"),
    (b"1 2\nabcdefgh " + struct.pack("<f", 1), "cut short"),
    (b"1 2\na " + struct.pack("<2f", 1, float("nan")), "NaN"),
    (b"1 2\n" + b"x" * 70000, "no word"),
    (b"1 2\n\xff " + struct.pack("<2f", 1, 2), "not valid utf8"),
    (b"1 2\n\n " + struct.pack("<2f", 1, 2), "empty word"),
])
def test_bad_binary_files_name_the_problem(tmp_path, content, reason):
    path = tmp_path / "bad.bin"
    path.write_bytes(content)
    with pytest.raises(Word2VecFormatError, match=reason):
        read_word2vec(path, binary=True)


def test_folders_and_missing_files_are_os_errors(tmp_path):
    with pytest.raises(IsADirectoryError):
        read_word2vec(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_word2vec(tmp_path / "missing.txt")


# ------------------------------------------------------------------ words the formats cannot carry

@pytest.mark.parametrize("word", ["", "two words", "line\nbreak", "\nleading", "lone\udc80"])
@pytest.mark.parametrize("binary", [False, True])
def test_words_the_format_cannot_carry_are_refused_by_name(tmp_path, word, binary):
    path = tmp_path / "out.txt"
    path.write_text("previous")
    with pytest.raises(ValueError, match="cannot|not valid Unicode"):
        save_word2vec(small_vectors(["ok", word]), path, binary=binary)
    assert path.read_text() == "previous" and os.listdir(tmp_path) == ["out.txt"]
    if "\udc80" not in word:
        packed = QuantizedKeyedVectors(np.zeros((2, 1), dtype=np.uint8), 1, 4, ["ok", word])
        with pytest.raises(ValueError, match="cannot"):
            packed.save_word2vec_format(path, binary=binary)
        packed.save(tmp_path / "any.gbits")  # the packed format carries every word
        assert QuantizedKeyedVectors.load(tmp_path / "any.gbits").index_to_key[1] == word


@pytest.mark.parametrize("binary", [False, True])
def test_every_word_the_writer_accepts_reads_back(tmp_path, binary):
    words = ["tab\there", "carriage\rreturn", "é", "\u2028sep", "\x00nul", "trailing\t", "#", "1"]
    check_words(words)
    path = tmp_path / "words.bin"
    save_word2vec(small_vectors(words), path, binary=binary)
    assert read_word2vec(path, binary=binary).index_to_key == words


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.text(max_size=5), min_size=1, max_size=5, unique=True), binary=st.booleans())
def test_save_refuses_or_round_trips(tmp_path, words, binary):
    path = tmp_path / "v.out"
    try:
        save_word2vec(small_vectors(words), path, binary=binary)
    except ValueError:
        return
    assert read_word2vec(path, binary=binary).index_to_key == words


# ------------------------------------------------------------------ word2vec import: fuzzing

HOSTILE_COUNTS = [0, 1, 2, 7, 2 ** 31, 3_000_000_000, 2 ** 63, 10 ** 30]
HOSTILE_DIMENSIONS = [0, 1, 3, 2 ** 24, 2 ** 24 + 1, 2 ** 31, 2 ** 64]
TOKENS = [b"0.3", b"-1e-3", b"nan", b"inf", b"1e999", b"x", b"", b"\xff", b"0x1", b"1_0", b"3.4e39"]


@st.composite
def text_files(draw):
    header = draw(st.sampled_from(HOSTILE_COUNTS)), draw(st.sampled_from(HOSTILE_DIMENSIONS))
    lines = [b"%d %d" % header]
    for _ in range(draw(st.integers(0, 4))):
        word = draw(st.binary(max_size=6))
        values = draw(st.lists(st.sampled_from(TOKENS), max_size=5))
        lines.append(word + b" " + b" ".join(values))
    return b"\n".join(lines) + draw(st.sampled_from([b"", b"\n", b"\r\n"])) + draw(st.binary(max_size=20))


@st.composite
def binary_files(draw):
    header = draw(st.sampled_from(HOSTILE_COUNTS)), draw(st.sampled_from(HOSTILE_DIMENSIONS))
    body = b"".join(draw(st.binary(max_size=6)) + b" " + draw(st.binary(max_size=24))
                    for _ in range(draw(st.integers(0, 3))))
    return b"%d %d\n" % header + body


def mutated_valid_file(binary):
    path_bytes = {}

    def mutate(data, flips, cut):
        data = bytearray(data)
        for flip in flips:
            data[flip % len(data)] ^= 1 << (flip % 8)
        return bytes(data[:cut % (len(data) + 1)])

    def make(flips, cut):
        if binary not in path_bytes:
            import tempfile
            with tempfile.TemporaryDirectory() as folder:
                path = os.path.join(folder, "v")
                small_vectors().save_word2vec_format(path, binary=binary)
                with open(path, "rb") as handle:
                    path_bytes[binary] = handle.read()
        return mutate(path_bytes[binary], flips, cut)

    return st.builds(make, st.lists(st.integers(0, 10 ** 6), max_size=4), st.integers(0, 10 ** 4))


def assert_reads_or_format_error(path, data, binary, compress=False):
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    try:
        vectors = read_word2vec(path, binary=binary)
    except Word2VecFormatError:
        return "refused"
    assert np.isfinite(vectors.vectors).all()
    assert len(vectors) == len(set(vectors.index_to_key))
    return "read"


@pytest.mark.parametrize("binary", [False, True])
def test_fuzz_word2vec_import_in_bounded_memory(tmp_path, binary):
    files = binary_files() | mutated_valid_file(True) if binary else text_files() | mutated_valid_file(False)

    @FUZZ
    @given(data=files | st.binary(max_size=200), compress=st.booleans())
    def fuzz(data, compress):
        assert_reads_or_format_error(tmp_path / "candidate", data, binary, compress)

    run_bounded(fuzz)


# ------------------------------------------------------------------ word pairs and analogies

@pytest.fixture(scope="module")
def packed():
    rng = np.random.default_rng(3)
    words = ["king", "queen", "man", "woman", "paris", "france"]
    return QuantizedKeyedVectors(packing.pack_codes(rng.integers(0, 2, (6, 16), dtype=np.uint8), 1), 1, 16, words)


@pytest.mark.parametrize("content", [
    "", "# only a comment\n", "king queen 5\n", "king\tqueen\n", "king\tqueen\tfive\n",
    "king\tqueen\tnan\n", "king\tqueen\t5\textra\n", "\tqueen\t5\n",
])
def test_a_pair_file_without_valid_pairs_is_an_error(tmp_path, packed, content):
    # It used to score "0/0 pairs" and succeed.
    path = tmp_path / "pairs.tsv"
    path.write_text(content)
    with pytest.raises(ValueError, match="holds no word pairs"):
        evaluate(packed, similarity=[path], verbose=False)


def test_malformed_lines_are_skipped_with_a_warning(tmp_path, packed, caplog):
    path = tmp_path / "pairs.tsv"
    path.write_text("king\tqueen\t9\nbad line\nman\twoman\t8\nparis\tfrance\t7\n")
    result = evaluate(packed, similarity=[path], verbose=False)["similarity"]["pairs.tsv"]
    assert result["pairs"] == 3 and "skipped 1 malformed lines" in caplog.text and "line 2" in caplog.text


@pytest.mark.parametrize("content,reason", [
    ("", "holds no analogy questions"),
    ("king queen man woman\n", "holds no analogy questions"),  # no section header
    (": s\nking queen man\n", "holds no analogy questions"),
    (": s\nking queen\xff man woman\n", None),
])
def test_a_bad_analogy_file_is_an_error(tmp_path, packed, content, reason):
    path = tmp_path / "questions.txt"
    if reason is None:
        path.write_bytes(content.encode("latin-1"))
        reason = ":2: not valid UTF-8"
    else:
        path.write_text(content)
    with pytest.raises(ValueError, match=reason):
        evaluate(packed, analogies=[path], verbose=False)


def test_fuzz_pair_and_analogy_readers_in_bounded_memory(tmp_path, packed):
    lines = st.lists(st.sampled_from(["king", "queen", "man", "woman", "x", "", ":", ": s", "#", "5", "nan",
                                      "1e999", "\t", "\xe9", " "]), max_size=6)

    @FUZZ
    @given(rows=st.lists(lines, max_size=6), separator=st.sampled_from(["\t", " "]),
           raw=st.binary(max_size=60), use_raw=st.booleans())
    def fuzz(rows, separator, raw, use_raw):
        path = tmp_path / "candidate.txt"
        path.write_bytes(raw if use_raw else "\n".join(separator.join(row) for row in rows).encode("utf-8"))
        for kind in ("similarity", "analogies"):
            try:
                result = evaluate(packed, verbose=False, **{kind: [path]})
            except ValueError:
                continue
            for row in result["similarity"].values():
                assert row["total"] >= 1 and 0 <= row["coverage"] <= 1
            for row in result["analogies"].values():
                assert row["questions_in_file"] >= 1

    run_bounded(fuzz)


# ------------------------------------------------------------------ TSV data sets

def test_tsv_reader_names_the_bad_line(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes(b"pos\tgood film\r\nneg\tbad film\n")
    assert read_tsv(path) == (["pos", "neg"], ["good film", "bad film"])
    path.write_bytes(b"pos\tgood\nneg\tbad \xff film\n")
    with pytest.raises(ValueError, match=r"train.tsv:2: not valid UTF-8"):
        read_tsv(path)
    path.write_bytes(b"pos\tgood\nno tab here\n")
    with pytest.raises(ValueError, match=r"train.tsv:2: expected"):
        read_tsv(path)
    path.write_bytes(b"\ttext without a label\n")
    with pytest.raises(ValueError, match=r"train.tsv:1: expected"):
        read_tsv(path)


def test_fuzz_tsv_reader_in_bounded_memory(tmp_path):
    @FUZZ
    @given(data=st.binary(max_size=120))
    def fuzz(data):
        path = tmp_path / "candidate.tsv"
        path.write_bytes(data)
        try:
            labels, texts = read_tsv(path)
        except ValueError:
            return
        assert len(labels) == len(texts) and all(label.strip() for label in labels)

    run_bounded(fuzz)


def test_parallel_corpus_reader_keeps_pairs_aligned_and_names_bad_lines(tmp_path):
    from keras_compress.nmt import read_parallel

    (tmp_path / "train.en").write_bytes(b"a cat\rsits\nthe dog\n")  # a stray \r does not split a sentence
    (tmp_path / "train.es").write_bytes("un gato se sienta\nel perro\n".encode("utf-8"))
    assert read_parallel(tmp_path, "train") == (["a cat\rsits", "the dog"], ["un gato se sienta", "el perro"])
    (tmp_path / "train.es").write_bytes(b"un gato\nel perro \xff\n")
    with pytest.raises(ValueError, match=r"train.es:2: not valid UTF-8"):
        read_parallel(tmp_path, "train")
