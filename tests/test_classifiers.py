"""The classifier builders learn at their defaults (issue: at the paper's L2 of 0.005, dan()
predicted one class on Rotten Tomatoes; benchmarks/classifier_defaults.py measures the real data, lstm_classifier() included)."""
import inspect

import keras
import numpy as np
import pytest

from keras_compress.models import dan


def sentiment_like(rows, seed, vocab=100, length=12):
    """Token ids 1..vocab-1 with padding; the label says whether "positive" words (ids below
    vocab / 2) outnumber the others, so averaging the embeddings (DAN) can solve it."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, vocab, size=(rows, length)).astype("int32")
    lengths = rng.integers(length // 2, length + 1, size=rows)
    x[np.arange(length)[None, :] >= lengths[:, None]] = 0
    positive = ((x > 0) & (x < vocab // 2)).sum(axis=1)
    negative = (x >= vocab // 2).sum(axis=1)
    keep = positive != negative
    return x[keep], (positive > negative)[keep].astype("int32")


def train_and_score(model, epochs=3):
    keras.utils.set_random_seed(0)
    x, y = sentiment_like(512, seed=0)
    x_test, y_test = sentiment_like(256, seed=1)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
    return model.evaluate(x_test, y_test, verbose=0)[1]


def test_dan_learns_at_its_defaults():
    keras.utils.set_random_seed(0)
    assert train_and_score(dan(vocab_size=100, num_classes=2)) > 0.85


@pytest.mark.slow
def test_the_papers_l2_is_an_option_and_underfits_as_a_keras_l2():
    """0.005 is the paper's value; as a Keras L2 (a sum of squares) it swamps the data loss."""
    assert inspect.signature(dan).parameters["l2"].default < 0.005
    keras.utils.set_random_seed(0)
    assert train_and_score(dan(vocab_size=100, num_classes=2, l2=0.005)) < 0.7

