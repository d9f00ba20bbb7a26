"""keras_compress: Keras 3 layers, callbacks and wrappers that compress NLP models while they train."""

__all__ = []
