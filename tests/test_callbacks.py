"""EmbeddingCompression: compresses inside fit and training goes on with the smaller model."""

import math

import keras
import numpy as np
import pytest

from keras_compress import FactorizedEmbedding
from keras_compress.layers import rank_for_reduction
from keras_compress.training import CALR, EmbeddingCompression, rebuild_optimizer

VOCAB, DIM, LENGTH = 300, 16, 6


def data(count=64, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, VOCAB, size=(count, LENGTH)).astype("int32")
    tokens[:, 4:] = 0
    return tokens, tokens[:, 0] % 3


def classifier(optimizer):
    keras.utils.set_random_seed(0)
    tokens = keras.Input((LENGTH,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, DIM, mask_zero=True, name="words")(tokens)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dense(8, activation="relu")(x)
    model = keras.Model(tokens, keras.layers.Dense(3, activation="softmax")(x))
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("optimizer", ["adam", "adagrad"])
def test_training_continues_after_compression(optimizer):
    model = classifier(optimizer)
    x, y = data()
    callback = EmbeddingCompression(at_epoch=2, reduction=0.9, verbose=0)
    history = model.fit(x, y, batch_size=16, epochs=4, validation_data=data(32, 1), callbacks=[callback], verbose=0)

    rank = rank_for_reduction(VOCAB, DIM, 0.9)
    assert callback.params_before - callback.params_after == VOCAB * DIM - rank * (VOCAB + DIM)
    assert callback.params_after <= callback.params_before - 0.9 * VOCAB * DIM
    assert callback.compressed_at_step == 8  # two epochs of four batches
    assert int(model.optimizer.iterations.numpy()) == 16  # the counter went on
    layer = model.get_layer("words")
    assert isinstance(layer, FactorizedEmbedding) and layer.rank == rank
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert len(history.history[name]) == 4 and all(math.isfinite(v) for v in history.history[name])
    # Both factors were trained after compression (they are in the traced train step).
    before = [w.copy() for w in layer.get_weights()]
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    for new, old in zip(layer.get_weights(), before):
        assert not np.allclose(new, old)


def test_optimizer_state_is_kept_for_untouched_variables():
    model = classifier(keras.optimizers.Adam(CALR(1e-2, step_size=2, steps_per_epoch=4)))
    x, y = data()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    old = {v.name: v.numpy().copy() for v in model.optimizer.variables}
    from keras_compress import compress_embeddings

    compress_embeddings(model, reduction=0.5)
    rebuild_optimizer(model)
    new = {v.name: v.numpy() for v in model.optimizer.variables}
    assert int(new["iteration"]) == 4
    dense_moments = [name for name in new if "dense" in name and "momentum" in name]
    assert dense_moments
    for name in dense_moments:
        np.testing.assert_array_equal(new[name], old[name])
    embedding_moments = [name for name in new if "words" in name and "momentum" in name]
    assert embedding_moments and all(not new[name].any() for name in embedding_moments)
    assert isinstance(model.optimizer._learning_rate, CALR)


def test_bad_arguments():
    with pytest.raises(ValueError, match="at_epoch"):
        EmbeddingCompression(at_epoch=-1)
    with pytest.raises(ValueError, match="reduction"):
        EmbeddingCompression(at_epoch=1, reduction=1.0)


def test_layer_names_and_reductions_are_checked_before_the_first_epoch():
    model = classifier("adam")
    x, y = data()
    for callback, message in ((EmbeddingCompression(at_epoch=1, layers=["nope"]), "does not have"),
                              (EmbeddingCompression(at_epoch=1, reduction=0.999), "no embedding to factorize")):
        with pytest.raises(ValueError, match=message):
            model.fit(x, y, epochs=2, callbacks=[callback], verbose=0)
        assert int(model.optimizer.iterations.numpy()) == 0  # nothing was trained
    with pytest.raises(TypeError, match="reduction"):
        EmbeddingCompression(at_epoch=1, reduction="0.5")
