"""Quantization-aware training of weights: Jacob et al. 2018 (sec. 3, "simulated quantization")
as used by Prato 2019 (M.Sc. thesis, sec. 5.2) to train 8-bit Transformers.

Every quantized weight tensor w is replaced in the forward pass by its fake-quantized copy

    a = min(min(w), 0),  b = max(max(w), 0),  s = (b - a) / (2^k - 1)
    w_q = round((clip(w, a', b') - a') / s) * s + a'

where a' = -round(-a / s) * s and b' = a' + (2^k - 1) * s are a and b nudged by less than s / 2
so that 0 is exactly on the grid (`tf.quantization.fake_quant_with_min_max_vars`, which
`keras.quantizers.fake_quant_with_min_max_vars` calls on TensorFlow; this is what lets the TFLite
converter emit int8 kernels). When a is already on the grid, a' = a and this is the thesis
formula w_q = round((w - a) / s) * s + a. The range is widened to contain 0 so that a tensor of
one sign keeps its extreme values. The range is read from w at every step and held constant for
the gradient, which passes straight through to the float weights (zero outside [a', b']).

Quantized: kernels of Dense, EinsumDense (hence MultiHeadAttention) and Embedding tables, plus
both factors of `keras_compress.factorized_embedding.FactorizedEmbedding`. Biases, LayerNorm
and activations stay float, as in the thesis.
"""

import warnings

import keras
import numpy as np
from keras import ops

from keras_compress.factorized_embedding import FactorizedEmbedding

__all__ = [
    "fake_quantize",
    "quantize_codes",
    "QuantizedDense",
    "QuantizedEinsumDense",
    "QuantizedEmbedding",
    "QuantizedMultiHeadAttention",
    "QuantizedFactorizedEmbedding",
    "quantize_model",
    "strip",
    "finalize",
    "quantized_codes",
    "is_quantized",
]

MIN_BITS, MAX_BITS = 2, 8


def check_bits(bits):
    """Return `bits` as an int after checking it is in 2..8 (the range the TF fake-quant op and
    int8 TFLite kernels support)."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise TypeError(f"bits must be an integer in {MIN_BITS}..{MAX_BITS}, got {bits!r}")
    if not MIN_BITS <= int(bits) <= MAX_BITS:
        raise ValueError(f"bits must be in {MIN_BITS}..{MAX_BITS}, got {bits}")
    return int(bits)


def fake_quantize(weights, bits=8):
    """Fake-quantize one weight tensor per tensor with `bits` bits (see the module docstring).

    Args:
        weights: float tensor of any shape.
        bits: integer in 2..8.

    Returns:
        A tensor of the same shape and dtype whose values lie on 2^bits evenly spaced levels.
        Its gradient with respect to `weights` is the identity inside the quantization range.

    Example:
    >>> w = np.array([-1.0, -0.3, 0.2, 0.5], "float32")
    >>> np.round(keras.ops.convert_to_numpy(fake_quantize(w, bits=2)), 3)
    array([-1. , -0.5,  0. ,  0.5], dtype=float32)
    """
    weights = ops.convert_to_tensor(weights)
    # The range is a statistic of w, not a parameter: without stop_gradient the extreme
    # elements would receive extra gradient through min/max.
    minimum = ops.stop_gradient(ops.minimum(ops.min(weights), 0.0))
    maximum = ops.stop_gradient(ops.maximum(ops.max(weights), 0.0))
    # An all-zero tensor (zeros initializer) would give a zero step and NaNs in the nudging.
    maximum = ops.maximum(maximum, minimum + 1e-8)
    return keras.quantizers.fake_quant_with_min_max_vars(
        weights, minimum, maximum, num_bits=bits
    )


def quantize_codes(weights, bits=8):
    """The integer codes of `fake_quantize(weights, bits)` computed in numpy.

    Returns `(codes, scale, offset)` with `codes` uint8 in 0..2^bits - 1 such that
    `codes * scale + offset` equals `fake_quantize(weights, bits)` (up to float32 rounding).
    """
    bits = check_bits(bits)
    weights = np.asarray(weights, dtype=np.float32)
    levels = 2**bits - 1
    minimum = np.float32(min(weights.min(), 0.0))
    maximum = np.float32(max(weights.max(), 0.0, minimum + 1e-8))
    scale = np.float32((maximum - minimum) / levels)
    # TF's Nudge(): the zero point is rounded half away from zero and clamped to the code range.
    zero_point = np.clip(np.sign(-minimum / scale) * np.floor(np.abs(-minimum / scale) + 0.5),
                         0, levels)
    offset = np.float32(-zero_point * scale)
    clipped = np.clip(weights, offset, offset + np.float32(levels) * scale)
    codes = np.floor((clipped - offset) / scale + np.float32(0.5))
    return np.clip(codes, 0, levels).astype(np.uint8), scale, offset


class _FakeQuantized:
    """Mixin for the quantized layers: validation and config of `bits`."""

    def _init_bits(self, bits):
        self.bits = check_bits(bits)
        if getattr(self, "lora_rank", None):
            raise ValueError(
                f"{type(self).__name__} cannot be combined with LoRA (lora_rank="
                f"{self.lora_rank}): the LoRA update would bypass the quantization grid."
            )

    def _check_float_policy(self):
        if self.quantization_mode is not None:
            raise ValueError(
                f"Layer {self.name!r} already uses post-training quantization "
                f"({self.quantization_mode!r}); quantization-aware training needs float weights."
            )

    def get_config(self):
        return {**super().get_config(), "bits": self.bits}


class _FakeQuantizedKernel(_FakeQuantized):
    """Mixin for the layers whose `call` reads `self.kernel` (Dense, EinsumDense)."""

    def build(self, input_shape):
        self._check_float_policy()
        super().build(input_shape)

    @property
    def kernel(self):
        # call() reads self.kernel: overriding the property is what makes the matmul use
        # w_q while the optimizer keeps updating the float variable self._kernel.
        return fake_quantize(super().kernel, self.bits)

    def _get_kernel_with_merged_lora(self):
        # save_own_variables stores what this returns; keep the float master weights.
        return self._kernel, None, None


@keras.saving.register_keras_serializable(package="keras_compress")
class QuantizedDense(_FakeQuantizedKernel, keras.layers.Dense):
    """`keras.layers.Dense` whose kernel is fake-quantized to `bits` bits in the forward pass.

    Args:
        units, **kwargs: as `keras.layers.Dense`.
        bits: integer in 2..8, the kernel's bit width. The bias stays float.

    Input shape `(..., input_dim)`, output shape `(..., units)`.

    Example:
    >>> layer = QuantizedDense(4, bits=4)
    >>> tuple(layer(np.ones((2, 3), "float32")).shape)
    (2, 4)
    """

    def __init__(self, units, bits=8, **kwargs):
        super().__init__(units, **kwargs)
        self._init_bits(bits)


@keras.saving.register_keras_serializable(package="keras_compress")
class QuantizedEinsumDense(_FakeQuantizedKernel, keras.layers.EinsumDense):
    """`keras.layers.EinsumDense` whose kernel is fake-quantized to `bits` bits.

    Args:
        equation, output_shape, **kwargs: as `keras.layers.EinsumDense`.
        bits: integer in 2..8. The bias stays float.

    Example:
    >>> layer = QuantizedEinsumDense("ab,bc->ac", output_shape=4, bits=8)
    >>> tuple(layer(np.ones((2, 3), "float32")).shape)
    (2, 4)
    """

    def __init__(self, equation, output_shape, bits=8, **kwargs):
        super().__init__(equation, output_shape, **kwargs)
        self._init_bits(bits)


@keras.saving.register_keras_serializable(package="keras_compress")
class QuantizedEmbedding(_FakeQuantized, keras.layers.Embedding):
    """`keras.layers.Embedding` whose table is fake-quantized to `bits` bits.

    Args:
        input_dim, output_dim, **kwargs: as `keras.layers.Embedding`.
        bits: integer in 2..8.

    Input: integer tensor `(batch, length)`; output `(batch, length, output_dim)`.

    Example:
    >>> layer = QuantizedEmbedding(10, 4, bits=8)
    >>> tuple(layer(np.array([[1, 2, 3]])).shape)
    (1, 3, 4)
    """

    def __init__(self, input_dim, output_dim, bits=8, **kwargs):
        super().__init__(input_dim, output_dim, **kwargs)
        self._init_bits(bits)

    def build(self, input_shape=None):
        self._check_float_policy()
        super().build(input_shape)

    @property
    def embeddings(self):
        return fake_quantize(super().embeddings, self.bits)

    def _get_embeddings_with_merged_lora(self):
        return self._embeddings, None, None


@keras.saving.register_keras_serializable(package="keras_compress")
class QuantizedMultiHeadAttention(_FakeQuantized, keras.layers.MultiHeadAttention):
    """`keras.layers.MultiHeadAttention` whose query, key, value and output projections are
    fake-quantized to `bits` bits (their biases stay float).

    Args:
        num_heads, key_dim, **kwargs: as `keras.layers.MultiHeadAttention`.
        bits: integer in 2..8.

    Example:
    >>> layer = QuantizedMultiHeadAttention(num_heads=2, key_dim=4, bits=8)
    >>> x = np.ones((1, 5, 8), "float32")
    >>> tuple(layer(x, x).shape)
    (1, 5, 8)
    """

    _PROJECTIONS = ("_query_dense", "_key_dense", "_value_dense", "_gate_dense", "_output_dense")

    def __init__(self, num_heads, key_dim, bits=8, **kwargs):
        super().__init__(num_heads, key_dim, **kwargs)
        self._init_bits(bits)

    def build(self, query_shape, value_shape, key_shape=None):
        super().build(query_shape, value_shape, key_shape)
        # MultiHeadAttention.build creates plain EinsumDense projections (also when a .keras
        # file is loaded); switching their class in place keeps their variables and tracking,
        # which replacing the attributes would not.
        for name in self._PROJECTIONS:
            projection = getattr(self, name, None)
            if type(projection) is keras.layers.EinsumDense:
                projection.__class__ = QuantizedEinsumDense
                projection.bits = self.bits


@keras.saving.register_keras_serializable(package="keras_compress")
class QuantizedFactorizedEmbedding(_FakeQuantized, FactorizedEmbedding):
    """`keras_compress.factorized_embedding.FactorizedEmbedding` with both factors (the
    `input_dim x rank` table and the `rank x output_dim` projection) fake-quantized to `bits`.

    Args:
        input_dim, output_dim, rank, **kwargs: as `FactorizedEmbedding`.
        bits: integer in 2..8.

    Example:
    >>> layer = QuantizedFactorizedEmbedding(10, 8, rank=2, bits=8)
    >>> tuple(layer(np.array([[1, 2]])).shape)
    (1, 2, 8)
    """

    def __init__(self, input_dim, output_dim, rank, bits=8, **kwargs):
        super().__init__(input_dim, output_dim, rank, **kwargs)
        self._init_bits(bits)

    def quantized_factors(self):
        """(float variable, its fake-quantized value) for both factors."""
        return [(factor, fake_quantize(factor, self.bits))
                for factor in (self.embeddings, self.projection)]

    def call(self, inputs):
        if inputs.dtype not in ("int32", "int64"):
            inputs = ops.cast(inputs, "int32")
        (_, table), (_, projection) = self.quantized_factors()
        low_rank = ops.take(table, inputs, axis=0)
        return ops.cast(ops.matmul(low_rank, projection), self.compute_dtype)


_QUANTIZED_CLASS = {
    keras.layers.Dense: QuantizedDense,
    keras.layers.EinsumDense: QuantizedEinsumDense,
    keras.layers.Embedding: QuantizedEmbedding,
    keras.layers.MultiHeadAttention: QuantizedMultiHeadAttention,
    FactorizedEmbedding: QuantizedFactorizedEmbedding,
}
_FLOAT_CLASS = {quantized: base for base, quantized in _QUANTIZED_CLASS.items()}


def is_quantized(layer):
    """Whether `layer` is one of this module's fake-quantized layers."""
    return isinstance(layer, _FakeQuantized)


def _clone(model, clone_function, replacement_weights):
    """Clone a Functional/Sequential model layer by layer, then copy every variable, taking the
    value from `replacement_weights[id(variable)]` where present."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"expected a keras.Model, got {type(model).__name__}")
    try:
        clone = keras.models.clone_model(model, clone_function=clone_function, recursive=True)
    except ValueError as error:
        raise ValueError(
            "quantize_model/strip need a Functional or Sequential model (keras.models."
            "clone_model failed: " + str(error) + "). For a subclassed model, build it with "
            "keras_compress.quantization.QuantizedDense, QuantizedEinsumDense, QuantizedEmbedding "
            "and QuantizedMultiHeadAttention directly."
        ) from error
    for original, copy in zip(model.layers, clone.layers):
        values = [replacement_weights.get(id(v), v) for v in original.weights]
        copy.set_weights([ops.convert_to_numpy(v) for v in values])
    return clone


def _select(model, layers, exclude):
    """The predicate picking the layers to quantize, after checking the names exist."""
    names = {layer.name for layer in model._flatten_layers(include_self=False)}
    for argument, value in (("layers", layers), ("exclude", exclude)):
        if value is None or callable(value):
            continue
        if isinstance(value, str):
            raise TypeError(f"{argument} must be a list of layer names, not the string {value!r}")
        unknown = sorted(set(value) - names)
        if unknown:
            raise ValueError(f"{argument} names unknown layers {unknown}; model has {sorted(names)}")

    def wanted(layer):
        if exclude is not None and (exclude(layer) if callable(exclude) else layer.name in exclude):
            return False
        if layers is None:
            return True
        return bool(layers(layer)) if callable(layers) else layer.name in layers

    return wanted


def quantize_model(model, bits=8, layers=None, exclude=None):
    """Return a copy of `model` that trains with fake-quantized weights (quantization-aware
    training, Jacob et al. 2018; Prato 2019 sec. 5.2).

    Dense, EinsumDense, Embedding and MultiHeadAttention layers (and FactorizedEmbedding from
    this library) are replaced by their `Quantized*` counterparts holding the same weights.
    Biases, normalization layers and activations stay float. The copy is compiled and fit like
    any Keras model, saves to and loads from `.keras`, and `strip(model)` gives the deployable
    float model with weights on the quantization grid.

    Args:
        model: a Functional or Sequential `keras.Model` (nested ones are handled).
        bits: integer in 2..8, weight bit width.
        layers: None to quantize every supported layer, a list of layer names, or a predicate
            `layer -> bool` (the per-layer choice of tfmot's `quantize_annotate_layer`).
        exclude: a list of layer names or a predicate of layers to leave float.

    Returns:
        A new `keras.Model`; `model` is not modified.

    Example:
    >>> inputs = keras.Input((3,))
    >>> model = keras.Model(inputs, keras.layers.Dense(2, name="out")(inputs))
    >>> qat = quantize_model(model, bits=8)
    >>> type(qat.get_layer("out")).__name__
    'QuantizedDense'
    """
    bits = check_bits(bits)
    wanted = _select(model, layers, exclude)
    def clone_function(layer):
        target = _QUANTIZED_CLASS.get(type(layer))
        if target is None or not wanted(layer):
            return layer.__class__.from_config(layer.get_config())
        return target.from_config({**layer.get_config(), "bits": bits})

    clone = _clone(model, clone_function, {})
    _warn_unreached(clone, _QUANTIZED_CLASS)
    return clone


def _warn_unreached(model, quantized_class):
    """Warn about supported layers hidden inside custom layers, which clone_model cannot swap."""
    for layer in model.layers:
        if isinstance(layer, keras.Model) or type(layer) in quantized_class or is_quantized(layer):
            continue
        hidden = [
            inner.name
            for inner in layer._flatten_layers(include_self=False)
            if type(inner) in quantized_class
        ]
        if hidden:
            warnings.warn(
                f"layer {layer.name!r} ({type(layer).__name__}) contains {hidden}, which "
                "quantize_model cannot reach; build it with the Quantized* layers instead.",
                stacklevel=3,
            )


def _quantized_leaves(model):
    """(layer, float variable, fake-quantized value) for every quantized weight in `model`."""
    for layer in model._flatten_layers(include_self=True):
        if not is_quantized(layer):
            continue
        if isinstance(layer, (keras.layers.Dense, keras.layers.EinsumDense)):
            yield layer, layer._kernel, layer.kernel
        elif isinstance(layer, keras.layers.Embedding):
            yield layer, layer._embeddings, layer.embeddings
        elif isinstance(layer, QuantizedFactorizedEmbedding):
            yield from ((layer, variable, value) for variable, value in layer.quantized_factors())


def strip(model):
    """Return the deployable float model: every `Quantized*` layer becomes its Keras base layer
    with its weights replaced by their fake-quantized values (at most 2^bits levels per tensor).

    Its outputs equal those of the quantized model; exporting it (or the quantized model) with
    `keras_compress.export.export_tflite(..., quantization="int8")` gives int8 kernels.
    """
    on_grid = {id(variable): value for _, variable, value in _quantized_leaves(model)}
    def clone_function(layer):
        target = _FLOAT_CLASS.get(type(layer))
        if target is None:
            return layer.__class__.from_config(layer.get_config())
        config = layer.get_config()
        config.pop("bits")
        return target.from_config(config)

    return _clone(model, clone_function, on_grid)


finalize = strip


def quantized_codes(model):
    """Integer codes of every quantized weight: `{variable path: (codes, scale, offset)}` with
    `codes` uint8 and `codes * scale + offset` the weight used by the quantized model."""
    return {
        variable.path: quantize_codes(ops.convert_to_numpy(variable), layer.bits)
        for layer, variable, _ in _quantized_leaves(model)
    }
