"""gensim's own tests, run against our classes (issue 15): the installed gensim's
``gensim/test/test_word2vec.py`` with ``Word2Vec`` replaced by ``Word2Bits(bits=32)``, and
the query tests of ``gensim/test/test_keyedvectors.py`` against ``QuantizedKeyedVectors``
(8 bits, on gensim's own test vectors).

Every test must pass except those named in ``tests/gensim_expected_failures.txt`` (one
``file::Class::test`` a line, then its reason), which run as expected failures: one that
starts passing fails the run, so the list cannot go stale. The whole suite is marked
``gensim_suite`` (and ``slow``: several minutes on two shared cores); the default run keeps a
fast subset (``FAST``), and ``python -m pytest -m gensim_suite`` runs all of it.
"""
import importlib.util
import os
import types
import unittest

import numpy as np
import pytest

# test_word2vec.py imports POT (for wmdistance), which would import every array library
# installed (TensorFlow, JAX, PyTorch) as a backend: tens of seconds, and unused here.
for _backend in ("PYTORCH", "JAX", "CUPY", "TENSORFLOW"):
    os.environ.setdefault(f"POT_BACKEND_DISABLE_{_backend}", "1")

gensim_test = pytest.importorskip("gensim.test")
pytest.importorskip("testfixtures")  # test_word2vec.py imports it

from gensim.models import keyedvectors as gensim_keyedvectors  # noqa: E402
from gensim.models import word2vec as gensim_word2vec  # noqa: E402

from gensim_bits import QuantizedKeyedVectors, Word2Bits  # noqa: E402

GENSIM_TEST_DIR = os.path.dirname(gensim_test.__file__)
EXPECTED_FAILURES_FILE = os.path.join(os.path.dirname(__file__), "gensim_expected_failures.txt")
MAX_EXPECTED_FAILURES = 10

# Run in the default test run as well: one test of each kind, a few seconds in all.
FAST = {
    "test_word2vec.py::TestWord2VecModel::test_locking",
    "test_word2vec.py::TestWord2VecModel::test_predict_output_word",
    "test_word2vec.py::TestWord2VecModel::test_persistence",
    "test_word2vec.py::TestWord2VecModel::test_online_learning",
    "test_word2vec.py::TestWord2VecModel::test_sg_neg",
    "test_keyedvectors.py::TestKeyedVectors::test_most_similar",
    "test_keyedvectors.py::TestKeyedVectors::test_relative_cosine_similarity",
    "test_keyedvectors.py::TestKeyedVectors::test_get_mean_vector",
}

# The query tests of test_keyedvectors.py: everything that reads vectors. Tests that add or
# set vectors, or load gensim's own files, are about KeyedVectors itself.
KEYED_VECTORS_QUERY_TESTS = [
    "test_most_similar", "test_most_similar_vector", "test_most_similar_parameter_types",
    "test_most_similar_cosmul_parameter_types", "test_most_similar_topn", "test_relative_cosine_similarity",
    "test_most_similar_raises_keyerror", "test_most_similar_restrict_vocab", "test_most_similar_with_vector_input",
    "test_most_similar_to_given", "test_similar_by_word", "test_similar_by_vector", "test_distance",
    "test_similarity", "test_closer_than", "test_rank", "test_get_mean_vector",
]


def read_expected_failures(path=EXPECTED_FAILURES_FILE):
    """{test id: reason} from the allow-list; ``#`` starts a comment line."""
    expected = {}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip() and not line.startswith("#"):
                name, _, reason = line.strip().partition(" ")
                expected[name] = reason.strip()
    return expected


EXPECTED_FAILURES = read_expected_failures()


def load_gensim_test_module(filename):
    """A private copy of one of gensim's test modules, so patching it leaves gensim alone."""
    spec = importlib.util.spec_from_file_location(
        f"gensim_suite_{filename[:-3]}", os.path.join(GENSIM_TEST_DIR, filename))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Word2BitsFloat(Word2Bits):
    """``Word2Bits(bits=32)`` under gensim's name and argument defaults."""

    def __init__(self, *args, bits=32, **kwargs):
        super().__init__(*args, bits=bits, **kwargs)


def word2vec_module_with_word2bits():
    """gensim.models.word2vec as the test module sees it, with Word2Vec swapped."""
    module = types.ModuleType("word2vec_with_word2bits")
    module.__dict__.update(vars(gensim_word2vec))
    module.Word2Vec = Word2BitsFloat
    return module


def quantized_test_vectors(path):
    """gensim's test vectors as 8-bit QuantizedKeyedVectors.

    The vectors are scaled into [-1, 1] first (cosines do not change), so that the 8-bit
    levels cover them; then quantized.
    """
    vectors = gensim_keyedvectors.KeyedVectors.load_word2vec_format(path, binary=True)
    vectors.vectors = vectors.vectors / np.abs(vectors.vectors).max()
    return QuantizedKeyedVectors.from_keyed_vectors(vectors, bits=8, quantize=True)


def collected(test_id, method):
    """Mark a test as gensim_suite (and fast), or as an expected failure from the allow-list."""
    if test_id in EXPECTED_FAILURES:
        method = unittest.expectedFailure(method)
    marks = [pytest.mark.gensim_suite]
    for mark in marks:
        method = mark(method)
    if test_id not in FAST:
        method = pytest.mark.slow(method)
    return method


def wrap_test_case(filename, case, only=None):
    """A subclass of gensim's TestCase whose test methods carry our marks."""
    namespace = {}
    for name in dir(case):
        if name.startswith("test") and (only is None or name in only):
            namespace[name] = collected(f"{filename}::{case.__name__}::{name}", getattr(case, name))
        elif name.startswith("test"):
            namespace[name] = None  # not a query test: not collected
    return type(f"Gensim_{filename[5:-3]}_{case.__name__}", (case,), namespace)


_word2vec_tests = load_gensim_test_module("test_word2vec.py")
_word2vec_tests.word2vec = word2vec_module_with_word2bits()
for _case in (_word2vec_tests.TestWord2VecModel, _word2vec_tests.TestWMD):
    _wrapped = wrap_test_case("test_word2vec.py", _case)
    globals()[_wrapped.__name__] = _wrapped

_keyed_vectors_tests = load_gensim_test_module("test_keyedvectors.py")


class _QuantizedSetUp:
    def setUp(self):
        super().setUp()
        self.vectors = quantized_test_vectors(_keyed_vectors_tests.datapath("euclidean_vectors.bin"))


_case = _keyed_vectors_tests.TestKeyedVectors
_wrapped = wrap_test_case("test_keyedvectors.py", _case, only=set(KEYED_VECTORS_QUERY_TESTS))
_wrapped = type(_wrapped.__name__, (_QuantizedSetUp, _wrapped), {})
globals()[_wrapped.__name__] = _wrapped
del _case, _wrapped


def test_allow_list_is_short_and_names_real_tests():
    assert len(EXPECTED_FAILURES) <= MAX_EXPECTED_FAILURES
    modules = {"test_word2vec.py": _word2vec_tests, "test_keyedvectors.py": _keyed_vectors_tests}
    for test_id, reason in EXPECTED_FAILURES.items():
        filename, case, name = test_id.split("::")
        assert hasattr(getattr(modules[filename], case), name), test_id
        assert reason, f"{test_id} needs a reason"
