"""Train 1-bit Word2Bits vectors (Lam 2018) on your own text with the paper's settings, then
save the model (for more training) and the vectors (for everything else).

    python examples/train_word2bits.py [CORPUS] --lines 200000 --bits 1 --vector-size 800 --output w2b

CORPUS is plain or gzipped text, one sentence a line, tokens separated by spaces
(default: the project's shared corpus, skipped cleanly when it is missing).
"""
import argparse
import logging
import os


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("corpus", nargs="?", help="plain or gzipped text, one sentence a line",
                        default=os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                              "shared", "data", "corpus", "en25m.txt.gz")))
    parser.add_argument("--lines", type=int, default=200_000, help="read at most this many lines")
    parser.add_argument("--bits", type=int, default=1, help="bits a vector value (1, 2, 4, 8; 32 is float)")
    parser.add_argument("--vector-size", type=int, default=800, help="dimensions a word")
    parser.add_argument("--epochs", type=int, default=5, help="passes over the corpus (the paper trains 25)")
    parser.add_argument("--workers", type=int, default=2, help="training threads")
    parser.add_argument("--output", default="word2bits", help="prefix of the files written")
    args = parser.parse_args(argv)
    if not os.path.exists(args.corpus):
        print(f"corpus {args.corpus} not found; nothing to do")
        return 0

    from gensim.models.word2vec import LineSentence

    from gensim_bits import Word2Bits
    from gensim_bits.word2bits import PAPER_HYPERPARAMETERS

    # gensim logs progress (words/s, percent done, time left) every second at INFO level.
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.INFO)
    sentences = LineSentence(args.corpus, limit=args.lines)
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


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help shows this docstring as written and every option's default."""


if __name__ == "__main__":
    raise SystemExit(main())
