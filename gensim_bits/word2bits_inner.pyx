# cython: boundscheck=False, wraparound=False, cdivision=True
"""Placeholder: the quantized CBOW kernel goes here."""
from scipy.linalg.cython_blas cimport sdot

def kernel_available():
    return True
