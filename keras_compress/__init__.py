"""keras_compress: Keras 3 layers, callbacks and wrappers that compress NLP models while they train."""

from keras_compress.export import TFLiteExportError, export_tflite

__all__ = ["export_tflite", "TFLiteExportError"]
