"""Fake-quantized layers for quantization-aware training of weights: Jacob et al. 2018 (sec. 3, "simulated quantization")
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

Quantized: kernels of Dense, EinsumDense (hence every attention projection) and Embedding /
ReversibleEmbedding tables (tied logits too), plus both factors of
`keras_compress.layers.FactorizedEmbedding`. Biases, LayerNorm and activations
stay float, as in the thesis. `keras_compress.quantization.quantize_model` finds these layers at
every depth and changes them in place through `keras_compress.engine`.
"""

import keras
import numpy as np
from keras import ops

from keras_compress import engine
from keras_compress.layers import limits
from keras_compress.layers.factorized_embedding import FactorizedEmbedding, FactorizedReversibleEmbedding, reverse_logits

__all__ = [
    "fake_quantize",
    "quantize_codes",
    "QuantizedDense",
    "QuantizedEinsumDense",
    "QuantizedEmbedding",
    "QuantizedReversibleEmbedding",
    "QuantizedMultiHeadAttention",
    "QuantizedFactorizedEmbedding",
    "QuantizedFactorizedReversibleEmbedding",
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


class FakeQuantized:
    """Mixin of the fake-quantized layers: `bits`, saving, and the list of quantized weights.

    A subclass lists its quantized weights in `quantized_weights()` as (float variable, value
    used in the forward pass) pairs and its saved variables, in Keras's order, in
    `_saved_variables()`.
    """

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

    @property
    def merge_on_save(self):
        """Whether this layer saves its weights on the grid: its parent re-creates it as the plain
        Keras layer when a `.keras` file loads (see `keras_compress.engine`)."""
        return engine.saves_merged(self)

    def quantized_weights(self):
        raise NotImplementedError

    def _saved_variables(self):
        return list(self.variables)

    def save_own_variables(self, store):
        if not self.built:
            return
        grid = {id(variable): value for variable, value in self.quantized_weights()} if self.merge_on_save else {}
        for index, variable in enumerate(self._saved_variables()):
            store[str(index)] = ops.convert_to_numpy(grid.get(id(variable), variable))

    def load_own_variables(self, store):
        variables = self._saved_variables()
        if len(store.keys()) != len(variables):
            raise ValueError(
                f"Layer {self.name!r} expected {len(variables)} variables, but received "
                f"{len(store.keys())} variables during loading."
            )
        values = [store[str(index)] for index in range(len(variables))]
        limits.check_finite(self, values)
        for variable, value in zip(variables, values):
            variable.assign(value)

    @classmethod
    def from_config(cls, config):
        limits.refuse_limit_in_config(cls, config)
        return super().from_config(config)

    def quantize(self, *args, **kwargs):
        raise NotImplementedError(
            f"{type(self).__name__} {self.name!r} is already fake-quantized for training; "
            "strip() it before Keras post-training quantization."
        )

    def enable_lora(self, *args, **kwargs):
        raise ValueError(f"{type(self).__name__} {self.name!r}: LoRA would bypass the quantization grid")

    def get_config(self):
        return {**super().get_config(), "bits": self.bits}


class _FakeQuantizedKernel(FakeQuantized):
    """Mixin for the layers whose `call` reads `self.kernel` (Dense, EinsumDense)."""

    # One named argument: Keras passes the input shape only to a build() whose signature names
    # one (with *args it called build() with nothing, and Dense.build failed).
    def build(self, input_shape):
        self._check_float_policy()
        if isinstance(self, keras.layers.Dense) and input_shape[-1] is not None:
            # units x input size, checked before Keras allocates the kernel.
            limits.check_weight_count(self, [(input_shape[-1], self.units)], getattr(self, "_max_weights", None))
        super().build(input_shape)

    def _float_kernel(self):
        return super().kernel

    @property
    def kernel(self):
        # call() reads self.kernel: overriding the property is what makes the matmul use
        # w_q while the optimizer keeps updating the float variable.
        return fake_quantize(self._float_kernel(), self.bits)

    def quantized_weights(self):
        return [(self._float_kernel(), self.kernel)]

    def _saved_variables(self):
        return [variable for variable in (self._float_kernel(), self.bias) if variable is not None]


@keras.saving.register_keras_serializable(package="keras_compress")
class QuantizedDense(_FakeQuantizedKernel, keras.layers.Dense):
    """`keras.layers.Dense` whose kernel is fake-quantized to `bits` bits in the forward pass.

    Args:
        units, **kwargs: as `keras.layers.Dense`.
        bits: integer in 2..8, the kernel's bit width. The bias stays float.
        max_weights: most kernel values (default `keras_compress.layers.limits.MAX_WEIGHTS`,
            2**31), checked before anything is allocated; not saved in the config.

    Input shape `(..., input_dim)`, output shape `(..., units)`.

    Example:
    >>> layer = QuantizedDense(4, bits=4)
    >>> tuple(layer(np.ones((2, 3), "float32")).shape)
    (2, 4)
    """

    def __init__(self, units, bits=8, max_weights=None, **kwargs):
        super().__init__(units, **kwargs)
        self._init_bits(bits)
        self._max_weights = limits.check_limit(max_weights)
        limits.check_weight_count(self, [(1, self.units)], self._max_weights)  # the kernel is at least this


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


class _FakeQuantizedTable(FakeQuantized):
    """Mixin for Embedding and ReversibleEmbedding: the table (and an untied output projection)."""

    def __init__(self, input_dim, output_dim, bits=8, max_weights=None, **kwargs):
        super().__init__(input_dim, output_dim, **kwargs)
        self._init_bits(bits)
        untied = [] if getattr(self, "tie_weights", True) else [(output_dim, input_dim)]
        limits.check_weight_count(self, [(input_dim, output_dim)] + untied, max_weights)

    def build(self, input_shape=None):
        self._check_float_policy()
        super().build(input_shape)

    def _float_table(self):
        return engine.embedding_table(self)

    @property
    def embeddings(self):
        return fake_quantize(self._float_table(), self.bits)

    def _reverse_kernel(self):
        return fake_quantize(self.reverse_embeddings, self.bits)

    def quantized_weights(self):
        pairs = [(self._float_table(), self.embeddings)]
        if not getattr(self, "tie_weights", True):
            pairs.append((self.reverse_embeddings, self._reverse_kernel()))
        return pairs

    def _saved_variables(self):
        return [variable for variable, _ in self.quantized_weights()]


@keras.saving.register_keras_serializable(package="keras_compress")
class QuantizedEmbedding(_FakeQuantizedTable, keras.layers.Embedding):
    """`keras.layers.Embedding` whose table is fake-quantized to `bits` bits.

    Args:
        input_dim, output_dim, **kwargs: as `keras.layers.Embedding`.
        bits: integer in 2..8.
        max_weights: most table values (default `keras_compress.layers.limits.MAX_WEIGHTS`,
            2**31), checked before anything is allocated; not saved in the config.

    Input: integer tensor `(batch, length)`; output `(batch, length, output_dim)`.

    Example:
    >>> layer = QuantizedEmbedding(10, 4, bits=8)
    >>> tuple(layer(np.array([[1, 2, 3]])).shape)
    (1, 3, 4)
    """


@keras.saving.register_keras_serializable(package="keras_compress")
class QuantizedReversibleEmbedding(_FakeQuantizedTable, keras.layers.ReversibleEmbedding):
    """`keras.layers.ReversibleEmbedding` (keras-hub's token embedding) with its table, and its
    output projection when untied, fake-quantized to `bits` bits. Tied logits use the same
    quantized table.

    Args:
        input_dim, output_dim, **kwargs: as `keras.layers.ReversibleEmbedding`.
        bits: integer in 2..8.

    Example:
    >>> layer = QuantizedReversibleEmbedding(10, 4, bits=8)
    >>> tuple(layer(layer(np.array([[1, 2, 3]])), reverse=True).shape)
    (1, 3, 10)
    """

    def call(self, inputs, reverse=False):
        if not reverse or self.tie_weights:
            return super().call(inputs, reverse=reverse)  # reads self.embeddings: quantized
        kernel = self._reverse_kernel()
        return reverse_logits(self, inputs, lambda hidden: ops.matmul(hidden, kernel))


class _FakeQuantizedFactors(FakeQuantized):
    """Mixin for the factorized embeddings: both factors (and an untied output projection)."""

    def factors(self):
        return tuple(fake_quantize(factor, self.bits) for factor in (self.table, self.projection))

    def quantized_factors(self):
        """(float variable, its fake-quantized value) for both factors."""
        return list(zip((self.table, self.projection), self.factors()))

    def _reverse_kernel(self):
        return fake_quantize(self.reverse_embeddings, self.bits)

    def quantized_weights(self):
        pairs = self.quantized_factors()
        if not getattr(self, "tie_weights", True):
            pairs.append((self.reverse_embeddings, self._reverse_kernel()))
        return pairs

    # FactorizedEmbedding's own save/load (factors, or their merged product) apply.
    save_own_variables = FactorizedEmbedding.save_own_variables
    load_own_variables = FactorizedEmbedding.load_own_variables
    _saved_variables = FactorizedEmbedding._saved_variables


@keras.saving.register_keras_serializable(package="keras_compress")
class QuantizedFactorizedEmbedding(_FakeQuantizedFactors, FactorizedEmbedding):
    """`keras_compress.layers.FactorizedEmbedding` with both factors (the
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


@keras.saving.register_keras_serializable(package="keras_compress")
class QuantizedFactorizedReversibleEmbedding(_FakeQuantizedFactors, FactorizedReversibleEmbedding):
    """`FactorizedReversibleEmbedding` with both factors (and an untied output projection)
    fake-quantized to `bits` bits.

    Example:
    >>> layer = QuantizedFactorizedReversibleEmbedding(10, 8, rank=2, bits=8)
    >>> tuple(layer(layer(np.array([[1, 2]])), reverse=True).shape)
    (1, 2, 10)
    """

    def __init__(self, input_dim, output_dim, rank, bits=8, **kwargs):
        super().__init__(input_dim, output_dim, rank, **kwargs)
        self._init_bits(bits)


@keras.saving.register_keras_serializable(package="keras_compress")
class QuantizedMultiHeadAttention(keras.layers.MultiHeadAttention):
    """`keras.layers.MultiHeadAttention` whose query, key, value and output projections are
    fake-quantized to `bits` bits (their biases stay float), for models built by hand.
    `quantize_model` reaches the projections of any attention layer without it.

    Args:
        num_heads, key_dim, **kwargs: as `keras.layers.MultiHeadAttention`.
        bits: integer in 2..8.

    Example:
    >>> layer = QuantizedMultiHeadAttention(num_heads=2, key_dim=4, bits=8)
    >>> x = np.ones((1, 5, 8), "float32")
    >>> tuple(layer(x, x).shape)
    (1, 5, 8)
    """

    def __init__(self, num_heads, key_dim, bits=8, **kwargs):
        super().__init__(num_heads, key_dim, **kwargs)
        self.bits = check_bits(bits)

    def build(self, *args, **kwargs):
        super().build(*args, **kwargs)
        # build() creates plain EinsumDense projections (also when a .keras file loads).
        for projection in engine.children(self):
            if type(projection) is keras.layers.EinsumDense:
                engine.change(projection, QuantizedEinsumDense, "quantize", bits=self.bits)

    def get_config(self):
        return {**super().get_config(), "bits": self.bits}
