"""Reference text classifiers of Acharya et al. (AAAI 2019), Section 4.1: DAN and LSTM.

DAN is the deep averaging network of Iyyer et al. (ACL 2015): the mean of the word vectors of
the non-padding tokens, fully connected 1024 and 512, softmax; the paper trains it with
dropout 0.4 and L2 0.005, from random ("DAN-RAND") or pretrained embeddings (here l2 defaults
to 1e-4: the paper's value as a Keras L2 stops the network from learning; see ``dan``). The LSTM feeds its
final hidden state to a softmax and starts from GloVe.
"""

import keras
import numpy as np

__all__ = ["dan", "lstm_classifier"]


def _embedding(vocab_size, embedding_dim, embeddings, trainable_embeddings, mask_zero, l2=None):
    """A ``keras.layers.Embedding``, optionally initialized from a pretrained matrix."""
    if embeddings is not None:
        embeddings = np.asarray(embeddings, dtype="float32")
        if embeddings.ndim != 2 or embeddings.shape[0] != vocab_size:
            raise ValueError(
                f"embeddings must have shape (vocab_size={vocab_size}, dim), got {embeddings.shape}"
            )
        if embedding_dim is not None and embedding_dim != embeddings.shape[1]:
            raise ValueError(f"embedding_dim={embedding_dim} but the embeddings have {embeddings.shape[1]} columns")
        embedding_dim = embeddings.shape[1]
    if not isinstance(vocab_size, int) or vocab_size < 2:
        raise ValueError(f"vocab_size must be an int >= 2, got {vocab_size!r}")
    return keras.layers.Embedding(
        vocab_size,
        embedding_dim,
        mask_zero=mask_zero,
        embeddings_regularizer=keras.regularizers.L2(l2) if l2 else None,
        # Passed as weights (not a Constant initializer) so the matrix is not copied into the
        # model's JSON config.
        weights=None if embeddings is None else [embeddings],
        trainable=trainable_embeddings,
        name="embedding",
    )


def _check_classes(num_classes):
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")


def dan(
    vocab_size,
    num_classes,
    embedding_dim=300,
    hidden=(1024, 512),
    dropout=0.4,
    l2=1e-4,
    embeddings=None,
    trainable_embeddings=True,
    mask_zero=True,
    sequence_length=None,
    name="dan",
):
    """Deep averaging network: masked mean of word embeddings, ReLU layers, softmax.

    Args:
        vocab_size: rows of the embedding (index 0 is padding when ``mask_zero``).
        num_classes: softmax size.
        embedding_dim: embedding size (taken from ``embeddings`` when given).
        hidden: sizes of the fully connected ReLU layers (paper: 1024, 512).
        dropout: dropout rate after the average and after each hidden layer (paper: 0.4).
        l2: L2 weight of the hidden and output kernels; 0 disables it. The default, 1e-4,
            learns at Adam's default rate (benchmarks/results/classifier_defaults_*.json). The
            paper's 0.005 (``l2=0.005``) is an option, but as a Keras ``L2`` (a sum of
            squares added to the mean loss) it outweighs the data term and the network
            predicts one class (test accuracy 0.491 on Rotten Tomatoes, the majority rate).
        embeddings: optional pretrained (vocab_size, dim) matrix; random ("DAN-RAND") otherwise.
        trainable_embeddings: whether the embedding trains.
        mask_zero: average over non-padding tokens only.
        sequence_length: fixed input length, or ``None`` for any length.
        name: model name.

    Input: int token ids ``(batch, sequence_length)``. Output: class probabilities
    ``(batch, num_classes)``.

    Example:

    ```python
    from keras_compress.models import dan

    model = dan(vocab_size=20000, num_classes=2)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    paper = dan(vocab_size=20000, num_classes=2, l2=0.005)   # the paper's setting
    ```
    """
    _check_classes(num_classes)
    regularizer = keras.regularizers.L2(l2) if l2 else None
    tokens = keras.Input((sequence_length,), dtype="int32", name="tokens")
    x = _embedding(vocab_size, None if embeddings is not None else embedding_dim, embeddings, trainable_embeddings, mask_zero)(tokens)
    x = keras.layers.GlobalAveragePooling1D(name="average")(x)  # uses the padding mask
    x = keras.layers.Dropout(dropout)(x)
    for index, units in enumerate(hidden):
        x = keras.layers.Dense(units, activation="relu", kernel_regularizer=regularizer, name=f"hidden_{index}")(x)
        x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", kernel_regularizer=regularizer, name="classes")(x)
    return keras.Model(tokens, outputs, name=name)


def lstm_classifier(
    vocab_size,
    num_classes,
    embedding_dim=300,
    units=128,
    embeddings=None,
    trainable_embeddings=True,
    mask_zero=True,
    dropout=0.0,
    sequence_length=None,
    unroll=False,
    name="lstm_classifier",
):
    """An LSTM over word embeddings whose final hidden state feeds a softmax.

    Args:
        vocab_size: rows of the embedding (index 0 is padding when ``mask_zero``).
        num_classes: softmax size.
        embedding_dim: embedding size (taken from ``embeddings`` when given).
        units: LSTM hidden size.
        embeddings: optional pretrained (vocab_size, dim) matrix such as GloVe (the paper's).
        trainable_embeddings: whether the embedding trains.
        mask_zero: skip padding steps, so the final state is that of the last real token.
        dropout: dropout on the final state.
        sequence_length: fixed input length; required with ``unroll=True``.
        unroll: unroll the recurrence (needed for a TFLite export with a dynamic batch size;
            otherwise export with ``export_tflite(..., batch_size=1)``).
        name: model name.

    Input: int token ids ``(batch, sequence_length)``. Output: class probabilities.

    Example:

    ```python
    import numpy as np
    from keras_compress.models import lstm_classifier

    # GloVe rows for your vocabulary: keras_compress.models.datasets.pretrained_matrix(vocabulary, path)
    glove_matrix = np.random.default_rng(0).normal(size=(20000, 50)).astype("float32")
    model = lstm_classifier(20000, 6, embeddings=glove_matrix, sequence_length=40, unroll=True)
    ```
    """
    _check_classes(num_classes)
    if unroll and sequence_length is None:
        raise ValueError("unroll=True needs a fixed sequence_length")
    tokens = keras.Input((sequence_length,), dtype="int32", name="tokens")
    x = _embedding(vocab_size, None if embeddings is not None else embedding_dim, embeddings, trainable_embeddings, mask_zero)(tokens)
    x = keras.layers.LSTM(units, unroll=unroll, name="lstm")(x)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="classes")(x)
    return keras.Model(tokens, outputs, name=name)
