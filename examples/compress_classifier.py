"""Train a DAN sentiment classifier, shrink its embedding by 90% during fit, export to TFLite.

Online embedding compression (Acharya et al., AAAI 2019) in one fit call: the
EmbeddingCompression callback factorizes the embedding by SVD after a few epochs and training
recovers the accuracy; CALR drives Adam's learning rate.

    python examples/compress_classifier.py                              # IMDB reviews, downloaded once
    python examples/compress_classifier.py --data-dir ../shared/data    # Rotten Tomatoes sentences

With --data-dir it reads DIR/classify/rt_polarity/{train,dev,test}.tsv (label<TAB>text), the
project's SST-2 stand-in (built from a PyPI package, not published on its own). Without it,
it uses the public IMDB movie-review sentiment set (25,000 + 25,000 reviews), which Keras
downloads once into ~/.keras/datasets and checks against the SHA-256 Keras pins
(keras.datasets.imdb); reviews are cut to their first 200 words. Keras prints one line an epoch.
"""

import argparse
import os
import sys
import tempfile

SHARED_FOLDER = os.path.join("classify", "rt_polarity")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--data-dir", default=None,
                        help=f"a local data folder holding {SHARED_FOLDER}/{{train,dev,test}}.tsv (label<TAB>text "
                             "lines), e.g. the project's ../shared/data; default: IMDB, downloaded once")
    parser.add_argument("--reduction", type=float, default=0.9, help="fraction of embedding parameters to remove")
    parser.add_argument("--epochs", type=int, default=4, help="training epochs in all")
    parser.add_argument("--compress-at", type=int, default=2, help="epoch at whose start the embedding is factorized")
    parser.add_argument("--out", default=None, help="folder for model.keras and model.tflite; None: a new temporary folder")
    args = parser.parse_args(argv)
    folder = None if args.data_dir is None else os.path.join(args.data_dir, SHARED_FOLDER)
    if folder is not None and not os.path.isfile(os.path.join(folder, "train.tsv")):
        parser.exit(1, f"{parser.prog}: no {os.path.join(folder, 'train.tsv')} (label<TAB>text lines; "
                       "leave out --data-dir to use IMDB)\n")

    # Keras and TensorFlow load only now, so --help answers at once.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    import keras_compress
    from keras_compress import CALR, EmbeddingCompression
    from keras_compress.models import dan, load_classification

    if folder is not None:
        print(f"loading {folder}", flush=True)
        data = load_classification(folder, sequence_length=40)
        (x_train, y_train), (x_dev, y_dev), (x_test, y_test) = (data["splits"][s] for s in ("train", "dev", "test"))
        vocabulary_size, classes, length = len(data["vocabulary"]), len(data["classes"]), 40
    else:
        (x_train, y_train), (x_dev, y_dev), (x_test, y_test) = imdb(parser, words=20000, length=200)
        vocabulary_size, classes, length = 20000, 2, 200
    keras.utils.set_random_seed(0)
    # dan()'s default l2 (1e-4); the paper's 0.005 as a Keras L2 stops it learning (docs/which_tool.md).
    model = dan(vocabulary_size, classes, sequence_length=length)
    steps = -(-len(x_train) // 32)
    schedule = CALR(3e-3, step_size=steps // 2, steps_per_epoch=steps)
    model.compile(keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy", metrics=["accuracy"])

    compress = EmbeddingCompression(at_epoch=args.compress_at, reduction=args.reduction)
    model.fit(x_train, y_train, batch_size=32, epochs=args.epochs, validation_data=(x_dev, y_dev),
              callbacks=[compress], verbose=2)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test accuracy {accuracy:.4f} with {compress.params_after:,} parameters (was {compress.params_before:,})")

    print("exporting to TFLite (converts, then checks the file in the LiteRT interpreter)...", flush=True)
    out = args.out or tempfile.mkdtemp()
    os.makedirs(out, exist_ok=True)
    model.save(os.path.join(out, "model.keras"))
    reloaded = keras.models.load_model(os.path.join(out, "model.keras"))  # FactorizedEmbedding round-trips
    assert np.allclose(reloaded.predict(x_test[:8], verbose=0), model.predict(x_test[:8], verbose=0), atol=1e-6)
    result = keras_compress.export_tflite(model, os.path.join(out, "model.tflite"), quantization="dynamic",
                                          sample_inputs=x_test[:64])
    print(f"{result.path}: {result.size_bytes / 1024:.0f} KiB, max |keras - tflite| = {result.max_abs_diff:.2e}")
    return 0


def imdb(parser, words, length):
    """IMDB's train/dev/test (the last 5,000 training reviews are the dev set), padded ids."""
    import keras
    import numpy as np

    print("loading IMDB (keras.datasets.imdb; downloaded once, 17 MB)", flush=True)
    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.imdb.load_data(num_words=words)
    except Exception as error:  # noqa: BLE001 - get_file raises plain Exceptions for network errors
        parser.exit(1, f"{parser.prog}: cannot get IMDB ({' '.join(str(error).split())[:300]}); "
                       f"pass --data-dir with {SHARED_FOLDER}/*.tsv instead\n")

    def pad(sequences):
        return keras.utils.pad_sequences(sequences, maxlen=length, padding="post", truncating="post").astype(np.int32)

    x_train, x_test = pad(x_train), pad(x_test)
    y_train, y_test = np.asarray(y_train, np.int32), np.asarray(y_test, np.int32)
    return (x_train[:-5000], y_train[:-5000]), (x_train[-5000:], y_train[-5000:]), (x_test, y_test)


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help shows this docstring as written and every option's default."""


if __name__ == "__main__":
    sys.exit(main())
