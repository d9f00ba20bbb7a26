"""evaluate(): hand-computed scores on a tiny vocabulary, and the batched analogy search
against a question-by-question reference and gensim."""
import numpy as np
import pytest
from gensim.models import KeyedVectors

from gensim_bits import QuantizedKeyedVectors, evaluate, evaluation, quantize

SQRT_HALF = np.sqrt(0.5)


@pytest.fixture
def tiny_vectors():
    vectors = KeyedVectors(3)
    vectors.add_vectors(["man", "woman", "king", "queen", "apple"], np.array([
        [1, 0, 0], [0, 1, 0], [SQRT_HALF, 0, SQRT_HALF], [0, SQRT_HALF, SQRT_HALF], [-1, 0, 0],
    ], dtype=np.float32))
    return vectors


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_hand_computed_scores(tmp_path, tiny_vectors):
    # man:woman :: king:? -- queen: cos(q,woman)=0.707, cos(q,king)=0.5, cos(q,man)=0:
    #   3CosAdd 1.207, 3CosMul 0.854*0.75/(0.5+0.001) = 1.28.
    # apple: cos(apple,woman)=0, cos(apple,king)=-0.707, cos(apple,man)=-1:
    #   3CosAdd 0.293, 3CosMul 0.5*0.146/(0+0.001) = 73 -> 3CosMul answers apple (wrong).
    # woman:man :: queen:? -- king: 3CosAdd 1.207, 3CosMul 1.28; apple: -1 and 0 -> both right.
    analogies = write(tmp_path / "questions.txt",
                      ": family\nman woman king queen\n: other\nWOMAN Man queen king\nman woman king unknown\n")
    # Model cosines 0.707, 0.707, -1, 0.5 rank 3.5, 3.5, 1, 2; gold ranks 3, 4, 1, 2:
    # Spearman = 4.5 / sqrt(5 * 4.5) = sqrt(0.9). The pair with "nothere" is skipped.
    pairs = write(tmp_path / "pairs.tsv", "# a title\n# word1\tword2\tscore\nman\tking\t7.0\nwoman\tqueen\t8\n"
                                          "man\tapple\t1\nking\tqueen\t5\nman\tnothere\t3\n")
    results = evaluate(tiny_vectors, similarity=[pairs], analogies=[analogies], verbose=False)

    similarity = results["similarity"]["pairs.tsv"]
    assert similarity["spearman"] == pytest.approx(np.sqrt(0.9))
    assert (similarity["pairs"], similarity["total"], similarity["coverage"]) == (4, 5, 0.8)

    google = results["analogies"]["questions.txt"]
    family, other = google["sections"]
    assert family == {"section": "family", "questions": 1, "correct_3cosadd": 1, "accuracy_3cosadd": 1.0,
                      "correct_3cosmul": 0, "accuracy_3cosmul": 0.0}
    assert (other["questions"], other["correct_3cosadd"], other["correct_3cosmul"]) == (1, 1, 1)
    total = google["total"]
    assert (total["questions"], total["correct_3cosadd"], total["correct_3cosmul"]) == (2, 2, 1)
    assert google["questions_in_file"] == 3 and google["coverage"] == pytest.approx(2 / 3)


def test_restrict_vocab_skips_rare_words(tmp_path, tiny_vectors):
    analogies = write(tmp_path / "q.txt", ": s\nman woman king queen\n")
    result = evaluate(tiny_vectors, analogies=analogies, restrict_vocab=3, verbose=False)
    assert result["analogies"]["q.txt"]["total"]["questions"] == 0  # queen is word 4


def test_the_table_is_printed(tmp_path, tiny_vectors, capsys):
    analogies = write(tmp_path / "q.txt", ": family\nman woman king queen\n")
    evaluate(tiny_vectors, analogies=[analogies])
    printed = capsys.readouterr().out
    assert "3CosAdd" in printed and "family" in printed and "100.0%" in printed


def random_questions(words, count, seed):
    rng = np.random.default_rng(seed)
    lines = []
    for number in range(count):
        if number % 25 == 0:
            lines.append(f": section{number // 25}")
        lines.append(" ".join(f"w{index}" for index in rng.choice(words, size=4, replace=False)))
    return "\n".join(lines) + "\n"


def reference_answers(vectors, questions):
    """3CosAdd and 3CosMul question by question, the plain way."""
    normed = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    answers = {"3cosadd": [], "3cosmul": []}
    for a, b, c in questions:
        cos = normed @ normed[[a, b, c]].T
        add = cos[:, 1] + cos[:, 2] - cos[:, 0]
        shifted = (1 + cos) / 2
        mul = shifted[:, 1] * shifted[:, 2] / (shifted[:, 0] + 0.001)
        for name, score in (("3cosadd", add), ("3cosmul", mul)):
            score[[a, b, c]] = -np.inf
            answers[name].append(int(np.argmax(score)))
    return answers


# At 8 bits and 96 dimensions the packed integer dots no longer fit float32's 24 bits: float64.
@pytest.mark.parametrize("packed, dimension", [(False, 24), (True, 24), (True, 96)])
def test_batched_search_equals_reference_and_gensim(tmp_path, monkeypatch, packed, dimension):
    # Small chunks so that the vocabulary and question batching both take several steps.
    monkeypatch.setattr(evaluation, "VOCABULARY_CHUNK", 7)
    monkeypatch.setattr(evaluation, "QUESTION_BATCH", 9)
    words = 40
    values = np.random.default_rng(5).standard_normal((words, dimension)).astype(np.float32)
    if packed:
        values = quantize(values, 8)  # fine levels: no ties between candidates
    keyed_vectors = KeyedVectors(dimension)
    keyed_vectors.add_vectors([f"w{index}" for index in range(words)], values)
    vectors = QuantizedKeyedVectors.from_keyed_vectors(keyed_vectors, bits=8) if packed else keyed_vectors
    path = write(tmp_path / "questions.txt", random_questions(words, 60, seed=1))

    lookup, canonical, normalize = evaluation._restricted_vocabulary(vectors, 300000, True)
    _, questions, _ = evaluation._read_questions(path, lookup, normalize)
    answers = evaluation.answer_analogies(questions, canonical, evaluation._cosine_function(vectors), words)
    expected = reference_answers(values.astype(np.float64), questions[:, 1:4])
    np.testing.assert_array_equal(answers["3cosadd"], expected["3cosadd"])
    np.testing.assert_array_equal(answers["3cosmul"], expected["3cosmul"])
    for (a, b, c), row in zip(questions[:, 1:4].tolist(), answers["3cosadd"]):
        best = keyed_vectors.most_similar(positive=[f"w{b}", f"w{c}"], negative=[f"w{a}"], topn=1)[0][0]
        assert best == f"w{row}"

    result = evaluate(vectors, analogies=[path], verbose=False)["analogies"]["questions.txt"]
    gensim_score, _ = keyed_vectors.evaluate_word_analogies(path)
    assert result["total"]["accuracy_3cosadd"] == pytest.approx(gensim_score)
    assert result["total"]["correct_3cosmul"] == int(np.sum(canonical[expected["3cosmul"]] == questions[:, 4]))


def test_packed_and_float_give_the_same_scores(tmp_path):
    values = quantize(np.random.default_rng(2).standard_normal((50, 16)), 2)
    keyed_vectors = KeyedVectors(16)
    keyed_vectors.add_vectors([f"w{index}" for index in range(50)], values)
    packed = QuantizedKeyedVectors.from_keyed_vectors(keyed_vectors, bits=2)
    questions = write(tmp_path / "q.txt", random_questions(50, 40, seed=3))
    rng = np.random.default_rng(4)
    pairs = write(tmp_path / "p.tsv", "".join(f"w{a}\tw{b}\t{rng.random():.3f}\n"
                                              for a, b in rng.integers(0, 50, size=(30, 2))))
    ours = evaluate(packed, similarity=[pairs], analogies=[questions], verbose=False)
    theirs = evaluate(keyed_vectors, similarity=[pairs], analogies=[questions], verbose=False)
    assert ours["similarity"]["p.tsv"]["spearman"] == pytest.approx(theirs["similarity"]["p.tsv"]["spearman"])
    assert ours["analogies"]["q.txt"]["total"] == theirs["analogies"]["q.txt"]["total"]
    assert theirs["similarity"]["p.tsv"]["spearman"] == pytest.approx(
        keyed_vectors.evaluate_word_pairs(pairs)[1][0])


def test_bad_arguments(tmp_path, tiny_vectors):
    with pytest.raises(ValueError, match="at least one"):
        evaluate(tiny_vectors)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        evaluate(tiny_vectors, analogies=[str(tmp_path / "missing.txt")])


def test_keyed_vectors_evaluators_read_files_by_the_same_rules(tmp_path, caplog):
    values = np.sign(np.random.default_rng(6).standard_normal((20, 16))).astype(np.float32) / 3
    keyed_vectors = KeyedVectors(16)
    keyed_vectors.add_vectors([f"w{index}" for index in range(20)], values)
    packed = QuantizedKeyedVectors.from_keyed_vectors(keyed_vectors, bits=1)
    # A question before any section and a 2-word line are skipped with a warning (gensim
    # raises on the first and skips the second silently); an OOV question counts under dummy4unknown.
    path = write(tmp_path / "q.txt", "w0 w1 w2 w3\n: s\nw4 w5 w6 w7\nw0 w1\nw8 w9 w10 nothere\n: t\nw11 w12 w13 w14\n")
    with caplog.at_level("WARNING", logger="gensim_bits.evaluation"):
        score, sections = packed.evaluate_word_analogies(path, dummy4unknown=True)
    assert "skipped 2 malformed lines" in caplog.text and "line 1" in caplog.text
    assert [s["section"] for s in sections] == ["s", "t", "Total accuracy"]
    assert [len(s["correct"]) + len(s["incorrect"]) for s in sections] == [2, 1, 3]
    assert ("W8", "W9", "W10", "NOTHERE") in sections[0]["incorrect"]
    ours = evaluate(packed, analogies=[path], verbose=False)["analogies"]["q.txt"]["total"]
    assert len(sections[-1]["correct"]) == ours["correct_3cosadd"] and score == ours["correct_3cosadd"] / 3
    # 3CosMul with gensim's most_similar_cosmul epsilon: the kernel's top answer, question by question.
    _, cosmul = packed.evaluate_word_analogies(path, similarity_function="most_similar_cosmul")
    expected = [(a, b, c, d) for a, b, c, d in (("W4", "W5", "W6", "W7"), ("W11", "W12", "W13", "W14"))
                if packed.most_similar_cosmul(positive=[b.lower(), c.lower()], negative=[a.lower()], topn=1)[0][0]
                == d.lower()]
    assert cosmul[-1]["correct"] == expected
    with pytest.raises(ValueError, match="similarity_function"):
        packed.evaluate_word_analogies(path, similarity_function="n_similarity")
    pairs = write(tmp_path / "p.tsv", "w0\tw1\t3\nw0 w2 4\nw3\tw4\t1\nw5\tw6\t2\nw0\tnothere\t1\n")
    caplog.clear()
    with caplog.at_level("WARNING", logger="gensim_bits.evaluation"):
        pearson, spearman, oov = packed.evaluate_word_pairs(pairs)
    assert "skipped 1 malformed lines" in caplog.text and oov == pytest.approx(25.0)
    assert spearman.statistic == pytest.approx(evaluate(packed, similarity=[pairs], verbose=False)
                                               ["similarity"]["p.tsv"]["spearman"])
    with pytest.raises(ValueError, match="no word pairs"):
        packed.evaluate_word_pairs(write(tmp_path / "bad.tsv", "a b c\n"))


# -- the rare-word view: similarity by frequency band -------------------------------------

@pytest.fixture(scope="module")
def lee_vectors_and_counts():
    """gensim's own test vectors (fastText on the Lee corpus) and the corpus's word counts."""
    from collections import Counter

    from gensim.test.utils import datapath
    vectors = KeyedVectors.load_word2vec_format(datapath("lee_fasttext.vec"))
    with open(datapath("lee_background.cor"), encoding="utf-8") as lines:
        counts = Counter(word for line in lines for word in line.split())
    return vectors, dict(counts)


def test_each_band_scores_as_a_file_of_its_own_pairs(tmp_path, lee_vectors_and_counts):
    from gensim.test.utils import datapath
    vectors, counts = lee_vectors_and_counts
    edges = (10, 30)
    whole = evaluate(vectors, similarity=[datapath("wordsim353.tsv")], by_frequency=edges, counts=counts,
                     case_insensitive=False, verbose=False)["similarity"]["wordsim353.tsv"]
    bands = whole["by_frequency"]
    assert [band["band"] for band in bands] == ["< 10", "10-30", ">= 30"]
    assert sum(band["pairs"] for band in bands) == whole["pairs"]
    # Split the file by hand, by the count of the pair's more frequent word.
    files = {name: [] for name in ("< 10", "10-30", ">= 30")}
    for line in open(datapath("wordsim353.tsv"), encoding="utf-8"):
        if line.startswith("#"):
            continue
        first, second, score = line.rstrip("\n").split("\t")
        if first not in vectors.key_to_index or second not in vectors.key_to_index:
            continue
        top = max(counts.get(first, 0), counts.get(second, 0))
        files["< 10" if top < 10 else "10-30" if top < 30 else ">= 30"].append(line)
    for band in bands:
        assert band["pairs"] == len(files[band["band"]]) >= 5
        path = write(tmp_path / "band.tsv", "".join(files[band["band"]]))
        alone = evaluate(vectors, similarity=[path], case_insensitive=False, verbose=False)["similarity"]["band.tsv"]
        assert band["spearman"] == pytest.approx(alone["spearman"])
        assert band["pearson"] == pytest.approx(alone["pearson"])


def test_bands_read_the_counts_a_model_or_packed_file_carries(tmp_path, tiny_vectors, capsys):
    tiny_vectors.set_vecattr("man", "count", 50)  # allocates counts of 0 for the rest
    for word, count in [("woman", 3), ("king", 40), ("queen", 2), ("apple", 1)]:
        tiny_vectors.set_vecattr(word, "count", count)
    pairs = write(tmp_path / "p.tsv", "man\tking\t7\nwoman\tqueen\t8\nman\tapple\t1\nqueen\tapple\t5\n"
                                      "woman\tapple\t2\n")
    packed = QuantizedKeyedVectors.from_keyed_vectors(tiny_vectors, bits=8, quantize=True)
    for vectors in (tiny_vectors, packed):
        bands = evaluate(vectors, similarity=pairs, by_frequency=[10], verbose=True)["similarity"]["p.tsv"]
        rare, common = bands["by_frequency"]
        assert (rare["band"], rare["pairs"], common["band"], common["pairs"]) == ("< 10", 3, ">= 10", 2)
    assert "count < 10" in capsys.readouterr().out


def test_bands_refuse_vectors_without_real_counts(tmp_path, lee_vectors_and_counts):
    from gensim.test.utils import datapath
    vectors, _ = lee_vectors_and_counts  # gensim made up its counts (rank order) when loading it
    with pytest.raises(ValueError, match="needs corpus counts"):
        evaluate(vectors, similarity=[datapath("wordsim353.tsv")], by_frequency=[10], verbose=False)


@pytest.mark.parametrize("edges", [[], [0], [10, 10], [100, 10], [float("nan")], [True], "100", 5])
def test_bad_band_edges(tmp_path, tiny_vectors, edges):
    pairs = write(tmp_path / "p.tsv", "man\tking\t7\n")
    with pytest.raises((ValueError, TypeError), match="by_frequency"):
        evaluate(tiny_vectors, similarity=pairs, by_frequency=edges, counts={"man": 1}, verbose=False)


def test_counts_without_bands_or_of_the_wrong_kind(tmp_path, tiny_vectors):
    pairs = write(tmp_path / "p.tsv", "man\tking\t7\n")
    with pytest.raises(ValueError, match="only used with by_frequency"):
        evaluate(tiny_vectors, similarity=pairs, counts={"man": 1}, verbose=False)
    with pytest.raises(TypeError, match="counts must map"):
        evaluate(tiny_vectors, similarity=pairs, by_frequency=[5], counts=[1, 2], verbose=False)
    with pytest.raises(ValueError, match="finite and >= 0"):
        evaluate(tiny_vectors, similarity=pairs, by_frequency=[5], counts={"man": -1}, verbose=False)
