"""CALR and CyclicLR: values against hand-computed sequences, serialization, callbacks, plot."""

import math

import keras
import numpy as np
import pytest

from keras_compress.training import CALR, CALRScheduler, CyclicLR, plot_schedule


def values(schedule, steps):
    return np.asarray(keras.ops.convert_to_numpy(schedule(np.arange(steps, dtype="float32"))))


def test_calr_through_a_warm_restart():
    # Upper bound 1, 0.5, 0.25 over three epochs of four steps; 0.125 = lower bound -> restart.
    schedule = CALR(1.0, decay=0.5, step_size=2, steps_per_epoch=4)
    assert schedule.lower_bound == 0.125 and schedule.annealing_epochs == 3
    expected = [
        0.125, 0.5625, 1.0, 0.5625,  # epoch 0: triangle up to 1
        0.125, 0.3125, 0.5, 0.3125,  # epoch 1: up to 0.5
        0.125, 0.1875, 0.25, 0.1875,  # epoch 2: up to 0.25
        0.125, 0.5625, 1.0, 0.5625,  # epoch 3: warm restart
    ]
    np.testing.assert_allclose(values(schedule, 16), expected, rtol=1e-6)
    assert float(keras.ops.convert_to_numpy(schedule(13))) == pytest.approx(0.5625)


def test_calr_paper_defaults_and_explicit_lower_bound():
    schedule = CALR(1e-3)
    assert schedule.lower_bound == pytest.approx(1e-6) and schedule.annealing_epochs == 3
    # Peaks of epochs 0, 1, 2, 3 with step_size = steps_per_epoch / 2.
    short = CALR(1e-3, step_size=5, steps_per_epoch=10)
    np.testing.assert_allclose(values(short, 40)[5::10], [1e-3, 1e-4, 1e-5, 1e-3], rtol=1e-5)
    # A lower bound of 0.3 with decay 0.5: upper bounds 1, 0.5, then 0.25 <= 0.3 restarts.
    assert CALR(1.0, decay=0.5, lower_bound=0.3).annealing_epochs == 2


def test_cyclic_lr_modes():
    triangular = CyclicLR(0.1, 1.0, step_size=2)
    np.testing.assert_allclose(values(triangular, 8), [0.1, 0.55, 1.0, 0.55, 0.1, 0.55, 1.0, 0.55], rtol=1e-6)
    halving = CyclicLR(0.1, 1.0, step_size=2, mode="triangular2")
    np.testing.assert_allclose(values(halving, 8), [0.1, 0.55, 1.0, 0.55, 0.1, 0.325, 0.55, 0.325], rtol=1e-6)
    exp_range = CyclicLR(0.1, 1.0, step_size=2, mode="exp_range", gamma=0.9)
    steps = np.arange(8)
    height = np.maximum(0, 1 - np.abs(steps / 2 - 2 * np.floor(1 + steps / 4) + 1))
    np.testing.assert_allclose(values(exp_range, 8), 0.1 + 0.9 * height * 0.9**steps, rtol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="decay"):
        CALR(1e-3, decay=1.5)
    with pytest.raises(ValueError, match="lower_bound"):
        CALR(1e-3, lower_bound=1e-2)
    with pytest.raises(ValueError, match="mode"):
        CyclicLR(mode="cosine")
    with pytest.raises(ValueError, match="maximal"):
        CyclicLR(1e-2, 1e-3)


def tiny_model(optimizer):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer=optimizer, loss="mse")
    return model


@pytest.mark.parametrize(
    "schedule",
    [CALR(1e-2, decay=0.5, step_size=3, steps_per_epoch=5), CyclicLR(1e-3, 1e-2, 3, "exp_range", 0.99)],
)
def test_schedule_survives_keras_save_and_load(tmp_path, schedule):
    model = tiny_model(keras.optimizers.Adam(schedule))
    x, y = np.ones((8, 4), "float32"), np.zeros((8, 2), "float32")
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    restored = loaded.optimizer._learning_rate
    assert type(restored) is type(schedule) and restored.get_config() == schedule.get_config()
    np.testing.assert_allclose(values(restored, 20), values(schedule, 20))


def test_callback_sets_the_same_rates_as_the_schedule():
    schedule = CALR(1e-2, decay=0.5, step_size=2, steps_per_epoch=4)
    model = tiny_model(keras.optimizers.SGD(0.5))
    seen = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(float(model.optimizer.learning_rate.numpy()))
    )
    x, y = np.ones((16, 4), "float32"), np.zeros((16, 2), "float32")
    history = model.fit(
        x, y, batch_size=4, epochs=4, verbose=0,
        callbacks=[CALRScheduler(1e-2, decay=0.5, step_size=2, steps_per_epoch=4), record],
    )
    np.testing.assert_allclose(seen, values(schedule, 16), rtol=1e-6)
    assert len(history.history["learning_rate"]) == 4
    # an optimizer that already has a schedule: one or the other, said before the first step
    scheduled = tiny_model(keras.optimizers.SGD(CALR(1e-2, step_size=2, steps_per_epoch=4)))
    with pytest.raises(ValueError, match="already has a LearningRateSchedule"):
        scheduled.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[CALRScheduler(1e-2)])
    assert int(scheduled.optimizer.iterations.numpy()) == 0


def test_plot_schedule_writes_a_png(tmp_path):
    path = tmp_path / "calr.png"
    figure = plot_schedule(CALR(1e-3, step_size=5, steps_per_epoch=10), 40, path=path, steps_per_epoch=10)
    assert path.stat().st_size > 1000
    line = figure.axes[0].lines[0]
    assert len(line.get_ydata()) == 40 and max(line.get_ydata()) == pytest.approx(1e-3)


@pytest.mark.parametrize("make", [
    lambda value: CALR(value),
    lambda value: CALR(1e-3, decay=value),
    lambda value: CALR(1e-3, step_size=value),
    lambda value: CALR(1e-3, steps_per_epoch=value),
    lambda value: CALR(1e-3, lower_bound=value),
    lambda value: CyclicLR(value, 1e-3),
    lambda value: CyclicLR(1e-4, value),
    lambda value: CyclicLR(step_size=value),
    lambda value: CyclicLR(mode="exp_range", gamma=value),
])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), np.float32("nan")])
def test_nan_and_inf_are_refused(make, value):
    # NaN passed every comparison before and made every rate NaN.
    with pytest.raises(ValueError, match="finite"):
        make(value)


def test_numpy_scalars_are_accepted_and_serialize():
    schedule = CALR(np.float32(1e-3), decay=np.float64(0.5), step_size=np.int64(2), steps_per_epoch=np.int32(4))
    reference = CALR(1e-3, decay=0.5, step_size=2, steps_per_epoch=4)
    np.testing.assert_allclose(values(schedule, 16), values(reference, 16), rtol=1e-6)
    config = schedule.get_config()
    assert all(type(value) in (int, float, str) for value in config.values())
    cyclic = CyclicLR(np.float32(0.1), np.float64(1.0), step_size=np.int64(2), gamma=np.float32(0.9))
    assert type(cyclic.step_size) is int and type(cyclic.gamma) is float
    with pytest.raises(TypeError, match="number"):
        CALR("0.001")
    with pytest.raises(TypeError, match="number"):
        CyclicLR(step_size=True)


def test_annealing_epochs_is_computed_without_a_loop(monkeypatch):
    checks = []
    original = CALR._upper_bound_is_above_floor
    monkeypatch.setattr(CALR, "_upper_bound_is_above_floor",
                        lambda self, epoch: checks.append(epoch) or original(self, epoch))
    schedule = CALR(1.0, decay=1 - 1e-9, lower_bound=1e-8)  # the old loop ran ~1.8e10 times
    assert len(checks) <= 6, len(checks)  # the logarithm, then the exact comparison at the edge
    # what it computes: the last upper bound above the floor is that of epoch annealing_epochs - 1
    last = schedule.annealing_epochs - 1
    assert original(schedule, last) and not original(schedule, last + 1)
    assert abs(schedule.annealing_epochs - math.log(1e-8) / math.log(1 - 1e-9)) < 2
    assert np.isfinite(values(schedule, 3)).all()
    for decay, lower_bound, epochs in [(0.1, None, 3), (0.5, 0.125, 3), (0.5, 0.3, 2), (0.5, 0.25 + 1e-12, 2),
                                       (0.9, 0.9 ** 7, 7), (0.999, 0.999 ** 5000, 5000)]:
        assert CALR(1.0, decay=decay, lower_bound=lower_bound).annealing_epochs == epochs
    assert CALR(1.0, decay=0.5, lower_bound=0.0).annealing_epochs == math.inf


@pytest.mark.parametrize("make,message", [
    (lambda: CALR(1e300), "float32"),
    (lambda: CALR(1e-3, step_size=1e-300), "at least 1"),  # 0 in float32: NaN rates
    (lambda: CALR(1e-3, steps_per_epoch=0.5), "at least 1"),
    (lambda: CALR(1e-3, step_size=2 ** 2000), "float32"),
    (lambda: CyclicLR(1e-4, 1e-3, mode="exp_range", gamma=1.5), "gamma"),  # gamma**step overflows
    (lambda: CyclicLR(1e-4, 4e38), "float32"),
    (lambda: CyclicLR(0.0, 1e-3, step_size=1e-30), "at least 1"),
])
def test_arguments_that_made_nan_rates_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_rates_stay_finite_at_extreme_accepted_arguments():
    for schedule in (CALR(3e38, decay=1e-30, step_size=1, steps_per_epoch=1, lower_bound=1e-38),
                     CyclicLR(0.0, 3e38, step_size=1, mode="exp_range", gamma=1e-30),
                     CyclicLR(0.0, 1e-3, step_size=2 ** 70, mode="triangular2")):
        steps = np.array([0, 1, 2, 10, 1e6, 1e9], dtype="float32")
        assert np.isfinite(np.asarray(keras.ops.convert_to_numpy(schedule(steps)))).all()
