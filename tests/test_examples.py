"""Every example answers --help at once, with a description and its defaults: Keras and
TensorFlow are imported only after the arguments are parsed (they took 11-14 s before)."""
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))

# Refuse the heavy imports: an example that loads them before parsing fails here.
RUN_HELP = (
    "import runpy, sys; sys.modules.update(keras=None, tensorflow=None); "
    "sys.argv = [sys.argv[1], '--help']; runpy.run_path(sys.argv[0], run_name='__main__')"
)


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_example_help_is_quick_and_documented(example):
    result = subprocess.run([sys.executable, "-c", RUN_HELP, str(example)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout and "(default:" in result.stdout
    description = result.stdout.split("\n\n")[1]
    assert len(description.split()) >= 8, result.stdout


DATA_EXAMPLES = [path for path in EXAMPLES if path.name != "quickstart.py"]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.mark.parametrize("example", DATA_EXAMPLES, ids=[path.name for path in DATA_EXAMPLES])
def test_example_without_its_data_exits_non_zero_in_one_line(example, tmp_path):
    """Issue 27: never 'skipping' and exit 0; --help names no path outside the project."""
    result = subprocess.run([sys.executable, str(example), "--data-dir", str(tmp_path / "missing")], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "skipping" not in result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(example.name + ": ") and str(tmp_path / "missing") in last, result.stderr
    help_text = subprocess.run([sys.executable, str(example), "--help"], cwd=ROOT, capture_output=True,
                               text=True, timeout=120).stdout
    assert str(ROOT.parent) not in help_text and "shared/data/" not in help_text.replace("../shared/data", "")


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs the project's ../shared/data")
@pytest.mark.parametrize("example, arguments, expected", [
    ("train_word2bits.py", ["--lines", "3000", "--vector-size", "32", "--epochs", "1", "--output", "{tmp}/w"],
     "bytes a word once bit-packed"),
    ("search_packed_vectors.py", [], "Google analogies 3CosAdd"),
])
def test_example_runs_on_the_shared_data(example, arguments, expected, tmp_path):
    command = [sys.executable, str(ROOT / "examples" / example), "--data-dir", "../shared/data"]
    result = subprocess.run(command + [argument.format(tmp=tmp_path) for argument in arguments], cwd=ROOT,
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0 and expected in result.stdout, result.stderr[-3000:]
