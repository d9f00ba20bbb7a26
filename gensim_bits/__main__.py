"""``python -m gensim_bits``: the ``gensim-bits`` command line."""
import sys

from gensim_bits.cli import main

sys.exit(main())
