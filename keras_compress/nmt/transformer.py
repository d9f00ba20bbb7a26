"""Encoder-decoder Transformer (Vaswani et al. 2017, sec. 3) in the base / medium / small sizes of
Prato 2019 (M.Sc. thesis, ch. 5, Table 5.1), built on keras-hub's `TransformerEncoder`,
`TransformerDecoder` (with its key/value cache) and `SinePositionEncoding`.

The model is a Functional graph with fixed layer names (`embedding`, `encoder_0`, `decoder_1`,
`logits`, ...): `keras_compress.nmt.decoding` runs cached greedy and beam search on them, and
`keras_compress.nmt.translator` exports them as an on-device translator. The builder holds no
decoding code.
"""

import math

import keras
import keras_hub
import numpy as np  # noqa: F401 (the docstring examples use it)
from keras import ops

from keras_compress.nmt.constants import PAD_ID

__all__ = [
    "PRESETS",
    "TokenAndSinePositionEmbedding",
    "PaddingMask",
    "SmoothedSparseCategoricalCrossentropy",
    "transformer",
    "transformer_layers",
]

# d_model, d_ff, heads of the thesis's variants; all have base's 6 layers.
PRESETS = {
    "base": {"d_model": 512, "d_ff": 2048, "num_heads": 8},
    "medium": {"d_model": 256, "d_ff": 1024, "num_heads": 4},
    "small": {"d_model": 128, "d_ff": 512, "num_heads": 4},
}
LAYER_NORM_EPSILON = 1e-6  # the thesis's (tensor2tensor) value; also CTranslate2's


@keras.saving.register_keras_serializable(package="keras_compress")
class TokenAndSinePositionEmbedding(keras.layers.Layer):
    """Token embedding scaled by sqrt(d_model) plus keras-hub's `SinePositionEncoding`
    (Vaswani et al. 2017, sec. 3.4-3.5). keras-hub's `TokenAndPositionEmbedding` learns its
    positions and does not scale; the thesis used fixed sinusoids.

    Args:
        vocabulary_size: number of token ids.
        embedding_dim: d_model.

    Call arguments: `token_ids` (batch, length) int; `start_index`, the position of the first
    token (cached decoding feeds one token at a time). Output `(batch, length, embedding_dim)`.
    No mask is attached: the model passes padding masks to the keras-hub layers explicitly.

    Example:
    >>> layer = TokenAndSinePositionEmbedding(10, 4)
    >>> tuple(layer(np.ones((1, 3), "int32")).shape)
    (1, 3, 4)
    """

    def __init__(self, vocabulary_size, embedding_dim, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = int(vocabulary_size)
        self.embedding_dim = int(embedding_dim)
        self.token_embedding = keras.layers.Embedding(
            self.vocabulary_size, self.embedding_dim, dtype=self.dtype_policy,
            name="token_embedding")
        self.position_encoding = keras_hub.layers.SinePositionEncoding(
            dtype=self.dtype_policy, name="position_encoding")

    def build(self, input_shape=None):
        self.token_embedding.build(input_shape)
        self.built = True

    def call(self, token_ids, start_index=0):
        embedded = self.token_embedding(token_ids) * math.sqrt(self.embedding_dim)
        return embedded + self.position_encoding(embedded, start_index=start_index)

    def embed_at(self, token_ids, index, max_length):
        """`self(token_ids, start_index=index)` for tokens at ONE position `index` (cached
        decoding), reading the sinusoid from a table of `max_length` positions: when
        `max_length` is static, the table is a constant that TFLite stores instead of computing
        sine and cosine at every decode step.

        Args:
            token_ids: int `(batch, 1)`.
            index: int scalar (tensor or Python), the position, `< max_length`.
            max_length: int, the number of positions of the table.
        """
        embedding = self.token_embedding
        if type(embedding) is keras.layers.Embedding and embedding.quantization_mode is None:
            from keras_compress.nmt.decoding import _take_rows

            # the ids are in range: a plain GATHER, without the three operators per step that
            # Keras's lookup adds to wrap negative ids
            embedded = _take_rows(ops.convert_to_tensor(embedding.embeddings), token_ids)
        else:
            embedded = embedding(token_ids)
        embedded = embedded * math.sqrt(self.embedding_dim)
        table = self.position_encoding(
            ops.zeros((1, max_length, self.embedding_dim), embedded.dtype))
        return embedded + ops.slice(table, (0, index, 0), (1, 1, self.embedding_dim))

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.embedding_dim)

    def get_config(self):
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim}


@keras.saving.register_keras_serializable(package="keras_compress")
class PaddingMask(keras.layers.Layer):
    """`token_ids != 0` (id 0 pads): the padding mask handed to keras-hub's layers.

    Example:
    >>> PaddingMask()(np.array([[5, 3, 0]])).tolist()
    [[True, True, False]]
    """

    def call(self, token_ids):
        return ops.not_equal(token_ids, PAD_ID)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="keras_compress")
class SmoothedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Cross-entropy from logits against integer labels smoothed as in Vaswani et al. 2017
    (sec. 5.4): the target is (1 - label_smoothing) on the label plus label_smoothing spread
    uniformly over the vocabulary. Keras's SparseCategoricalCrossentropy has no label_smoothing.

    Args:
        label_smoothing: float in [0, 1).
        ignore_class: label id that contributes no loss (padding), or None.

    Example:
    >>> loss = SmoothedSparseCategoricalCrossentropy(0.1)
    >>> float(loss(np.array([[1, 0]]), np.zeros((1, 2, 3), "float32"))) > 0
    True
    """

    def __init__(self, label_smoothing=0.1, ignore_class=PAD_ID, name="smoothed_crossentropy",
                 reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        self.ignore_class = ignore_class

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        log_probs = ops.log_softmax(y_pred, axis=-1)
        true_log_prob = ops.squeeze(
            ops.take_along_axis(log_probs, ops.expand_dims(y_true, -1), axis=-1), -1
        )
        loss = -(1.0 - self.label_smoothing) * true_log_prob - self.label_smoothing * ops.mean(
            log_probs, axis=-1
        )
        if self.ignore_class is not None:
            valid = ops.cast(ops.not_equal(y_true, self.ignore_class), loss.dtype)
            # Average over real tokens only: rescale so the batch mean counts them alone.
            loss = loss * valid * ops.cast(ops.size(valid), loss.dtype) / ops.maximum(
                ops.sum(valid), 1.0
            )
        return loss

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing,
                "ignore_class": self.ignore_class}


def _sizes(preset, d_model, d_ff, num_heads, scale):
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    sizes = dict(PRESETS[preset])
    sizes["d_model"] = d_model or max(1, round(sizes["d_model"] * scale))
    sizes["d_ff"] = d_ff or max(1, round(sizes["d_ff"] * scale))
    sizes["num_heads"] = num_heads or sizes["num_heads"]
    if sizes["d_model"] % sizes["num_heads"]:
        raise ValueError(
            f"d_model={sizes['d_model']} is not divisible by num_heads={sizes['num_heads']}"
        )
    return sizes


def transformer(vocab_size, preset="base", num_layers=6, d_model=None, d_ff=None,
                num_heads=None, scale=1.0, dropout=0.1, name=None, source_length=None,
                target_length=None):
    """Build an encoder-decoder Transformer (post-LayerNorm, as Vaswani et al. 2017) from
    keras-hub layers.

    Source and target share one subword vocabulary and one embedding table (id 0 is padding,
    2 begin-of-sentence, 3 end-of-sentence: `keras_compress.nmt.data.train_tokenizer`'s ids);
    the output projection `logits` is a separate Dense layer.

    Args:
        vocab_size: size of the shared subword vocabulary.
        preset: "base" (d_model 512, d_ff 2048, 8 heads), "medium" (256, 1024, 4) or
            "small" (128, 512, 4), the variants of Prato 2019 Table 5.1.
        num_layers: encoder and decoder layers (6 in the thesis for every preset).
        d_model, d_ff, num_heads: explicit sizes overriding the preset.
        scale: multiplies the preset's d_model and d_ff (not the heads), keeping the ratios
            between presets: `transformer(v, "small", num_layers=2, scale=0.25)` has
            d_model 32, d_ff 128, 4 heads, which trains on a laptop CPU.
        dropout: dropout rate after embeddings, inside attention and after every sublayer.
        name: model name, default `transformer_<preset>`.
        source_length, target_length: fixed input lengths, or None for any length. The
            TFLite converter mis-shapes keras-hub's attention when lengths are dynamic, so
            `keras_compress.export.export_tflite` of this (teacher-forcing) model needs them;
            `keras_compress.nmt.translator` fixes its own lengths and needs neither.

    Returns:
        A Functional `keras.Model` with inputs `[encoder_inputs (batch, source_length) int32,
        decoder_inputs (batch, target_length) int32]` (the target shifted right, starting with
        2) and output logits `(batch, target_length, vocab_size)`. Train it with teacher forcing
        on `SmoothedSparseCategoricalCrossentropy(0.1)`; decode with
        `keras_compress.nmt.decoding.beam_search`.

    Example:
    >>> model = transformer(100, "small", num_layers=1, scale=0.25)
    >>> tuple(model([np.ones((2, 5), "int32"), np.ones((2, 4), "int32")]).shape)
    (2, 4, 100)
    """
    if not isinstance(vocab_size, int) or vocab_size < 4:
        raise ValueError(f"vocab_size must be an int >= 4 (pad, unk, bos, eos), got {vocab_size!r}")
    if not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"num_layers must be a positive int, got {num_layers!r}")
    sizes = _sizes(preset, d_model, d_ff, num_heads, scale)
    width = sizes["d_model"]
    block = {"intermediate_dim": sizes["d_ff"], "num_heads": sizes["num_heads"],
             "dropout": dropout, "layer_norm_epsilon": LAYER_NORM_EPSILON}

    source = keras.Input((source_length,), dtype="int32", name="encoder_inputs")
    target = keras.Input((target_length,), dtype="int32", name="decoder_inputs")
    embedding = TokenAndSinePositionEmbedding(vocab_size, width, name="embedding")
    source_mask = PaddingMask(name="source_padding_mask")(source)
    x = keras.layers.Dropout(dropout, name="source_dropout")(embedding(source))
    for i in range(num_layers):
        x = keras_hub.layers.TransformerEncoder(**block, name=f"encoder_{i}")(
            x, padding_mask=source_mask)
    y = keras.layers.Dropout(dropout, name="target_dropout")(embedding(target))
    for i in range(num_layers):
        # Padded target positions come after the real ones, so the causal mask hides them.
        y = keras_hub.layers.TransformerDecoder(**block, name=f"decoder_{i}")(
            y, x, encoder_padding_mask=source_mask)
    logits = keras.layers.Dense(vocab_size, name="logits")(y)
    return keras.Model([source, target], logits, name=name or f"transformer_{preset}")


def transformer_layers(model):
    """The named parts of a model built by `transformer` (also quantized, stripped, reloaded or
    wrapped by `keras_compress.Distiller`): a dict with `embedding`, `encoders`, `decoders`,
    `logits`, `num_heads`, `head_dim` and `vocab_size`."""
    student = getattr(model, "student", None)
    if student is not None and not isinstance(model, keras.Sequential):
        model = student
    names = {layer.name: layer for layer in model.layers}
    encoders = [names[f"encoder_{i}"] for i in range(len(names)) if f"encoder_{i}" in names]
    decoders = [names[f"decoder_{i}"] for i in range(len(names)) if f"decoder_{i}" in names]
    if "embedding" not in names or "logits" not in names or not decoders:
        raise ValueError(
            f"model {model.name!r} was not built by keras_compress.nmt.transformer")
    embedding, logits = names["embedding"], names["logits"]
    num_heads = decoders[0].num_heads
    return {"embedding": embedding, "encoders": encoders, "decoders": decoders, "logits": logits,
            "num_heads": num_heads, "head_dim": embedding.embedding_dim // num_heads,
            "vocab_size": embedding.vocabulary_size}
