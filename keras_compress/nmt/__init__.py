"""Neural machine translation with compressed Transformers, after Prato 2019 (M.Sc. thesis, ch. 5):
the encoder-decoder on keras-hub layers, cached greedy and beam decoding, the on-device TFLite
translator and its Keras-free runtime, CTranslate2 conversion, and the data and evaluation
helpers. An application of the library: it imports `keras_compress`'s core, never the reverse.
"""

try:
    import keras_hub  # noqa: F401
except ImportError as error:
    raise ImportError("keras_compress.nmt is built on keras-hub layers, which are not installed: "
                      "pip install 'nlp-compress[mt]'") from error

from keras_compress.nmt.constants import BOS_ID, CACHE_NAMES, EOS_ID, PAD_ID, UNK_ID
from keras_compress.nmt.ctranslate2_export import export_ctranslate2
from keras_compress.nmt.data import load_tokenizer, make_examples, read_parallel, train_tokenizer
from keras_compress.nmt.decoding import beam_search, greedy_decode
from keras_compress.nmt.evaluation import corpus_bleu, perplexity, translate
from keras_compress.nmt.transformer import (
    PRESETS,
    SmoothedSparseCategoricalCrossentropy,
    transformer,
    transformer_layers,
)
from keras_compress.nmt.translator import Translator, TranslatorExport, export_translator

__all__ = [
    "transformer",
    "transformer_layers",
    "PRESETS",
    "SmoothedSparseCategoricalCrossentropy",
    "greedy_decode",
    "beam_search",
    "export_translator",
    "TranslatorExport",
    "Translator",
    "export_ctranslate2",
    "read_parallel",
    "train_tokenizer",
    "load_tokenizer",
    "make_examples",
    "translate",
    "corpus_bleu",
    "perplexity",
    "PAD_ID",
    "UNK_ID",
    "BOS_ID",
    "EOS_ID",
    "CACHE_NAMES",
]
