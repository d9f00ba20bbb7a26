"""Type hints on gensim_bits's public API, checked by mypy in the default run (issue 27).

The public modules are those each package's ``__init__.py`` imports from, plus gensim_bits's
command line and quickstart and keras_compress's applications (``nmt``, ``rae``, ``models``).
Every public function of gensim_bits is annotated (checked below); keras_compress's modules
are type-checked by mypy where they are annotated.
"""
import ast
import importlib
import inspect
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def public_modules():
    names = {"gensim_bits", "gensim_bits.cli", "gensim_bits.quickstart",
             "keras_compress", "keras_compress.nmt", "keras_compress.rae", "keras_compress.models"}
    for package in ("gensim_bits", "keras_compress"):
        tree = ast.parse((ROOT / package / "__init__.py").read_text())
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(package):
                names.add(node.module)
                # `from keras_compress import engine, export`: submodules named in the import
                names.update(f"{node.module}.{alias.name}" for alias in node.names
                             if (ROOT / node.module.replace(".", "/") / f"{alias.name}.py").is_file()
                             or (ROOT / node.module.replace(".", "/") / alias.name / "__init__.py").is_file())
    return sorted(names)


def module_file(name):
    path = ROOT / name.replace(".", "/")
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def public_functions():
    """(name, function) for every public function and method the public modules define."""
    import gensim_bits

    found = []
    for name in gensim_bits.__all__:
        value = getattr(gensim_bits, name)
        members = vars(value).items() if inspect.isclass(value) else [(name, value)]
        for member_name, member in members:
            if member_name.startswith("_") and member_name != "__init__":
                continue
            if isinstance(member, (classmethod, staticmethod)):
                member = member.__func__
            if isinstance(member, property):
                member = member.fget
            # methods gensim defines and our classes reuse as they are (n_similarity, ...) are gensim's
            if inspect.isfunction(member) and member.__module__.startswith("gensim_bits"):
                found.append((f"{name}.{member_name}" if inspect.isclass(value) else name, member))
    for module_name in ("gensim_bits.cli", "gensim_bits.quickstart", "gensim_bits.word2vec_format"):
        module = importlib.import_module(module_name)
        found += [(f"{module_name}.{name}", function) for name, function in vars(module).items()
                  if inspect.isfunction(function) and function.__module__ == module_name
                  and not name.startswith("_") and name in (getattr(module, "__all__", None) or PUBLIC[module_name])]
    return found


PUBLIC = {
    "gensim_bits.cli": ["main"],
    "gensim_bits.quickstart": ["main", "run", "add_arguments"],
    "gensim_bits.word2vec_format": ["read_word2vec", "save_word2vec", "counts_path", "check_words"],
}


def test_the_public_api_is_annotated():
    functions = public_functions()
    assert len(functions) > 50  # the scan found the classes' methods
    missing = []
    for name, function in functions:
        signature = inspect.signature(function)
        parameters = [parameter for parameter in signature.parameters.values()
                      if parameter.name not in ("self", "cls")]
        if any(parameter.annotation is parameter.empty for parameter in parameters) or \
                signature.return_annotation is signature.empty:
            missing.append(name)
    assert not missing, f"no type hints: {missing}"


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="needs mypy (test extra)")
def test_mypy_passes_on_the_public_modules():
    files = [str(module_file(name)) for name in public_modules()]
    assert all(pathlib.Path(file).is_file() for file in files), files
    # mypy's own cache (.mypy_cache, git-ignored by mypy) makes a second run take seconds
    result = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), *files],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"no issues found in {len(files)} source files" in result.stdout


def test_both_packages_say_they_are_typed():
    for package in ("gensim_bits", "keras_compress"):
        assert (ROOT / package / "py.typed").is_file()
