"""The README's main job: train 1-bit Word2Bits vectors (Lam 2018) on a corpus gensim ships,
show nearest neighbours and the memory the bits save.

    python examples/quickstart.py [--bits 1] [--vector-size 400] [--epochs 30]

About 15-20 s of training on 2 cores (58k words, 30 epochs); a progress bar counts the epochs.
"""
import argparse
import logging
import time

QUERIES = ("police", "australia", "president", "fire", "afghanistan")


def packed_bytes(vectors, bits):
    """Bytes the quantized vectors take once each value is stored as ``bits`` bits."""
    import numpy as np

    from gensim_bits.quantizers import quantize_codes

    if bits == 32:
        return vectors.astype(np.float32).nbytes
    codes = quantize_codes(vectors, bits)  # level indexes; bit-pack them, `bits` bits each
    planes = np.unpackbits(codes[..., None], axis=-1)[..., -bits:]
    return np.packbits(planes.reshape(len(vectors), -1), axis=1).nbytes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--bits", type=int, default=1, choices=(1, 2, 4, 8, 32), help="bits a vector value (32: float)")
    parser.add_argument("--vector-size", type=int, default=400, help="dimensions a word")
    parser.add_argument("--epochs", type=int, default=30, help="passes over the corpus")
    parser.add_argument("--workers", type=int, default=2, help="training threads")
    parser.add_argument("--verbose", action="store_true", help="show gensim's training log instead of the progress bar")
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)

    from gensim.models.callbacks import CallbackAny2Vec
    from gensim.test.utils import datapath
    from gensim.utils import simple_preprocess
    from tqdm import tqdm

    from gensim_bits import Word2Bits

    class EpochProgress(CallbackAny2Vec):
        """gensim's public callback hook, drawn as a tqdm bar over the epochs."""

        def __init__(self, epochs, enabled):
            self.bar = tqdm(total=epochs, unit="epoch", desc="training", disable=not enabled)

        def on_epoch_end(self, model):
            self.bar.update()

        def on_train_end(self, model):
            self.bar.close()

    corpus = datapath("lee_background.cor")
    with open(corpus, encoding="utf-8") as lines:
        sentences = [simple_preprocess(line) for line in lines]
    print(f"corpus: {corpus} ({sum(map(len, sentences)):,} words, {len(sentences)} documents)")

    start = time.perf_counter()
    model = Word2Bits(sentences, bits=args.bits, vector_size=args.vector_size, epochs=args.epochs,
                      workers=args.workers, window=5, negative=12, min_count=3, alpha=0.05,
                      callbacks=[EpochProgress(args.epochs, enabled=not args.verbose)])
    print(f"trained {model} in {time.perf_counter() - start:.1f}s\n")

    for word in QUERIES:
        if word in model.wv:
            neighbours = ", ".join(f"{other} {similarity:.2f}" for other, similarity in model.wv.most_similar(word, topn=6))
            print(f"{word:>12}: {neighbours}")

    count, size = len(model.wv), model.vector_size
    quantized, full = packed_bytes(model.wv.vectors, args.bits), count * size * 4
    print(f"\n{count:,} words x {size} dimensions at {args.bits} bit(s): {model.bytes_per_word:g} bytes a word, "
          f"{quantized / 1e3:,.1f} kB bit-packed, against {size * 4:,} bytes a word and {full / 1e3:,.1f} kB "
          f"in float32: {full / quantized:.0f}x smaller, {100 * (1 - quantized / full):.1f}% saved.")
    return 0


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help shows this docstring as written and every option's default."""


if __name__ == "__main__":
    raise SystemExit(main())
