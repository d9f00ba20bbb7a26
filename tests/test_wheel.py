"""A manylinux wheel pip can install, with the quickstart inside (issue 27).

The slow test builds the sdist, a wheel from it (`pip wheel`), repairs that into a manylinux
wheel (`auditwheel repair`, no Docker), installs it in a fresh venv and runs `gensim-bits demo`
from a folder outside the source tree. The venv is made with --system-site-packages so that
gensim, NumPy and SciPy are not downloaded again; the wheel itself is installed with
--ignore-installed, and the test checks that Python imports it from the venv, not this checkout.
The fast tests check what is cheap: what the wheel will hold and the commands the docs give.
"""
import configparser
import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

import gensim_bits

ROOT = pathlib.Path(__file__).resolve().parent.parent


def package_data():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config


def test_the_wheel_ships_type_markers_the_quickstart_and_the_command():
    config = package_data()
    data = config["options.package_data"]
    for package in ("gensim_bits", "keras_compress"):
        assert (ROOT / package / "py.typed").is_file()
        assert "py.typed" in [pattern.strip() for pattern in data[package].split(",")]
    assert "gensim-bits = gensim_bits.cli:main" in config["options.entry_points"]["console_scripts"]
    # the quickstart is a module of the package (examples/ is not in a wheel); the example calls it
    assert importlib.util.find_spec("gensim_bits.quickstart") is not None
    assert "from gensim_bits.quickstart import main" in (ROOT / "examples" / "quickstart.py").read_text()


def test_contributing_gives_the_manylinux_commands():
    text = (ROOT / "docs" / "CONTRIBUTING.md").read_text()
    assert "pip wheel . --no-deps --no-build-isolation -w dist" in text
    assert "auditwheel repair" in text


def run(command, **options):
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, **options)
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("auditwheel") is None
                    or importlib.util.find_spec("build") is None,
                    reason="needs Linux, auditwheel and build (test extra)")
def test_manylinux_wheel_installs_and_runs_the_quickstart_outside_the_tree(tmp_path):
    # sdist -> wheel, as pip does from PyPI; --no-isolation/--no-build-isolation: the installed
    # setuptools, Cython, NumPy and SciPy build it (no download)
    run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--skip-dependency-check", "-o", str(tmp_path / "sdist"), str(ROOT)])
    (sdist,) = (tmp_path / "sdist").glob("nlp*compress-*.tar.gz")  # nlp-compress before setuptools 69.3
    run([sys.executable, "-m", "pip", "wheel", str(sdist), "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "dist")])
    (plain,) = (tmp_path / "dist").glob("*.whl")
    assert plain.name.endswith("-linux_x86_64.whl") or "linux" in plain.name
    run(["auditwheel", "repair", "--strip", str(plain), "-w", str(tmp_path / "wheelhouse")])
    (wheel,) = (tmp_path / "wheelhouse").glob("*.whl")
    assert "manylinux" in wheel.name and "linux_x86_64.whl" not in wheel.name.replace("manylinux", "")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {"gensim_bits/quickstart.py", "gensim_bits/py.typed", "keras_compress/py.typed"} <= names
    assert sum(name.endswith(".so") for name in names) == 2

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)])
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "--no-deps", "--ignore-installed", "--no-index", str(wheel)])
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    where = run([str(python), "-c", "import gensim_bits, gensim_bits.word2bits_inner as k; "
                                    "print(gensim_bits.__file__); print(k.__file__)"], cwd=outside, env=env)
    assert all(line.startswith(str(venv)) for line in where.stdout.split()), where.stdout
    version = run([str(venv / "bin" / "gensim-bits"), "--version"], cwd=outside, env=env)
    assert version.stdout.strip() == f"gensim-bits {gensim_bits.__version__} (nlp-compress)"
    demo = run([str(venv / "bin" / "gensim-bits"), "demo", "--epochs", "2", "--vector-size", "32", "--workers", "1"],
               cwd=outside, env=env)
    assert "trained Word2Bits" in demo.stdout and "% saved." in demo.stdout
