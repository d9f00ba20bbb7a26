"""Quantization-aware training: make a model's weights train fake-quantized, in place, at every
depth, and strip it for deployment (Jacob et al. 2018, sec. 3; Prato 2019, M.Sc. thesis, sec. 5.2).
This module is the rule (which layers, what they become); `keras_compress.engine` applies and
reverts it. The layers and the quantizer are in `keras_compress.layers.quantized`.
"""

from typing import Any, Iterator

import keras
import numpy as np
from keras import ops

from keras_compress import engine
from keras_compress.layers.factorized_embedding import FactorizedEmbedding, FactorizedReversibleEmbedding
from keras_compress.layers import quantized
from keras_compress.layers.quantized import FakeQuantized, QuantizedMultiHeadAttention, check_bits, quantize_codes

__all__ = ["quantize_model", "strip", "finalize", "quantized_weights", "quantized_codes", "is_quantized", "QUANTIZE"]


# The exact classes quantize_model changes, and the class each becomes.
_QUANTIZED_CLASS = {
    keras.layers.Dense: quantized.QuantizedDense,
    keras.layers.EinsumDense: quantized.QuantizedEinsumDense,
    keras.layers.Embedding: quantized.QuantizedEmbedding,
    keras.layers.ReversibleEmbedding: quantized.QuantizedReversibleEmbedding,
    FactorizedEmbedding: quantized.QuantizedFactorizedEmbedding,
    FactorizedReversibleEmbedding: quantized.QuantizedFactorizedReversibleEmbedding,
}
# The float class of each quantized class, for layers built as quantized ones (no recorded change).
_FLOAT_CLASS = {new: old for old, new in _QUANTIZED_CLASS.items()}
_FLOAT_CLASS[QuantizedMultiHeadAttention] = keras.layers.MultiHeadAttention


def _targets():
    return engine.keras_hub_alias(_QUANTIZED_CLASS, "ReversibleEmbedding")


def is_quantized(layer: object) -> bool:
    """Whether `layer` is one of the fake-quantized layers of `keras_compress.layers.quantized`."""
    return isinstance(layer, FakeQuantized)


def _considers(site):
    """Leaves with a float kernel (2-D or more) that are not fake-quantized yet."""
    return site.leaf and not is_quantized(site.layer) and any(
        len(variable.shape) >= 2 and "float" in str(variable.dtype) for variable in site.layer.weights)


def _check(layer, bits=8):
    return None, {"bits": bits}


def _quantize(layer, swap, bits):
    swap(bits=bits)


def _restorable_attention(sites, bits=8):
    """A plain MultiHeadAttention whose config the file records becomes a
    QuantizedMultiHeadAttention, whose build() quantizes its projections again on load: they
    can then save their float master weights."""
    for site in sites:
        layer = site.layer
        if type(layer) is not keras.layers.MultiHeadAttention or not site.restorable or not layer.built:
            continue
        projections = list(engine.attention_projections(layer).values())
        if all(is_quantized(child) and child.bits == bits for child in projections):
            engine.change(layer, QuantizedMultiHeadAttention, "quantize", bits=bits)
            for child in projections:
                engine.now_restorable(child)


def _unrecorded(layer):
    """A layer built as a quantized one (or reloaded from a file): its float class, without `bits`."""
    float_class = _FLOAT_CLASS.get(engine.base_class(layer))
    return None if float_class is None else engine.Change("quantize", float_class, ("bits",))


def _on_the_grid(layer):
    if is_quantized(layer):
        for variable, value in layer.quantized_weights():
            variable.assign(value)


QUANTIZE = engine.Rule(
    name="quantize",
    function="quantize_model",
    targets=_targets,
    considers=_considers,
    check=_check,
    convert=_quantize,
    finish=_restorable_attention,
    restore=_on_the_grid,
    unrecorded=_unrecorded,
    noun="layer",
    nothing="has no layer quantize_model can quantize",
    left="quantize_model left these layers float ({converted} quantized)",
    merged=("{merged} of {converted} quantized layers are created by their parent layer's code; a .keras file "
            "stores their weights on the grid and they reload as float layers with equal outputs "
            "(export_tflite from this model emits int8 kernels)"),
)


def quantize_model(model: keras.layers.Layer, bits: int = 8, layers: engine.LayerChoice = None,
                   exclude: engine.LayerChoice = None) -> keras.layers.Layer:
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
    return engine.apply(model, engine.plan(model, QUANTIZE, layers, exclude, bits=bits))


def quantized_weights(model: keras.layers.Layer) -> Iterator[tuple[keras.layers.Layer, Any, Any]]:
    """(layer, float variable, fake-quantized value) for every quantized weight in `model`."""
    for layer in engine.all_layers(model) + [model]:
        if is_quantized(layer):
            for variable, value in layer.quantized_weights():
                yield layer, variable, value


def strip(model: keras.layers.Layer) -> keras.layers.Layer:
    """Make `model` deployable, in place: every `Quantized*` layer gets its weights replaced by
    their fake-quantized values (at most 2^bits levels per tensor) and its float class back.

    Its outputs equal those of the quantized model; exporting it (or the quantized model) with
    `keras_compress.export_tflite(..., quantization="int8")` gives int8 kernels. Returns
    `model`.
    """
    return engine.revert(model, QUANTIZE)


finalize = strip


def quantized_codes(model: keras.layers.Layer) -> dict[str, tuple[np.ndarray, np.float32, np.float32]]:
    """Integer codes of every quantized weight: `{variable path: (codes, scale, offset)}` with
    `codes` uint8 and `codes * scale + offset` the weight used by the quantized model."""
    return {
        variable.path: quantize_codes(ops.convert_to_numpy(variable), layer.bits)
        for layer, variable, _ in quantized_weights(model)
    }
