"""Stacked LSTM sentence autoencoder: the baseline of the recursive autoencoder.

Prato, Duchesneau, Chandar and Tapp, "Towards Lossless Encoding of Sentences"
(ACL 2019, section 4, Table 1): a 2-layer LSTM encoder and a 2-layer LSTM decoder of
the same capacity as the recursive autoencoder, trained on the same mean squared error
between input and output word vectors.
"""

import keras
import numpy as np
from keras import ops

from keras_compress.rae.recursive_autoencoder import SequenceAutoencoder, sequence_mask

__all__ = ["LSTMAutoencoder", "lstm_autoencoder_params", "matched_lstm_units"]


def lstm_autoencoder_params(word_dim, embedding_dim, units):
    """Number of weights of `LSTMAutoencoder(word_dim, embedding_dim, units)`."""

    def lstm(inputs):
        return 4 * units * (inputs + units + 1)

    return (
        lstm(word_dim)
        + lstm(units)
        + (units + 1) * embedding_dim
        + lstm(embedding_dim)
        + lstm(units)
        + (units + 1) * word_dim
    )


def matched_lstm_units(word_dim, embedding_dim, target_params):
    """LSTM width whose autoencoder has the parameter count closest to `target_params`."""
    if target_params < 1:
        raise ValueError(f"target_params must be positive, got {target_params}.")
    units = 1
    while lstm_autoencoder_params(word_dim, embedding_dim, units + 1) <= target_params:
        units += 1
    above = units + 1
    gap_below = target_params - lstm_autoencoder_params(word_dim, embedding_dim, units)
    gap_above = lstm_autoencoder_params(word_dim, embedding_dim, above) - target_params
    return units if gap_below <= gap_above else above


@keras.saving.register_keras_serializable(package="keras_compress")
class LSTMAutoencoder(SequenceAutoencoder):
    """2-layer LSTM encoder, 2-layer LSTM decoder, with a sentence embedding in between.

    The encoder reads the words (padding masked out); its last hidden state is
    projected to `embedding_dim`, the sentence embedding. The decoder reads that
    embedding at every position and a dense layer maps its states to word vectors.
    Inputs, loss and `encode` / `decode` are those of
    `keras_compress.rae.RecursiveAutoencoder`, so both train on the same data.

    Args:
        word_dim: size of the input word vectors.
        embedding_dim: size of the sentence embedding.
        units: width of the four LSTM layers; `matched_lstm_units` picks it so the
            parameter count matches another model's.
        max_length: longest sentence accepted.
        **kwargs: `keras.Model` arguments.

    Example:

    ```python
    from keras_compress.rae import LSTMAutoencoder, RecursiveAutoencoder, matched_lstm_units

    rae = RecursiveAutoencoder(50, 64, max_length=20)
    rae.build()
    lstm = LSTMAutoencoder(50, 64, units=matched_lstm_units(50, 64, rae.count_params()), max_length=20)
    ```
    """

    def __init__(self, word_dim, embedding_dim, units=128, max_length=32, **kwargs):
        super().__init__(word_dim, embedding_dim, max_length, **kwargs)
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units < 1:
            raise ValueError(f"`units` must be a positive integer, got {units!r}.")
        self.units = int(units)
        self.encoder_lstm_1 = keras.layers.LSTM(units, return_sequences=True, name="encoder_lstm_1")
        self.encoder_lstm_2 = keras.layers.LSTM(units, name="encoder_lstm_2")
        self.to_embedding = keras.layers.Dense(embedding_dim, name="to_embedding")
        self.decoder_lstm_1 = keras.layers.LSTM(units, return_sequences=True, name="decoder_lstm_1")
        self.decoder_lstm_2 = keras.layers.LSTM(units, return_sequences=True, name="decoder_lstm_2")
        self.to_words = keras.layers.Dense(word_dim, name="to_words")

    def build(self, input_shape=None):
        self.encoder_lstm_1.build((None, None, self.word_dim))
        self.encoder_lstm_2.build((None, None, self.units))
        self.to_embedding.build((None, self.units))
        self.decoder_lstm_1.build((None, None, self.embedding_dim))
        self.decoder_lstm_2.build((None, None, self.units))
        self.to_words.build((None, None, self.units))
        self.built = True

    def _encode(self, vectors, lengths):
        # The mask makes the LSTM carry its state over padding, so the last state is
        # the one after each row's own last word.
        mask = ops.cast(sequence_mask(lengths, ops.shape(vectors)[1], "int32"), "bool")
        states = self.encoder_lstm_1(vectors, mask=mask)
        return self.to_embedding(self.encoder_lstm_2(states, mask=mask))

    def _decode(self, z, lengths, width):
        repeated = ops.repeat(ops.expand_dims(z, 1), width, axis=1)
        words = self.to_words(self.decoder_lstm_2(self.decoder_lstm_1(repeated)))
        return words * ops.expand_dims(sequence_mask(lengths, width, words.dtype), -1)

    def get_config(self):
        return {**super().get_config(), "units": self.units}
