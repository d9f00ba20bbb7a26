"""Small loaders for the text-classification benchmarks and examples.

Reads ``label<TAB>text`` files, turns texts into padded integer sequences with
``keras.layers.TextVectorization``, and builds an embedding matrix for that vocabulary from
word vectors in word2vec format through gensim's ``KeyedVectors`` (Acharya et al., AAAI 2019,
Section 4.1 initializes the LSTM from GloVe).
"""

import os

import numpy as np

__all__ = ["read_tsv", "text_lines", "load_classification", "pretrained_matrix"]


def read_tsv(path, coarse_labels=False):
    """Read a ``label<TAB>text`` file.

    Args:
        path: the file.
        coarse_labels: keep the part of each label before the first ``:`` (TREC's
            ``DESC:manner`` -> ``DESC``, its 6 coarse classes).

    Returns:
        ``(labels, texts)``: two lists of strings.
    """
    labels, texts = [], []
    for number, line in text_lines(path):
        if not line:
            continue
        label, separator, text = line.partition("\t")
        if not separator or not label.strip():
            raise ValueError(f"{path}:{number}: expected 'label<TAB>text', got {line[:80]!r}")
        labels.append(label.split(":", 1)[0] if coarse_labels else label)
        texts.append(text)
    return labels, texts


def text_lines(path):
    """``(line number, line)`` of a UTF-8 text file, without the line end.

    Lines end at "\\n" only (a stray "\\r" inside a line does not split it, as text mode
    would), and bad UTF-8 raises ValueError naming the file and line.
    """
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid UTF-8 ({error.reason} at byte {error.start})") from None


def load_classification(directory, max_tokens=20000, sequence_length=50, coarse_labels=True, splits=("train", "dev", "test")):
    """Load ``{train,dev,test}.tsv`` from ``directory`` as padded int32 id arrays.

    The vocabulary (``TextVectorization``: lower-cased, punctuation stripped, index 0 padding,
    1 out-of-vocabulary) and the label set come from the first split.

    Returns:
        A dict with ``splits`` (name -> ``(x, y)``), ``vocabulary`` (list of tokens) and
        ``classes`` (list of label strings, index = class id).
    """
    import keras

    raw = {}
    for split in splits:
        path = os.path.join(directory, f"{split}.tsv")
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        raw[split] = read_tsv(path, coarse_labels=coarse_labels)
    first_labels, first_texts = raw[splits[0]]
    classes = sorted(set(first_labels))
    class_ids = {label: index for index, label in enumerate(classes)}
    vectorizer = keras.layers.TextVectorization(max_tokens=max_tokens, output_sequence_length=sequence_length)
    vectorizer.adapt(first_texts)
    data = {}
    for split, (labels, texts) in raw.items():
        unknown = sorted(set(labels) - set(class_ids))
        if unknown:
            raise ValueError(f"{split} has labels missing from {splits[0]}: {unknown[:5]}")
        x = np.asarray(keras.ops.convert_to_numpy(vectorizer(texts)), dtype=np.int32)
        y = np.asarray([class_ids[label] for label in labels], dtype=np.int32)
        data[split] = (x, y)
    return {"splits": data, "vocabulary": vectorizer.get_vocabulary(), "classes": classes}


def pretrained_matrix(vocabulary, path, limit=None, seed=0, scale=None):
    """An embedding matrix for ``vocabulary`` from word2vec-format vectors (e.g. GloVe).

    Row 0 (padding) is zero; words without a vector get random normal rows with the same
    standard deviation as the pretrained ones.

    Args:
        vocabulary: list of tokens, index = row.
        path: vectors in word2vec text or binary format (``.gz`` works).
        limit: read only the first ``limit`` vectors.
        seed: seed of the random rows.
        scale: standard deviation of the random rows (default: that of the vectors).

    Returns:
        ``(matrix, found)``: a float32 (len(vocabulary), dim) array and how many words had a vector.
    """
    from gensim_bits.word2vec_format import read_word2vec

    path = os.fspath(path)
    binary = path.endswith(".bin") or path.endswith(".bin.gz")
    # gensim's reader allocates what the header claims; this one checks it against the file.
    vectors = read_word2vec(path, binary=binary, limit=limit)
    rng = np.random.default_rng(seed)
    scale = float(np.std(vectors.vectors)) if scale is None else scale
    matrix = rng.normal(0.0, scale, size=(len(vocabulary), vectors.vector_size)).astype(np.float32)
    matrix[0] = 0.0
    found = 0
    for index, word in enumerate(vocabulary):
        if index > 0 and word in vectors.key_to_index:
            matrix[index] = vectors[word]
            found += 1
    return matrix, found
