"""keras_compress: Keras 3 layers, callbacks and wrappers that compress NLP models while they train."""

from keras_compress import callbacks, schedules
from keras_compress.export import TFLiteExportError, export_tflite
from keras_compress.factorized_embedding import FactorizedEmbedding, compress_embeddings
from keras_compress import lstm_autoencoder, rae
from keras_compress.lstm_autoencoder import LSTMAutoencoder
from keras_compress.rae import RecursiveAutoencoder
from keras_compress import distillation, quantization
from keras_compress.distillation import Distiller
from keras_compress.quantization import quantize_model

__all__ = ["export_tflite", "TFLiteExportError", "FactorizedEmbedding", "compress_embeddings", "callbacks", "schedules",
           "quantization", "distillation", "quantize_model", "Distiller"]
__all__ += ["rae", "lstm_autoencoder", "RecursiveAutoencoder", "LSTMAutoencoder"]
