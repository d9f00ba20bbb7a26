"""The text classifiers of Acharya et al. (AAAI 2019), Section 4.1 (DAN and LSTM), and loaders of
their classification data sets."""

from keras_compress.models.classifiers import dan, lstm_classifier
from keras_compress.models.datasets import load_classification, pretrained_matrix, read_tsv, text_lines

__all__ = ["dan", "lstm_classifier", "load_classification", "pretrained_matrix", "read_tsv", "text_lines"]
