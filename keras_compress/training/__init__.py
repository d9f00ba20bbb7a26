"""Training with compression: `fit` callbacks (online embedding compression, per-iteration
learning-rate schedules), the CALR and cyclic schedules, and knowledge distillation."""

from keras_compress.training.callbacks import (
    CALRScheduler,
    CyclicLRScheduler,
    EmbeddingCompression,
    LearningRateScheduleCallback,
    rebuild_optimizer,
)
from keras_compress.training.distillation import Distiller, distillation_loss
from keras_compress.training.schedules import CALR, CyclicLR, plot_schedule

__all__ = [
    "EmbeddingCompression",
    "LearningRateScheduleCallback",
    "CALRScheduler",
    "CyclicLRScheduler",
    "rebuild_optimizer",
    "CALR",
    "CyclicLR",
    "plot_schedule",
    "Distiller",
    "distillation_loss",
]
