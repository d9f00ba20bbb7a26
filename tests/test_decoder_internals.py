"""keras_compress.nmt.decoding reaches private keras-hub TransformerDecoder sublayers (and, through
keras_compress.engine, MultiHeadAttention's projections) for cached decoding; this fails, naming
them, when keras-hub or Keras moves them."""
import numpy as np
import keras_hub

from keras_compress.nmt import decoding


def test_transformer_decoder_parts_are_where_decoding_expects():
    decoder = keras_hub.layers.TransformerDecoder(intermediate_dim=8, num_heads=2)
    decoder(np.zeros((1, 3, 4), "float32"), np.zeros((1, 5, 4), "float32"))
    parts = decoding.transformer_decoder_parts(decoder)
    assert set(parts) == set(decoding.DECODER_SUBLAYERS)
    for name in ("self_attention", "cross_attention"):
        assert set(parts[name]) == {"query", "key", "value", "output"}
        assert all(callable(layer) for layer in parts[name].values())
