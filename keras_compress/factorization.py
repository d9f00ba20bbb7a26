"""Online embedding compression: factorize a trained model's embeddings in place, at every depth.

Acharya et al., "Online Embedding Compression for Text Classification using Low Rank Matrix
Factorization" (AAAI 2019), Section 3: each trained embedding W (V x d) becomes the
`keras_compress.layers.FactorizedEmbedding` U_k S_k / Vt_k, and training goes on.
"""

import sys

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

__all__ = ["compress_embeddings", "factorize_in_place", "plan_compression", "apply_compression"]


def _factorizable_classes():
    """Exact classes compress_embeddings changes, and the class each becomes. Subclasses are
    left alone (they may compute something else) and named in the warning."""
    classes = {
        keras.layers.Embedding: FactorizedEmbedding,
        keras.layers.ReversibleEmbedding: FactorizedReversibleEmbedding,
    }
    hub = sys.modules.get("keras_hub")
    if hub is not None:  # keras-hub's alias adds nothing to Keras's ReversibleEmbedding
        classes[hub.layers.ReversibleEmbedding] = FactorizedReversibleEmbedding
    return classes


def factorize_in_place(layer, rank=None, reduction=None, singular_values=DEFAULT_SINGULAR_VALUES, merge_on_save=False):
    """Turn a built ``Embedding`` or ``ReversibleEmbedding`` into its factorized class in place.

    The layer object keeps its name, mask, dtype, trainable flag, untied output projection and
    every reference to it; its V x d table is replaced by the truncated-SVD factors. Create it
    inside the model's distribution scope (``engine.model_scope``) when one is in use.
    """
    target = _factorizable_classes().get(engine.base_class(layer))
    if target is None:
        raise TypeError(f"cannot factorize {type(layer).__name__} {layer.name!r}; supported: Embedding, ReversibleEmbedding")
    rank, first, second = embedding_factors(layer, rank, reduction, singular_values)
    old_table = keras.layers.Embedding.embeddings.fget(layer)
    original_class = type(layer)
    engine.change_class(layer, target, saved_as=original_class if merge_on_save else None)
    layer._set_factorization(rank)
    layer.original_class = original_class
    layer.merge_on_save = merge_on_save
    table, projection = engine.replace_variables(layer, [old_table], layer._add_factors)
    table.assign(first)
    projection.assign(second)
    return layer


def compress_embeddings(model, reduction=0.9, layers=None, rank=None, singular_values=DEFAULT_SINGULAR_VALUES):
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
    plan = plan_compression(model, reduction, layers, rank, singular_values)
    return apply_compression(model, plan)


def check_compression_arguments(reduction, rank, singular_values):
    """Validate ``reduction``/``rank``/``singular_values`` before any work."""
    if rank is None:
        check_reduction(reduction)
    else:
        check_positive_int("rank", rank)
    if singular_values not in SINGULAR_VALUE_PLACEMENTS:
        raise ValueError(f"singular_values must be one of {SINGULAR_VALUE_PLACEMENTS}, got {singular_values!r}")


def plan_compression(model, reduction=0.9, layers=None, rank=None, singular_values=DEFAULT_SINGULAR_VALUES):
    """What :func:`compress_embeddings` would do, without doing it: a dict with ``convert``
    (list of (Site, rank)), ``skipped`` (list of "path (reason)"), and the arguments."""
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"compress_embeddings needs a Keras model, got {type(model).__name__}")
    check_compression_arguments(reduction, rank, singular_values)
    if not model.built:
        raise ValueError(f"Model {model.name!r} is not built: train or build it before compressing")
    sites = engine.walk(model)
    chosen = engine.select(sites, "layers", layers)
    classes = _factorizable_classes()
    convert, skipped, refused = [], [], []
    for site in sites:
        layer = site.layer
        if not isinstance(layer, keras.layers.Embedding) or isinstance(layer, FactorizedEmbedding):
            continue
        if chosen is not None and not chosen(site):
            continue
        reason = None
        if hasattr(layer, "bits"):
            reason = "fake-quantized: compress_embeddings before quantize_model"
        elif engine.base_class(layer) not in classes:
            reason = f"{type(layer).__name__} is a subclass with its own computation"
        elif layer.quantization_mode is not None or getattr(layer, "lora_enabled", False):
            reason = "quantized or LoRA-enabled"
        elif not layer.built:
            reason = "not built"
        else:
            try:
                layer_rank = rank if rank is not None else rank_for_reduction(layer.input_dim, layer.output_dim, reduction)
            except ValueError as error:
                layer_rank, reason = None, str(error)
            if layer_rank is not None:
                if layer_rank * (layer.input_dim + layer.output_dim) >= layer.input_dim * layer.output_dim:
                    reason = f"rank {layer_rank} would not make the {layer.input_dim} x {layer.output_dim} table smaller"
                elif layer_rank > min(layer.input_dim, layer.output_dim):
                    reason = f"rank {layer_rank} > min({layer.input_dim}, {layer.output_dim})"
        if reason is None:
            convert.append((site, layer_rank))
        elif chosen is not None and layers is not None and not callable(layers):
            refused.append(f"{site.path} ({reason})")
        else:
            skipped.append(f"{site.path} ({reason})")
    if refused:
        raise ValueError(f"cannot factorize the embeddings named in layers=: {'; '.join(refused)}")
    if not convert:
        raise ValueError(
            f"Model {model.name!r} has no embedding to factorize"
            + (f" among {layers}" if layers is not None else "")
            + (f"; found but skipped: {'; '.join(skipped)}" if skipped else "")
        )
    return {"convert": convert, "skipped": skipped, "singular_values": singular_values}


def apply_compression(model, plan):
    """Carry out a :func:`plan_compression` plan on ``model`` (in its distribution scope)."""
    merged = []
    with engine.model_scope(model):
        for site, layer_rank in plan["convert"]:
            factorize_in_place(site.layer, rank=layer_rank, singular_values=plan["singular_values"],
                               merge_on_save=not site.restorable)
            if not site.restorable:
                merged.append(site.path)
    engine.after_change(model)
    engine.warn_once("compress_embeddings left these embeddings uncompressed", plan["skipped"], stacklevel=4)
    engine.warn_once(
        "these factorized embeddings are created by their parent layer's code, so a .keras file "
        "stores their merged V x d product and they reload as plain embeddings with equal outputs "
        "(export_tflite from this model keeps them factorized)",
        merged,
        stacklevel=4,
    )
    return model
