"""The ids and names that the Transformer, its Keras decoders, the exported TFLite translator and
its Keras-free runtime must agree on: sentencepiece's special token ids (as `nmt.data` trains the
tokenizer) and the four attention caches of a decoder layer. NumPy-free and Keras-free, so the
on-device runtime can import it."""

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
CACHE_NAMES = ("self_keys", "self_values", "cross_keys", "cross_values")
