"""Bit-packed Word2Bits codes and their exact dot products (Lam 2018, section 3.2 levels).

A ``bits``-bit word of dimension d is stored as ``bits`` bit-planes of ``ceil(d / 8)``
bytes: plane j holds bit j of each element's level index (``quantizers.quantize_codes``),
little-endian within a byte, and the padding bits of the last byte are zero. That is
d*bits/8 bytes a word, rounded up to whole bytes per plane.

Every level is ``unit * sum_j 2**j * s_j`` with s_j = +-1 (``unit`` = 1/3 at one bit,
``2**-bits`` otherwise), so at one bit cosine = 1 - 2*hamming/d and at two bits a value is
s1/2 + s2/4. A dot product of two words is a weighted sum of ``bits**2`` XOR-popcounts,
computed in ``search_inner`` without unpacking; a float query is scored with one
256-entry lookup table per code byte.
"""
from functools import lru_cache

import numpy as np

from gensim_bits.quantizers import check_bits, levels
from gensim_bits.search_inner import dots_with_rows, dots_with_table
from gensim_bits.search_inner import vector_tables as table_rows

PACKED_BITS = (1, 2, 4, 8)



def check_packed_bits(bits):
    """Return ``bits`` as an int if it can be packed (1, 2, 4 or 8), else raise ValueError."""
    bits = check_bits(bits)
    if bits not in PACKED_BITS:
        raise ValueError(f"packed vectors need bits in {PACKED_BITS}, got {bits} (32 is unquantized float)")
    return bits


def plane_bytes(dimension):
    """Bytes in one bit-plane of one word: ``ceil(dimension / 8)``."""
    return (int(dimension) + 7) // 8


@lru_cache(maxsize=None)
def level_unit(bits):
    """The step ``unit`` with ``level = unit * sum_j 2**j s_j``, in float64."""
    return float(levels(bits)[-1]) / (2 ** bits - 1)


@lru_cache(maxsize=None)
def level_table(bits):
    """``quantizers.levels(bits)``, computed once (queries look values up in it)."""
    table = levels(bits)
    table.setflags(write=False)
    return table


def pack_codes(codes, bits):
    """Pack level indices ``codes`` (n, d) into bit-planes: uint8 (n, bits * ceil(d/8))."""
    codes = np.asarray(codes, dtype=np.uint8)
    if codes.ndim != 2:
        raise ValueError(f"codes must be a 2-d array (words, dimension), got shape {codes.shape}")
    planes = [np.packbits((codes >> plane) & 1, axis=1, bitorder="little") for plane in range(bits)]
    return np.ascontiguousarray(np.concatenate(planes, axis=1))


def unpack_codes(packed, bits, dimension):
    """Level indices (n, dimension) as uint8 from packed rows; the inverse of :func:`pack_codes`."""
    packed = np.asarray(packed, dtype=np.uint8)
    width = plane_bytes(dimension)
    codes = np.zeros((packed.shape[0], dimension), dtype=np.uint8)
    for plane in range(bits):
        plane_bits = np.unpackbits(packed[:, plane * width:(plane + 1) * width], axis=1,
                                   count=dimension, bitorder="little")
        codes |= plane_bits << plane
    return codes


def unpack_values(packed, bits, dimension):
    """Float32 values (n, dimension) of packed rows."""
    return level_table(bits)[unpack_codes(packed, bits, dimension)]


def squared_norms(packed, bits, dimension, chunk=16384):
    """Exact squared L2 norm of every packed row, float64, from popcounts of its own planes.

    Rows go ``chunk`` at a time, so the temporaries stay small next to the codes.
    """
    packed = np.asarray(packed, dtype=np.uint8)
    width = plane_bytes(dimension)
    weighted = np.zeros(packed.shape[0], dtype=np.int64)
    for start in range(0, packed.shape[0], chunk):
        rows = packed[start:start + chunk]
        planes = [rows[:, plane * width:(plane + 1) * width] for plane in range(bits)]
        for i in range(bits):
            for j in range(i + 1, bits):
                differing = np.bitwise_count(planes[i] ^ planes[j]).sum(axis=1, dtype=np.int64)
                weighted[start:start + chunk] += 2 * (differing << (i + j))  # the (i, j) and (j, i) terms
    # sum_{i,j} 2^(i+j) (d - 2 popcount): the popcount is zero when i == j.
    scaled = dimension * (2 ** bits - 1) ** 2 - 2 * weighted
    return level_unit(bits) ** 2 * scaled.astype(np.float64)


def dots_with_packed(packed, query_rows, bits, dimension):
    """Exact dot products (len(packed), len(query_rows)) of packed rows, float64."""
    return dots_with_rows(np.ascontiguousarray(packed, dtype=np.uint8),
                          np.ascontiguousarray(query_rows, dtype=np.uint8),
                          bits, plane_bytes(dimension), dimension, level_unit(bits) ** 2)


def vector_table(vector, bits, dimension):
    """Lookup tables of a float vector: ``(table (row_bytes, 256), constant)`` with
    ``dot(row, vector) = constant + sum_t table[t, row[t]]`` for every packed row."""
    vector = np.asarray(vector, dtype=np.float64).ravel()
    if vector.shape[0] != dimension:
        raise ValueError(f"vector has {vector.shape[0]} dimensions, the vectors have {dimension}")
    tables, constants = vector_tables(vector[None], bits, dimension)
    return tables[0].reshape(-1, 256), float(constants[0])


def vector_tables(vectors, bits, dimension):
    """:func:`vector_table` of every row of ``vectors`` (n, dimension) at once:
    ``(tables (n, row_bytes * 256), constants (n,))``, the same values as one at a time.

    Memory: the tables, n * row_bytes * 2 KiB.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float64)
    unit = level_unit(bits)
    # s_j = 2*bit - 1, so plane j adds 2^j * unit * (2 * ones_sum - sum(query)).
    tables = table_rows(vectors, bits, dimension, unit)
    # Row sums along the contiguous axis: the same pairwise order as one vector's sum().
    constants = -unit * (2 ** bits - 1) * vectors.sum(axis=1)
    return tables, constants


def dots_with_vector(packed, vector, bits, dimension):
    """Dot products of packed rows with a float vector, through per-byte lookup tables."""
    table, constant = vector_table(vector, bits, dimension)
    return dots_with_table(np.ascontiguousarray(packed, dtype=np.uint8), table, constant)
