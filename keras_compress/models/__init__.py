"""Reference models of the papers this library implements."""

from keras_compress.models.classifiers import dan, lstm_classifier
from keras_compress.models.transformer import transformer

__all__ = ["dan", "lstm_classifier", "transformer"]
