"""Encoder-decoder Transformer (Vaswani et al. 2017, sec. 3) in the base / medium / small sizes of
Prato 2019 (M.Sc. thesis, ch. 5, Table 5.1), with greedy decoding and beam search with the GNMT
length penalty ((5 + |Y|) / 6)^alpha (Wu et al. 2016, sec. 7).

The model is a Functional graph of stock Keras layers (Embedding, MultiHeadAttention, Dense,
LayerNormalization), so `keras_compress.quantization.quantize_model` can swap them for their
fake-quantized versions and `keras_compress.export.export_tflite` can convert it. Layer names are
fixed (`encoder_0_self_attention`, `decoder_1_ffn_2`, ...): decoding rebuilds an encoder model and
a decoder-step model from them, which also works on quantized, stripped or reloaded copies.
"""

import math
import warnings
import weakref

import keras
import numpy as np
from keras import ops

__all__ = [
    "PRESETS",
    "PositionalEncoding",
    "SourcePaddingMask",
    "SmoothedSparseCategoricalCrossentropy",
    "transformer",
    "greedy_decode",
    "beam_search",
]

# d_model, d_ff, heads of the thesis's variants; all have base's 6 layers.
PRESETS = {
    "base": {"d_model": 512, "d_ff": 2048, "num_heads": 8},
    "medium": {"d_model": 256, "d_ff": 1024, "num_heads": 4},
    "small": {"d_model": 128, "d_ff": 512, "num_heads": 4},
}
PAD_ID, BOS_ID, EOS_ID = 0, 2, 3


@keras.saving.register_keras_serializable(package="keras_compress")
class PositionalEncoding(keras.layers.Layer):
    """Scale token embeddings by sqrt(d_model) and add the sinusoidal position signal
    (Vaswani et al. 2017, sec. 3.4-3.5). No weights; the padding mask passes through.

    Input and output shape `(batch, length, d_model)`.

    Example:
    >>> tuple(PositionalEncoding()(np.zeros((1, 3, 4), "float32")).shape)
    (1, 3, 4)
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        length, depth = ops.shape(inputs)[1], inputs.shape[-1]
        positions = ops.cast(ops.arange(length), self.compute_dtype)[:, None]
        rates = np.power(10000.0, -2.0 * (np.arange(depth) // 2) / depth).astype("float32")
        angles = positions * ops.convert_to_tensor(rates, self.compute_dtype)[None, :]
        # Even channels carry sin, odd channels cos (sin shifted by pi/2).
        phase = ops.convert_to_tensor((np.arange(depth) % 2) * (np.pi / 2), self.compute_dtype)
        signal = ops.sin(angles + phase[None, :])
        return inputs * math.sqrt(depth) + signal[None, :, :]


@keras.saving.register_keras_serializable(package="keras_compress")
class SourcePaddingMask(keras.layers.Layer):
    """Return `states` with the padding mask of `token_ids` (id 0 is padding) attached, so the
    decoder's cross-attention ignores padded source positions also when the encoder states are
    fed from outside the graph (incremental decoding).

    Inputs: `[token_ids (batch, length), states (batch, length, d_model)]`; output: `states`.
    """

    def call(self, inputs):
        return inputs[1]

    def compute_mask(self, inputs, mask=None):
        return ops.not_equal(inputs[0], PAD_ID)


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


def _encode(layer, source_ids, num_layers):
    """The encoder stack; `layer(name)` returns the layer called `name`."""
    x = layer("source_dropout")(layer("positional_encoding")(layer("embedding")(source_ids)))
    for i in range(num_layers):
        attention = layer(f"encoder_{i}_self_attention")(x, x)
        x = layer(f"encoder_{i}_self_attention_norm")(x + layer(f"encoder_{i}_dropout_1")(attention))
        hidden = layer(f"encoder_{i}_ffn_2")(layer(f"encoder_{i}_ffn_1")(x))
        x = layer(f"encoder_{i}_ffn_norm")(x + layer(f"encoder_{i}_dropout_2")(hidden))
    return layer("source_padding_mask")([source_ids, x])


def _decode(layer, target_ids, encoder_states, num_layers):
    """The decoder stack up to (not including) the output projection."""
    x = layer("target_dropout")(layer("positional_encoding")(layer("embedding")(target_ids)))
    for i in range(num_layers):
        attention = layer(f"decoder_{i}_self_attention")(x, x, use_causal_mask=True)
        x = layer(f"decoder_{i}_self_attention_norm")(x + layer(f"decoder_{i}_dropout_1")(attention))
        attention = layer(f"decoder_{i}_cross_attention")(x, encoder_states)
        x = layer(f"decoder_{i}_cross_attention_norm")(x + layer(f"decoder_{i}_dropout_2")(attention))
        hidden = layer(f"decoder_{i}_ffn_2")(layer(f"decoder_{i}_ffn_1")(x))
        x = layer(f"decoder_{i}_ffn_norm")(x + layer(f"decoder_{i}_dropout_3")(hidden))
    return x


def transformer(vocab_size, preset="base", num_layers=6, d_model=None, d_ff=None,
                num_heads=None, scale=1.0, dropout=0.1, name=None):
    """Build an encoder-decoder Transformer (post-LayerNorm, as Vaswani et al. 2017).

    Source and target share one subword vocabulary and one embedding table (id 0 is padding,
    2 begin-of-sentence, 3 end-of-sentence: `keras_compress.translation.train_tokenizer`'s ids).

    Args:
        vocab_size: size of the shared subword vocabulary.
        preset: "base" (d_model 512, d_ff 2048, 8 heads), "medium" (256, 1024, 4) or
            "small" (128, 512, 4), the variants of Prato 2019 Table 5.1.
        num_layers: encoder and decoder layers (6 in the thesis for every preset).
        d_model, d_ff, num_heads: explicit sizes overriding the preset.
        scale: multiplies the preset's d_model and d_ff (not the heads), keeping the ratios
            between presets: `transformer(v, "small", num_layers=2, scale=0.25)` has
            d_model 32, d_ff 128, 4 heads, which trains on a laptop CPU.
        dropout: dropout rate after embeddings and every sublayer.
        name: model name, default `transformer_<preset>`.

    Returns:
        A Functional `keras.Model` with inputs `[encoder_inputs (batch, source_length) int32,
        decoder_inputs (batch, target_length) int32]` (the target shifted right, starting with
        2) and output logits `(batch, target_length, vocab_size)`. Train it with teacher forcing
        on `SmoothedSparseCategoricalCrossentropy(0.1)`; decode with `beam_search`.

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
    width, key_dim = sizes["d_model"], sizes["d_model"] // sizes["num_heads"]

    layers = {
        "embedding": keras.layers.Embedding(vocab_size, width, mask_zero=True, name="embedding"),
        "positional_encoding": PositionalEncoding(name="positional_encoding"),
        "source_dropout": keras.layers.Dropout(dropout, name="source_dropout"),
        "target_dropout": keras.layers.Dropout(dropout, name="target_dropout"),
        "source_padding_mask": SourcePaddingMask(name="source_padding_mask"),
        "logits": keras.layers.Dense(vocab_size, name="logits"),
    }

    def add_block(prefix, attentions, dropouts):
        for attention in attentions:
            layers[f"{prefix}_{attention}"] = keras.layers.MultiHeadAttention(
                sizes["num_heads"], key_dim, dropout=dropout, name=f"{prefix}_{attention}")
            layers[f"{prefix}_{attention}_norm"] = keras.layers.LayerNormalization(
                epsilon=1e-6, name=f"{prefix}_{attention}_norm")
        layers[f"{prefix}_ffn_1"] = keras.layers.Dense(sizes["d_ff"], activation="relu",
                                                       name=f"{prefix}_ffn_1")
        layers[f"{prefix}_ffn_2"] = keras.layers.Dense(width, name=f"{prefix}_ffn_2")
        layers[f"{prefix}_ffn_norm"] = keras.layers.LayerNormalization(epsilon=1e-6,
                                                                       name=f"{prefix}_ffn_norm")
        for index in range(1, dropouts + 1):
            layers[f"{prefix}_dropout_{index}"] = keras.layers.Dropout(
                dropout, name=f"{prefix}_dropout_{index}")

    for i in range(num_layers):
        add_block(f"encoder_{i}", ["self_attention"], 2)
        add_block(f"decoder_{i}", ["self_attention", "cross_attention"], 3)

    source = keras.Input((None,), dtype="int32", name="encoder_inputs")
    target = keras.Input((None,), dtype="int32", name="decoder_inputs")
    states = _encode(layers.__getitem__, source, num_layers)
    logits = layers["logits"](_decode(layers.__getitem__, target, states, num_layers))
    return keras.Model([source, target], logits, name=name or f"transformer_{preset}")


_STEP_MODELS = weakref.WeakKeyDictionary()


def _step_models(model):
    """(encoder, decoder) Functional models sharing `model`'s layers: the encoder maps source ids
    to states once; the decoder maps (source ids, states, target prefix) to the logits of the
    prefix's last position."""
    if model not in _STEP_MODELS:
        names = {layer.name for layer in model.layers}
        num_layers = sum(1 for n in names if n.startswith("decoder_") and n.endswith("_ffn_norm"))
        if "embedding" not in names or num_layers == 0:
            raise ValueError(
                f"model {model.name!r} was not built by keras_compress.models.transformer")
        source = keras.Input((None,), dtype="int32")
        encoder = keras.Model(source, _encode(model.get_layer, source, num_layers))
        states = keras.Input((None, model.get_layer("logits").kernel.shape[0]))
        target = keras.Input((None,), dtype="int32")
        masked_states = model.get_layer("source_padding_mask")([source, states])
        hidden = _decode(model.get_layer, target, masked_states, num_layers)
        decoder = keras.Model([source, states, target], model.get_layer("logits")(hidden[:, -1]))
        _STEP_MODELS[model] = (encoder, decoder)
    return _STEP_MODELS[model]


def _next_token_log_probs(model, decoder, source, states, prefix):
    with warnings.catch_warnings():
        # At the first step attention has a single key; Keras warns about softmax over size 1.
        warnings.filterwarnings("ignore", message="You are using a softmax over axis")
        return _log_probs(model, decoder, source, states, prefix)


def _log_probs(model, decoder, source, states, prefix):
    # predict_on_batch runs a compiled step (retraced only while prefix lengths are new shapes),
    # several times faster than calling the model eagerly once per generated subword.
    logits = np.asarray(decoder.predict_on_batch([source, states, prefix]), "float64")
    logits[:, PAD_ID] = -np.inf  # never emit padding or a second BOS
    logits[:, BOS_ID] = -np.inf
    return logits - _logsumexp(logits)


def _logsumexp(logits):
    top = logits.max(axis=-1, keepdims=True)
    return top + np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))


def _check_source(source, max_length):
    source = np.asarray(source)
    if source.ndim != 2 or not np.issubdtype(source.dtype, np.integer):
        raise ValueError(f"source must be a 2-D integer array (batch, length), got {source.shape}")
    if max_length is None:
        max_length = 2 * source.shape[1] + 10
    if not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"max_length must be a positive int, got {max_length!r}")
    return source.astype("int32"), max_length


def _strip_special(rows):
    """Token lists without BOS, cut before the first EOS."""
    result = []
    for row in rows:
        row = [int(token) for token in row[1:]]
        result.append(row[: row.index(EOS_ID)] if EOS_ID in row else [t for t in row if t != PAD_ID])
    return result


def greedy_decode(model, source, max_length=None):
    """Translate a batch by picking the most probable next subword at every step.

    Args:
        model: a model built by `transformer` (quantized, stripped or reloaded copies too).
        source: int array `(batch, source_length)`, padded with 0, each row ending with EOS (3).
        max_length: most subwords to generate, default `2 * source_length + 10`.

    Returns:
        A list of `batch` lists of subword ids, without BOS and EOS.
    """
    source, max_length = _check_source(source, max_length)
    encoder, decoder = _step_models(model)
    states = ops.convert_to_numpy(encoder(source, training=False))
    tokens = np.full((len(source), 1), BOS_ID, "int32")
    done = np.zeros(len(source), bool)
    for _ in range(max_length):
        best = _next_token_log_probs(model, decoder, source, states, tokens).argmax(-1)
        tokens = np.concatenate([tokens, np.where(done, PAD_ID, best)[:, None].astype("int32")], 1)
        done |= best == EOS_ID
        if done.all():
            break
    return _strip_special(tokens)


def beam_search(model, source, beam_size=4, length_penalty=0.6, max_length=None):
    """Translate a batch with beam search; the finished hypothesis with the best
    log P(Y|X) / ((5 + |Y|) / 6)^length_penalty wins (GNMT, Wu et al. 2016, sec. 7).

    Finished hypotheses keep their beam slot (extended by padding at no cost), so beam_size=1
    is exactly greedy decoding.

    Args:
        model, source, max_length: as in `greedy_decode`.
        beam_size: hypotheses kept per sentence (4 in the thesis).
        length_penalty: alpha of the GNMT penalty (0.6 in the thesis); 0 ranks by raw score.

    Returns:
        A list of `batch` lists of subword ids, without BOS and EOS.
    """
    source, max_length = _check_source(source, max_length)
    if not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"beam_size must be a positive int, got {beam_size!r}")
    if length_penalty < 0:
        raise ValueError(f"length_penalty must be >= 0, got {length_penalty}")
    encoder, decoder = _step_models(model)
    batch, beams = len(source), beam_size
    source = np.repeat(source, beams, axis=0)
    states = np.repeat(ops.convert_to_numpy(encoder(source[::beams], training=False)), beams, 0)
    tokens = np.full((batch * beams, 1), BOS_ID, "int32")
    scores = np.full((batch, beams), -np.inf)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first one
    finished = np.zeros(batch * beams, bool)
    lengths = np.zeros(batch * beams, "int64")
    for step in range(1, max_length + 1):
        log_probs = _next_token_log_probs(model, decoder, source, states, tokens)
        log_probs[finished] = -np.inf
        log_probs[finished, PAD_ID] = 0.0
        vocab = log_probs.shape[1]
        candidates = (scores.reshape(-1, 1) + log_probs).reshape(batch, beams * vocab)
        top = np.argsort(-candidates, axis=1, kind="stable")[:, :beams]
        scores = np.take_along_axis(candidates, top, axis=1)
        rows = (np.arange(batch)[:, None] * beams + top // vocab).reshape(-1)
        words = (top % vocab).reshape(-1).astype("int32")
        was_finished = finished[rows]
        tokens = np.concatenate([tokens[rows], words[:, None]], axis=1)
        lengths = np.where(was_finished, lengths[rows], step)
        finished = was_finished | (words == EOS_ID)
        if finished.all():
            break
    penalty = ((5.0 + lengths.reshape(batch, beams)) / 6.0) ** length_penalty
    best = np.argmax(scores / penalty, axis=1)
    return _strip_special(tokens[np.arange(batch) * beams + best])

