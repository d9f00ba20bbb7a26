"""Keras's post-training GPTQ and AWQ on our encoder-decoder, through
`keras_compress.nmt.post_training`'s quantization structure."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("keras_hub")

from keras_compress.nmt import (  # noqa: E402
    SmoothedSparseCategoricalCrossentropy,
    export_translator,
    greedy_decode,
    transformer,
)
from keras_compress.nmt.post_training import (  # noqa: E402
    RECORD_START,
    calibration_options,
    quantization_structure,
)

VOCAB = 30
# one Dense of every kind of attention (encoder self-, decoder self- and cross-attention): Keras
# spends seconds a layer, so the default run quantizes these three and the slow test all 17
FEW_LAYERS = ["^key$"]


def copy_task(rows, length=5, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(4, VOCAB, (rows, length)).astype("int32")
    source = np.concatenate([tokens, np.full((rows, 1), 3)], 1).astype("int32")
    decoder_inputs = np.concatenate([np.full((rows, 1), 2), tokens], 1).astype("int32")
    return source, decoder_inputs


@pytest.fixture(scope="module")
def copy_model():
    """A tiny Transformer trained a few steps to copy its source."""
    keras.utils.set_random_seed(0)
    model = transformer(VOCAB, "small", num_layers=1, d_model=32, d_ff=64, num_heads=2,
                        dropout=0.0)
    source, decoder_inputs = copy_task(256)
    model.compile(keras.optimizers.Adam(0.005), SmoothedSparseCategoricalCrossentropy(0.1))
    model.fit([source, decoder_inputs], source, epochs=15, batch_size=16, verbose=0)
    return model


def copy_of(model):
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def calibration_pairs(rows=12):
    """Copy-task pairs of different lengths, padded with 0 after the real ids."""
    source, decoder_inputs = copy_task(rows, length=7, seed=5)
    for row, length in enumerate(np.arange(rows) % 5 + 2):  # 2..6 real tokens
        source[row, length:] = 0
        source[row, length] = 3
        decoder_inputs[row, length + 1:] = 0
    return source, decoder_inputs


def translations(model, source):
    return greedy_decode(model, source, max_length=10)


def test_every_window_keras_can_cut_holds_one_whole_pair(copy_model):
    source, target = calibration_pairs(4)
    options = calibration_options(copy_model, source, target)
    pairs = options["quantization_layer_structure"]["pre_block_layers"][0]
    stream = np.asarray(options["dataset"]).reshape(-1)
    width = options["sequence_length"]
    embedded = {}
    for start in range(stream.size - width + 1):  # every start Keras's strided sampler may pick
        layout = np.asarray(pairs(stream[None, start: start + width]))
        record = len(pairs.records) - 1
        marks = layout[0, :, -1]
        # one source side (1) then one target side (0), each without its padding
        assert layout.shape[-1] == 33 and set(np.unique(marks)) == {0.0, 1.0}
        assert np.all(np.diff(marks) <= 0)
        embedded[start] = (int(marks.sum()), int(marks.size - marks.sum()), record)
    lengths = {(int(np.sum(s != 0)), int(np.sum(t != 0))) for s, t in zip(source, target)}
    assert {(s, t) for s, t, _ in embedded.values()} <= lengths
    assert len(pairs.records) == len(source)  # every pair appears in some window


def test_gptq_quantizes_the_models_own_encoder_and_decoder_layers(copy_model, tmp_path):
    model = copy_of(copy_model)
    probe = copy_task(8, seed=9)
    float_logits = np.asarray(model(list(probe)))
    options = calibration_options(model, *calibration_pairs())
    model.quantize("gptq", filters=FEW_LAYERS,
                   config=keras.quantizers.GPTQConfig(**options, num_samples=12))
    calibrated = sorted(layer.path for layer in model._flatten_layers()
                        if getattr(layer, "is_gptq_calibrated", False))
    assert calibrated == sorted([
        "encoder_0/self_attention_layer/key", "decoder_0/self_attention/key",
        "decoder_0/cross_attention/key"])
    # the float kernels are gone: the model computes with the 4-bit ones
    assert not hasattr(model.get_layer("decoder_0")._cross_attention_layer._key_dense, "_kernel")
    assert len(options["quantization_layer_structure"]["pre_block_layers"][0].records) > 1
    logits = np.asarray(model(list(probe)))
    assert not np.allclose(logits, float_logits)
    # ... and still translates: the copy task's greedy outputs mostly unchanged
    rows = probe[0]
    same = np.mean([a == b for a, b in zip(translations(model, rows),
                                            translations(copy_model, rows))])
    assert same >= 0.75
    # GPTQ computes in float from its dequantized kernels: the translator file holds them and
    # decodes as Keras does
    exported = export_translator(model, str(tmp_path / "gptq.tflite"), None, max_source_length=8,
                                 max_target_length=8, sample_sources=rows[:4], beam_size=1,
                                 source_buckets=())
    assert exported.same_tokens == 1.0 and exported.max_abs_diff < 1e-4


def test_calibration_sees_activations(copy_model):
    # Keras 3.15's hooks alone never run (keras-team/keras#23512): GPTQ would be round-to-nearest
    # and every AWQ scale 1. Through the blocks, AWQ's scales follow the activations, and GPTQ's
    # error correction moves its 4-bit weights off AWQ's (same grid, same group size)
    outputs, probe = {}, list(copy_task(8, seed=9))
    for mode, config in (("gptq", keras.quantizers.GPTQConfig),
                         ("awq", keras.quantizers.AWQConfig)):
        model = copy_of(copy_model)
        model.quantize(mode, filters=["^feedforward_intermediate_dense$"], config=config(
            **calibration_options(model, *calibration_pairs()), num_samples=12))
        for block in ("encoder_0", "decoder_0"):
            assert getattr(model.get_layer(block)._feedforward_intermediate_dense,
                           f"is_{mode}_calibrated")
        outputs[mode] = np.asarray(model(probe))
    scales = np.asarray(model.get_layer("decoder_0")._feedforward_intermediate_dense.awq_scales)
    assert np.ptp(scales) > 1e-3
    assert np.abs(outputs["gptq"] - outputs["awq"]).max() > 1e-3


def test_calibration_options_refuse_bad_pairs(copy_model):
    source, target = calibration_pairs(3)
    with pytest.raises(ValueError, match="same number"):
        calibration_options(copy_model, source, target[:2])
    with pytest.raises(ValueError, match="outside"):
        calibration_options(copy_model, source + VOCAB, target)
    with pytest.raises(ValueError, match="outside"):
        calibration_options(copy_model, np.full_like(source, RECORD_START), target)
    with pytest.raises(ValueError, match="integers"):
        calibration_options(copy_model, source.astype("float32"), target)
    with pytest.raises(ValueError, match="not built by"):
        quantization_structure(keras.Sequential([keras.layers.Dense(2)]), 4, 4)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["gptq", "awq"])
def test_whole_model_quantized_still_copies(copy_model, mode):
    model = copy_of(copy_model)
    config = (keras.quantizers.GPTQConfig if mode == "gptq" else keras.quantizers.AWQConfig)
    model.quantize(mode, config=config(**calibration_options(model, *calibration_pairs(32)),
                                       num_samples=32))
    dense = [layer for layer in model._flatten_layers()
             if isinstance(layer, (keras.layers.Dense, keras.layers.EinsumDense))]
    assert len(dense) == 17 and all(getattr(layer, f"is_{mode}_calibrated") for layer in dense)
    rows = copy_task(8, seed=9)[0]
    same = np.mean([a == b for a, b in zip(translations(model, rows),
                                            translations(copy_model, rows))])
    assert same >= 0.5
