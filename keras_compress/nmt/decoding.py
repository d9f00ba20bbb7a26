"""Cached decoding of `keras_compress.nmt.transformer` models: the encoder runs once, the
decoder runs one token a step on keras-hub's self-attention key/value cache and a cross-attention
cache filled once (keras-hub `TransformerDecoder`'s cache interface, as its `BartSeq2SeqLM`
uses it). Greedy decoding is keras-hub's `GreedySampler`; beam search with the GNMT length
penalty (Wu et al. 2016, sec. 7; Prato 2019 ch. 5) is `keras_compress.nmt.search`.

`encode` and `decode_step` are the two functions `keras_compress.nmt.translator` exports to TFLite.
"""

import math

import keras
import keras_hub
import numpy as np
from keras import ops

from keras_compress import engine
from keras_compress.nmt import search
from keras_compress.nmt.constants import BOS_ID, CACHE_NAMES, EOS_ID, PAD_ID, UNK_ID
from keras_compress.nmt.transformer import transformer_layers

__all__ = ["transformer_decoder_parts", "encode", "decode_step", "top_candidates", "greedy_decode", "beam_search",
           "uncached_logits"]


# Masked attention scores and the logits of padding and BOS are set 20 below the row's smallest
# value (weight e^-20 or less of any other), not to -1e9 as Keras does: a -1e9 in a tensor that
# full-integer TFLite quantizes stretches its int8 range to 1e9 and erases every real value.
_MASK_MARGIN = 20.0
if (PAD_ID, UNK_ID, BOS_ID) != (0, 1, 2):  # `top_candidates` drops columns 0 and 2
    raise ImportError("keras_compress.nmt.decoding expects ids pad 0, unk 1, bos 2")


# keras-hub `TransformerDecoder` sublayers (private attributes) that `encode` and `decode_step`
# call one at a time to decode with a cache laid out for TFLite (no per-step transposes).
# Tested with keras-hub 0.32.
DECODER_SUBLAYERS = {
    "self_attention": "_self_attention_layer",
    "self_attention_norm": "_self_attention_layer_norm",
    "cross_attention": "_cross_attention_layer",
    "cross_attention_norm": "_cross_attention_layer_norm",
    "intermediate": "_feedforward_intermediate_dense",
    "output": "_feedforward_output_dense",
    "feedforward_norm": "_feedforward_layer_norm",
}


def transformer_decoder_parts(decoder):
    """The sublayers of a built keras-hub `TransformerDecoder` with cross-attention: a dict with
    the keys of `DECODER_SUBLAYERS`, the two attention layers replaced by dicts of their
    `query`, `key`, `value` and `output` projections (`engine.attention_projections`).
    Raises RuntimeError naming what this keras-hub moved."""
    missing = [f"TransformerDecoder.{attribute}" for attribute in DECODER_SUBLAYERS.values()
               if getattr(decoder, attribute, None) is None]
    if missing:
        raise RuntimeError(
            f"keras_compress.nmt.decoding was written for keras-hub 0.32; this keras-hub moved "
            f"{missing} of decoder {decoder.name!r}. Please report this.")
    parts = {key: getattr(decoder, attribute) for key, attribute in DECODER_SUBLAYERS.items()}
    for key in ("self_attention", "cross_attention"):
        parts[key] = engine.attention_projections(parts[key])
    return parts


def _below_minimum(values, keep):
    """`values` where `keep`, elsewhere 20 below the smallest value of the row."""
    floor = ops.min(values, axis=-1, keepdims=True) - ops.cast(_MASK_MARGIN, values.dtype)
    return ops.where(keep, values, floor)


def _suppress_special(logits):
    """Padding and BOS are never generated (as `search.log_softmax` does): their logits 20
    below the smallest of the others."""
    return _restore_special(_drop_special(logits))


def _restore_special(kept):
    """The full-vocabulary logits of `kept` (`_drop_special`'s columns, `(rows, vocab - 2)`),
    with padding and BOS 20 below the row's smallest kept logit."""
    floor = ops.min(kept, axis=-1, keepdims=True) - ops.cast(_MASK_MARGIN, kept.dtype)
    return ops.concatenate([floor, kept[:, : BOS_ID - UNK_ID], floor, kept[:, BOS_ID - UNK_ID :]],
                           axis=-1)


def encode(model, source, max_target_length, suppress=True, mask="margin"):
    """Encode `source`, fill the cross-attention caches and run the decoder on BOS (target
    position 0).

    Args:
        model: a model built by `keras_compress.nmt.transformer`.
        source: int `(batch, source_length)` token ids, padded with 0.
        max_target_length: length T of the self-attention cache, the most target positions.
        suppress: `decode_step`'s, for the first target token's logits.
        mask: `decode_step`'s, for the first step.

    Returns:
        `(logits, caches)`: the first target token's logits `(batch, vocab)` and the dict of
        caches `decode_step` takes (L layers, H heads, head size E, source length S; rows are
        (sentence, head) pairs, sentence-major):

        - `self_keys`: L arrays `(batch * H, T, E)`, and `self_values`: L arrays
          `(batch * H, E, T)`: the decoder's self-attention keys and values, filled at
          position 0;
        - `cross_keys` (L arrays `(batch * H, S, E)`) and `cross_values` (L arrays
          `(batch * H, E, S)`): the projected encoder output, computed once.

        Values are stored transposed so that both attention products are matrix products with
        the second operand transposed, which TFLite runs without copying the cache (keras-hub's
        `(batch, 2, T, H, E)` caches cost two transposes of every cache per layer and step,
        most of the time of a TFLite step); one array per layer, as slicing a stacked cache
        copies it. keras-hub's layers compute every projection.
    """
    parts = transformer_layers(model)
    source = ops.convert_to_tensor(source, "int32")
    source_mask = ops.not_equal(source, PAD_ID)
    states = parts["embedding"](source)
    for encoder in parts["encoders"]:
        states = encoder(states, padding_mask=source_mask, training=False)
    batch, source_length = ops.shape(source)[0], ops.shape(source)[1]
    heads, head_dim = parts["num_heads"], parts["head_dim"]
    cross_keys, cross_values = [], []
    for decoder in parts["decoders"]:
        attention = transformer_decoder_parts(decoder)["cross_attention"]
        keys = ops.transpose(attention["key"](states), (0, 2, 1, 3))  # (batch, H, S, E)
        values = ops.transpose(attention["value"](states), (0, 2, 3, 1))  # (batch, H, E, S)
        cross_keys.append(ops.reshape(keys, (batch * heads, source_length, head_dim)))
        cross_values.append(ops.reshape(values, (batch * heads, head_dim, source_length)))
    layers = len(parts["decoders"])
    caches = {
        "self_keys": [ops.zeros((batch * heads, max_target_length, head_dim), states.dtype)
                      for _ in range(layers)],
        "self_values": [ops.zeros((batch * heads, head_dim, max_target_length), states.dtype)
                        for _ in range(layers)],
        "cross_keys": cross_keys, "cross_values": cross_values}
    tokens = ops.full((batch, 1), BOS_ID, "int32")
    logits, self_keys, self_values = decode_step(model, tokens, 0, caches, source_mask,
                                                 suppress=suppress, mask=mask)
    return logits, {**caches, "self_keys": self_keys, "self_values": self_values}


def decode_step(model, tokens, index, caches, source_mask, rows=None, suppress=True,
                self_attention="matmul", mask="margin"):
    """Feed `tokens` `(rows, 1)` at target position `index` and return `(logits (rows, vocab),
    self_keys, self_values)`, the lists of self-attention caches updated at `index`.

    Args:
        model: as in `encode`.
        tokens: int `(rows, 1)`, the hypotheses' last tokens; rows are `beams` consecutive
            hypotheses of each source sentence (`beams = rows / sentences`).
        index: the target position of `tokens` (BOS is 0).
        caches: `encode`'s dict; the cross-attention caches stay at one row group per
            sentence, shared by its hypotheses.
        source_mask: `(sentences, source_length)`, true on real (non-padding) source tokens.
        rows: None, or int `(rows,)`: the self-attention cache rows (hypotheses) to continue,
            gathered before the step (beam search's reordering, done inside the graph).
        suppress: set the logits of padding and BOS 20 below the row's smallest (for greedy
            argmax); False when `top_candidates` follows, which drops those columns itself;
            "drop": return the logits without those columns, `(rows, vocab - 2)`, for
            `top_candidates(..., special_dropped=True)`.
        self_attention: how the query meets the self-attention cache: "matmul" (BATCH_MATMUL,
            integer in full-int8 TFLite) or "products" (elementwise MUL and SUM: XNNPack repacks
            a matmul operand that is not constant at every call, one small matrix per
            hypothesis and head, which cost more than the products at beam 4).
        mask: how hidden positions leave the attention softmaxes: "margin" (their scores set 20
            below the row's smallest, which integer activations can represent; see
            `_MASK_MARGIN`) or "additive" (Keras's -1e9 added to them, weight exactly 0: one
            ADD, which XNNPack runs, instead of a REDUCE_MIN, SUB and SELECT_V2, which it does
            not; for float activations only).
    """
    if self_attention not in ("matmul", "products"):
        raise ValueError(f"self_attention must be 'matmul' or 'products', got {self_attention!r}")
    if mask not in ("margin", "additive"):
        raise ValueError(f"mask must be 'margin' or 'additive', got {mask!r}")
    parts = transformer_layers(model)
    heads, head_dim = parts["num_heads"], parts["head_dim"]
    tokens = ops.convert_to_tensor(tokens, "int32")
    self_keys, self_values = caches["self_keys"], caches["self_values"]
    if rows is not None:
        rows = ops.convert_to_tensor(rows, "int32")
        head_rows = _head_rows(rows, heads, ops.shape(self_keys[0])[0])
        self_keys = [_take_rows(keys, head_rows) for keys in self_keys]
        self_values = [_take_rows(values, head_rows) for values in self_values]
    batch = ops.shape(tokens)[0]
    sentences, source_length = ops.shape(source_mask)[0], ops.shape(source_mask)[1]
    beams = batch // sentences
    hidden = parts["embedding"].embed_at(tokens, index, ops.shape(self_keys[0])[1])
    scale = 1.0 / math.sqrt(float(head_dim))
    visible = ops.arange(ops.shape(self_keys[0])[1]) <= index  # causal mask over the cache
    source_visible = ops.reshape(ops.cast(source_mask, "bool"), (sentences, 1, 1, source_length))
    if mask == "additive":  # once a step: the (T,) and (sentences, 1, 1, S) biases
        visible, source_visible = _mask_bias(visible), _mask_bias(source_visible)
    new_keys, new_values = [], []
    for layer, decoder in enumerate(parts["decoders"]):
        if decoder.normalize_first:
            raise ValueError(f"{decoder.name}: cached decoding supports post-LayerNorm decoders")
        part = transformer_decoder_parts(decoder)
        attention = part["self_attention"]
        query, key, value = _projections(
            [attention["query"], attention["key"], attention["value"]], hidden, scale)
        query = ops.reshape(query, (batch * heads, 1, head_dim))
        key = ops.reshape(key, (batch * heads, 1, head_dim))
        value = ops.reshape(value, (batch * heads, head_dim, 1))
        keys = ops.slice_update(self_keys[layer], (0, index, 0), key)
        values = ops.slice_update(self_values[layer], (0, 0, index), value)
        new_keys.append(keys)
        new_values.append(values)
        if self_attention == "matmul":
            weights = _masked_softmax(ops.einsum("bqd,bkd->bqk", query, keys), visible, mask)
            context = ops.einsum("bqk,bdk->bqd", weights, values)  # (batch * H, 1, E)
        else:
            scores = ops.sum(query * keys, axis=-1)  # (batch * H, T)
            weights = _masked_softmax(scores, visible, mask)
            weights = ops.reshape(weights, (batch * heads, 1, -1))  # not [:, None]: a slice
            context = ops.reshape(ops.sum(weights * values, axis=-1), (batch * heads, 1, head_dim))
        attended = attention["output"](ops.reshape(context, (batch, 1, heads, head_dim)))
        hidden = _layer_norm(part["self_attention_norm"], hidden + attended)

        attention = part["cross_attention"]
        (query,) = _projections([attention["query"]], hidden, scale)
        query = ops.reshape(query, (sentences, beams, heads, head_dim))
        query = ops.reshape(ops.transpose(query, (0, 2, 1, 3)),
                            (sentences * heads, beams, head_dim))
        scores = ops.einsum("bqd,bkd->bqk", query, caches["cross_keys"][layer])
        scores = ops.reshape(scores, (sentences, heads, beams, source_length))
        weights = ops.reshape(_masked_softmax(scores, source_visible, mask),
                              (sentences * heads, beams, source_length))
        context = ops.einsum("bqk,bdk->bqd", weights, caches["cross_values"][layer])
        context = ops.transpose(ops.reshape(context, (sentences, heads, beams, head_dim)),
                                (0, 2, 1, 3))
        attended = attention["output"](ops.reshape(context, (batch, 1, heads, head_dim)))
        hidden = _layer_norm(part["cross_attention_norm"], hidden + attended)

        feedforward = part["output"](part["intermediate"](hidden))
        hidden = _layer_norm(part["feedforward_norm"], hidden + feedforward)
    hidden = ops.reshape(hidden, (batch, -1))  # a RESHAPE, not a slice
    if suppress == "drop":
        return _kept_logits(parts["logits"], hidden), new_keys, new_values
    if suppress:  # with the kept columns' kernel: a file holds the logits kernel once
        return _restore_special(_kept_logits(parts["logits"], hidden)), new_keys, new_values
    return parts["logits"](hidden), new_keys, new_values


def _kept_logits(dense, hidden):
    """The logits of every id but padding and BOS, `(rows, vocab - 2)` in `top_candidates`'s
    column order (UNK, then ids 3...): for a float `Dense` without activation, one matrix product
    with those kernel columns (constants in TFLite: no slicing and concatenating of the logits
    at every step); else the whole logits, then those columns."""
    if (isinstance(dense, keras.layers.Dense) and dense.quantization_mode is None
            and dense.use_bias and dense.activation is keras.activations.linear):
        kernel, bias = ops.convert_to_tensor(dense.kernel), ops.convert_to_tensor(dense.bias)
        return ops.matmul(hidden, _drop_special(kernel)) + _drop_special(bias[None, :])
    return _drop_special(dense(hidden))


def _drop_special(logits):
    """The columns of `logits` but padding (0) and BOS (2)."""
    return ops.concatenate([logits[:, UNK_ID:BOS_ID], logits[:, BOS_ID + 1 :]], axis=-1)


def _projections(layers, hidden, scale):
    """`[layers[0](hidden) * scale] + [layer(hidden) for layer in layers[1:]]` for the attention
    projections `layers` of `hidden` `(rows, 1, d)`, as one matrix product (one FULLY_CONNECTED
    in TFLite, which quantizes its input once) with `scale` folded into the first kernel, when
    all are float `EinsumDense` layers "abc,cde->abde" with bias; else each layer on its own.
    Each result is `(rows, heads * head_dim)` in the layer's (head, head_dim) order."""
    rows = ops.shape(hidden)[0]
    fusable = all(isinstance(layer, keras.layers.EinsumDense) and layer.equation == "abc,cde->abde"
                  and layer.quantization_mode is None and layer.bias is not None
                  and len(layer.kernel.shape) == 3 for layer in layers)
    if not fusable:
        outputs = [layer(hidden) for layer in layers]
        outputs[0] = outputs[0] * scale
        return [ops.reshape(output, (rows, -1)) for output in outputs]
    dim = int(hidden.shape[-1])
    kernels = [ops.reshape(ops.convert_to_tensor(layer.kernel), (dim, -1)) for layer in layers]
    biases = [ops.reshape(ops.convert_to_tensor(layer.bias), (-1,)) for layer in layers]
    kernels[0], biases[0] = kernels[0] * scale, biases[0] * scale
    outputs = ops.matmul(ops.reshape(hidden, (rows, dim)), ops.concatenate(kernels, axis=-1))
    outputs = outputs + ops.concatenate(biases, axis=-1)
    if len(layers) == 1:
        return [outputs]
    return ops.split(outputs, len(layers), axis=-1)


def _layer_norm(layer, x):
    """`layer(x)` for a Keras `LayerNormalization` over the last axis: Keras's own arithmetic,
    `x * inv + (beta - mean * inv)` with `inv = rsqrt(variance + epsilon) * gamma`, with
    `beta - mean * inv` as one SUB where Keras has a NEG, a MUL and an ADD: the same values,
    10 operators instead of 11. Other layers (RMS scaling, another axis) are called."""
    axis = layer.axis if isinstance(layer.axis, int) else (
        layer.axis[0] if len(layer.axis) == 1 else None)
    if (type(layer) is not keras.layers.LayerNormalization or layer.rms_scaling
            or axis not in (-1, len(x.shape) - 1) or not layer.center or not layer.scale):
        return layer(x)
    mean, variance = ops.moments(x, axes=[-1], keepdims=True)  # Keras's own
    inv = ops.rsqrt(variance + layer.epsilon) * ops.convert_to_tensor(layer.gamma)
    return x * inv + (ops.convert_to_tensor(layer.beta) - mean * inv)


def _head_rows(rows, heads, cache_rows):
    """Cache rows (hypothesis, head), hypothesis-major, of hypotheses `rows`, in caches of
    `cache_rows` rows: with a static `cache_rows`, a GATHER from the constant table of them
    (2 operators a step instead of 5); else `rows * heads + head`."""
    if isinstance(cache_rows, int):
        table = np.arange(cache_rows, dtype="int32").reshape(cache_rows // heads, heads)
        return ops.reshape(_take_rows(ops.convert_to_tensor(table), rows), (-1,))
    return ops.reshape(ops.reshape(rows, (-1, 1)) * heads
                       + ops.arange(heads, dtype="int32")[None], (-1,))


def _take_rows(values, rows):
    """`ops.take(values, rows, axis=0)` for rows known to be in range: on TensorFlow a plain
    gather, without the three operators per cache that wrap negative indices."""
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        return tf.gather(values, rows)
    return ops.take(values, rows, axis=0)


def top_candidates(logits, count, special_dropped=False):
    """`keras_compress.nmt.search.top_candidates` inside the graph (float32): the `count` most
    probable next tokens of each row, `(log_probs (rows, count), ids (rows, count) int32)`,
    best first, ties to the lower id. A beam search step that returns these moves rows x count
    numbers out of the graph instead of rows x vocab."""
    # Padding (0) and BOS (2) are never candidates: their columns are dropped, an exact
    # exclusion as the NumPy side's -inf, and no where/min over the vocabulary (full-int8
    # TFLite gives a SELECT's input and output one scale, so a value 20 below the row's
    # minimum stretched the logits' int8 range by 20 and clipped the top logits).
    # (`special_dropped`: `logits` are `decode_step(..., suppress="drop")`'s, without them.)
    kept = logits if special_dropped else _drop_special(logits)
    # The most probable tokens are the largest logits; only their log-probabilities are
    # computed, x - max - log(sum(exp(row - max))): TFLite's LOG_SOFTMAX over the whole
    # vocabulary took a tenth of a beam search step.
    top, positions = ops.top_k(kept, count)
    # the row's largest logit, top[:, :1], as a REDUCE_MAX, which XNNPack runs with the ops
    # below before the TOPK_V2 it does not run (a slice of the top-k would come after it)
    best = ops.max(kept, axis=-1, keepdims=True)
    log_total = ops.log(ops.sum(ops.exp(kept - best), axis=-1, keepdims=True))
    values = (top - best) - log_total
    # kept column 0 is UNK (1); column j >= 1 is id j + 2: one constant lookup
    vocab = int(logits.shape[-1]) + (2 if special_dropped else 0)
    kept_ids = np.concatenate([[UNK_ID], np.arange(BOS_ID + 1, vocab)])
    return values, _take_rows(ops.convert_to_tensor(kept_ids.astype("int32")),
                              ops.cast(positions, "int32"))


def _masked_softmax(scores, visible, mask="margin"):
    """Softmax over the last axis where `visible` (Keras's `Softmax(mask=...)` inside
    `MultiHeadAttention`): "margin", up to e^-20 of weight on hidden positions (see
    `_MASK_MARGIN`); "additive", `visible` is `_mask_bias`'s and hidden positions get none."""
    if mask == "additive":
        return ops.softmax(scores + visible, axis=-1)
    return ops.softmax(_below_minimum(scores, visible), axis=-1)


def _mask_bias(visible):
    """0 where `visible`, Keras's -1e9 elsewhere (its `Softmax` masks so): float32."""
    return ops.where(visible, 0.0, -1e9)


def uncached_logits(model, source, target_prefix):
    """Next-token logits `(batch, vocab)` after `target_prefix` (BOS first) from a full
    teacher-forced forward pass, the reference that cached decoding must equal."""
    logits = model([ops.convert_to_tensor(source, "int32"),
                    ops.convert_to_tensor(target_prefix, "int32")], training=False)
    return _suppress_special(logits[:, -1])


_COMPILED = engine.ModelCache()  # emptied by the engine when a model changes


def _functions(model):
    """`encode` and `decode_step` for `model`, made once per model: on the TensorFlow backend
    `tf.function`s traced once for any batch and length; other backends run eagerly."""
    if model not in _COMPILED:
        transformer_layers(model)  # fail early on a foreign model

        def encode_function(source, length):
            return encode(model, source, length)

        def step_function(tokens, index, caches, source_mask, rows):
            return decode_step(model, tokens, index, caches, source_mask, rows)

        def beam_step_function(tokens, index, caches, source_mask, rows, count):
            logits, keys, values = decode_step(model, tokens, index, caches, source_mask, rows,
                                               suppress=False)
            return top_candidates(logits, count), keys, values

        if keras.config.backend() == "tensorflow":
            import tensorflow as tf

            layers = len(transformer_layers(model)["decoders"])
            cache = [tf.TensorSpec((None, None, None), tf.float32)] * layers
            encode_function = tf.function(encode_function, input_signature=[
                tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((), tf.int32)])
            step_spec = [tf.TensorSpec((None, 1), tf.int32), tf.TensorSpec((), tf.int32),
                         {name: cache for name in CACHE_NAMES},
                         tf.TensorSpec((None, None), tf.bool), tf.TensorSpec((None,), tf.int32)]
            step_function = tf.function(step_function, input_signature=step_spec)
            beam_step_function = tf.function(beam_step_function, input_signature=step_spec + [
                tf.TensorSpec((), tf.int32)])
        _COMPILED[model] = {"encode": encode_function, "step": step_function,
                            "beam_step": beam_step_function}
    return _COMPILED[model]


def _check_source(source, max_length):
    source = np.asarray(source)
    if source.ndim != 2 or not np.issubdtype(source.dtype, np.integer) or source.shape[1] < 1:
        raise ValueError(f"source must be a 2-D integer array (batch, length), got {source.shape}")
    if max_length is None:
        max_length = 2 * source.shape[1] + 10
    if not isinstance(max_length, (int, np.integer)) or max_length < 1:
        raise ValueError(f"max_length must be a positive int, got {max_length!r}")
    return source.astype("int32"), int(max_length)


def greedy_decode(model, source, max_length=None):
    """Translate a batch by picking the most probable next subword at every step, with
    keras-hub's `GreedySampler` over the decoder's key/value caches.

    Args:
        model: a model built by `keras_compress.nmt.transformer` (quantized, stripped or
            reloaded copies too).
        source: int array `(batch, source_length)`, padded with 0, each row ending with EOS (3).
        max_length: most subwords to generate (EOS included), default `2 * source_length + 10`.

    Returns:
        A list of `batch` lists of subword ids, without BOS and EOS.
    """
    source, max_length = _check_source(source, max_length)
    functions = _functions(model)
    _, caches = functions["encode"](source, np.int32(max_length + 1))
    source_mask = ops.not_equal(ops.convert_to_tensor(source), PAD_ID)
    batch = ops.shape(source)[0]
    rows = ops.arange(batch, dtype="int32")
    prompt = ops.pad(ops.full((batch, 1), BOS_ID, "int32"), [[0, 0], [0, max_length]])
    prompt_mask = ops.equal(ops.arange(max_length + 1), 0)[None, :] & ops.ones_like(prompt, "bool")

    def next_logits(prompt, cache, index):
        # The sampler asks for position `index`: feed the token before it. Position 0 (BOS)
        # is fed again, which rewrites the cache entry `encode` made with the same values.
        step_caches = {**caches, "self_keys": cache[0], "self_values": cache[1]}
        logits, keys, values = functions["step"](prompt[:, index - 1 : index],
                                                 ops.cast(index - 1, "int32"), step_caches,
                                                 source_mask, rows)
        return logits, None, (keys, values)

    # The sampler's loop runs eagerly around the compiled step: tracing the whole loop costs
    # more than it saves on one batch.
    tokens = keras_hub.samplers.GreedySampler()(
        next_logits, prompt, cache=(caches["self_keys"], caches["self_values"]), index=1,
        mask=prompt_mask, stop_token_ids=[EOS_ID])
    return search.strip_special(ops.convert_to_numpy(tokens)[:, 1:])


def beam_search(model, source, beam_size=4, length_penalty=0.6, max_length=None, stop="all"):
    """Translate a batch with beam search over the cached decoder; the finished hypothesis with
    the best log P(Y|X) / ((5 + |Y|) / 6)^length_penalty wins (GNMT, Wu et al. 2016, sec. 7).
    `beam_size=1` gives exactly `greedy_decode`'s tokens (tested).

    Args:
        model, source, max_length: as in `greedy_decode`.
        beam_size: hypotheses kept per sentence (4 in the thesis).
        length_penalty: alpha of the GNMT penalty (0.6 in the thesis); 0 ranks by raw score.
        stop: when a sentence's search ends, `keras_compress.nmt.search.beam_search`'s: "all"
            (every hypothesis ended, the default) or "best" (its best hypothesis ended:
            CTranslate2's rule, fewer steps).

    Returns:
        A list of `batch` lists of subword ids, without BOS and EOS.
    """
    source, max_length = _check_source(source, max_length)
    search.check_stop(stop)
    functions = _functions(model)
    logits, caches = functions["encode"](source, np.int32(max_length))
    caches = {name: [ops.convert_to_numpy(value) for value in values]
              for name, values in caches.items()}
    source_mask = source != PAD_ID

    def step(tokens, index, beams, state):
        caches, rows = state
        if rows is None:
            rows = np.arange(len(tokens), dtype="int32")
        (top_values, top_ids), keys, values = functions["beam_step"](
            tokens, np.int32(index), caches, source_mask, rows, np.int32(beams))
        caches = {**caches, "self_keys": [ops.convert_to_numpy(key) for key in keys],
                  "self_values": [ops.convert_to_numpy(value) for value in values]}
        candidates = (ops.convert_to_numpy(top_values), ops.convert_to_numpy(top_ids))
        return candidates, (caches, None)

    heads = transformer_layers(model)["num_heads"]
    return search.beam_search(ops.convert_to_numpy(logits), (caches, None), step,
                              search.cache_reorder(heads), beam_size, length_penalty, max_length,
                              stop)
