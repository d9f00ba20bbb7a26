"""Convert a `keras_compress.nmt.transformer` model to a CTranslate2 model (Klein et al.,
CTranslate2; its `specs.TransformerSpec` and `converters.Converter` Python API), the CPU
inference engine the benchmark compares our LiteRT translator against.

The conversion is exact, not approximate: both are post-LayerNorm encoder-decoders with ReLU
feed-forward layers and epsilon 1e-6; the query/key/value projections are fused as CTranslate2
stores them; the sinusoidal table (keras-hub's interleaved sin/cos) is stored explicitly as the
position encodings, with embeddings scaled by sqrt(d_model); the shared embedding table is
stored for both sides. Padding and BOS, which our decoders never emit, get a -1e9 output bias.
Weights are read by their Keras variable paths (public API), so stripped and reloaded models
convert the same way.
"""

import os

import numpy as np

__all__ = ["export_ctranslate2"]

SUPPRESSED_BIAS = -1e9


def _weights(model):
    values = {}
    for variable in model.weights:
        values[variable.path] = np.asarray(variable.numpy() if hasattr(variable, "numpy")
                                           else variable, "float32")
    return values


def _projection(values, scope):
    """(weight (out, in), bias (out,)) of a Keras EinsumDense/Dense at `scope`."""
    kernel = values[f"{scope}/kernel"]
    bias = values.get(f"{scope}/bias")
    if kernel.ndim == 3 and scope.endswith("attention_output"):  # (heads, head_dim, d_model)
        kernel = kernel.reshape(-1, kernel.shape[-1])
    elif kernel.ndim == 3:  # (d_model, heads, head_dim)
        kernel = kernel.reshape(kernel.shape[0], -1)
    return kernel.T.copy(), None if bias is None else bias.reshape(-1).copy()


def _set_linear(spec, values, scope):
    spec.weight, bias = _projection(values, scope)
    if bias is not None:
        spec.bias = bias


def _set_fused(spec, values, scopes):
    weights, biases = zip(*(_projection(values, scope) for scope in scopes))
    spec.weight = np.concatenate(weights, axis=0)
    spec.bias = np.concatenate(biases, axis=0)


def _set_norm(spec, values, scope):
    spec.gamma = values[f"{scope}/gamma"]
    spec.beta = values[f"{scope}/beta"]


def _spec(model, pieces, max_positions):
    import ctranslate2

    from keras_compress.nmt.constants import BOS_ID, PAD_ID
    from keras_compress.nmt.transformer import LAYER_NORM_EPSILON, transformer_layers

    parts = transformer_layers(model)
    values = _weights(model)
    num_layers = len(parts["decoders"])
    if len(parts["encoders"]) != num_layers:
        raise ValueError("CTranslate2 needs as many encoder as decoder layers in this converter")
    for layer in parts["encoders"] + parts["decoders"]:
        if layer.normalize_first or layer.activation.__name__ != "relu":
            raise ValueError(f"{layer.name}: only post-LayerNorm ReLU layers convert exactly")
    spec = ctranslate2.specs.TransformerSpec.from_config(num_layers, parts["num_heads"],
                                                         pre_norm=False)
    spec.config.layer_norm_epsilon = LAYER_NORM_EPSILON
    table = values["embedding/token_embedding/embeddings"]
    import keras_hub

    positions = keras_hub.layers.SinePositionEncoding()(
        np.zeros((1, max_positions, table.shape[1]), "float32"))
    positions = np.asarray(positions, "float32")[0]
    for side in (spec.encoder, spec.decoder):
        tables = side.embeddings if isinstance(side.embeddings, list) else [side.embeddings]
        tables[0].weight = table
        side.scale_embeddings = True
        side.position_encodings.encodings = positions
    for i, layer in enumerate(spec.encoder.layer):
        scope = f"encoder_{i}"
        attention = f"{scope}/self_attention_layer"
        _set_fused(layer.self_attention.linear[0], values,
                   [f"{attention}/{name}" for name in ("query", "key", "value")])
        _set_linear(layer.self_attention.linear[1], values, f"{attention}/attention_output")
        _set_norm(layer.self_attention.layer_norm, values, f"{scope}/self_attention_layer_norm")
        _set_linear(layer.ffn.linear_0, values, f"{scope}/feedforward_intermediate_dense")
        _set_linear(layer.ffn.linear_1, values, f"{scope}/feedforward_output_dense")
        _set_norm(layer.ffn.layer_norm, values, f"{scope}/feedforward_layer_norm")
    for i, layer in enumerate(spec.decoder.layer):
        scope = f"decoder_{i}"
        _set_fused(layer.self_attention.linear[0], values,
                   [f"{scope}/self_attention/{name}" for name in ("query", "key", "value")])
        _set_linear(layer.self_attention.linear[1], values,
                    f"{scope}/self_attention/attention_output")
        _set_norm(layer.self_attention.layer_norm, values, f"{scope}/self_attention_layer_norm")
        _set_linear(layer.attention.linear[0], values, f"{scope}/cross_attention/query")
        _set_fused(layer.attention.linear[1], values,
                   [f"{scope}/cross_attention/{name}" for name in ("key", "value")])
        _set_linear(layer.attention.linear[2], values,
                    f"{scope}/cross_attention/attention_output")
        _set_norm(layer.attention.layer_norm, values, f"{scope}/cross_attention_layer_norm")
        _set_linear(layer.ffn.linear_0, values, f"{scope}/feedforward_intermediate_dense")
        _set_linear(layer.ffn.linear_1, values, f"{scope}/feedforward_output_dense")
        _set_norm(layer.ffn.layer_norm, values, f"{scope}/feedforward_layer_norm")
    _set_linear(spec.decoder.projection, values, "logits")
    spec.decoder.projection.bias[[PAD_ID, BOS_ID]] = SUPPRESSED_BIAS
    spec.register_source_vocabulary(pieces)
    spec.register_target_vocabulary(pieces)
    return spec


def export_ctranslate2(model, tokenizer, output_dir, quantization=None, max_positions=512,
                       force=False):
    """Write `model` as a CTranslate2 model directory.

    Args:
        model: a model built by `keras_compress.nmt.transformer` (strip a QAT model first).
        tokenizer: its `sentencepiece.SentencePieceProcessor` (the vocabulary's pieces, with
            `<pad>`, `<unk>`, `<s>` and `</s>` at ids 0-3).
        output_dir: the directory to write.
        quantization: None (float32) or a CTranslate2 weight type such as "int8".
        max_positions: rows of the stored position table (longest source or target).
        force: overwrite an existing `output_dir`.

    Returns:
        `output_dir`. Translate with `ctranslate2.Translator(output_dir).translate_batch(
        [pieces + ["</s>"]], beam_size=4, length_penalty=0.6)`: the source must end with EOS,
        as the Keras model was trained.
    """
    import ctranslate2

    pieces = [tokenizer.id_to_piece(i) for i in range(tokenizer.get_piece_size())]
    if pieces[:4] != ["<pad>", "<unk>", "<s>", "</s>"]:
        raise ValueError(f"tokenizer ids 0-3 must be <pad> <unk> <s> </s>, got {pieces[:4]}")
    vocab_size = model.get_layer("logits").units if hasattr(model, "get_layer") else None
    if vocab_size is not None and vocab_size != len(pieces):
        raise ValueError(f"model has {vocab_size} output ids but the tokenizer {len(pieces)}")
    spec = _spec(model, pieces, max_positions)

    class KerasTransformerConverter(ctranslate2.converters.Converter):
        def _load(self):
            return spec

    os.makedirs(os.path.dirname(os.path.abspath(output_dir)), exist_ok=True)
    return KerasTransformerConverter().convert(output_dir, quantization=quantization,
                                               force=force)
