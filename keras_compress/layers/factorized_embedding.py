"""Low-rank embedding layers: an embedding stored as its truncated-SVD factors, trained online.

Acharya et al., "Online Embedding Compression for Text Classification using Low Rank Matrix
Factorization" (AAAI 2019), Section 3: a trained embedding W (V x d) is replaced by
U_k S_k (V x k) followed by Vt_k (k x d), with k = floor((1 - p) V d / (V + d)) for a
parameter reduction p, and both factors keep training so the accuracy lost by truncation
comes back. `keras_compress.factorization` changes a model's embeddings into these layers.
"""

import math
import numbers

import keras
import numpy as np
from keras import ops

from keras_compress import engine
from keras_compress.layers import limits

__all__ = [
    "FactorizedEmbedding",
    "FactorizedReversibleEmbedding",
    "rank_for_reduction",
    "svd_factors",
    "SINGULAR_VALUE_PLACEMENTS",
]

# Where the singular values go: "first" is the paper's U_k S_k / Vt_k; "second" is what the
# authors' code does (U_k / S_k Vt_k); "split" puts sqrt(S_k) in both. "second" is the default
# because it recovered accuracy faster in benchmarks/embedding_compression.py (by far for the
# GloVe LSTM; see docs/embedding_compression.md for the measurement).
SINGULAR_VALUE_PLACEMENTS = ("first", "second", "split")
DEFAULT_SINGULAR_VALUES = "second"


def rank_for_reduction(input_dim, output_dim, reduction):
    """Rank k that removes a fraction ``reduction`` of a V x d matrix's parameters.

    k = floor((1 - p) V d / (V + d)), so the two factors hold k (V + d) <= (1 - p) V d numbers.

    Raises:
        ValueError: ``reduction`` outside [0, 1) or a reduction so large that k < 1.
    """
    reduction = check_reduction(reduction)
    rank = math.floor((1 - reduction) * input_dim * output_dim / (input_dim + output_dim))
    if rank < 1:
        raise ValueError(
            f"reduction={reduction} leaves rank {rank} for a {input_dim} x {output_dim} "
            "embedding; use a smaller reduction"
        )
    return rank


def svd_factors(matrix, rank, singular_values=DEFAULT_SINGULAR_VALUES):
    """Truncated SVD of ``matrix`` (V x d) as two factors whose product is the best rank-k fit.

    Args:
        matrix: array of shape (V, d).
        rank: k, at most min(V, d).
        singular_values: "first" (U_k S_k, Vt_k), "second" (U_k, S_k Vt_k) or
            "split" (U_k sqrt(S_k), sqrt(S_k) Vt_k).

    Returns:
        (first, second) float32 arrays of shapes (V, k) and (k, d).
    """
    if singular_values not in SINGULAR_VALUE_PLACEMENTS:
        raise ValueError(f"singular_values must be one of {SINGULAR_VALUE_PLACEMENTS}, got {singular_values!r}")
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {matrix.shape}")
    if not 1 <= rank <= min(matrix.shape):
        raise ValueError(f"rank must be in [1, {min(matrix.shape)}] for shape {matrix.shape}, got {rank}")
    left, values, right = np.linalg.svd(matrix, full_matrices=False)
    left, values, right = left[:, :rank], values[:rank], right[:rank]
    if singular_values == "first":
        first, second = left * values, right
    elif singular_values == "second":
        first, second = left, values[:, None] * right
    else:
        root = np.sqrt(values)
        first, second = left * root, root[:, None] * right
    return first.astype(np.float32), second.astype(np.float32)


def check_positive_int(argument, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{argument} must be a positive integer, got {value!r}")
    return int(value)


def reverse_logits(layer, inputs, project):
    """`ReversibleEmbedding`'s output projection: ``project(inputs)`` with its reverse dtype and
    logit soft cap (shared by the factorized and quantized reversible embeddings)."""
    if layer.reverse_dtype is not None:
        inputs = ops.cast(inputs, layer.reverse_dtype)
    logits = project(inputs)
    if layer.logit_soft_cap is not None:
        logits = ops.multiply(ops.tanh(ops.divide(logits, layer.logit_soft_cap)), layer.logit_soft_cap)
    return logits


def _cast_ids(inputs):
    return inputs if inputs.dtype in ("int32", "int64") else ops.cast(inputs, "int32")


@keras.saving.register_keras_serializable(package="keras_compress")
class FactorizedEmbedding(keras.layers.Embedding):
    """An ``Embedding`` stored as two trainable factors: a V x k table and a k x d projection.

    A drop-in for ``keras.layers.Embedding`` (and a subclass of it): same inputs, outputs and
    mask, with k (V + d) parameters instead of V d. Build one from a trained embedding with
    :meth:`from_embedding`, or let :func:`keras_compress.compress_embeddings` /
    :class:`keras_compress.EmbeddingCompression` change a model's embeddings in place.
    ``layer.embeddings`` is the V x d product (computed; large), ``layer.table`` and
    ``layer.projection`` are the factors.

    Args:
        input_dim: vocabulary size V (largest index + 1).
        output_dim: embedding size d seen by the next layer.
        rank: inner size k of the factorization.
        embeddings_initializer: initializer of the V x k table.
        projection_initializer: initializer of the k x d projection.
        embeddings_regularizer: regularizer of the V x k table.
        projection_regularizer: regularizer of the k x d projection.
        embeddings_constraint: constraint of the V x k table.
        projection_constraint: constraint of the k x d projection.
        mask_zero: whether index 0 is padding to be masked, as in ``Embedding``.
        weights: optional ``[table, projection]`` initial values.
        max_weights: most weight values the layer may create (default
            :data:`keras_compress.layers.limits.MAX_WEIGHTS`, 2**31); larger sizes raise
            ValueError before anything is allocated. Not saved: a ``.keras`` config cannot
            raise it. Saved weights that are NaN or infinite are refused on load.

    Input shape: integer tensor of any shape ``(batch, ...)``.
    Output shape: ``(batch, ..., output_dim)``.

    Example:

    ```python
    layer = FactorizedEmbedding(input_dim=10000, output_dim=300, rank=27, mask_zero=True)
    vectors = layer(np.array([[4, 20, 0]]))  # shape (1, 3, 300), mask [[True, True, False]]
    ```
    """

    def __init__(
        self,
        input_dim,
        output_dim,
        rank,
        embeddings_initializer="uniform",
        projection_initializer="glorot_uniform",
        embeddings_regularizer=None,
        projection_regularizer=None,
        embeddings_constraint=None,
        projection_constraint=None,
        mask_zero=False,
        weights=None,
        max_weights=None,
        **kwargs,
    ):
        check_positive_int("input_dim", input_dim)
        check_positive_int("output_dim", output_dim)
        if kwargs.get("lora_rank"):
            raise ValueError("FactorizedEmbedding is already low-rank; it does not take lora_rank")
        super().__init__(
            int(input_dim),
            int(output_dim),
            embeddings_initializer=embeddings_initializer,
            embeddings_regularizer=embeddings_regularizer,
            embeddings_constraint=embeddings_constraint,
            mask_zero=mask_zero,
            **kwargs,
        )
        self._set_factorization(rank, projection_initializer, projection_regularizer, projection_constraint)
        self._max_weights = limits.check_limit(max_weights)  # not saved: a config cannot raise it
        limits.check_weight_count(self, self._weight_shapes(), self._max_weights)
        if weights is not None:
            self.build()
            self.set_weights(list(weights))

    def _weight_shapes(self):
        """Shapes of the weights build() creates (checked against the limit before it runs)."""
        untied = [] if getattr(self, "tie_weights", True) else [(self.output_dim, self.input_dim)]
        return [(self.input_dim, self.rank), (self.rank, self.output_dim)] + untied

    @classmethod
    def from_config(cls, config):
        limits.refuse_limit_in_config(cls, config)
        return super().from_config(config)

    def _set_factorization(self, rank, initializer="glorot_uniform", regularizer=None, constraint=None):
        self.rank = check_positive_int("rank", rank)
        self.projection_initializer = keras.initializers.get(initializer)
        self.projection_regularizer = keras.regularizers.get(regularizer)
        self.projection_constraint = keras.constraints.get(constraint)

    @property
    def merge_on_save(self):
        """Whether this layer saves the merged V x d product: its parent re-creates it as a plain
        embedding when a `.keras` file loads (see `keras_compress.engine`)."""
        return engine.saves_merged(self)

    def build(self, input_shape=None):
        if self.built:
            return
        self._add_factors()
        if not getattr(self, "tie_weights", True):
            self.reverse_embeddings = self.add_weight(
                shape=(self.output_dim, self.input_dim),
                initializer=self.embeddings_initializer,
                name="reverse_embeddings",
            )
        self.built = True

    def _add_factors(self):
        self.table = self.add_weight(
            shape=(self.input_dim, self.rank),
            initializer=self.embeddings_initializer,
            regularizer=self.embeddings_regularizer,
            constraint=self.embeddings_constraint,
            name="embeddings",
        )
        self.projection = self.add_weight(
            shape=(self.rank, self.output_dim),
            initializer=self.projection_initializer,
            regularizer=self.projection_regularizer,
            constraint=self.projection_constraint,
            name="projection",
        )
        return [self.table, self.projection]

    def factors(self):
        """The (table, projection) tensors the forward pass uses."""
        return self.table, self.projection

    @property
    def embeddings(self):
        """The V x d matrix the two factors represent (computed on every access; large)."""
        return ops.matmul(*self.factors())

    embedding_matrix = embeddings

    def call(self, inputs):
        table, projection = self.factors()
        # Gather k numbers per token first, then project: V k + k d parameters and
        # tokens x k x d work, never the V x d product.
        low_rank = ops.take(table, _cast_ids(inputs), axis=0)
        return ops.cast(ops.matmul(low_rank, projection), self.compute_dtype)

    def enable_lora(self, *args, **kwargs):
        raise ValueError(f"{type(self).__name__} {self.name!r} is already low-rank; LoRA does not apply")

    def quantize(self, *args, **kwargs):
        # keras.Model.quantize catches this, warns and goes on with the other layers.
        raise NotImplementedError(
            f"{type(self).__name__} {self.name!r}: Keras post-training quantization does not apply "
            "to factorized embeddings; use keras_compress.quantize_model (both factors) instead."
        )

    def _saved_variables(self):
        extra = [] if getattr(self, "tie_weights", True) else [self.reverse_embeddings]
        return [self.table, self.projection] + extra

    def save_own_variables(self, store):
        if not self.built:
            return
        extra = [self._reverse_kernel()] if len(self._saved_variables()) > 2 else []
        if self.merge_on_save:
            # What the plain Embedding its parent re-creates on load expects (like Keras's
            # LoRA merging on save): the file reloads with equal outputs, uncompressed.
            values = [self.embeddings] + extra
        else:
            values = list(self.factors()) + extra
        for index, value in enumerate(values):
            store[str(index)] = keras.ops.convert_to_numpy(value)

    def _reverse_kernel(self):
        return self.reverse_embeddings

    def load_own_variables(self, store):
        values = [store[str(index)] for index in range(len(store.keys()))]
        variables = self._saved_variables()
        if len(values) == len(variables) - 1 and tuple(values[0].shape) == (self.input_dim, self.output_dim):
            # A merged V x d matrix (saved by a merge_on_save layer): factorize it again at this rank.
            values = list(svd_factors(np.asarray(values[0]), self.rank, "split")) + values[1:]
        if len(values) != len(variables):
            raise ValueError(
                f"Layer {self.name!r} expected {len(variables)} variables, but received {len(values)} "
                "variables during loading."
            )
        limits.check_finite(self, values)
        for variable, value in zip(variables, values):
            variable.assign(value)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "rank": self.rank,
                "projection_initializer": keras.initializers.serialize(self.projection_initializer),
                "projection_regularizer": keras.regularizers.serialize(self.projection_regularizer),
                "projection_constraint": keras.constraints.serialize(self.projection_constraint),
            }
        )
        return config

    @classmethod
    def from_embedding(cls, layer, rank=None, reduction=None, singular_values=DEFAULT_SINGULAR_VALUES, name=None):
        """A new ``FactorizedEmbedding`` from a built ``keras.layers.Embedding`` (a copy; to
        change a model in place use :func:`keras_compress.compress_embeddings`).

        Args:
            layer: a built ``Embedding`` (its name, dtype, mask_zero, initializer, regularizer
                and constraint carry over; the regularizer and constraint go to the V x k table).
            rank: k; or give ``reduction`` instead.
            reduction: fraction p of parameters to remove; k = floor((1-p) V d / (V + d)).
            singular_values: "first", "second" or "split" (see :func:`svd_factors`).
            name: name of the new layer (default: the old layer's).

        Returns:
            A built ``FactorizedEmbedding`` whose output is the rank-k approximation of ``layer``'s.
        """
        if type(layer) is not keras.layers.Embedding:
            raise TypeError(f"from_embedding needs a keras.layers.Embedding, got {type(layer).__name__}")
        rank, first, second = embedding_factors(layer, rank, reduction, singular_values)
        return cls(
            layer.input_dim,
            layer.output_dim,
            rank,
            embeddings_initializer=layer.embeddings_initializer,
            embeddings_regularizer=layer.embeddings_regularizer,
            embeddings_constraint=layer.embeddings_constraint,
            mask_zero=layer.mask_zero,
            weights=[first, second],
            name=name or layer.name,
            dtype=layer.dtype_policy,
        )


@keras.saving.register_keras_serializable(package="keras_compress")
class FactorizedReversibleEmbedding(FactorizedEmbedding, keras.layers.ReversibleEmbedding):
    """``keras.layers.ReversibleEmbedding`` (keras-hub's token embedding) with a factorized table.

    With ``tie_weights=True`` the output projection is the transpose of the same two factors,
    computed as ``(x @ projection.T) @ table.T`` (k (V + d) work per token, never V x d), so
    the tied embedding and logits stay consistent while both factors train.

    Args:
        input_dim, output_dim, rank, **kwargs: as :class:`FactorizedEmbedding`.
        tie_weights, reverse_dtype, logit_soft_cap: as ``ReversibleEmbedding``.

    Example:

    ```python
    layer = FactorizedReversibleEmbedding(100, 16, rank=4)
    hidden = layer(np.array([[1, 2, 3]]))        # (1, 3, 16)
    logits = layer(hidden, reverse=True)          # (1, 3, 100)
    ```
    """

    def __init__(self, input_dim, output_dim, rank, tie_weights=True, reverse_dtype=None, logit_soft_cap=None,
                 **kwargs):
        weights = kwargs.pop("weights", None)
        super().__init__(input_dim, output_dim, rank, **kwargs)
        self.tie_weights = tie_weights
        self.reverse_dtype = reverse_dtype
        self.logit_soft_cap = logit_soft_cap
        limits.check_weight_count(self, self._weight_shapes(), self._max_weights)  # with the untied projection
        if weights is not None:
            self.build()
            self.set_weights(list(weights))

    def call(self, inputs, reverse=False):
        if not reverse:
            result = super().call(inputs)
            mask = keras.layers.Embedding.compute_mask(self, inputs)
            if mask is not None:
                engine.set_mask(result, mask)
            return result
        if self.tie_weights:
            table, projection = self.factors()

            def project(hidden):
                return ops.matmul(ops.matmul(hidden, ops.transpose(projection)), ops.transpose(table))
        else:
            kernel = self._reverse_kernel()

            def project(hidden):
                return ops.matmul(hidden, kernel)

        return reverse_logits(self, inputs, project)

    def compute_mask(self, inputs, mask=None):
        return None


def embedding_factors(layer, rank, reduction, singular_values):
    if not layer.built:
        raise ValueError(f"Embedding {layer.name!r} is not built yet: it has no weights to factorize")
    if layer.quantization_mode is not None or getattr(layer, "lora_enabled", False):
        raise ValueError(f"Embedding {layer.name!r} is quantized or has LoRA enabled; factorize a plain float Embedding")
    if (rank is None) == (reduction is None):
        raise ValueError("pass exactly one of rank= or reduction=")
    if rank is None:
        rank = rank_for_reduction(layer.input_dim, layer.output_dim, reduction)
    first, second = svd_factors(keras.ops.convert_to_numpy(layer.embeddings), rank, singular_values)
    return rank, first, second




def check_reduction(reduction):
    if isinstance(reduction, bool) or not isinstance(reduction, numbers.Real):
        raise TypeError(f"reduction must be a number in [0, 1), got {type(reduction).__name__} {reduction!r}")
    if not 0 <= reduction < 1:  # NaN fails this too
        raise ValueError(f"reduction must be in [0, 1), got {reduction!r}")
    return float(reduction)
