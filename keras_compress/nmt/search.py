"""Beam search with the GNMT length penalty ((5 + |Y|) / 6)^alpha (Wu et al. 2016, sec. 7), as
Prato 2019 (ch. 5) decodes (beam 4, alpha 0.6), over any cached decoder step, in NumPy only.

keras-hub's `BeamSampler` has no length penalty and keeps extending finished hypotheses, so this
small search is ours. It knows nothing of Keras or TFLite: `keras_compress.nmt.decoding` drives it
with Keras layers and `keras_compress.nmt.translator.Translator` with `ai_edge_litert` signature
runners, which is the code a phone app would port.
"""

import math

import numpy as np

from keras_compress.nmt.constants import BOS_ID, EOS_ID, PAD_ID

__all__ = ["log_softmax", "top_candidates", "beam_search", "strip_special", "cache_reorder"]



def log_softmax(logits):
    """float64 log-probabilities of next-token `logits` (rows), with padding and
    begin-of-sentence never emitted."""
    logits = np.array(logits, dtype="float64")
    logits[:, PAD_ID] = -np.inf
    logits[:, BOS_ID] = -np.inf
    top = logits.max(axis=-1, keepdims=True)
    return logits - (top + np.log(np.exp(logits - top).sum(axis=-1, keepdims=True)))


def top_candidates(logits, count):
    """The `count` most probable next tokens of each row of `logits` `(rows, vocab)`:
    `(log_probs (rows, count) float64, ids (rows, count) int32)`, best first, ties to the lower
    id, padding and BOS never. A decoder step may return this pair itself, computed inside its
    graph (`keras_compress.nmt.decoding.top_candidates`), instead of the whole logits."""
    log_probs = log_softmax(logits)
    ids = _top(log_probs, count)
    return np.take_along_axis(log_probs, ids, axis=1), ids.astype("int32")


# GNMT uses alpha in [0, 1]. ((5 + 512) / 6) ** 10 is 2e19, inside float32 (the in-graph search's
# precision); at alpha 20 it overflows and every hypothesis would score the same.
MAX_LENGTH_PENALTY = 10.0


def check_length_penalty(value):
    """The GNMT alpha as a float, or a one-line ValueError (not a number, NaN/inf, < 0 or > 10)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) \
            or not math.isfinite(value) or not 0 <= value <= MAX_LENGTH_PENALTY:
        raise ValueError(f"length_penalty must be a number from 0 to {MAX_LENGTH_PENALTY:g} "
                         f"(GNMT uses 0-1), got {value!r}")
    return float(value)


STOPS = ("all", "best")


def check_stop(value):
    """`value` if it is one of STOPS, else a one-line ValueError."""
    if not isinstance(value, str) or value not in STOPS:
        raise ValueError(f"stop must be one of {STOPS}, got {value!r}")
    return value


def beam_search(first_logits, state, step, reorder, beam_size=4, length_penalty=0.6,
                max_length=50, stop="all"):
    """Search for each of a batch of sentences the target maximizing
    log P(Y|X) / ((5 + |Y|) / 6)^length_penalty.

    Finished hypotheses keep their beam slot, extended by padding at no cost, so beam_size=1 is
    exactly greedy decoding.

    Args:
        first_logits: `(batch, vocab)` logits of the first target token (after BOS).
        state: the decoder state (caches) for the batch, any object `reorder` understands.
        step: `step(tokens (rows, 1) int32, index, beams, state) -> (next, state)`, feeding the
            token at target position `index` (BOS is position 0); `next` is either the logits
            `(rows, vocab)` or each row's `beams` best continuations as `top_candidates` gives
            them, `(log_probs (rows, k), ids (rows, k))` with k >= beams (which is cheaper:
            rows x k numbers instead of rows x vocab).
        reorder: `reorder(state, rows) -> state` picking rows (hypotheses) of the state.
        beam_size: hypotheses kept per sentence (4 in the thesis).
        length_penalty: alpha of the GNMT penalty (0.6 in the thesis); 0 ranks by raw score.
        max_length: most tokens generated per sentence, EOS included.
        stop: when a sentence's search ends: "all", once every hypothesis in its beam has
            ended (EOS) or reached `max_length` (keras-hub's `BeamSampler` and GNMT's rule);
            "best", as soon as its best hypothesis (the highest log-probability in the beam)
            has ended, the answer then being the best-normalized of its ended hypotheses
            (CTranslate2's stop at its default patience 1, which stops when its top beam
            ends; fewer steps, and possibly another answer where a longer hypothesis would
            have overtaken after length normalization).

    Returns:
        A list of `batch` lists of token ids, without BOS and EOS.
    """
    stop = check_stop(stop)
    if not isinstance(beam_size, (int, np.integer)) or beam_size < 1:
        raise ValueError(f"beam_size must be a positive int, got {beam_size!r}")
    length_penalty = check_length_penalty(length_penalty)
    if not isinstance(max_length, (int, np.integer)) or max_length < 1:
        raise ValueError(f"max_length must be a positive int, got {max_length!r}")
    batch, vocab = np.shape(first_logits)
    beams = int(min(beam_size, vocab - 2))  # padding and BOS are never candidates
    scores, words = top_candidates(first_logits, beams)
    words = words.reshape(-1)
    state = reorder(state, np.repeat(np.arange(batch), beams))
    tokens = np.zeros((batch * beams, max_length), "int32")
    tokens[:, 0] = words
    finished = words == EOS_ID
    lengths = np.ones(batch * beams, "int64")
    # candidate k of sentence s is the flat position s * beams^2 + k of the step's
    # (rows, beams) candidates, so one flat index gives its row, word and score
    flat_offsets = np.arange(batch)[:, None] * (beams * beams)
    for index in range(1, max_length):
        # stopped hypotheses (ended, or of a sentence whose best has ended under stop="best")
        # go on with padding at no cost: they keep their slot, score and length
        stopped = finished | _best_ended(finished, beams, stop)
        if stopped.all():
            break
        result, state = step(tokens[:, index - 1 : index], index, beams, state)
        values, ids = result if isinstance(result, tuple) else top_candidates(result, beams)
        values, ids = values[:, :beams], ids[:, :beams]
        if values.shape != (batch * beams, beams):
            raise ValueError(f"step gave candidates of shape {values.shape} for {batch * beams} "
                             f"hypotheses of which {beams} are kept")
        if stopped.any():
            values = np.array(values, "float64")
            ids = np.array(ids)
            values[stopped] = -np.inf
            values[stopped, 0] = 0.0
            ids[stopped, 0] = PAD_ID
        candidates = (scores.reshape(-1, 1) + values).reshape(batch, beams * beams)
        picked = (_top(candidates, beams) + flat_offsets).reshape(-1)
        scores = candidates.reshape(-1)[picked].reshape(batch, beams)
        rows = picked // beams
        words = ids.reshape(-1)[picked]
        was_stopped = stopped[rows]
        tokens = tokens[rows]
        tokens[:, index] = words
        lengths = np.where(was_stopped, lengths[rows], index + 1)
        finished = finished[rows] | (words == EOS_ID)
        state = reorder(state, rows)
    penalty = ((5.0 + lengths.reshape(batch, beams)) / 6.0) ** length_penalty
    normalized = scores / penalty
    if stop == "best":  # the ended hypotheses of a sentence that has any
        ended = finished.reshape(batch, beams)
        normalized = np.where(ended | ~ended.any(axis=1, keepdims=True), normalized, -np.inf)
    best = np.argmax(normalized, axis=1)
    return strip_special(tokens[np.arange(batch) * beams + best])


def _best_ended(finished, beams, stop):
    """Per hypothesis, whether stop="best" ends its sentence: the sentence's first hypothesis,
    the highest log-probability of its beam (the beam is kept best first), has ended."""
    if stop != "best":
        return np.zeros_like(finished)
    return np.repeat(finished.reshape(-1, beams)[:, 0], beams)


def _top(scores, count):
    """Column indices of the `count` largest scores of each row, best first, ties to the lower
    index; a partial sort (the rows are beams x vocabulary long)."""
    if count == 1:
        return np.argmax(scores, axis=1)[:, None]
    if scores.shape[1] <= 256:  # the beams x beams candidates of a step: one small sort
        return np.argsort(-scores, axis=1, kind="stable")[:, :count]
    part = np.argpartition(-scores, count - 1, axis=1)[:, :count]
    order = np.lexsort((part, -np.take_along_axis(scores, part, axis=1)), axis=-1)
    return np.take_along_axis(part, order, axis=1)


def cache_reorder(heads):
    """The `reorder` of a decoder whose state is `(caches, rows)`: a dict of caches with
    `self_keys` and `self_values`, lists of arrays `(hypotheses * heads, ...)` (as
    `keras_compress.nmt.decoding.encode` and the TFLite translator lay them out) and the hypotheses
    the next step continues, which the step gathers inside its graph (`rows` None: all, in
    order). Only the first reorder, from one row per sentence to `beams`, copies here, so that
    the step always sees `beams` rows per sentence."""

    def reorder(state, rows):
        caches, pending = state
        rows = np.asarray(rows, "int32")
        if pending is not None:
            rows = pending[rows]
        if len(rows) * heads == len(caches["self_keys"][0]):
            return caches, rows
        head_rows = (rows[:, None] * heads + np.arange(heads, dtype="int32")).reshape(-1)
        return {**caches, **{name: [np.take(cache, head_rows, axis=0) for cache in caches[name]]
                             for name in ("self_keys", "self_values")}}, None

    return reorder


def strip_special(rows):
    """Token lists cut before the first EOS, without padding or BOS."""
    result = []
    for row in rows:
        row = [int(token) for token in row]
        if EOS_ID in row:
            row = row[: row.index(EOS_ID)]
        result.append([token for token in row if token not in (PAD_ID, BOS_ID)])
    return result
