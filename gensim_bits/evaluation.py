"""Word-similarity (Spearman) and analogy (3CosAdd, 3CosMul of Levy & Goldberg 2014, equations
3 and 4, epsilon 0.001) evaluation in one call, for gensim KeyedVectors and packed vectors alike.

Analogies are scored in batches: the cosines of every vocabulary row with every word that
occurs in a question are computed once, chunk by chunk (a matrix product for float vectors,
the popcount kernel for :class:`~gensim_bits.QuantizedKeyedVectors`), and both objectives
are maximized over the chunk for many questions at once. gensim's ``evaluate_word_analogies``
scores only 3CosAdd, one question at a time.

Example::

    >>> from gensim_bits import evaluate
    >>> results = evaluate(model.wv, similarity=["ws353.tsv"], analogies=["google.txt"])
    >>> results["analogies"]["google.txt"]["total"]["accuracy_3cosmul"]
"""
from __future__ import annotations

import codecs
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any
import time

import numpy as np
from scipy import stats

from gensim_bits import packing
from gensim_bits.keyedvectors import QuantizedKeyedVectors
from gensim_bits.search_inner import dots_with_rows

logger = logging.getLogger(__name__)

EPSILON = 0.001  # Levy & Goldberg 2014, section 6
VOCABULARY_CHUNK = 4096
QUESTION_BATCH = 2048


def _cosine_function(vectors):
    """``cosines(indices, start, end)`` -> (end - start, len(indices)) cosines, for either kind."""
    if isinstance(vectors, QuantizedKeyedVectors):
        return _PackedCosines(vectors)
    normed = vectors.get_normed_vectors().astype(np.float32)
    return lambda indices, start, end: normed[start:end] @ normed[np.asarray(indices)].T


def _exact_cosines(dots, squared_norm_products):
    """cos = dot / sqrt(|x|^2 |y|^2), computed as sign(dot) * sqrt(dot^2 / (|x|^2 |y|^2)).

    With integer dots and squared norms (exact in float64 below 2**53) every operation is
    one correctly rounded step of an exact rational, so two cosines equal as real numbers
    are equal floats, on any CPU: exact ties stay ties.
    """
    return np.copysign(np.sqrt(dots * dots / squared_norm_products), dots)


class _PackedCosines:
    """Cosines of packed vectors from exact integer dot products (the popcount kernel, no BLAS).

    Dots and squared norms are integers in units of the level step squared; see
    :func:`_exact_cosines`. Exact for ``dimension * (2**bits - 1)**2 < 2**26`` (e.g. 1,400
    dimensions at 8 bits, any practical size below); above that still deterministic.
    """

    def __init__(self, vectors):
        self.codes, self.bits, self.dimension = vectors.codes, vectors.bits, vectors.vector_size
        self.plane_bytes = packing.plane_bytes(self.dimension)
        unit_squared = packing.level_unit(self.bits) ** 2
        self.squared_norms = np.rint(packing.squared_norms(self.codes, self.bits, self.dimension) / unit_squared)

    def dots(self, indices, start, end):
        """Integer dot products (end - start, len(indices)), as float64."""
        return dots_with_rows(np.ascontiguousarray(self.codes[start:end]), np.ascontiguousarray(self.codes[indices]),
                              self.bits, self.plane_bytes, self.dimension, 1.0)

    def __call__(self, indices, start, end):
        indices = np.asarray(indices, dtype=np.int64)
        products = self.squared_norms[start:end, None] * self.squared_norms[indices][None, :]
        return _exact_cosines(self.dots(indices, start, end), products)


def _restricted_vocabulary(vectors, restrict_vocab, case_insensitive):
    """gensim's rule: the first ``restrict_vocab`` words; upper-cased, the first variant wins.

    Returns the lookup (word -> row) and, for every row, the row of its canonical variant.
    """
    keys = vectors.index_to_key[:restrict_vocab]
    if case_insensitive:
        def normalize(word):
            return word.upper() if isinstance(word, str) else word  # keys may be any hashable
    else:
        def normalize(word):
            return word
    lookup = {}
    for row, key in enumerate(keys):
        lookup.setdefault(normalize(key), row)
    canonical = np.array([lookup[normalize(key)] for key in keys], dtype=np.int64)
    return lookup, canonical, normalize


def _text_lines(path, encoding="utf-8"):
    """(line number, line without its end) of a text file; a decoding error names its line."""
    name = "UTF-8" if codecs.lookup(encoding).name == "utf-8" else encoding
    with open(path, "rb") as lines:
        for number, raw in enumerate(lines, 1):
            try:
                yield number, raw.decode(encoding).rstrip("\r\n")
            except UnicodeDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid {name} ({error.reason} at byte {error.start})") from None


def _report_malformed(path, kind, valid, malformed, expected):
    """Skip malformed lines as gensim does, but never silently; a file with no valid line raises."""
    if not valid and not malformed:
        raise ValueError(f"{path} holds no {kind}; expected {expected}")
    if not malformed:
        return
    number, line = malformed[0]
    if not valid:
        raise ValueError(f"{path} holds no {kind}: {len(malformed)} malformed lines, the first "
                         f"(line {number}) is {line[:80]!r}; expected {expected}")
    logger.warning("%s: skipped %d malformed lines (expected %s), the first is line %d: %r",
                   path, len(malformed), expected, number, line[:80])


def _read_pairs(path, lookup, normalize, delimiter="\t", encoding="utf-8"):
    """(rows a, rows b, gold scores, gold scores of the out-of-vocabulary pairs) of a word-pair file."""
    rows_a, rows_b, gold, oov_gold, malformed = [], [], [], [], []
    for number, line in _text_lines(path, encoding):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(delimiter)
        try:
            first, second, score = parts
            score = float(score)
        except ValueError:
            score = None
        if score is None or not np.isfinite(score) or not first or not second:
            malformed.append((number, line))
            continue
        first, second = normalize(first), normalize(second)
        if first not in lookup or second not in lookup:
            oov_gold.append(score)
            continue
        rows_a.append(lookup[first])
        rows_b.append(lookup[second])
        gold.append(score)
    expected = f"'word1{delimiter!r}word2{delimiter!r}score'" if delimiter != "\t" else "'word1<TAB>word2<TAB>score'"
    _report_malformed(path, "word pairs", len(gold) + len(oov_gold), malformed, expected)
    return rows_a, rows_b, gold, oov_gold


def pair_similarities(path, lookup, normalize, cosines, delimiter="\t", encoding="utf-8"):
    """(gold scores, model cosines, gold scores of out-of-vocabulary pairs) of a word-pair file.

    The one reader of word-pair files, used by :func:`evaluate` and by
    :meth:`QuantizedKeyedVectors.evaluate_word_pairs <gensim_bits.QuantizedKeyedVectors.evaluate_word_pairs>`:
    blank and ``#`` lines are skipped; a line that is not three fields with a finite score
    is skipped with a warning naming the first such line, and a file with no valid line raises.
    """
    rows_a, rows_b, gold, oov_gold = _read_pairs(path, lookup, normalize, delimiter, encoding)
    return gold, _pair_cosines(rows_a, rows_b, cosines), oov_gold


def _pair_cosines(rows_a, rows_b, cosines):
    return [float(cosines([b], a, a + 1)[0, 0]) for a, b in zip(rows_a, rows_b)]


def _correlations(gold, model):
    result = {"pairs": len(gold), "spearman": float("nan"), "pearson": float("nan")}
    # Fewer than 2 pairs, or constant scores, have no correlation (nan, without scipy's warning).
    if len(gold) >= 2 and np.ptp(gold) > 0 and np.ptp(model) > 0:
        result["spearman"] = float(stats.spearmanr(gold, model)[0])
        result["pearson"] = float(stats.pearsonr(gold, model)[0])
    return result


def evaluate_similarity(path, lookup, normalize, cosines, row_counts=None, edges=()):
    rows_a, rows_b, gold, oov_gold = _read_pairs(path, lookup, normalize)
    model = _pair_cosines(rows_a, rows_b, cosines)
    total = len(gold) + len(oov_gold)
    result = dict(_correlations(gold, model), total=total, coverage=len(gold) / total if total else 0.0)
    if row_counts is not None:
        result["by_frequency"] = _frequency_bands(rows_a, rows_b, gold, model, row_counts, edges)
    return result


def _frequency_bands(rows_a, rows_b, gold, model, row_counts, edges):
    """Correlations of the pairs in each band of corpus frequency.

    A pair belongs to the band of its more frequent word, so the band below ``edges[0]``
    holds the pairs whose words are *both* rarer than ``edges[0]``.
    """
    pair_counts = np.maximum(row_counts[np.asarray(rows_a, dtype=np.int64)],
                             row_counts[np.asarray(rows_b, dtype=np.int64)])
    band_of_pair = np.searchsorted(np.asarray(edges, dtype=np.float64), pair_counts, side="right")
    gold, model = np.asarray(gold, dtype=np.float64), np.asarray(model, dtype=np.float64)
    bounds = [0] + list(edges) + [None]
    bands = []
    for band, (low, high) in enumerate(zip(bounds, bounds[1:])):
        mask = band_of_pair == band
        name = f"< {high:g}" if low == 0 else (f">= {low:g}" if high is None else f"{low:g}-{high:g}")
        bands.append(dict(_correlations(gold[mask].tolist(), model[mask].tolist()),
                          band=name, low=low, high=high))
    return bands


def frequency_counts(vectors: Any, counts: Mapping[str, float] | None = None) -> np.ndarray:
    """Corpus count of every row of ``vectors`` (float64), for :func:`evaluate`'s ``by_frequency``.

    ``counts`` maps a word to its count (words it lacks count 0); without it, the counts the
    vectors carry (a trained model's, or a packed file's). gensim invents counts
    (vocabulary size minus rank) for vectors loaded from a word2vec file without a vocabulary
    file; those are refused rather than read as frequencies.
    """
    keys = vectors.index_to_key
    if counts is not None:
        if not hasattr(counts, "get"):
            raise TypeError(f"counts must map words to counts (a dict), got {type(counts).__name__}")
        values = np.array([counts.get(key, 0) for key in keys], dtype=np.float64)
    else:
        carried = getattr(vectors, "counts", None)  # QuantizedKeyedVectors
        if carried is None and hasattr(vectors, "expandos"):
            carried = vectors.expandos.get("count")
        values = np.asarray(carried if carried is not None else [], dtype=np.float64)
        if (len(values) != len(keys) or not values.any()
                or np.array_equal(values, np.arange(len(keys), 0, -1))):
            raise ValueError("by_frequency needs corpus counts: these vectors carry none (a word2vec file "
                             "keeps none without its vocabulary file); pass counts={word: count}")
    if not np.all(np.isfinite(values)) or (values < 0).any():
        raise ValueError("word counts must be finite and >= 0")
    return values


def check_edges(edges: Sequence[float]) -> list[float]:
    """``by_frequency`` band edges: a non-empty increasing sequence of positive numbers."""
    if isinstance(edges, (str, bytes)) or not hasattr(edges, "__iter__"):
        raise TypeError(f"by_frequency must be a sequence of counts, e.g. (100, 1000), got {edges!r}")
    edges = list(edges)
    if not edges or any(isinstance(edge, bool) or not isinstance(edge, (int, float, np.integer, np.floating))
                        or not np.isfinite(edge) or edge <= 0 for edge in edges) \
            or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"by_frequency must be increasing positive counts, e.g. (100, 1000), got {edges!r}")
    return [float(edge) for edge in edges]


def _read_questions(path, lookup, normalize):
    """Read an analogy file: the one reader, for :func:`evaluate` and ``evaluate_word_analogies``.

    Returns ``(sections, questions, parsed)``: the section names; an int64 array
    (in-vocabulary questions, 6) of section, a, b, c, expected rows and the question's
    position in ``parsed``; and ``parsed``, every well-formed question in file order as
    ``(section, (a, b, c, expected))`` with the words normalized. Blank lines are skipped; a
    line that is not 4 words, or a question before the first ``: section`` line, is skipped
    with a warning naming the first such line, and a file with no question raises.
    """
    sections, questions, parsed, malformed = [], [], [], []
    for number, line in _text_lines(path):
        if line.startswith(": "):
            sections.append(line[2:].strip())
            continue
        words = line.split()
        if not words:
            continue
        if len(words) != 4 or not sections:
            malformed.append((number, line))
            continue
        words = tuple(normalize(word) for word in words)
        if all(word in lookup for word in words):
            questions.append([len(sections) - 1] + [lookup[word] for word in words] + [len(parsed)])
        parsed.append((len(sections) - 1, words))
    _report_malformed(path, "analogy questions", len(parsed), malformed, "': section' lines, then 4 words a line")
    return sections, np.array(questions, dtype=np.int64).reshape(-1, 6), parsed


def _exclusions(questions, canonical):
    """(question, row) pairs that may not answer a question: its three words and their case variants."""
    variants = {}
    for row in np.flatnonzero(canonical != np.arange(len(canonical))):
        variants.setdefault(int(canonical[row]), []).append(int(row))
    pairs = []
    for number, (_, a, b, c, *_) in enumerate(questions.tolist()):
        for word in {a, b, c}:
            pairs.extend((number, row) for row in [word] + variants.get(word, []))
    pairs = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    return pairs[np.argsort(pairs[:, 0], kind="stable")]


def answer_analogies(questions, canonical, cosines, vocabulary_size, epsilon=EPSILON):
    """Rows predicted by 3CosAdd and 3CosMul for every question (a:b :: c:?); -1 where no row is left.

    3CosAdd: argmax cos(x, b) - cos(x, a) + cos(x, c). 3CosMul: argmax
    cos'(x, b) cos'(x, c) / (cos'(x, a) + epsilon) with cos' = (1 + cos) / 2. Both over the
    first ``vocabulary_size`` rows, the question words and their case variants excluded.

    Tied scores go to the lower row, always: argmax takes the first maximum of a chunk and a
    later chunk must score strictly higher. For packed vectors every score is a fixed sequence
    of float64 operations on exact integer dot products and squared norms (no BLAS), so the
    answers are the same on every CPU and thread count. 3CosMul uses the exact cosines of
    :func:`_exact_cosines` (in float32, as for float vectors). 3CosAdd ranks x by (sum of +-dot(x, w) / |w|) / |x|, the dots of
    question words with equal norms summed as integers first: rows with equal norms whose
    combined dots are equal tie exactly (at one bit every question is of this kind). Float
    vectors are scored with a BLAS matrix product, as in gensim, so candidates whose float
    cosines tie only up to rounding may be ordered differently on another machine.
    """
    count = len(questions)
    exact = isinstance(cosines, _PackedCosines)
    order = None
    if exact and count:
        # Questions grouped by which of their words share a norm, so that each kind of question
        # is a contiguous run with its own formula (see _add_numerators).
        kinds = _norm_kinds(cosines.squared_norms[questions[:, 1:4]])
        order = np.argsort(kinds, kind="stable")
        questions, kinds = questions[order], kinds[order]
    best = {name: (np.full(count, -np.inf), np.full(count, -1, dtype=np.int64)) for name in ("3cosadd", "3cosmul")}
    if count == 0:
        return {name: rows for name, (_, rows) in best.items()}
    words, positions = np.unique(questions[:, 1:4], return_inverse=True)
    positions = positions.reshape(-1, 3)
    excluded = _exclusions(questions, canonical)
    # Packed scores are float32 while every integer dot and sum of three is exact in it (below
    # 2**24: any dimension at 1-2 bits, up to 24,000 at 4 bits, 86 at 8), float64 beyond.
    dtype = np.float32
    if exact and 3 * float(cosines.squared_norms.max(initial=0)) >= 2**24:
        dtype = np.float64
    batch = QUESTION_BATCH if dtype == np.float32 else max(1, QUESTION_BATCH // 2)
    for start in range(0, vocabulary_size, VOCABULARY_CHUNK):
        end = min(start + VOCABULARY_CHUNK, vocabulary_size)
        # (question words, chunk rows): gathering whole rows per question is a contiguous copy.
        if exact:  # one kernel pass: the integer dots give both the cosines and 3CosAdd
            dots = np.ascontiguousarray(cosines.dots(words, start, end).T)
            word_norms = cosines.squared_norms[words]
            chunk_norms = cosines.squared_norms[start:end]
            # 2 cos' = 1 + cos; exact cosines equal as reals are equal floats, in float32 too.
            shifted = (1.0 + _exact_cosines(dots, word_norms[:, None] * chunk_norms[None, :])).astype(np.float32)
            dots = dots.astype(dtype)
            inverse_chunk_norms = (1.0 / np.sqrt(chunk_norms)).astype(dtype)
            inverse_word_norms = (1.0 / np.sqrt(word_norms)).astype(dtype)
        else:
            shifted = np.ascontiguousarray((1.0 + cosines(words, start, end)).T)
        for first in range(0, count, batch):
            last = min(first + batch, count)
            cos_a, cos_b, cos_c = (shifted[positions[first:last, k]] for k in range(3))
            if exact:
                add = np.empty(cos_a.shape, dtype)
                runs = np.flatnonzero(np.diff(kinds[first:last])) + 1
                for low, high in zip(np.concatenate([[0], runs]), np.concatenate([runs, [last - first]])):
                    picked = positions[first + low:first + high]
                    add[low:high] = _add_numerators(kinds[first + low], [dots[picked[:, k]] for k in range(3)],
                                                    [inverse_word_norms[picked[:, k]][:, None] for k in range(3)])
                add *= inverse_chunk_norms
            else:
                add = cos_b + cos_c  # the +1 shifts cancel up to a constant
                add -= cos_a
            cos_a *= 2.0
            cos_a += 4.0 * epsilon
            cos_b *= cos_c
            cos_b /= cos_a  # = cos'b cos'c / (cos'a + eps)
            scores = {"3cosadd": add, "3cosmul": cos_b}
            low, high = np.searchsorted(excluded[:, 0], [first, last])
            pairs = excluded[low:high]
            pairs = pairs[(pairs[:, 1] >= start) & (pairs[:, 1] < end)]
            for name, score in scores.items():
                score[pairs[:, 0] - first, pairs[:, 1] - start] = -np.inf
                chunk_rows = score.argmax(axis=1)
                chunk_values = score[np.arange(last - first), chunk_rows]
                values, rows = best[name]
                better = chunk_values > values[first:last]
                values[first:last][better] = chunk_values[better]
                rows[first:last][better] = chunk_rows[better] + start
    answers = {name: rows for name, (_, rows) in best.items()}
    if order is not None:
        for name, rows in answers.items():
            answers[name] = np.empty_like(rows)
            answers[name][order] = rows
    return answers


# Which words of a question (a, b, c) share a norm: none, all, a and b, a and c, b and c.
DISTINCT, ALL_EQUAL, A_IS_B, A_IS_C, B_IS_C = range(5)


def _norm_kinds(squared_norms):
    """The kind of each question from the squared norms (questions, 3) of a, b and c."""
    a, b, c = squared_norms.T
    kinds = np.full(len(squared_norms), DISTINCT, dtype=np.int8)
    kinds[b == c] = B_IS_C
    kinds[a == c] = A_IS_C
    kinds[a == b] = A_IS_B
    kinds[(a == b) & (b == c)] = ALL_EQUAL
    return kinds


def _add_numerators(kind, dots, inverse_norms):
    """3CosAdd times |x| for questions of one kind: dot(x, b)/|b| + dot(x, c)/|c| - dot(x, a)/|a|,
    the integer dots of words with equal norms summed before the one division they share."""
    (dot_a, dot_b, dot_c), (scale_a, scale_b, scale_c) = dots, inverse_norms
    if kind == ALL_EQUAL:
        return (dot_b + dot_c - dot_a) * scale_b
    if kind == A_IS_B:
        return (dot_b - dot_a) * scale_b + dot_c * scale_c
    if kind == A_IS_C:
        return dot_b * scale_b + (dot_c - dot_a) * scale_c
    if kind == B_IS_C:
        return (dot_b + dot_c) * scale_b - dot_a * scale_a
    return dot_b * scale_b + dot_c * scale_c - dot_a * scale_a


def answered_correctly(rows, questions, canonical):
    """Boolean per question: the predicted row is (a case variant of) the expected word."""
    return (rows >= 0) & (canonical[np.maximum(rows, 0)] == questions[:, 4])


def evaluate_analogies(path, lookup, normalize, canonical, cosines):
    sections, questions, parsed = _read_questions(path, lookup, normalize)
    total = len(parsed)
    predicted = answer_analogies(questions, canonical, cosines, len(canonical))
    correct = {name: answered_correctly(rows, questions, canonical) for name, rows in predicted.items()}

    def summary(name, mask):
        answered = int(mask.sum())
        result = {"section": name, "questions": answered}
        for method, hits in correct.items():
            result[f"correct_{method}"] = int(hits[mask].sum())
            result[f"accuracy_{method}"] = float(hits[mask].mean()) if answered else 0.0
        return result

    per_section = [summary(name, questions[:, 0] == number) for number, name in enumerate(sections)]
    overall = summary("total", np.ones(len(questions), dtype=bool))
    return {"sections": per_section, "total": overall, "questions_in_file": total,
            "coverage": len(questions) / total if total else 0.0}


def evaluate(vectors: Any, similarity: str | os.PathLike | Sequence[str | os.PathLike] = (),
             analogies: str | os.PathLike | Sequence[str | os.PathLike] = (), restrict_vocab: int = 300000,
             case_insensitive: bool = True, verbose: bool = True, by_frequency: Sequence[float] | None = None,
             counts: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Score word vectors on word-similarity and analogy files in one call.

    Args:
        vectors: gensim ``KeyedVectors``, :class:`~gensim_bits.QuantizedKeyedVectors`, or a
            model with ``.wv`` (e.g. :class:`~gensim_bits.Word2Bits`).
        similarity: paths of word-pair files (``# comment`` lines, then ``word1<TAB>word2<TAB>score``),
            as gensim's ``evaluate_word_pairs`` reads them.
        analogies: paths of analogy files (``: section`` headers, then 4 words a line).
        restrict_vocab: only the first ``restrict_vocab`` words are looked up and searched.
        case_insensitive: compare words upper-cased, the first (most frequent) variant wins.
        verbose: print the result table.
        by_frequency: increasing corpus counts, e.g. ``(100, 1000)``: also score each similarity
            file's pairs by frequency band: pairs whose words are both rarer than 100, those
            whose more frequent word occurs 100-999 times, and the rest (the rare-word view).
        counts: with ``by_frequency``, ``{word: corpus count}``; by default the counts the
            vectors carry (a trained model's or a packed file's).

    Returns:
        ``{"similarity": {file name: {"spearman", "pearson", "pairs", "total", "coverage"}},
        "analogies": {file name: {"sections": [...], "total": {...}, "questions_in_file",
        "coverage"}}, "seconds": ...}``; each section and the total hold ``questions``,
        ``correct_3cosadd``, ``accuracy_3cosadd``, ``correct_3cosmul``, ``accuracy_3cosmul``.
        Pairs and questions with out-of-vocabulary words are skipped and lower the coverage.
        With ``by_frequency``, each similarity entry also holds ``"by_frequency"``: a list of
        ``{"band", "low", "high", "pairs", "spearman", "pearson"}``, rarest band first.
    """
    vectors = getattr(vectors, "wv", vectors)
    if isinstance(similarity, (str, os.PathLike)):
        similarity = [similarity]
    if isinstance(analogies, (str, os.PathLike)):
        analogies = [analogies]
    if not similarity and not analogies:
        raise ValueError("give at least one word-pair file (similarity=) or analogy file (analogies=)")
    for path in list(similarity) + list(analogies):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"evaluation file not found: {path}")
    edges = check_edges(by_frequency) if by_frequency is not None else ()
    if by_frequency is None and counts is not None:
        raise ValueError("counts is only used with by_frequency")
    started = time.perf_counter()
    lookup, canonical, normalize = _restricted_vocabulary(vectors, restrict_vocab, case_insensitive)
    row_counts = frequency_counts(vectors, counts)[:len(canonical)] if edges else None
    cosines = _cosine_function(vectors)
    results: dict[str, Any] = {
        "similarity": {os.path.basename(path): evaluate_similarity(path, lookup, normalize, cosines,
                                                                   row_counts, edges)
                       for path in similarity},
        "analogies": {os.path.basename(path): evaluate_analogies(path, lookup, normalize, canonical, cosines)
                      for path in analogies},
    }
    results["seconds"] = time.perf_counter() - started
    if verbose:
        print(format_results(results))
    return results


def format_results(results):
    """The result dict of :func:`evaluate` as a plain-text table."""
    lines = []
    if results["similarity"]:
        lines.append(f"{'word similarity':<34} {'spearman':>8} {'pearson':>8} {'pairs':>11} {'coverage':>8}")
        for name, row in results["similarity"].items():
            lines.append(f"{name:<34} {row['spearman']:>8.4f} {row['pearson']:>8.4f} "
                         f"{row['pairs']:>5}/{row['total']:<5} {row['coverage']:>8.1%}")
            for band in row.get("by_frequency", []):
                lines.append(f"  {'count ' + band['band']:<32} {band['spearman']:>8.4f} {band['pearson']:>8.4f} "
                             f"{band['pairs']:>5}")
    for name, result in results["analogies"].items():
        lines.append(f"{'analogies ' + name:<34} {'3CosAdd':>8} {'3CosMul':>8} {'questions':>11} {'coverage':>8}")
        for row in result["sections"] + [result["total"]]:
            coverage = f"{result['coverage']:>8.1%}" if row is result["total"] else ""
            lines.append(f"  {row['section']:<32} {row['accuracy_3cosadd']:>8.1%} {row['accuracy_3cosmul']:>8.1%} "
                         f"{row['questions']:>11} {coverage}")
    return "\n".join(lines)
