"""Sentence autoencoders of Prato, Duchesneau, Chandar and Tapp, "Towards Lossless Encoding of
Sentences" (ACL 2019): the recursive autoencoder, its stacked-LSTM baseline, and length-bucketed
batches of word vectors to train both."""

from keras_compress.rae.lstm_autoencoder import LSTMAutoencoder, lstm_autoencoder_params, matched_lstm_units
from keras_compress.rae.recursive_autoencoder import (
    RecursiveAutoencoder,
    SequenceAutoencoder,
    average_overlaps,
    nearest_words,
    reconstruction_accuracy,
    sequence_mask,
    step_bucket,
    step_features,
)
from keras_compress.rae.sentence_batches import SentenceBatches, read_sentences, sample_sentences

__all__ = [
    "RecursiveAutoencoder",
    "LSTMAutoencoder",
    "SequenceAutoencoder",
    "SentenceBatches",
    "read_sentences",
    "sample_sentences",
    "nearest_words",
    "reconstruction_accuracy",
    "average_overlaps",
    "sequence_mask",
    "step_bucket",
    "step_features",
    "lstm_autoencoder_params",
    "matched_lstm_units",
]
