"""Word2Bits training: the kernel against a NumPy reference, the final vectors, and the model's life cycle."""
import copy
from bisect import bisect_left

import numpy as np
import pytest
from gensim.models import KeyedVectors
from gensim.models.callbacks import CallbackAny2Vec
from gensim.models.word2vec import LineSentence
from gensim.test.utils import common_texts, datapath

from gensim_bits import Word2Bits
from gensim_bits.quantizers import levels, quantize
from gensim_bits.word2bits_inner import cbow_step

LCG_MULTIPLIER, LCG_MODULO = 25214903917, 281474976710655
MAX_EXP = 6
EXP_INDEX_SCALE = 1000 // MAX_EXP // 2  # word2vec.c's integer (EXP_TABLE_SIZE / MAX_EXP / 2)
_exp = np.exp((np.arange(1000) / 1000 * 2 - 1) * MAX_EXP)
SIGMOID_TABLE = (_exp / (_exp + 1)).astype(np.float32)
SMALL = dict(vector_size=16, min_count=1, workers=1, seed=7, sample=0)


def reference_step(syn0, syn1neg, cum_table, context, center, alpha, bits, negative, cbow_mean, next_random):
    """One quantized CBOW negative-sampling update, written from the paper and word2bits.cpp.

    Returns the next random state, the loss, and whether a score fell so close to an edge
    of the sigmoid table that float32 rounding in the kernel may pick the neighbouring entry.
    """
    neu1 = np.sum([quantize(syn0[index], bits) for index in context], axis=0, dtype=np.float64)
    if cbow_mean:
        neu1 /= len(context)
    neu1e = np.zeros_like(neu1)
    loss, near_table_edge = 0.0, False
    for d in range(negative + 1):
        if d == 0:
            target, label = center, 1.0
        else:
            target = bisect_left(cum_table.tolist(), (next_random >> 16) % int(cum_table[-1]))
            next_random = (next_random * LCG_MULTIPLIER + 11) & LCG_MODULO
            if target == center:
                continue
            label = 0.0
        quantized_row = quantize(syn1neg[target], bits).astype(np.float64)
        f = float(neu1 @ quantized_row)
        if f >= MAX_EXP:
            g = (label - 1) * alpha
        elif f <= -MAX_EXP:
            g = label * alpha
        else:
            position = (f + MAX_EXP) * EXP_INDEX_SCALE
            near_table_edge |= abs(position - round(position)) < 1e-3
            g = (label - SIGMOID_TABLE[int(position)]) * alpha
        z = f if d == 0 else -f
        if abs(z) < MAX_EXP:
            position = (z + MAX_EXP) * EXP_INDEX_SCALE
            near_table_edge |= abs(position - round(position)) < 1e-3
            loss += -np.log(SIGMOID_TABLE[int(position)])
        else:
            loss += max(-z, 0.0)
        neu1e += g * quantized_row
        syn1neg[target] += (g * neu1).astype(np.float32)
    if not cbow_mean:
        neu1e /= len(context)
    for index in context:
        syn0[index] += neu1e.astype(np.float32)
    return next_random, loss, near_table_edge


def random_problem(seed, vocab=30, size=24, scale=0.5):
    rng = np.random.default_rng(seed)
    syn0 = rng.uniform(-scale, scale, (vocab, size)).astype(np.float32)
    syn1neg = rng.uniform(-scale, scale, (vocab, size)).astype(np.float32)
    counts = rng.integers(1, 50, vocab) ** 0.75
    cum_table = np.round(np.cumsum(counts) / counts.sum() * (2 ** 31 - 1)).astype(np.uint32)
    return syn0, syn1neg, cum_table


@pytest.mark.parametrize("bits", [1, 2, 4, 8, 32])
@pytest.mark.parametrize("cbow_mean", [1, 0])
def test_kernel_step_matches_numpy_reference(bits, cbow_mean):
    syn0, syn1neg, cum_table = random_problem(seed=bits * 10 + cbow_mean)
    context, center, alpha, negative = [3, 7, 7, 12, 0], 5, 0.05, 12
    expected = [syn0.copy(), syn1neg.copy()]
    next_random = 123456789
    for step in range(3):  # consecutive steps share the random stream, as in a sentence
        next_random, loss = cbow_step(syn0, syn1neg, cum_table, context, center, alpha, bits, negative,
                                      cbow_mean=cbow_mean, next_random=next_random, compute_loss=True)
        expected_random, expected_loss, near_table_edge = reference_step(
            *expected, cum_table, context, center, alpha, bits, negative, cbow_mean,
            next_random=(123456789 if step == 0 else previous_random))
        previous_random = next_random
        assert next_random == expected_random
        # One sigmoid-table step moves g by at most alpha * 0.003.
        tolerance = 5e-4 if near_table_edge else 1e-5
        np.testing.assert_allclose(syn0, expected[0], rtol=1e-5, atol=tolerance)
        np.testing.assert_allclose(syn1neg, expected[1], rtol=1e-5, atol=tolerance)
        assert loss == pytest.approx(expected_loss, rel=1e-3, abs=0.02 * negative if near_table_edge else 1e-3)


def test_saturated_scores_still_train_with_clipped_gradient():
    # Large vectors push |f| past 6: gensim would skip these samples, word2vec.c trains them.
    syn0, syn1neg, cum_table = random_problem(seed=3, size=400, scale=3.0)
    before = syn1neg.copy()
    expected = [syn0.copy(), syn1neg.copy()]
    cbow_step(syn0, syn1neg, cum_table, [1, 2], 4, 0.05, 32, 5, next_random=99)
    reference_step(*expected, cum_table, [1, 2], 4, 0.05, 32, 5, 1, next_random=99)
    assert not np.array_equal(syn1neg[4], before[4])
    np.testing.assert_allclose(syn1neg, expected[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bits", [1, 2])
def test_large_master_weights_are_not_clipped(bits):
    # word2bits.cpp's straight-through estimator passes the gradient whatever the master
    # weight's size (no |x| <= 1 window, as BinaryConnect would use); so does the kernel.
    syn0, syn1neg, cum_table = random_problem(seed=11, size=32, scale=4.0)
    expected = [syn0.copy(), syn1neg.copy()]
    before = syn1neg[4].copy()
    cbow_step(syn0, syn1neg, cum_table, [1, 2, 3], 4, 0.05, bits, 5, next_random=7)
    reference_step(*expected, cum_table, [1, 2, 3], 4, 0.05, bits, 5, 1, next_random=7)
    large = np.abs(before) > 1
    assert large.sum() > 10 and np.all(syn1neg[4][large] != before[large])
    np.testing.assert_allclose(syn1neg, expected[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(syn0, expected[0], rtol=1e-5, atol=1e-5)


def test_downsampling_and_unigram_table_are_word2bits_cpp_rules():
    """Keep-probabilities and negative-sampling weights as word2bits.cpp computes them.

    word2bits.cpp keeps a word with probability (sqrt(cn / (sample * T)) + 1) * sample * T / cn
    (T: the retained corpus words) and draws negatives from a table filled in proportion to
    cn ** 0.75. (Its T also counts one ``</s>`` a line, and a ``</s>`` drawn as a negative is
    replaced by a uniformly drawn word; docs/word2bits.md measures that difference.)
    """
    corpus = LineSentence(datapath("lee_background.cor"))
    model = Word2Bits(vector_size=8, min_count=5, sample=1e-3, workers=1)
    model.build_vocab(corpus)
    counts = np.array([model.wv.get_vecattr(word, "count") for word in model.wv.index_to_key], dtype=np.float64)
    threshold = 1e-3 * counts.sum()
    keep = np.minimum((np.sqrt(counts / threshold) + 1) * threshold / counts, 1.0)
    sample_int = np.array([model.wv.get_vecattr(word, "sample_int") for word in model.wv.index_to_key])
    np.testing.assert_allclose(sample_int / (2 ** 32 - 1), keep, rtol=1e-6)
    assert keep.min() < 0.5  # the rule is exercised: frequent words are dropped
    weights = np.diff(np.concatenate([[0], model.cum_table.astype(np.float64)])) / model.cum_table[-1]
    np.testing.assert_allclose(weights, counts ** 0.75 / (counts ** 0.75).sum(), atol=2e-9)


def test_training_a_job_equals_reference_steps():
    """A whole kernel job: reduced windows, sentence boundaries and the LCG seeded from model.random."""
    sentences = [["a", "b", "c", "d", "e"], ["c", "a", "b"], ["e", "d"]]
    model = Word2Bits(vector_size=8, window=2, min_count=1, sample=0, negative=3, workers=1, seed=5, bits=1)
    model.build_vocab(sentences)
    syn0, syn1neg = model.syn0_full.copy(), model.syn1neg.copy()
    random = copy.deepcopy(model.random)
    model.train(sentences, total_examples=len(sentences), epochs=1)

    next_random = (2 ** 24) * random.randint(0, 2 ** 24) + random.randint(0, 2 ** 24)
    indexes = [[model.wv.key_to_index[word] for word in sentence] for sentence in sentences]
    reduced = iter(random.randint(0, model.window, sum(map(len, indexes))))
    for sentence in indexes:
        for position, center in enumerate(sentence):
            skip = next(reduced)
            start = max(0, position - model.window + skip)
            stop = min(len(sentence), position + model.window + 1 - skip)
            context = [sentence[m] for m in range(start, stop) if m != position]
            if context:
                next_random, _, _ = reference_step(syn0, syn1neg, model.cum_table, context, center, model.alpha,
                                                1, model.negative, 1, next_random)
    np.testing.assert_allclose(model.syn0_full, syn0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.syn1neg, syn1neg, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_final_vectors_lie_on_the_levels_and_are_q_of_u_plus_v(bits):
    model = Word2Bits(common_texts, bits=bits, epochs=2, **SMALL)
    assert set(np.unique(model.wv.vectors).tolist()) <= set(levels(bits).tolist())
    np.testing.assert_array_equal(model.wv.vectors, quantize(model.syn0_full + model.syn1neg, bits))
    assert model.bytes_per_word == SMALL["vector_size"] * bits / 8


def test_thirty_two_bits_and_thresholded_baseline():
    float_model = Word2Bits(common_texts, bits=32, epochs=2, **SMALL)
    np.testing.assert_array_equal(float_model.wv.vectors, float_model.syn0_full + float_model.syn1neg)
    t1 = float_model.quantized_vectors(1)
    np.testing.assert_array_equal(t1.vectors, quantize(float_model.wv.vectors, 1))
    assert t1.index_to_key == float_model.wv.index_to_key
    # thresholded=True trains the same float kernel and quantizes only at the end.
    thresholded = Word2Bits(common_texts, bits=1, thresholded=True, epochs=2, **SMALL)
    np.testing.assert_array_equal(thresholded.syn0_full, float_model.syn0_full)
    np.testing.assert_array_equal(thresholded.wv.vectors, t1.vectors)


def test_both_matrices_start_uniform_in_half_range():
    model = Word2Bits(vector_size=64, min_count=1, seed=3)
    model.build_vocab(common_texts)
    for weights in (model.syn0_full, model.syn1neg):
        assert weights.min() >= -0.5 and weights.max() < 0.5
        assert abs(weights.mean()) < 0.05 and weights.std() > 0.25
    assert not np.array_equal(model.syn0_full, model.syn1neg)


def test_one_worker_fixed_seed_is_deterministic():
    first = Word2Bits(common_texts, bits=2, **SMALL)
    second = Word2Bits(common_texts, bits=2, **SMALL)
    np.testing.assert_array_equal(first.syn0_full, second.syn0_full)
    np.testing.assert_array_equal(first.syn1neg, second.syn1neg)
    other_seed = Word2Bits(common_texts, bits=2, **{**SMALL, "seed": 8})
    assert not np.array_equal(first.syn0_full, other_seed.syn0_full)


def test_save_load_round_trip_and_continued_training(tmp_path):
    model = Word2Bits(common_texts, bits=1, compute_loss=True, **SMALL)
    path = tmp_path / "model.w2b"
    model.save(str(path))
    loaded = Word2Bits.load(str(path))
    assert isinstance(loaded, Word2Bits) and loaded.bits == 1 and not loaded.thresholded
    for name in ("syn0_full", "syn1neg"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    np.testing.assert_array_equal(loaded.wv.vectors, model.wv.vectors)
    assert loaded.wv.most_similar("computer", topn=3) == model.wv.most_similar("computer", topn=3)

    before = loaded.syn0_full.copy()
    loaded.train(common_texts, total_examples=loaded.corpus_count, epochs=2, compute_loss=True)
    assert not np.array_equal(loaded.syn0_full, before)
    assert loaded.get_latest_training_loss() > 0
    np.testing.assert_array_equal(loaded.wv.vectors, quantize(loaded.syn0_full + loaded.syn1neg, 1))


def test_vocabulary_update_keeps_old_rows_and_initialises_new_ones():
    model = Word2Bits(common_texts, bits=2, **SMALL)
    old_count = len(model.wv)
    old_input = model.syn0_full.copy()
    new_texts = [["quantized", "vectors", "computer"], ["quantized", "bits", "system"]]
    model.build_vocab(new_texts, update=True)
    assert len(model.wv) == old_count + 3 and "quantized" in model.wv
    assert model.syn0_full.shape == model.syn1neg.shape == model.wv.vectors.shape == (old_count + 3, 16)
    np.testing.assert_array_equal(model.syn0_full[:old_count], old_input)
    new_rows = np.concatenate([model.syn0_full[old_count:], model.syn1neg[old_count:]])
    assert np.all(np.abs(new_rows) < 0.5) and new_rows.std() > 0.2
    model.train(new_texts, total_examples=len(new_texts), epochs=3)
    assert set(np.unique(model.wv.vectors).tolist()) <= set(levels(2).tolist())


class EpochLoss(CallbackAny2Vec):
    def __init__(self):
        self.losses, self.previous = [], 0.0

    def on_epoch_end(self, model):
        total = model.get_latest_training_loss()
        self.losses.append(total - self.previous)
        self.previous = total


def test_quantized_training_lowers_the_loss_with_two_workers():
    sentences = list(LineSentence(datapath("lee_background.cor")))
    recorder = EpochLoss()
    model = Word2Bits(sentences, vector_size=50, bits=1, workers=2, epochs=4, compute_loss=True, callbacks=[recorder])
    assert len(recorder.losses) == 4
    assert recorder.losses[-1] < 0.9 * recorder.losses[0]
    assert model.wv.most_similar("government", topn=5)  # KeyedVectors methods work on Q(u + v)


def test_keyed_vectors_export_round_trips(tmp_path):
    model = Word2Bits(common_texts, bits=1, **SMALL)
    path = tmp_path / "vectors.txt"
    model.wv.save_word2vec_format(str(path))
    reloaded = KeyedVectors.load_word2vec_format(str(path))
    np.testing.assert_allclose(reloaded.vectors, model.wv.vectors, atol=1e-6)


@pytest.mark.parametrize("arguments, message", [
    (dict(bits=3), "bits must be one of"),
    (dict(bits=True), "bits must be one of"),
    (dict(vector_size=0), r"vector_size must be an integer in \[1, "),
    (dict(vector_size=2.5), r"vector_size must be an integer in \[1, "),
    (dict(window=0), r"window must be an integer in \[1, "),
    (dict(workers=0), r"workers must be an integer in \[1, "),
    # issue 10, defect 5: values a C int cannot hold killed a worker thread and hung training
    (dict(window=2 ** 31), r"window must be an integer in \[1, 1073741824\]"),
    (dict(negative=2 ** 31), r"negative must be an integer in \[0, 1073741824\]"),
    (dict(batch_words=0), "batch_words must be an integer"),
    (dict(alpha=float("nan")), "alpha must be a finite number"),
    (dict(hs=0, negative=0), "You must set either 'hs' or 'negative'"),
])
def test_bad_arguments_raise_before_training(arguments, message):
    with pytest.raises(ValueError, match=message):
        Word2Bits(common_texts, **{**SMALL, **arguments})


@pytest.mark.parametrize("corpus, message", [
    ([], "corpus is empty"),
    ([[], []], "corpus is empty"),
    ([["rare", "words", "only"]], "min_count=5"),
])
def test_empty_corpus_or_vocabulary_raises(corpus, message):
    # gensim raises RuntimeError here; ours subclasses it and ValueError, with a clearer message
    with pytest.raises(RuntimeError, match=message):
        Word2Bits(corpus, vector_size=8, min_count=5, workers=1)
    with pytest.raises(ValueError, match=message):
        Word2Bits(corpus, vector_size=8, min_count=5, workers=1)


def test_vocabulary_emptied_by_min_count_only_warns_in_build_vocab(caplog):
    model = Word2Bits(vector_size=8, min_count=5, workers=1)
    model.build_vocab([["rare", "words", "only"]])  # gensim warns here and raises only in train()
    assert len(model.wv) == 0


def test_threads_that_cannot_start_raise_one_clear_error_and_leave_none_behind(monkeypatch):
    import threading

    from gensim_bits.word2bits import WorkerThreadError

    model = Word2Bits(common_texts, vector_size=4, min_count=1, workers=3, epochs=1)
    before = threading.active_count()
    start, starts = threading.Thread.start, []

    def limited_start(thread):  # the process can start two more threads, as under a pids limit
        if len(starts) >= 2:
            raise RuntimeError("can't start new thread")
        starts.append(thread)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", limited_start)
    with pytest.raises(WorkerThreadError, match=r"workers=3 needs 4 .*only 2 .*pass fewer workers"):
        model.train(common_texts, total_examples=len(common_texts), epochs=1)
    assert threading.active_count() == before
    monkeypatch.setattr(threading.Thread, "start", start)
    model.train(common_texts, total_examples=len(common_texts), epochs=1)  # trains once it can


def test_workers_beyond_an_address_space_limit_raise_the_clear_error(tmp_path):
    """A real limit: 1024 threads' stacks (8 MiB each by default, 2 MiB at least) do not fit in
    256 MiB more address space; the error is one line and the process exits on its own."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import resource
        from gensim.test.utils import common_texts
        from gensim_bits import Word2Bits
        from gensim_bits.word2bits import WorkerThreadError
        with open("/proc/self/status") as status:
            size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (size + (256 << 20), size + (256 << 20)))
        try:
            Word2Bits(common_texts, vector_size=4, min_count=1, epochs=1, workers=1024)
        except WorkerThreadError as error:
            print("REFUSED", error)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("REFUSED workers=1024 needs 1025 training threads"), done.stdout
    assert len(done.stdout.strip().splitlines()) == 1
