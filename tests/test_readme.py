"""The README's Python blocks show what they do (issue 27): each prints, its output follows
it in a ```text block, and a Keras block silences TensorFlow's C++ log as the examples do.
(pytest-markdown-docs runs the blocks themselves.)"""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def python_blocks_and_what_follows():
    text = (ROOT / "README.md").read_text()
    pattern = re.compile(r"```python\n(.*?)```\n\n?(```text\n.*?```)?", re.S)
    return [(match.group(1), match.group(2)) for match in pattern.finditer(text)]


def test_every_readme_block_prints_and_shows_its_output():
    blocks = python_blocks_and_what_follows()
    assert len(blocks) >= 3
    for code, output in blocks:
        assert "print(" in code, code[:200]
        assert output, f"no ```text output after:\n{code[:200]}"
        if "import keras" in code:
            assert code.index('os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")') < code.index("import keras")


def test_the_keras_section_names_its_install_command_first():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Keras users"):]
    assert section.index('pip install "nlp-compress[tflite]"') < section.index("```python")
    assert 'pip install ".[all]"' in text and "in one command" in text
