"""Quantized distillation of a Transformer translator, end to end (Prato 2019, ch. 5):
train a teacher, distill it into an 8-bit fake-quantized student, strip the student and export it
as an on-device translator (one .tflite with int8 kernels, `encode` and a cached decode step
per beam size), then translate text with beam search in ai_edge_litert and in Keras.

    python examples/qat_distill_transformer.py --data-dir ../shared/data

It reads DIR/mt/en-es/{train,test}.{en,es}, line-aligned English-Spanish sentences (the
project's are Bible verses, KJV and Reina-Valera 1909, taken from Debian packages and not
published on their own). Any line-aligned pair of files works: the public Tatoeba pairs
(spa-eng.zip on manythings.org/anki, one "English<TAB>Spanish" pair a line) split into
those four files, for example. It downloads nothing: without the files it stops with one line.

Tiny sizes by default so it runs in a few minutes on a laptop CPU; the BLEU of such short
training is low. Raise --pairs, --epochs, --scale and --layers for real models.
"""

import argparse
import os
import sys
import tempfile

PARALLEL = os.path.join("mt", "en-es")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--data-dir", default=None,
                        help=f"a local data folder holding {PARALLEL}/{{train,test}}.{{en,es}}, one sentence a line "
                             "(the project's ../shared/data)")
    parser.add_argument("--pairs", type=int, default=2000, help="training sentence pairs")
    parser.add_argument("--epochs", type=int, default=2, help="epochs for the teacher, then for the student")
    parser.add_argument("--layers", type=int, default=2, help="encoder and decoder layers of both models")
    parser.add_argument("--scale", type=float, default=0.25, help="width multiplier of the presets' sizes")
    parser.add_argument("--bits", type=int, default=8, help="weight bits of the quantized student (2-8)")
    args = parser.parse_args(argv)
    if args.data_dir is None:
        parser.exit(1, f"{parser.prog}: needs English-Spanish sentence pairs: --data-dir DIR with "
                       f"{PARALLEL}/{{train,test}}.{{en,es}} (see --help for a public source)\n")
    missing = [name for name in ("train.en", "train.es", "test.en", "test.es")
               if not os.path.isfile(os.path.join(args.data_dir, PARALLEL, name))]
    if missing:
        parser.exit(1, f"{parser.prog}: no {', '.join(missing)} under {os.path.join(args.data_dir, PARALLEL)}\n")
    args.data_dir = os.path.join(args.data_dir, PARALLEL)

    # Keras and TensorFlow load only now, so --help answers at once.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from keras_compress import Distiller, quantize_model, strip
    from keras_compress.nmt import (
        SmoothedSparseCategoricalCrossentropy,
        Translator,
        corpus_bleu,
        export_translator,
        make_examples,
        read_parallel,
        train_tokenizer,
        transformer,
        translate,
    )

    print("training a sentencepiece tokenizer...", flush=True)
    workdir = tempfile.mkdtemp()
    sources, targets = read_parallel(args.data_dir, "train")
    tokenizer = train_tokenizer(sources + targets, os.path.join(workdir, "spm"), vocab_size=1000)
    (x, y), _ = make_examples(tokenizer, sources, targets, max_length=32)
    x, y = [array[: args.pairs] for array in x], y[: args.pairs]
    vocab = tokenizer.get_piece_size()

    # 1. The teacher: a float "medium" Transformer trained with label smoothing.
    teacher = transformer(vocab, "medium", num_layers=args.layers, scale=args.scale)
    teacher.compile(keras.optimizers.Adam(2e-3, clipnorm=1.0), SmoothedSparseCategoricalCrossentropy(0.1))
    teacher.fit(x, y, epochs=args.epochs, batch_size=64, verbose=2)

    # 2. The student: a "small" Transformer, fake-quantized, distilled from the frozen teacher.
    student = quantize_model(transformer(vocab, "small", num_layers=args.layers, scale=args.scale),
                             bits=args.bits)
    distiller = Distiller(teacher, student, temperature=1.0, soft_weight=0.5, hard_weight=0.5,
                          ignore_class=0)  # 0 pads the targets
    distiller.compile(keras.optimizers.Adam(2e-3, clipnorm=1.0), weighted_metrics=["accuracy"])
    distiller.fit(x, y, epochs=args.epochs, batch_size=64, verbose=2)
    student.save(os.path.join(workdir, "student_qat.keras"))  # reloads as a QAT model

    # 3. Deploy: weights on the 2^bits grid (in place), then an int8-kernel translator file.
    deployable = strip(student)
    exported = export_translator(deployable, os.path.join(workdir, "translator.tflite"),
                                 quantization="dynamic", max_source_length=33,
                                 max_target_length=42, sample_sources=x[0][:8])
    print(f"translator.tflite: {exported.size_bytes} bytes, same tokens as Keras on "
          f"{exported.same_tokens:.0%} of 8 sources")

    # 4. Translate text with beam search (beam 4, GNMT length penalty 0.6, the export's default
    # translate signature: the whole search runs inside the .tflite): on device and in Keras.
    test_sources, test_targets = read_parallel(args.data_dir, "test", limit=20)
    translator = Translator(exported.path, os.path.join(workdir, "spm.model"))
    on_device = translator.translate(test_sources)
    in_keras = translate(deployable, tokenizer, test_sources, beam_size=4, length_penalty=0.6,
                         max_length=40)
    print(test_sources[0], "->", on_device[0])
    print(f"BLEU on {len(on_device)} test verses: LiteRT {corpus_bleu(on_device, test_targets).score:.2f}, "
          f"Keras {corpus_bleu(in_keras, test_targets).score:.2f}")
    return 0


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help shows this docstring as written and every option's default."""


if __name__ == "__main__":
    sys.exit(main())
