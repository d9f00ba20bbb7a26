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

# The library's core. The applications (`keras_compress.nmt`, `keras_compress.rae`,
# `keras_compress.models`) import it; it never imports them.
from keras_compress import engine, export, layers, training
from keras_compress.export import TFLiteExportError, export_tflite, run_tflite
from keras_compress.factorization import compress_embeddings
from keras_compress.layers import FactorizedEmbedding, FactorizedReversibleEmbedding
from keras_compress.quantization import quantize_model, strip
from keras_compress.training import (
    CALR,
    CALRScheduler,
    CyclicLR,
    CyclicLRScheduler,
    Distiller,
    EmbeddingCompression,
)

__all__ = [
    "compress_embeddings",
    "quantize_model",
    "strip",
    "export_tflite",
    "run_tflite",
    "TFLiteExportError",
    "FactorizedEmbedding",
    "FactorizedReversibleEmbedding",
    "EmbeddingCompression",
    "CALR",
    "CyclicLR",
    "CALRScheduler",
    "CyclicLRScheduler",
    "Distiller",
    "engine",
    "export",
    "layers",
    "training",
]
