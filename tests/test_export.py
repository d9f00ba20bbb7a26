"""export_tflite: round trips through the ai-edge-litert Interpreter for tiny DAN-, LSTM- and
fake-quant models, quantization modes, and clear errors."""

import os

import keras
import numpy as np
import pytest

from keras_compress.export import TFLiteExportError, export_tflite, run_tflite

VOCAB, LENGTH = 40, 10


def token_rows(count=16, seed=0):
    rng = np.random.default_rng(seed)
    rows = rng.integers(1, VOCAB, size=(count, LENGTH)).astype("int32")
    rows[:, 7:] = 0  # padding, so masks matter
    return rows


def tiny_dan():
    keras.utils.set_random_seed(1)
    tokens = keras.Input((LENGTH,), dtype="int32")
    # Big enough (>= 1024 weights a tensor) for the converter to quantize the weights.
    x = keras.layers.Embedding(VOCAB, 32, mask_zero=True)(tokens)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    return keras.Model(tokens, keras.layers.Dense(3, activation="softmax")(x))


def tiny_lstm(unroll):
    keras.utils.set_random_seed(2)
    tokens = keras.Input((LENGTH,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, 8, mask_zero=True)(tokens)
    x = keras.layers.LSTM(6, unroll=unroll)(x)
    return keras.Model(tokens, keras.layers.Dense(2, activation="softmax")(x))


def test_float_round_trip_matches_keras(tmp_path):
    model = tiny_dan()
    path = tmp_path / "sub" / "dan.tflite"
    result = export_tflite(model, path, sample_inputs=token_rows())
    assert os.path.getsize(path) == result.size_bytes > 0
    assert result.num_samples == 16
    assert result.max_abs_diff < 1e-5
    # The file itself (not only the in-memory bytes) gives Keras's predictions.
    lite = run_tflite(path.read_bytes(), [token_rows()])[0]
    np.testing.assert_allclose(lite, model.predict(token_rows(), verbose=0), atol=1e-5)


@pytest.mark.parametrize("quantization", ["float16", "dynamic", "int8"])
def test_quantized_exports_are_smaller_and_close(tmp_path, quantization):
    model = tiny_dan()
    plain = export_tflite(model, tmp_path / "plain.tflite", sample_inputs=token_rows())
    result = export_tflite(
        model,
        tmp_path / f"{quantization}.tflite",
        quantization=quantization,
        representative_data=token_rows(32, seed=3),
    )
    assert result.size_bytes < plain.size_bytes
    assert result.max_abs_diff < 0.05  # softmax probabilities


def test_full_integer_int8_has_int8_activations(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    result = export_tflite(tiny_dan(), tmp_path / "q.tflite", "int8", representative_data=token_rows(32))
    interpreter = Interpreter(model_path=result.path)
    dtypes = {detail["dtype"] for detail in interpreter.get_tensor_details()}
    assert np.int8 in dtypes
    # Token ids stay int32 and outputs stay float.
    assert interpreter.get_input_details()[0]["dtype"] == np.int32
    assert interpreter.get_output_details()[0]["dtype"] == np.float32


@pytest.mark.parametrize("quantization", ["int16x8", "int8x8"])
def test_static_quantization_has_integer_activations_and_float_io(tmp_path, quantization):
    """ai-edge-quantizer's int16- / int8-activation recipes through the same export and check."""
    pytest.importorskip("ai_edge_quantizer")
    from ai_edge_litert.interpreter import Interpreter

    from keras_compress.export.flatbuffer import operator_types

    model = tiny_dan()
    result = export_tflite(model, tmp_path / f"{quantization}.tflite", quantization,
                           representative_data=token_rows(32, seed=3))
    assert result.max_abs_diff < 0.05  # softmax probabilities
    interpreter = Interpreter(model_path=result.path)
    activations = {"int16x8": np.int16, "int8x8": np.int8}[quantization]
    assert activations in {detail["dtype"] for detail in interpreter.get_tensor_details()}
    assert interpreter.get_input_details()[0]["dtype"] == np.int32
    assert interpreter.get_output_details()[0]["dtype"] == np.float32
    types = operator_types(result.path)
    assert types["FULLY_CONNECTED"]["integer"] == 2 and types["FULLY_CONNECTED"]["float"] == 0
    with pytest.raises(ValueError, match="representative_data"):
        export_tflite(model, tmp_path / "x.tflite", quantization, sample_inputs=token_rows())


def test_lstm_needs_unroll_or_static_batch(tmp_path):
    with pytest.raises(TFLiteExportError, match="unroll=True"):
        export_tflite(tiny_lstm(unroll=False), tmp_path / "a.tflite", sample_inputs=token_rows())
    static = export_tflite(tiny_lstm(unroll=False), tmp_path / "b.tflite", sample_inputs=token_rows(), batch_size=1)
    unrolled = export_tflite(tiny_lstm(unroll=True), tmp_path / "c.tflite", sample_inputs=token_rows())
    assert static.max_abs_diff < 1e-5 and unrolled.max_abs_diff < 1e-5
    # Full-integer calibration of a rolled LSTM would crash TensorFlow: a clear error instead.
    with pytest.raises(TFLiteExportError, match="unroll=True"):
        export_tflite(tiny_lstm(unroll=False), tmp_path / "d.tflite", "int8", representative_data=token_rows(), batch_size=1)


def test_fake_quant_model_converts_to_int8_without_representative_data(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    class FakeQuant(keras.layers.Layer):
        def call(self, x):
            return keras.quantizers.fake_quant_with_min_max_vars(x, -2.0, 2.0, num_bits=8)

    keras.utils.set_random_seed(3)
    inputs = keras.Input((8,))
    x = keras.layers.Dense(16)(FakeQuant()(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(FakeQuant()(x)))
    sample = np.random.default_rng(0).uniform(-1, 1, (8, 8)).astype("float32")
    result = export_tflite(model, tmp_path / "fq.tflite", "int8", sample_inputs=sample)
    dtypes = {detail["dtype"] for detail in Interpreter(model_path=result.path).get_tensor_details()}
    assert np.int8 in dtypes
    assert result.max_abs_diff < 0.1


def test_subclassed_model_needs_sample_inputs(tmp_path):
    class Tiny(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    model = Tiny()
    model(np.zeros((1, 4), "float32"))
    with pytest.raises(ValueError, match="sample_inputs"):
        export_tflite(model, tmp_path / "s.tflite")
    result = export_tflite(model, tmp_path / "s.tflite", sample_inputs=np.ones((3, 4)))
    assert result.max_abs_diff < 1e-5


def test_bad_arguments(tmp_path):
    model = tiny_dan()
    with pytest.raises(ValueError, match="quantization"):
        export_tflite(model, tmp_path / "x.tflite", quantization="int4")
    with pytest.raises(ValueError, match=".tflite"):
        export_tflite(model, tmp_path / "x.bin")
    with pytest.raises(ValueError, match="batch_size"):
        export_tflite(model, tmp_path / "x.tflite", batch_size=0)


def test_reference_classifiers_and_factorized_model_round_trip(tmp_path):
    from keras_compress import FactorizedEmbedding, compress_embeddings
    from keras_compress.models import dan, lstm_classifier

    keras.utils.set_random_seed(4)
    rows = token_rows()
    classifier = dan(VOCAB, 3, embedding_dim=16, hidden=(32, 16))
    factorized = compress_embeddings(classifier, reduction=0.75)
    assert isinstance(factorized.get_layer("embedding"), FactorizedEmbedding)
    recurrent = lstm_classifier(VOCAB, 2, embeddings=np.random.default_rng(0).normal(size=(VOCAB, 8)),
                                units=6, sequence_length=LENGTH, unroll=True)
    for name, model, quantization in (
        ("dan", classifier, None),
        ("factorized", factorized, None),
        ("factorized", factorized, "dynamic"),
        ("lstm", recurrent, None),
    ):
        result = export_tflite(model, tmp_path / f"{name}-{quantization}.tflite", quantization, sample_inputs=rows)
        assert result.max_abs_diff < (1e-5 if quantization is None else 0.05), (name, quantization)


def test_integer_io_quantizes_float_inputs_and_outputs_but_not_token_ids(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    result = export_tflite(tiny_dan(), tmp_path / "ids.tflite", "int8", representative_data=token_rows(32), integer_io=True)
    details = Interpreter(model_path=result.path)
    assert details.get_input_details()[0]["dtype"] == np.int32
    assert details.get_output_details()[0]["dtype"] == np.int8
    assert result.max_abs_diff < 0.05  # outputs are dequantized before the comparison
    inputs = keras.Input((8,))
    dense = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(16, activation="relu")(inputs)))
    rows = np.random.default_rng(0).standard_normal((32, 8)).astype("float32")
    result = export_tflite(dense, tmp_path / "float.tflite", "int8", representative_data=rows, integer_io=True)
    assert Interpreter(model_path=result.path).get_input_details()[0]["dtype"] == np.int8
    assert result.max_abs_diff < 0.1


def test_unwritable_path_fails_before_converting(tmp_path, monkeypatch):
    from keras_compress.export import tflite as export

    def never(*args, **kwargs):
        raise AssertionError("converted before checking the path")

    monkeypatch.setattr(export, "_convert", never)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(NotADirectoryError, match="cannot write"):
        export_tflite(tiny_dan(), blocker / "model.tflite")
    (tmp_path / "folder.tflite").mkdir()
    with pytest.raises(IsADirectoryError):
        export_tflite(tiny_dan(), tmp_path / "folder.tflite")
    with pytest.raises(ValueError, match="sequence_length"):
        export_tflite(tiny_dan(), tmp_path / "m.tflite", sequence_length=0)


def test_integer_export_without_integer_kernels_warns(tmp_path):
    tokens = keras.Input((LENGTH,), dtype="int32")
    x = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(VOCAB, 4)(tokens))
    small = keras.Model(tokens, keras.layers.Dense(2)(x))  # every kernel under 1024 weights
    with pytest.warns(UserWarning, match="no integer kernel"):
        export_tflite(small, tmp_path / "small.tflite", quantization="int8", sample_inputs=token_rows())


def test_sequence_length_fixes_a_dynamic_length(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    tokens = keras.Input((None,), dtype="int32", name="ids")
    x = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(VOCAB, 4)(tokens))
    model = keras.Model(tokens, keras.layers.Dense(2)(x))
    result = export_tflite(model, tmp_path / "fixed.tflite", sequence_length=LENGTH)
    assert result.max_abs_diff < 1e-5
    detail = Interpreter(model_path=result.path).get_input_details()[0]
    assert list(detail["shape_signature"]) == [-1, LENGTH]


@pytest.mark.parametrize("name", sorted(__import__("keras_compress.export.litert", fromlist=["x"]).LITERT_INTERNALS))
def test_litert_internal_is_where_the_export_module_expects(name):
    from keras_compress.export import litert

    litert.LITERT_INTERNALS[name]()  # raises, and this test's id names the interface, if LiteRT moved it


@pytest.mark.parametrize("name", sorted(__import__("keras_compress.export.static_quantization",
                                                   fromlist=["x"]).QUANTIZER_INTERNALS))
def test_quantizer_internal_is_where_the_export_module_expects(name):
    pytest.importorskip("ai_edge_quantizer")
    from keras_compress.export import static_quantization

    static_quantization.QUANTIZER_INTERNALS[name]()  # raises, naming the interface, if a release moved it


def test_converter_error_is_the_error_line_not_the_trailing_note():
    from keras_compress.export.tflite import converter_error

    message = ("<unknown>:0: error: loc(fused[callsite(\"GatherV2\" at \"x\")]): 'tfl.gather' op operand #0 "
               "must be ..., but got 'tensor<100x16x!quant.uniform<i4:f32, 0.0067>>'\n"
               "<unknown>:0: note: loc(fused[\"StatefulPartitionedCall:\"]): called from")
    assert converter_error(RuntimeError(message)).startswith("'tfl.gather' op operand #0 must be")


def test_unstripped_low_bit_model_names_strip_and_leaves_no_file(tmp_path):
    from keras_compress import quantize_model, strip

    model = quantize_model(tiny_dan(), bits=4)
    target = tmp_path / "qat4.tflite"
    target.write_bytes(b"an older file")
    with pytest.raises(TFLiteExportError, match=r"(?s)strip\(model\) first.*Converter said: .*'tfl.gather' op operand #0"):
        export_tflite(model, target, "dynamic", sample_inputs=token_rows())
    assert target.read_bytes() == b"an older file"  # a failed export leaves what was there
    assert [path.name for path in tmp_path.iterdir()] == ["qat4.tflite"]
    result = export_tflite(strip(model), target, "dynamic", sample_inputs=token_rows())
    assert result.max_abs_diff < 1e-4 and result.size_bytes == os.path.getsize(target)


def test_dynamic_length_tagger_hint_says_sequence_length_and_a_wrong_shape_is_refused(tmp_path):
    keras.utils.set_random_seed(3)
    tokens = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, 8)(tokens)
    tagger = keras.Model(tokens, keras.layers.TimeDistributed(keras.layers.Dense(9))(x))
    rows = token_rows(8)
    with pytest.raises(TFLiteExportError, match="dynamic length: pass sequence_length=N") as raised:
        export_tflite(tagger, tmp_path / "tagger.tflite", sample_inputs=rows)
    assert "unroll" not in str(raised.value)  # no LSTM here: the LSTM hint would mislead
    with pytest.raises(TFLiteExportError, match=rf"has shape \(8, 1, 9\), the Keras model's \(8, {LENGTH}, 9\)"):
        export_tflite(tagger, tmp_path / "static.tflite", sample_inputs=rows, batch_size=1)
    assert list(tmp_path.iterdir()) == []  # neither failed export left a file
    result = export_tflite(tagger, tmp_path / "fixed.tflite", sample_inputs=rows, sequence_length=LENGTH)
    assert result.max_abs_diff < 1e-5
