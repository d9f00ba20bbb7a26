"""Issue 24, `.keras` files: our layers refuse weight sizes above a documented limit before
anything is allocated (a tampered config used to reach TensorFlow and exhaust memory), and
refuse NaN or infinite weights on load."""
import json
import zipfile

import h5py
import keras
import numpy as np
import pytest

from keras_compress.layers import (
    FactorizedEmbedding,
    FactorizedReversibleEmbedding,
    QuantizedDense,
    QuantizedEmbedding,
    QuantizedFactorizedEmbedding,
    QuantizedReversibleEmbedding,
    limits,
)

LIMIT = "more than the limit of 2,147,483,648"


def model_with(layer, inputs):
    values = keras.Input(inputs.shape[1:], dtype=inputs.dtype)
    model = keras.Model(values, layer(values))
    model(inputs)
    return model


MODELS = {
    "factorized": (lambda: FactorizedEmbedding(20, 6, rank=3, name="layer"), np.array([[1, 2, 3]])),
    "quantized factorized": (lambda: QuantizedFactorizedEmbedding(20, 6, rank=3, bits=4, name="layer"),
                             np.array([[1, 2, 3]])),
    "quantized embedding": (lambda: QuantizedEmbedding(20, 6, name="layer"), np.array([[1, 2, 3]])),
    "quantized dense": (lambda: QuantizedDense(5, name="layer"), np.ones((2, 4), "float32")),
}
TAMPERED = {"factorized": {"input_dim": 2**31 - 1}, "quantized factorized": {"rank": 2**28},
            "quantized embedding": {"input_dim": 2**31 - 1}, "quantized dense": {"units": 2**31 - 1}}


def rewrite(path, change_config=None, change_weights=None):
    """Copy the .keras zip at ``path`` with its config and/or weights changed; return the copy."""
    tampered = path.with_name("tampered.keras")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "config.json" and change_config:
                config = json.loads(data)
                layer = next(layer for layer in config["config"]["layers"] if layer["config"]["name"] == "layer")
                change_config(layer["config"])
                data = json.dumps(config).encode()
            if item.filename == "model.weights.h5" and change_weights:
                weights = path.with_name("weights.h5")
                weights.write_bytes(data)
                with h5py.File(weights, "r+") as store:
                    change_weights(store)
                data = weights.read_bytes()
            target.writestr(item, data)
    return tampered


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_a_tampered_config_is_refused_before_allocating(tmp_path, kind):
    make, inputs = MODELS[kind]
    path = tmp_path / "model.keras"
    model_with(make(), inputs).save(path)
    tampered = rewrite(path, lambda config: config.update(TAMPERED[kind]))
    with pytest.raises(Exception, match=LIMIT):  # Keras may wrap our ValueError while deserializing
        keras.saving.load_model(tampered, safe_mode=True)
    # A config cannot raise the limit that guards it.
    tampered = rewrite(path, lambda config: config.update(TAMPERED[kind], max_weights=2**62))
    with pytest.raises(Exception, match="a saved config cannot set 'max_weights'"):
        keras.saving.load_model(tampered, safe_mode=True)
    original = keras.saving.load_model(path, safe_mode=True)  # the untouched file loads
    assert original.get_layer("layer").count_params() == sum(int(np.prod(w.shape)) for w in original.weights)


@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_saved_weights_are_refused_on_load(tmp_path, kind, bad):
    make, inputs = MODELS[kind]
    path = tmp_path / "model.keras"
    model_with(make(), inputs).save(path)

    def poison(store):
        # Weights are stored by the layer's class-derived path, not its name.
        variables = next(group for name, group in store["layers"].items() if name != "input_layer")["vars"]
        first = variables["0"]
        first[...] = np.full(first.shape, bad, dtype=first.dtype)

    with pytest.raises(Exception, match="holds NaN or infinite values"):
        keras.saving.load_model(rewrite(path, change_weights=poison), safe_mode=True)


def test_the_limit_is_documented_overridable_and_checked_for_every_weight():
    assert limits.MAX_WEIGHTS == 2**31
    with pytest.raises(ValueError, match=LIMIT):
        FactorizedReversibleEmbedding(2**26, 32, rank=1, tie_weights=False)  # the untied projection counts
    assert FactorizedReversibleEmbedding(2**26, 32, rank=1).rank == 1  # tied: 2**26 + 32 values
    with pytest.raises(ValueError, match=LIMIT):
        QuantizedReversibleEmbedding(2**26, 32, tie_weights=False)
    layer = QuantizedDense(2**27)  # units alone fit; the kernel does not once the input size is known
    with pytest.raises(ValueError, match=LIMIT):
        layer.build((None, 32))
    assert not layer.built and not layer.weights
    # An argument raises the limit for one layer, without allocating anything here.
    assert FactorizedEmbedding(2**31 - 1, 16, rank=4, max_weights=2**36).input_dim == 2**31 - 1
    with pytest.raises(ValueError, match="max_weights must be a positive integer"):
        FactorizedEmbedding(10, 4, rank=2, max_weights=0)
    with pytest.raises(ValueError, match="more than the limit of 50"):
        QuantizedEmbedding(10, 6, max_weights=50)


def test_raising_the_module_limit_loads_a_larger_model(tmp_path, monkeypatch):
    path = tmp_path / "model.keras"
    inputs = np.array([[1, 2, 3]])
    model_with(FactorizedEmbedding(20, 6, rank=3, name="layer"), inputs).save(path)
    monkeypatch.setattr(limits, "MAX_WEIGHTS", 50)  # 20 x 3 + 3 x 6 = 78 values
    with pytest.raises(Exception, match="more than the limit of 50"):
        keras.saving.load_model(path, safe_mode=True)
    monkeypatch.setattr(limits, "MAX_WEIGHTS", 78)
    assert keras.saving.load_model(path, safe_mode=True).get_layer("layer").rank == 3
