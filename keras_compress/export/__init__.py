"""Export to on-device runtimes: a checked TFLite flatbuffer (`tflite`)."""

from keras_compress.export.tflite import TFLiteExport, TFLiteExportError, export_tflite, run_tflite, stored_kernels

__all__ = ["TFLiteExport", "TFLiteExportError", "export_tflite", "run_tflite", "stored_kernels"]
