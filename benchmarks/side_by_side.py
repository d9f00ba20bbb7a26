"""Side-by-side CPU timing of translation engines, shared by `nmt_compression.py` and
`nmt_translate_ab.py`, and the clean timing process they start: `clean_process_timing` runs
this file as a script in a fresh process that loads only the LiteRT and CTranslate2 runtimes,
sentencepiece and NumPy (this module imports neither Keras nor TensorFlow), as a phone app or
a server runs a translator.

`time_side_by_side` interleaves the engines sentence by sentence, so that a change of the
machine's load hits all alike; on the shared benchmark machines the CPU time (process_time:
every thread of the process) is the work each engine does, the wall clock mostly the wait for a
core.
"""

import json
import os
import subprocess
import sys
import time
import types

import numpy as np


def quantiles(seconds):
    """Median, 90th percentile and mean of `seconds`, in milliseconds."""
    return {"median_ms": round(1000 * float(np.median(seconds)), 2),
            "p90_ms": round(1000 * float(np.percentile(seconds, 90)), 2),
            "mean_ms": round(1000 * float(np.mean(seconds)), 2)}


def time_side_by_side(functions, sentences, warmup=2, repeats=1, alternate=False):
    """Wall-clock and CPU seconds per sentence of each engine `functions[name](sentence)`,
    interleaved sentence by sentence (round-robin) over `repeats` passes after `warmup` sentences;
    with `alternate`, every other sentence runs the engines in reverse order, so that no engine
    always follows the same one. Returns ({name: {"wall": quantiles, "cpu": quantiles}},
    {name: outputs of the first pass}, {name: CPU seconds of every call})."""
    for sentence in sentences[:warmup]:
        for function in functions.values():
            function(sentence)
    wall = {name: [] for name in functions}
    cpu = {name: [] for name in functions}
    outputs = {name: [] for name in functions}
    for repeat in range(repeats):
        for i, sentence in enumerate(sentences):
            order = list(functions.items())
            if alternate and (i + repeat) % 2:
                order.reverse()
            for name, function in order:
                started, started_cpu = time.perf_counter(), time.process_time()
                output = function(sentence)
                wall[name].append(time.perf_counter() - started)
                cpu[name].append(time.process_time() - started_cpu)
                if not repeat:
                    outputs[name].append(output)
    return ({name: {"wall": quantiles(wall[name]), "cpu": quantiles(cpu[name])}
             for name in functions}, outputs, cpu)


def standalone_translator(package_dir):
    """`keras_compress.nmt.translator.Translator` loaded without the packages' `__init__`
    (which import Keras): what a server or phone app ships is that module, `search.py`,
    `constants.py` and `export/{litert,flatbuffer,static_quantization}.py`, the LiteRT runtime
    and sentencepiece. `package_dir` is the `keras_compress` folder. Raises RuntimeError if
    loading it imported Keras or TensorFlow."""
    for name, folder in (("keras_compress", package_dir),
                         ("keras_compress.nmt", os.path.join(package_dir, "nmt")),
                         ("keras_compress.export", os.path.join(package_dir, "export"))):
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [folder]
            sys.modules[name] = package
    from keras_compress.nmt.translator import Translator

    loaded = [name for name in ("keras", "tensorflow") if name in sys.modules]
    if loaded:
        raise RuntimeError(f"loading keras_compress.nmt.translator imported {loaded}")
    return Translator


def search_limit(subwords, target_length):
    """The most tokens (EOS included) every engine generates for a source of `subwords`
    subwords: min(2 * (subwords + EOS) + 10, T), the `translate` signature's limit."""
    return min(2 * (subwords + 1) + 10, target_length)


def ctranslate2_translate(translator, pieces, sentence, beam_size, length_penalty,
                          target_length):
    """`sentence` through a `ctranslate2.Translator` with sentencepiece model `pieces`, batch
    1, at most `search_limit` tokens, no minimum: the detokenized best hypothesis."""
    source = pieces.encode(sentence, out_type=str)
    result = translator.translate_batch(
        [source + ["</s>"]], beam_size=beam_size, length_penalty=length_penalty,
        max_decoding_length=search_limit(len(source), target_length), min_decoding_length=0)[0]
    return pieces.decode([pieces.piece_to_id(p) for p in result.hypotheses[0]])


def clean_process_timing(settings, litert_files, ctranslate2_path=None, repeats=1):
    """CPU seconds per sentence of LiteRT translator files and CTranslate2, interleaved
    (`time_side_by_side`, alternating order, `repeats` passes) in a fresh process that loads only
    those runtimes, sentencepiece and NumPy.

    Args:
        settings: {"tokenizer": sentencepiece model path, "sentences": [str], "beam": CTranslate2's
            beam size, "alpha": its length penalty, "target_length": T}; CTranslate2 generates at
            most min(2 (subwords + 1) + 10, T) tokens a sentence, as the translate signature.
        litert_files: {engine name: .tflite path}, each run by `Translator` (its translate
            signature).
        ctranslate2_path: a CTranslate2 model folder, timed as engine "ctranslate2_int8"; None:
            none.

    Returns:
        ({engine: CPU seconds of every call}, {engine: first-pass translations}). Raises
        RuntimeError if the process loaded Keras, TensorFlow, JAX or PyTorch."""
    request = {**settings, "litert_files": litert_files, "ctranslate2_path": ctranslate2_path,
               "repeats": repeats}
    output = subprocess.run([sys.executable, os.path.abspath(__file__)], input=json.dumps(request),
                            capture_output=True, text=True, check=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    report = json.loads(output.stdout.strip().splitlines()[-1])
    if report["frameworks_loaded"]:
        raise RuntimeError(f"the clean timing process loaded {report['frameworks_loaded']}")
    return report["cpu"], report["outputs"]


def _clean_process():
    request = json.loads(sys.stdin.read())
    engines = {}
    if request["litert_files"]:
        package_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                   "keras_compress")
        translator_class = standalone_translator(package_dir)
        for name, path in request["litert_files"].items():
            translator = translator_class(path, request["tokenizer"], num_threads=1)
            engines[name] = lambda sentence, t=translator: t.translate([sentence])[0]
    if request["ctranslate2_path"]:
        import ctranslate2
        import sentencepiece

        pieces = sentencepiece.SentencePieceProcessor(model_file=request["tokenizer"])
        ct2 = ctranslate2.Translator(request["ctranslate2_path"], intra_threads=1,
                                     inter_threads=1)

        engines["ctranslate2_int8"] = lambda sentence: ctranslate2_translate(
            ct2, pieces, sentence, request["beam"], request["alpha"], request["target_length"])
    loaded = [name for name in ("keras", "tensorflow", "jax", "torch") if name in sys.modules]
    _, outputs, cpu = time_side_by_side(engines, request["sentences"],
                                        repeats=request["repeats"], alternate=True)
    print(json.dumps({"cpu": cpu, "outputs": outputs, "frameworks_loaded": loaded}))


if __name__ == "__main__":
    _clean_process()
