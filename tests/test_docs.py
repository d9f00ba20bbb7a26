"""The documentation: its site builds with --strict, shows every result plot, and keeps the code
blocks that are not run (```python notest, see docs/CONTRIBUTING.md) under 20% of them.
The blocks themselves run as tests through pytest-markdown-docs (--markdown-docs in pyproject)."""
import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_fences():
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark")
    for page in PAGES:
        for token in parser.parse(page.read_text(encoding="utf-8")):
            words = token.info.split()
            if token.type == "fence" and words and words[0] in ("python", "py", "python3"):
                yield page, token.map[0] + 1, set(words[1:])


def test_few_code_blocks_are_left_unrun():
    fences = list(python_fences())
    unrun = [f"{page.name}:{line}" for page, line, options in fences if "notest" in options]
    assert len(fences) >= 10
    assert len(unrun) < 0.2 * len(fences), f"{len(unrun)} of {len(fences)} python blocks are notest: {unrun}"


def test_every_result_plot_is_shown_in_the_docs():
    text = "\n".join(page.read_text(encoding="utf-8") for page in PAGES)
    plots = sorted(path.name for path in (ROOT / "benchmarks" / "results").glob("*.png"))
    missing = [name for name in plots if f"../benchmarks/results/{name}" not in text]
    assert plots and not missing, f"plots no page shows: {missing}"


@pytest.mark.skipif(
    not all(importlib.util.find_spec(name) for name in ("mkdocs", "material", "mkdocstrings")),
    reason="the docs extra (mkdocs, mkdocs-material, mkdocstrings) is not installed",
)
def test_site_builds_strict(tmp_path):
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(site)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (site / "index.html").exists() and (site / "api" / "keras_compress" / "index.html").exists()
    # the hook publishes the plots the pages show
    assert (site / "benchmarks" / "results" / "regularization.png").exists()


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [line for line in readme.splitlines() if "python -m pytest" in line and line.startswith("pip install")]
    assert len(commands) == 1, commands
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert commands[0] in ci
