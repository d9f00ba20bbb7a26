"""Data for the neural machine translation experiments of Prato 2019 (M.Sc. thesis, ch. 5): a
parallel corpus, shared sentencepiece subwords (Kudo & Richardson 2018) and teacher-forced
training arrays.
"""

import os

import numpy as np

from keras_compress.models.datasets import text_lines
from keras_compress.nmt.constants import BOS_ID, EOS_ID, PAD_ID, UNK_ID

__all__ = [
    "read_parallel",
    "train_tokenizer",
    "load_tokenizer",
    "make_examples",
    "pad_ids",
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

    The ids are the ones `keras_compress.nmt.transformer` expects: 0 padding, 1 unknown,
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
        model_type=model_type, pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID,
        character_coverage=1.0, num_threads=1, minloglevel=2,
    )
    return load_tokenizer(model_prefix + ".model")


def load_tokenizer(path):
    """Load a sentencepiece model file written by `train_tokenizer`."""
    import sentencepiece

    if not os.path.exists(path):
        raise FileNotFoundError(f"sentencepiece model {path} does not exist")
    return sentencepiece.SentencePieceProcessor(model_file=path)


def pad_ids(rows, length):
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
    encoder_inputs = pad_ids([source_ids[i] + [EOS_ID] for i in kept], width)
    decoder_inputs = pad_ids([[BOS_ID] + target_ids[i] for i in kept], width)
    labels = pad_ids([target_ids[i] + [EOS_ID] for i in kept], width)
    return ((encoder_inputs, decoder_inputs), labels), np.asarray(kept, "int64")
