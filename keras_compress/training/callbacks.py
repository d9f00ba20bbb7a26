"""`model.fit` callbacks: online embedding compression and per-iteration learning-rate schedules.

Acharya et al., "Online Embedding Compression for Text Classification using Low Rank Matrix
Factorization" (AAAI 2019), Section 3: compress a trained embedding by SVD part-way through
training and keep training both factors; CALR (Section 3.2) as a callback.
"""

import keras
import numpy as np

from keras_compress import engine
from keras_compress.factorization import check_compression_arguments, plan_compression
from keras_compress.layers.factorized_embedding import DEFAULT_SINGULAR_VALUES
from keras_compress.training.schedules import CALR, CyclicLR

__all__ = ["EmbeddingCompression", "LearningRateScheduleCallback", "CALRScheduler", "CyclicLRScheduler"]


def rebuild_optimizer(model):
    """Give ``model`` a fresh optimizer of the same configuration for its current variables.

    Keras optimizers are built for a fixed list of variables, so new variables need new slots.
    State carries over by slot name and shape: the iteration counter (so learning-rate
    schedules go on where they were), a variable learning rate, and the slots (moments,
    accumulators) of every variable that still exists unchanged. Slots of new variables start
    from their initial values (zeros for Adam's moments, ``initial_accumulator_value`` for
    Adagrad). Returns the number of optimizer variables whose values were kept.
    """
    old = model.optimizer
    if old is None:
        raise ValueError("the model is not compiled: no optimizer to rebuild")
    with engine.model_scope(model):  # a MirroredStrategy needs its optimizer built in its scope
        new = old.__class__.from_config(old.get_config())
        new.build(model.trainable_variables)
    if not old.built:
        model.optimizer = new
        return 0
    previous = {(variable.name, tuple(variable.shape)): variable for variable in old.variables}
    kept = 0
    for variable in new.variables:
        source = previous.get((variable.name, tuple(variable.shape)))
        if source is not None:
            variable.assign(source)
            kept += 1
    model.optimizer = new
    return kept


class EmbeddingCompression(keras.callbacks.Callback):
    """Factorize the model's embeddings by SVD at the start of epoch ``at_epoch``; keep training.

    The same ``fit`` call goes on with the smaller model: the ``Embedding`` layers are replaced
    in place (the model object, its other layers and their weights stay the same) by
    :class:`~keras_compress.FactorizedEmbedding` layers whose two factors both train, the
    train/test/predict functions are traced again, and the optimizer is rebuilt for the new
    variables.

    What happens to the optimizer state: the iteration counter is kept (learning-rate
    schedules continue), and so are the slots (e.g. Adam's first and second moments) of every
    untouched variable; the replaced embedding's slots are dropped and the new factors' slots
    start from zero, as if those variables were new. Compiled metrics and losses are unchanged
    and keep reporting; the epoch's metrics are reset at its start as usual.

    Embeddings are found at every depth (custom layers, nested models, keras-hub backbones; see
    :func:`~keras_compress.compress_embeddings`). Tested on the TensorFlow backend (also under
    ``tf.distribute.MirroredStrategy``: the factors and the optimizer are created in the
    model's strategy scope), on PyTorch, and on JAX (also under
    ``keras.distribution.DataParallel``): Keras's JAX trainer reads the model's variables again
    at the start of every epoch, after ``on_epoch_begin``, and the new train function is traced
    for them.

    Args:
        at_epoch: 0-based epoch at whose start to compress (0 compresses before training).
        reduction: fraction of each embedding's parameters to remove.
        layers: names, paths or layer objects of the embeddings to compress, or a predicate
            (default: all). Checked against the model when training begins.
        rank: a fixed rank instead of ``reduction``.
        singular_values: "first", "second" or "split" (see ``svd_factors``).
        verbose: print a line with the parameter counts when compressing.

    Attributes:
        params_before, params_after: the model's parameter counts around the compression.
        compressed_at_step: the optimizer iteration at which it happened (``None`` before).

    Example:

    ```python
    compress = EmbeddingCompression(at_epoch=3, reduction=0.9)
    model.fit(x, y, epochs=6, callbacks=[compress])  # epochs 3-5 train the factorized model
    ```
    """

    def __init__(
        self,
        at_epoch,
        reduction=0.9,
        layers=None,
        rank=None,
        singular_values=DEFAULT_SINGULAR_VALUES,
        verbose=1,
    ):
        super().__init__()
        if isinstance(at_epoch, bool) or not isinstance(at_epoch, (int, np.integer)) or at_epoch < 0:
            raise ValueError(f"at_epoch must be a non-negative int, got {at_epoch!r}")
        # Everything that does not need the model is checked now, not after an epoch.
        check_compression_arguments(reduction, rank, singular_values)
        engine.check_layer_argument("layers", layers)
        self.at_epoch = int(at_epoch)
        self.reduction = reduction
        self.layers = layers
        self.rank = rank
        self.singular_values = singular_values
        self.verbose = verbose
        self.params_before = None
        self.params_after = None
        self.compressed_at_step = None
        self._plan = None

    def on_train_begin(self, logs=None):
        # Layer names and reductions that do not fit this model fail here, before training.
        self._plan = None
        if self.model.built:
            self._plan = plan_compression(self.model, self.reduction, self.layers, self.rank, self.singular_values)

    def on_epoch_begin(self, epoch, logs=None):
        if epoch != self.at_epoch or self.compressed_at_step is not None:
            return
        model = self.model
        self.params_before = model.count_params()
        plan = self._plan if self.at_epoch == 0 and self._plan is not None else plan_compression(
            model, self.reduction, self.layers, self.rank, self.singular_values)
        engine.apply(model, plan)
        rebuild_optimizer(model)
        # fit() calls model.train_function every step: trace it again for the new layers.
        model.make_train_function(force=True)
        self.params_after = model.count_params()
        self.compressed_at_step = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        if self.verbose:
            print(
                f"\nEmbeddingCompression: epoch {epoch}, parameters {self.params_before:,} -> "
                f"{self.params_after:,} ({1 - self.params_after / self.params_before:.1%} fewer)"
            )


class LearningRateScheduleCallback(keras.callbacks.Callback):
    """Set the optimizer's learning rate from a schedule before every training batch.

    For users who compile with a float learning rate and prefer a callback to a
    ``LearningRateSchedule`` passed to the optimizer; both give the same rates. The rate is
    read from the optimizer's iteration counter and logged as ``learning_rate``.

    Args:
        schedule: a callable step -> rate, e.g. :class:`~keras_compress.training.schedules.CALR`.
    """

    def __init__(self, schedule):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"schedule must be callable (step -> rate), got {type(schedule).__name__}")
        self.schedule = schedule

    def on_train_begin(self, logs=None):
        # An optimizer built with a schedule serializes it as a dict (public API; its rate is
        # then not settable).
        if isinstance(self.model.optimizer.get_config().get("learning_rate"), dict):
            raise ValueError("the optimizer already has a LearningRateSchedule; use one or the other")

    def on_train_batch_begin(self, batch, logs=None):
        optimizer = self.model.optimizer
        optimizer.learning_rate = float(keras.ops.convert_to_numpy(self.schedule(optimizer.iterations)))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class CALRScheduler(LearningRateScheduleCallback):
    """:class:`~keras_compress.training.schedules.CALR` as a callback; takes the same arguments."""

    def __init__(self, *args, **kwargs):
        super().__init__(CALR(*args, **kwargs))


class CyclicLRScheduler(LearningRateScheduleCallback):
    """:class:`~keras_compress.training.schedules.CyclicLR` as a callback; takes the same arguments."""

    def __init__(self, *args, **kwargs):
        super().__init__(CyclicLR(*args, **kwargs))
