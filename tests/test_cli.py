"""The gensim-bits command line end to end on a tiny corpus."""
import gzip
import subprocess
import sys

import numpy as np
import pytest
from gensim.models import KeyedVectors
from gensim.test.utils import common_texts

from gensim_bits import QuantizedKeyedVectors
from gensim_bits.cli import main


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


@pytest.mark.parametrize("argv,message", [
    (["info", "missing.gbits"], "no such file"),
    (["train", "missing.txt", "-o", "out.gbits"], "no such corpus"),
    (["similar", "{vectors}", "notaword"], "not present"),
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
