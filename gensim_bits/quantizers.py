"""The Word2Bits quantization functions (Lam 2018, section 3.2, equations 3 and 4).

One bit uses the paper's levels +-1/3. Two or more bits use ``2**bits`` uniform levels,
the midpoints of equal bins over [-1, 1]; at two bits these are the paper's +-1/4, +-3/4
with thresholds 0 and +-1/2, including its tie rule (``Q2(1/2) = 1/4``). ``bits=32``
means no quantization.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

SUPPORTED_BITS = (1, 2, 4, 8, 32)
FLOAT_BITS = 32


def check_bits(bits: int) -> int:
    """Return ``bits`` as an int, or raise ValueError naming the supported values."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or int(bits) not in SUPPORTED_BITS:
        raise ValueError(f"bits must be one of {SUPPORTED_BITS}, got {bits!r}")
    return int(bits)


def levels(bits: int) -> np.ndarray:
    """The ``2**bits`` quantization levels in increasing order, as float32."""
    bits = check_bits(bits)
    if bits == FLOAT_BITS:
        raise ValueError("bits=32 is unquantized and has no levels")
    if bits == 1:
        return np.array([-1.0 / 3.0, 1.0 / 3.0], dtype=np.float32)
    count = 2 ** bits
    return ((2.0 * np.arange(count) + 1.0 - count) / count).astype(np.float32)


def quantize_codes(x: ArrayLike, bits: int) -> np.ndarray:
    """Level index (uint8 for bits <= 8) of each element of ``x``.

    Bins are half-open ``[t_i, t_{i+1})`` except that a value exactly on the positive
    thresholds of the two-bit quantizer follows the paper (``0 <= x <= 1/2`` maps to
    1/4). Values outside [-1, 1] clip to the outermost level.
    """
    bits = check_bits(bits)
    if bits == FLOAT_BITS:
        raise ValueError("bits=32 is unquantized and has no codes")
    x = np.asarray(x, dtype=np.float32)
    if bits == 1:
        return (x >= 0).astype(np.uint8)
    count = 2 ** bits
    half = count // 2
    scaled = x * half  # bin width 1/half
    # Positive side: ceil(scaled) - 1 puts x == k/half into the lower bin (the paper's
    # "0 <= x <= 1/2" at two bits); negative side: floor puts x == -k/half into the
    # upper bin ("-1/2 <= x < 0").
    index = np.where(x > 0, half + np.ceil(scaled) - 1, half + np.floor(scaled))
    index = np.where(x == 0, half, index)
    return np.clip(index, 0, count - 1).astype(np.uint8)


def quantize(x: ArrayLike, bits: int) -> np.ndarray:
    """Quantized values Q(x) as float32; ``bits=32`` returns ``x`` as float32."""
    bits = check_bits(bits)
    if bits == FLOAT_BITS:
        return np.asarray(x, dtype=np.float32)
    return levels(bits)[quantize_codes(x, bits)]
