"""Word counts survive .gbits -> word2vec -> .gbits (issue 27): the counts go in gensim's
vocabulary file (fvocab) beside the vectors, by the API and by `gensim-bits convert`; a
dropped or made-up count is said; a hostile counts file gets one line."""
import logging

import numpy as np
import pytest
from gensim.models import KeyedVectors

from gensim_bits import QuantizedKeyedVectors, Word2VecFormatError
from gensim_bits.cli import main
from gensim_bits.word2vec_format import counts_path, read_word2vec, save_word2vec

COUNTS = [987654, 55555, 4321, 77, 9]
WORDS = ["the", "king", "queen", "zebra", "überall"]


@pytest.fixture()
def packed():
    values = np.sign(np.random.default_rng(3).standard_normal((5, 16))).astype(np.float32) / 3
    keyed_vectors = KeyedVectors(16)
    keyed_vectors.add_vectors(WORDS, values)
    keyed_vectors.allocate_vecattrs(attrs=["count"], types=[np.int64])
    keyed_vectors.expandos["count"][:] = COUNTS
    return QuantizedKeyedVectors.from_keyed_vectors(keyed_vectors)


@pytest.mark.parametrize("name,binary", [("v.txt", False), ("v.bin", True), ("v.txt.gz", False)])
def test_api_round_trip_keeps_counts(packed, tmp_path, name, binary):
    path = tmp_path / name
    assert packed.save_word2vec_format(path, binary=binary) == counts_path(path)
    back = QuantizedKeyedVectors.load_word2vec_format(path, binary=binary)
    assert list(back.index_to_key) == WORDS and back.counts.tolist() == COUNTS
    np.testing.assert_array_equal(back.codes, packed.codes)
    # gensim reads the same file pair with its own fvocab argument
    by_gensim = KeyedVectors.load_word2vec_format(path, binary=binary, fvocab=counts_path(path))
    assert [by_gensim.get_vecattr(word, "count") for word in WORDS] == COUNTS


def test_counts_written_by_gensim_are_read_beside_the_vectors(packed, tmp_path):
    path = tmp_path / "gensim.txt"
    reference = packed.to_keyed_vectors()
    reference.save_word2vec_format(path, fvocab=counts_path(path))
    assert read_word2vec(path).expandos["count"].tolist() == COUNTS
    assert read_word2vec(path, limit=2).expandos["count"].tolist() == COUNTS[:2]  # extra lines are skipped
    assert read_word2vec(path, fvocab=None).expandos["count"].tolist() == [5, 4, 3, 2, 1]


def test_convert_round_trip_keeps_counts(packed, tmp_path, capsys):
    source, text, back = tmp_path / "v.gbits", tmp_path / "v.txt", tmp_path / "back.gbits"
    packed.save(source)
    assert main(["convert", str(source), str(text)]) == 0
    assert f"and its word counts to {text}.vocab" in capsys.readouterr().out
    assert main(["convert", str(text), str(back)]) == 0
    assert capsys.readouterr().err == ""
    assert QuantizedKeyedVectors.load(back).counts.tolist() == COUNTS


def test_convert_without_counts_says_so(packed, tmp_path, capsys):
    text, back, again = tmp_path / "v.txt", tmp_path / "back.gbits", tmp_path / "again.txt"
    packed.save_word2vec_format(text, fvocab=False)
    assert main(["convert", str(text), str(back)]) == 0
    err = capsys.readouterr().err
    assert "no word counts beside" in err and "made up" in err and len(err.strip().splitlines()) == 1
    assert QuantizedKeyedVectors.load(back).counts.tolist() == [5, 4, 3, 2, 1]
    # word2vec -> word2vec: made-up counts are not written as if they were real
    assert main(["convert", str(text), str(again)]) == 0
    assert "the output has none either" in capsys.readouterr().err
    assert not (tmp_path / "again.txt.vocab").exists()


def test_dropping_counts_is_logged_and_a_stale_counts_file_removed(packed, tmp_path, caplog):
    path = tmp_path / "v.txt"
    packed.save_word2vec_format(path)
    assert (tmp_path / "v.txt.vocab").exists()
    with caplog.at_level(logging.WARNING, logger="gensim_bits.word2vec_format"):
        assert save_word2vec(packed.to_keyed_vectors(), path, fvocab=None) is None
    assert "word counts dropped" in caplog.text
    assert not (tmp_path / "v.txt.vocab").exists()  # it would no longer match the vectors
    caplog.clear()
    made_up = read_word2vec(path)
    with caplog.at_level(logging.WARNING, logger="gensim_bits.word2vec_format"):
        assert save_word2vec(made_up, tmp_path / "w.txt") is None
    assert caplog.text == "" and not (tmp_path / "w.txt.vocab").exists()


@pytest.mark.parametrize("content,message", [
    (b"the 5\nking 4\n", "has no count for 3 of its 5 words, 'queen' the first"),
    (b"the five\n", "line 1: must be a word, a space and a count"),
    (b"the -5\n", "line 1: must be a word, a space and a count"),
    (b"9\n", "line 1: must be a word, a space and a count"),
    (b"the 99999999999999999999\n", "line 1: must be a word, a space and a count"),
    (b"the 9999999999999999999\n", "does not fit 64 bits"),
    (b"caf\xe9 5\n", "line 1: not valid utf8"),
    (b"x" * 70_000 + b" 5\n", "line 1: longer than"),
])
def test_hostile_counts_files_give_one_line(packed, tmp_path, capsys, content, message):
    path = tmp_path / "v.txt"
    packed.save_word2vec_format(path)
    (tmp_path / "v.txt.vocab").write_bytes(content)
    with pytest.raises(Word2VecFormatError, match="its counts file") as error:
        read_word2vec(path)
    assert message in str(error.value)
    assert main(["info", str(path)]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_named_counts_file_must_exist(packed, tmp_path):
    path = tmp_path / "v.txt"
    packed.save_word2vec_format(path, fvocab=False)
    with pytest.raises(FileNotFoundError):
        read_word2vec(path, fvocab=tmp_path / "nope.vocab")
