"""The ``gensim-bits`` command line: train Word2Bits vectors (Lam 2018), evaluate, query,
convert and inspect them.

Examples::

    gensim-bits train corpus.txt.gz -o vectors.gbits --bits 1 --vector-size 800 --epochs 5
    gensim-bits evaluate vectors.gbits                  # the word-pair and analogy sets gensim ships
    gensim-bits similar vectors.gbits king woman --negative man
    gensim-bits convert vectors.gbits vectors.txt       # packed -> word2vec text (.bin: binary)
    gensim-bits info vectors.gbits
    gensim-bits demo                                    # the quickstart, on a corpus gensim ships

Exit status: 0 done (also when the reader of stdout goes away, as with ``| head``), 1 an
error in the files or data, 2 bad arguments, 130 interrupted (Ctrl-C).
"""
from __future__ import annotations

import argparse
import inspect
import json
import logging
import math
import os
import sys

from gensim_bits import __version__
from gensim_bits.fileformat import MAGIC, atomic_output, check_output_path
from gensim_bits.keyedvectors import QuantizedKeyedVectors, infer_bits
from gensim_bits.packing import PACKED_BITS
from gensim_bits.quantizers import SUPPORTED_BITS

PACKED_SUFFIX = ".gbits"
# Looked for under --data-dir; without it, evaluate uses the sets gensim ships (GENSIM_SETS).
DATA_DIR_SIMILARITY = ["ws353.tsv", "ws353_similarity.tsv", "ws353_relatedness.tsv", "simlex999.tsv", "men.tsv"]
DATA_DIR_ANALOGIES = ["google.txt"]
GENSIM_SIMILARITY = ["wordsim353.tsv", "simlex999.txt"]
GENSIM_ANALOGIES = ["questions-words.txt"]

# Word2Bits arguments that make no sense on a command line (Python objects) or are given otherwise.
NOT_FLAGS = {"self", "sentences", "corpus_file", "hashfxn", "trim_rule", "callbacks", "comment"}
SWITCH_FLAGS = {"sg", "hs", "cbow_mean", "null_word", "sorted_vocab"}
FLAG_MINIMUM = {"min_count": 0, "max_vocab_size": 1, "max_final_vocab": 1, "seed": 0}
FLAG_HELP = {
    "bits": "bits per vector value: 1 (+-1/3), 2 (+-1/4, +-3/4), 4 or 8 (uniform levels), 32 (float)",
    "vector_size": "dimension of the word vectors",
    "window": "maximum distance between the current and the predicted word",
    "min_count": "ignore words rarer than this",
    "epochs": "passes over the corpus",
    "workers": "worker threads",
    "negative": "negative samples per word",
    "sample": "downsampling threshold for frequent words",
    "alpha": "initial learning rate",
    "min_alpha": "final learning rate (linear decay)",
    "seed": "random seed",
    "max_vocab_size": "prune the vocabulary while scanning to at most this many words",
    "max_final_vocab": "keep at most this many words",
    "thresholded": "train in float and quantize only the final vectors (the paper's T1 baseline)",
    "compute_loss": "track the training loss (printed at the end)",
}


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error message."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class CommandError(Exception):
    """A user error the command reports in one line (exit status 1)."""


class UsageError(CommandError):
    """Arguments that cannot work together or that Word2Bits refuses (exit status 2, as argparse's)."""


#: ``--preset`` values: the paper's recipe is section 4's hyperparameters with 1 bit at d=800.
def presets() -> dict[str, dict[str, object]]:
    from gensim_bits.word2bits import PAPER_HYPERPARAMETERS

    return {"paper": {"bits": 1, "vector_size": 800, **PAPER_HYPERPARAMETERS}}


def number_type(kind, minimum=None, maximum=None):
    """argparse type: an int or a finite float within [minimum, maximum]."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            bounds = f"in [{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value

    parse.__name__ = kind.__name__
    return parse


positive_int = number_type(int, minimum=1)


def _input_file(path, what="file"):
    """Fail in one line unless ``path`` is a readable regular file (a folder is not 'missing')."""
    if os.path.isdir(path):
        raise CommandError(f"{path} is a folder, not a {what}")
    if not os.path.exists(path):
        raise CommandError(f"no such {what}: {path}")
    if not os.path.isfile(path):
        raise CommandError(f"{path} is not a regular file")
    if not os.access(path, os.R_OK):
        raise CommandError(f"permission denied: cannot read {path}")


def _output_file(path, what="output"):
    """Check before any long work that ``path`` can be written (one line if not)."""
    try:
        check_output_path(path)
    except OSError as error:
        reason = error.strerror or str(error)
        raise CommandError(f"cannot write {what} {path}: {reason}") from error


def _word2bits_flags(parser):
    """Add one flag for every scalar argument of ``Word2Bits.__init__``, with its default."""
    from gensim_bits.word2bits import Word2Bits

    for name, parameter in inspect.signature(Word2Bits.__init__).parameters.items():
        if name in NOT_FLAGS:
            continue
        default = parameter.default
        flag = "--" + name.replace("_", "-")
        help_text = FLAG_HELP.get(name, f"Word2Bits/Word2Vec argument {name}")
        if isinstance(default, bool):
            parser.add_argument(flag, dest=name, default=default, action=argparse.BooleanOptionalAction,
                                help=help_text)
        elif name == "bits":
            parser.add_argument(flag, dest=name, type=int, default=default, choices=SUPPORTED_BITS,
                                help=help_text + " (default: %(default)s)")
        elif name in SWITCH_FLAGS:
            parser.add_argument(flag, dest=name, type=int, default=default, choices=(0, 1),
                                help=help_text + " (default: %(default)s)")
        else:
            # Word2Bits range-checks what reaches its kernel; these bounds are gensim's own, checked
            # while parsing so that no corpus is scanned with them (NaN and inf never pass).
            kind = number_type(float if isinstance(default, float) else int, minimum=FLAG_MINIMUM.get(name))
            parser.add_argument(flag, dest=name, type=kind, default=default, metavar=name.upper(),
                                help=help_text + " (default: %(default)s)")


def build_parser(preset: str | None = None) -> ArgumentParser:
    """The parser; with ``preset``, train's defaults are that recipe's values (explicit flags win)."""
    parser = ArgumentParser(
        prog="gensim-bits",
        description="Train, evaluate, query and convert Word2Bits quantized word vectors "
                    "(Lam 2018). Packed files (.gbits) hold vector_size * bits / 8 bytes a word.",
        epilog="Run 'gensim-bits COMMAND --help' for the options of a command.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show gensim's log messages")
    parser.add_argument("--version", action="version", version=f"gensim-bits {__version__} (nlp-compress)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train", help="train Word2Bits vectors on a text corpus and write them",
        description="Train Word2Bits CBOW vectors on a corpus of one sentence a line, tokens "
                    "separated by spaces (plain text or .gz). Flags are Word2Bits' arguments; "
                    "the defaults are gensim's.",
        epilog="example: gensim-bits train corpus.txt.gz -o vectors.gbits --bits 1 --vector-size 800 "
               "--window 10 --negative 12 --sample 1e-4 --alpha 0.05 --epochs 5")
    train.add_argument("corpus", help="text corpus, one sentence a line (plain or .gz)")
    train.add_argument("-o", "--output", required=True,
                       help="output vectors: .gbits (packed), .bin (word2vec binary) or other (word2vec text)")
    train.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    recipes = presets()
    train.add_argument("--preset", choices=sorted(recipes),
                       help="a named recipe; flags given explicitly override it. paper: "
                            + " ".join(_flag_text(name, value) for name, value in recipes["paper"].items()))
    _word2bits_flags(train)
    if preset:
        train.set_defaults(**recipes[preset])

    evaluate = commands.add_parser(
        "evaluate", help="word-similarity (Spearman) and analogy (3CosAdd, 3CosMul) scores",
        description="Score vectors on word-similarity and analogy files. Without --similarity or "
                    "--analogies it uses the sets found under --data-dir or, without it, the "
                    "WordSim-353, SimLex-999 and Google analogy files that gensim ships.")
    _vectors_arguments(evaluate)
    evaluate.add_argument("--data-dir",
                          help="folder with wordsim/*.tsv and analogy/google.txt (default: gensim's test data)")
    evaluate.add_argument("--similarity", nargs="+", metavar="FILE", help="word-pair files")
    evaluate.add_argument("--analogies", nargs="+", metavar="FILE", help="analogy files")
    evaluate.add_argument("--restrict-vocab", type=positive_int, default=300000, metavar="N",
                          help="use only the N most frequent words (default: %(default)s)")
    evaluate.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    evaluate.add_argument("--by-frequency", nargs="+", type=number_type(float, minimum=1), metavar="COUNT",
                          help="also score each word-pair file by corpus-frequency band, split at these "
                               "counts (e.g. 100 1000: pairs whose words are both rarer than 100, then "
                               "100-999, then the rest); needs vectors that keep word counts (.gbits, or "
                               "word2vec with its .vocab file)")

    similar = commands.add_parser(
        "similar", help="nearest neighbours of words (gensim's most_similar)",
        description="Print the words most similar to the mean of the positive words minus the "
                    "negative words, as gensim's most_similar does.",
        epilog="example: gensim-bits similar vectors.gbits king woman --negative man")
    _vectors_arguments(similar)
    similar.add_argument("words", nargs="+", metavar="WORD", help="positive words")
    similar.add_argument("--negative", nargs="+", default=[], metavar="WORD", help="negative words")
    similar.add_argument("--topn", type=positive_int, default=10, help="neighbours to print (default: %(default)s)")
    similar.add_argument("--restrict-vocab", type=positive_int, default=None, metavar="N",
                         help="search only the N most frequent words")
    similar.add_argument("--cosmul", action="store_true", help="use 3CosMul (most_similar_cosmul)")
    similar.add_argument("--each", action="store_true",
                         help="neighbours of each word separately, answered in one batch search")
    similar.add_argument("--workers", type=positive_int, default=1,
                         help="search threads for .gbits vectors (default: %(default)s)")

    convert = commands.add_parser(
        "convert", help="convert between packed .gbits and word2vec text/binary",
        description="Convert vectors. The output format follows the extension: .gbits packed, "
                    ".bin word2vec binary, anything else word2vec text; --format overrides it.")
    _vectors_arguments(convert, "input")
    convert.add_argument("output", help="output path")
    convert.add_argument("--format", choices=("packed", "text", "binary"), help="output format")
    convert.add_argument("--bits", type=int, choices=PACKED_BITS,
                         help="bits of the packed output (default: inferred from the values)")
    convert.add_argument("--quantize", action="store_true",
                         help="quantize float values to --bits (quantizers.quantize) instead of refusing them")

    info = commands.add_parser("info", help="size, bits and vocabulary of a vectors file",
                               description="Describe a vectors file.")
    _vectors_arguments(info)

    from gensim_bits import quickstart

    demo = commands.add_parser("demo", help="the quickstart: train on a corpus gensim ships, show neighbours",
                               description=quickstart.__doc__.split("\n\n")[0].replace("\n", " "))
    quickstart.add_arguments(demo)
    return parser


def _flag_text(name: str, value: object) -> str:
    return f"--{name.replace('_', '-')} {value}"


def _vectors_arguments(parser, name="vectors"):
    """The input vectors file and how to read it."""
    parser.add_argument(name, help="vectors file: .gbits or word2vec text/binary")
    parser.add_argument("--binary", action="store_true",
                        help="read word2vec input as binary (default: binary only for .bin files)")


def _is_packed_file(path):
    with open(path, "rb") as stream:
        return stream.read(len(MAGIC)) == MAGIC


def load_vectors(path, binary=False):
    """A QuantizedKeyedVectors for a .gbits file (memory-mapped), else a gensim KeyedVectors.

    word2vec files go through :func:`gensim_bits.word2vec_format.read_word2vec`, which checks
    the header against the file before allocating anything.
    """
    from gensim_bits.word2vec_format import Word2VecFormatError, read_word2vec

    _input_file(path)
    if _is_packed_file(path):
        return QuantizedKeyedVectors.load(path, mmap="r")
    binary = binary or path.endswith((".bin", ".bin.gz"))
    try:
        return read_word2vec(path, binary=binary)
    except Word2VecFormatError as error:
        raise CommandError(f"{path} is neither a .gbits file nor readable word2vec "
                           f"{'binary' if binary else 'text'} ({error.reason})") from error


def _output_format(path, requested):
    if requested:
        return requested
    if path.endswith(PACKED_SUFFIX):
        return "packed"
    return "binary" if path.endswith((".bin", ".bin.gz")) else "text"


def write_vectors(vectors, path, output_format, bits=None, quantize=False):
    """Write packed or float vectors to ``path`` in ``output_format``; returns the path of the
    word-counts file written beside word2vec output, or None."""
    if output_format == "packed" and not isinstance(vectors, QuantizedKeyedVectors):
        vectors = QuantizedKeyedVectors.from_keyed_vectors(vectors, bits=bits, quantize=quantize)
    elif isinstance(vectors, QuantizedKeyedVectors) and bits not in (None, vectors.bits):
        raise UsageError(f"the input is already packed at {vectors.bits} bits; --bits {bits} would change it")
    if output_format == "packed":
        vectors.save(path)
        return None
    if isinstance(vectors, QuantizedKeyedVectors):
        return vectors.save_word2vec_format(path, binary=output_format == "binary")
    from gensim_bits.word2vec_format import save_word2vec

    return save_word2vec(vectors, path, binary=output_format == "binary")


def _written(path, counts_file):
    """'PATH (N bytes)', and the counts file when one was written."""
    text = f"{path} ({os.path.getsize(path):,} bytes)"
    return text + (f" and its word counts to {counts_file}" if counts_file else "")


class TrainingProgress:
    """A tqdm bar over all epochs, in words, with words/s and time left.

    Public API only: the corpus is wrapped so that the bar advances as gensim's job producer
    reads each sentence (a few jobs ahead of the workers), and gensim's epoch callbacks name
    the epoch and settle the count at each epoch's end.
    """

    def __init__(self, model, disable=False):
        from tqdm import tqdm

        self.words_per_epoch = model.corpus_total_words
        self.epochs = model.epochs
        self.completed = 0
        self.bar = tqdm(total=self.words_per_epoch * model.epochs, unit="word", unit_scale=True,
                        desc=f"epoch 1/{model.epochs}", disable=disable, dynamic_ncols=True)

    def corpus(self, sentences):
        """``sentences``, iterated as gensim does, advancing the bar by each sentence's words."""
        progress = self

        class Counted:
            def __iter__(self):
                for sentence in sentences:
                    # the producer may read ahead into the next epoch's count; cap at the epoch end
                    progress._advance_to(min(progress.bar.n + len(sentence),
                                             progress.completed + progress.words_per_epoch))
                    yield sentence

        return Counted()

    def _advance_to(self, position):
        self.bar.update(max(0, position - self.bar.n))

    def callbacks(self):
        from gensim.models.callbacks import CallbackAny2Vec

        progress = self

        class EpochCallback(CallbackAny2Vec):
            def on_epoch_end(self, model):
                progress.completed += progress.words_per_epoch
                progress._advance_to(progress.completed)
                epoch = progress.completed // max(1, progress.words_per_epoch)
                progress.bar.set_description(f"epoch {min(epoch + 1, progress.epochs)}/{progress.epochs}")

        return [EpochCallback()]

    def close(self):
        self.bar.close()


def run_train(args):
    from gensim.models.word2vec import LineSentence

    from gensim_bits.word2bits import Word2Bits

    # Everything that can fail is checked before the corpus is scanned or anything trained:
    # the arguments first (exit status 2), then the files (1).
    options = {name: getattr(args, name) for name in inspect.signature(Word2Bits.__init__).parameters
               if name not in NOT_FLAGS}
    if not options.get("negative") and not options.get("hs"):
        raise UsageError("--negative 0 with --hs 0 leaves nothing to train; use negative sampling or --hs 1")
    output_format = _output_format(args.output, None)
    if output_format == "packed" and args.bits not in PACKED_BITS:
        raise UsageError(f"--bits {args.bits} gives float vectors, which cannot be packed; write them "
                         f"to a .txt or .bin file, or use --bits in {PACKED_BITS}")
    try:
        model = Word2Bits(**options)  # validates every flag before any work
    except ValueError as error:
        name, _, rest = str(error).partition(" ")  # "vector_size must be ..." -> "--vector-size must be ..."
        raise UsageError(f"--{name.replace('_', '-')} {rest}" if name in options else str(error)) from None
    _input_file(args.corpus, "corpus file")
    _output_file(args.output)
    if args.preset:
        recipe = presets()[args.preset]
        kept = [_flag_text(name, options[name]) for name, value in recipe.items() if options[name] != value]
        print(f"--preset {args.preset} sets "
              + " ".join(_flag_text(name, value) for name, value in recipe.items() if options[name] == value)
              + (f"; kept your {' '.join(kept)}" if kept else ""), file=sys.stderr)
    corpus = LineSentence(args.corpus)
    print(f"scanning the vocabulary of {args.corpus} ...", file=sys.stderr)
    try:
        model.build_vocab(corpus)
    except UnicodeDecodeError as error:
        raise CommandError(f"{args.corpus} is not UTF-8 text ({error.reason} at byte {error.start} of a line)") from None
    except EOFError as error:
        raise CommandError(f"{args.corpus}: the compressed file is cut short ({error})") from None
    if not model.wv.key_to_index:
        raise CommandError(f"no word of {args.corpus} occurs --min-count {model.min_count} times or more "
                           f"({model.corpus_total_words} words in all); nothing to train")
    progress = TrainingProgress(model, disable=args.no_progress)
    try:
        model.train(progress.corpus(corpus), total_examples=model.corpus_count, epochs=model.epochs,
                    callbacks=progress.callbacks(), compute_loss=model.compute_loss)
    finally:
        progress.close()
    counts_file = write_vectors(model.wv, args.output, output_format,
                                bits=args.bits if args.bits in PACKED_BITS else None)
    print(f"wrote {len(model.wv)} words x {model.vector_size} dimensions, {model.bits}-bit values, "
          f"to {_written(args.output, counts_file)}")
    if model.compute_loss:
        print(f"final training loss: {model.get_latest_training_loss():.6g}")
    return 0


def _default_files(data_dir, folder, names):
    paths = [os.path.join(data_dir, folder, name) for name in names]
    return [path for path in paths if os.path.isfile(path)]


def run_evaluate(args):
    from gensim_bits.evaluation import evaluate

    similarity, analogies = args.similarity or [], args.analogies or []
    if not similarity and not analogies and args.data_dir is None:
        from gensim.test.utils import datapath
        similarity = [datapath(name) for name in GENSIM_SIMILARITY]
        analogies = [datapath(name) for name in GENSIM_ANALOGIES]
    elif not similarity and not analogies:
        similarity = _default_files(args.data_dir, "wordsim", DATA_DIR_SIMILARITY)
        analogies = _default_files(args.data_dir, "analogy", DATA_DIR_ANALOGIES)
        if not similarity and not analogies:
            raise CommandError(f"no evaluation files found under {args.data_dir}; "
                               "pass --data-dir, --similarity or --analogies")
    for path in similarity + analogies:
        _input_file(path, "evaluation file")
    if args.json:
        _output_file(args.json, "--json file")
    vectors = load_vectors(args.vectors, args.binary)
    results = evaluate(vectors, similarity=similarity, analogies=analogies, restrict_vocab=args.restrict_vocab,
                       by_frequency=args.by_frequency)
    print(f"({results['seconds']:.1f} s)")
    if args.json:
        with atomic_output(args.json) as temporary, open(temporary, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2)
    return 0


def run_similar(args):
    vectors = load_vectors(args.vectors, args.binary)
    for word in args.words + args.negative:
        if word not in vectors:
            raise CommandError(f"{word!r} is not in the vocabulary ({len(vectors):,} words)")
    packed = isinstance(vectors, QuantizedKeyedVectors)
    options = {"workers": args.workers} if packed else {}
    if args.each:
        if args.negative or args.cosmul:
            raise UsageError("--each takes positive words only, without --negative or --cosmul")
        if packed:  # one batch call: the codes are scanned once per block of words
            scores, rows = vectors.search(args.words, topn=args.topn, workers=args.workers,
                                          restrict_vocab=args.restrict_vocab)
            results = [list(zip(vectors.index_to_key.keys_at(row[row >= 0]), score[row >= 0].tolist()))
                       for score, row in zip(scores, rows)]
        else:
            results = [vectors.most_similar(word, topn=args.topn, restrict_vocab=args.restrict_vocab)
                       for word in args.words]
        for word, neighbours in zip(args.words, results):
            print(f"{word}:")
            for neighbour, similarity in neighbours:
                print(f"  {similarity:.4f}  {neighbour}")
        return 0
    if args.cosmul:
        neighbours = vectors.most_similar_cosmul(positive=args.words, negative=args.negative, topn=args.topn,
                                                 **options)
    else:
        neighbours = vectors.most_similar(positive=args.words, negative=args.negative, topn=args.topn,
                                          restrict_vocab=args.restrict_vocab, **options)
    for word, similarity in neighbours:
        print(f"{similarity:.4f}  {word}")
    return 0


def run_convert(args):
    _output_file(args.output)
    from gensim_bits.word2vec_format import counts_path

    vectors = load_vectors(args.input, args.binary)
    output_format = _output_format(args.output, args.format)
    counts_file = write_vectors(vectors, args.output, output_format, bits=args.bits, quantize=args.quantize)
    print(f"wrote {_written(args.output, counts_file)}")
    if not isinstance(vectors, QuantizedKeyedVectors) and not os.path.isfile(counts_path(args.input)):
        print(f"note: no word counts beside {args.input} ({counts_path(args.input)}): "
              + ("the counts in the output are made up, descending in file order" if output_format == "packed"
                 else "the output has none either"), file=sys.stderr)
    return 0


def run_info(args):
    vectors = load_vectors(args.vectors, args.binary)
    words, dimension = len(vectors), vectors.vector_size
    if isinstance(vectors, QuantizedKeyedVectors):
        kind, bits, code_bytes = "packed Word2Bits (.gbits)", vectors.bits, vectors.nbytes
    else:
        kind, bits = "word2vec", infer_bits(vectors.vectors)
        code_bytes = None if bits is None else words * bits * ((dimension + 7) // 8)
    float_bytes = words * dimension * 4
    lines = [
        ("file", f"{args.vectors} ({os.path.getsize(args.vectors):,} bytes)"),
        ("format", kind),
        ("words", f"{words:,}"),
        ("dimension", str(dimension)),
        ("bits", "float (not on any Word2Bits levels)" if bits is None else str(bits)),
        ("float32 size", f"{float_bytes:,} bytes"),
    ]
    if code_bytes is not None:
        lines.append(("packed codes", f"{code_bytes:,} bytes ({code_bytes / max(1, words):.1f} a word, "
                                      f"{float_bytes / max(1, code_bytes):.1f}x smaller than float32)"))
    lines.append(("first words", " ".join(vectors.index_to_key[:10])))
    for name, value in lines:
        print(f"{name:<13} {value}")
    return 0


def run_demo(args):
    from gensim_bits.quickstart import run

    return run(args)


COMMANDS = {"train": run_train, "evaluate": run_evaluate, "similar": run_similar,
            "convert": run_convert, "info": run_info, "demo": run_demo}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gensim-bits`` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if getattr(args, "preset", None):  # again, with the recipe as the defaults
        args = build_parser(args.preset).parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        level=logging.INFO if args.verbose else logging.WARNING)
    try:
        status = COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except BrokenPipeError:
        # The reader went away (`gensim-bits evaluate v.gbits | head -1`): what it read is
        # all it wanted. Send what Python still holds to /dev/null so exit stays quiet.
        _discard_stdout()
        return 0
    except UsageError as error:
        print(f"gensim-bits {args.command}: error: {_one_line(error)} (see --help)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gensim-bits {args.command}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        if args.verbose:
            raise
        print(f"gensim-bits {args.command}: error: out of memory", file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001 - one line, the traceback only with -v
        if args.verbose:
            raise
        print(f"gensim-bits {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 1


def _discard_stdout():
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout replaced by an object without a file
        pass


def _one_line(error):
    """The message of ``error`` on one line; unexpected error types are named, with a hint."""
    if isinstance(error, KeyError) and error.args:
        message = str(error.args[0])  # a word not in the vocabulary; KeyError would quote it
    elif isinstance(error, OSError) and error.strerror:
        message = f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    else:
        message = str(error) or type(error).__name__
    if not isinstance(error, (CommandError, KeyError, OSError, ValueError, TypeError)):
        message = f"{type(error).__name__}: {message} (run with -v for the traceback)"
    return " ".join(message.split())


if __name__ == "__main__":
    sys.exit(main())
