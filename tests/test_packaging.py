"""Release-readiness: the sdist carries LICENSE, docs and examples; both packages have one
version; keras_compress without Keras names the extra to install."""
import configparser
import importlib.util
import pathlib
import subprocess
import sys
import tarfile

import pytest

import gensim_bits

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.skipif(importlib.util.find_spec("build") is None, reason="needs the 'build' package (test extra)")
def test_sdist_contains_license_docs_and_examples(tmp_path):
    # --no-isolation: use the installed setuptools/Cython/numpy instead of downloading them.
    result = subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "-o", str(tmp_path), str(ROOT)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (sdist,) = tmp_path.glob("nlp_compress-*.tar.gz")
    assert sdist.name == f"nlp_compress-{gensim_bits.__version__}.tar.gz"
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert "LICENSE" in names and "README.md" in names and "mkdocs.yml" in names
    for folder in ("docs", "examples", "benchmarks/results"):
        shipped = {name for name in names if name.startswith(folder + "/")}
        in_repo = {str(path.relative_to(ROOT)) for path in (ROOT / folder).glob("*.*")
                   if path.suffix in (".md", ".py", ".json", ".png")}
        assert in_repo and in_repo <= shipped, f"{folder}: missing {sorted(in_repo - shipped)}"
    assert not any(name.endswith((".so", ".pyd")) for name in names)


def test_both_packages_have_the_distribution_version():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert config["metadata"]["version"] == "attr: gensim_bits.__version__"
    source = (ROOT / "keras_compress" / "__init__.py").read_text()
    assert f'__version__ = "{gensim_bits.__version__}"' in source
    assert gensim_bits.__version__.count(".") == 2


def test_keras_compress_without_keras_names_the_extra():
    code = "import sys; sys.modules['keras'] = None; import keras_compress"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode != 0
    assert "pip install 'nlp-compress[keras]'" in result.stderr
    assert "ModuleNotFoundError" not in result.stderr.strip().splitlines()[-1]


@pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="needs keras")
def test_keras_compress_without_its_backend_names_the_backend():
    """Keras installed, its backend not: the message says so, not 'install Keras'."""
    code = ("import os, sys; sys.modules['torch'] = None; os.environ['KERAS_BACKEND'] = 'torch'\n"
            "import keras_compress")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("ImportError: keras_compress: Keras is installed but cannot load its backend")
    assert "pip install torch" in last_line and "nlp-compress[keras]" not in last_line


def test_numpy_floor_is_declared_where_the_code_needs_it():
    """packing.py uses np.bitwise_count, new in NumPy 2.0; .ci/numpy_floor runs the tests there."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    requirements = config["options"]["install_requires"]
    floor = next(line.strip() for line in requirements.splitlines() if line.strip().startswith("numpy"))
    assert floor == "numpy>=2.0"
    uses_numpy_2 = any("bitwise_count" in path.read_text() for path in (ROOT / "gensim_bits").glob("*.py"))
    assert uses_numpy_2 or floor != "numpy>=2.0"


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs jax")
def test_keras_compress_runs_on_jax_without_tensorflow():
    """The `keras` extra has no TensorFlow (nor keras-hub, which brings it): building and
    quantizing a classifier must need neither."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert "tensorflow" not in config["options.extras_require"]["keras"]
    assert "keras-hub" not in config["options.extras_require"]["keras"]
    code = (
        "import os, sys; sys.modules.update(tensorflow=None, keras_hub=None); os.environ['KERAS_BACKEND'] = 'jax'\n"
        "import numpy as np, keras_compress\n"
        "from keras_compress.models import dan\n"
        "model = keras_compress.quantize_model(dan(50, 2, embedding_dim=4, hidden=(4,)), bits=8)\n"
        "print(model.predict(np.ones((2, 3), 'int32'), verbose=0).shape)\n"
        "try:\n    import keras_compress.nmt\nexcept ImportError as error:\n    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(2, 2)" in result.stdout and "pip install 'nlp-compress[mt]'" in result.stdout


@pytest.mark.skipif(importlib.util.find_spec("cibuildwheel") is None, reason="needs cibuildwheel (test extra)")
@pytest.mark.parametrize("platform, tag", [("linux", "manylinux_x86_64"), ("macos", "macosx_arm64"), ("windows", "win_amd64")])
def test_cibuildwheel_configuration_covers_each_platform(platform, tag):
    """[tool.cibuildwheel] in pyproject.toml parses and names wheels PyPI accepts, 3.10-3.13."""
    result = subprocess.run([sys.executable, "-m", "cibuildwheel", "--print-build-identifiers", "--platform", platform],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    identifiers = result.stdout.split()
    assert {f"cp3{minor}-{tag}" for minor in (10, 11, 12, 13)} <= set(identifiers), identifiers
