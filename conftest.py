"""Run the documentation's code blocks the way a reader would: in an empty folder.

pytest-markdown-docs turns every ```python block of README.md and docs/*.md into a test
(CONTRIBUTING.md has the convention). Blocks save files such as ``vectors.gbits`` by
relative path, so each runs in its own temporary directory instead of the repository.
"""
import pytest


@pytest.fixture(autouse=True)
def _docs_blocks_run_in_a_temporary_directory(request, tmp_path, monkeypatch):
    if request.node.get_closest_marker("markdown-docs") is not None:
        monkeypatch.chdir(tmp_path)
    yield

# MkDocs hooks are build code for the site, not documentation to test (and need mkdocs).
collect_ignore = ["docs/hooks"]
