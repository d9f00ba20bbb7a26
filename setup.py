"""Build the compiled Word2Bits kernel; all metadata lives in setup.cfg."""
import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(
        "gensim_bits.word2bits_inner",
        ["gensim_bits/word2bits_inner.pyx"],
        include_dirs=[numpy.get_include()],
        extra_compile_args=["-O3", "-ffast-math", "-funroll-loops"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    ),
    # Exact top-k search on packed codes; it picks the POPCNT instruction at run time.
    Extension(
        "gensim_bits.search_inner",
        ["gensim_bits/search_inner.pyx"],
        include_dirs=[numpy.get_include()],
        extra_compile_args=["-O3"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    ),
]

setup(ext_modules=cythonize(extensions, language_level=3))
