"""keras_compress: Keras 3 layers, callbacks and wrappers that compress NLP models while they train."""

from keras_compress import callbacks, schedules
from keras_compress.export import TFLiteExportError, export_tflite
from keras_compress.factorized_embedding import FactorizedEmbedding, compress_embeddings

__all__ = ["export_tflite", "TFLiteExportError", "FactorizedEmbedding", "compress_embeddings", "callbacks", "schedules"]
