"""Checks this library's layers make on sizes and values they are given, before anything is
allocated or assigned (issue 24: a tampered ``.keras`` config with ``input_dim=2**31-1``,
``rank=2**28`` or ``units=2**31-1`` reached TensorFlow, which ran out of memory after about
15 s; a file whose factors were all NaN loaded and predicted finite outputs).

``MAX_WEIGHTS`` is the most weight values (scalars, all of one layer's weights together) a
layer may create: 2**31, 8 GiB at float32, above the largest token embedding of a released
keras-hub model (Llama 3.1 405B: 128,256 x 16,384 = 2.10e9). A constructor takes
``max_weights=`` to allow more for that one layer; a saved config cannot (``from_config``
refuses the key), so to load a larger model set ``keras_compress.layers.limits.MAX_WEIGHTS``
first.
"""
import math
from numbers import Integral

import numpy as np

MAX_WEIGHTS = 2**31
CONFIG_KEY = "max_weights"


def check_limit(max_weights):
    """``max_weights`` as an int, or the module's ``MAX_WEIGHTS`` for None."""
    if max_weights is None:
        return MAX_WEIGHTS
    if isinstance(max_weights, bool) or not isinstance(max_weights, Integral) or max_weights < 1:
        raise ValueError(f"max_weights must be a positive integer or None, got {max_weights!r}")
    return int(max_weights)


def check_weight_count(layer, shapes, max_weights=None):
    """Raise ValueError, naming the layer, if weights of ``shapes`` hold more than the limit."""
    limit = check_limit(max_weights)
    total = sum(math.prod(int(size) for size in shape) for shape in shapes)
    if total > limit:
        raise ValueError(
            f"{type(layer).__name__} {layer.name!r}: weights of shapes {[tuple(shape) for shape in shapes]} "
            f"would hold {total:,} values, more than the limit of {limit:,}; pass max_weights= to allow "
            "more (or, to load a saved model, raise keras_compress.layers.limits.MAX_WEIGHTS)"
        )


def refuse_limit_in_config(cls, config):
    """A saved config may not raise the limit that guards loading it."""
    if isinstance(config, dict) and CONFIG_KEY in config:
        raise ValueError(
            f"{cls.__name__}: a saved config cannot set {CONFIG_KEY!r}; raise "
            "keras_compress.layers.limits.MAX_WEIGHTS before loading to allow larger layers"
        )


def check_finite(layer, values):
    """Raise ValueError if a floating-point weight about to be loaded holds NaN or infinity."""
    for index, value in enumerate(values):
        array = np.asarray(value)
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            raise ValueError(
                f"{type(layer).__name__} {layer.name!r}: saved weight {index} (shape {array.shape}) "
                "holds NaN or infinite values; refusing to load it"
            )
