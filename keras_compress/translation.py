"""Data helpers for the neural machine translation experiments of Prato 2019 (M.Sc. thesis,
ch. 5): a parallel corpus, shared sentencepiece subwords (Kudo & Richardson 2018), teacher-forced
training arrays, perplexity, and BLEU from sacrebleu (Post 2018).
"""

import os

import numpy as np

from keras_compress.datasets import text_lines
from keras_compress.decoding import beam_search, greedy_decode
from keras_compress.models.transformer import BOS_ID, EOS_ID, PAD_ID

__all__ = [
    "read_parallel",
    "train_tokenizer",
    "load_tokenizer",
    "make_examples",
    "translate",
    "corpus_bleu",
    "perplexity",
]


def read_parallel(directory, split, source_language="en", target_language="es", limit=None):
    """Read `directory/split.{source_language,target_language}`, one line-aligned sentence a line.

    Returns:
        `(sources, targets)`, two lists of stripped strings (at most `limit` pairs).
    """
    paths = [os.path.join(directory, f"{split}.{lang}") for lang in (source_language, target_language)]
    for path in paths:
        if not os.path.exists(path):
            raise FileNotFoundError(f"parallel corpus file {path} does not exist")
    # Lines end at "\n" only: a stray "\r" inside a sentence would otherwise shift every later pair.
    sources, targets = ([line.strip() for _, line in text_lines(path)] for path in paths)
    if len(sources) != len(targets):
        raise ValueError(f"{paths[0]} has {len(sources)} lines but {paths[1]} has {len(targets)}")
    return sources[:limit], targets[:limit]


def train_tokenizer(texts, model_prefix, vocab_size=8000, model_type="unigram"):
    """Train a sentencepiece model on `texts` (e.g. both sides of the training split, for a
    shared vocabulary) and return the loaded `sentencepiece.SentencePieceProcessor`.

    The ids are the ones `keras_compress.models.transformer` expects: 0 padding, 1 unknown,
    2 begin-of-sentence, 3 end-of-sentence. The model is written to `model_prefix + ".model"`.
    """
    import sentencepiece

    texts = [text for text in texts if text.strip()]
    if not texts:
        raise ValueError("train_tokenizer needs at least one non-empty text")
    directory = os.path.dirname(os.path.abspath(model_prefix))
    os.makedirs(directory, exist_ok=True)
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_prefix=model_prefix, vocab_size=vocab_size,
        model_type=model_type, pad_id=PAD_ID, unk_id=1, bos_id=BOS_ID, eos_id=EOS_ID,
        character_coverage=1.0, num_threads=1, minloglevel=2,
    )
    return load_tokenizer(model_prefix + ".model")


def load_tokenizer(path):
    """Load a sentencepiece model file written by `train_tokenizer`."""
    import sentencepiece

    if not os.path.exists(path):
        raise FileNotFoundError(f"sentencepiece model {path} does not exist")
    return sentencepiece.SentencePieceProcessor(model_file=path)


def _pad(rows, length):
    array = np.full((len(rows), length), PAD_ID, "int32")
    for i, row in enumerate(rows):
        array[i, : len(row)] = row
    return array


def make_examples(tokenizer, sources, targets, max_length=30):
    """Teacher-forcing arrays for pairs whose both sides fit in `max_length` subwords (plus the
    added BOS/EOS).

    Returns:
        `((encoder_inputs, decoder_inputs), labels), kept` where encoder_inputs are the source
        subwords then EOS, decoder_inputs BOS then the target subwords, labels the target
        subwords then EOS (all int32, padded with 0 to `max_length + 1`), and `kept` the indices
        of the pairs used.
    """
    source_ids = tokenizer.encode(list(sources))
    target_ids = tokenizer.encode(list(targets))
    kept = [i for i, (s, t) in enumerate(zip(source_ids, target_ids))
            if 0 < len(s) <= max_length and 0 < len(t) <= max_length]
    width = max_length + 1
    encoder_inputs = _pad([source_ids[i] + [EOS_ID] for i in kept], width)
    decoder_inputs = _pad([[BOS_ID] + target_ids[i] for i in kept], width)
    labels = _pad([target_ids[i] + [EOS_ID] for i in kept], width)
    return ((encoder_inputs, decoder_inputs), labels), np.asarray(kept, "int64")


def translate(model, tokenizer, sentences, beam_size=4, length_penalty=0.6, max_length=None,
              batch_size=64):
    """Translate strings with `keras_compress.decoding.beam_search` (keras-hub's greedy sampler
    when beam_size is 1, which gives the same tokens) and return the decoded target strings."""
    encoded = [ids + [EOS_ID] for ids in tokenizer.encode(list(sentences))]
    results = []
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start : start + batch_size]
        source = _pad(chunk, max(len(row) for row in chunk))
        if beam_size == 1:
            ids = greedy_decode(model, source, max_length)
        else:
            ids = beam_search(model, source, beam_size, length_penalty, max_length)
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
