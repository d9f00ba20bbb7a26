"""Train a DAN sentiment classifier, shrink its embedding by 90% during fit, export to TFLite.

Online embedding compression (Acharya et al., AAAI 2019) in one fit call: the
EmbeddingCompression callback factorizes the embedding by SVD after a few epochs and training
recovers the accuracy; CALR drives Adam's learning rate.

    python examples/compress_classifier.py [--data ../shared/data/classify/rt_polarity]

Keras prints one line an epoch.
"""

import argparse
import os
import sys
import tempfile

DATA = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--data", default=os.path.join(DATA, "classify", "rt_polarity"),
                        help="folder with train.tsv, dev.tsv and test.tsv (label<TAB>text lines)")
    parser.add_argument("--reduction", type=float, default=0.9, help="fraction of embedding parameters to remove")
    parser.add_argument("--epochs", type=int, default=4, help="training epochs in all")
    parser.add_argument("--compress-at", type=int, default=2, help="epoch at whose start the embedding is factorized")
    parser.add_argument("--out", default=None, help="folder for model.keras and model.tflite; None: a new temporary folder")
    args = parser.parse_args(argv)
    if not os.path.exists(os.path.join(args.data, "train.tsv")):
        print(f"skipping: {args.data}/train.tsv not found")
        return 0

    # Keras and TensorFlow load only now, so --help answers at once.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    import keras_compress
    from keras_compress import CALR, EmbeddingCompression
    from keras_compress.models import dan, load_classification

    print(f"loading {args.data}", flush=True)
    data = load_classification(args.data, sequence_length=40)
    (x_train, y_train), (x_dev, y_dev), (x_test, y_test) = (data["splits"][s] for s in ("train", "dev", "test"))
    keras.utils.set_random_seed(0)
    # dan()'s default l2 (1e-4); the paper's 0.005 as a Keras L2 stops it learning (docs/which_tool.md).
    model = dan(len(data["vocabulary"]), len(data["classes"]), sequence_length=40)
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


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help shows this docstring as written and every option's default."""


if __name__ == "__main__":
    sys.exit(main())
