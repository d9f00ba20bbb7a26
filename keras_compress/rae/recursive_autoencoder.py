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
    padding = [[0, 0], [0, 1], [0, 0]]
    parents, inverse_counts = _overlap_tables(k + 1, k + 1)
    return _average_overlaps_in_buffer(
        ops.pad(left, padding), ops.pad(right, padding), parents[k], ops.cast(inverse_counts[k], left.dtype)
    )


def _overlap_tables(rows, width, dtype="float32"):
    """Masks for `average_overlaps` inside a buffer of `width` positions, one row a parent count.

    Row `count` of `parents` `(rows, 1, width, 1)` is 1 on the `count` real positions of
    a level; row `count` of `inverse_counts` is 1 / (number of children a position of
    the next level receives: 1 at both ends, 2 inside, none past the end -> 1).
    """
    positions = ops.expand_dims(ops.arange(width, dtype="int32"), 0)
    counts = ops.expand_dims(ops.arange(rows, dtype="int32"), 1)
    parents = ops.cast(positions < counts, dtype)
    children = parents + ops.cast((positions >= 1) & (positions <= counts), dtype)
    inverse_counts = 1.0 / ops.maximum(children, 1.0)
    shape = (rows, 1, width, 1)
    return ops.reshape(parents, shape), ops.reshape(inverse_counts, shape)


def _average_overlaps_in_buffer(left, right, parents, inverse_counts):
    """`average_overlaps` in a fixed-width buffer: `parents` `(1, width, 1)` marks the real positions.

    The last buffer position must not be a parent (it would wrap around).
    """
    right = ops.roll(right * parents, 1, axis=1)
    return (left * parents + right) * inverse_counts


def sequence_mask(lengths, width, dtype="float32"):
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
        mask = sequence_mask(lengths, ops.shape(y_pred)[1], y_pred.dtype)
        squared = ops.sum(ops.square(target - y_pred), axis=-1) * mask
        if sample_weight is not None:
            squared = squared * ops.reshape(ops.cast(sample_weight, squared.dtype), (-1, 1))
        loss = ops.sum(squared) / (ops.sum(mask) * self.word_dim)
        for extra in self.losses:
            loss = loss + ops.cast(extra, loss.dtype)
        return loss

    def _check_lengths(self, lengths, batch, width=None):
        if isinstance(lengths, (str, bytes)):
            raise ValueError(f"Lengths must be integers, got the string {lengths[:20]!r}.")
        lengths = np.asarray(lengths if isinstance(lengths, (int, list, tuple, np.ndarray, np.generic))
                             else ops.convert_to_numpy(lengths))
        if lengths.dtype.kind not in "iu":  # 2.5 is not a length, nor True, nor '3'
            raise ValueError(f"Lengths must be integers, got dtype {lengths.dtype} ({lengths.reshape(-1)[:3].tolist()!r}...).")
        if lengths.ndim > 1:
            raise ValueError(f"Lengths must be one int or one a row (1-d), got shape {lengths.shape}.")
        lengths = lengths.reshape(-1)
        if lengths.shape[0] == 1 and batch != 1:
            lengths = np.repeat(lengths, batch)  # one length for the whole batch
        if lengths.shape[0] != batch:
            raise ValueError(f"Got {lengths.shape[0]} lengths for a batch of {batch}.")
        longest = self.max_length if width is None else min(width, self.max_length)
        # Checked before the cast to int32, so 2**32 + 3 is refused rather than wrapped to 3.
        if lengths.size and (lengths.min() < 1 or lengths.max() > longest):
            raise ValueError(f"Lengths must lie in [1, {longest}] (the padded width), got {lengths.min()}..{lengths.max()}.")
        return lengths.astype("int32")

    def _build_on_first_use(self):
        # Keras layers build on their first call; encode/decode are called before `call` too.
        if not self.built:
            self.build()

    def _eager_inputs(self, x, lengths):
        """Checked `(vectors, lengths)` for the eager `encode` API; lengths may come inside `x`."""
        self._build_on_first_use()
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
        self._build_on_first_use()
        return self._decode(z, ops.convert_to_tensor(lengths), width)

    def call(self, inputs, training=None):
        vectors, lengths = self._split_inputs(inputs)
        # Keras' TensorFlow trainer relaxes the traced width to None once length
        # buckets of two widths have been seen; both models run on any width.
        width = vectors.shape[1] if vectors.shape[1] is not None else ops.shape(vectors)[1]
        return self._decode(self._encode(vectors, lengths), lengths, width)

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

    def _merge_levels(self, leaves, lengths, return_spans=False):
        """Run the `width - 1` merges on `MLP_in(words)` as symbolic loops; return the sentence embeddings (and spans).

        Level t of the recursion holds `width - t` vectors, position i spanning words
        i..i+t; it only depends on those words, so positions that a sentence of length
        L keeps (i + t < L) never see its padding. The level lives in a buffer of
        fixed width inside each loop (positions past `width - t` are zeroed), so the
        graph holds one copy of MLP_enc a block, whatever the width. A row's embedding
        is the first vector of level `length - 1`, taken when the loop passes it.

        With `return_spans`, also the `(batch, width, width, d)` tensor whose
        `[b, t, i]` is level t, position i (zero past the level's end).
        """
        width = _width(leaves)
        lengths = ops.cast(lengths, "int32")
        d = self.embedding_dim
        # MLP_enc's first layer applied to [left; right; step] is left @ K_l + right @ K_r
        # + (step @ K_s + b): the step term is one table row, and right @ K_r is
        # left @ K_r shifted by one position, so no pair is concatenated.
        kernel, bias = _first_dense(self.encoder_mlp, leaves.dtype)
        kernel_left, kernel_right, kernel_step = kernel[:d], kernel[d : 2 * d], kernel[2 * d :]
        step_bias = ops.matmul(ops.convert_to_tensor(self.step_table, dtype=leaves.dtype), kernel_step) + bias
        last_merge = ops.expand_dims(lengths - 1, -1)
        sentence = leaves[:, 0]
        spans = None
        if return_spans:
            first = ops.reshape(ops.cast(ops.arange(width) == 0, leaves.dtype), (1, -1, 1, 1))
            spans = first * ops.expand_dims(leaves, 1)

        def merge(step, state):
            level, sentence, spans = state
            # The buffer's last position wraps around here: it never holds a real span.
            hidden = ops.matmul(level, kernel_left) + ops.roll(ops.matmul(level, kernel_right), -1, axis=1)
            level = _after_first_dense(self.encoder_mlp, hidden + ops.take(step_bias, step, axis=0))
            sentence = ops.where(last_merge == step, level[:, 0], sentence)
            if spans is not None:
                here = ops.reshape(ops.cast(ops.arange(width) == step, level.dtype), (1, -1, 1, 1))
                padded = ops.pad(level, [[0, 0], [0, width - ops.shape(level)[1]], [0, 0]])
                spans = spans + here * ops.expand_dims(padded, 1)
            return level, sentence, spans

        level = leaves
        if _unrolled(width):
            # Each merge on exactly the vectors of its level (the wrapped last position
            # is dropped before the next one).
            for step in range(1, width):
                level, sentence, spans = merge(step, (level[:, : width - step + 1], sentence, spans))
        else:
            for start, stop in _blocks(1, width, _LOOP_BLOCKS):
                # Level start - 1 has width - start + 1 real vectors: the rest of the block fits.
                level = level[:, : width - start + 1]
                level, sentence, spans = _loop(start, stop, merge, (level, sentence, spans), self.max_length)
        return (sentence, spans) if return_spans else sentence

    def _encode(self, vectors, lengths):
        return self._merge_levels(self.input_mlp(vectors), lengths)

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
        return self._encode_spans(vectors, lengths)

    def _encode_spans(self, vectors, lengths):
        """`(embeddings, spans)` with every span past its row's length zeroed (graph-safe)."""
        sentence, spans = self._merge_levels(self.input_mlp(vectors), lengths, return_spans=True)
        width = _width(vectors)
        span_end = ops.reshape(ops.arange(width, dtype="int32"), (1, -1, 1)) + ops.reshape(
            ops.arange(width, dtype="int32"), (1, 1, -1)
        )
        valid = ops.cast(span_end < ops.reshape(ops.cast(lengths, "int32"), (-1, 1, 1)), spans.dtype)
        return sentence, spans * ops.expand_dims(valid, -1)

    def _decode(self, z, lengths, width):
        """Run the `width - 1` splits as symbolic loops; each row keeps the level of its own length.

        Split s turns a level of s vectors into one of s + 1 (overlaps averaged); the
        step count runs down, so a row's first split mirrors its last merge. Like the
        encoder, the level lives in a fixed-width buffer inside each loop.
        """
        lengths = ops.cast(lengths, "int32")
        d = self.embedding_dim
        kernel, bias = _first_dense(self.decoder_mlp, z.dtype)
        step_bias = ops.matmul(ops.convert_to_tensor(self.step_table, dtype=z.dtype), kernel[d:]) + bias
        kernel_level = kernel[:d]
        last_split = ops.reshape(lengths - 1, (-1, 1, 1))

        def split_level(level, count, tables):
            """Split the `count` vectors of `level` (in a buffer wider than `count`) into `count + 1`."""
            step_ids = ops.clip(lengths - count, 0, self.max_length - 1)
            hidden = ops.matmul(level, kernel_level) + ops.expand_dims(ops.take(step_bias, step_ids, axis=0), 1)
            halves = _after_first_dense(self.decoder_mlp, hidden)
            parents, inverse_counts = (ops.take(table, count, axis=0) for table in tables)
            return _average_overlaps_in_buffer(halves[..., :d], halves[..., d:], parents, inverse_counts)

        level = finished = ops.expand_dims(z, 1)
        if _unrolled(width):
            # Split `count` on a buffer of exactly `count + 1` positions.
            finished = ops.pad(finished, [[0, 0], [0, width - 1], [0, 0]])
            parents, inverse_counts = _overlap_tables(width, width, z.dtype)
            for count in range(1, width):
                tables = (parents[:, :, : count + 1], inverse_counts[:, :, : count + 1])
                level = split_level(ops.pad(level, [[0, 0], [0, 1], [0, 0]]), count, tables)
                done = ops.pad(level, [[0, 0], [0, width - count - 1], [0, 0]])
                finished = ops.where(last_split == count, done, finished)
        else:

            def split(count, state):
                # Reads the current block's `parents` and `inverse_counts`, bound below.
                level, finished = state
                level = split_level(level, count, (parents, inverse_counts))
                finished = ops.where(last_split == count, level, finished)
                return level, finished

            for start, stop in _blocks(1, width, _LOOP_BLOCKS):
                # Split `stop - 1`, the block's last, leaves `stop` vectors: the buffer's width.
                grow = [[0, 0], [0, stop - ops.shape(level)[1]], [0, 0]]
                parents, inverse_counts = _overlap_tables(stop, stop, z.dtype)
                level, finished = _loop(
                    start, stop, split, (ops.pad(level, grow), ops.pad(finished, grow)), self.max_length
                )
        words = self.output_mlp(finished)
        return words * ops.expand_dims(sequence_mask(lengths, width, words.dtype), -1)


# The levels are split into this many loops, each on a buffer as wide as its first
# level: the loops compute about (blocks + 1) / blocks times the merges the recursion
# needs (2x with one loop), and the graph holds one copy of the MLPs a loop. Measured
# (docs/rae.md): 3 loops trace in a constant 12-13 CPU-s and cost 1.3-1.4x the
# unrolled recursion a batch; 8 loops traced in 33 CPU-s and gained little a batch.
_LOOP_BLOCKS = 3


# Sentences padded to at most this many words (a static width) run the recursion
# unrolled in Python: every level at its exact size, no loop state. Measured on JAX
# (docs/rae.md): 1.1-1.4x less CPU a batch at widths 5-12, about 10 CPU-s more to
# compile a width. The graph grows with the width, so wider batches use the loops.
_UNROLL_WIDTH = 12


def _unrolled(width):
    return isinstance(width, int) and width <= _UNROLL_WIDTH


def _first_dense(mlp, dtype):
    """Kernel and bias of the first `Dense` of `mlp`, in the compute dtype."""
    dense = mlp.layers[0]
    return ops.cast(dense.kernel, dtype), ops.cast(dense.bias, dtype)


def _after_first_dense(mlp, hidden):
    """The rest of `mlp` (LayerNorm, ReLU, Dense) on the first layer's pre-activations."""
    for layer in mlp.layers[1:]:
        hidden = layer(hidden)
    return hidden


def _width(tensor):
    """Second dimension of `tensor`: a Python int when static, else a scalar tensor."""
    return tensor.shape[1] if tensor.shape[1] is not None else ops.shape(tensor)[1]


def _blocks(first, stop, blocks):
    """`blocks` consecutive ranges `(start, end)` splitting `first .. stop - 1` (ints or tensors)."""
    span = stop - first
    bounds = [first + (span * index) // blocks for index in range(blocks + 1)]
    # Empty ranges are dropped when the width is static; with a run-time width they
    # stay, as loops of no iteration.
    return [(start, end) for start, end in zip(bounds[:-1], bounds[1:]) if not (isinstance(span, int) and start == end)]


def _loop(start, stop, body, state, most):
    """`keras.ops.fori_loop(start, stop, body, state)`; `None` entries of `state` pass through.

    On TensorFlow it is a `while_loop` with `maximum_iterations` (`most`, a Python
    int), which XLA needs to differentiate a loop; JAX's fori_loop with static bounds
    is a scan, which JAX can differentiate.
    """
    present = [index for index, value in enumerate(state) if value is not None]

    def inner(step, values):
        full = list(state)
        for index, value in zip(present, values):
            full[index] = value
        result = body(step, tuple(full))
        return tuple(result[index] for index in present)

    values = tuple(state[index] for index in present)
    if keras.backend.backend() == "tensorflow":
        result = ops.while_loop(
            lambda step, values: step < stop,
            lambda step, values: (step + 1, inner(step, values)),
            (ops.convert_to_tensor(start, dtype="int32"), values),
            maximum_iterations=most,
        )[1]
    else:
        result = ops.fori_loop(start, stop, inner, values)
    full = list(state)
    for index, value in zip(present, result):
        full[index] = value
    return tuple(full)


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
