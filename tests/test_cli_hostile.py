"""Issue 10 at the command line: bad flags, unwritable outputs and hostile files each give one
line on stderr and a non-zero exit, before any corpus is scanned or model trained, and no
traceback unless -v."""
import gzip

import numpy as np
import pytest

from gensim_bits import QuantizedKeyedVectors, packing
from gensim_bits.cli import main
from gensim_bits.word2bits import Word2Bits

UNWRITABLE = "/proc/unwritable/vectors.gbits"


@pytest.fixture()
def files(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the king and the queen\nthe man and the woman\n" * 20)
    vectors = tmp_path / "vectors.gbits"
    codes = packing.pack_codes(np.random.default_rng(0).integers(0, 2, (4, 8), dtype=np.uint8), 1)
    QuantizedKeyedVectors(codes, 1, 8, ["king", "queen", "man", "woman"]).save(vectors)
    hostile = tmp_path / "hostile.txt"
    hostile.write_bytes(b"3000000000 4\na .3 .3 .3 .3\n")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("king queen 5\nman woman 3\n")  # spaces, not tabs: no valid pair
    binary_corpus = tmp_path / "latin1.txt"
    binary_corpus.write_bytes(b"caf\xe9 au lait\n" * 5)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    broken_gzip = tmp_path / "broken.txt.gz"
    broken_gzip.write_bytes(gzip.compress(b"the king and the queen\n" * 1000)[:60])
    return {name: str(path) for name, path in dict(
        corpus=corpus, vectors=vectors, hostile=hostile, pairs=pairs, folder=tmp_path, latin1=binary_corpus,
        empty=empty, broken_gzip=broken_gzip, out=tmp_path / "out.gbits").items()}


@pytest.fixture()
def no_training(monkeypatch):
    """Fail the test if the corpus is scanned or anything is trained."""
    def forbidden(*args, **kwargs):
        raise AssertionError("the corpus was scanned or a model trained before the error was found")

    monkeypatch.setattr(Word2Bits, "build_vocab", forbidden)
    monkeypatch.setattr(Word2Bits, "train", forbidden)


def exit_status(argv):
    """main's status, whether argparse exits (SystemExit) or main returns it."""
    try:
        return main(argv)
    except SystemExit as exit_info:
        return exit_info.code


def one_line_failure(capsys, argv, status=1):
    code = exit_status(argv)
    err = capsys.readouterr().err
    assert code == status, err
    # The one progress line a scan prints before it finds bad corpus content is not an error line.
    lines = [line for line in err.strip().splitlines() if not line.startswith("scanning the vocabulary")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


TRAIN = ["train", "{corpus}", "-o", "{out}", "--vector-size", "8", "--min-count", "1", "--epochs", "1",
         "--workers", "1", "--no-progress"]


@pytest.mark.parametrize("flags,status,message", [
    # docs/cli.md: bad arguments exit 2, whether argparse or Word2Bits' range checks refuse them
    (["--vector-size", "0"], 2, "--vector-size must be an integer in [1,"),
    (["--vector-size", "-5"], 2, "--vector-size must be an integer in [1,"),
    (["--window", str(2 ** 31)], 2, "--window must be"),
    (["--negative", str(2 ** 31)], 2, "--negative must be"),
    (["--negative", "-1"], 2, "--negative must be"),
    (["--negative", "0", "--hs", "0"], 2, "nothing to train"),
    (["--workers", "0"], 2, "--workers must be"),
    (["--epochs", "-1"], 2, "--epochs must be"),
    (["--alpha", "nan"], 2, "--alpha: must be a finite number"),
    (["--sample", "inf"], 2, "--sample: must be a finite number"),
    (["--alpha", "-0.5"], 2, "--alpha must be a finite number >= 0"),
    (["--alpha", "fast"], 2, "invalid float value"),
    (["--vector-size", "1e3"], 2, "invalid int value"),
    (["--bits", "3"], 2, "invalid choice"),
    (["--no-such-flag"], 2, "unrecognized arguments"),
    (["--hs", "2"], 2, "invalid choice"),
    (["--seed", "-1"], 2, "--seed: must be >= 0"),
    (["--min-count", "-1"], 2, "--min-count: must be >= 0"),
    (["--max-vocab-size", "0"], 2, "--max-vocab-size: must be >= 1"),
    (["--ns-exponent", "nan"], 2, "--ns-exponent: must be a finite number"),
])
def test_bad_flags_fail_before_any_work(files, capsys, no_training, flags, status, message):
    argv = [arg.format(**files) for arg in TRAIN] + flags
    line = one_line_failure(capsys, argv, status)
    assert message in line


@pytest.mark.parametrize("output,message", [
    (UNWRITABLE, "cannot write output"),
    ("{folder}", "cannot write output"),
    ("{folder}/missing/out.gbits", "does not exist"),
])
def test_unwritable_output_fails_before_training(files, capsys, no_training, output, message):
    argv = [arg.format(**files) for arg in TRAIN]
    argv[argv.index("-o") + 1] = output.format(**files)
    assert message in one_line_failure(capsys, argv)


@pytest.mark.parametrize("argv,message", [
    (["info", "{hostile}"], "promises 3000000000 vectors"),
    (["similar", "{hostile}", "a"], "promises 3000000000 vectors"),
    (["convert", "{hostile}", "{out}"], "promises 3000000000 vectors"),
    (["evaluate", "{hostile}", "--similarity", "{pairs}"], "promises 3000000000 vectors"),
    (["evaluate", "{vectors}", "--similarity", "{pairs}"], "holds no word pairs"),
    (["evaluate", "{vectors}", "--similarity", "{folder}"], "is a folder, not a evaluation file"),
    (["evaluate", "{vectors}", "--similarity", "{pairs}", "--json", UNWRITABLE], "cannot write --json"),
    (["info", "{folder}"], "is a folder, not a file"),
    (["info", "{folder}/missing.gbits"], "no such file"),
    (["convert", "{vectors}", UNWRITABLE], "cannot write output"),
    (["convert", "{vectors}", "{folder}"], "cannot write output"),
    (["similar", "{vectors}", "king", "--topn", "0"], "must be >= 1"),
    (["similar", "{vectors}", "king", "--restrict-vocab", "-3"], "must be >= 1"),
    (["evaluate", "{vectors}", "--restrict-vocab", "0"], "must be >= 1"),
    (["train", "{folder}", "-o", "{out}"], "is a folder, not a corpus file"),
    (["train", "{latin1}", "-o", "{out}", "--min-count", "1"], "is not UTF-8 text"),
    (["train", "{empty}", "-o", "{out}", "--min-count", "1"], "nothing to train"),
    (["train", "{broken_gzip}", "-o", "{out}", "--min-count", "1"], "broken.txt.gz"),
])
def test_hostile_files_and_arguments_give_one_line(files, capsys, argv, message):
    argv = [arg.format(**files) for arg in argv]
    status = 2 if any(flag in argv for flag in ("--topn", "--restrict-vocab")) else 1
    assert message in one_line_failure(capsys, argv, status)


def test_verbose_shows_the_traceback(files):
    with pytest.raises(Exception, match="promises"):
        main(["-v", "info", files["hostile"]])


def test_unexpected_errors_are_one_line_with_a_hint(files, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("something\nunexpected")

    monkeypatch.setattr(QuantizedKeyedVectors, "load", broken)
    line = one_line_failure(capsys, ["info", files["vectors"]])
    assert "RuntimeError: something unexpected (run with -v for the traceback)" in line
