"""The compact vocabulary: lookups and duplicate detection survive hash collisions."""
import numpy as np
import pytest

from gensim_bits import vocabulary
from gensim_bits.vocabulary import Vocabulary


def test_collisions_are_resolved_by_the_bytes(monkeypatch):
    monkeypatch.setattr(vocabulary, "_hash", lambda data: 7)  # every word shares one hash
    words = ["a", "bb", "c", "dé"]
    vocab = Vocabulary.from_keys(words)
    assert [vocab.find(word) for word in words] == [0, 1, 2, 3]
    assert vocab.find("zz") == -1
    with pytest.raises(ValueError, match="duplicate word 'a'"):
        Vocabulary.from_keys(["a", "b", "a"])  # the duplicates are not neighbours in the run


def test_compact_arrays_and_keys_at():
    words = [f"w{index}" for index in range(40000)]  # more than one hashing chunk
    vocab = Vocabulary.from_keys(words)
    assert vocab.offsets.dtype == np.uint32 and vocab._order.dtype == np.int32
    assert vocab.nbytes == len(vocab.text) + 16 * len(words) + 4
    assert vocab.keys_at(np.array([39999, 0, 5])) == ["w39999", "w0", "w5"]
    assert all(vocab.find(words[row]) == row for row in range(0, len(words), 997))
    with pytest.raises(IndexError):
        vocab.keys_at([40000])
