"""The engine under distribution and on the other backends, each in a fresh subprocess.

* TensorFlow `MirroredStrategy` on 2 logical CPUs: EmbeddingCompression inside fit, then
  quantize_model + fit.
* PyTorch: EmbeddingCompression inside fit, quantize_model + fit.
* JAX under `keras.distribution.DataParallel` on 2 CPU devices: EmbeddingCompression inside
  fit, then quantize_model + fit.
"""

import os
import subprocess
import sys
import textwrap

import pytest

COMMON = """
import numpy as np
import keras
from keras_compress import compress_embeddings, quantize_model
from keras_compress.training import EmbeddingCompression
from keras_compress.quantization import is_quantized

class Block(keras.layers.Layer):  # a keras.io-style custom layer holding the embedding
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.words = keras.layers.Embedding(200, 16)
        self.dense = keras.layers.Dense(8, activation="relu")
    def call(self, tokens):
        return self.dense(keras.ops.mean(self.words(tokens), axis=1))

def build():
    keras.utils.set_random_seed(0)
    tokens = keras.Input((6,), dtype="int32")
    return keras.Model(tokens, keras.layers.Dense(3, activation="softmax")(Block(name="block")(tokens)))

rng = np.random.default_rng(0)
x, y = rng.integers(1, 200, (64, 6)).astype("int32"), rng.integers(0, 3, 64)

class FactorsAtCompression(keras.callbacks.Callback):  # runs right after EmbeddingCompression
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            self.values = [keras.ops.convert_to_numpy(v) for v in self.model.get_layer("block").words.weights]

def compress_in_fit(model):
    callback, factors = EmbeddingCompression(at_epoch=1, reduction=0.75, verbose=0), FactorsAtCompression()
    history = model.fit(x, y, batch_size=16, epochs=2, callbacks=[callback, factors], verbose=0)
    assert callback.params_after < callback.params_before, (callback.params_before, callback.params_after)
    assert type(model.get_layer("block").words).__name__ == "Embedding"  # saved as the parent re-creates it
    assert np.isfinite(history.history["loss"]).all()
    after = [keras.ops.convert_to_numpy(v) for v in model.get_layer("block").words.weights]
    assert len(after) == 2 and all(not np.allclose(a, b) for a, b in zip(factors.values, after)), \
        "the factors did not train in the epoch after the compression"

def quantize_and_fit(model, scope=None):
    import contextlib
    quantize_model(model, bits=8)
    assert sum(is_quantized(layer) for layer in model._flatten_layers()) == 3
    with scope or contextlib.nullcontext():  # the optimizer belongs in the strategy's scope
        model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
"""

SCRIPTS = {
    "tensorflow_mirrored": """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
COMMON
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
with strategy.scope():
    model = build()
    model.compile("adam", "sparse_categorical_crossentropy")
compress_in_fit(model)
with strategy.scope():
    model = build()
quantize_and_fit(model, strategy.scope())
print("ENGINE OK")
""",
    "torch": """
COMMON
model = build()
model.compile("adam", "sparse_categorical_crossentropy")
compress_in_fit(model)
quantize_and_fit(build())
print("ENGINE OK")
""",
    "jax": """
COMMON
devices = keras.distribution.list_devices("cpu")
assert len(devices) == 2, devices
keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
model = build()
model.compile("adam", "sparse_categorical_crossentropy")
compress_in_fit(model)
table = model.get_layer("block").words.table
assert len(table.value.sharding.device_set) == 2, table.value.sharding  # the factors are placed like any variable
quantize_and_fit(build())
print("ENGINE OK")
""",
}


@pytest.mark.parametrize("backend", [
    "tensorflow_mirrored",
    # A fresh interpreter per backend costs ~15 s of CPU: the default run keeps MirroredStrategy
    # and JAX (the backend keras.distribution scales on).
    pytest.param("torch", marks=pytest.mark.slow),
    "jax",
])
def test_engine_on_backend(backend):
    name = backend.split("_")[0]
    if name != "tensorflow":
        pytest.importorskip(name)
    script = SCRIPTS[backend].replace("COMMON", textwrap.dedent(COMMON))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, KERAS_BACKEND=name, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""),
               XLA_FLAGS="--xla_force_host_platform_device_count=2", CUDA_VISIBLE_DEVICES="",
               JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", script], env=env, cwd=root, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0 and "ENGINE OK" in result.stdout, (result.stdout + result.stderr)[-4000:]
