"""Beam search with the GNMT length penalty ((5 + |Y|) / 6)^alpha (Wu et al. 2016, sec. 7), as
Prato 2019 (ch. 5) decodes, written as ONE `ops.while_loop` over fixed-shape state (the pattern
of keras-hub's `BeamSampler`; two loops for large caches, below), so that the whole search runs
inside a graph: TFLite's builtin `WHILE` runs it, and a phone app calls one signature per
sentence.

It is `keras_compress.nmt.search.beam_search` step for step (the same candidates, the same
reordering, finished hypotheses extended by padding at no cost, ties to the lower index) over
`keras_compress.nmt.decoding`'s cached `encode` and `decode_step`, whose self-attention it runs
as elementwise products (`self_attention="products"`: XNNPack repacks the cache of every
hypothesis and head for a BATCH_MATMUL at every step, which cost more than the products).
With large caches the loop runs in two phases, over caches of the first half of the target
positions, then of all (`_phase_lengths`). The attention masks add Keras's -1e9 to hidden
positions (`mask="additive"`, as Keras's `Softmax` does), so that those positions, and the ones
a shorter phase leaves out, have weight exactly 0; files whose activations are quantized
afterwards keep the step signatures' margin mask (their hidden positions get e^-20 of weight,
and the phases leave that out: well below float32 rounding). The tests check the tokens against
the step search and Keras.
"""

import functools

from keras import ops

from keras_compress.nmt import decoding, search
from keras_compress.nmt.constants import EOS_ID, PAD_ID
from keras_compress.nmt.transformer import transformer_layers

__all__ = ["translate", "default_max_length", "search_length"]

# `translate` searches in two loops (`_phase_lengths`) when a layer's self-attention cache has at
# least this many target positions and float32 values: at beam 4 that paid on the scaled base
# model (4 x 8 heads x 42 x 16 = 21,504 values, 1.23x -> 1.17x CTranslate2) and cost on the small
# one and at beam 1 (5,376 values, 0.94x -> 0.97x and 0.66x -> 0.75x), where the second loop's
# fixed cost (TFLite allocates and releases a WHILE's subgraphs at every call) outweighs it.
PHASE_MIN_LENGTH = 8
PHASE_MIN_CACHE_VALUES = 16384


def default_max_length(source_lengths, max_target_length):
    """The most tokens (EOS included) generated for a source of `source_lengths` subwords (EOS
    included): `2 * length + 10`, at most the cache's T (the NumPy `Translator`'s default)."""
    return ops.minimum(2 * source_lengths + 10, max_target_length)


def search_length(source_length, max_target_length):
    """The target positions `translate` searches over for sources padded to `source_length`
    columns: no sentence that fits them generates more than `default_max_length` of it."""
    return int(min(2 * int(source_length) + 10, int(max_target_length)))


def translate(model, source, max_target_length, beam_size=4, length_penalty=0.6, stop="all",
              mask="additive"):
    """Translate a batch inside the graph.

    Args:
        model: a model built by `keras_compress.nmt.transformer`.
        source: int32 `(batch, S)` source ids, padded with 0, each row ending with EOS; the
            batch and S must be static for TFLite. An all-padding row (filling a batch) gives
            no tokens.
        max_target_length: T, the most target positions (BOS included); each sentence
            generates at most `default_max_length` tokens, so a short S searches over a shorter
            self-attention cache (`search_length`) and pads the tokens to T.
        beam_size: hypotheses kept per sentence (1 is greedy).
        length_penalty: alpha of the GNMT penalty (a Python float, fixed in the graph).
        stop: `keras_compress.nmt.search.beam_search`'s: "all" (every hypothesis ended) or
            "best" (the sentence's best hypothesis ended; CTranslate2's rule).
        mask: `decoding.decode_step`'s: "additive" (Keras's -1e9 on hidden positions, which
            XNNPack runs with the attention) for float activations, "margin" for activations
            that are quantized afterwards (a -1e9 would take their whole integer range).

    Returns:
        `(tokens, scores)`: int32 `(batch, T)`, each sentence's best hypothesis without EOS,
        padded with 0; float32 `(batch,)`, its log-probability divided by the length penalty.
    """
    stop = search.check_stop(stop)
    parts = transformer_layers(model)
    heads = parts["num_heads"]
    beams = int(min(beam_size, parts["vocab_size"] - 2))
    source = ops.convert_to_tensor(source, "int32")
    batch = int(source.shape[0])
    length = search_length(source.shape[1], max_target_length)
    rows_total = batch * beams
    source_mask = ops.not_equal(source, PAD_ID)
    source_lengths = ops.sum(ops.cast(source_mask, "int32"), axis=1)
    # an empty row (padding a batch) is stopped from the start and yields no tokens
    limits = ops.where(source_lengths > 0, default_max_length(source_lengths, length), 0)
    limits = ops.repeat(limits, beams)  # one per hypothesis

    # logits without the padding and BOS columns (`top_candidates` drops them): the file then
    # holds the logits kernel once, without those columns, and no step slices the logits
    logits, caches = decoding.encode(model, source, length, suppress="drop", mask=mask)
    scores, words = decoding.top_candidates(logits, beams, special_dropped=True)
    scores, words = ops.reshape(scores, (rows_total,)), ops.reshape(words, (rows_total,))
    # one cache row group per sentence -> one per hypothesis
    expand = ops.repeat(ops.arange(batch, dtype="int32"), beams)
    head_rows = decoding._head_rows(expand, heads, int(caches["self_keys"][0].shape[0]))
    # The first steps attend over caches of the first half of the positions, and a second loop
    # goes on with the whole caches: the loop copies, reorders and attends over the whole cache
    # at every step, and most sentences stop within the first half.
    phases = _phase_lengths(length, rows_total * heads * parts["head_dim"])
    self_keys = [decoding._take_rows(keys[:, : phases[0]], head_rows)
                 for keys in caches["self_keys"]]
    self_values = [decoding._take_rows(values[:, :, : phases[0]], head_rows)
                   for values in caches["self_values"]]
    positions = ops.arange(length, dtype="int32")[None, :]
    tokens = ops.where(ops.equal(positions, 0), words[:, None],
                       ops.zeros((rows_total, length), "int32"))
    lengths = ops.ones((rows_total,), "int32")
    finished = ops.equal(words, EOS_ID)
    rows = ops.arange(rows_total, dtype="int32")
    first_column = ops.equal(ops.arange(beams, dtype="int32"), 0)[None, :]
    sentence_offsets = (ops.arange(batch, dtype="int32") * beams)[:, None]
    candidate_offsets = sentence_offsets * beams
    finished_values = ops.where(first_column, 0.0, float("-inf"))

    def stopped(index, finished):
        done = ops.logical_or(finished, ops.greater_equal(index, limits))
        if stop == "best":  # the sentence's best hypothesis (first: the beam is best first)
            best = ops.reshape(finished, (batch, beams))[:, :1]
            done = ops.logical_or(done, ops.reshape(ops.tile(best, (1, beams)), (rows_total,)))
        return done

    def going(index, stopped_rows, bound):
        # a hypothesis is open and the phase's cache has a position left
        return ops.logical_and(ops.logical_not(ops.all(stopped_rows)), ops.less(index, bound))

    # The body computes whether the loop goes on, and the condition only returns it: TFLite
    # invokes the condition's subgraph at every step, and this one has no operators (the
    # bound replaces `while_loop`'s `maximum_iterations`, which adds a counter).
    def cond(index, go, *state):
        return go

    def body(bound, index, go, tokens, words, scores, lengths, stopped_rows, rows, self_keys,
             self_values):
        # `x[:, None]` is a RESHAPE and an identity STRIDED_SLICE in TFLite; reshape is one op
        done = ops.reshape(stopped_rows, (rows_total, 1))
        step_caches = {**caches, "self_keys": list(self_keys), "self_values": list(self_values)}
        logits, self_keys, self_values = decoding.decode_step(
            model, ops.reshape(words, (rows_total, 1)), index, step_caches, source_mask, rows,
            suppress="drop", self_attention="products", mask=mask)
        values, ids = decoding.top_candidates(logits, beams, special_dropped=True)
        # a finished hypothesis goes on with padding, at no cost, as its only candidate
        values = ops.where(done, finished_values, values)
        ids = ops.where(ops.logical_and(done, first_column), PAD_ID, ids)
        candidates = ops.reshape(ops.reshape(scores, (rows_total, 1)) + values,
                                 (batch, beams * beams))
        scores, picked = ops.top_k(candidates, beams)  # best first, ties to the lower index
        picked = ops.cast(picked, "int32")
        # candidate k of sentence s is the flat position s * beams^2 + k
        words = decoding._take_rows(ops.reshape(ids, (-1,)),
                                    ops.reshape(picked + candidate_offsets, (rows_total,)))
        rows = ops.reshape(picked // beams + sentence_offsets, (rows_total,))
        scores = ops.reshape(scores, (rows_total,))
        was_done = decoding._take_rows(stopped_rows, rows)
        tokens = ops.where(ops.equal(positions, index), ops.reshape(words, (rows_total, 1)),
                           decoding._take_rows(tokens, rows))
        lengths = ops.where(was_done, decoding._take_rows(lengths, rows), index + 1)
        index = index + 1
        stopped_rows = stopped(index, ops.logical_or(was_done, ops.equal(words, EOS_ID)))
        return (index, going(index, stopped_rows, bound), tokens, words, scores, lengths,
                stopped_rows, rows, tuple(self_keys), tuple(self_values))

    index = ops.convert_to_tensor(1, "int32")
    state = (index, None, tokens, words, scores, lengths, stopped(index, finished), rows,
             tuple(self_keys), tuple(self_values))
    for phase, cache_length in enumerate(phases):
        if phase:  # the hidden positions of a longer cache are zeros, as `encode` makes them
            grow = cache_length - phases[phase - 1]
            keys = tuple(ops.pad(keys, [[0, 0], [0, grow], [0, 0]]) for keys in state[8])
            values = tuple(ops.pad(values, [[0, 0], [0, 0], [0, grow]]) for values in state[9])
            state = (*state[:8], keys, values)
        # index runs from 1 up to cache_length - 1 over the phases
        state = (state[0], going(state[0], state[6], cache_length), *state[2:])
        state = ops.while_loop(cond, functools.partial(body, cache_length), state)
    tokens, scores, lengths = state[2], state[4], state[5]
    penalty = ops.power((5.0 + ops.cast(lengths, "float32")) / 6.0, float(length_penalty))
    normalized = ops.reshape(scores / penalty, (batch, beams))
    if stop == "best":  # the ended hypotheses of a sentence that has any
        ended = ops.reshape(ops.any(ops.equal(tokens, EOS_ID), axis=1), (batch, beams))
        normalized = ops.where(ops.logical_or(ended, ops.logical_not(
            ops.any(ended, axis=1, keepdims=True))), normalized, float("-inf"))
    # top_k, not argmax: Keras's argmax adds a bitwise -0.0 test that TFLite lacks
    best = ops.cast(ops.top_k(normalized, 1)[1][:, 0], "int32")
    best_rows = best + sentence_offsets[:, 0]
    tokens = decoding._take_rows(tokens, best_rows)
    ended = ops.cumsum(ops.cast(ops.equal(tokens, EOS_ID), "int32"), axis=1) > 0
    tokens = ops.where(ops.logical_or(ended, ops.equal(source_lengths, 0)[:, None]), 0, tokens)
    if length < max_target_length:
        tokens = ops.pad(tokens, [[0, 0], [0, int(max_target_length) - length]])
    return tokens, decoding._take_rows(ops.reshape(normalized, (rows_total,)), best_rows)


def _phase_lengths(length, values_per_position):
    """The cache lengths of the search's loops: half of `length`, then `length`; only `length`
    for a cache below PHASE_MIN_LENGTH positions or PHASE_MIN_CACHE_VALUES values. A third loop
    over a quarter of the positions was slower."""
    if length < PHASE_MIN_LENGTH or length * values_per_position < PHASE_MIN_CACHE_VALUES:
        return [length]
    return [(length + 1) // 2, length]
