"""The gensim-bits command line end to end on a tiny corpus."""
import gzip
import os
import pathlib
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from gensim.models import KeyedVectors
from gensim.test.utils import common_texts

import gensim_bits
from gensim_bits import QuantizedKeyedVectors
from gensim_bits.cli import main

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 1-bit model trained once by the CLI on a gzipped tiny corpus."""
    folder = tmp_path_factory.mktemp("cli")
    corpus = folder / "corpus.txt.gz"
    with gzip.open(corpus, "wt", encoding="utf-8") as out:
        for _ in range(50):
            out.writelines(" ".join(sentence) + "\n" for sentence in common_texts)
    output = folder / "vectors.gbits"
    status = main(["train", str(corpus), "-o", str(output), "--bits", "1", "--vector-size", "13",
                   "--min-count", "1", "--epochs", "2", "--workers", "1", "--window", "3",
                   "--negative", "4", "--seed", "7", "--compute-loss", "--no-progress"])
    assert status == 0
    return folder, corpus, output


def run(capsys, argv):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_train_writes_a_packed_file(trained, capsys):
    _, _, output = trained
    vectors = QuantizedKeyedVectors.load(output)
    assert (vectors.bits, vectors.vector_size, len(vectors)) == (1, 13, 12)
    assert vectors.nbytes == 12 * 2


def test_train_shows_progress_and_writes_word2vec_text(trained, capsys, tmp_path):
    _, corpus, _ = trained
    output = tmp_path / "vectors.txt"
    status, out, err = run(capsys, ["train", str(corpus), "-o", str(output), "--bits", "2", "--vector-size", "8",
                                    "--min-count", "1", "--epochs", "1", "--workers", "1"])
    assert status == 0 and "2-bit" in out
    assert "epoch 1/1" in err and "word/s" in err  # the tqdm bar
    values = KeyedVectors.load_word2vec_format(output).vectors
    assert set(np.unique(values).round(4)) <= {-0.75, -0.25, 0.25, 0.75}


def test_info_similar_and_convert(trained, capsys, tmp_path):
    _, _, output = trained
    status, out, _ = run(capsys, ["info", str(output)])
    assert status == 0 and "words         12" in out and "bits          1" in out and "26.0x smaller" in out

    status, out, _ = run(capsys, ["similar", str(output), "computer", "--topn", "3"])
    expected = QuantizedKeyedVectors.load(output).most_similar("computer", topn=3)
    assert status == 0
    assert out.splitlines() == [f"{similarity:.4f}  {word}" for word, similarity in expected]
    status, out, _ = run(capsys, ["similar", str(output), "computer", "user", "--negative", "system", "--cosmul"])
    assert status == 0 and len(out.splitlines()) == 9
    status, out, _ = run(capsys, ["similar", str(output), "computer", "user", "--each", "--topn", "2",
                                  "--workers", "2"])
    packed = QuantizedKeyedVectors.load(output)
    assert status == 0 and out.splitlines() == [
        line for word in ("computer", "user")
        for line in [f"{word}:"] + [f"  {value:.4f}  {other}" for other, value in packed.most_similar(word, topn=2)]]

    text, binary, back = tmp_path / "v.txt", tmp_path / "v.bin", tmp_path / "back.gbits"
    for argv in (["convert", str(output), str(text)], ["convert", str(output), str(binary)],
                 ["convert", str(binary), str(back)]):
        assert run(capsys, argv)[0] == 0
    original = QuantizedKeyedVectors.load(output)
    np.testing.assert_array_equal(QuantizedKeyedVectors.load(back).codes, original.codes)
    np.testing.assert_array_equal(KeyedVectors.load_word2vec_format(text).vectors,
                                  original.to_keyed_vectors().vectors)


def test_convert_quantizes_float_vectors_only_when_asked(capsys, tmp_path):
    source = tmp_path / "float.txt"
    keyed_vectors = KeyedVectors(5)
    keyed_vectors.add_vectors(["a", "b"], np.array([[0.1, -0.2, 0.3, 0.9, -0.7]] * 2, dtype=np.float32))
    keyed_vectors.save_word2vec_format(source)
    status, _, err = run(capsys, ["convert", str(source), str(tmp_path / "out.gbits")])
    assert status == 1 and "quantize" in err and len(err.strip().splitlines()) == 1
    status, _, _ = run(capsys, ["convert", str(source), str(tmp_path / "out.gbits"), "--bits", "2", "--quantize"])
    assert status == 0
    assert QuantizedKeyedVectors.load(tmp_path / "out.gbits")["a"].tolist() == [0.25, -0.25, 0.25, 0.75, -0.75]


def test_evaluate_with_given_files(trained, capsys, tmp_path):
    _, _, output = trained
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("# t\ncomputer\tuser\t5\nsystem\teps\t3\ntrees\tgraph\t8\nhuman\tinterface\t2\n")
    questions = tmp_path / "questions.txt"
    questions.write_text(": s\ncomputer user system eps\n")
    report = tmp_path / "results.json"
    status, out, _ = run(capsys, ["evaluate", str(output), "--similarity", str(pairs),
                                  "--analogies", str(questions), "--json", str(report)])
    assert status == 0 and "pairs.tsv" in out and "3CosMul" in out and report.exists()


def test_evaluate_by_frequency_bands(trained, capsys, tmp_path):
    _, _, output = trained
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("computer\tuser\t5\nsystem\teps\t3\ntrees\tgraph\t8\nhuman\tinterface\t2\n"
                     "graph\tminors\t4\nresponse\ttime\t6\n")
    report = tmp_path / "results.json"
    status, out, _ = run(capsys, ["evaluate", str(output), "--similarity", str(pairs), "--by-frequency", "150",
                                  "--json", str(report)])
    assert status == 0 and "count < 150" in out and "count >= 150" in out
    text = tmp_path / "vectors.txt"  # word2vec text keeps no counts: a one-line refusal
    QuantizedKeyedVectors.load(output).to_keyed_vectors().save_word2vec_format(str(text))
    status, _, err = run(capsys, ["evaluate", str(text), "--similarity", str(pairs), "--by-frequency", "150"])
    assert status != 0 and "needs corpus counts" in err and "Traceback" not in err


@pytest.mark.parametrize("argv,message", [
    (["info", "missing.gbits"], "no such file"),
    (["train", "missing.txt", "-o", "out.gbits"], "no such corpus"),
    (["similar", "{vectors}", "notaword"], "'notaword' is not in the vocabulary (12 words)"),
    (["similar", "{vectors}", "human", "--negative", "notaword"], "'notaword' is not in the vocabulary (12 words)"),
    (["evaluate", "{vectors}", "--data-dir", "nowhere"], "no evaluation files"),
    (["info", "{garbage}"], "neither a .gbits file"),
])
def test_errors_are_one_line(trained, capsys, tmp_path, argv, message):
    _, _, output = trained
    garbage = tmp_path / "garbage.txt"
    garbage.write_bytes(b"\x00\x01 not vectors\n")
    argv = [arg.format(vectors=output, garbage=garbage) for arg in argv]
    status, _, err = run(capsys, argv)
    assert status == 1 and message in err and len(err.strip().splitlines()) == 1


def test_bad_arguments_and_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "corpus.txt", "-o", "x.gbits", "--bits", "3"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "invalid choice" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    for flag in ("--bits", "--vector-size", "--window", "--min-count", "--epochs", "--workers", "--negative",
                 "--sample", "--alpha", "--min-alpha", "--seed", "--max-vocab-size", "--thresholded"):
        assert flag in out


def test_console_entry_point_runs_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "gensim_bits.cli", "info", str(tmp_path / "nope.gbits")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "no such file" in result.stderr


def test_evaluate_defaults_to_the_sets_gensim_ships(capsys, tmp_path):
    from gensim.test.utils import datapath
    output = tmp_path / "vectors.gbits"
    assert main(["convert", datapath("euclidean_vectors.bin"), str(output), "--bits", "1", "--quantize"]) == 0
    capsys.readouterr()
    status, out, _ = run(capsys, ["evaluate", str(output)])
    assert status == 0
    assert "wordsim353.tsv" in out and "simlex999.txt" in out and "questions-words.txt" in out


def test_train_progress_uses_no_private_gensim_hook(capsys, tmp_path):
    from gensim.models import Word2Vec

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(" ".join(sentence) + "\n" for sentence in common_texts * 20))
    original = Word2Vec._log_progress
    status, _, err = run(capsys, ["train", str(corpus), "-o", str(tmp_path / "v.gbits"), "--vector-size", "8",
                                  "--min-count", "1", "--epochs", "2", "--workers", "1"])
    assert status == 0 and "epoch 2/2" in err and "100%" in err
    assert Word2Vec._log_progress is original
    assert "_log_progress" not in open(main.__code__.co_filename).read()


def status_of(argv):
    """main's exit status, whether argparse exits or main returns it."""
    try:
        return main(argv)
    except SystemExit as exit_info:
        return exit_info.code


def gensim_bits_command(*args):
    """`python -m gensim_bits ARGS` with this checkout first on the path."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return [sys.executable, "-m", "gensim_bits", *args], env


def test_version_and_python_m(capsys):
    assert status_of(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"gensim-bits {gensim_bits.__version__} (nlp-compress)"
    command, env = gensim_bits_command("--version")
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0 and result.stdout.strip().startswith("gensim-bits ")


def test_a_closed_pipe_is_a_quiet_exit_0(trained, tmp_path):
    """The reader of stdout is gone before the command writes (deterministic), and `| head -1`."""
    _, _, output = trained
    for args in (["evaluate", str(output)], ["similar", str(output), "human"]):
        read_end, write_end = os.pipe()
        os.close(read_end)
        command, env = gensim_bits_command(*args)
        try:
            result = subprocess.run(command, stdout=write_end, stderr=subprocess.PIPE, text=True, env=env,
                                    timeout=120)
        finally:
            os.close(write_end)
        assert result.returncode == 0 and result.stderr == "", (args, result.stderr)
    command, env = gensim_bits_command("evaluate", str(output))
    pipeline = f"set -o pipefail; {' '.join(command)} | head -1"
    result = subprocess.run(["bash", "-c", pipeline], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0 and result.stderr == "" and len(result.stdout.splitlines()) == 1


def documented_exit_statuses():
    """{status: meaning} from the exit-status table of docs/cli.md."""
    text = (ROOT / "docs" / "cli.md").read_text()
    return {int(status): meaning for status, meaning in re.findall(r"^\| (\d+) \| (.+?) \|$", text, re.M)}


def test_exit_statuses_are_those_docs_cli_md_gives(trained, tmp_path, capsys):
    _, corpus, output = trained
    documented = documented_exit_statuses()
    assert set(documented) == {0, 1, 2, 130}, documented
    cases = {
        0: [["info", str(output)]],
        1: [["info", str(tmp_path / "missing.gbits")], ["similar", str(output), "notaword"]],
        2: [["train", str(corpus), "-o", str(tmp_path / "v.gbits"), "--vector-size", "-5"],
            # the arguments are checked before the files: still 2 when the corpus is missing too
            ["train", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "v.gbits"), "--vector-size", "-5"],
            ["train", str(corpus), "-o", str(tmp_path / "v.gbits"), "--bits", "3"],
            ["similar", str(output), "human", "--each", "--negative", "user"],
            ["no-such-command"]],
    }
    for status, argvs in cases.items():
        for argv in argvs:
            assert status_of(argv) == status, argv
            err = capsys.readouterr().err
            assert status == 0 or len(err.strip().splitlines()) == 1, err


def test_preset_paper_sets_the_recipe_and_says_so(capsys, tmp_path, monkeypatch):
    from gensim_bits.word2bits import PAPER_HYPERPARAMETERS, Word2Bits

    seen = {}

    def record(self, *args, **kwargs):
        seen.update(bits=self.bits, vector_size=self.vector_size, window=self.window, negative=self.negative,
                    sample=self.sample, alpha=self.alpha, min_alpha=self.min_alpha, epochs=self.epochs,
                    min_count=self.min_count)
        raise KeyboardInterrupt  # stop before any work: only the settings are under test

    monkeypatch.setattr(Word2Bits, "build_vocab", record)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a b c\n")
    status = status_of(["train", str(corpus), "-o", str(tmp_path / "v.gbits"), "--preset", "paper",
                        "--epochs", "2"])
    err = capsys.readouterr().err
    assert status == 130
    assert seen == {**PAPER_HYPERPARAMETERS, "bits": 1, "vector_size": 800, "epochs": 2}
    line = next(line for line in err.splitlines() if line.startswith("--preset paper"))
    assert "--bits 1 --vector-size 800 --window 10 --negative 12" in line and "kept your --epochs 2" in line


def test_demo_runs_the_quickstart(capsys):
    assert main(["demo", "--epochs", "1", "--vector-size", "8", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "corpus:" in out and "trained Word2Bits" in out and "% saved." in out


@pytest.mark.parametrize("how", ["gensim-bits demo", "examples/quickstart.py"])
def test_quickstart_exits_cleanly_on_ctrl_c(how):
    command, env = gensim_bits_command("demo", "--epochs", "100000", "--workers", "1")
    if how == "examples/quickstart.py":
        command = [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--epochs", "100000", "--workers", "1"]
    # A test run started in the background (`pytest ... &`) passes SIGINT on ignored, and Python
    # keeps an ignored SIGINT ignored: give the child the default, as a terminal would.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(env, PYTHONUNBUFFERED="1"),
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert process.stdout.readline().startswith("corpus:")  # training starts right after this line
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].endswith("interrupted"), err
