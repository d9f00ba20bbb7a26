"""Hostile-input probe (issue 10): feed every reader, argument check and command of the library
bad input, and count how each attempt ended.

Each family runs in a forked child under ``resource.setrlimit(RLIMIT_AS)`` (its current
address space + 1 GiB) with a per-input alarm, so an allocation sized by a hostile header
shows as a MemoryError and a hang as a timeout instead of taking the machine down. An
outcome is "clean" when it is the library's documented error (Word2VecFormatError,
QuantizedVectorsFormatError, ValueError, TypeError, OSError, a one-line CLI error) or a
correct result; anything else (another exception type, MemoryError, a timeout, a crash of
the child, a CLI traceback) is a failure and is listed.

    python benchmarks/hostile_inputs.py [--seed 0] [--scale 1.0] [--json benchmarks/results/hostile_inputs.json]
"""
import argparse
import collections
import contextlib
import gzip
import io
import json
import multiprocessing
import os
import resource
import shlex
import signal
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
import zlib

import numpy as np

MEMORY_HEADROOM = 1 << 30
INPUT_SECONDS = 20


class InputTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise InputTimeout


def _virtual_memory():
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _child(family, count, seed, results):
    import logging

    logging.disable(logging.WARNING)  # skipped-line warnings are expected here, thousands of them
    limit = _virtual_memory() + MEMORY_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, _alarm)
    outcomes, failures = collections.Counter(), []
    rng = np.random.default_rng(seed)
    try:
        with tempfile.TemporaryDirectory() as folder:
            for number, attempt in enumerate(FAMILIES[family](rng, count, folder)):
                signal.alarm(INPUT_SECONDS)
                try:
                    outcome = attempt()
                except InputTimeout:
                    outcome = "FAILURE: timeout"
                except MemoryError:
                    outcome = "FAILURE: MemoryError"
                except Exception as error:  # noqa: BLE001 - counted, the point of the probe
                    outcome = f"FAILURE: {type(error).__name__}"
                    if len(failures) < 5:
                        failures.append(traceback.format_exc(limit=3))
                finally:
                    signal.alarm(0)
                outcomes[outcome] += 1
    except BaseException as error:  # noqa: BLE001 - the family itself broke: report it, do not die silently
        outcomes[f"FAILURE: family stopped ({type(error).__name__})"] += 1
        failures.append(traceback.format_exc(limit=3))
    # A pipe, not a multiprocessing.Queue: a Queue sends from a feeder thread, which a child that
    # has run out of threads or address space cannot start, and the parent then waited for the
    # whole family's time (the "Word2Bits workers" family stalled a full run for 660 s).
    results.send((dict(outcomes), failures))
    results.close()
    os._exit(0)


def run_family(family, count, seed):
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(family, count, seed, sender))
    started = time.perf_counter()
    child.start()
    sender.close()
    deadline = started + INPUT_SECONDS * count + 60
    outcomes, failures = None, []
    while outcomes is None and time.perf_counter() < deadline:
        try:
            if receiver.poll(1.0):
                outcomes, failures = receiver.recv()
        except (EOFError, OSError):  # the child died before it reported
            break
    if outcomes is None:
        child.join(1)
        if child.is_alive():
            child.kill()
        child.join(10)
        outcomes = {f"FAILURE: child died (exit code {child.exitcode})": 1}
    child.join(10)
    return outcomes, failures, time.perf_counter() - started


# ------------------------------------------------------------------ input families

def _write(folder, name, data):
    path = os.path.join(folder, name)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def _valid_word2vec(binary):
    from gensim.models import KeyedVectors

    vectors = KeyedVectors(4)
    vectors.add_vectors(["the", "king", "é", "a\tb"], np.arange(16, dtype=np.float32).reshape(4, 4) / 7)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "v")
        vectors.save_word2vec_format(path, binary=binary)
        with open(path, "rb") as handle:
            return handle.read()


def _mutate(rng, data):
    data = bytearray(data)
    kind = rng.integers(4)
    if kind == 0 and data:  # bit flips
        for _ in range(rng.integers(1, 5)):
            position = rng.integers(len(data))
            data[position] ^= 1 << int(rng.integers(8))
    elif kind == 1:  # truncation
        data = data[:rng.integers(len(data) + 1)]
    elif kind == 2 and data:  # a byte range replaced by random bytes
        start = rng.integers(len(data))
        data[start:start + 8] = rng.bytes(int(rng.integers(0, 12)))
    else:  # random bytes appended
        data += rng.bytes(int(rng.integers(1, 40)))
    return bytes(data)


HEADER_COUNTS = [0, 1, 2, 5, 2 ** 31, 3_000_000_000, 2 ** 63, 10 ** 30]
HEADER_DIMENSIONS = [0, 1, 4, 2 ** 24, 2 ** 24 + 1, 2 ** 31, 10 ** 20]
TOKENS = [b"0.3", b"-1e-3", b"nan", b"inf", b"1e999", b"x", b"", b"\xff", b"0x1", b"3.4e39", b"1_0"]


def _word2vec_inputs(binary):
    def family(rng, count, folder):
        from gensim_bits.word2vec_format import Word2VecFormatError, read_word2vec

        valid = _valid_word2vec(binary)
        for number in range(count):
            kind = number % 3
            if kind == 0:  # a hostile header over a short body
                header = b"%d %d\n" % (rng.choice(HEADER_COUNTS), rng.choice(HEADER_DIMENSIONS))
                if binary:
                    body = b"".join(rng.bytes(int(rng.integers(0, 5))) + b" " + rng.bytes(int(rng.integers(0, 20)))
                                    for _ in range(rng.integers(0, 4)))
                else:
                    body = b"".join(rng.bytes(int(rng.integers(0, 4))) + b" " +
                                    b" ".join(TOKENS[i] for i in rng.integers(0, len(TOKENS), rng.integers(0, 6))) +
                                    b"\n" for _ in range(rng.integers(0, 4)))
                data = header + body
            elif kind == 1:
                data = _mutate(rng, valid)
            else:
                data = rng.bytes(int(rng.integers(0, 300)))
            compressed = bool(rng.integers(2))
            path = _write(folder, "v.gz" if compressed else "v", gzip.compress(data) if compressed else data)

            def attempt(path=path):
                try:
                    vectors = read_word2vec(path, binary=binary)
                except Word2VecFormatError:
                    return "clean: Word2VecFormatError"
                if not np.isfinite(vectors.vectors).all():
                    return "FAILURE: non-finite values read"
                return "clean: read"
            yield attempt
    return family


def _gbits_inputs(rng, count, folder):
    from gensim_bits import QuantizedKeyedVectors, QuantizedVectorsFormatError, packing

    codes = packing.pack_codes(rng.integers(0, 4, (20, 13), dtype=np.uint8), 2)
    QuantizedKeyedVectors(codes, 2, 13, [f"w{i}" for i in range(20)], np.arange(20)).save(
        os.path.join(folder, "valid.gbits"))
    with open(os.path.join(folder, "valid.gbits"), "rb") as handle:
        valid = handle.read()
    for number in range(count):
        data = _mutate(rng, valid)
        if number % 2:  # a fixed checksum reaches the deeper checks
            data = data[:-4] + struct.pack("<I", zlib.crc32(data[:-4])) if len(data) >= 4 else data
        path = _write(folder, "candidate.gbits", data)
        mmap = "r" if number % 4 >= 2 else None

        def attempt(path=path, mmap=mmap):
            try:
                vectors = QuantizedKeyedVectors.load(path, mmap=mmap)
            except QuantizedVectorsFormatError:
                return "clean: QuantizedVectorsFormatError"
            if len(vectors):
                scores = vectors.most_similar(vectors.index_to_key[0], topn=None)
                if not np.all((scores >= -1) & (scores <= 1)):
                    return "FAILURE: similarity outside [-1, 1]"
            return "clean: loaded"
        yield attempt


PAIR_WORDS = ["king", "queen", "man", "woman", "x", "", ":", ": s", "#", "5", "nan", "1e999", "\t", "é", " "]


def _evaluation_inputs(rng, count, folder):
    from gensim_bits import QuantizedKeyedVectors, evaluate, packing

    words = ["king", "queen", "man", "woman", "paris", "france"]
    vectors = QuantizedKeyedVectors(packing.pack_codes(rng.integers(0, 2, (6, 16), dtype=np.uint8), 1), 1, 16, words)
    for number in range(count):
        if number % 3 == 2:
            data = rng.bytes(int(rng.integers(0, 200)))
        else:
            separator = "\t" if rng.integers(2) else " "
            lines = [separator.join(PAIR_WORDS[i] for i in rng.integers(0, len(PAIR_WORDS), rng.integers(0, 6)))
                     for _ in range(rng.integers(0, 6))]
            data = "\n".join(lines).encode("utf-8")
        path = _write(folder, "candidate.txt", data)
        kind = "similarity" if number % 2 else "analogies"

        def attempt(path=path, kind=kind):
            try:
                evaluate(vectors, verbose=False, **{kind: [path]})
            except ValueError:
                return f"clean: ValueError ({kind} file refused)"
            return f"clean: scored ({kind})"
        yield attempt


def _tsv_inputs(rng, count, folder):
    from keras_compress.models import read_tsv

    for number in range(count):
        if number % 2:
            data = rng.bytes(int(rng.integers(0, 200)))
        else:
            data = b"\n".join(b"\t".join(rng.choice([b"pos", b"neg", b"", b"DESC:manner", b"\xff", b"a b"],
                                                    rng.integers(0, 4))) for _ in range(rng.integers(0, 5)))
        path = _write(folder, "candidate.tsv", data)

        def attempt(path=path):
            try:
                labels, texts = read_tsv(path)
            except ValueError:
                return "clean: ValueError"
            return "clean: read" if len(labels) == len(texts) else "FAILURE: misaligned"
        yield attempt


def _schedule_inputs(rng, count, folder):
    from keras_compress.training import CALR, CyclicLR

    values = [float("nan"), float("inf"), -float("inf"), 0, -1, 1e-300, 1e-30, 1e300, 3e38, 2 ** 2000, 0.5,
              1 - 1e-12, 1.5, 1, 7, np.float32(0.1), np.int64(3), np.float64("nan"), True, "0.1", None, 2 ** 70, 1e-8]
    for number in range(count):
        pick = [values[i] for i in rng.integers(0, len(values), 5)]
        make = ((lambda p=pick: CALR(p[0], decay=p[1], step_size=p[2], steps_per_epoch=p[3], lower_bound=p[4]))
                if number % 2 else
                (lambda p=pick: CyclicLR(p[0], p[1], step_size=p[2], gamma=p[3], mode="exp_range")))

        def attempt(make=make):
            try:
                schedule = make()
            except (ValueError, TypeError) as error:
                return f"clean: {type(error).__name__}"
            rates = np.asarray(schedule(np.array([0, 1, 2, 3, 10, 1e3, 1e6, 1e9], dtype="float32")))
            return "clean: built, finite rates" if np.isfinite(rates).all() else "FAILURE: non-finite rates"
        yield attempt


def _packed_object_inputs(rng, count, folder):
    """Hostile constructor arguments; whatever is accepted must save and load back equal."""
    from gensim_bits import QuantizedKeyedVectors

    path = os.path.join(folder, "object.gbits")
    for number in range(count):
        bits = [1, 2, 4, 8, 3, 32, 0, np.int64(2), 2.0][rng.integers(9)]
        dimension = [1, 7, 8, 13, 2 ** 24 + 1, 0, -3, np.int32(9), 9.5][rng.integers(9)]
        words = int(rng.integers(0, 4))
        width = int(rng.integers(0, 5))
        codes = rng.integers(0, 256, (words, width), dtype=np.uint8)
        keys = [["a", "b", "c", "d"], ["a", "a", "b", "c"], ["", " ", "\n", "x"], ["é", "\udc80", "z", "y"],
                [1, 2, 3, 4]][rng.integers(5)][:words]
        counts = [None, np.arange(words), -np.arange(words) - 1, np.full(words, 0.5), np.full(words, 2 ** 63, np.uint64)][
            rng.integers(5)]

        def attempt(args=(codes, bits, dimension, keys, counts)):
            try:
                vectors = QuantizedKeyedVectors(*args)
            except (ValueError, TypeError) as error:
                return f"clean: {type(error).__name__} from the constructor"
            vectors.save(path)
            loaded = QuantizedKeyedVectors.load(path)
            same = (np.array_equal(loaded.codes, vectors.codes) and list(loaded.index_to_key) == list(vectors.index_to_key)
                    and np.array_equal(loaded.counts, vectors.counts))
            return "clean: accepted, saved, loaded equal" if same else "FAILURE: loaded differs"
        yield attempt


def _cancelling_query_inputs(rng, count, folder):
    from gensim_bits import QuantizedKeyedVectors, packing

    for number in range(count):
        bits = [1, 2, 4, 8][number % 4]
        dimension = int(rng.choice([5, 13, 100, 800]))
        codes = rng.integers(0, 2 ** bits, (10, dimension), dtype=np.uint8)
        codes[1] = codes[0]
        vectors = QuantizedKeyedVectors(packing.pack_codes(codes, bits), bits, dimension, [f"w{i}" for i in range(10)])
        shared = [f"w{i}" for i in rng.integers(2, 10, rng.integers(0, 4))]

        def attempt(vectors=vectors, shared=shared):
            scores = vectors.most_similar(positive=["w0"] + shared, negative=["w1"] + shared[::-1], topn=None)
            return "clean: all scores 0" if np.all(scores == 0) else f"FAILURE: scores up to {np.abs(scores).max():.3g}"
        yield attempt


# ------------------------------------------------------------------ issue 24: corpus_file, training, gzip bombs

UNICODE_SPACES = [" ", "\t", "\x0b", "\x0c", "\r", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0", "\u1680",
                  "\u2000", "\u2005", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"]
CORPUS_WORDS = ["東京", "大阪", "the", "cat", "naïve", "a", "x\u200bz", "e\u0301", "😀", "—", "\u00ad"]


def _corpus_file_inputs(rng, count, folder):
    """corpus_file paths that are no regular file, and text split by Unicode whitespace: every
    path must be refused at once, every word the vocabulary scan counts must be read."""
    from gensim.test.utils import common_texts

    from gensim_bits import Word2Bits

    model = Word2Bits(common_texts, vector_size=4, min_count=1, workers=1, epochs=1)
    fifo = os.path.join(folder, "corpus.fifo")
    os.mkfifo(fifo)
    paths = [fifo, "/dev/null", "/dev/zero", folder, os.path.join(folder, "missing.txt"),
             _write(folder, "corpus.txt.gz", gzip.compress(b"a b c\n" * 10))]
    for number in range(count):
        if number % 3 == 0:
            path = paths[number // 3 % len(paths)]

            def attempt(path=path):
                try:
                    model.train(corpus_file=path, total_words=30, epochs=1)
                except (ValueError, OSError) as error:
                    return f"clean: {type(error).__name__} (not a plain file)"
                return "FAILURE: trained from a non-file"
        else:
            lines = []
            for _ in range(rng.integers(1, 30)):
                words = rng.choice(CORPUS_WORDS, rng.integers(2, 8))
                separators = rng.choice(UNICODE_SPACES, len(words))
                lines.append("".join(word + separator for word, separator in zip(words, separators)))
            path = _write(folder, f"unicode{number}.txt", "\n".join(lines).encode("utf-8"))

            def attempt(path=path):
                trainer = Word2Bits(vector_size=4, min_count=1, workers=2, sample=0, epochs=1)
                trainer.build_vocab(corpus_file=path)
                trained, raw = trainer.train(corpus_file=path, total_words=trainer.corpus_total_words, epochs=1)
                if raw != trainer.corpus_total_words or trained != raw:
                    return f"FAILURE: the reader saw {raw} of {trainer.corpus_total_words} counted words"
                return "clean: every counted word read"
        yield attempt


def _training_argument_inputs(rng, count, folder):
    """Word2Bits(workers=...) and other thread counts: a clear error or a trained model, never a
    hang, and no thread left behind. Under the family's address-space limit (+1 GiB) a few
    hundred threads cannot start (8 MiB of stack each, and up to 64 MiB of malloc arena for
    each of the first 8 x cores threads): WorkerThreadError, one line, is the clean outcome then."""
    import threading

    from gensim.test.utils import common_texts

    from gensim_bits import Word2Bits
    from gensim_bits.word2bits import WorkerThreadError

    values = [2 ** 30, 10 ** 4, 1025, 2 ** 31, 2 ** 63, 0, -1, 1.5, True, "2", None, float("nan"), 1, 2, 16,
              1024, 512, 128]
    baseline = threading.active_count()
    for number in range(count):
        workers = values[number % len(values)]

        def attempt(workers=workers):
            try:
                model = Word2Bits(common_texts, vector_size=4, min_count=1, epochs=1, workers=workers)
                outcome = "clean: trained" if len(model.wv) == 12 else "FAILURE: wrong vocabulary"
            except (ValueError, TypeError, WorkerThreadError) as error:
                if isinstance(error, WorkerThreadError) and len(str(error).splitlines()) != 1:
                    return "FAILURE: WorkerThreadError of several lines"
                outcome = f"clean: {type(error).__name__}" + (
                    f" (workers={workers})" if isinstance(error, WorkerThreadError) else "")
            left = threading.active_count() - baseline
            return f"FAILURE: {left} threads left running" if left > 0 else outcome
        yield attempt


def _word2vec_bomb_inputs(rng, count, folder):
    """Compressed word2vec text whose header promises far more than it holds, over valid-looking
    records (identical, distinct, NUL bombs): a clean error or a correct read, bounded memory."""
    from gensim_bits.word2vec_format import Word2VecFormatError, read_word2vec

    for number in range(count):
        dimension = int(rng.choice([4, 64, 256]))
        declared = int(rng.choice([10, 10 ** 4, 10 ** 6, 3 * 10 ** 9, 2 ** 40]))
        repeats = int(rng.integers(1, 20000 // dimension * 16))
        kind = number % 3
        values = b" ".join([b"0.25"] * dimension)
        if kind == 0:
            body = (b"w " + values + b"\n") * repeats
        elif kind == 1:
            body = b"".join(b"w%d %s\n" % (index, values) for index in range(repeats))
        else:
            body = b"\0" * (repeats * dimension)
        data = b"%d %d\n" % (declared, dimension) + body
        suffix, compress = [(".gz", gzip.compress), (".bz2", __import__("bz2").compress)][number % 2]
        path = _write(folder, "bomb.txt" + suffix, compress(data))

        def attempt(path=path, declared=declared):
            try:
                vectors = read_word2vec(path)
            except Word2VecFormatError:
                return "clean: Word2VecFormatError"
            return "clean: read" if len(vectors) <= declared and np.isfinite(vectors.vectors).all() else \
                "FAILURE: wrong read"
        yield attempt



def _rae_argument_inputs(rng, count, folder):
    """RecursiveAutoencoder / LSTMAutoencoder decode lengths and SentenceBatches arguments (issue 24):
    a clean error or a correct result (2.5 used as 2, '3' accepted, 2**32 + 3 wrapped to 3 were failures)."""
    from gensim.models import KeyedVectors

    from keras_compress.rae import LSTMAutoencoder, RecursiveAutoencoder, SentenceBatches

    models = [RecursiveAutoencoder(4, 6, max_length=5), LSTMAutoencoder(4, 6, units=3, max_length=5)]
    for model in models:
        model.build()
    words = KeyedVectors(4)
    words.add_vectors(["a", "b", "c"], np.eye(3, 4, dtype="float32"))
    lengths = [2.5, 2.9, "3", b"3", 2 ** 32 + 3, 2 ** 63, [2 ** 70, 2], True, [True, False], [[2], [3]], [2.0, 3.0],
               np.array([2.0, 3.0]), None, float("nan"), -1, 0, 6, [0, 2], [2, 6], [2, 3, 4], {"a": 2},
               3, [2, 3], np.int64(2), np.array([1, 5], dtype="uint8"), (4, 1)]
    sentences = ["abc", b"ab", ["a b"], [["a"], "bc"], [], [[]], [["a", "zz"]], None, 5, [["a", "b"], ["c"]],
                 [("a", "b")], {"a": ["b"]}]
    sizes = [2.5, True, "4", 0, -1, 2 ** 40, 2 ** 16 + 1, float("nan"), None, 2, np.int32(3)]

    def decode(model, value):
        try:
            out = np.asarray(model.decode(np.zeros((2, 6), "float32"), value))
        except (ValueError, TypeError):
            return "clean: ValueError/TypeError"
        rows = np.broadcast_to(np.asarray(value).reshape(-1), (2,))
        good = (np.asarray(value).dtype.kind in "iu" and np.asarray(value).ndim <= 1 and
                out.shape == (2, int(rows.max()), 4) and all(not out[r, rows[r]:].any() for r in range(2)))
        return "clean: decoded" if good else f"FAILURE: decoded {value!r} to shape {out.shape}"

    def batches(sentence_list=None, **kwargs):
        try:
            made = SentenceBatches(sentence_list, words, **kwargs)
        except (ValueError, TypeError, KeyError):
            return "clean: ValueError/TypeError/KeyError"
        (vectors, got), _ = made[0]
        good = (isinstance(sentence_list, list) and all(isinstance(s, (list, tuple)) for s in sentence_list)
                and vectors.shape[0] == kwargs.get("batch_size", 64) and got.min() >= 1)
        return "clean: batched" if good else f"FAILURE: batched {sentence_list!r} {kwargs}"

    cases = [lambda m=m, v=v: decode(m, v) for m in models for v in lengths]
    cases += [lambda s=s: batches(s, batch_size=2) for s in sentences]
    cases += [lambda n=n, k=k: batches([["a", "b"], ["c"]], **{k: n}) for n in sizes for k in ("batch_size", "bucket_width")]
    for number in range(count):
        yield cases[number % len(cases)]


def _sentence_bomb_inputs(rng, count, folder):
    """read_sentences / sample_sentences on gzip files with one huge line (NULs, or valid words with
    no newline): the right sentences within bounded memory (the NUL bomb took 3.0 GB, issue 24)."""
    import warnings

    from keras_compress.rae import read_sentences, sample_sentences

    for number in range(count):
        size = int(rng.choice([10 ** 5, 10 ** 7, 2 * 10 ** 8]))
        filler = [b"\0", b"a ", b"\xff", b"\t"][number % 4]
        path = os.path.join(folder, "bomb.txt.gz")
        with gzip.open(path, "wb", compresslevel=1) as handle:
            handle.write(b"a b\n")
            for _ in range(size // (1 << 20)):
                handle.write(filler * ((1 << 20) // len(filler)))
            handle.write(filler * ((size % (1 << 20)) // len(filler)) + b"\nb a\n")
        reader = [read_sentences, lambda *a, **k: sample_sentences(a[0], 10, *a[1:], **k)][number % 2]

        def attempt(path=path, reader=reader, filler=filler, size=size):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    got = reader(path, {"a": 0, "b": 1}, 2, 4)
                except UnicodeDecodeError:
                    return "clean: UnicodeDecodeError" if filler == b"\xff" else "FAILURE: UnicodeDecodeError"
            got = sorted(map(tuple, got))
            return "clean: read" if got == [("a", "b"), ("b", "a")] else f"FAILURE: read {got[:3]!r}"
        yield attempt


# ---- search() and most_similar (issue 24): arguments with one meaning, bounded threads and memory

def _search_vectors(rng, words=2000):
    from gensim_bits import QuantizedKeyedVectors, packing

    bits = int(rng.choice([1, 2]))
    dimension = int(rng.choice([13, 64, 256]))
    codes = rng.integers(0, 2 ** bits, (words, dimension), dtype=np.uint8)
    return QuantizedKeyedVectors(packing.pack_codes(codes, bits), bits, dimension, [f"w{i}" for i in range(words)])


def _search_argument_inputs(rng, count, folder):
    """Random hostile search / most_similar / most_similar_cosmul calls. Clean: a documented
    error (ValueError, TypeError, KeyError), or a result of the right shape that only a valid
    call may give; a call that a bad argument should have refused, or a scaled query whose
    neighbours differ from the unscaled one's, is a failure."""
    pool = [_search_vectors(np.random.default_rng(seed)) for seed in range(4)]
    for number in range(count):
        vectors = pool[number % len(pool)]
        dimension, width, words = vectors.vector_size, vectors.codes.shape[1], len(vectors)
        vector = np.random.default_rng(number).standard_normal(dimension)
        padded = vectors.codes[:2].copy()
        if dimension % 8:
            padded[:, width // vectors.bits - 1] |= 0x80
        bad_codes = padded if dimension % 8 else np.zeros((1, width + 1), np.uint8)
        queries = [
            ("valid", ["w1", "w2"]), ("valid", [1, 2, 3]), ("valid", "w5"), ("valid", vectors.codes[:3]),
            ("valid", vector), ("valid", vector[None]), ("valid", [{"positive": ["w1", "w2"], "negative": ["w3"]}]),
            ("bad", np.array([1, 2, 3])), ("bad", np.arange(8, dtype=np.uint8)), ("bad", (vector + 1j)[None]),
            ("bad", [vector + 1j]), ("bad", np.ones((2, dimension), dtype=np.int64)), ("bad", bad_codes),
            ("bad", [vector[:-1]]), ("bad", [np.full(dimension, np.nan)]), ("bad", [{"positiv": ["w1"]}]),
            ("bad", ["w1", "not a word"]), ("bad", [["w1", "w2"]]), ("bad", None), ("bad", np.array([["a"]], object)),
            ("sum", [np.full(dimension, 1e308), np.full(dimension, 1e308)]), ("bad", np.ones(4, dtype=bool)),
            ("scaled", 1e200), ("scaled", 1e-200), ("scaled", 1e-300), ("scaled", 1e300),
        ][rng.integers(26)]
        topn = [10, 3, 1, 10 ** 12, np.int64(4), 0, -1, 2.7, "5", True, None][rng.integers(11)]
        restrict_vocab = [None, None, 50, 0, 10 ** 12, -5, True, 2.5, "10"][rng.integers(9)]
        workers = [1, 1, 2, None, 0, 3, -1, 2 ** 30, 2.5, True][rng.integers(10)]
        method = ["search", "most_similar", "cosmul"][rng.integers(3)]

        def attempt(vectors=vectors, kind=queries[0], query=queries[1], topn=topn, restrict_vocab=restrict_vocab,
                    workers=workers, method=method, vector=vector, words=words):
            bad_topn = isinstance(topn, (bool, float, str)) or (method == "search" and (topn is None or topn < 1))
            bad_restrict = restrict_vocab is not None and (isinstance(restrict_vocab, (bool, float, str))
                                                           or restrict_vocab < 0)
            bad_workers = isinstance(workers, (bool, float)) or (workers is not None and not 0 <= workers <= 256)
            if kind == "scaled":
                query = vector * query if method == "search" else [vector * query]
            elif method != "search":
                query = query if isinstance(query, (str, list)) else [query]
            try:
                if method == "search":
                    result = vectors.search(query, topn=topn, workers=workers, restrict_vocab=restrict_vocab)
                elif method == "most_similar":
                    result = vectors.most_similar(positive=query, topn=topn, restrict_vocab=restrict_vocab,
                                                  workers=workers)
                else:
                    result = vectors.most_similar_cosmul(positive=query, topn=topn, restrict_vocab=restrict_vocab,
                                                         workers=workers)
            except (ValueError, TypeError, KeyError) as error:
                return f"clean: {type(error).__name__}"
            if bad_topn or bad_restrict or bad_workers:
                return "FAILURE: a bad argument was accepted"
            if method != "search" and topn is not None and topn < 1:  # gensim returns [] before reading the query
                return "clean: empty result for topn < 1" if result == [] else "FAILURE: topn < 1 gave results"
            if kind == "bad" or (kind == "sum" and method == "most_similar"):  # one query: the sum overflows
                return "FAILURE: a bad query was accepted"
            if method == "search":
                scores, rows = result
                if rows.shape[1] > words or scores.dtype != np.float32 or rows.min() < -1 or rows.max() >= words:
                    return "FAILURE: result out of shape or range"
                values = scores[rows >= 0]
            else:
                values = np.array([score for _, score in result] if isinstance(result, list) else result)
            if not np.all(np.isfinite(values)):
                return "FAILURE: non-finite scores"
            if kind == "scaled" and method != "cosmul":  # 3CosMul takes raw vectors as they are, as gensim
                if method == "search":
                    expected = vectors.search(vector, topn=topn, workers=1, restrict_vocab=restrict_vocab)[1]
                    same = np.array_equal(result[1], expected)
                else:
                    expected = vectors.most_similar(positive=[vector], topn=topn, restrict_vocab=restrict_vocab)
                    same = ([word for word, _ in result] == [word for word, _ in expected] if topn
                            else np.array_equal(np.argsort(-result, kind="stable"), np.argsort(-expected, kind="stable")))
                return "clean: scaled query, same neighbours" if same else "FAILURE: a scaled query changed direction"
            return "clean: valid result"
        yield attempt


def _search_resource_inputs(rng, count, folder):
    """Thread counts, topn and batch sizes that used to grow threads or memory without bound."""
    import threading

    from gensim_bits import QuantizedKeyedVectors, packing

    def threads_after(top):
        vectors = _search_vectors(np.random.default_rng(0), words=300)
        for workers in range(1, top + 1):
            vectors.search([f"w{i}" for i in range(64)], topn=3, workers=workers)
        alive = sum(thread.name.startswith("gensim_bits_search") for thread in threading.enumerate())
        return f"clean: {alive} threads after workers 1..{top}" if alive <= top else f"FAILURE: {alive} threads"

    def huge_topn(call, topn):
        vectors = _search_vectors(np.random.default_rng(1), words=20000)
        result = call(vectors, topn)
        found = len(result) if isinstance(result, list) else result[1].shape[1]
        return f"clean: {found} results" if found <= len(vectors) else "FAILURE: more results than words"

    def float_batch(queries, dimension, words=50):
        codes = np.random.default_rng(2).integers(0, 2, (words, dimension), dtype=np.uint8)
        vectors = QuantizedKeyedVectors(packing.pack_codes(codes, 1), 1, dimension, [f"w{i}" for i in range(words)])
        batch = np.random.default_rng(3).standard_normal((queries, dimension)).astype(np.float32)
        scores, rows = vectors.search(batch, topn=5, workers=1)
        return "clean: answered in bounded blocks" if rows.shape == (queries, 5) else "FAILURE: wrong shape"

    cases = [lambda: threads_after(64), lambda: threads_after(199)]
    for topn in (10 ** 8, 10 ** 12, 2 ** 62):
        cases += [lambda topn=topn: huge_topn(lambda v, n: v.search(["w1"], topn=n), topn),
                  lambda topn=topn: huge_topn(lambda v, n: v.most_similar("w1", topn=n), topn),
                  lambda topn=topn: huge_topn(lambda v, n: v.most_similar(positive=["w1", "w2"], negative=["w3"],
                                                                           topn=n), topn),
                  lambda topn=topn: huge_topn(lambda v, n: v.most_similar_cosmul(positive=["w1"], topn=n), topn)]
    cases += [lambda: float_batch(100000, 64), lambda: float_batch(20000, 300)]
    for case in cases[:count]:
        yield case


# The translator family's .tflite file: exported once in the parent (TensorFlow's converter
# needs more address space than a family's limit), read by the child through the fork.
TRANSLATOR_FILE = None


def _export_tiny_translator(folder):
    """An untrained one-layer Transformer (vocabulary 32) as a translator file with a translate
    signature (beam 2) and step signatures for beams 1, 2 and 4: the argument checks, the vocabulary
    bounds and the sharing between threads need no trained model."""
    import keras

    from keras_compress.nmt import export_translator, transformer

    keras.utils.set_random_seed(0)
    model = transformer(32, "small", num_layers=1, d_model=16, d_ff=32, num_heads=2, dropout=0.0)
    return export_translator(model, os.path.join(folder, "tiny.tflite"), None, max_source_length=8,
                             max_target_length=8, beam_size=2, step_beam_sizes=(1, 2, 4)).path


def _translator_inputs(rng, count, folder):
    """Translator.translate_ids (issue 24): hostile token ids, max_length, length_penalty and
    beam_size on both searches, and one Translator shared by threads. Clean: ValueError or
    TypeError for a bad argument; for a good one, target ids in [0, vocabulary) equal to the
    same call's single-threaded result."""
    import concurrent.futures

    from keras_compress.nmt import Translator

    graph, steps = Translator(TRANSLATOR_FILE, None), Translator(TRANSLATOR_FILE, None, search="steps")
    vocab, longest = graph.vocab_size, graph.max_source_length
    expected = {}

    def reference(translator, ids, kwargs):
        key = (translator.search, tuple(int(t) for t in ids), tuple(sorted(kwargs.items())))
        if key not in expected:
            expected[key] = translator.translate_ids(list(ids), **kwargs)
        return expected[key]

    def case(translator, ids, kwargs, good):
        def attempt():
            try:
                result = translator.translate_ids(ids, **kwargs)
            except (ValueError, TypeError) as error:
                if len(str(error).splitlines()) != 1:
                    return f"FAILURE: {type(error).__name__} of several lines"
                return f"clean: {type(error).__name__}" if not good else \
                    f"FAILURE: valid input refused ({str(error)[:80]})"
            if not good:
                return f"FAILURE: bad input accepted ({translator.search}, {ids!r:.40}, {kwargs!r:.40})"
            if not all(isinstance(t, int) and 0 <= t < vocab for t in result):
                return "FAILURE: target ids out of the vocabulary"
            return "clean: translated"
        return attempt

    def shared(translator, threads):
        def attempt():
            rows = [[int(t) for t in rng.integers(4, vocab, rng.integers(1, longest))] + [3]
                    for _ in range(6)]
            single = [reference(translator, row, {}) for row in rows]
            with concurrent.futures.ThreadPoolExecutor(threads) as pool:
                got = list(pool.map(translator.translate_ids, rows * threads))
            return f"clean: {threads} threads, single-thread results" if got == single * threads \
                else "FAILURE: threads changed the translations"
        return attempt

    bad_ids = [[-1, 3], [-5, 3], [-30, 3], [-2 ** 40, 3], [2 ** 40, 3], [vocab, 3], [vocab + 7, 3],
               [5, 2 ** 70], [np.int64(-1), 3], [np.uint64(2 ** 63), 3], np.array([5, -2]),
               [2.5, 3], [True, 3], ["5", 3], [[5], [3]], [None, 3], [float("nan"), 3], [], [5] * (longest + 1),
               "5 3", b"\x05\x03", None, 5, {5: 3}]
    cases = [case(translator, ids, {}, False) for ids in bad_ids for translator in (graph, steps)]
    for value in (2.5, 0, -1, True, "3", np.float64(3.0), float("nan"), float("inf")):
        cases.append(case(steps, [5, 3], {"max_length": value}, False))
    for value in (float("nan"), float("inf"), -float("inf"), -0.5, 1e300, True, "0.6", 1j):
        cases.append(case(steps, [5, 3], {"length_penalty": value}, False))
    for value in (0, -1, 2.5, True, "2", 3, 2 ** 40):
        cases.append(case(steps, [5, 3], {"beam_size": value}, False))
    for kwargs in ({"beam_size": 1}, {"length_penalty": 0.7}, {"max_length": 5}):
        cases.append(case(graph, [5, 3], kwargs, False))  # the translate signature's are fixed
    for kwargs in ({}, {"max_length": 2 ** 40}, {"length_penalty": 0.0}, {"length_penalty": 10},
                   {"beam_size": 1}, {"beam_size": 2, "max_length": 1}):
        cases.append(case(steps, [5, 6, 3], kwargs, True))
    cases += [case(graph, [5, 6, 3], {}, True), case(graph, np.array([5, 6, 3], dtype=np.uint8), {}, True),
              case(graph, [vocab - 1] * longest, {}, True)]
    # 16 threads may not start under the +1 GiB address-space limit (glibc reserves 64 MiB per arena)
    cases += [shared(graph, 4), shared(steps, 4), shared(graph, 8), shared(steps, 8)]
    while len(cases) < count:  # random id lists: valid only when non-empty, short enough and in range
        length = int(rng.integers(0, longest + 3))
        ids = [int(t) for t in rng.integers(-40, vocab + 40, length)] if rng.random() < 0.5 else \
            [int(t) for t in rng.integers(0, vocab, length)]
        good = 0 < length <= longest and all(0 <= t < vocab for t in ids)
        cases.append(case(graph if rng.random() < 0.5 else steps, ids, {}, good))
    yield from cases[:count]


FAMILIES = {
    "word2vec text import": _word2vec_inputs(False),
    "word2vec binary import": _word2vec_inputs(True),
    ".gbits load (mutated files)": _gbits_inputs,
    "pair and analogy files": _evaluation_inputs,
    "TSV data sets": _tsv_inputs,
    "schedule arguments": _schedule_inputs,
    "QuantizedKeyedVectors arguments": _packed_object_inputs,
    "cancelling most_similar queries": _cancelling_query_inputs,
    "corpus_file paths and Unicode text": _corpus_file_inputs,
    "Word2Bits workers": _training_argument_inputs,
    "compressed word2vec bombs": _word2vec_bomb_inputs,
    "RAE lengths and SentenceBatches arguments": _rae_argument_inputs,
    "sentence corpus gzip bombs": _sentence_bomb_inputs,
}
COUNTS = {"word2vec text import": 1500, "word2vec binary import": 1500, ".gbits load (mutated files)": 1500,
          "pair and analogy files": 600, "TSV data sets": 400, "schedule arguments": 2000,
          "QuantizedKeyedVectors arguments": 600, "cancelling most_similar queries": 200}
FAMILIES.update({"search() arguments": _search_argument_inputs,
                 "search() threads and memory": _search_resource_inputs})
COUNTS.update({"search() arguments": 1200, "search() threads and memory": 16})
COUNTS.update({"corpus_file paths and Unicode text": 60, "Word2Bits workers": 36, "compressed word2vec bombs": 60})
COUNTS.update({"RAE lengths and SentenceBatches arguments": 86, "sentence corpus gzip bombs": 12})
FAMILIES["Translator arguments and threads"] = _translator_inputs
COUNTS["Translator arguments and threads"] = 200


# ------------------------------------------------------------------ the command line

CLI_CASES = [
    ["info", "{hostile}"], ["similar", "{hostile}", "a"], ["convert", "{hostile}", "{folder}/o.gbits"],
    ["evaluate", "{hostile}", "--similarity", "{pairs}"], ["evaluate", "{vectors}", "--similarity", "{pairs}"],
    ["evaluate", "{vectors}", "--analogies", "{pairs}"], ["evaluate", "{vectors}", "--similarity", "{folder}"],
    ["evaluate", "{vectors}", "--similarity", "{good_pairs}", "--json", "/proc/x/r.json"],
    ["info", "{folder}"], ["info", "{folder}/missing"], ["info", "{random}"], ["info", "{empty}"],
    ["convert", "{vectors}", "/proc/x/o.gbits"], ["convert", "{vectors}", "{folder}"],
    ["convert", "{vectors}", "{folder}/o.gbits", "--bits", "2"], ["convert", "{random}", "{folder}/o.txt"],
    ["similar", "{vectors}", "notaword"], ["similar", "{vectors}", "king", "--topn", "0"],
    ["similar", "{vectors}", "king", "--topn", "-4"], ["similar", "{vectors}", "king", "--restrict-vocab", "0"],
    ["evaluate", "{vectors}", "--restrict-vocab", "-1"], ["evaluate", "{vectors}", "--data-dir", "{folder}/none"],
    ["train", "{corpus}", "-o", "/proc/x/o.gbits"], ["train", "{corpus}", "-o", "{folder}"],
    ["train", "{corpus}", "-o", "{folder}/no/o.gbits"], ["train", "{folder}", "-o", "{folder}/o.gbits"],
    ["train", "{folder}/missing.txt", "-o", "{folder}/o.gbits"], ["train", "{latin1}", "-o", "{folder}/o.gbits"],
    ["train", "{empty}", "-o", "{folder}/o.gbits"], ["train", "{broken_gzip}", "-o", "{folder}/o.gbits"],
    ["train", "{corpus}", "-o", "{folder}/o.gbits", "--bits", "32"],
] + [["train", "{corpus}", "-o", "{folder}/o.gbits", flag, value] for flag, value in [
    ("--vector-size", "0"), ("--vector-size", "-1"), ("--vector-size", "99999999999"), ("--window", "0"),
    ("--window", str(2 ** 31)), ("--negative", str(2 ** 31)), ("--negative", "-1"), ("--workers", "0"),
    ("--epochs", "-1"), ("--alpha", "nan"), ("--alpha", "-1"), ("--alpha", "inf"), ("--sample", "nan"),
    ("--sample", "-1"), ("--min-alpha", "-1"), ("--min-count", "-1"), ("--seed", "-1"), ("--hs", "2"),
    ("--sg", "5"), ("--batch-words", "0"), ("--max-vocab-size", "0"), ("--ns-exponent", "nan"),
    ("--bits", "3"), ("--alpha", "fast"), ("--vector-size", "1e3"), ("--unknown", "1"),
]] + [["train", "{corpus}", "-o", "{folder}/o.gbits", "--negative", "0", "--hs", "0"], [], ["nocommand"]]


def run_cli(folder):
    """Each hostile command line in-process; clean = non-zero exit, one stderr line, no traceback,
    nothing trained (Word2Bits.train is patched to count calls)."""
    from gensim.models import KeyedVectors

    from gensim_bits import QuantizedKeyedVectors, packing
    from gensim_bits.cli import main
    from gensim_bits.word2bits import Word2Bits

    files = {"folder": folder}
    for name, data in {"hostile": b"3000000000 4\na .3 .3 .3 .3\n", "pairs": b"king queen 5\n",
                       "good_pairs": b"king\tqueen\t5\nman\twoman\t4\n", "random": os.urandom(300), "empty": b"",
                       "corpus": b"the king and the queen\n" * 30, "latin1": b"caf\xe9 au lait\n" * 5,
                       "broken_gzip": gzip.compress(b"the king\n" * 1000)[:60]}.items():
        files[name] = _write(folder, name + (".gz" if name == "broken_gzip" else ".txt"), data)
    files["vectors"] = os.path.join(folder, "vectors.gbits")
    codes = packing.pack_codes(np.random.default_rng(0).integers(0, 2, (4, 8), dtype=np.uint8), 1)
    QuantizedKeyedVectors(codes, 1, 8, ["king", "queen", "man", "woman"]).save(files["vectors"])
    del KeyedVectors
    trained = []
    original_train = Word2Bits.train
    Word2Bits.train = lambda self, *args, **kwargs: trained.append(1) or original_train(self, *args, **kwargs)
    outcomes, failures = collections.Counter(), []
    for case in CLI_CASES:
        argv = [arg.format(**files) for arg in case]
        stderr = io.StringIO()
        before = len(trained)
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            try:
                status = main(argv)
            except SystemExit as exit_info:
                status = exit_info.code
            except BaseException as error:  # noqa: BLE001
                status = f"raised {type(error).__name__}"
        lines = [line for line in stderr.getvalue().strip().splitlines() if not line.startswith("scanning")]
        clean = (isinstance(status, int) and status != 0 and len(lines) == 1 and "Traceback" not in lines[0]
                 and len(trained) == before)
        outcome = f"clean: exit {status}, one line" if clean else "FAILURE"
        if not clean:
            failures.append(f"{argv}: status {status}, trained {len(trained) - before}, stderr {lines}")
        outcomes[outcome] += 1
    Word2Bits.train = original_train
    return dict(outcomes), failures


# ------------------------------------------------------------------ interrupted saves

SAVER = textwrap.dedent("""
    import json
    import os
    import signal
    import sys
    import numpy as np
    # A process started in the background inherits SIGINT ignored; restore KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from gensim_bits import QuantizedKeyedVectors, packing
    target = sys.argv[1]
    words = 20000
    vectors = QuantizedKeyedVectors(packing.pack_codes(np.ones((words, 64), dtype=np.uint8), 1), 1, 64,
                                    [f"w{i}" for i in range(words)])
    vectors.save(target)
    print("ready", flush=True)
    while True:
        try:
            while True:
                vectors.save(target)
        except KeyboardInterrupt:  # the process survives: nothing may be left behind
            left = [name for name in os.listdir(os.path.dirname(target)) if name != os.path.basename(target)]
            try:
                QuantizedKeyedVectors.load(target)
                loadable = True
            except Exception:
                loadable = False
            print(json.dumps([left, loadable]), flush=True)
""")


def run_interrupts(folder, sigints, sigkills, seed):
    """SIGINT a process that saves in a loop and survives each KeyboardInterrupt, then SIGKILL
    fresh savers; count temporaries left and whether the target still loads."""
    import json as json_module

    from gensim_bits import QuantizedKeyedVectors

    rng = np.random.default_rng(seed)
    target = os.path.join(folder, "vectors.gbits")
    outcomes, failures = collections.Counter(), []
    environment = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    process = subprocess.Popen([sys.executable, "-c", SAVER, target], stdout=subprocess.PIPE, text=True,
                               env=environment)
    process.stdout.readline()
    for _ in range(sigints):
        time.sleep(float(rng.uniform(0.02, 0.3)))
        process.send_signal(signal.SIGINT)
        left, loadable = json_module.loads(process.stdout.readline())
        outcomes["clean: SIGINT survived, no temporary left, target loadable"
                 if loadable and not left else f"FAILURE: SIGINT left {left}, loadable {loadable}"] += 1
    process.kill()
    process.wait()
    for _ in range(sigkills):
        process = subprocess.Popen([sys.executable, "-c", SAVER, target], stdout=subprocess.PIPE, text=True,
                                   env=environment)
        process.stdout.readline()
        time.sleep(float(rng.uniform(0.02, 0.3)))
        process.kill()  # SIGKILL cannot be caught: the next save must remove what it left
        process.wait()
        try:
            vectors = QuantizedKeyedVectors.load(target)
            loadable = True
        except Exception:  # noqa: BLE001
            loadable = False
            vectors = None
        if vectors is not None:
            vectors.save(target)
        left_after = [name for name in os.listdir(folder) if name != "vectors.gbits"]
        outcomes["clean: SIGKILL, target loadable, leftovers removed by the next save"
                 if loadable and not left_after else f"FAILURE: SIGKILL left {left_after}, loadable {loadable}"] += 1
    return dict(outcomes), failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the number of inputs a family")
    parser.add_argument("--interrupts", type=int, default=65, help="SIGINTs sent to a saving process")
    parser.add_argument("--kills", type=int, default=5, help="SIGKILLs sent to fresh saving processes")
    parser.add_argument("--json", default=os.path.join("benchmarks", "results", "hostile_inputs.json"))
    parser.add_argument("--families", nargs="+", choices=sorted(FAMILIES), metavar="FAMILY",
                        help="run only these input families (and skip the command line and interrupted saves)")
    args = parser.parse_args()
    sys.path.insert(0, os.getcwd())
    # Import everything before the children fork: an import under the memory limit would fail.
    import gensim.models  # noqa: F401
    import keras_compress.models.datasets  # noqa: F401
    import keras_compress.rae  # noqa: F401
    import keras_compress.training.schedules  # noqa: F401
    from gensim_bits import cli, word2vec_format  # noqa: F401

    report = {"command": "python " + shlex.join(sys.argv), "families": {}}
    exports = tempfile.TemporaryDirectory()
    if "Translator arguments and threads" in (args.families or FAMILIES):
        # In a forked child without the memory limit: TensorFlow run in this process would leave
        # thread pools that every later forked family child deadlocks on (RAE family: 0 s of CPU).
        global TRANSLATOR_FILE
        TRANSLATOR_FILE = os.path.join(exports.name, "tiny.tflite")
        exporter = multiprocessing.get_context("fork").Process(target=_export_tiny_translator,
                                                               args=(exports.name,))
        exporter.start()
        exporter.join()
        if exporter.exitcode != 0 or not os.path.exists(TRANSLATOR_FILE):
            raise SystemExit(f"exporting the translator family's file failed (exit code {exporter.exitcode})")
    for family in args.families or FAMILIES:
        count = max(1, int(COUNTS[family] * args.scale))
        outcomes, failures, seconds = run_family(family, count, args.seed)
        report["families"][family] = {"inputs": count, "outcomes": outcomes, "failures": failures,
                                      "seconds": round(seconds, 1)}
        print(f"{family:<34} {count:>6} inputs  {seconds:6.1f} s  {outcomes}", flush=True)
    if not args.families:
        with tempfile.TemporaryDirectory() as folder:
            outcomes, failures = run_cli(folder)
        report["families"]["command line"] = {"inputs": len(CLI_CASES), "outcomes": outcomes, "failures": failures}
        print(f"{'command line':<34} {len(CLI_CASES):>6} inputs  {outcomes}", flush=True)
        with tempfile.TemporaryDirectory() as folder:
            outcomes, failures = run_interrupts(folder, args.interrupts, args.kills, args.seed)
        report["families"]["interrupted saves"] = {"inputs": args.interrupts + args.kills, "outcomes": outcomes,
                                                   "failures": failures}
        print(f"{'interrupted saves':<34} {args.interrupts + args.kills:>6} inputs  {outcomes}", flush=True)

    total = sum(family["inputs"] for family in report["families"].values())
    failed = sum(count for family in report["families"].values()
                 for outcome, count in family["outcomes"].items() if outcome.startswith("FAILURE"))
    report["total_inputs"], report["failures"] = total, failed
    print(f"\n{total} hostile inputs, {total - failed} ended cleanly, {failed} failures")
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w", encoding="utf-8") as out:
        json.dump(report, out, indent=2)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
