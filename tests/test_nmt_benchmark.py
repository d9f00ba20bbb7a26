"""benchmarks/nmt_compression.py's latency instruments: the head-to-head pass times each LiteRT
`translate` engine against CTranslate2 int8 with nothing else between their calls."""

import argparse
import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location(
        "nmt_compression", os.path.join(ROOT, "benchmarks", "nmt_compression.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def recording_engines(names, calls):
    """Engines `f(sentences, beam) -> translations` that log (name, sentence, beam)."""
    def engine(name):
        def run(sentences, beam):
            sum(i * i for i in range(20000))  # some CPU time: the ratios divide by it
            calls.extend((name, sentence, beam) for sentence in sentences)
            return [f"{name}:{sentence}" for sentence in sentences]
        return run
    return {name: engine(name) for name in names}


def test_time_side_by_side_repeats_and_alternates(bench):
    calls = []
    functions = {name: (lambda s, f=f: f([s], 4)[0])
                 for name, f in recording_engines(["a", "b"], calls).items()}
    timings, outputs = bench.time_side_by_side(functions, ["x", "y", "z"], warmup=1, repeats=2,
                                               alternate=True)
    assert outputs == {"a": ["a:x", "a:y", "a:z"], "b": ["b:x", "b:y", "b:z"]}
    timed = [(name, sentence) for name, sentence, _ in calls[2:]]  # after the warm-up
    # pass 0: x a-b, y b-a, z a-b; pass 1 starts reversed: x b-a, y a-b, z b-a
    assert timed == [("a", "x"), ("b", "x"), ("b", "y"), ("a", "y"), ("a", "z"), ("b", "z"),
                     ("b", "x"), ("a", "x"), ("a", "y"), ("b", "y"), ("b", "z"), ("a", "z")]
    for name in "ab":
        assert set(timings[name]["cpu"]) == {"median_ms", "p90_ms", "mean_ms"}


def test_head_to_head_runs_each_translate_file_alone_with_ctranslate2(bench):
    calls = []
    names = ["translate_float32", "translate_dynamic", "steps_dynamic", "ctranslate2_int8",
             "keras_cached"]
    engines = recording_engines(names, calls)
    args = argparse.Namespace(beam_size=4, latency_repeats=2)
    results = bench.head_to_head_latency(args, engines, ["s1", "s2", "s3"])
    assert set(results) == {f"translate_{mode}_beam{b}" for mode in ("float32", "dynamic")
                            for b in (1, 4)}
    for pair in results.values():
        assert pair["over_ctranslate2_int8_median"] > 0
        assert pair["over_ctranslate2_int8_mean"] > 0
    # each pass holds one translate file and CTranslate2, at one beam, and nothing else
    passes, current = [], None
    for name, _, beam in calls:
        if name not in ("ctranslate2_int8",) and name != current:
            current = name
            passes.append((name, beam, set()))
        passes[-1][2].add(name)
    assert [(name, beam) for name, beam, _ in passes] == [
        ("translate_float32", 1), ("translate_dynamic", 1), ("translate_float32", 4),
        ("translate_dynamic", 4)]
    for name, _, seen in passes:
        assert seen == {name, "ctranslate2_int8"}
    assert {(name, beam) for name, _, beam in calls} == {
        (name, b) for name in ("translate_float32", "translate_dynamic", "ctranslate2_int8")
        for b in (1, 4)}
