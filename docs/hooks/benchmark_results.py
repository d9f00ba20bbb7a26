"""MkDocs hook: publish the repository's examples and benchmark results with the site.

The Markdown pages link to ``../examples/*.py`` and ``../benchmarks/results/*`` so that they
work when read on GitHub or in an sdist. This hook copies those files into the site under the
same names (``examples/``, ``benchmarks/``) and rewrites the links of top-level pages to match,
so the plots show and the links resolve in the built site too (``mkdocs build --strict``).
It also drops the test options of code fences (``notest``, ``continuation``), and puts the
README (install, extras, quick start) on the page that holds ``<!-- README -->``.
"""
import re
from pathlib import Path

from mkdocs.structure.files import File

FOLDERS = {"examples": ("*.py",), "benchmarks": ("*.py", "results/*.json", "results/*.png")}
LINK_OUT_OF_DOCS = re.compile(r"\]\(\.\./(examples|benchmarks)/")
# pytest-markdown-docs reads options after the language (```python notest); Python-Markdown's
# fences do not accept them, so the site gets the bare language.
FENCE_TEST_OPTIONS = re.compile(r"^(\s*(?:`{3,}|~{3,})\s*(?:python|py|python3))[ \t]+[^\n]*$", re.MULTILINE)


def on_files(files, config):
    root = Path(config["config_file_path"]).parent
    for folder, patterns in FOLDERS.items():
        for pattern in patterns:
            for path in sorted((root / folder).glob(pattern)):
                files.append(File(str(path.relative_to(root)), str(root), config["site_dir"],
                                  config["use_directory_urls"]))
    return files


README_MARKER = "<!-- README -->"


def on_page_markdown(markdown, page, config, files):
    depth = page.file.src_uri.count("/")
    if README_MARKER in markdown:
        readme = (Path(config["config_file_path"]).parent / "README.md").read_text(encoding="utf-8")
        readme = readme.split("\n", 1)[1]  # the page has its own title
        markdown = markdown.replace(README_MARKER, readme.replace("](docs/", "]("))
    markdown = FENCE_TEST_OPTIONS.sub(r"\1", markdown)
    return LINK_OUT_OF_DOCS.sub(lambda match: "](" + "../" * depth + match.group(1) + "/", markdown)
