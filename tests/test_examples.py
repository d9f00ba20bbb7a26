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
