"""Resumable training of benchmarks/rae_reconstruction.py: an interrupted run resumed from its
checkpoint gives the losses and weights of an uninterrupted one."""

import importlib.util
import os
import shutil

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
from gensim.models import KeyedVectors  # noqa: E402

from keras_compress.rae import LSTMAutoencoder, RecursiveAutoencoder, SentenceBatches  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 24
# Two curriculum phases (two data streams of one width each: few traces), each crossing an
# epoch boundary (a reshuffle).
PHASES = [(4, 9), (7, STEPS - 9)]
SETTINGS = {"steps": STEPS, "model": "tiny"}


def benchmark():
    spec = importlib.util.spec_from_file_location("rae_reconstruction", os.path.join(ROOT, "benchmarks", "rae_reconstruction.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = benchmark()


def tiny_run(kind):
    rng = np.random.default_rng(0)
    words = KeyedVectors(6)
    words.add_vectors([f"w{i}" for i in range(40)], rng.normal(size=(40, 6)).astype("float32"))
    sentences = [[f"w{j}" for j in rng.integers(40, size=n)] for n in rng.integers(2, 8, size=40)]
    keras.utils.set_random_seed(1)
    if kind == "rae":
        model = RecursiveAutoencoder(6, 8, max_length=7)
    else:
        model = LSTMAutoencoder(6, 8, units=5, max_length=7)
    model.build()
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(3e-3, STEPS)))
    streams = {
        longest: bench.BatchStream(SentenceBatches([s for s in sentences if len(s) <= longest], words,
                                                   batch_size=8, bucket_width=7, seed=0))
        for longest, _ in PHASES
    }
    return model, streams


def train(model, streams, **kwargs):
    return bench.train_batches(model, "tiny", PHASES, streams, 8, log_every=5, settings=SETTINGS, **kwargs)


# The loop is the same for both models; the RAE compiles longer, so its case runs in the slow group.
@pytest.mark.parametrize("kind", [pytest.param("rae", marks=pytest.mark.slow), "lstm"])
def test_an_interrupted_run_resumes_to_the_uninterrupted_losses_and_weights(kind, tmp_path):
    reference, streams = tiny_run(kind)
    whole = train(reference, streams)
    assert whole["seen"] == STEPS and whole["stopped"] is None
    assert len(whole["losses"]) == STEPS and len(whole["curve"]) == STEPS // 5

    # Checkpoints every 5 batches; the run is killed at batch 13, so its last checkpoint is batch 10.
    path = str(tmp_path / "run" / f"{kind}.npz")
    kept = str(tmp_path / "at_10.npz")

    def keep_batch_10(record):
        if record["seen"] == 10:
            shutil.copy(path, kept)

    model, streams = tiny_run(kind)
    first = train(model, streams, checkpoint=path, checkpoint_every=5, on_progress=keep_batch_10, stop_at=13)
    assert first["stopped"] == "batch 13" and first["seen"] == 13
    os.replace(kept, path)  # what a kill at batch 13 leaves: the checkpoint of batch 10

    model, streams = tiny_run(kind)  # a new process: fresh model and data, other initial weights don't matter
    keras.utils.set_random_seed(99)
    resumed = train(model, streams, checkpoint=path, checkpoint_every=5, resume=True)
    assert resumed["seen"] == STEPS and resumed["stopped"] is None
    np.testing.assert_allclose(resumed["losses"], whole["losses"], rtol=1e-4, atol=1e-6)
    assert [point["batch"] for point in resumed["curve"]] == [point["batch"] for point in whole["curve"]]
    np.testing.assert_allclose([p["loss"] for p in resumed["curve"]], [p["loss"] for p in whole["curve"]], rtol=1e-4)
    for mine, theirs in zip(model.variables, reference.variables):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs), rtol=1e-4,
                                   atol=1e-5)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == STEPS
    assert sorted(os.listdir(tmp_path / "run")) == [f"{kind}.npz"]  # no temporary file left behind
    with np.load(path, allow_pickle=False) as stored:  # plain arrays: no pickled classes or module paths
        assert "meta" in stored.files and stored["losses"].shape == (STEPS,)


def test_a_missing_checkpoint_restarts_and_says_so(tmp_path, capsys):
    model, streams = tiny_run("lstm")
    path = str(tmp_path / "gone.npz")
    record = train(model, streams, checkpoint=path, resume=True, stop_at=3)
    assert record["seen"] == 3
    assert "no checkpoint at" in capsys.readouterr().out and os.path.exists(path)


def test_checkpoints_are_never_overwritten_or_mixed_up(tmp_path):
    model, streams = tiny_run("lstm")
    path = str(tmp_path / "run.npz")
    train(model, streams, checkpoint=path, stop_at=2)
    with pytest.raises(SystemExit, match="pass --resume"):
        train(*tiny_run("lstm"), checkpoint=path)
    with pytest.raises(SystemExit, match="other settings.*steps=24, now 30"):
        bench.train_batches(*tiny_run("lstm")[:1], "tiny", PHASES, tiny_run("lstm")[1], 8, checkpoint=path,
                            resume=True, settings={**SETTINGS, "steps": 30})
    with pytest.raises(SystemExit, match="variables saved|has shape"):
        rae, rae_streams = tiny_run("rae")
        train(rae, rae_streams, checkpoint=path, resume=True)


def test_partial_results_land_at_each_evaluation(tmp_path):
    model, streams = tiny_run("lstm")
    seen = []
    record = train(model, streams, evaluate=lambda m: {"dev_mse": 1.0}, eval_every=10,
                   on_progress=lambda r: seen.append((r["seen"], len(r["evals"]))))
    assert record["evals"] == [{"batch": 10, "dev_mse": 1.0}, {"batch": 20, "dev_mse": 1.0}]
    assert seen == [(10, 1), (20, 2), (STEPS, 2)]


def test_init_from_takes_the_weights_only(tmp_path):
    """--init-from (a warm restart): the checkpoint's weights, with a fresh optimizer and data order."""
    model, streams = tiny_run("lstm")
    path = str(tmp_path / "lstm.npz")
    train(model, streams, checkpoint=path, stop_at=7)
    keras.utils.set_random_seed(5)
    restarted, _ = tiny_run("lstm")
    assert bench.load_weights_from_checkpoint(path, restarted) == 7
    for mine, theirs in zip(restarted.variables, model.variables):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs), rtol=1e-6)
    assert int(keras.ops.convert_to_numpy(restarted.optimizer.iterations)) == 0
    # a model of another shape, or no file: a one-line refusal, not a crash
    with pytest.raises(SystemExit, match="variables saved|has shape"):
        bench.load_weights_from_checkpoint(path, tiny_run("rae")[0])
    with pytest.raises(SystemExit, match="no checkpoint at"):
        bench.load_weights_from_checkpoint(str(tmp_path / "gone.npz"), restarted)
