"""Train 1-bit Word2Bits vectors (Lam 2018) on a corpus with the paper's settings, then save
the model (for more training) and the vectors (for everything else).

    python examples/train_word2bits.py [CORPUS] --lines 200000 --bits 1 --vector-size 800 --output w2b
    python examples/train_word2bits.py --data-dir ../shared/data      # the project's shared corpus

CORPUS is plain or gzipped text, one sentence a line, tokens separated by spaces. Without
CORPUS or --data-dir it trains on text8, the paper's corpus (the first 10^8 bytes of English
Wikipedia, cleaned by Matt Mahoney; 17M words, 31 MB to download once into the cache, checked
against its pinned SHA-256); text8 has no line breaks, so it is read in sentences of 10,000
words and --lines counts those.
"""
import argparse
import logging
import os
import sys

TEXT8_URL = "http://mattmahoney.net/dc/text8.zip"
# The SHA-256 that other projects pin for this file (it was not downloaded here: no network);
# a mismatch stops the example and keeps nothing.
TEXT8_ZIP_SHA256 = "a6640522afe85d1963ad56c05b0ede0a0c000dddc9671758a6cc09b7a38e5232"
SHARED_CORPUS = os.path.join("corpus", "en25m.txt.gz")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("corpus", nargs="?", default=None,
                        help="plain or gzipped text, one sentence a line (default: text8, downloaded once)")
    parser.add_argument("--data-dir", default=None,
                        help=f"a local data folder: trains on its {SHARED_CORPUS} (the project's ../shared/data)")
    parser.add_argument("--lines", type=int, default=200_000, help="read at most this many lines")
    parser.add_argument("--bits", type=int, default=1, help="bits a vector value (1, 2, 4, 8; 32 is float)")
    parser.add_argument("--vector-size", type=int, default=800, help="dimensions a word")
    parser.add_argument("--epochs", type=int, default=5, help="passes over the corpus (the paper trains 25)")
    parser.add_argument("--workers", type=int, default=2, help="training threads")
    parser.add_argument("--output", default="word2bits", help="prefix of the files written")
    args = parser.parse_args(argv)

    from gensim_bits.download import DownloadError, fetch, unpack_member

    if args.corpus is None and args.data_dir is not None:
        args.corpus = os.path.join(args.data_dir, SHARED_CORPUS)
    if args.corpus is not None and not os.path.isfile(args.corpus):
        parser.exit(1, f"{parser.prog}: no corpus file {args.corpus}\n")
    if args.corpus is None:
        try:
            corpus_file = unpack_member(fetch(TEXT8_URL, TEXT8_ZIP_SHA256), "text8")
        except DownloadError as error:
            parser.exit(1, f"{parser.prog}: {error}; give a CORPUS file or --data-dir instead\n")

    from gensim.models.word2vec import LineSentence, Text8Corpus

    from gensim_bits import Word2Bits
    from gensim_bits.word2bits import PAPER_HYPERPARAMETERS

    # gensim logs progress (words/s, percent done, time left) every second at INFO level.
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)
    sentences = LineSentence(args.corpus, limit=args.lines) if args.corpus else FirstSentences(
        Text8Corpus(corpus_file), args.lines)
    settings = {**PAPER_HYPERPARAMETERS, "epochs": args.epochs}
    model = Word2Bits(sentences, bits=args.bits, vector_size=args.vector_size, workers=args.workers, **settings)

    model.save(f"{args.output}.model")  # full-precision u and v: model.train() can continue later
    model.wv.save_word2vec_format(f"{args.output}.vectors.txt")  # Q(u + v), readable by any word2vec tool
    for word in ("king", "computer", "river"):
        if word in model.wv:
            print(word, [other for other, _ in model.wv.most_similar(word, topn=8)])
    print(f"{len(model.wv):,} words, {model.bytes_per_word:g} bytes a word once bit-packed; "
          f"wrote {args.output}.model and {args.output}.vectors.txt")
    return 0


class FirstSentences:
    """The first ``limit`` sentences of a corpus, re-iterable as gensim needs."""

    def __init__(self, corpus, limit):
        self.corpus, self.limit = corpus, limit

    def __iter__(self):
        import itertools

        return itertools.islice(iter(self.corpus), self.limit)


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help shows this docstring as written and every option's default."""


if __name__ == "__main__":
    sys.exit(main())
