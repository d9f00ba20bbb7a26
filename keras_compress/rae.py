"""Recursive autoencoder that encodes a sentence, and every sub-span, into one vector.

Prato, Duchesneau, Chandar and Tapp, "Towards Lossless Encoding of Sentences"
(ACL 2019, section 3; Prato 2019 M.Sc. thesis, chapter 4).

A shared encoder MLP merges each adjacent pair of vectors into one, so a sequence of
n word vectors shrinks by one element a step and becomes a single vector after n - 1
steps; every intermediate vector embeds a contiguous sub-span. A shared decoder MLP
splits each vector into two, averages the overlapping halves of neighbours, and grows
the sequence back to n word vectors. Training minimises the mean squared error
between input and output word vectors, so any pretrained vocabulary (GloVe in the
paper) can be used without a softmax over it.
"""

import numpy as np

import keras
from keras import ops

__all__ = [
    "RecursiveAutoencoder",
    "average_overlaps",
    "nearest_words",
    "reconstruction_accuracy",
    "step_bucket",
    "step_features",
]


def step_bucket(step):
    """Index of the one-hot bucket of a recursion step (paper section 3).

    The buckets are {1}, {2}, {3, 4}, {5, 6, 7}, then {8, 9, 10}, {11, 12, 13}, ...
    (width 3 from there on), so early steps, where a span is short and each extra
    word matters most, are told apart finely.
    """
    step = int(step)
    if step < 1:
        raise ValueError(f"Recursion steps count from 1, got {step}.")
    if step <= 2:
        return step - 1
    if step <= 4:
        return 2
    if step <= 7:
        return 3
    return 4 + (step - 8) // 3


def step_features(max_length):
    """Table of step features: row `s` is `[s / max_length, one_hot(step_bucket(s))]`.

    Row 0 is all zeros; it is fed to rows of a padded batch whose sentence is already
    finished, whose results are discarded anyway. Steps run from 1 to
    `max_length - 1`, the number of merges a sentence of `max_length` words needs.

    The scalar is scaled into (0, 1). Fed raw (1, 2, ..., 29), it dominated the
    variance of the first layer's pre-activations, so the LayerNorm after it divided
    everything else, gradients included, by about the step: at width 20 the gradient
    reaching the leaves was 1e8 times smaller than at the output (docs/rae.md).

    Returns:
        float32 array of shape `(max_length, 1 + number_of_buckets)`.
    """
    last_step = max(max_length - 1, 1)
    num_buckets = step_bucket(last_step) + 1
    table = np.zeros((max_length, 1 + num_buckets), dtype="float32")
    for step in range(1, max_length):
        table[step, 0] = step / max_length
        table[step, 1 + step_bucket(step)] = 1.0
    return table


def average_overlaps(left, right):
    """Join the two halves a decoder step produces into a sequence one longer.

    Element `i` of a level of `k` vectors decodes into a left child `left[:, i]`
    (position `i` of the next level) and a right child `right[:, i]` (position
    `i + 1`). Interior positions receive two children and take their mean; the first
    and the last receive one.

    Args:
        left: tensor of shape `(batch, k, d)`.
        right: tensor of shape `(batch, k, d)`.

    Returns:
        tensor of shape `(batch, k + 1, d)`.
    """
    k = left.shape[1]
    summed = ops.pad(left, [[0, 0], [0, 1], [0, 0]]) + ops.pad(right, [[0, 0], [1, 0], [0, 0]])
    counts = np.full((k + 1, 1), 2.0, dtype="float32")
    counts[0] = counts[-1] = 1.0
    return summed / ops.convert_to_tensor(counts, dtype=summed.dtype)


def _sequence_mask(lengths, width, dtype="float32"):
    """`(batch, width)` mask that is 1 on the first `length` positions of each row."""
    positions = ops.expand_dims(ops.arange(width, dtype="int32"), 0)
    return ops.cast(positions < ops.expand_dims(lengths, 1), dtype)


def _normalized_mlp(hidden_units, output_units, name):
    """MLP_enc / MLP_dec: Dense, LayerNorm, ReLU on the hidden layer; the output layer is linear.

    A LayerNorm and ReLU on the output too (as this module had first) zero about half
    of every span embedding and rescale the rest at each of the `2 (n - 1)` steps a
    sentence goes through; see docs/rae.md for what that cost.
    """
    return keras.Sequential(
        [
            keras.layers.Dense(hidden_units),
            keras.layers.LayerNormalization(),
            keras.layers.ReLU(),
            keras.layers.Dense(output_units),
        ],
        name=name,
    )


def _halfway(a, b):
    return max(1, (a + b) // 2)


class SequenceAutoencoder(keras.Model):
    """Shared plumbing of the sentence autoencoders: inputs, masked loss, encode/decode.

    Inputs are `(vectors, lengths)` (a tuple or a dict with those keys): `vectors` of
    shape `(batch, width, word_dim)` padded after each sentence, `lengths` of shape
    `(batch,)` with the number of real words (1 to width). A bare `vectors` tensor
    means every row fills the whole width. The target defaults to the input vectors,
    so `fit(x)` trains the autoencoder; the loss is the mean squared error over real
    positions only.
    """

    def __init__(self, word_dim, embedding_dim, max_length=32, **kwargs):
        super().__init__(**kwargs)
        for argument, value in (("word_dim", word_dim), ("embedding_dim", embedding_dim), ("max_length", max_length)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{argument}` must be a positive integer, got {value!r}.")
        self.word_dim = int(word_dim)
        self.embedding_dim = int(embedding_dim)
        self.max_length = int(max_length)

    def _split_inputs(self, inputs):
        if isinstance(inputs, dict):
            vectors, lengths = inputs["vectors"], inputs.get("lengths")
        elif isinstance(inputs, (tuple, list)):
            if len(inputs) != 2:
                raise ValueError(f"Expected inputs (vectors, lengths), got a sequence of {len(inputs)} items.")
            vectors, lengths = inputs
        else:
            vectors, lengths = inputs, None
        vectors = ops.convert_to_tensor(vectors)
        if len(vectors.shape) != 3 or vectors.shape[-1] != self.word_dim:
            raise ValueError(
                f"Expected word vectors of shape (batch, length, {self.word_dim}), got {tuple(vectors.shape)}."
            )
        width = vectors.shape[1]
        if width is not None and width > self.max_length:
            raise ValueError(
                f"Sentences are padded to {width} positions but max_length={self.max_length}; "
                "truncate them or build the model with a larger max_length."
            )
        dynamic_width = ops.shape(vectors)[1] if width is None else width
        if lengths is None:
            lengths = ops.full((ops.shape(vectors)[0],), dynamic_width, dtype="int32")
        lengths = ops.clip(ops.cast(ops.reshape(lengths, (-1,)), "int32"), 1, dynamic_width)
        return vectors, lengths

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        vectors, lengths = self._split_inputs(x)
        target = vectors if y is None else ops.convert_to_tensor(y, dtype=y_pred.dtype)
        mask = _sequence_mask(lengths, ops.shape(y_pred)[1], y_pred.dtype)
        squared = ops.sum(ops.square(target - y_pred), axis=-1) * mask
        if sample_weight is not None:
            squared = squared * ops.reshape(ops.cast(sample_weight, squared.dtype), (-1, 1))
        loss = ops.sum(squared) / (ops.sum(mask) * self.word_dim)
        for extra in self.losses:
            loss = loss + ops.cast(extra, loss.dtype)
        return loss

    def _check_lengths(self, lengths, batch, width=None):
        lengths = np.asarray(ops.convert_to_numpy(lengths)).reshape(-1).astype("int32")
        if lengths.shape[0] == 1 and batch != 1:
            lengths = np.repeat(lengths, batch)  # one length for the whole batch
        if lengths.shape[0] != batch:
            raise ValueError(f"Got {lengths.shape[0]} lengths for a batch of {batch}.")
        longest = self.max_length if width is None else min(width, self.max_length)
        if lengths.size and (lengths.min() < 1 or lengths.max() > longest):
            raise ValueError(f"Lengths must lie in [1, {longest}] (the padded width), got {lengths.min()}..{lengths.max()}.")
        return lengths

    def _eager_inputs(self, x, lengths):
        """Checked `(vectors, lengths)` for the eager `encode` API; lengths may come inside `x`."""
        if isinstance(x, dict):
            x, lengths = x["vectors"], x.get("lengths", lengths)
        elif isinstance(x, (tuple, list)):
            x, lengths = x
        vectors, _ = self._split_inputs(x)
        if lengths is not None:
            lengths = self._check_lengths(lengths, vectors.shape[0], vectors.shape[1])
        return self._split_inputs((vectors, lengths))

    def encode(self, x, lengths=None):
        """Sentence embeddings `(batch, embedding_dim)` of padded word vectors `x`."""
        return self._encode(*self._eager_inputs(x, lengths))

    def decode(self, z, lengths):
        """Word vectors `(batch, max(lengths), word_dim)` rebuilt from embeddings `z`.

        `lengths` is one length a row, or a single int for the whole batch (the
        decoder needs the sentence length, as in the paper). Positions past each
        row's length are zero.
        """
        z = ops.convert_to_tensor(z)
        if len(z.shape) != 2 or z.shape[-1] != self.embedding_dim:
            raise ValueError(f"Expected embeddings of shape (batch, {self.embedding_dim}), got {tuple(z.shape)}.")
        lengths = self._check_lengths(lengths, z.shape[0])
        width = int(lengths.max()) if lengths.size else 1
        return self._decode(z, ops.convert_to_tensor(lengths), width)

    def call(self, inputs, training=None):
        vectors, lengths = self._split_inputs(inputs)
        if vectors.shape[1] is None:
            return self._call_dynamic_width(vectors, lengths)
        return self._decode(self._encode(vectors, lengths), lengths, vectors.shape[1])

    def _call_dynamic_width(self, vectors, lengths):
        """`call` on batches whose width is only known at run time.

        Keras' TensorFlow trainer relaxes the traced input shape to `(None, None,
        word_dim)` once batches of two widths have been seen (length-bucketed
        batches). Subclasses whose computation unrolls over the width run it here
        for a few static widths (multiples of 5, and `max_length`) and pick the
        smallest that holds the batch, so a bucketed batch pays for its own width
        rather than `max_length`.
        """
        widths = sorted({min(width, self.max_length) for width in range(5, self.max_length + 5, 5)})
        actual = ops.shape(vectors)[1]
        index = ops.sum(ops.cast(ops.convert_to_tensor(widths, dtype="int32") < actual, "int32"))

        def branch(width):
            def run(vectors, lengths):
                shape = ops.shape(vectors)
                padding = ops.zeros((shape[0], width - shape[1], self.word_dim), dtype=vectors.dtype)
                padded = ops.reshape(ops.concatenate([vectors, padding], axis=1), (-1, width, self.word_dim))
                words = self._decode(self._encode(padded, lengths), lengths, width)
                return ops.pad(words, [[0, 0], [0, self.max_length - width], [0, 0]])

            return run

        words = ops.switch(index, [branch(width) for width in widths], vectors, lengths)
        return words[:, :actual]

    def get_config(self):
        return {
            **super().get_config(),
            "word_dim": self.word_dim,
            "embedding_dim": self.embedding_dim,
            "max_length": self.max_length,
        }


@keras.saving.register_keras_serializable(package="keras_compress")
class RecursiveAutoencoder(SequenceAutoencoder):
    """Recursive autoencoder of Prato et al. (2019): a sentence and all its sub-spans.

    Args:
        word_dim: size of the input word vectors (50 for GloVe 6B 50d).
        embedding_dim: size of every span embedding, the sentence embedding included
            (`d_emb` in the paper).
        max_length: longest sentence the model accepts; fixes the size of the
            step-bucket one-hot.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Input shape:
        `(vectors, lengths)`: `(batch, width, word_dim)` word vectors padded after
        each sentence (width <= max_length) and `(batch,)` integer lengths.

    Output shape:
        `(batch, width, word_dim)` reconstructed word vectors, zero past each length.

    Example:

    ```python
    import numpy as np
    from keras_compress.rae import RecursiveAutoencoder

    vectors = np.random.normal(size=(8, 6, 50)).astype("float32")
    lengths = np.array([6, 5, 4, 3, 2, 1, 6, 6])
    model = RecursiveAutoencoder(word_dim=50, embedding_dim=64, max_length=6)
    model.compile(optimizer="adam")
    model.fit((vectors, lengths), vectors, epochs=2, verbose=0)
    sentence = model.encode(vectors, lengths)                      # (8, 64)
    sentence, spans = model.encode(vectors, lengths, return_spans=True)
    # spans[b, t, i] embeds words i..i+t of sentence b (valid when i + t < lengths[b])
    rebuilt = model.decode(sentence, lengths)                      # (8, 6, 50)
    ```
    """

    def __init__(self, word_dim, embedding_dim, max_length=32, **kwargs):
        super().__init__(word_dim, embedding_dim, max_length, **kwargs)
        self.step_table = step_features(self.max_length)
        step_size = self.step_table.shape[1]
        d = self.embedding_dim
        # MLP_in / MLP_out resize between the word vectors and d_emb (one hidden layer).
        self.input_mlp = keras.Sequential(
            [keras.layers.Dense(_halfway(self.word_dim, d), activation="relu"), keras.layers.Dense(d, activation="relu")],
            name="input_mlp",
        )
        self.output_mlp = keras.Sequential(
            [keras.layers.Dense(_halfway(d, self.word_dim), activation="relu"), keras.layers.Dense(self.word_dim)],
            name="output_mlp",
        )
        # The hidden layer sits halfway between input and output size (paper section 3).
        self.encoder_mlp = _normalized_mlp(_halfway(2 * d + step_size, d), d, name="encoder_mlp")
        self.decoder_mlp = _normalized_mlp(_halfway(d + step_size, 2 * d), 2 * d, name="decoder_mlp")

    def build(self, input_shape=None):
        step_size = self.step_table.shape[1]
        d = self.embedding_dim
        self.input_mlp.build((None, None, self.word_dim))
        self.encoder_mlp.build((None, None, 2 * d + step_size))
        self.decoder_mlp.build((None, None, d + step_size))
        self.output_mlp.build((None, None, d))
        self.built = True

    def _steps(self, step_ids, like):
        """Step features for every position of `like` `(batch, k, .)`; `step_ids` is `(batch,)`."""
        features = ops.take(ops.convert_to_tensor(self.step_table, dtype=like.dtype), step_ids, axis=0)
        return ops.expand_dims(features, 1) + ops.zeros_like(like[..., :1])

    def _encoder_levels(self, vectors):
        """Every level of the recursion: level t has `width - t` vectors, each spanning t + 1 words.

        Position i of level t depends only on words i..i+t, so positions that a
        sentence of length L keeps (i + t < L) never see its padding.
        """
        level = self.input_mlp(vectors)
        levels = [level]
        batch = ops.shape(vectors)[0]
        for step in range(1, vectors.shape[1]):
            pairs = ops.concatenate([level[:, :-1], level[:, 1:]], axis=-1)
            step_ids = ops.full((batch,), step, dtype="int32")
            level = self.encoder_mlp(ops.concatenate([pairs, self._steps(step_ids, pairs)], axis=-1))
            levels.append(level)
        return levels

    def _encode(self, vectors, lengths):
        levels = self._encoder_levels(vectors)
        # A sentence of length L is finished after L - 1 merges: its embedding is
        # the first (and only valid) vector of level L - 1.
        firsts = ops.stack([level[:, 0] for level in levels], axis=1)
        index = ops.reshape(lengths - 1, (-1, 1, 1))
        return ops.squeeze(ops.take_along_axis(firsts, index, axis=1), axis=1)

    def encode(self, x, lengths=None, return_spans=False):
        """Sentence embeddings `(batch, embedding_dim)` of padded word vectors.

        Args:
            x: `(batch, width, word_dim)` word vectors, padded after each sentence.
            lengths: `(batch,)` number of words per row; `None` means `width`.
            return_spans: also return the embedding of every sub-span.

        Returns:
            The sentence embeddings, and with `return_spans=True` a pair
            `(embeddings, spans)` where `spans[b, t, i]` of shape
            `(batch, width, width, embedding_dim)` embeds words `i..i+t` of row `b`;
            entries with `i + t >= lengths[b]` are zero.
        """
        if not return_spans:
            return super().encode(x, lengths)
        vectors, lengths = self._eager_inputs(x, lengths)
        width = vectors.shape[1]
        levels = self._encoder_levels(vectors)
        spans = ops.stack([ops.pad(level, [[0, 0], [0, t], [0, 0]]) for t, level in enumerate(levels)], axis=1)
        span_end = ops.reshape(ops.arange(width, dtype="int32"), (1, -1, 1)) + ops.reshape(
            ops.arange(width, dtype="int32"), (1, 1, -1)
        )
        valid = ops.cast(span_end < ops.reshape(lengths, (-1, 1, 1)), spans.dtype)
        spans = spans * ops.expand_dims(valid, -1)
        return self._encode(vectors, lengths), spans

    def _decode(self, z, lengths, width):
        lengths = ops.cast(lengths, "int32")
        level = ops.expand_dims(z, 1)
        # Rows keep the level at which their own count is done (L - 1 splits).
        finished = ops.pad(level, [[0, 0], [0, width - 1], [0, 0]])
        for split in range(1, width):
            # The step count runs down: the first split mirrors a row's last merge.
            step_ids = ops.clip(lengths - split, 0, self.max_length - 1)
            halves = self.decoder_mlp(ops.concatenate([level, self._steps(step_ids, level)], axis=-1))
            level = average_overlaps(halves[..., : self.embedding_dim], halves[..., self.embedding_dim :])
            done_now = ops.reshape(lengths - 1 == split, (-1, 1, 1))
            finished = ops.where(done_now, ops.pad(level, [[0, 0], [0, width - split - 1], [0, 0]]), finished)
        words = self.output_mlp(finished)
        return words * ops.expand_dims(_sequence_mask(lengths, width, words.dtype), -1)


def nearest_words(vectors, keyed_vectors, metric="euclidean", batch_size=1024):
    """Map each vector to the vocabulary word nearest to it.

    Args:
        vectors: array of shape `(..., vector_size)`, e.g. decoded word vectors.
        keyed_vectors: gensim `KeyedVectors` holding the vocabulary (all of it is
            searched).
        metric: `"euclidean"` (default: the word at the smallest mean squared
            error, the paper's definition, section 4.2 of Prato's thesis) or
            `"cosine"` (gensim's `most_similar` ordering).
        batch_size: rows compared with the whole vocabulary at once (memory bound).

    Returns:
        numpy array of words (dtype object) of shape `vectors.shape[:-1]`.
    """
    if metric not in ("cosine", "euclidean"):
        raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}.")
    vectors = np.asarray(ops.convert_to_numpy(vectors), dtype="float32")
    if vectors.shape[-1] != keyed_vectors.vector_size:
        raise ValueError(f"Vectors have size {vectors.shape[-1]} but the vocabulary has {keyed_vectors.vector_size}.")
    flat = vectors.reshape(-1, vectors.shape[-1])
    if metric == "cosine":
        vocabulary = keyed_vectors.get_normed_vectors()
        flat = flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-12)
        vocabulary_norms = np.zeros(len(vocabulary), dtype="float32")
    else:
        vocabulary = keyed_vectors.vectors
        vocabulary_norms = np.square(vocabulary).sum(axis=1)
    words = np.asarray(keyed_vectors.index_to_key, dtype=object)
    nearest = np.empty(len(flat), dtype="int64")
    for start in range(0, len(flat), batch_size):
        # ||v - w||^2 = ||v||^2 - 2 v.w + ||w||^2; ||v|| is constant per row.
        scores = 2.0 * flat[start : start + batch_size] @ vocabulary.T - vocabulary_norms
        nearest[start : start + batch_size] = scores.argmax(axis=1)
    return words[nearest].reshape(vectors.shape[:-1])


def reconstruction_accuracy(decoded, sentences, keyed_vectors, metric="euclidean"):
    """Share of words recovered from decoded vectors, overall and by sentence length.

    A decoded vector is correct when its nearest vocabulary word (see
    `nearest_words`) is the input word at that position.

    Args:
        decoded: `(batch, width, word_dim)` decoded word vectors.
        sentences: list of `batch` token lists (the inputs).
        keyed_vectors: gensim `KeyedVectors` of the vocabulary.
        metric: distance of `nearest_words`.

    Returns:
        dict with `word_accuracy` (all words), `sentence_accuracy` (sentences with
        every word right), and `by_length`: `{length: {"word_accuracy",
        "sentence_accuracy", "sentences"}}`.
    """
    decoded = np.asarray(ops.convert_to_numpy(decoded))
    if len(sentences) != decoded.shape[0]:
        raise ValueError(f"Got {len(sentences)} sentences for {decoded.shape[0]} decoded rows.")
    width = decoded.shape[1]
    if any(len(tokens) > width or not tokens for tokens in sentences):
        raise ValueError(f"Every sentence needs 1 to {width} tokens to match the decoded width.")
    guesses = nearest_words(decoded, keyed_vectors, metric=metric)
    per_length = {}
    for tokens, row in zip(sentences, guesses):
        hits = [guess == token for guess, token in zip(row, tokens)]
        counts = per_length.setdefault(len(tokens), [0, 0, 0])
        counts[0] += sum(hits)
        counts[1] += all(hits)
        counts[2] += 1
    total_words = sum(length * counts[2] for length, counts in per_length.items())
    return {
        "word_accuracy": sum(counts[0] for counts in per_length.values()) / max(total_words, 1),
        "sentence_accuracy": sum(counts[1] for counts in per_length.values()) / max(len(sentences), 1),
        "by_length": {
            length: {
                "word_accuracy": counts[0] / (length * counts[2]),
                "sentence_accuracy": counts[1] / counts[2],
                "sentences": counts[2],
            }
            for length, counts in sorted(per_length.items())
        },
    }
