"""The layers this library's compressions turn a model's layers into: low-rank embeddings
(`factorized_embedding`) and fake-quantized layers for quantization-aware training (`quantized`)."""

from keras_compress.layers.factorized_embedding import (
    FactorizedEmbedding,
    FactorizedReversibleEmbedding,
    rank_for_reduction,
    svd_factors,
)
from keras_compress.layers.quantized import (
    QuantizedDense,
    QuantizedEinsumDense,
    QuantizedEmbedding,
    QuantizedFactorizedEmbedding,
    QuantizedFactorizedReversibleEmbedding,
    QuantizedMultiHeadAttention,
    QuantizedReversibleEmbedding,
    fake_quantize,
    quantize_codes,
)

__all__ = [
    "FactorizedEmbedding",
    "FactorizedReversibleEmbedding",
    "rank_for_reduction",
    "svd_factors",
    "QuantizedDense",
    "QuantizedEinsumDense",
    "QuantizedEmbedding",
    "QuantizedReversibleEmbedding",
    "QuantizedFactorizedEmbedding",
    "QuantizedFactorizedReversibleEmbedding",
    "QuantizedMultiHeadAttention",
    "fake_quantize",
    "quantize_codes",
]
