"""Low-rank embedding by truncated SVD, trained online.

Acharya et al., "Online Embedding Compression for Text Classification using Low Rank Matrix
Factorization" (AAAI 2019), Section 3: a trained embedding W (V x d) is replaced by
U_k S_k (V x k) followed by Vt_k (k x d), with k = floor((1 - p) V d / (V + d)) for a
parameter reduction p, and both factors keep training so the accuracy lost by truncation
comes back.
"""

import math

import keras
import numpy as np
from keras import ops

__all__ = [
    "FactorizedEmbedding",
    "compress_embeddings",
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
    if not 0 <= reduction < 1:
        raise ValueError(f"reduction must be in [0, 1), got {reduction!r}")
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


@keras.saving.register_keras_serializable(package="keras_compress")
class FactorizedEmbedding(keras.layers.Layer):
    """An embedding stored as two trainable factors: a V x k lookup table and a k x d projection.

    A drop-in for ``keras.layers.Embedding``: same inputs, outputs and mask, with
    k (V + d) parameters instead of V d. Build one from a trained embedding with
    :meth:`from_embedding`, or let :func:`compress_embeddings` /
    :class:`keras_compress.callbacks.EmbeddingCompression` do it for a whole model.

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
        **kwargs,
    ):
        for argument, value in (("input_dim", input_dim), ("output_dim", output_dim), ("rank", rank)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{argument} must be a positive integer, got {value!r}")
        super().__init__(**kwargs)
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.rank = int(rank)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.projection_initializer = keras.initializers.get(projection_initializer)
        self.embeddings_regularizer = keras.regularizers.get(embeddings_regularizer)
        self.projection_regularizer = keras.regularizers.get(projection_regularizer)
        self.embeddings_constraint = keras.constraints.get(embeddings_constraint)
        self.projection_constraint = keras.constraints.get(projection_constraint)
        self.mask_zero = mask_zero
        self.supports_masking = mask_zero
        # Integer ids must not be cast to the float compute dtype on the way in.
        self.autocast = False
        if weights is not None:
            self.build()
            self.set_weights(list(weights))

    def build(self, input_shape=None):
        if self.built:
            return
        self.embeddings = self.add_weight(
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
        self.built = True

    def call(self, inputs):
        if inputs.dtype not in ("int32", "int64"):
            inputs = ops.cast(inputs, "int32")
        # Gather k numbers per token first, then project: V k + k d parameters and
        # tokens x k x d work, never the V x d product.
        low_rank = ops.take(self.embeddings, inputs, axis=0)
        return ops.cast(ops.matmul(low_rank, self.projection), self.compute_dtype)

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return ops.not_equal(inputs, 0)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype=self.compute_dtype)

    @property
    def embedding_matrix(self):
        """The full V x d matrix the two factors represent (for analysis; large)."""
        return ops.matmul(self.embeddings, self.projection)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "input_dim": self.input_dim,
                "output_dim": self.output_dim,
                "rank": self.rank,
                "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
                "projection_initializer": keras.initializers.serialize(self.projection_initializer),
                "embeddings_regularizer": keras.regularizers.serialize(self.embeddings_regularizer),
                "projection_regularizer": keras.regularizers.serialize(self.projection_regularizer),
                "embeddings_constraint": keras.constraints.serialize(self.embeddings_constraint),
                "projection_constraint": keras.constraints.serialize(self.projection_constraint),
                "mask_zero": self.mask_zero,
            }
        )
        return config

    @classmethod
    def from_embedding(cls, layer, rank=None, reduction=None, singular_values=DEFAULT_SINGULAR_VALUES, name=None):
        """Factorize a built ``keras.layers.Embedding`` by truncated SVD of its matrix.

        Args:
            layer: a built ``Embedding`` (its name, dtype, mask_zero, initializer, regularizer
                and constraint carry over; the regularizer and constraint go to the V x k table).
            rank: k; or give ``reduction`` instead.
            reduction: fraction p of parameters to remove; k = floor((1-p) V d / (V + d)).
            singular_values: "first", "second" or "split" (see :func:`svd_factors`).
            name: name of the new layer (default: the old layer's, so a model's layer names
                do not change).

        Returns:
            A built ``FactorizedEmbedding`` whose output is the rank-k approximation of ``layer``'s.
        """
        if not isinstance(layer, keras.layers.Embedding):
            raise TypeError(f"from_embedding needs a keras.layers.Embedding, got {type(layer).__name__}")
        if not layer.built:
            raise ValueError(f"Embedding {layer.name!r} is not built yet: it has no weights to factorize")
        if layer.quantization_mode is not None or getattr(layer, "lora_enabled", False):
            raise ValueError(f"Embedding {layer.name!r} is quantized or has LoRA enabled; factorize a plain float Embedding")
        if (rank is None) == (reduction is None):
            raise ValueError("pass exactly one of rank= or reduction=")
        if rank is None:
            rank = rank_for_reduction(layer.input_dim, layer.output_dim, reduction)
        first, second = svd_factors(keras.ops.convert_to_numpy(layer.embeddings), rank, singular_values)
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


def _is_target(layer, layers):
    if type(layer) is not keras.layers.Embedding:  # subclasses may change call()
        return False
    return layers is None or layer.name in layers or layer in layers


def _check_layers_argument(model, layers):
    if layers is None:
        return None
    if isinstance(layers, (str, keras.layers.Layer)):
        layers = [layers]
    names = {layer.name for layer in model._flatten_layers(include_self=False)}
    missing = [item for item in layers if isinstance(item, str) and item not in names]
    if missing:
        raise ValueError(f"No layer named {missing} in model {model.name!r}; it has {sorted(names)}")
    return list(layers)


def _targets(model, layers):
    found = [layer for layer in model._flatten_layers(include_self=False) if _is_target(layer, layers)]
    if not found:
        raise ValueError(
            f"Model {model.name!r} has no keras.layers.Embedding to factorize"
            + (f" among {layers}" if layers is not None else "")
        )
    return found


def _factorize(layer, reduction, rank, singular_values):
    return FactorizedEmbedding.from_embedding(
        layer, rank=rank, reduction=None if rank is not None else reduction, singular_values=singular_values
    )


def compress_embeddings(
    model, reduction=0.9, layers=None, rank=None, singular_values=DEFAULT_SINGULAR_VALUES, in_place=False
):
    """Replace Embedding layers of a trained model by SVD-initialized FactorizedEmbeddings.

    Every other layer keeps its exact weights. Train the result further ("online") to win
    back the accuracy lost by truncation, or use it as is.

    Args:
        model: a built Functional, Sequential or subclassed Keras model.
        reduction: fraction of each embedding's parameters to remove (paper's p).
        layers: names or layer objects to factorize (default: every ``keras.layers.Embedding``).
        rank: a fixed k instead of ``reduction``.
        singular_values: "first", "second" or "split" (see :func:`svd_factors`).
        in_place: change ``model`` itself instead of returning a copy. Subclassed models are
            always changed in place (their embedding attributes are reassigned), since Keras
            cannot clone them. The model must be re-compiled (or see
            :class:`keras_compress.callbacks.EmbeddingCompression`, which handles the optimizer).

    Returns:
        The compressed model (a clone with copied weights for Functional and Sequential models
        unless ``in_place``).

    Raises:
        ValueError: no Embedding to factorize, unknown layer names, a bad reduction, or a
            subclassed model whose embeddings are not plain attributes.

    Example:

    ```python
    model.fit(x, y, epochs=5)
    small = keras_compress.compress_embeddings(model, reduction=0.9)
    small.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    small.fit(x, y, epochs=2)
    ```
    """
    if not model.built:
        raise ValueError(f"Model {model.name!r} is not built: train or build it before compressing")
    layers = _check_layers_argument(model, layers)
    targets = _targets(model, layers)
    replacements = {id(layer): _factorize(layer, reduction, rank, singular_values) for layer in targets}
    if isinstance(model, keras.Sequential) or _is_functional(model):
        if in_place:
            _swap_in_graph(model, replacements)
            return model
        return _clone_with(model, replacements)
    _swap_attributes(model, replacements)
    _forget_compiled_functions(model)
    return model


def _is_functional(model):
    # Functional models (and the graph Sequential builds) keep their layer DAG here.
    return hasattr(model, "_nodes_by_depth")


def _same_inputs(model):
    """Fresh ``keras.Input`` tensors with the names, shapes and dtypes of the model's inputs."""
    if isinstance(model, keras.Sequential):
        return None  # clone_model rebuilds Sequential models from their InputLayer.

    def fresh(tensor):
        history = tensor._keras_history
        return keras.Input(batch_shape=tensor.shape, dtype=tensor.dtype, name=history.operation.name)

    return keras.tree.map_structure(fresh, model._inputs_struct)


def _clone_with(model, replacements):
    originals = {}

    def clone_layer(layer):
        if id(layer) in replacements:
            return replacements[id(layer)]
        if isinstance(layer, keras.Model) and any(
            id(inner) in replacements for inner in layer._flatten_layers(include_self=False)
        ):
            return _clone_with(layer, replacements)
        clone = layer.__class__.from_config(layer.get_config())
        originals[id(clone)] = layer
        return clone

    clone = keras.models.clone_model(model, input_tensors=_same_inputs(model), clone_function=clone_layer)
    for layer in clone._flatten_layers(include_self=False, recursive=False):
        source = originals.get(id(layer))
        if source is not None:
            layer.set_weights(source.get_weights())
    return clone


def _swap_in_graph(model, replacements):
    """Put new layers in place of old ones, keeping the model object (for use inside fit).

    The graph is traced again through the *same* layer objects (only the replaced ones
    differ), then the model adopts that graph; no other weight is touched or copied.
    """
    for inner in list(model._flatten_layers(include_self=False, recursive=False)):
        owned = {
            key: value
            for key, value in replacements.items()
            if any(id(layer) == key for layer in inner._flatten_layers(include_self=False))
        }
        if isinstance(inner, keras.Model) and owned:
            # A nested model keeps its identity too: swap inside it first.
            if isinstance(inner, keras.Sequential) or _is_functional(inner):
                _swap_in_graph(inner, owned)
            else:
                _swap_attributes(inner, owned)
    if isinstance(model, keras.Sequential):
        for old_id, new in replacements.items():
            for index, layer in enumerate(model._layers):
                if id(layer) == old_id:
                    model._layers[index] = new
        model._maybe_rebuild()
    else:
        traced = keras.models.clone_model(
            model,
            input_tensors=_same_inputs(model),
            clone_function=lambda layer: replacements.get(id(layer), layer),
        )
        previous = getattr(model, "_self_setattr_tracking", True)
        object.__setattr__(model, "_self_setattr_tracking", False)
        try:
            for attribute in GRAPH_ATTRIBUTES:
                object.__setattr__(model, attribute, getattr(traced, attribute))
        finally:
            object.__setattr__(model, "_self_setattr_tracking", previous)
        model._layers[:] = list(traced._layers)
    _forget_compiled_functions(model)


# What keras.src.ops.function.Function.__init__ derives from (inputs, outputs).
GRAPH_ATTRIBUTES = (
    "_inputs_struct",
    "_outputs_struct",
    "_inputs",
    "_outputs",
    "_nodes",
    "_nodes_by_depth",
    "_operations",
    "_operations_by_depth",
)


def _forget_compiled_functions(model):
    # Keras caches traced train/test/predict functions; they captured the old layers.
    for attribute in ("train_function", "test_function", "predict_function"):
        if hasattr(model, attribute):
            setattr(model, attribute, None)


def _swap_attributes(model, replacements):
    swapped = 0
    for owner in model._flatten_layers(include_self=True):
        for attribute, value in list(vars(owner).items()):
            if attribute.startswith("__") or not isinstance(value, keras.layers.Layer):
                continue
            new = replacements.get(id(value))
            if new is None:
                continue
            owner._tracker.unlock()
            object.__setattr__(owner, attribute, new)
            owner._tracker.lock()
            owner._layers[:] = [new if item is value else item for item in owner._layers]
            swapped += 1
    if swapped < len(replacements):
        raise ValueError(
            f"Model {model.name!r} is subclassed and keeps some Embedding layers outside plain "
            "attributes (in a list or dict?); cannot replace them. Build the model with the "
            "Functional API, or use FactorizedEmbedding.from_embedding() in your own code."
        )
