"""Quantization-aware training: make a model's weights train fake-quantized, in place, at every
depth, and strip it for deployment (Jacob et al. 2018, sec. 3; Prato 2019, M.Sc. thesis, sec. 5.2).
The layers and the quantizer are in `keras_compress.layers.quantized`.
"""

import sys

import keras
from keras import ops

from keras_compress import engine
from keras_compress.layers.factorized_embedding import FactorizedEmbedding, FactorizedReversibleEmbedding
from keras_compress.layers.quantized import (
    FakeQuantized,
    QuantizedDense,
    QuantizedEinsumDense,
    QuantizedEmbedding,
    QuantizedFactorizedEmbedding,
    QuantizedFactorizedReversibleEmbedding,
    QuantizedMultiHeadAttention,
    QuantizedReversibleEmbedding,
    check_bits,
    quantize_codes,
)

__all__ = ["quantize_model", "strip", "finalize", "quantized_weights", "quantized_codes", "is_quantized"]


def _quantizable_classes():
    """Exact classes quantize_model changes, and the class each becomes."""
    classes = {
        keras.layers.Dense: QuantizedDense,
        keras.layers.EinsumDense: QuantizedEinsumDense,
        keras.layers.Embedding: QuantizedEmbedding,
        keras.layers.ReversibleEmbedding: QuantizedReversibleEmbedding,
        FactorizedEmbedding: QuantizedFactorizedEmbedding,
        FactorizedReversibleEmbedding: QuantizedFactorizedReversibleEmbedding,
    }
    hub = sys.modules.get("keras_hub")
    if hub is not None:
        classes[hub.layers.ReversibleEmbedding] = QuantizedReversibleEmbedding
    return classes


_FLOAT_CLASS = {
    QuantizedDense: keras.layers.Dense,
    QuantizedEinsumDense: keras.layers.EinsumDense,
    QuantizedEmbedding: keras.layers.Embedding,
    QuantizedReversibleEmbedding: keras.layers.ReversibleEmbedding,
    QuantizedFactorizedEmbedding: FactorizedEmbedding,
    QuantizedFactorizedReversibleEmbedding: FactorizedReversibleEmbedding,
}


def is_quantized(layer):
    """Whether `layer` is one of this module's fake-quantized layers."""
    return isinstance(layer, FakeQuantized)


def _quantize_in_place(layer, bits, merge_on_save):
    float_class = type(layer)
    target = _quantizable_classes()[engine.base_class(layer)]
    # The class the layer's parent re-creates on load: the user's own, before any of our changes.
    user_class = vars(layer).get("original_class", float_class)
    engine.change_class(layer, target, saved_as=user_class if merge_on_save else None, bits=bits,
                        merge_on_save=merge_on_save, float_class=float_class)


def _has_float_kernel(layer):
    return any(len(variable.shape) >= 2 and "float" in str(variable.dtype) for variable in layer.weights)


def quantize_model(model, bits=8, layers=None, exclude=None):
    """Make `model` train with fake-quantized weights, in place (quantization-aware training,
    Jacob et al. 2018; Prato 2019 sec. 5.2).

    Every Dense, EinsumDense (so every projection of `MultiHeadAttention`, keras-hub's cached
    attention included), Embedding, ReversibleEmbedding (tied logits included) and
    FactorizedEmbedding is found at every depth - in nested models, custom layers, keras-hub
    backbones and tasks - and changed in place to its `Quantized*` subclass, keeping its
    weights, name, frozen flag and every reference to it: the model keeps its class and methods
    (a keras-hub `CausalLM` still generates). Biases, normalization layers and activations stay
    float. Compile and fit as usual (also under `tf.distribute.MirroredStrategy` and
    `keras.distribution.DataParallel`); `strip(model)` then puts the weights on the grid.

    Nothing is silent: every layer with a float kernel that is not quantized (an LSTM, a
    convolution, keras-hub's `PositionEmbedding`, a subclass of Dense) is named in one warning.
    `.keras` files: layers whose config the file records reload quantized with their float
    master weights; layers their parent creates in code (custom layers, attention
    projections, keras-hub internals) save their weights on the grid and reload as the plain
    Keras layer with equal outputs (see docs/transformer_compression.md).

    Args:
        model: a built Keras model.
        bits: integer in 2..8, weight bit width.
        layers: None to quantize every supported layer, names/paths/layer objects, or a
            predicate `layer -> bool`.
        exclude: names/paths/layer objects or a predicate of layers to leave float.

    Returns:
        `model` itself, changed (re-compile it before training).

    Example:
    >>> inputs = keras.Input((3,))
    >>> model = keras.Model(inputs, keras.layers.Dense(2, name="out")(inputs))
    >>> qat = quantize_model(model, bits=8)
    >>> type(qat.get_layer("out")).__name__, qat is model
    ('QuantizedDense', True)
    """
    bits = check_bits(bits)
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"quantize_model needs a Keras model, got {type(model).__name__}")
    if not model.built:
        raise ValueError(f"Model {model.name!r} is not built: build or call it before quantize_model")
    sites = engine.walk(model)
    chosen = engine.select(sites, "layers", layers)
    excluded = engine.select(sites, "exclude", exclude)
    classes = _quantizable_classes()
    convert, skipped, restored_plain = [], [], []
    for site in sites:
        layer = site.layer
        if not site.leaf or is_quantized(layer) or not _has_float_kernel(layer):
            continue
        if excluded is not None and excluded(site) or chosen is not None and not chosen(site):
            continue
        if engine.base_class(layer) not in classes:
            skipped.append(f"{site.path} ({type(layer).__name__})")
        elif layer.quantization_mode is not None or getattr(layer, "lora_enabled", False):
            skipped.append(f"{site.path} ({type(layer).__name__}, already quantized or LoRA)")
        else:
            convert.append(site)
    if not convert:
        raise ValueError(
            f"Model {model.name!r} has no layer quantize_model can quantize"
            + (f"; found but skipped: {', '.join(skipped)}" if skipped else "")
        )
    for site in convert:
        _quantize_in_place(site.layer, bits, merge_on_save=not site.restorable)
    _mark_restorable_attention(sites, bits)
    restored_plain = [site.path for site in convert if site.layer.merge_on_save]
    engine.after_change(model)
    engine.warn_once(f"quantize_model left these layers float ({len(convert)} quantized)", skipped)
    if restored_plain:
        engine.warn_once(
            f"{len(restored_plain)} of {len(convert)} quantized layers are created by their parent "
            "layer's code; a .keras file stores their weights on the grid and they reload as float "
            "layers with equal outputs (export_tflite from this model emits int8 kernels)",
            restored_plain[:5] + ([f"... {len(restored_plain) - 5} more"] if len(restored_plain) > 5 else []),
        )
    return model


def _mark_restorable_attention(sites, bits):
    """A plain MultiHeadAttention whose config the file records becomes a
    QuantizedMultiHeadAttention, whose build() quantizes its projections again on load: they
    can then save their float master weights."""
    for site in sites:
        layer = site.layer
        if type(layer) is not keras.layers.MultiHeadAttention or not site.restorable:
            continue
        projections = [child for child in engine.children(layer) if isinstance(child, keras.layers.EinsumDense)]
        if projections and all(is_quantized(child) and child.bits == bits for child in projections):
            engine.change_class(layer, QuantizedMultiHeadAttention, bits=bits, float_class=type(layer))
            for child in projections:
                engine.change_class(child, engine.base_class(child), merge_on_save=False)


def quantized_weights(model):
    """(layer, float variable, fake-quantized value) for every quantized weight in `model`."""
    for layer in engine.all_layers(model) + [model]:
        if is_quantized(layer):
            for variable, value in layer.quantized_weights():
                yield layer, variable, value


def strip(model):
    """Make `model` deployable, in place: every `Quantized*` layer gets its weights replaced by
    their fake-quantized values (at most 2^bits levels per tensor) and its float class back.

    Its outputs equal those of the quantized model; exporting it (or the quantized model) with
    `keras_compress.export_tflite(..., quantization="int8")` gives int8 kernels. Returns
    `model`.
    """
    for layer, variable, value in list(quantized_weights(model)):
        variable.assign(value)
    for layer in engine.all_layers(model) + [model]:
        if isinstance(layer, QuantizedMultiHeadAttention):
            engine.change_class(layer, vars(layer).get("float_class", keras.layers.MultiHeadAttention))
            for attribute in ("bits", "float_class"):
                vars(layer).pop(attribute, None)
        if is_quantized(layer):
            original = vars(layer).get("float_class") or _FLOAT_CLASS[engine.base_class(layer)]
            engine.change_class(layer, original)
            # A factorized layer keeps merge_on_save: its own save rule uses it.
            dropped = ("bits", "float_class") if isinstance(layer, FactorizedEmbedding) else (
                "bits", "float_class", "merge_on_save")
            for attribute in dropped:
                if attribute in vars(layer):
                    object.__delattr__(layer, attribute)
    engine.after_change(model)
    return model


finalize = strip


def quantized_codes(model):
    """Integer codes of every quantized weight: `{variable path: (codes, scale, offset)}` with
    `codes` uint8 and `codes * scale + offset` the weight used by the quantized model."""
    return {
        variable.path: quantize_codes(ops.convert_to_numpy(variable), layer.bits)
        for layer, variable, _ in quantized_weights(model)
    }
