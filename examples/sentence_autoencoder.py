"""Compress sentences into one vector each with the recursive autoencoder, then read them back.

    python examples/sentence_autoencoder.py [--vectors PATH] [--sentences PATH] [--epochs N]

Trains `keras_compress.rae.RecursiveAutoencoder` on short sentences of a tokenized
corpus (one sentence a line, gzip) with GloVe 50d vectors (a few minutes on a laptop
CPU), prints a few decoded sentences, a sub-span embedding, and reloads the model
from a `.keras` file. A few minutes of training only starts to recover words; the
paper trains for days (see docs/rae.md for what more training buys).
Exits cleanly when the data is missing.
"""

import argparse
import gzip
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DATA = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--vectors", default=os.path.join(DATA, "vectors", "glove6b50d_100k.txt.gz"),
                        help="word vectors in word2vec text format (.gz works)")
    parser.add_argument("--sentences", default=os.path.join(DATA, "corpus", "en25m.txt.gz"),
                        help="tokenized corpus, one sentence a line (.gz)")
    parser.add_argument("--max-length", type=int, default=8, help="longest sentence kept, in words")
    parser.add_argument("--count", type=int, default=5000, help="training sentences")
    parser.add_argument("--embedding-dim", type=int, default=128, help="size of the sentence vector")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs")
    args = parser.parse_args()
    for path in (args.vectors, args.sentences):
        if not os.path.exists(path):
            print(f"skipping: {path} not found")
            return 0

    import keras
    import numpy as np
    from gensim.models import KeyedVectors
    from keras import ops

    from keras_compress.rae import RecursiveAutoencoder, nearest_words, reconstruction_accuracy

    print(f"loading {args.vectors} and reading short sentences from {args.sentences} (a minute or so)...", flush=True)
    glove = KeyedVectors.load_word2vec_format(args.vectors, limit=50000)
    with gzip.open(args.sentences, "rt", encoding="utf-8") as handle:
        sentences = [line.split() for line in handle]
    sentences = [s for s in sentences if 3 <= len(s) <= args.max_length and all(w in glove.key_to_index for w in s)]
    chosen = np.random.default_rng(0).permutation(len(sentences))[: args.count + 100]
    train, held_out = [sentences[i] for i in chosen[:-100]], [sentences[i] for i in chosen[-100:]]
    print(f"{len(train)} training sentences, {len(held_out)} held out")

    def pad(batch):
        vectors = np.zeros((len(batch), args.max_length, glove.vector_size), dtype="float32")
        for row, tokens in enumerate(batch):
            vectors[row, : len(tokens)] = glove[tokens]
        return vectors, np.array([len(tokens) for tokens in batch])

    keras.utils.set_random_seed(0)
    model = RecursiveAutoencoder(word_dim=glove.vector_size, embedding_dim=args.embedding_dim, max_length=args.max_length)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    train_x, train_lengths = pad(train)
    model.fit((train_x, train_lengths), train_x, epochs=args.epochs, batch_size=32, verbose=2)

    test_x, test_lengths = pad(held_out)
    embeddings, spans = model.encode(test_x, test_lengths, return_spans=True)
    decoded = model.decode(embeddings, test_lengths)
    guesses = nearest_words(decoded, glove)
    for row in range(3):
        length = test_lengths[row]
        print("input:  ", " ".join(held_out[row]))
        print("decoded:", " ".join(guesses[row, :length]))
    # spans[b, t, i] embeds words i..i+t: here the first three words of sentence 0.
    print("embedding of", held_out[0][:3], "->", ops.convert_to_numpy(spans)[0, 2, 0][:5], "...")
    report = reconstruction_accuracy(decoded, held_out, glove)
    print(f"held-out words recovered: {report['word_accuracy']:.1%}, whole sentences: {report['sentence_accuracy']:.1%}")

    path = os.path.join(tempfile.mkdtemp(), "sentence_autoencoder.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    same = np.allclose(ops.convert_to_numpy(restored.encode(test_x, test_lengths)), ops.convert_to_numpy(embeddings), atol=1e-5)
    print(f"reloaded from {path}: same embeddings = {same}")
    return 0


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help shows this docstring as written and every option's default."""


if __name__ == "__main__":
    sys.exit(main())
