"""The quickstart: train 1-bit Word2Bits vectors (Lam 2018) on a corpus gensim ships,
show nearest neighbours and the memory the bits save.

    gensim-bits demo [--bits 1] [--vector-size 400] [--epochs 30]
    python examples/quickstart.py [same options]      # from a source checkout

About 15-20 s of training on 2 cores (58k words, 30 epochs); a progress bar counts the epochs.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

import numpy as np

QUERIES = ("police", "australia", "president", "fire", "afghanistan")


def packed_bytes(vectors: np.ndarray, bits: int) -> int:
    """Bytes the quantized vectors take once each value is stored as ``bits`` bits."""
    from gensim_bits.quantizers import quantize_codes

    if bits == 32:
        return vectors.astype(np.float32).nbytes
    codes = quantize_codes(vectors, bits)  # level indexes; bit-pack them, `bits` bits each
    planes = np.unpackbits(codes[..., None], axis=-1)[..., -bits:]
    return np.packbits(planes.reshape(len(vectors), -1), axis=1).nbytes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The quickstart's options, shared by ``gensim-bits demo`` and ``examples/quickstart.py``."""
    from gensim_bits.cli import positive_int

    parser.add_argument("--bits", type=int, default=1, choices=(1, 2, 4, 8, 32),
                        help="bits a vector value (32: float) (default: %(default)s)")
    parser.add_argument("--vector-size", type=positive_int, default=400, help="dimensions a word (default: %(default)s)")
    parser.add_argument("--epochs", type=positive_int, default=30, help="passes over the corpus (default: %(default)s)")
    parser.add_argument("--workers", type=positive_int, default=2, help="training threads (default: %(default)s)")
    parser.add_argument("--verbose", action="store_true",
                        help="show gensim's training log instead of the progress bar")


def run(args: argparse.Namespace) -> int:
    """Train, print neighbours and sizes; returns the exit status."""
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
    print(f"corpus: {corpus} ({sum(map(len, sentences)):,} words, {len(sentences)} documents)", flush=True)

    start = time.perf_counter()
    progress = EpochProgress(args.epochs, enabled=not args.verbose)
    try:
        model = Word2Bits(sentences, bits=args.bits, vector_size=args.vector_size, epochs=args.epochs,
                          workers=args.workers, window=5, negative=12, min_count=3, alpha=0.05,
                          callbacks=[progress])
    finally:
        progress.bar.close()  # on Ctrl-C too, so the interrupted line starts on a fresh line
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


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """--help shows the module docstring as written."""


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Run the quickstart as a script; Ctrl-C stops it with one line and status 130."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=HelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("quickstart: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
