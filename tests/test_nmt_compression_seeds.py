"""benchmarks/nmt_compression.py's --fine-tune-seed: it reseeds only the --qat-from-float
fine-tuning of the float model found in --models-dir, and is recorded with the weights."""
import importlib.util
import json
import pathlib

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
VOCAB = 24


@pytest.fixture(scope="module")
def nmt_benchmark():
    spec = importlib.util.spec_from_file_location("nmt_compression",
                                                  ROOT / "benchmarks" / "nmt_compression.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def copy_task(rows, length=6, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(4, VOCAB, (rows, length)).astype("int32")
    source = np.concatenate([tokens, np.full((rows, 1), 3, "int32")], axis=1)
    decoder = np.concatenate([np.full((rows, 1), 2, "int32"), tokens], axis=1)
    return [source, decoder], source.copy()


def test_fine_tune_seed_parsed_and_defaults_to_seed(nmt_benchmark):
    assert nmt_benchmark.parse_arguments([]).fine_tune_seed is None
    args = nmt_benchmark.parse_arguments(["--qat-from-float", "2", "--fine-tune-seed", "2"])
    assert (args.seed, args.fine_tune_seed) == (0, 2)
    with pytest.raises(SystemExit):
        nmt_benchmark.parse_arguments(["--qat-from-float", "2", "--fine-tune-seed", "one"])


def test_fine_tune_seed_without_fine_tuning_is_refused(nmt_benchmark, capsys):
    with pytest.raises(SystemExit):
        nmt_benchmark.parse_arguments(["--fine-tune-seed", "1"])
    assert "--fine-tune-seed seeds the --qat-from-float fine-tuning" in capsys.readouterr().err


def test_fine_tune_seed_reseeds_the_fine_tuning_from_the_same_float_model(nmt_benchmark, tmp_path):
    train, dev = copy_task(32), copy_task(8, seed=1)
    start = None
    weights = {}
    for seed in (1, 2):
        models = tmp_path / f"seed{seed}"
        models.mkdir()
        args = nmt_benchmark.parse_arguments([
            "--qat-from-float", "1", "--layers", "1", "--scale", "0.125", "--batch-size", "8",
            "--models-dir", str(models), "--fine-tune-seed", str(seed)])
        float_model = nmt_benchmark.build(args, "small", VOCAB, None)
        if start is None:
            start = float_model.get_weights()
        float_model.set_weights(start)  # the same 8-epoch float model in every models dir
        float_model.save_weights(str(models / "small_fp32.weights.h5"))
        model, _, reused, training = nmt_benchmark.trained_model(
            args, "small fp32 fine-tuned", "small", None, False, VOCAB, train, dev, None)
        assert not reused and training == "float fine-tuning of small fp32 for 1 epochs"
        info = json.loads((models / "small_fp32_fine-tuned.weights.h5.json").read_text())
        assert (info["settings"]["seed"], info["settings"]["fine_tune_seed"]) == (0, seed)
        weights[seed] = model.get_weights()
    kernel = [i for i, w in enumerate(start) if w.ndim == 2 and w.shape[0] == VOCAB][0]
    moved = [np.abs(weights[s][kernel] - start[kernel]).max() for s in (1, 2)]
    between = np.abs(weights[1][kernel] - weights[2][kernel]).max()
    # both fine-tuned from the same start; the seeds shuffle and drop out differently
    assert min(moved) > 0 and between > 0.01 * max(moved)
