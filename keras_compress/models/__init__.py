"""Reference models of the papers this library implements."""

from keras_compress.models.classifiers import dan, lstm_classifier

__all__ = ["dan", "lstm_classifier"]
