"""benchmarks/side_by_side.py: the interleaved CPU timing of translation engines that
nmt_compression.py and nmt_translate_ab.py share (the clean-process instrument itself is
tested on a real translator file in tests/test_translator.py)."""

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def side_by_side():
    spec = importlib.util.spec_from_file_location(
        "side_by_side", os.path.join(ROOT, "benchmarks", "side_by_side.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_time_side_by_side_repeats_and_alternates():
    calls = []

    def engine(name):
        def run(sentence):
            sum(i * i for i in range(20000))  # some CPU time
            calls.append((name, sentence))
            return f"{name}:{sentence}"
        return run

    timings, outputs, cpu = side_by_side().time_side_by_side(
        {"a": engine("a"), "b": engine("b")}, ["x", "y", "z"], warmup=1, repeats=2,
        alternate=True)
    assert outputs == {"a": ["a:x", "a:y", "a:z"], "b": ["b:x", "b:y", "b:z"]}
    # after the warm-up, pass 0: x a-b, y b-a, z a-b; pass 1 starts reversed: x b-a, y a-b, z b-a
    assert calls[2:] == [("a", "x"), ("b", "x"), ("b", "y"), ("a", "y"), ("a", "z"), ("b", "z"),
                         ("b", "x"), ("a", "x"), ("a", "y"), ("b", "y"), ("b", "z"), ("a", "z")]
    for name in "ab":
        assert len(cpu[name]) == 6 and all(seconds >= 0 for seconds in cpu[name])
        assert set(timings[name]["cpu"]) == {"median_ms", "p90_ms", "mean_ms"}
        assert timings[name]["cpu"]["median_ms"] <= timings[name]["cpu"]["p90_ms"]


def test_time_side_by_side_in_order_without_alternate():
    calls = []
    functions = {name: (lambda sentence, name=name: calls.append(name)) for name in "abc"}
    side_by_side().time_side_by_side(functions, ["x", "y"], warmup=0, repeats=1)
    assert calls == ["a", "b", "c", "a", "b", "c"]
