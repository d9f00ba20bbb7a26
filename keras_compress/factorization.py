"""Online embedding compression: factorize a trained model's embeddings in place, at every depth.

Acharya et al., "Online Embedding Compression for Text Classification using Low Rank Matrix
Factorization" (AAAI 2019), Section 3: each trained embedding W (V x d) becomes the
`keras_compress.layers.FactorizedEmbedding` U_k S_k / Vt_k, and training goes on. This module is
the rule (which layers, what they become, how); `keras_compress.engine` applies it.
"""

import keras

from keras_compress import engine
from keras_compress.layers.factorized_embedding import (
    DEFAULT_SINGULAR_VALUES,
    SINGULAR_VALUE_PLACEMENTS,
    FactorizedEmbedding,
    FactorizedReversibleEmbedding,
    check_positive_int,
    check_reduction,
    embedding_factors,
    rank_for_reduction,
)

__all__ = ["compress_embeddings", "plan_compression", "FACTORIZE"]


def _targets():
    """Exact classes compress_embeddings changes, and the class each becomes. Subclasses are
    left alone (they may compute something else) and named in the warning."""
    return engine.keras_hub_alias({
        keras.layers.Embedding: FactorizedEmbedding,
        keras.layers.ReversibleEmbedding: FactorizedReversibleEmbedding,
    }, "ReversibleEmbedding")


def _considers(site):
    return isinstance(site.layer, keras.layers.Embedding) and not isinstance(site.layer, FactorizedEmbedding)


def _check(layer, reduction=0.9, rank=None, singular_values=DEFAULT_SINGULAR_VALUES):
    """Why not to factorize ``layer`` at this reduction (None if it is worth it), and its rank."""
    try:
        layer_rank = rank if rank is not None else rank_for_reduction(layer.input_dim, layer.output_dim, reduction)
    except ValueError as error:
        return str(error), {}
    if layer_rank * (layer.input_dim + layer.output_dim) >= layer.input_dim * layer.output_dim:
        return f"rank {layer_rank} would not make the {layer.input_dim} x {layer.output_dim} table smaller", {}
    if layer_rank > min(layer.input_dim, layer.output_dim):
        return f"rank {layer_rank} > min({layer.input_dim}, {layer.output_dim})", {}
    return None, {"rank": layer_rank, "singular_values": singular_values}


def _factorize(layer, swap, rank, singular_values):
    """The V x d table becomes the truncated-SVD factors: the layer keeps its name, mask, dtype,
    trainable flag, untied output projection and every reference to it."""
    rank, first, second = embedding_factors(layer, rank, None, singular_values)
    old_table = engine.embedding_table(layer)
    swap()
    layer._set_factorization(rank)
    table, projection = engine.replace_variables(layer, [old_table], layer._add_factors)
    table.assign(first)
    projection.assign(second)


FACTORIZE = engine.Rule(
    name="factorize",
    function="compress_embeddings",
    targets=_targets,
    considers=_considers,
    check=_check,
    convert=_factorize,
    noun="embedding",
    nothing="has no embedding to factorize",
    left="compress_embeddings left these embeddings uncompressed",
    merged=("these factorized embeddings are created by their parent layer's code, so a .keras file "
            "stores their merged V x d product and they reload as plain embeddings with equal outputs "
            "(export_tflite from this model keeps them factorized)"),
)


def compress_embeddings(model: keras.layers.Layer, reduction: float = 0.9, layers: engine.LayerChoice = None,
                        rank: int | None = None, singular_values: str = DEFAULT_SINGULAR_VALUES) -> keras.layers.Layer:
    """Factorize a trained model's embeddings by truncated SVD, in place, at every depth.

    Every ``keras.layers.Embedding`` and ``ReversibleEmbedding`` (keras-hub's token embedding,
    tied output projection included) is found wherever it is - in the model, a nested model, a
    custom layer, a keras-hub backbone - and becomes a :class:`FactorizedEmbedding` /
    :class:`FactorizedReversibleEmbedding` in place: the model object, its class and methods,
    layer names, frozen flags and every other weight stay as they are. Train further ("online")
    to win back the accuracy lost by truncation (re-compile first), or use it as is.

    Nothing is silent: an embedding found but not factorized (a table too small for the
    reduction, a subclass with its own ``call``, a quantized or LoRA layer) is named in one
    warning; the call raises if nothing can be factorized or a layer named in ``layers`` cannot.
    Embeddings whose parent creates them in code (custom layers, keras-hub) save to ``.keras``
    as the merged V x d product and reload as the plain layer with equal outputs (named in a
    second warning); see docs/embedding_compression.md.

    Args:
        model: a built Keras model (Functional, Sequential, subclassed, keras-hub).
        reduction: fraction of each embedding's parameters to remove (paper's p), in [0, 1).
        layers: names (or paths like ``"block/embedding"``), layer objects, or a predicate
            ``layer -> bool`` choosing the embeddings (default: all).
        rank: a fixed k instead of ``reduction``.
        singular_values: "first", "second" or "split" (see :func:`svd_factors`).

    Returns:
        ``model`` itself, changed.

    Raises:
        TypeError, ValueError: bad arguments (before any work), no embedding to factorize, an
            unknown layer name, or a named layer that cannot be factorized.

    Example:

    ```python
    model.fit(x, y, epochs=5)
    keras_compress.compress_embeddings(model, reduction=0.9)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2)
    ```
    """
    return engine.apply(model, plan_compression(model, reduction, layers, rank, singular_values))


def check_compression_arguments(reduction, rank, singular_values):
    """Validate ``reduction``/``rank``/``singular_values`` before any work."""
    if rank is None:
        check_reduction(reduction)
    else:
        check_positive_int("rank", rank)
    if singular_values not in SINGULAR_VALUE_PLACEMENTS:
        raise ValueError(f"singular_values must be one of {SINGULAR_VALUE_PLACEMENTS}, got {singular_values!r}")


def plan_compression(model: keras.layers.Layer, reduction: float = 0.9, layers: engine.LayerChoice = None,
                     rank: int | None = None, singular_values: str = DEFAULT_SINGULAR_VALUES) -> engine.Plan:
    """What :func:`compress_embeddings` would do, without doing it (an `engine.Plan`; carry it
    out with `engine.apply`)."""
    engine.check_model(model, "compress_embeddings")
    check_compression_arguments(reduction, rank, singular_values)
    return engine.plan(model, FACTORIZE, layers, reduction=reduction, rank=rank, singular_values=singular_values)
