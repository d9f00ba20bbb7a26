"""Compress sentences into one vector each with the recursive autoencoder, then read them back.

    python examples/sentence_autoencoder.py --data-dir ../shared/data [--count N] [--epochs N]
    python examples/sentence_autoencoder.py --vectors glove.txt.gz --sentences corpus.txt.gz

Samples short sentences from a tokenized corpus (one sentence a line, gzip) in one
streamed pass (memory holds the sample, not the corpus), trains
`keras_compress.rae.RecursiveAutoencoder` on them with GloVe 50d vectors in
length-bucketed batches, prints a few decoded held-out sentences, a sub-span
embedding, and reloads the model from a `.keras` file. The defaults take a few
minutes on a laptop CPU and start to recover words; docs/rae.md shows what longer
training buys.

The data: word vectors in word2vec text format and a tokenized English corpus, one
sentence a line. --data-dir DIR reads DIR/vectors/glove6b50d_100k.txt.gz (the 100k most
frequent words of GloVe 6B 50-d, public at nlp.stanford.edu/projects/glove as glove.6B.zip,
822 MB) and DIR/corpus/en25m.txt.gz (the project's own mix of public texts, not published
as one file; any tokenized corpus works). It downloads nothing: without them it stops with
one line.
"""

import argparse
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SHARED_VECTORS = os.path.join("vectors", "glove6b50d_100k.txt.gz")
SHARED_SENTENCES = os.path.join("corpus", "en25m.txt.gz")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--data-dir", default=None,
                        help=f"a local data folder holding {SHARED_VECTORS} and {SHARED_SENTENCES} "
                             "(the project's ../shared/data)")
    parser.add_argument("--vectors", default=None,
                        help="word vectors in word2vec text format (.gz works); default: the GloVe file under --data-dir")
    parser.add_argument("--sentences", default=None,
                        help="tokenized corpus, one sentence a line (.gz); default: the corpus under --data-dir")
    parser.add_argument("--max-length", type=int, default=10, help="longest sentence kept, in words")
    parser.add_argument("--count", type=int, default=5000, help="training sentences")
    parser.add_argument("--embedding-dim", type=int, default=128, help="size of the sentence vector")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="Adam's rate; default 0.15 / embedding-dim, which worked from d_emb 50 to 340 (docs/rae.md)")
    args = parser.parse_args(argv)
    if args.data_dir is not None:
        args.vectors = args.vectors or os.path.join(args.data_dir, SHARED_VECTORS)
        args.sentences = args.sentences or os.path.join(args.data_dir, SHARED_SENTENCES)
    if args.vectors is None or args.sentences is None:
        parser.exit(1, f"{parser.prog}: needs word vectors and sentences: --data-dir DIR (with {SHARED_VECTORS} "
                       f"and {SHARED_SENTENCES}) or --vectors and --sentences (see --help for public sources)\n")
    for path in (args.vectors, args.sentences):
        if not os.path.isfile(path):
            parser.exit(1, f"{parser.prog}: no {path}\n")

    import keras
    import numpy as np
    from gensim.models import KeyedVectors
    from keras import ops

    from keras_compress.rae import RecursiveAutoencoder, nearest_words, reconstruction_accuracy
    from keras_compress.rae import SentenceBatches, sample_sentences

    print(f"loading {args.vectors} and sampling sentences from {args.sentences} (a minute or so)...", flush=True)
    glove = KeyedVectors.load_word2vec_format(args.vectors, limit=50000)
    # Reservoir sampling over the whole file: one pass, `count + 100` sentences in memory.
    sample = sample_sentences(args.sentences, args.count + 100, glove.key_to_index, 3, args.max_length, seed=0)
    train, held_out = sample[:-100], sample[-100:]
    print(f"{len(train)} training sentences, {len(held_out)} held out")

    keras.utils.set_random_seed(0)
    model = RecursiveAutoencoder(word_dim=glove.vector_size, embedding_dim=args.embedding_dim, max_length=args.max_length)
    # Adam moves every weight by about the rate, so a wider MLP moves its outputs
    # further a step: the rate falls as d_emb grows (3e-3 at 50, 4.4e-4 at 340).
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate or 0.15 / args.embedding_dim))
    model.fit(SentenceBatches(train, glove, batch_size=32, bucket_width=5), epochs=args.epochs, verbose=2)

    test = SentenceBatches(held_out, glove, batch_size=len(held_out), bucket_width=args.max_length, shuffle=False)
    test_x, test_lengths = test.padded(np.arange(len(held_out)), args.max_length)
    embeddings, spans = model.encode(test_x, test_lengths, return_spans=True)
    decoded = model.decode(embeddings, test_lengths)
    guesses = nearest_words(decoded, glove)  # nearest by Euclidean distance over the vocabulary
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
