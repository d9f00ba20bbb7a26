import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras_compress.training import Distiller, distillation_loss  # noqa: E402
from keras_compress.quantization import is_quantized, quantize_model  # noqa: E402


def log_softmax(z):
    z = np.asarray(z, "float64")
    return z - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)) - z.max(-1, keepdims=True)


LABELS = np.array([1, 2])
STUDENT = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 1.0]])
TEACHER = np.array([[0.5, 3.0, -1.0], [1.0, 0.0, 2.0]])


def test_thesis_loss_equals_hand_computation():
    temperature, soft_weight, hard_weight = 2.0, 0.7, 0.3
    teacher_probs = np.exp(log_softmax(TEACHER / temperature))
    soft = -(teacher_probs * log_softmax(STUDENT / temperature)).sum(-1)
    hard = -log_softmax(STUDENT)[np.arange(2), LABELS]
    expected = np.mean(soft_weight * soft + hard_weight * hard)
    got = distillation_loss(LABELS, STUDENT.astype("float32"), TEACHER.astype("float32"),
                            temperature, soft_weight, hard_weight)
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_kl_form_equals_keras_io_example():
    temperature = 3.0
    teacher_probs = np.exp(log_softmax(TEACHER / temperature))
    kl = (teacher_probs * (np.log(teacher_probs) - log_softmax(STUDENT / temperature))).sum(-1)
    expected = np.mean(kl) * temperature**2
    got = distillation_loss(LABELS, STUDENT.astype("float32"), TEACHER.astype("float32"),
                            temperature, soft_weight=1.0, hard_weight=0.0, form="kl")
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_padding_positions_are_ignored():
    rng = np.random.default_rng(0)
    student, teacher = rng.normal(size=(2, 2, 4, 5)).astype("float32")
    labels = np.array([[1, 2, 0, 0], [3, 4, 1, 0]])
    masked = distillation_loss(labels, student, teacher, ignore_class=0)
    keep = labels != 0
    expected = distillation_loss(labels[keep], student[keep], teacher[keep])
    np.testing.assert_allclose(float(masked), float(expected), rtol=1e-5)


def classifier(seed):
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(hidden), name=f"model_{seed}")


def test_fit_trains_a_quantized_student_and_keeps_the_teacher_frozen(tmp_path):
    keras.utils.set_random_seed(0)
    teacher, student = classifier(0), quantize_model(classifier(1), bits=8)
    teacher_before = [w.copy() for w in teacher.get_weights()]
    student_before = [w.copy() for w in student.get_weights()]
    x = np.random.default_rng(0).normal(size=(64, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    distiller = Distiller(teacher, student, temperature=1.0, soft_weight=0.5, hard_weight=0.5)
    distiller.compile(keras.optimizers.Adam(0.01), metrics=["accuracy"])
    history = distiller.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert {"loss", "accuracy"} <= set(history.history)
    assert not teacher.trainable
    assert all(np.array_equal(a, b) for a, b in zip(teacher_before, teacher.get_weights()))
    assert any(not np.array_equal(a, b) for a, b in zip(student_before, student.get_weights()))
    assert any(is_quantized(layer) for layer in student.layers)
    path = tmp_path / "student.keras"
    distiller.student.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), student.predict(x, verbose=0), atol=1e-6)


def test_bad_arguments():
    teacher, student = classifier(0), classifier(1)
    with pytest.raises(ValueError, match="loss"):
        Distiller(teacher, student, loss="mse")
    with pytest.raises(ValueError, match="temperature"):
        Distiller(teacher, student, temperature=0)
    with pytest.raises(TypeError, match="teacher"):
        Distiller("teacher", student)
    with pytest.raises(ValueError, match="own loss"):
        Distiller(teacher, student).compile("adam", loss="mse")


def test_sequence_targets_ignore_padding_in_loss_and_metrics():
    keras.utils.set_random_seed(0)
    tokens = keras.Input((4,), dtype="int32")

    def tagger():
        return keras.Model(tokens, keras.layers.Dense(5)(keras.layers.Embedding(5, 8)(tokens)))

    x = np.array([[1, 2, 3, 4], [4, 3, 0, 0]] * 8, "int32")
    y = np.array([[1, 2, 3, 4], [4, 3, 0, 0]] * 8, "int32")
    distiller = Distiller(tagger(), tagger(), ignore_class=0)
    distiller.compile(keras.optimizers.Adam(0.05), weighted_metrics=["accuracy"])
    distiller.fit(x, y, epochs=30, batch_size=16, verbose=0)
    predicted = distiller.student.predict(x, verbose=0).argmax(-1)
    expected = float((predicted == y)[y != 0].mean())
    logs = distiller.evaluate(x, y, verbose=0, return_dict=True)
    assert logs["accuracy"] == pytest.approx(expected, abs=1e-6)
    assert float((predicted == y).mean()) < expected  # counting padding would change it
