"""The README's main job: train 1-bit Word2Bits vectors (Lam 2018) on a corpus gensim ships,
show nearest neighbours and the memory the bits save.

    python examples/quickstart.py [--bits 1] [--vector-size 400] [--epochs 30]

The code is gensim_bits/quickstart.py, which an installed package runs as `gensim-bits demo`.
About 15-20 s of training on 2 cores (58k words, 30 epochs); a progress bar counts the epochs.
"""
import sys

from gensim_bits.quickstart import main

if __name__ == "__main__":
    raise SystemExit(main(prog=sys.argv[0]))
