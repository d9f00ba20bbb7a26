"""The compression engine: find layers at every depth of a Keras model and change them in place.

`compress_embeddings`, `EmbeddingCompression` and `quantize_model` all go through here. A layer
is changed the way Keras changes its own layers (`Embedding.enable_lora`, `Layer.quantize`): the
layer object stays where it is and changes what it computes. Keras does that with a method and a
mode flag on its own classes; we cannot add methods to Keras's classes, so the layer's class
becomes a subclass (or, for `keras_hub.layers.ReversibleEmbedding`, a sibling) that adds the
behaviour, with the same constructor arguments plus ours, registered for `.keras` files. Every
reference to the layer stays valid - a Functional graph's nodes, a custom layer's attributes and
lists, a keras-hub task's cached-decoding code, `MultiHeadAttention`'s projections - so the
user's model keeps its object, class and methods (a keras-hub `CausalLM` still generates), and
no graph is rebuilt.

Saving. A `.keras` file stores each layer's config only where its owner serializes it (the
layers of a Functional or Sequential model, the wrapped layer of `Bidirectional`); a layer that
its parent creates in code (`__init__` of a keras.io-style custom layer, `build` of
`MultiHeadAttention`, every layer inside a keras-hub backbone) is re-created by that code as the
plain Keras layer on load. `Site.restorable` says which case a layer is in. Restorable layers
save their own weights (factors, float master weights) and reload as our classes. The others
save the plain layer's weights computed from ours - the factor product, the weights snapped to
the quantization grid - the way Keras's LoRA merges on save, so the file reloads in
`safe_mode` as the plain layer with equal outputs.

Private Keras attributes are used only in this module, and `check_keras_internals()` (run by
the test suite) fails loudly when a Keras release moves them. Tested with Keras 3.15.
"""

import contextlib
import dataclasses
import warnings

import keras

__all__ = [
    "Site",
    "all_layers",
    "walk",
    "change_class",
    "base_class",
    "replace_variables",
    "after_change",
    "model_scope",
    "select",
    "warn_once",
    "check_keras_internals",
    "attention_projections",
]

TESTED_KERAS = "3.15"


@dataclasses.dataclass(frozen=True)
class Site:
    """A layer found in a model.

    Attributes:
        layer: the layer.
        path: its owners' names and its own, joined by "/" (for messages).
        restorable: whether a `.keras` file records this layer's config, so that it reloads as
            the class it has now (see the module docstring).
        leaf: whether it has no sublayers.
    """

    layer: object
    path: str
    restorable: bool
    leaf: bool


def children(layer):
    """The direct sublayers of ``layer`` (attributes, lists, dicts, graph operations)."""
    return list(layer._flatten_layers(include_self=False, recursive=False))


def all_layers(model):
    """Every layer under ``model`` at every depth, each once (no configs computed)."""
    return list(model._flatten_layers(include_self=False))


def walk(model):
    """Every layer under ``model`` at every depth, each once, depth first, as `Site` objects."""
    seen = {id(model)}
    found = []

    def visit(owner, owner_path, owner_restorable):
        config = _config_of(owner) if owner_restorable else None
        for child in children(owner):
            if id(child) in seen:
                continue
            seen.add(id(child))
            path = f"{owner_path}/{child.name}" if owner_path else child.name
            restorable = config is not None and _mentions(config, child.name)
            grandchildren = children(child)
            found.append(Site(child, path, restorable, not grandchildren))
            if grandchildren:
                visit(child, path, restorable)

    visit(model, "", True)
    return found


def _config_of(layer):
    try:
        return layer.get_config()
    except Exception:  # custom layers without get_config: nothing of theirs is recorded
        return None


def _mentions(config, name):
    """Whether ``config`` holds a serialized layer named ``name`` (as Functional and wrapper
    layers do), as opposed to hyperparameters from which the owner builds its sublayers."""
    if isinstance(config, dict):
        inner = config.get("config")
        if "class_name" in config and isinstance(inner, dict) and inner.get("name") == name:
            return True
        return any(_mentions(value, name) for value in config.values())
    if isinstance(config, (list, tuple)):
        return any(_mentions(value, name) for value in config)
    return False


def change_class(layer, new_class, saved_as=None, **attributes):
    """Give ``layer`` the class ``new_class`` (same instance layout) and set ``attributes``.

    The new class must add behaviour only (methods, properties); the object keeps its
    variables, name, trainable flag, dtype policy and every reference to it.

    ``saved_as``: for a layer that its parent re-creates on load (``Site.restorable`` false),
    the class it will be re-created as. Keras files name the entries of layer lists (a
    Sequential's layers, keras-hub's ``transformer_layers``) after the class, so the layer gets
    a subclass of ``new_class`` bearing that class's name, and its weights land where the
    re-created layer looks for them.
    """
    if not isinstance(layer, keras.layers.Layer) or not issubclass(new_class, keras.layers.Layer):
        raise TypeError(f"change_class needs Keras layers, got {type(layer).__name__} -> {new_class.__name__}")
    if saved_as is not None and saved_as.__name__ != new_class.__name__:
        new_class = _named_variant(new_class, saved_as.__name__)
    layer.__class__ = new_class
    for name, value in attributes.items():
        object.__setattr__(layer, name, value)
    return layer


_VARIANTS = {}


def _named_variant(cls, name):
    key = (cls, name)
    if key not in _VARIANTS:
        _VARIANTS[key] = type(name, (cls,), {"__module__": cls.__module__, "__qualname__": name,
                                             "variant_of": cls})
    return _VARIANTS[key]


def base_class(layer):
    """The class of ``layer`` as this library registered it (not a `change_class` name variant)."""
    return type(layer).__dict__.get("variant_of", type(layer))


def replace_variables(layer, remove, create):
    """Untrack and delete the variables ``remove`` of ``layer``, then call ``create()``, which
    adds new ones with ``layer.add_weight`` (after build, as `Embedding.enable_lora` does).

    The new variables follow the layer's ``trainable`` flag, so a frozen layer stays frozen.
    """
    names = {id(value): name for name, value in vars(layer).items() if any(value is v for v in remove)}
    missing = [variable.path for variable in remove if id(variable) not in names]
    if missing:
        raise ValueError(f"layer {layer.name!r} does not hold {missing} as attributes")
    layer._tracker.unlock()
    try:
        for variable in remove:
            delattr(layer, names[id(variable)])  # Layer.__delattr__ untracks it
        created = create()
    finally:
        layer._tracker.lock()
    for variable in created:
        variable.trainable = layer.trainable
    return created


def after_change(model):
    """Make ``model`` use its changed layers: drop traced train/test/predict functions (they
    captured the old computation) and, on PyTorch, re-register parameters (as
    `Model.quantize` does)."""
    for attribute in ("train_function", "test_function", "predict_function"):
        if getattr(model, attribute, None) is not None:
            setattr(model, attribute, None)
    if keras.backend.backend() == "torch":
        for layer in model._flatten_layers(include_self=True):
            layer._track_variables()


def model_scope(model):
    """The scope new variables of ``model`` must be created in: its `tf.distribute` strategy's
    (variables created outside it break `MirroredStrategy` training), else a no-op."""
    strategy = getattr(model, "distribute_strategy", None) if keras.backend.backend() == "tensorflow" else None
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def check_layer_argument(argument, value):
    """Validate a ``layers=``/``exclude=`` argument: None, a callable, a name, a layer, or a
    list/tuple of names and layers. Returns it as None, a callable or a list."""
    if value is None or callable(value) and not isinstance(value, keras.layers.Layer):
        return value
    if isinstance(value, (str, keras.layers.Layer)):
        return [value]
    if isinstance(value, (list, tuple, set)):
        bad = [item for item in value if not isinstance(item, (str, keras.layers.Layer))]
        if not bad:
            return list(value)
    raise TypeError(
        f"{argument} must be None, a layer name, a layer, a list of them or a predicate "
        f"layer -> bool, got {value!r}"
    )


def select(sites, argument, value):
    """The predicate ``site -> bool`` of a validated ``layers=``/``exclude=`` argument.

    Names match a layer's name or its full path; an unknown name raises ValueError listing the
    names that exist.
    """
    value = check_layer_argument(argument, value)
    if value is None:
        return None
    if callable(value):
        return lambda site: bool(value(site.layer))
    names = {site.layer.name for site in sites} | {site.path for site in sites}
    ids = {id(site.layer) for site in sites}
    unknown = [item for item in value if (item not in names if isinstance(item, str) else id(item) not in ids)]
    if unknown:
        shown = sorted({site.layer.name for site in sites})
        raise ValueError(f"{argument} names layers the model does not have: {unknown}; it has {shown}")
    wanted_names = {item for item in value if isinstance(item, str)}
    wanted_ids = {id(item) for item in value if not isinstance(item, str)}
    return lambda site: (site.layer.name in wanted_names or site.path in wanted_names
                         or id(site.layer) in wanted_ids)


def warn_once(message, items, stacklevel=3):
    """One UserWarning naming every item (nothing is left out silently)."""
    if items:
        warnings.warn(f"{message}: {', '.join(items)}", UserWarning, stacklevel=stacklevel)


def set_mask(tensor, mask):
    """Attach a Keras mask to a layer's output (what `ReversibleEmbedding.call` does)."""
    from keras.src.backend import set_keras_mask

    set_keras_mask(tensor, mask)


def check_keras_internals():
    """Fail loudly if this Keras moved a private attribute the engine relies on."""
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    problems = []
    if not callable(getattr(layer, "_flatten_layers", None)):
        problems.append("Layer._flatten_layers")
    tracker = getattr(layer, "_tracker", None)
    if not (callable(getattr(tracker, "unlock", None)) and callable(getattr(tracker, "lock", None))):
        problems.append("Layer._tracker.unlock/lock")
    if keras.backend.backend() == "torch" and not callable(getattr(layer, "_track_variables", None)):
        problems.append("TorchLayer._track_variables")
    try:
        from keras.src.backend import set_keras_mask  # noqa: F401
    except ImportError:
        problems.append("keras.src.backend.set_keras_mask")
    if not problems:
        try:
            layer._tracker.unlock()
            extra = layer.add_weight(shape=(1,), name="probe")
            layer._tracker.lock()
            delattr(layer, "bias")
            if not any(extra is weight for weight in layer.weights) or len(layer.weights) != 2:
                problems.append("variable tracking after build (unlock/add_weight/delattr)")
        except Exception as error:  # pragma: no cover - only on a Keras that changed
            problems.append(f"variable tracking after build ({error!r})")
    if problems:
        raise RuntimeError(
            f"keras_compress.engine was written for Keras {TESTED_KERAS}; Keras "
            f"{keras.__version__} changed {problems}. Please report this."
        )
    return True


# `MultiHeadAttention`'s projections (private attributes; the public API has no accessor).
_ATTENTION_PROJECTIONS = {"query": "_query_dense", "key": "_key_dense", "value": "_value_dense",
                          "output": "_output_dense"}


def attention_projections(attention):
    """The `query`, `key`, `value` and `output` projections (`EinsumDense`, quantized ones too) of
    a built `keras.layers.MultiHeadAttention`, as a dict. Raises RuntimeError naming what this
    Keras moved."""
    projections = {name: getattr(attention, private, None) for name, private in _ATTENTION_PROJECTIONS.items()}
    missing = [f"MultiHeadAttention.{_ATTENTION_PROJECTIONS[name]}"
               for name, value in projections.items() if not callable(value)]
    if missing:
        raise RuntimeError(
            f"keras_compress.engine was written for Keras {TESTED_KERAS}; Keras {keras.__version__} "
            f"moved {missing} of attention layer {attention.name!r}. Please report this.")
    return projections
