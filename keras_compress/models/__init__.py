"""Reference models of the papers this library implements."""

from keras_compress.models.classifiers import dan, lstm_classifier

try:
    from keras_compress.models.transformer import transformer
except ModuleNotFoundError as missing:
    # The Transformer is built from keras-hub layers (the `mt` extra; keras-hub brings TensorFlow
    # through tensorflow-text). The classifiers need Keras alone, on any backend.
    if missing.name != "keras_hub":
        raise

    def transformer(*args, **kwargs):
        """Needs keras-hub: ``pip install 'nlp-compress[mt]'``."""
        raise ImportError("keras_compress.models.transformer is built on keras-hub, which is not installed: "
                          "pip install 'nlp-compress[mt]'")

__all__ = ["dan", "lstm_classifier", "transformer"]
