"""benchmarks/quality_seeds.py on gensim's Lee corpus: per-run JSON, resuming, the summary's
spreads, and the `1eos` rules (word2bits.cpp's end-of-line token) put into a built model."""
import importlib.util
import json
import os
import pathlib

import numpy as np
import pytest
from gensim.test.utils import datapath

from gensim_bits import Word2Bits

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def quality_seeds():
    spec = importlib.util.spec_from_file_location("quality_seeds", ROOT / "benchmarks" / "quality_seeds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_runs_write_json_resume_and_summarize(quality_seeds, tmp_path, capsys):
    argv = ["--corpus", datapath("lee_background.cor"), "--lines", "120", "--epochs", "1", "--seeds", "1", "2",
            "--runs", "1:8", "1eos:8", "gensim:8", "--min-count", "2", "--bands", "5", "--restrict-vocab", "500",
            "--wordsim", datapath("wordsim353.tsv"), "--analogies", datapath("questions-words.txt"),
            "--work-dir", str(tmp_path / "work"), "--output", str(tmp_path / "out.json")]
    assert quality_seeds.main(argv) == 0
    runs = sorted(os.listdir(tmp_path / "out"))
    assert runs == [f"{run}_seed{seed}.json" for run in ("1_8", "1eos_8", "gensim_8") for seed in (1, 2)]
    entry = json.loads((tmp_path / "out" / "1_8_seed1.json").read_text())
    assert {"wordsim353", "wordsim353 count < 5", "wordsim353 count >= 5"} <= set(entry["scores"])
    report = json.loads((tmp_path / "out.json").read_text())
    row = report["runs"]["1:8"]["scores"]["wordsim353"]
    assert report["runs"]["1:8"]["seeds"] == [1, 2] and len(row["values"]) == 2
    assert row["min"] <= row["mean"] <= row["max"] and row["values"][0] != row["values"][1]
    capsys.readouterr()
    assert quality_seeds.main(argv) == 0  # everything is written: nothing trains again
    assert "training" not in capsys.readouterr().out


def test_pair_bootstrap_from_saved_vectors(quality_seeds, tmp_path, capsys):
    argv = ["--corpus", datapath("lee_background.cor"), "--lines", "120", "--epochs", "1", "--seeds", "1", "2",
            "--runs", "1:8", "gensim:8", "--min-count", "2", "--bands", "5", "--restrict-vocab", "500",
            "--wordsim", datapath("wordsim353.tsv"), "--analogies", datapath("questions-words.txt"),
            "--work-dir", str(tmp_path / "work"), "--output", str(tmp_path / "out.json"),
            "--save-dir", str(tmp_path / "vectors"), "--bootstrap", "40"]
    assert quality_seeds.main(argv) == 0
    intervals = json.loads((tmp_path / "out.json").read_text())["pair_bootstrap"]["intervals"]["1:8 - gensim:8"]
    assert set(intervals) == {"wordsim353", "wordsim353 count < 5", "wordsim353 count >= 5"}
    assert all(-2 <= low <= high <= 2 for low, high in intervals.values())
    assert "95% interval over 40 resamples" in capsys.readouterr().out


def test_sentinel_rules_match_word2bits_cpp(quality_seeds):
    model = Word2Bits(vector_size=8, min_count=5, sample=1e-3, workers=1)
    model.build_vocab(corpus_file=datapath("lee_background.cor"))
    lines = model.corpus_count
    counts = np.array([model.wv.get_vecattr(word, "count") for word in model.wv.index_to_key], dtype=np.float64)
    quality_seeds.apply_sentinel_rules(model, lines)
    threshold = 1e-3 * (counts.sum() + lines)  # word2bits.cpp's train_words counts one </s> a line
    keep = np.minimum((np.sqrt(counts / threshold) + 1) * threshold / counts, 1)
    np.testing.assert_allclose(model.wv.expandos["sample_int"] / (2 ** 32 - 1), keep, rtol=1e-6)
    # A </s> drawn from the table (weight lines ** 0.75) becomes a uniformly drawn word.
    weights = np.diff(np.concatenate([[0], model.cum_table.astype(np.float64)])) / model.cum_table[-1]
    sentinel = lines ** 0.75 / ((counts ** 0.75).sum() + lines ** 0.75)
    expected = (1 - sentinel) * counts ** 0.75 / (counts ** 0.75).sum() + sentinel / len(counts)
    np.testing.assert_allclose(weights, expected, atol=2e-9)
