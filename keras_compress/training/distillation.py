"""Knowledge distillation (Hinton et al. 2015) with the loss of Prato 2019 (M.Sc. thesis,
sec. 5.2):  L = w_s H(z / T, y') + w_t H(z, y),  y' = softmax(z' / T),
where z are the student's logits, z' the frozen teacher's, y the true labels and H the
cross-entropy. A fake-quantized student (`keras_compress.quantization.quantize_model`) gives the
thesis's quantized distillation (after Polino et al. 2018).

`keras.distillation.Distiller` (Keras 3.15) ties the two weights to sum to 1, ignores
`sample_weight` and has no padding mask, which sequence-to-sequence logits
`(batch, time, vocab)` need; hence this subclass of `keras.Model` overriding `compute_loss`,
as the keras.io "Knowledge Distillation" example does.
"""

import keras
from keras import ops

__all__ = ["Distiller", "distillation_loss"]

LOSS_FORMS = ("thesis", "kl")


def distillation_loss(labels, student_logits, teacher_logits, temperature=1.0, soft_weight=0.5,
                      hard_weight=0.5, form="thesis", ignore_class=None, sample_weight=None):
    """The distillation loss averaged over the (unmasked) predictions.

    Args:
        labels: integer labels, shape `(batch,)` or `(batch, time)`.
        student_logits, teacher_logits: shape `labels.shape + (classes,)`.
        temperature: T, softens both distributions in the soft term.
        soft_weight: w_s, weight of the term matching the teacher.
        hard_weight: w_t, weight of the cross-entropy with the true labels.
        form: "thesis": H(softmax(z/T); y') = -sum y' log softmax(z/T);
            "kl": T^2 KL(y' || softmax(z/T)), the keras.io example's form (the same gradient as
            "thesis" up to the T^2 factor; the two differ by the teacher's entropy).
        ignore_class: label id (padding) whose positions contribute nothing, or None.
        sample_weight: optional weights broadcastable to `labels.shape`.

    Returns:
        A scalar: the weighted sum of the two terms, averaged over the positions kept.
    """
    if form not in LOSS_FORMS:
        raise ValueError(f"form must be one of {LOSS_FORMS}, got {form!r}")
    labels = ops.cast(labels, "int32")
    teacher_probs = ops.softmax(ops.cast(teacher_logits, "float32") / temperature, axis=-1)
    student_log_probs = ops.log_softmax(ops.cast(student_logits, "float32") / temperature, axis=-1)
    soft = -ops.sum(teacher_probs * student_log_probs, axis=-1)
    if form == "kl":
        teacher_entropy = -ops.sum(teacher_probs * ops.log(ops.maximum(teacher_probs, 1e-12)), -1)
        soft = (soft - teacher_entropy) * temperature**2
    hard = ops.sparse_categorical_crossentropy(labels, student_logits, from_logits=True)
    per_position = soft_weight * soft + hard_weight * hard
    weights = ops.ones_like(per_position)
    if ignore_class is not None:
        weights = weights * ops.cast(ops.not_equal(labels, ignore_class), weights.dtype)
    if sample_weight is not None:
        weights = weights * ops.cast(sample_weight, weights.dtype)
    return ops.sum(per_position * weights) / ops.maximum(ops.sum(weights), 1e-12)


@keras.saving.register_keras_serializable(package="keras_compress")
class Distiller(keras.Model):
    """Train `student` on true labels and on a frozen `teacher`'s soft predictions.

    Users `compile(optimizer, metrics=...)` (no loss: the distillation loss is built in) and
    `fit(x, y)` with integer labels as usual; `predict` and `evaluate` run the student. Save the
    trained `distiller.student` on its own; the teacher is never modified or quantized.

    Args:
        teacher: trained `keras.Model` returning logits; frozen here.
        student: `keras.Model` with the same inputs returning logits of the same shape (a model
            from `quantize_model` gives quantized distillation).
        temperature: T (the thesis found T = 1 best).
        soft_weight: w_s, weight of the teacher-matching term.
        hard_weight: w_t, weight of the true-label cross-entropy.
        loss: "thesis" (default) or "kl"; see `distillation_loss`.
        ignore_class: label id to ignore (padding of sequence targets), e.g. 0; None keeps all.
            The loss skips it, and it is passed to the metrics as `sample_weight`, so
            `compile(weighted_metrics=["accuracy"])` ignores padding (Keras's `metrics=` are
            unweighted by design).

    Example:
    >>> inputs = keras.Input((4,))
    >>> teacher = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    >>> student = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    >>> distiller = Distiller(teacher, student, temperature=1.0)
    >>> distiller.compile("adam", metrics=["accuracy"])
    >>> x, y = np.zeros((8, 4), "float32"), np.zeros(8, "int32")
    >>> _ = distiller.fit(x, y, epochs=1, verbose=0)
    """

    def __init__(self, teacher, student, temperature=1.0, soft_weight=0.5, hard_weight=0.5,
                 loss="thesis", ignore_class=None, **kwargs):
        super().__init__(**kwargs)
        for role, model in (("teacher", teacher), ("student", student)):
            if not isinstance(model, keras.Model):
                raise TypeError(f"{role} must be a keras.Model, got {type(model).__name__}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if soft_weight < 0 or hard_weight < 0 or soft_weight + hard_weight == 0:
            raise ValueError(
                f"soft_weight and hard_weight must be >= 0 and not both 0, got "
                f"{soft_weight}, {hard_weight}")
        if loss not in LOSS_FORMS:
            raise ValueError(f"loss must be one of {LOSS_FORMS}, got {loss!r}")
        self.teacher = teacher
        self.student = student
        self.teacher.trainable = False
        self.temperature = float(temperature)
        self.soft_weight = float(soft_weight)
        self.hard_weight = float(hard_weight)
        self.loss_form = loss
        self.ignore_class = ignore_class

    def compile(self, optimizer="adam", metrics=None, **kwargs):
        if kwargs.get("loss") is not None:
            raise ValueError("Distiller computes its own loss; compile it without loss=")
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y_pred is None:
            y_pred = self(x, training=training)
        teacher_logits = ops.stop_gradient(self.teacher(x, training=False))
        return distillation_loss(
            y, y_pred, teacher_logits, self.temperature, self.soft_weight, self.hard_weight,
            self.loss_form, self.ignore_class, sample_weight)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        # Padding positions count in neither the loss nor the compiled weighted_metrics.
        if self.ignore_class is not None and y is not None:
            valid = ops.cast(ops.not_equal(y, self.ignore_class), "float32")
            sample_weight = valid if sample_weight is None else valid * sample_weight
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def get_config(self):
        return {
            **super().get_config(),
            "teacher": keras.saving.serialize_keras_object(self.teacher),
            "student": keras.saving.serialize_keras_object(self.student),
            "temperature": self.temperature,
            "soft_weight": self.soft_weight,
            "hard_weight": self.hard_weight,
            "loss": self.loss_form,
            "ignore_class": self.ignore_class,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for role in ("teacher", "student"):
            config[role] = keras.saving.deserialize_keras_object(config[role])
        return cls(**config)
