"""Word2Bits behaves as gensim's Word2Vec where a user would notice (issue 15), and the kernel's
hostile-argument defects of issue 10 (1: sentence-boundary overflow; 5: a dead worker hung training)."""
import os
import threading

import numpy as np
import pytest
from gensim.test.utils import common_texts, lee_corpus_list

from gensim_bits import Word2Bits
from gensim_bits.quantizers import quantize
from gensim_bits.word2bits_inner import cbow_step, skipgram_step

SMALL = dict(vector_size=16, min_count=1, workers=1, seed=7, sample=0)


def train_within(model, corpus, seconds=30, **kwargs):
    """Train in a thread; fail (rather than hang the test run) if it does not return in time."""
    outcome = {}

    def run():
        try:
            sizes = {} if corpus is None else dict(total_examples=len(corpus))
            outcome["result"] = model.train(corpus, epochs=1, **sizes, **kwargs)
        except Exception as error:  # noqa: BLE001 - handed to the test
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "training hung"
    return outcome


# ----------------------------------------------------------------- issue 10, defect 1

def test_job_of_sentences_emptied_by_min_count_does_not_overflow():
    corpus = [["a", "b", "c", "d"]] * 50 + [[f"rare{i}"] for i in range(10500)]
    model = Word2Bits(corpus, min_count=5, workers=1, batch_words=20000, vector_size=8)
    assert sorted(model.wv.index_to_key) == ["a", "b", "c", "d"]


def test_job_of_sentences_emptied_by_downsampling_does_not_overflow():
    corpus = [["the"]] * 30000
    model = Word2Bits(corpus, min_count=1, sample=1e-3, batch_words=50000, workers=1, vector_size=8)
    assert model.wv.index_to_key == ["the"] and model.corpus_total_words == 30000
    syn0, syn1neg = model.syn0_full.copy(), model.syn1neg.copy()
    trained, raw = model.train(corpus, total_examples=len(corpus), epochs=1)
    # word2vec's downsampling keeps a word of count c with probability (sqrt(c / t) + 1) t / c,
    # t = sample * 30000: 3.26%, 979 of 30000 expected (binomial sd 31).
    kept = (np.sqrt(30000 / 30) + 1) * 30 / 30000
    assert raw == 30000 and abs(trained - 30000 * kept) < 6 * np.sqrt(30000 * kept * (1 - kept))
    # One-word sentences have no context: nothing moves, and wv holds Q(syn0 + syn1neg).
    np.testing.assert_array_equal(model.syn0_full, syn0)
    np.testing.assert_array_equal(model.syn1neg, syn1neg)
    np.testing.assert_array_equal(model.wv.vectors, quantize(syn0 + syn1neg, 1))


def test_jobs_above_ten_thousand_words_train_every_word():
    corpus = [["w%d" % (i % 50) for i in range(j, j + 7)] for j in range(5000)]  # 35000 words
    model = Word2Bits(vector_size=8, min_count=1, sample=0, workers=1, batch_words=50000)
    model.build_vocab(corpus)
    trained, raw = model.train(corpus, total_examples=len(corpus), epochs=1)
    assert trained == raw == 35000  # gensim's kernel would stop each job at 10000 words


# ----------------------------------------------------------------- issue 10, defect 5

@pytest.mark.parametrize("name", ["window", "negative", "vector_size"])
def test_c_int_overflow_is_refused_before_training(name):
    with pytest.raises(ValueError, match=name):
        Word2Bits(common_texts, **{**SMALL, name: 2 ** 31})
    model = Word2Bits(common_texts, **SMALL)
    setattr(model, name, 2 ** 31)  # changed after construction: train() checks again
    outcome = train_within(model, common_texts)
    assert isinstance(outcome.get("error"), ValueError) and name in str(outcome["error"])


def test_an_error_in_a_worker_thread_is_raised_not_hung():
    model = Word2Bits(common_texts, **{**SMALL, "workers": 2})
    model.cum_table = np.zeros(0, dtype=np.uint32)  # the kernel refuses it inside the worker
    outcome = train_within(model, common_texts)
    assert isinstance(outcome.get("error"), ValueError) and "cum_table" in str(outcome["error"])


# ----------------------------------------------------------------- gensim compatibility

@pytest.mark.parametrize("sg", [0, 1])
@pytest.mark.parametrize("bits", [1, 32])
def test_vectors_lockf_holds_locked_rows(sg, bits):
    model = Word2Bits(vector_size=8, min_count=1, workers=1, sg=sg, bits=bits, window=3)
    model.build_vocab(lee_corpus_list[:50])
    locked, unlocked = model.wv.vectors[0].copy(), model.wv.vectors[1].copy()
    model.wv.vectors_lockf = np.ones(len(model.wv), dtype=np.float32)
    model.wv.vectors_lockf[0] = 0.0
    model.train(lee_corpus_list[:50], total_examples=50, epochs=2)
    np.testing.assert_array_equal(model.wv.vectors[0], locked)
    assert not np.array_equal(model.wv.vectors[1], unlocked)


def test_vectors_written_before_training_are_kept():
    # issue 15's reproducer: gensim keeps the seeded 0.25 when the learning rate is negligible
    model = Word2Bits(vector_size=10, min_count=1, bits=32, workers=1)
    model.build_vocab(common_texts)
    row = model.wv.get_index("graph")
    model.wv.vectors[row] = 0.25
    model.train(common_texts, total_examples=model.corpus_count, epochs=1, start_alpha=1e-6, end_alpha=1e-6)
    np.testing.assert_allclose(model.wv.vectors[row], 0.25, atol=1e-4)


def test_intersected_pretrained_vectors_are_kept_and_locked(tmp_path):
    model = Word2Bits(vector_size=4, min_count=1, bits=32, workers=1)
    model.build_vocab(common_texts)
    path = tmp_path / "pretrained.txt"
    path.write_text("2 4\ngraph 0.5 -0.5 0.5 -0.5\nunknownword 1 1 1 1\n")
    model.wv.vectors_lockf = np.ones(len(model.wv), dtype=np.float32)  # as gensim needs for intersecting
    model.wv.intersect_word2vec_format(str(path), lockf=0.0)
    model.train(common_texts, total_examples=model.corpus_count, epochs=3)
    np.testing.assert_array_equal(model.wv["graph"], np.array([0.5, -0.5, 0.5, -0.5], dtype=np.float32))


def test_wv_vectors_is_the_same_array_across_epochs():
    model = Word2Bits(vector_size=8, min_count=1, workers=1, bits=32)
    model.build_vocab(common_texts)
    vectors = model.wv.vectors
    before = vectors.copy()
    model.train(common_texts, total_examples=model.corpus_count, epochs=3)
    assert model.wv.vectors is vectors
    assert not np.array_equal(vectors, before)


def test_predict_output_word_uses_the_forward_pass():
    """On Lee, gensim ranks a context word first in ~0 of 200 contexts; Word2Bits did in 174 (issue 15)."""
    model = Word2Bits(lee_corpus_list, vector_size=32, min_count=2, workers=1, epochs=5, bits=1)
    rng = np.random.default_rng(0)
    sentences = [sentence for sentence in lee_corpus_list if len(sentence) > 10]
    echoes = 0
    for _ in range(200):
        sentence = sentences[rng.integers(len(sentences))]
        position = rng.integers(2, len(sentence) - 2)
        context = [word for word in sentence[position - 2:position] + sentence[position + 1:position + 3]
                   if word in model.wv] or [sentence[0]]
        echoes += model.predict_output_word(context, topn=1)[0][0] in context
    assert echoes < 20
    prediction = model.predict_output_word(["human", "system"], topn=5)
    assert len(prediction) == 5 and sum(p for _, p in model.predict_output_word(["human"], topn=None)) == \
        pytest.approx(1.0, rel=1e-6)
    assert model.predict_output_word(["zzz-unknown"]) is None


def test_predict_output_word_scores_q_of_the_rows():
    model = Word2Bits(common_texts, **{**SMALL, "bits": 1})
    context = ["human", "interface"]
    hidden = quantize(model.syn0_full[[model.wv.get_index(w) for w in context]], 1).mean(axis=0)
    scores = quantize(model.syn1neg, 1) @ hidden
    expected = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
    predicted = dict(model.predict_output_word(context, topn=len(model.wv)))
    np.testing.assert_allclose([predicted[word] for word in model.wv.index_to_key], expected, rtol=1e-5)


# ----------------------------------------------------------------- skip-gram

@pytest.mark.parametrize("bits", [1, 2, 32])
def test_skip_gram_step_is_one_single_word_cbow_step_per_context_word(bits):
    """A skip-gram pair (center, context) is CBOW with a one-word context: same forward pass,
    same straight-through update, same negative draws in gensim's order."""
    rng = np.random.default_rng(bits)
    syn0 = rng.uniform(-0.5, 0.5, (20, 12)).astype(np.float32)
    syn1neg = rng.uniform(-0.5, 0.5, (20, 12)).astype(np.float32)
    cum_table = np.round(np.cumsum(np.ones(20)) / 20 * (2 ** 31 - 1)).astype(np.uint32)
    expected_syn0, expected_syn1neg = syn0.copy(), syn1neg.copy()
    next_random, loss = skipgram_step(syn0, syn1neg, cum_table, [3, 7, 9], 5, 0.05, bits, 6,
                                      next_random=42, compute_loss=True)
    expected_random, expected_loss = 42, 0.0
    for context_word in [3, 7, 9]:
        expected_random, step_loss = cbow_step(expected_syn0, expected_syn1neg, cum_table, [context_word], 5,
                                               0.05, bits, 6, next_random=expected_random, compute_loss=True)
        expected_loss += step_loss
    assert next_random == expected_random
    np.testing.assert_array_equal(syn0, expected_syn0)
    np.testing.assert_array_equal(syn1neg, expected_syn1neg)
    assert loss == pytest.approx(expected_loss)


@pytest.mark.parametrize("bits", [1, 32])
def test_skip_gram_training_lowers_the_loss(bits):
    model = Word2Bits(vector_size=16, min_count=2, workers=1, sg=1, bits=bits, compute_loss=True)
    model.build_vocab(lee_corpus_list)
    losses = []
    for _ in range(3):
        model.train(lee_corpus_list, total_examples=model.corpus_count, epochs=1, compute_loss=True)
        losses.append(model.get_latest_training_loss())
    assert losses[-1] < losses[0]
    np.testing.assert_array_equal(model.wv.vectors, quantize(model.syn0_full + model.syn1neg, bits))


# ----------------------------------------------------------------- hierarchical softmax

@pytest.mark.parametrize("sg", [0, 1])
@pytest.mark.parametrize("negative", [0, 3])
def test_hierarchical_softmax_trains_and_lowers_the_loss(sg, negative):
    model = Word2Bits(vector_size=16, min_count=2, workers=1, sg=sg, hs=1, negative=negative, bits=1,
                      compute_loss=True)
    corpus = lee_corpus_list[:120]
    model.build_vocab(corpus)
    syn1 = model.syn1.copy()
    losses = []
    for _ in range(3):
        model.train(corpus, total_examples=model.corpus_count, epochs=1, compute_loss=True)
        losses.append(model.get_latest_training_loss())
    assert losses[-1] < losses[0]
    assert not np.array_equal(model.syn1, syn1)
    expected = model.syn0_full + (model.syn1neg if negative else 0)
    np.testing.assert_array_equal(model.wv.vectors, quantize(expected, 1))


def test_one_word_vocabulary_with_hierarchical_softmax():
    corpus = [["only"]] * 5
    model = Word2Bits(corpus, vector_size=4, min_count=1, hs=1, negative=0, workers=1, sample=0)
    assert model.wv.index_to_key == ["only"] and model.syn1.shape == (1, 4)
    # A one-leaf Huffman tree has no inner node: the word has an empty code and path.
    assert len(model.wv.get_vecattr("only", "code")) == len(model.wv.get_vecattr("only", "point")) == 0
    syn0, syn1 = model.syn0_full.copy(), model.syn1.copy()
    assert model.train(corpus, total_examples=len(corpus), epochs=2) == (10, 10)  # every word seen
    np.testing.assert_array_equal(model.syn0_full, syn0)  # with no context and no code nothing trains
    np.testing.assert_array_equal(model.syn1, syn1)
    np.testing.assert_array_equal(model.wv.vectors, quantize(syn0, 1))


# ----------------------------------------------------------------- corpus_file

def write_corpus(path, sentences):
    path.write_text("".join(" ".join(sentence) + "\n" for sentence in sentences), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("sg, hs", [(0, 0), (1, 0), (0, 1)])
def test_corpus_file_trains_every_word_once_an_epoch(tmp_path, workers, sg, hs):
    path = write_corpus(tmp_path / "lee.txt", lee_corpus_list)
    model = Word2Bits(vector_size=8, min_count=2, workers=workers, sample=0, sg=sg, hs=hs, negative=0 if hs else 3)
    model.build_vocab(corpus_file=path)
    trained, raw = model.train(corpus_file=path, total_words=model.corpus_total_words, epochs=2)
    in_vocabulary = sum(word in model.wv.key_to_index for sentence in lee_corpus_list for word in sentence)
    assert (trained, raw) == (2 * in_vocabulary, 2 * model.corpus_total_words)
    assert model.train(lee_corpus_list, total_examples=model.corpus_count, epochs=2) == (trained, raw)


def test_corpus_file_and_iterable_reach_similar_losses(tmp_path):
    path = write_corpus(tmp_path / "lee.txt", lee_corpus_list)
    arguments = dict(vector_size=16, min_count=2, workers=1, bits=1, compute_loss=True, epochs=3)
    from_file = Word2Bits(corpus_file=path, **arguments).get_latest_training_loss()
    from_iterable = Word2Bits(lee_corpus_list, **arguments).get_latest_training_loss()
    assert from_file == pytest.approx(from_iterable, rel=0.05)


def test_corpus_file_reader_looks_up_words_as_gensim_does(tmp_path):
    from gensim_bits.word2bits_inner import CorpusVocabulary
    sentences = [["naïve", "café", "東京", "a"], ["a", "café"]] * 3
    model = Word2Bits(sentences, vector_size=4, min_count=1, workers=1)
    vocabulary = CorpusVocabulary(model.wv)
    assert [vocabulary.index(word) for word in model.wv.index_to_key] == list(range(len(model.wv)))
    assert vocabulary.index("caf") == vocabulary.index("") == -1


def test_corpus_file_must_be_plain_text(tmp_path):
    import gzip
    path = tmp_path / "corpus.txt.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("a b c\n" * 10)
    model = Word2Bits(common_texts, **SMALL)
    with pytest.raises(ValueError, match="compressed"):
        model.train(corpus_file=str(path), total_words=30, epochs=1)
    with pytest.raises(FileNotFoundError):
        model.train(corpus_file=str(tmp_path / "missing.txt"), total_words=30, epochs=1)


def test_corpus_file_fifo_or_device_is_refused_at_once(tmp_path):
    # Opening a FIFO waits for a writer forever; gensim's TypeError came only after that.
    fifo = tmp_path / "corpus.fifo"
    os.mkfifo(fifo)
    model = Word2Bits(common_texts, **SMALL)
    outcome = train_within(model, None, seconds=20, corpus_file=str(fifo), total_words=30)
    assert isinstance(outcome.get("error"), ValueError) and "a FIFO" in str(outcome["error"])
    with pytest.raises(ValueError, match="a FIFO"):
        Word2Bits(corpus_file=str(fifo), **SMALL)  # refused before the vocabulary scan opens it
    if os.path.exists("/dev/null"):
        with pytest.raises(ValueError, match="character device"):
            model.train(corpus_file="/dev/null", total_words=30, epochs=1)


def test_corpus_file_reader_splits_on_unicode_whitespace_as_the_vocabulary_scan(tmp_path):
    # LineSentence (the vocabulary scan) splits with str.split(); a reader splitting on ASCII
    # whitespace only would count these words and never train them.
    line = "東京\u3000大阪 the\u00a0cat sat\x1cdown x\u2003y\u205fz\u0085w\u1680v\r\n"
    path = tmp_path / "unicode.txt"
    path.write_text(line * 200, encoding="utf-8", newline="")
    model = Word2Bits(vector_size=8, min_count=1, workers=2, sample=0, epochs=1)
    model.build_vocab(corpus_file=str(path))
    assert sorted(model.wv.index_to_key) == sorted(line.split()) and model.corpus_total_words == 11 * 200
    before = model.syn0_full.copy()
    trained, raw = model.train(corpus_file=str(path), total_words=model.corpus_total_words, epochs=1)
    assert trained == raw == 11 * 200
    changed = [word for row, word in enumerate(model.wv.index_to_key)
               if not np.array_equal(before[row], model.syn0_full[row])]
    assert sorted(changed) == sorted(model.wv.index_to_key)  # 東京 and 大阪 included


@pytest.mark.parametrize("workers", [2 ** 30, 10000, 1025])
def test_workers_beyond_a_sane_bound_are_refused(workers):
    with pytest.raises(ValueError, match=r"workers must be an integer in \[1, 1024\]"):
        Word2Bits(common_texts, **{**SMALL, "workers": workers})
    model = Word2Bits(common_texts, **SMALL)
    model.workers = workers  # changed after construction: train() checks again, before any thread starts
    outcome = train_within(model, common_texts, seconds=20)
    assert isinstance(outcome.get("error"), ValueError) and "workers" in str(outcome["error"])


@pytest.mark.parametrize("flag", ["--window", "--negative"])
def test_cli_refuses_c_int_overflow_in_one_line(tmp_path, capsys, flag):
    from gensim_bits.cli import main
    corpus = write_corpus(tmp_path / "corpus.txt", common_texts)
    output = tmp_path / "vectors.gbits"
    assert main(["train", corpus, "-o", str(output), flag, str(2 ** 31), "--min-count", "1"]) != 0
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and flag[2:] in error and not output.exists()


def test_rows_written_after_load_are_kept(tmp_path):
    model = Word2Bits(common_texts, vector_size=6, min_count=1, bits=32, workers=1)
    model.save(str(tmp_path / "model"))
    model = Word2Bits.load(str(tmp_path / "model"))
    row = model.wv.get_index("graph")
    model.wv.vectors[row] = 0.5
    model.train(common_texts, total_examples=model.corpus_count, epochs=1, start_alpha=1e-6, end_alpha=1e-6)
    np.testing.assert_allclose(model.wv.vectors[row], 0.5, atol=1e-4)
