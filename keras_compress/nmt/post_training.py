"""Keras's own post-training GPTQ (Frantar et al. 2022, Alg. 1) and AWQ (Lin et al. 2023, sec. 3)
on the encoder-decoder of `keras_compress.nmt.transformer`, through `model.quantize`'s public
`quantization_layer_structure`.

Keras calibrates a structure `{"pre_block_layers": [...], "sequential_blocks": [...]}` one block
after another: each block is called with ONE tensor and the next block gets its output. A
decoder block takes two (its states and the encoder's output), so `quantization_structure` wraps
every block in a layer that takes and returns one tensor carrying both sides of a pair, the
source positions first, the target positions after them, and one extra feature that marks the
source positions. The wrappers call the model's own blocks (they track them as sublayers, which
is where Keras finds the Dense and EinsumDense layers to calibrate), so quantizing through them
quantizes the model.

Keras cuts its calibration data into windows of `sequence_length` tokens at strided starts that
ignore sentence boundaries. `calibration_options` writes every pair as one record of `R` ids,
`[-1, source ids, target ids]`, and asks for windows of `2R - 1` ids: every such window holds
the start of one record (a `-1`) in its first `R` ids, and the whole record after it. The
pre-block layer reads that record and drops its padding, so calibration sees each sampled pair
exactly as the model does, without padding rows.

Keras 3.15.1's own calibration hooks never run (keras-team/keras#23512: they patch
`layer.call`, which a layer switched to a quantized dtype policy no longer runs; GPTQ and AWQ
become round-to-nearest); the blocks route each uncalibrated layer to its hook while they run,
so the Hessians (GPTQ) and activation statistics (AWQ) are collected.

What is quantized: every Dense and EinsumDense of the encoder and decoder blocks and, with
`logits=True` (the default), the output projection `logits`. The shared token embedding stays
float32: Keras's `Embedding` has no GPTQ or AWQ mode (`model.quantize` warns and skips it).
`keras_compress.nmt.export_translator` takes the quantized model: Keras's GPTQ and AWQ layers
compute in float from their dequantized kernels, which the file stores (float32, or int8 with
"dynamic"), so it is as large as the float model's.

Example:
>>> import keras
>>> from keras_compress.nmt import transformer
>>> model = transformer(20, "small", num_layers=1, d_model=16, d_ff=32, num_heads=2)
>>> source = np.array([[5, 6, 3, 0]] * 4, "int32")
>>> target = np.array([[2, 7, 8, 0]] * 4, "int32")
>>> model.quantize("gptq", config=keras.quantizers.GPTQConfig(
...     **calibration_options(model, source, target), num_samples=4, group_size=-1))
>>> model.get_layer("logits").quantization_mode
'gptq'
"""


import keras
import numpy as np
from keras import ops

from keras_compress import engine
from keras_compress.nmt.constants import PAD_ID
from keras_compress.nmt.transformer import transformer_layers

__all__ = ["quantization_structure", "calibration_options", "RECORD_START"]

RECORD_START = -1  # never a token id: marks the start of a calibration record


def _split(layout):
    """`(states (1, L, d), number of source positions)` of a one-sentence layout tensor."""
    states, marks = layout[..., :-1], layout[0, :, -1]
    return states, int(round(float(ops.convert_to_numpy(ops.sum(marks)))))


def _join(source_states, target_states):
    states = ops.concatenate([source_states, target_states], axis=1)
    marks = ops.concatenate([ops.ones(ops.shape(source_states)[:2] + (1,), states.dtype),
                             ops.zeros(ops.shape(target_states)[:2] + (1,), states.dtype)], axis=1)
    return ops.concatenate([states, marks], axis=-1)


class _CalibrationPairs(keras.layers.Layer):
    """Pre-block layer: a window of `2 * record_length - 1` calibration ids (batch 1) -> the
    layout of its first whole record, source and target embedded, padding dropped."""

    def __init__(self, embedding, source_length, target_length, **kwargs):
        super().__init__(**kwargs)
        self.embedding = embedding
        self.source_length = source_length
        self.target_length = target_length
        self.records = set()  # the distinct pairs calibrated on, as bytes

    def call(self, window):
        ids = ops.convert_to_numpy(window).reshape(-1)
        starts = np.flatnonzero(ids == RECORD_START)
        record_length = 1 + self.source_length + self.target_length
        if ids.size != 2 * record_length - 1 or not starts.size or starts[0] >= record_length:
            raise ValueError(
                f"a calibration window of {ids.size} ids has no whole record of "
                f"{record_length}: build the config with calibration_options")
        record = ids[starts[0] + 1: starts[0] + record_length]
        self.records.add(record.tobytes())
        source, target = record[: self.source_length], record[self.source_length:]
        # the model's inputs put padding after the real ids; keep the real ones
        source = source[: max(1, int(np.sum(source != PAD_ID)))][None]
        target = target[: max(1, int(np.sum(target != PAD_ID)))][None]
        return _join(self.embedding(source), self.embedding(target))


class _EncoderBlock(keras.layers.Layer):
    """One encoder block of the model on the source positions of the layout."""

    def __init__(self, block, **kwargs):
        super().__init__(**kwargs)
        self.block = block

    def call(self, layout):
        states, source_positions = _split(layout)
        with engine.calibration_hooks_reached(self):
            return _join(self.block(states[:, :source_positions]), states[:, source_positions:])


class _DecoderBlock(keras.layers.Layer):
    """One decoder block of the model on the target positions, attending to the source ones
    (the encoder's output once every encoder block has run)."""

    def __init__(self, block, **kwargs):
        super().__init__(**kwargs)
        self.block = block

    def call(self, layout):
        states, source_positions = _split(layout)
        encoded = states[:, :source_positions]
        with engine.calibration_hooks_reached(self):
            return _join(encoded, self.block(states[:, source_positions:], encoded))


class _LogitsBlock(keras.layers.Layer):
    """The output projection on the target positions (the last block: nothing reads its
    output but Keras's calibration hooks)."""

    def __init__(self, logits, **kwargs):
        super().__init__(**kwargs)
        self.logits = logits

    def call(self, layout):
        states, source_positions = _split(layout)
        with engine.calibration_hooks_reached(self):
            return self.logits(states[:, source_positions:])


def quantization_structure(model, source_length, target_length, logits=True):
    """The `quantization_layer_structure` for `model.quantize("gptq" | "awq", config=...)` of a
    `keras_compress.nmt.transformer` model, calibrated on records written by
    `calibration_options` (which calls this; use it directly only to build a config by hand).

    Args:
        model: a model built by `keras_compress.nmt.transformer` (float, not yet quantized).
        source_length, target_length: the widths of the calibration source and target rows.
        logits: also calibrate and quantize the output projection `logits` (a last block).
            With False, exclude it from `model.quantize` as well
            (`filters=lambda layer: layer.name != "logits"`), or Keras gives it GPTQ/AWQ
            variables it never fills (the layer then keeps computing in float32).

    Returns:
        `{"pre_block_layers": [pairs], "sequential_blocks": [encoder blocks..., decoder
        blocks..., logits]}`, whose blocks call the model's own layers.
    """
    parts = transformer_layers(model)
    blocks = ([_EncoderBlock(block, name=f"gptq_{block.name}") for block in parts["encoders"]]
              + [_DecoderBlock(block, name=f"gptq_{block.name}") for block in parts["decoders"]])
    if logits:
        blocks.append(_LogitsBlock(parts["logits"], name="gptq_logits"))
    return {"pre_block_layers": [_CalibrationPairs(parts["embedding"], int(source_length),
                                                   int(target_length), name="gptq_pairs")],
            "sequential_blocks": blocks}


def calibration_options(model, encoder_inputs, decoder_inputs, logits=True):
    """Keyword arguments for `keras.quantizers.GPTQConfig` or `AWQConfig`: `dataset`,
    `tokenizer`, `sequence_length` and `quantization_layer_structure`, calibrating on the given
    pairs. Add Keras's own options (`num_samples`, `weight_bits`, `group_size`, ...).

    Keras samples `num_samples` windows at evenly strided starts (offset by Python's salted
    string hash: set PYTHONHASHSEED for the same sample twice); each gives one whole pair, and
    the pre-block layer's `records` is the set of pairs used.

    Args:
        model: the `keras_compress.nmt.transformer` model to quantize.
        encoder_inputs: int `(pairs, source_length)`, source ids then EOS, padded with 0
            (`keras_compress.nmt.make_examples`'s encoder inputs).
        decoder_inputs: int `(pairs, target_length)`, BOS then target ids, padded with 0.
        logits: as in `quantization_structure`.

    Example: `model.quantize("gptq", config=keras.quantizers.GPTQConfig(
    **calibration_options(model, *dev_inputs), num_samples=128))`.
    """
    source = np.asarray(encoder_inputs)
    target = np.asarray(decoder_inputs)
    if source.ndim != 2 or target.ndim != 2 or len(source) != len(target) or not len(source):
        raise ValueError(
            f"encoder_inputs and decoder_inputs must be 2-D id arrays with the same number of "
            f"(at least one) rows, got shapes {source.shape} and {target.shape}")
    if not (np.issubdtype(source.dtype, np.integer) and np.issubdtype(target.dtype, np.integer)):
        raise ValueError(f"calibration ids must be integers, got {source.dtype} and "
                         f"{target.dtype}")
    vocab_size = transformer_layers(model)["vocab_size"]
    for name, ids in (("encoder_inputs", source), ("decoder_inputs", target)):
        if ids.min() < 0 or ids.max() >= vocab_size:
            raise ValueError(f"{name} has ids outside [0, {vocab_size}): "
                             f"{int(ids.min())}..{int(ids.max())}")
    records = np.concatenate(
        [np.full((len(source), 1), RECORD_START), source, target], axis=1).astype("int32")
    return {"dataset": records,
            # Keras asks for a tokenizer; it only tokenizes strings, and these are ids
            "tokenizer": "unused: the dataset holds token ids",
            "sequence_length": 2 * records.shape[1] - 1,
            "quantization_layer_structure": quantization_structure(
                model, source.shape[1], target.shape[1], logits=logits)}
