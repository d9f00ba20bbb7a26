import warnings

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("keras_hub")
pytest.importorskip("ai_edge_litert")
pytest.importorskip("tensorflow")

from keras_compress.nmt import search  # noqa: E402
from keras_compress.nmt import (  # noqa: E402
    SmoothedSparseCategoricalCrossentropy,
    Translator,
    beam_search,
    export_translator,
    greedy_decode,
    transformer,
)

WORDS = ["light", "day", "night", "water", "earth", "heaven", "luz", "dia", "noche", "agua"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from keras_compress.nmt import train_tokenizer

    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, 5)) for _ in range(200)]
    return train_tokenizer(texts, str(tmp_path_factory.mktemp("spm") / "sp"), vocab_size=30)


@pytest.fixture(scope="module")
def copy_model(tokenizer):
    """A tiny Transformer trained a few steps to copy its source."""
    vocab = tokenizer.get_piece_size()
    keras.utils.set_random_seed(0)
    model = transformer(vocab, "small", num_layers=1, d_model=32, d_ff=64, num_heads=2,
                        dropout=0.0)
    rng = np.random.default_rng(0)
    tokens = rng.integers(4, vocab, (256, 5)).astype("int32")
    source = np.concatenate([tokens, np.full((256, 1), 3)], 1).astype("int32")
    decoder_inputs = np.concatenate([np.full((256, 1), 2), tokens], 1).astype("int32")
    model.compile(keras.optimizers.Adam(0.01), SmoothedSparseCategoricalCrossentropy(0.1))
    # enough steps that it copies sentences it never saw (test_beam_search_learns_the_copy_task)
    model.fit([source, decoder_inputs], source, epochs=15, batch_size=16, verbose=0)
    return model


def sources(rows=5, vocab=30, seed=3):
    rng = np.random.default_rng(seed)
    array = rng.integers(4, vocab, (rows, 6)).astype("int32")
    array[:, -1] = 3
    array[0, 3:] = 0
    array[0, 2] = 3
    return array


def _fully_connected_outputs(path):
    """The output sizes (weights' first dimension) of every FULLY_CONNECTED in the file."""
    from ai_edge_litert import schema_py_generated as schema

    from keras_compress.export.flatbuffer import _model

    model = _model(path)
    codes = [max(model.OperatorCodes(i).BuiltinCode(), model.OperatorCodes(i).DeprecatedBuiltinCode())
             for i in range(model.OperatorCodesLength())]
    sizes = set()
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for o in range(graph.OperatorsLength()):
            operator = graph.Operators(o)
            if codes[operator.OpcodeIndex()] == schema.BuiltinOperator.FULLY_CONNECTED:
                sizes.add(int(graph.Tensors(operator.Inputs(1)).ShapeAsNumpy()[0]))
    return sizes


def _keras_rows(model, rows, beam_size, max_target_length):
    """Keras beam search, one sentence at a time, at the translate signature's max_length."""
    return [beam_search(model, np.array([row]), beam_size, 0.6,
                        max_length=min(2 * len(row) + 10, max_target_length))[0] for row in rows]


@pytest.fixture(scope="module")
def float_file(copy_model, tokenizer, tmp_path_factory):
    """The copy model's float32 translator: translate at beam 4, step signatures for 1 and 4."""
    return export_translator(copy_model, str(tmp_path_factory.mktemp("float") / "float.tflite"),
                             None, max_source_length=16, max_target_length=10,
                             sample_sources=sources(vocab=tokenizer.get_piece_size()),
                             beam_size=4, step_beam_sizes=(1, 4))


def test_translate_signature_gives_the_step_and_keras_tokens(copy_model, tokenizer, tmp_path,
                                                             float_file):
    source = sources(vocab=tokenizer.get_piece_size())
    rows = [[int(t) for t in row if t] for row in source]
    exported = float_file
    assert exported.same_tokens == 1.0 and exported.max_abs_diff < 1e-4
    assert exported.step_beam_sizes == (1, 4) and exported.beam_size == 4
    # the whole search is one builtin WHILE loop; every input shape is fixed
    assert "WHILE" in exported.operators
    assert all(name.isupper() and "FLEX" not in name for name in exported.operators)
    assert not {"SIN", "COS", "SHAPE"} & set(exported.operators), exported.operators
    translator = Translator(exported.path, tokenizer)
    assert translator.search == "graph"
    interpreter = translator._runtime.interpreter
    details = interpreter.get_signature_runner("translate").get_input_details()
    assert list(details) == ["source"] and details["source"]["dtype"] == np.int32
    assert details["source"]["shape_signature"].tolist() == [1, 16]
    outputs = interpreter.get_signature_runner("translate").get_output_details()
    assert sorted(outputs) == ["score", "tokens"] and outputs["tokens"]["dtype"] == np.int32
    keras_beam = _keras_rows(copy_model, rows, 4, 10)
    assert any(len(ids) >= 3 for ids in keras_beam)  # the model translates, it does not just stop
    steps = Translator(exported.path, tokenizer, search="steps")
    assert [translator.translate_ids(row) for row in rows] == keras_beam
    assert [steps.translate_ids(row, 4, 0.6) for row in rows] == keras_beam
    # every signature multiplies by the logits kernel without the padding and BOS columns:
    # no FULLY_CONNECTED of the file has vocab outputs, some have vocab - 2
    vocab = tokenizer.get_piece_size()
    assert vocab - 2 in _fully_connected_outputs(exported.path)
    assert vocab not in _fully_connected_outputs(exported.path)
    # greedy: a beam-1 translate signature, for two sentences a call
    greedy = export_translator(copy_model, str(tmp_path / "greedy.tflite"), None,
                               max_source_length=16, max_target_length=10,
                               sample_sources=source, beam_size=1, batch_size=2)
    assert greedy.same_tokens == 1.0 and greedy.step_beam_sizes == ()
    keras_greedy = _keras_rows(copy_model, rows, 1, 10)
    assert [steps.translate_ids(row, beam_size=1) for row in rows] == keras_greedy
    assert [Translator(greedy.path, None).translate_ids(row) for row in rows] == keras_greedy
    from keras_compress.nmt.translator import _Runtime

    runtime = _Runtime(greedy.path)
    block = np.zeros((2, 16), "int32")
    block[0, :6], block[1, :6] = source[3], source[4]
    tokens, scores = runtime.translate(block)
    assert [[int(t) for t in row if t] for row in tokens] == keras_greedy[3:]
    assert np.isfinite(scores).all()
    block[1] = 0  # an empty row fills a batch and gives nothing
    assert not runtime.translate(block)[0][1].any()
    # text: two sentences a call, the last call half empty
    texts = ["light day night", "water earth", "heaven luz dia"]
    batched = Translator(greedy.path, tokenizer).translate(texts)
    assert batched == [tokenizer.decode(Translator(greedy.path, tokenizer).translate_ids(
        tokenizer.encode(text) + [3])) for text in texts]
    # the graph's search is fixed at export; other settings need the step signatures
    with pytest.raises(ValueError, match="beam_size=4"):
        translator.translate_ids(rows[1], beam_size=3)
    with pytest.raises(ValueError, match="step_beam_sizes"):
        Translator(greedy.path, None, search="steps")
    with pytest.raises(ValueError, match="beam sizes"):
        steps.translate_ids(rows[1], beam_size=3)


def test_translate_in_two_loops_gives_the_keras_tokens(copy_model, tokenizer, tmp_path,
                                                        monkeypatch):
    # large caches are searched over half the positions first, then all (graph_search); the
    # copy model's cache is small, so force it: its 6-token sentences cross into the second loop
    from keras_compress.export.flatbuffer import _model
    from keras_compress.nmt import graph_search

    monkeypatch.setattr(graph_search, "PHASE_MIN_CACHE_VALUES", 0)
    assert graph_search._phase_lengths(10, 1) == [5, 10] and graph_search._phase_lengths(7, 1) == [7]
    source = sources(vocab=tokenizer.get_piece_size())
    rows = [[int(t) for t in row if t] for row in source]
    exported = export_translator(copy_model, str(tmp_path / "phases.tflite"), None,
                                 max_source_length=16, max_target_length=10,
                                 sample_sources=source, beam_size=4, source_buckets=())
    assert _model(exported.path).SubgraphsLength() == 5  # translate, 2 x (cond, body)
    assert exported.same_tokens == 1.0 and exported.max_abs_diff < 1e-4
    translator = Translator(exported.path, tokenizer)
    assert [translator.translate_ids(row) for row in rows] == _keras_rows(copy_model, rows, 4, 10)


@pytest.mark.parametrize("beam_size,batch_size", [(4, 1), (1, 2)])
def test_source_buckets_give_the_full_length_and_keras_tokens(copy_model, tokenizer, tmp_path,
                                                              beam_size, batch_size):
    from keras_compress.nmt.translator import _Runtime

    source = sources(vocab=tokenizer.get_piece_size())
    rows = [[int(t) for t in row if t] for row in source]  # 3 and 6 subwords
    # T = 24: bucket 4 searches over min(2 * 4 + 10, 24) = 18 target positions, bucket 8 over 24
    exported = export_translator(copy_model, str(tmp_path / "buckets.tflite"), None,
                                 max_source_length=16, max_target_length=24,
                                 sample_sources=source, beam_size=beam_size,
                                 batch_size=batch_size, source_buckets=[8, 4])
    assert exported.source_buckets == (4, 8) and exported.same_tokens == 1.0
    assert all(name.isupper() and "FLEX" not in name for name in exported.operators)
    runtime = _Runtime(exported.path)
    assert runtime.source_lengths == (4, 8, 16)
    assert [runtime.bucket(n) for n in (3, 4, 6, 9, 16)] == [4, 4, 8, 16, 16]
    for key, length in (("translate_4", 4), ("translate_8", 8), ("translate", 16)):
        runner = runtime.interpreter.get_signature_runner(key)
        assert runner.get_input_details()["source"]["shape_signature"].tolist() == [
            batch_size, length]
        assert runner.get_output_details()["tokens"]["shape_signature"].tolist() == [
            batch_size, 24]
    del runner
    keras_tokens = _keras_rows(copy_model, rows, beam_size, 24)
    assert any(len(ids) >= 3 for ids in keras_tokens)
    for row, expected in zip(rows, keras_tokens):
        padded = np.zeros((batch_size, 16), "int32")
        padded[0, : len(row)] = row
        full_tokens, full_score = runtime.translate(padded)
        for length in runtime.source_lengths:
            if length >= len(row):
                tokens, score = runtime.translate(padded[:, :length])
                assert (tokens == full_tokens).all(), (row, length)
                np.testing.assert_allclose(score[0], full_score[0], atol=1e-5)  # row 1 empty
        assert [int(t) for t in full_tokens[0] if t] == expected
    translator = Translator(exported.path, tokenizer)
    assert [translator.translate_ids(row) for row in rows] == keras_tokens
    texts = ["light day", "light day night water earth", "agua"]  # buckets 4, 16 and 4
    assert translator.translate(texts) == [
        tokenizer.decode(translator.translate_ids(tokenizer.encode(text) + [3]))
        for text in texts]
    with pytest.raises(ValueError, match="source columns"):
        runtime.translate(np.zeros((batch_size, 5), "int32"))


def test_litert_step_translator_gives_the_keras_tokens(copy_model, tokenizer, float_file):
    source = sources(vocab=tokenizer.get_piece_size())
    exported = float_file
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # decode_step runs directly, not through a runner
        translator = Translator(exported.path, tokenizer, search="steps")
    # the direct path drives subgraphs through ai_edge_litert's private wrapper (probed by name in
    # tests/test_export.py::test_litert_internal_is_where_the_export_module_expects)
    assert translator._runtime.direct
    rows = [[int(t) for t in row if t] for row in source]
    keras_greedy = greedy_decode(copy_model, source, max_length=9)
    assert [translator.translate_ids(row, beam_size=1, max_length=9) for row in rows] == keras_greedy
    keras_beam = beam_search(copy_model, source, beam_size=4, length_penalty=0.6, max_length=9)
    assert [translator.translate_ids(row, 4, 0.6, max_length=9) for row in rows] == keras_beam
    # the signature-runner path, for files whose decode_step is not the first subgraph
    fallback = Translator(exported.path, tokenizer, search="steps")
    fallback._runtime.direct = False
    assert [fallback.translate_ids(row, 4, 0.6, max_length=9) for row in rows] == keras_beam
    graph = Translator(exported.path, tokenizer)
    graph._runtime.direct = False
    assert [graph.translate_ids(row) for row in rows] == _keras_rows(copy_model, rows, 4, 10)
    # text in, text out; too long sentences are cut with a warning, not silently
    sentence = "light day night"
    ids = tokenizer.encode(sentence)
    assert translator.translate([sentence]) == [tokenizer.decode(translator.translate_ids(ids + [3]))]
    with pytest.warns(UserWarning, match="cut"):
        translator.translate([" ".join(WORDS * 3)])
    with pytest.raises(ValueError, match="max_source_length"):
        translator.translate_ids([5] * 17)
    # one decode step per exported beam size, every shape fixed (no shape arithmetic left)
    assert translator._runtime.beam_sizes == exported.step_beam_sizes == (1, 4)
    interpreter = translator._runtime.interpreter
    for key in ("decode_step_beam1", "decode_step_beam4"):
        runner = interpreter.get_signature_runner(key)
        assert all(-1 not in detail["shape_signature"]
                   for detail in runner.get_input_details().values()), key
    del runner


def test_translator_refuses_bad_ids_and_settings(float_file):
    translator = Translator(float_file.path, None)
    vocab = translator.vocab_size
    assert vocab == 30
    for ids in ([-1, 3], [-30, 3], [2**40, 3], [vocab, 3], [5, 2**70]):
        with pytest.raises(ValueError, match="vocabulary"):
            translator.translate_ids(ids)
    for ids in ([2.5, 3], [True, 3], [[5], [3]], ["5", 3]):
        with pytest.raises(ValueError, match="integer"):
            translator.translate_ids(ids)
    with pytest.raises(TypeError, match="list"):
        translator.translate_ids("5 3")
    with pytest.raises(ValueError, match="empty"):
        translator.translate_ids([])
    steps = Translator(float_file.path, None, search="steps")
    for length in (2.5, 0, True, "3"):
        with pytest.raises(ValueError, match="max_length"):
            steps.translate_ids([5, 3], max_length=length)
    for penalty in (float("nan"), float("inf"), -0.5, 1e300, 10.5):
        with pytest.raises(ValueError, match="length_penalty"):
            steps.translate_ids([5, 3], length_penalty=penalty)
    with pytest.raises(ValueError, match="search"):
        Translator(float_file.path, None, search="numpy")


def test_translator_shared_by_threads_gives_the_single_thread_results(float_file):
    import concurrent.futures

    rows = [[int(t) for t in row if t] for row in sources(rows=8, seed=5)]
    for search_kind in ("graph", "steps"):
        translator = Translator(float_file.path, None, search=search_kind)
        expected = [translator.translate_ids(row) for row in rows]
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            got = list(pool.map(translator.translate_ids, rows * 4))
        assert got == expected * 4, search_kind


@pytest.mark.parametrize("quantization", ["dynamic", "int8"])
def test_quantized_translators_use_builtin_int8_kernels(copy_model, tmp_path, quantization):
    from ai_edge_litert.interpreter import Interpreter

    source = sources()
    # calibrated activations: step signatures only (TensorFlow's calibrator cannot run the loop)
    settings = {"beam_size": None, "step_beam_sizes": (4,)} if quantization == "int8" else {}
    exported = export_translator(copy_model, str(tmp_path / f"{quantization}.tflite"),
                                 quantization, max_source_length=8, max_target_length=10,
                                 sample_sources=source, **settings)
    assert all(name.isupper() and "FLEX" not in name for name in exported.operators)
    interpreter = Interpreter(model_path=exported.path)
    assert {t["dtype"] for t in interpreter.get_tensor_details()} & {np.int8}
    # what the quantized translator outputs: the copy, on every unseen sentence the float model
    # copies (the float model's copies are checked in test_beam_search_learns_the_copy_task)
    unseen = copy_sources()
    copied = [row for row, out in zip(unseen, _keras_rows(copy_model, unseen, 4, 10)) if out == row[:-1]]
    assert len(copied) >= 4, "the float model must copy for this test to mean anything"
    translator = Translator(exported.path, None, search="steps" if quantization == "int8" else None)
    assert [translator.translate_ids(row, beam_size=4) for row in copied] == [row[:-1] for row in copied]
    # which operators compute in integers: all the matmuls in full int8, none in dynamic-range
    # (int8 weights, float activations)
    from keras_compress.export.flatbuffer import operator_types

    types = operator_types(exported.path)
    for name in ("FULLY_CONNECTED", "BATCH_MATMUL"):
        if quantization == "int8":
            assert types[name]["integer"] > 0 and types[name]["float"] == 0, (name, types[name])
        else:
            assert types[name]["integer"] == 0 and types[name]["float"] > 0, (name, types[name])
    if quantization == "dynamic":
        assert "WHILE" in types  # the translate signature's search
        # the first step (before the loop) and the loop body read the same int8 weights: their
        # per-channel scales are stored once (flatbuffer._share_quantization)
        from keras_compress.export.flatbuffer import _model

        model, tables, per_channel = _model(exported.path), set(), 0
        for g in range(model.SubgraphsLength()):
            graph = model.Subgraphs(g)
            for t in range(graph.TensorsLength()):
                parameters = graph.Tensors(t).Quantization()
                if parameters is not None and parameters.ScaleLength() > 1:
                    tables.add(parameters._tab.Pos)
                    per_channel += 1
        assert 0 < len(tables) < per_channel


@pytest.mark.parametrize("quantization", ["int16x8", "int8x8"])
def test_static_translator_runs_the_layers_in_integers(copy_model, tmp_path, quantization):
    """ai-edge-quantizer's int16- or int8-activation / int8-weight recipe on the float32 file:
    the translate signature and the step signatures, every matmul in integers, the beam
    bookkeeping float, and the copies still copied."""
    pytest.importorskip("ai_edge_quantizer")
    from ai_edge_litert.interpreter import Interpreter

    from keras_compress.export.flatbuffer import operator_types

    exported = export_translator(copy_model, str(tmp_path / f"{quantization}.tflite"),
                                 quantization, max_source_length=8, max_target_length=10,
                                 sample_sources=sources(), beam_size=4, step_beam_sizes=(4,))
    assert exported.quantization == quantization
    assert all(name.isupper() and "FLEX" not in name for name in exported.operators)
    activations = {"int16x8": np.int16, "int8x8": np.int8}[quantization]
    assert activations in {t["dtype"] for t in Interpreter(model_path=exported.path).get_tensor_details()}
    types = operator_types(exported.path)
    # float: the search (top-k, the candidates' log-probabilities, the scores); in int16,
    # LayerNorm's squared difference too (the quantizer has no int16 kernel for it)
    for name in ("TOPK_V2",) + (("SQUARED_DIFFERENCE",) if quantization == "int16x8" else ()):
        assert types[name]["integer"] == 0 and types[name]["float"] > 0, (name, types[name])
    for name in ("LOG_SOFTMAX", "LOG", "EXP"):
        assert types.get(name, {}).get("integer", 0) == 0, (name, types[name])
    assert types["FULLY_CONNECTED"]["integer"] > 0 and types["FULLY_CONNECTED"]["float"] == 0
    # attention: every BATCH_MATMUL but those on a folded constant (the BOS step of encode and
    # of the search's first step)
    assert types["BATCH_MATMUL"]["integer"] > 2 * types["BATCH_MATMUL"]["float"]
    for name in ("MEAN", "RSQRT", "SOFTMAX"):
        assert types[name]["integer"] > 0, (name, types[name])
    unseen = copy_sources()
    copied = [row for row, out in zip(unseen, _keras_rows(copy_model, unseen, 4, 10)) if out == row[:-1]]
    assert len(copied) >= 4, "the float model must copy for this test to mean anything"
    for search_kind in ("graph", "steps"):
        translator = Translator(exported.path, None, search=search_kind)
        assert [translator.translate_ids(row, beam_size=4) for row in copied] == \
            [row[:-1] for row in copied], search_kind


def test_static_modes_without_the_quantizer_are_a_one_line_error(copy_model, tmp_path,
                                                                 monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ai_edge_quantizer", None)  # import fails
    with pytest.raises(ImportError, match="'int16x8' needs .*pip install ai-edge-quantizer") as error:
        export_translator(copy_model, str(tmp_path / "x.tflite"), "int16x8",
                          sample_sources=sources())
    assert "\n" not in str(error.value)
    assert not (tmp_path / "x.tflite").exists()
    monkeypatch.undo()
    with pytest.raises(ValueError, match="sample_sources"):
        export_translator(copy_model, str(tmp_path / "x.tflite"), "int16x8",
                          step_beam_sizes=(1,))


def copy_sources(rows=6, seed=11):
    """Unseen copy-task sources: 5 tokens and EOS, as the fixture trains on."""
    tokens = np.random.default_rng(seed).integers(4, 30, (rows, 5))
    return [[int(token) for token in row] + [3] for row in tokens]


def test_beam_search_learns_the_copy_task(copy_model):
    """Keras beam search (and greedy) on the trained copy model: sentences it never saw come
    back as themselves."""
    unseen = copy_sources()
    beam = _keras_rows(copy_model, unseen, 4, 10)
    assert sum(out == row[:-1] for out, row in zip(beam, unseen)) >= 5, (beam, unseen)
    greedy = [greedy_decode(copy_model, np.array([row]), max_length=8)[0] for row in unseen]
    assert sum(out == row[:-1] for out, row in zip(greedy, unseen)) >= 5, (greedy, unseen)


def test_export_rejects_bad_arguments(copy_model, tmp_path):
    with pytest.raises(ValueError, match="quantization"):
        export_translator(copy_model, str(tmp_path / "x.tflite"), "int4")
    with pytest.raises(ValueError, match="sample_sources"):
        export_translator(copy_model, str(tmp_path / "x.tflite"), "int8", beam_size=None,
                          step_beam_sizes=(1,))
    with pytest.raises(FileNotFoundError):
        export_translator(copy_model, str(tmp_path / "missing" / "x.tflite"))
    with pytest.raises(ValueError, match="max_source_length"):
        export_translator(copy_model, str(tmp_path / "x.tflite"), max_source_length=1)
    with pytest.raises(ValueError, match="loop"):
        export_translator(copy_model, str(tmp_path / "x.tflite"), "int8",
                          sample_sources=sources())
    for penalty in (float("nan"), float("inf"), -1.0, True, 1e300):
        with pytest.raises(ValueError, match="length_penalty"):
            export_translator(copy_model, str(tmp_path / "x.tflite"), length_penalty=penalty)
    with pytest.raises(ValueError, match="step_beam_sizes"):
        export_translator(copy_model, str(tmp_path / "x.tflite"), beam_size=None)
    for buckets in ([16], [1], "all", [4.0], 8):  # lengths below S = 16, at least 2
        with pytest.raises(ValueError, match="source_buckets"):
            export_translator(copy_model, str(tmp_path / "x.tflite"), max_source_length=16,
                              source_buckets=buckets)
    with pytest.raises(ValueError, match="beam_size=None"):
        export_translator(copy_model, str(tmp_path / "x.tflite"), beam_size=None,
                          step_beam_sizes=(1,), source_buckets=[8])
    from keras_compress.nmt.translator import default_source_buckets

    assert [default_source_buckets(s) for s in (8, 16, 33, 64)] == [
        (), (8,), (8, 16, 24), (8, 16, 24, 32, 40, 48, 56)]


def test_keras_quantized_model_is_compared_in_keras_and_refused_by_the_exporter(
        copy_model, tmp_path):
    # Keras's own post-training int8 (model.quantize): decoded by the same Keras search, and
    # refused by export_translator with a one-line reason, not a converter trace
    quantized = keras.models.clone_model(copy_model)
    quantized.set_weights(copy_model.get_weights())
    quantized.quantize("int8")
    assert any(getattr(layer, "quantization_mode", None) == "int8"
               for layer in quantized._flatten_layers())
    source = sources()
    got = beam_search(quantized, source, 4, 0.6, max_length=9)
    assert len(got) == len(source) and all(isinstance(ids, list) for ids in got)
    with pytest.raises(ValueError, match="model.quantize.*quantization='dynamic'"):
        export_translator(quantized, str(tmp_path / "keras_int8.tflite"))


def test_numpy_beam_search_prefers_the_penalized_best():
    # two steps, vocab of 6: EOS right away scores log 0.4; "5 then EOS" scores log(0.6 * 0.9)
    first = np.log(np.array([[1e-9, 1e-9, 1e-9, 0.4, 1e-9, 0.6]]))
    second = np.log(np.array([1e-9, 1e-9, 1e-9, 0.9, 0.1 - 3e-9, 1e-9]))

    def step(tokens, index, beams, state):
        return np.tile(second, (len(tokens), 1)), state

    def reorder(state, rows):
        return state

    assert search.beam_search(first, None, step, reorder, beam_size=2, max_length=3) == [[5]]
    assert search.beam_search(first, None, step, reorder, beam_size=1, max_length=3) == [[5]]
    with pytest.raises(ValueError, match="beam_size"):
        search.beam_search(first, None, step, reorder, beam_size=0)


def test_numpy_beam_search_stops_at_the_best_hypothesis_with_stop_best():
    # EOS right away is the most probable start (0.5), "5 then EOS" (0.48 * 0.99) wins after
    # the length penalty (alpha 1): "all" searches on and finds it, "best" stops at once
    first = np.log(np.array([[1e-9, 1e-9, 1e-9, 0.5, 1e-9, 0.48]]))
    second = np.log(np.array([1e-9, 1e-9, 1e-9, 0.99, 0.01 - 4e-9, 1e-9]))
    calls = []

    def step(tokens, index, beams, state):
        calls.append(index)
        return np.tile(second, (len(tokens), 1)), state

    def reorder(state, rows):
        return state

    assert search.beam_search(first, None, step, reorder, 2, 1.0, 5, stop="all") == [[5]]
    assert calls
    calls.clear()
    assert search.beam_search(first, None, step, reorder, 2, 1.0, 5, stop="best") == [[]]
    assert not calls
    with pytest.raises(ValueError, match="stop must be one of"):
        search.beam_search(first, None, step, reorder, 2, 1.0, 5, stop="first")


def test_stop_best_translate_gives_the_step_and_keras_tokens(copy_model, tokenizer, tmp_path):
    source = sources(rows=8, vocab=tokenizer.get_piece_size())
    rows = [[int(t) for t in row if t] for row in source]
    exported = export_translator(copy_model, str(tmp_path / "best.tflite"), None,
                                 max_source_length=16, max_target_length=10,
                                 sample_sources=source, beam_size=4, step_beam_sizes=(4,),
                                 source_buckets=(8,), stop="best")
    assert exported.stop == "best" and exported.same_tokens == 1.0
    keras_best = [beam_search(copy_model, np.array([row]), 4, 0.6,
                              max_length=min(2 * len(row) + 10, 10), stop="best")[0]
                  for row in rows]
    translator = Translator(exported.path, tokenizer)
    assert translator.stop == "best"
    assert [translator.translate_ids(row) for row in rows] == keras_best
    steps = Translator(exported.path, tokenizer, search="steps")
    assert [steps.translate_ids(row) for row in rows] == keras_best  # the file's stop
    keras_all = _keras_rows(copy_model, rows, 4, 10)
    assert [steps.translate_ids(row, stop="all") for row in rows] == keras_all
    with pytest.raises(ValueError, match="stop=best"):
        translator.translate_ids(rows[0], stop="all")
    with pytest.raises(ValueError, match="stop must be one of"):
        export_translator(copy_model, str(tmp_path / "bad.tflite"), None, max_source_length=16,
                          max_target_length=10, sample_sources=source, stop="early")


def test_numpy_beam_search_takes_logits_or_top_candidates():
    # next-token logits depend on the position and the last token, so reordering matters
    rng = np.random.default_rng(0)
    table = rng.normal(size=(12, 30, 30)) * 3
    first = rng.normal(size=(2, 30))

    def reorder(state, rows):
        return state

    def step_logits(tokens, index, beams, state):
        return table[index, tokens[:, 0]], state

    def step_top(tokens, index, beams, state):
        return search.top_candidates(table[index, tokens[:, 0]], beams), state

    for beam_size in (1, 3):
        expected = search.beam_search(first, None, step_logits, reorder, beam_size, 0.6, 12)
        assert search.beam_search(first, None, step_top, reorder, beam_size, 0.6, 12) == expected
        assert len(expected) == 2 and any(expected)

    def step_short(tokens, index, beams, state):
        return search.top_candidates(table[index, tokens[:, 0]], 1), state

    with pytest.raises(ValueError, match="candidates"):
        search.beam_search(first, None, step_short, reorder, 3, 0.6, 12)


def test_ctranslate2_conversion_gives_the_keras_tokens(copy_model, tokenizer, tmp_path):
    ctranslate2 = pytest.importorskip("ctranslate2")
    from keras_compress.nmt import export_ctranslate2

    source = sources(vocab=tokenizer.get_piece_size())
    translator = ctranslate2.Translator(export_ctranslate2(copy_model, tokenizer, str(tmp_path / "ct2")),
                                        intra_threads=1)
    pieces = [[tokenizer.id_to_piece(int(t)) for t in row if t] for row in source]
    for beam_size in (1, 4):
        results = translator.translate_batch(pieces, beam_size=beam_size, length_penalty=0.6,
                                             max_decoding_length=9, min_decoding_length=0)
        ids = [[tokenizer.piece_to_id(p) for p in result.hypotheses[0]] for result in results]
        assert ids == beam_search(copy_model, source, beam_size, 0.6, max_length=9)
    with pytest.raises(ValueError, match="tokenizer"):
        export_ctranslate2(copy_model, _Pieces(), str(tmp_path / "bad"))


class _Pieces:
    """A tokenizer whose special ids are not ours."""

    def get_piece_size(self):
        return 30

    def id_to_piece(self, i):
        return f"p{i}"


def test_translator_loads_without_keras_and_the_clean_timing_process_runs_it(
        copy_model, tokenizer, float_file, tmp_path):
    """`Translator` imports neither Keras nor TensorFlow (what a server or phone app ships):
    benchmarks/nmt_compression.py times it against CTranslate2 in a fresh process that loads
    only the two runtimes, and that process translates as `Translator` does here."""
    ctranslate2 = pytest.importorskip("ctranslate2")  # noqa: F841
    import importlib.util
    import os

    from keras_compress.nmt import export_ctranslate2

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location(
        "side_by_side", os.path.join(root, "benchmarks", "side_by_side.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    model_file = tmp_path / "sp.model"
    model_file.write_bytes(tokenizer.serialized_model_proto())
    sentences = [tokenizer.decode([int(t) for t in row if t > 3])
                 for row in sources(vocab=tokenizer.get_piece_size())]
    settings = {"tokenizer": str(model_file), "beam": 4, "alpha": 0.6, "target_length": 10,
                "sentences": sentences}
    ct2_path = export_ctranslate2(copy_model, tokenizer, str(tmp_path / "ct2"))
    # it raises if the process loaded Keras, TensorFlow, JAX or PyTorch
    cpu, outputs = bench.clean_process_timing(settings, {"float": float_file.path}, ct2_path,
                                              repeats=2)
    assert {engine: len(seconds) for engine, seconds in cpu.items()} == {
        "float": 2 * len(sentences), "ctranslate2_int8": 2 * len(sentences)}
    assert outputs["float"] == Translator(float_file.path, tokenizer).translate(sentences)
    assert len(outputs["ctranslate2_int8"]) == len(sentences)


def test_graph_top_candidates_equal_the_numpy_ones():
    from keras_compress.nmt import decoding

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 30)).astype("float32")
    logits[0, 0] = logits[1, 2] = 50.0  # padding and BOS would win: never candidates
    logits[2, 1] = 50.0  # UNK is a candidate
    values, ids = decoding.top_candidates(logits, 4)
    expected_values, expected_ids = search.top_candidates(logits, 4)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ids), expected_ids)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(values), expected_values, atol=1e-5)
    assert expected_ids[2, 0] == 1 and not {0, 2} & set(expected_ids.ravel().tolist())


def test_translator_refuses_unordered_token_containers_and_names_the_export_argument(float_file):
    translator = Translator(float_file.path, None)
    for ids in ({5: 3}, {5, 3}, frozenset([5, 3])):
        with pytest.raises(TypeError, match="list of token ids"):
            translator.translate_ids(ids)
    steps = Translator(float_file.path, None, search="steps")
    with pytest.raises(ValueError, match=r"step_beam_sizes=\[\.\.\., 3\]"):
        steps.translate_ids([5, 3], beam_size=3)
