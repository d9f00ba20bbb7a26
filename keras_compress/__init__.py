"""keras_compress: Keras 3 layers, callbacks and wrappers that compress NLP models while they train."""

__version__ = "0.1.0"  # the same as gensim_bits.__version__ (one distribution, nlp-compress)

try:
    import keras as _keras
except ImportError as error:
    missing = (error.name or "").split(".")[0]
    if missing and missing != "keras":
        # Keras is installed; the backend it was told to use (KERAS_BACKEND or ~/.keras/keras.json) is not.
        raise ImportError(
            f"keras_compress: Keras is installed but cannot load its backend ({error}): "
            f"pip install {missing}, or set KERAS_BACKEND to an installed backend (jax, torch or tensorflow)"
        ) from error
    raise ImportError(
        "keras_compress needs Keras 3, which the base install of nlp-compress leaves out: "
        "pip install 'nlp-compress[keras]' plus a backend (jax, torch or tensorflow), "
        "or 'nlp-compress[tflite]' to also export TFLite files (brings TensorFlow)."
    ) from error
if int(_keras.__version__.split(".")[0]) < 3:
    raise ImportError(f"keras_compress needs Keras 3 (found keras {_keras.__version__}): "
                      "pip install 'nlp-compress[keras]'")

from keras_compress import callbacks, schedules
from keras_compress.export import TFLiteExportError, export_tflite
from keras_compress import engine
from keras_compress.factorized_embedding import FactorizedEmbedding, FactorizedReversibleEmbedding, compress_embeddings
from keras_compress import lstm_autoencoder, rae
from keras_compress.lstm_autoencoder import LSTMAutoencoder
from keras_compress.rae import RecursiveAutoencoder
from keras_compress import distillation, quantization
from keras_compress.distillation import Distiller
from keras_compress.quantization import quantize_model

__all__ = ["export_tflite", "TFLiteExportError", "FactorizedEmbedding", "FactorizedReversibleEmbedding",
           "compress_embeddings", "engine", "callbacks", "schedules",
           "quantization", "distillation", "quantize_model", "Distiller"]
__all__ += ["rae", "lstm_autoencoder", "RecursiveAutoencoder", "LSTMAutoencoder"]
