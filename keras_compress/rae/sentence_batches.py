"""Stream sentences from a text corpus into length-bucketed batches of word vectors.

Training data for the sentence autoencoders of `keras_compress.rae` (Prato et al.
2019 train on BookCorpus sentences with fixed GloVe vectors). The corpus is read one
line at a time; sentences are kept as word indices in one flat `int32` array, and
word vectors are looked up batch by batch, so memory is a few bytes a word instead
of `width * word_dim` floats a sentence.
"""

import gzip
import warnings

import numpy as np

import keras

__all__ = ["SentenceBatches", "read_sentences", "sample_sentences"]


def _open_text(path):
    if str(path).endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


# The longest line read, in characters: a longer one cannot be a sentence of the kept
# lengths (unless padded with whitespace) and is skipped, read in bounded pieces, so a
# file with no newline (a gzip bomb of NULs) never sits in memory whole.
MAX_LINE_CHARS = 1 << 16
# The largest batch: a bucket with fewer sentences is topped up to `batch_size` rows.
MAX_BATCH_SIZE = 1 << 16
_SKIP_CHUNK = 1 << 16


def _lines(handle, max_line_chars):
    """Lines of a text handle, each at most `max_line_chars` long; longer ones are counted in `skipped`."""
    skipped = [0]

    def generate():
        while True:
            line = handle.readline(max_line_chars + 1)
            if not line:
                return
            if len(line) > max_line_chars:
                while line and not line.endswith("\n"):  # drop the rest of the line, a chunk at a time
                    line = handle.readline(_SKIP_CHUNK)
                skipped[0] += 1
                continue
            yield line

    return generate(), skipped


def _known_sentences(path, vocabulary, min_length, max_length, max_line_chars=MAX_LINE_CHARS):
    """Yield each line's tokens when it has min..max tokens and every token is in `vocabulary`."""
    for name, value in (("min_length", min_length), ("max_length", max_length), ("max_line_chars", max_line_chars)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise ValueError(f"{name} must be an integer, got {value!r}.")
    if min_length < 1 or max_length < min_length:
        raise ValueError(f"Need 1 <= min_length <= max_length, got {min_length} and {max_length}.")
    if max_line_chars < 1:
        raise ValueError(f"max_line_chars must be positive, got {max_line_chars}.")
    with _open_text(path) as handle:
        lines, skipped = _lines(handle, max_line_chars)
        for line in lines:
            tokens = line.split()
            if min_length <= len(tokens) <= max_length and all(token in vocabulary for token in tokens):
                yield tokens
    if skipped[0]:
        warnings.warn(f"{path}: skipped {skipped[0]} lines longer than {max_line_chars} characters "
                      "(max_line_chars)", stacklevel=3)


def read_sentences(path, vocabulary, min_length=2, max_length=30, limit=None, deduplicate=True,
                   max_line_chars=MAX_LINE_CHARS):
    """Read sentences (one a line, space-tokenized, optionally gzipped) as lists of words.

    Keeps lines of `min_length` to `max_length` tokens whose every token is a key of
    `vocabulary` (a dict or gensim's `key_to_index`), in file order, stopping after
    `limit` sentences. The file is streamed, never held whole: a line longer than
    `max_line_chars` characters is skipped (read in bounded pieces) with a warning
    giving the count, so memory stays bounded on a file without newlines.
    """
    kept, seen = [], set()
    for tokens in _known_sentences(path, vocabulary, min_length, max_length, max_line_chars):
        if deduplicate:
            key = " ".join(tokens)
            if key in seen:
                continue
            seen.add(key)
        kept.append(tokens)
        if limit is not None and len(kept) >= limit:
            break
    return kept


def sample_sentences(path, count, vocabulary, min_length=2, max_length=30, seed=0, max_line_chars=MAX_LINE_CHARS):
    """`count` sentences drawn uniformly from the whole file in one streamed pass.

    Reservoir sampling (Vitter's algorithm R): memory holds `count` sentences, not
    the file. Same filters (and line cap) as `read_sentences`; duplicates of a line may
    both be drawn.
    """
    if count < 1:
        raise ValueError(f"count must be positive, got {count}.")
    rng = np.random.default_rng(seed)
    reservoir = []
    for seen, tokens in enumerate(_known_sentences(path, vocabulary, min_length, max_length, max_line_chars)):
        if seen < count:
            reservoir.append(tokens)
        else:
            slot = rng.integers(seen + 1)
            if slot < count:
                reservoir[slot] = tokens
    return reservoir


class SentenceBatches(keras.utils.PyDataset):
    """Batches `((vectors, lengths), vectors)` of sentences of similar length.

    Sentences are sorted into buckets of widths `bucket_width, 2 * bucket_width, ...`
    (capped at the longest sentence); every batch comes from one bucket, is padded to that
    bucket's width, and holds exactly `batch_size` rows (a bucket's last, short batch
    is topped up with sentences drawn again from the same bucket), so a compiled
    training step sees one shape a bucket. Batch order is shuffled every epoch.

    Args:
        sentences: list of token lists (every token a key of `keyed_vectors`).
        keyed_vectors: gensim `KeyedVectors` (or anything with `key_to_index` and
            `vectors`) giving the word vectors.
        batch_size: rows a batch, at most `MAX_BATCH_SIZE` (65,536).
        bucket_width: width step of the buckets; `bucket_width=1` pads nothing.
        shuffle: reshuffle sentences and batches after each epoch.
        seed: seed of the shuffling.
        **kwargs: `keras.utils.PyDataset` arguments (`workers`, ...).

    Example:

    ```python
    import numpy as np
    from gensim.models import KeyedVectors
    from keras_compress.rae import SentenceBatches

    words = KeyedVectors(4)
    words.add_vectors(["a", "b", "c"], np.eye(3, 4, dtype="float32"))
    batches = SentenceBatches([["a", "b"], ["c"], ["a", "b", "c"]], words, batch_size=2, bucket_width=2)
    (vectors, lengths), target = batches[0]     # vectors: (2, width, 4)
    ```
    """

    def __init__(self, sentences, keyed_vectors, batch_size=64, bucket_width=5, shuffle=True, seed=0, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("batch_size", batch_size), ("bucket_width", bucket_width)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if batch_size > MAX_BATCH_SIZE:  # a short bucket is topped up to batch_size rows: memory follows it
            raise ValueError(f"batch_size must be at most {MAX_BATCH_SIZE}, got {batch_size}.")
        if isinstance(sentences, (str, bytes)):
            raise ValueError("sentences must be a list of token lists, got a string (split it into sentences of words).")
        if not sentences:
            raise ValueError("No sentences to batch.")
        bad = next((row for row, tokens in enumerate(sentences) if isinstance(tokens, (str, bytes))), None)
        if bad is not None:
            raise ValueError(f"Sentence {bad} is a string, not a list of tokens: {sentences[bad][:40]!r}.")
        index = keyed_vectors.key_to_index
        missing = next((token for tokens in sentences for token in tokens if token not in index), None)
        if missing is not None:
            raise KeyError(f"Word {missing!r} has no vector.")
        if any(not tokens for tokens in sentences):
            raise ValueError("Empty sentence.")
        self.vectors = np.asarray(keyed_vectors.vectors, dtype="float32")
        self.lengths = np.array([len(tokens) for tokens in sentences], dtype="int32")
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype("int64")
        self.ids = np.fromiter((index[token] for tokens in sentences for token in tokens), dtype="int32")
        self.batch_size, self.bucket_width, self.shuffle = int(batch_size), int(bucket_width), shuffle
        self.rng = np.random.default_rng(seed)
        self.buckets = {}
        longest = int(self.lengths.max())
        for row, length in enumerate(self.lengths):
            # Never wider than the longest sentence, which the model was built for.
            width = min(-(-int(length) // self.bucket_width) * self.bucket_width, longest)
            self.buckets.setdefault(width, []).append(row)
        self.buckets = {width: np.array(rows) for width, rows in sorted(self.buckets.items())}
        self._plan()

    def _plan(self):
        plan = []
        for width, rows in self.buckets.items():
            rows = self.rng.permutation(rows) if self.shuffle else rows
            short = -len(rows) % self.batch_size
            if short:
                rows = np.concatenate([rows, self.rng.choice(rows, short)])
            plan += [(width, rows[start : start + self.batch_size]) for start in range(0, len(rows), self.batch_size)]
        if self.shuffle:
            plan = [plan[i] for i in self.rng.permutation(len(plan))]
        # Keras' TensorFlow adapter infers the batch shape from the first two batches:
        # give them different widths so the width is left unknown rather than fixed.
        other = next((i for i, (width, _) in enumerate(plan) if width != plan[0][0]), None)
        if other is not None and len(plan) > 1:
            plan[1], plan[other] = plan[other], plan[1]
        self.plan = plan

    @property
    def num_batches(self):
        return len(self.plan)

    def __len__(self):
        return len(self.plan)

    def padded(self, rows, width):
        """Word vectors `(len(rows), width, dim)` and lengths of the given sentence rows."""
        lengths = self.lengths[rows]
        vectors = np.zeros((len(rows), width, self.vectors.shape[1]), dtype="float32")
        for out, (row, length) in enumerate(zip(rows, lengths)):
            vectors[out, :length] = self.vectors[self.ids[self.offsets[row] : self.offsets[row] + length]]
        return vectors, lengths

    def __getitem__(self, index):
        width, rows = self.plan[index]
        vectors, lengths = self.padded(rows, width)
        return (vectors, lengths), vectors

    def on_epoch_end(self):
        if self.shuffle:
            self._plan()
