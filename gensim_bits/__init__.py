"""gensim_bits: Word2Bits quantized word vectors (Lam 2018) for gensim users.

Swap ``gensim.models.Word2Vec`` for :class:`gensim_bits.Word2Bits` and get 1- or 2-bit
word vectors, stored bit-packed and searched without unpacking.
"""
from gensim_bits.evaluation import evaluate
from gensim_bits.fileformat import QuantizedVectorsFormatError
from gensim_bits.keyedvectors import QuantizedKeyedVectors
from gensim_bits.quantizers import SUPPORTED_BITS, levels, quantize, quantize_codes
from gensim_bits.word2bits import Word2Bits
from gensim_bits.word2vec_format import Word2VecFormatError

__version__ = "0.1.0"

__all__ = [
    "SUPPORTED_BITS", "QuantizedKeyedVectors", "QuantizedVectorsFormatError", "Word2Bits", "Word2VecFormatError",
    "evaluate", "levels", "quantize", "quantize_codes",
]
