"""Evaluation of the translation models of Prato 2019 (M.Sc. thesis, ch. 5): translating text with
the cached decoders, perplexity, and BLEU from sacrebleu (Post 2018).
"""

import numpy as np

from keras_compress.nmt.constants import EOS_ID, PAD_ID
from keras_compress.nmt.data import pad_ids
from keras_compress.nmt.decoding import beam_search, greedy_decode

__all__ = ["translate", "corpus_bleu", "perplexity"]


def translate(model, tokenizer, sentences, beam_size=4, length_penalty=0.6, max_length=None,
              batch_size=64, stop="all"):
    """Translate strings with `keras_compress.nmt.decoding.beam_search` (keras-hub's greedy sampler
    when beam_size is 1, which gives the same tokens) and return the decoded target strings.
    `stop`: the beam search's ("all" or "best", `keras_compress.nmt.search.beam_search`)."""
    encoded = [ids + [EOS_ID] for ids in tokenizer.encode(list(sentences))]
    results = []
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start : start + batch_size]
        source = pad_ids(chunk, max(len(row) for row in chunk))
        if beam_size == 1:
            ids = greedy_decode(model, source, max_length)
        else:
            ids = beam_search(model, source, beam_size, length_penalty, max_length, stop)
        results.extend(tokenizer.decode(ids))
    return results


def corpus_bleu(hypotheses, references):
    """Corpus BLEU of detokenized strings against one reference each (sacrebleu's default 13a
    tokenization). Returns the `sacrebleu` BLEU object; `.score` is the number usually quoted."""
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    return sacrebleu.corpus_bleu(list(hypotheses), [list(references)])


def perplexity(model, inputs, labels, batch_size=64):
    """exp of the mean negative log-likelihood per non-padding target subword (no smoothing)."""
    total, count = 0.0, 0
    for start in range(0, len(labels), batch_size):
        batch = [array[start : start + batch_size] for array in inputs]
        logits = np.asarray(model.predict_on_batch(batch), "float64")
        target = labels[start : start + batch_size]
        top = logits.max(-1, keepdims=True)
        log_norm = (top + np.log(np.exp(logits - top).sum(-1, keepdims=True)))[..., 0]
        log_probs = np.take_along_axis(logits, target[..., None], -1)[..., 0] - log_norm
        valid = target != PAD_ID
        total -= float(log_probs[valid].sum())
        count += int(valid.sum())
    return float(np.exp(total / max(count, 1)))
