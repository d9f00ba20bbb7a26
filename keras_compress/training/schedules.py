"""Cyclically Annealed Learning Rate (CALR) and cyclic learning rates as Keras 3 schedules.

CALR is Acharya et al. (AAAI 2019), Section 3.2 and Figure 2: triangles between a lower and
an upper bound whose upper bound decays every epoch and restarts when it reaches the lower
bound. CyclicLR is Smith, "Cyclical Learning Rates for Training Neural Networks" (WACV 2017),
Section 3.1: the triangular, triangular2 and exp_range policies.
"""

import math
import numbers

import keras
import numpy as np
from keras import ops

__all__ = ["CALR", "CyclicLR", "plot_schedule"]

CYCLIC_MODES = ("triangular", "triangular2", "exp_range")
FLOAT32_MAX, FLOAT32_TINY = float(np.finfo(np.float32).max), float(np.finfo(np.float32).tiny)


def _number(name, value):
    """``value`` as a Python int or float (numpy scalars welcome); NaN, inf and non-numbers raise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = int(value) if isinstance(value, numbers.Integral) else float(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if abs(value) > FLOAT32_MAX:  # the rates are computed in float32, where it would be inf
        raise ValueError(f"{name} must fit in float32 (at most {FLOAT32_MAX:.3g} in size), got {value!r}")
    return value


def _positive(name, value, minimum=FLOAT32_TINY):
    """A number >= ``minimum``: by default float32's smallest normal (1e-300 is 0 in float32, and a
    division by it gave NaN rates); step counts take 1, so ``step / step_size`` cannot overflow."""
    value = _number(name, value)
    if value < minimum:
        raise ValueError(f"{name} must be a positive number (at least {minimum:.3g}), got {value!r}")
    return value


def _triangle(step, step_size):
    """Smith's triangle wave: 0 at the start of each cycle, 1 after ``step_size`` steps."""
    cycle = ops.floor(1.0 + step / (2.0 * step_size))
    position = ops.abs(step / step_size - 2.0 * cycle + 1.0)
    return ops.maximum(0.0, 1.0 - position), cycle


@keras.saving.register_keras_serializable(package="keras_compress")
class CALR(keras.optimizers.schedules.LearningRateSchedule):
    """Cyclically Annealed Learning Rate (Acharya et al., 2019).

    The rate moves in triangles between ``lower_bound`` and an upper bound, with half-cycles of
    ``step_size`` iterations (it starts at ``lower_bound``). The upper bound starts at
    ``initial_learning_rate`` and is multiplied by ``decay`` after every epoch of
    ``steps_per_epoch`` iterations; when it has fallen to ``lower_bound`` it returns to
    ``initial_learning_rate`` (a warm restart). With the defaults the upper bound runs
    1e-3, 1e-4, 1e-5, 1e-3, ... over epochs.

    Args:
        initial_learning_rate: first upper bound (the paper's 1e-3).
        decay: factor in (0, 1) applied to the upper bound after each epoch (0.1).
        step_size: iterations in half a triangle (the authors used 1000).
        steps_per_epoch: iterations in one annealing period (``len(train_dataset)``).
        lower_bound: the rate at the bottom of each triangle; defaults to
            ``initial_learning_rate * decay**3``.
        name: optional name.

    Example:

    ```python
    schedule = CALR(1e-3, step_size=2 * steps, steps_per_epoch=steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=...)
    ```
    """

    def __init__(
        self,
        initial_learning_rate=1e-3,
        decay=0.1,
        step_size=1000,
        steps_per_epoch=1000,
        lower_bound=None,
        name="CALR",
    ):
        super().__init__()
        initial_learning_rate = _positive("initial_learning_rate", initial_learning_rate)
        step_size = _positive("step_size", step_size, minimum=1)
        steps_per_epoch = _positive("steps_per_epoch", steps_per_epoch, minimum=1)
        decay = _number("decay", decay)
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {decay!r}")
        if lower_bound is None:
            lower_bound = initial_learning_rate * decay**3
        lower_bound = _number("lower_bound", lower_bound)
        if lower_bound < 0:
            raise ValueError(f"lower_bound must be a non-negative number, got {lower_bound!r}")
        if lower_bound >= initial_learning_rate:
            raise ValueError(
                f"lower_bound ({lower_bound}) must be below initial_learning_rate ({initial_learning_rate})"
            )
        self.initial_learning_rate = initial_learning_rate
        self.decay = decay
        self.step_size = step_size
        self.steps_per_epoch = steps_per_epoch
        self.lower_bound = lower_bound
        self.name = name
        self._annealing_epochs = self._count_annealing_epochs()

    @property
    def annealing_epochs(self):
        """Epochs between warm restarts: how many upper bounds lie above ``lower_bound``."""
        return self._annealing_epochs

    def _upper_bound_is_above_floor(self, epoch):
        # The relative tolerance makes decay**3 == the default lower bound count as "reached".
        return self.initial_learning_rate * self.decay**epoch > self.lower_bound * (1 + 1e-9)

    def _count_annealing_epochs(self):
        """1 + the number of epochs k >= 1 with ``initial * decay**k`` above the floor, in O(1).

        A loop took ~1e10 steps for ``decay=1 - 1e-9``; the logarithm gives the count directly and
        the exact comparison then settles the last epoch either way of rounding.
        """
        if self.lower_bound == 0:
            return math.inf
        threshold = self.lower_bound * (1 + 1e-9) / self.initial_learning_rate
        estimate = max(0, int(math.floor(math.log(threshold) / math.log(self.decay))))
        epochs = max(0, estimate - 2)
        while self._upper_bound_is_above_floor(epochs + 1):
            epochs += 1
        while epochs > 0 and not self._upper_bound_is_above_floor(epochs):
            epochs -= 1
        return epochs + 1

    def __call__(self, step):
        step = ops.cast(step, "float32")
        epoch = ops.floor(step / self.steps_per_epoch)
        if math.isinf(self.annealing_epochs):
            exponent = epoch
        else:
            exponent = epoch - self.annealing_epochs * ops.floor(epoch / self.annealing_epochs)
        upper = self.initial_learning_rate * ops.power(float(self.decay), exponent)
        height, _ = _triangle(step, float(self.step_size))
        return self.lower_bound + (upper - self.lower_bound) * height

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay": self.decay,
            "step_size": self.step_size,
            "steps_per_epoch": self.steps_per_epoch,
            "lower_bound": self.lower_bound,
            "name": self.name,
        }


@keras.saving.register_keras_serializable(package="keras_compress")
class CyclicLR(keras.optimizers.schedules.LearningRateSchedule):
    """Cyclical learning rate of Smith (2017): triangles between two bounds.

    Args:
        initial_learning_rate: lower bound (``base_lr`` in the paper).
        maximal_learning_rate: upper bound (``max_lr``).
        step_size: iterations in half a cycle (2-10 epochs' worth in the paper).
        mode: "triangular" (fixed height), "triangular2" (height halves every cycle) or
            "exp_range" (height times ``gamma**iteration``).
        gamma: decay base of "exp_range".
        name: optional name.

    Example:

    ```python
    schedule = CyclicLR(1e-4, 1e-3, step_size=4 * steps_per_epoch, mode="triangular2")
    optimizer = keras.optimizers.SGD(schedule)
    ```
    """

    def __init__(
        self,
        initial_learning_rate=1e-4,
        maximal_learning_rate=1e-3,
        step_size=2000,
        mode="triangular",
        gamma=1.0,
        name="CyclicLR",
    ):
        super().__init__()
        maximal_learning_rate = _positive("maximal_learning_rate", maximal_learning_rate)
        step_size = _positive("step_size", step_size, minimum=1)
        gamma = _positive("gamma", gamma)
        if gamma > 1:  # gamma**iteration would overflow to inf, and 0 * inf is NaN
            raise ValueError(f"gamma must be in (0, 1] (exp_range decays the height), got {gamma!r}")
        initial_learning_rate = _number("initial_learning_rate", initial_learning_rate)
        if not 0 <= initial_learning_rate < maximal_learning_rate:
            raise ValueError(
                f"need 0 <= initial_learning_rate < maximal_learning_rate, got "
                f"{initial_learning_rate} and {maximal_learning_rate}"
            )
        if mode not in CYCLIC_MODES:
            raise ValueError(f"mode must be one of {CYCLIC_MODES}, got {mode!r}")
        self.initial_learning_rate = initial_learning_rate
        self.maximal_learning_rate = maximal_learning_rate
        self.step_size = step_size
        self.mode = mode
        self.gamma = gamma
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        height, cycle = _triangle(step, float(self.step_size))
        if self.mode == "triangular2":
            height = height / ops.power(2.0, cycle - 1.0)
        elif self.mode == "exp_range":
            height = height * ops.power(float(self.gamma), step)
        return self.initial_learning_rate + (self.maximal_learning_rate - self.initial_learning_rate) * height

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "maximal_learning_rate": self.maximal_learning_rate,
            "step_size": self.step_size,
            "mode": self.mode,
            "gamma": self.gamma,
            "name": self.name,
        }


def plot_schedule(schedule, steps, path=None, ax=None, label=None, steps_per_epoch=None):
    """Draw a learning-rate schedule against the iteration, as in the paper's Figure 2.

    Args:
        schedule: a ``LearningRateSchedule`` (or any callable step -> rate).
        steps: number of iterations to draw.
        path: save the figure there (PNG, PDF, ... by extension) when given.
        ax: draw into this matplotlib axis instead of a new figure.
        label: legend label (default: the schedule's class name).
        steps_per_epoch: draw dotted epoch boundaries every that many steps.

    Returns:
        The matplotlib ``Figure``.
    """
    import matplotlib

    if ax is None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    steps = _positive("steps", steps, minimum=1)
    rates = np.asarray(keras.ops.convert_to_numpy(schedule(np.arange(int(steps), dtype="float32"))))
    if rates.shape != (int(steps),):  # a schedule that does not broadcast over steps
        rates = np.array([float(keras.ops.convert_to_numpy(schedule(step))) for step in range(int(steps))])
    if ax is None:
        figure, ax = plt.subplots(figsize=(7, 3))
    else:
        figure = ax.figure
    ax.plot(np.arange(int(steps)), rates, label=label or type(schedule).__name__)
    if steps_per_epoch:
        for boundary in range(int(steps_per_epoch), int(steps), int(steps_per_epoch)):
            ax.axvline(boundary, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel("iteration")
    ax.set_ylabel("learning rate")
    ax.legend()
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=120)
    return figure
