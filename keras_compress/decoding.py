"""Cached decoding of `keras_compress.models.transformer` models: the encoder runs once, the
decoder runs one token a step on keras-hub's self-attention key/value cache and a cross-attention
cache filled once (keras-hub `TransformerDecoder`'s cache interface, as its `BartSeq2SeqLM`
uses it). Greedy decoding is keras-hub's `GreedySampler`; beam search with the GNMT length
penalty (Wu et al. 2016, sec. 7; Prato 2019 ch. 5) is `keras_compress.beam_search`.

`encode` and `decode_step` are the two functions `keras_compress.translator` exports to TFLite.
"""

import weakref

import keras
import keras_hub
import numpy as np
from keras import ops

from keras_compress import beam_search as search
from keras_compress.models.transformer import BOS_ID, EOS_ID, PAD_ID, transformer_layers

__all__ = ["encode", "decode_step", "greedy_decode", "beam_search", "uncached_logits"]


def _suppress_special(logits):
    """Padding and BOS are never generated (as `beam_search.log_softmax` does)."""
    vocab = ops.shape(logits)[-1]
    banned = ops.logical_or(ops.equal(ops.arange(vocab), PAD_ID),
                            ops.equal(ops.arange(vocab), BOS_ID))
    return ops.where(banned[None, :], ops.cast(-1e9, logits.dtype), logits)


def encode(model, source, max_target_length):
    """Encode `source` and run the decoder on BOS (target position 0), filling the caches.

    Args:
        model: a model built by `keras_compress.models.transformer`.
        source: int `(batch, source_length)` token ids, padded with 0.
        max_target_length: length of the self-attention cache, the most target positions.

    Returns:
        `(logits, self_cache, cross_cache)`: the first target token's logits `(batch, vocab)`,
        the stacked self-attention caches `(layers, batch, 2, max_target_length, d_model)` and
        cross-attention caches `(layers, batch, 2, source_length, d_model)` (projected keys and
        values of the encoder output; keras-hub's per-layer `(batch, 2, length, heads,
        head_dim)` caches with the heads merged, so that no tensor has more than 5 dimensions,
        the most TFLite's int8 kernels take).
    """
    parts = transformer_layers(model)
    source = ops.convert_to_tensor(source, "int32")
    source_mask = ops.not_equal(source, PAD_ID)
    states = parts["embedding"](source)
    for encoder in parts["encoders"]:
        states = encoder(states, padding_mask=source_mask, training=False)
    batch, source_length = ops.shape(source)[0], ops.shape(source)[1]
    heads, head_dim = parts["num_heads"], parts["head_dim"]
    dtype = states.dtype
    hidden = parts["embedding"](ops.full((batch, 1), BOS_ID, "int32"), start_index=0)
    self_caches, cross_caches = [], []
    for decoder in parts["decoders"]:
        hidden, self_cache, cross_cache = decoder(
            hidden, states, encoder_padding_mask=source_mask,
            self_attention_cache=ops.zeros((batch, 2, max_target_length, heads, head_dim), dtype),
            self_attention_cache_update_index=0,
            cross_attention_cache=ops.zeros((batch, 2, source_length, heads, head_dim), dtype),
            cross_attention_cache_update_index=0, training=False)
        self_caches.append(_merge_heads(self_cache))
        cross_caches.append(_merge_heads(cross_cache))
    logits = _suppress_special(parts["logits"](hidden[:, 0]))
    return logits, ops.stack(self_caches), ops.stack(cross_caches)


def _merge_heads(cache):
    shape = ops.shape(cache)
    return ops.reshape(cache, (shape[0], 2, shape[2], shape[3] * shape[4]))


def _split_heads(cache, heads):
    shape = ops.shape(cache)
    return ops.reshape(cache, (shape[0], 2, shape[2], heads, shape[3] // heads))


def decode_step(model, tokens, index, self_cache, cross_cache, source_mask):
    """Feed `tokens` `(batch, 1)` at target position `index` and return `(logits (batch, vocab),
    self_cache)` with the cache updated at `index`. `cross_cache` comes from `encode`;
    `source_mask` `(batch, source_length)` is true on real (non-padding) source tokens."""
    parts = transformer_layers(model)
    hidden = parts["embedding"](ops.convert_to_tensor(tokens, "int32"), start_index=index)
    batch, source_length = ops.shape(source_mask)[0], ops.shape(source_mask)[1]
    # TransformerDecoder wants an encoder sequence to know it cross-attends; with a filled
    # cross-attention cache and no update index it reads only the cache, never these values.
    unused_states = ops.zeros((batch, source_length, 1), hidden.dtype)
    new_caches = []
    for layer, decoder in enumerate(parts["decoders"]):
        hidden, cache, _ = decoder(
            hidden, unused_states, encoder_padding_mask=source_mask,
            self_attention_cache=_split_heads(self_cache[layer], parts["num_heads"]),
            self_attention_cache_update_index=index,
            cross_attention_cache=_split_heads(cross_cache[layer], parts["num_heads"]),
            cross_attention_cache_update_index=None, training=False)
        new_caches.append(_merge_heads(cache))
    return _suppress_special(parts["logits"](hidden[:, 0])), ops.stack(new_caches)


def uncached_logits(model, source, target_prefix):
    """Next-token logits `(batch, vocab)` after `target_prefix` (BOS first) from a full
    teacher-forced forward pass, the reference that cached decoding must equal."""
    logits = model([ops.convert_to_tensor(source, "int32"),
                    ops.convert_to_tensor(target_prefix, "int32")], training=False)
    return _suppress_special(logits[:, -1])


_COMPILED = weakref.WeakKeyDictionary()


def _functions(model):
    """`encode` and `decode_step` for `model`, made once per model: on the TensorFlow backend
    `tf.function`s traced once for any batch and length; other backends run eagerly."""
    if model not in _COMPILED:
        transformer_layers(model)  # fail early on a foreign model

        def encode_function(source, length):
            return encode(model, source, length)

        def step_function(*args):
            return decode_step(model, *args)

        if keras.config.backend() == "tensorflow":
            import tensorflow as tf

            cache = tf.TensorSpec((None, None, 2, None, None), tf.float32)
            encode_function = tf.function(encode_function, input_signature=[
                tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((), tf.int32)])
            step_function = tf.function(step_function, input_signature=[
                tf.TensorSpec((None, 1), tf.int32), tf.TensorSpec((), tf.int32), cache, cache,
                tf.TensorSpec((None, None), tf.bool)])
        _COMPILED[model] = {"encode": encode_function, "step": step_function}
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
    keras-hub's `GreedySampler` over the decoder's key/value cache.

    Args:
        model: a model built by `keras_compress.models.transformer` (quantized, stripped or
            reloaded copies too).
        source: int array `(batch, source_length)`, padded with 0, each row ending with EOS (3).
        max_length: most subwords to generate (EOS included), default `2 * source_length + 10`.

    Returns:
        A list of `batch` lists of subword ids, without BOS and EOS.
    """
    source, max_length = _check_source(source, max_length)
    functions = _functions(model)
    _, self_cache, cross_cache = functions["encode"](source, np.int32(max_length + 1))
    source_mask = ops.not_equal(ops.convert_to_tensor(source), PAD_ID)
    batch = ops.shape(source)[0]
    prompt = ops.pad(ops.full((batch, 1), BOS_ID, "int32"), [[0, 0], [0, max_length]])
    prompt_mask = ops.equal(ops.arange(max_length + 1), 0)[None, :] & ops.ones_like(prompt, "bool")

    def next_logits(prompt, cache, index):
        # The sampler asks for position `index`: feed the token before it. Position 0 (BOS)
        # is fed again, which rewrites the cache entry `encode` made with the same values.
        logits, cache = functions["step"](prompt[:, index - 1 : index],
                                          ops.cast(index - 1, "int32"), cache, cross_cache,
                                          source_mask)
        return logits, None, cache

    # The sampler's loop runs eagerly around the compiled step: tracing the whole loop costs
    # more than it saves on one batch.
    tokens = keras_hub.samplers.GreedySampler()(
        next_logits, prompt, cache=self_cache, index=1, mask=prompt_mask,
        stop_token_ids=[EOS_ID])
    return search.strip_special(ops.convert_to_numpy(tokens)[:, 1:])


def beam_search(model, source, beam_size=4, length_penalty=0.6, max_length=None):
    """Translate a batch with beam search over the cached decoder; the finished hypothesis with
    the best log P(Y|X) / ((5 + |Y|) / 6)^length_penalty wins (GNMT, Wu et al. 2016, sec. 7).
    `beam_size=1` gives exactly `greedy_decode`'s tokens (tested).

    Args:
        model, source, max_length: as in `greedy_decode`.
        beam_size: hypotheses kept per sentence (4 in the thesis).
        length_penalty: alpha of the GNMT penalty (0.6 in the thesis); 0 ranks by raw score.

    Returns:
        A list of `batch` lists of subword ids, without BOS and EOS.
    """
    source, max_length = _check_source(source, max_length)
    functions = _functions(model)
    logits, self_cache, cross_cache = functions["encode"](source, np.int32(max_length))
    source_mask = source != PAD_ID
    state = (ops.convert_to_numpy(self_cache), ops.convert_to_numpy(cross_cache), source_mask)

    def step(tokens, index, state):
        self_cache, cross_cache, source_mask = state
        logits, self_cache = functions["step"](tokens, np.int32(index), self_cache,
                                               cross_cache, source_mask)
        return ops.convert_to_numpy(logits), (ops.convert_to_numpy(self_cache), cross_cache,
                                              source_mask)

    def reorder(state, rows):
        self_cache, cross_cache, source_mask = state
        return self_cache[:, rows], cross_cache[:, rows], source_mask[rows]

    return search.beam_search(ops.convert_to_numpy(logits), state, step, reorder, beam_size,
                              length_penalty, max_length)
