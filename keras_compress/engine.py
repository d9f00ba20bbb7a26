"""The compression engine: the one place that changes a Keras model.

Every change goes through one loop: `plan` walks the model (every depth), asks a `Rule` which
layers it takes and what class each becomes, and names what it leaves; `apply` converts the
planned layers in the model's distribution scope, records each change on its layer (a typed
`Change`), then `after_change` drops everything compiled from the old model; `revert` undoes a
rule's changes (`strip`). Factorization (`keras_compress.factorization`) and quantization
(`keras_compress.quantization`) are rules; neither walks models nor touches Keras privates.

A layer is changed the way Keras changes its own layers (`Embedding.enable_lora`, `Layer.quantize`): the
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

Private Keras attributes are used only in this module (TFLite's and LiteRT's only in
`keras_compress.export`). `KERAS_INTERNALS` lists each with a probe; the test suite runs every
probe by name, so a Keras release that moves one fails naming it. Tested with Keras 3.15.
"""

import contextlib
import dataclasses
import sys
import warnings
import weakref
from typing import Any, Callable, Optional, Sequence, Union

import keras

__all__ = [
    "Site",
    "Change",
    "Rule",
    "Plan",
    "plan",
    "apply",
    "revert",
    "changes",
    "changed_by",
    "saves_merged",
    "all_layers",
    "walk",
    "after_change",
    "ModelCache",
    "model_scope",
    "select",
    "warn_once",
    "replace_variables",
    "embedding_table",
    "attention_projections",
    "KERAS_INTERNALS",
    "check_keras_internals",
]

TESTED_KERAS = "3.15"

# What `layers=` and `exclude=` take: a layer name or path, a layer, a list of them, or a
# predicate ``layer -> bool`` (None: every layer).
LayerChoice = Union[None, str, keras.layers.Layer, Sequence[Union[str, keras.layers.Layer]],
                    Callable[[keras.layers.Layer], bool]]


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


@dataclasses.dataclass(frozen=True)
class Change:
    """One change the engine made to a layer. `changes(layer)` lists them, oldest first.

    Attributes:
        rule: the name of the `Rule` that made it (``"factorize"``, ``"quantize"``).
        before: the layer's class before the change; `revert` gives it back.
        added: the attributes the change gave the layer that it did not have; `revert` removes them.
        saves_merged: whether the layer's parent re-creates it as the plain Keras layer when a
            `.keras` file loads (`Site.restorable` false), so it saves the plain layer's weights.
    """

    rule: str
    before: type
    added: tuple = ()
    saves_merged: bool = False


_CHANGES = "_keras_compress_changes"  # the one attribute the engine adds to a layer it changed


def changes(layer: keras.layers.Layer) -> tuple:
    """The `Change` records of ``layer``, oldest first (empty for a layer the engine never changed,
    including one constructed directly as one of this library's classes)."""
    return vars(layer).get(_CHANGES, ())


def changed_by(layer: keras.layers.Layer, rule: str) -> bool:
    """Whether a `Rule` named ``rule`` changed ``layer`` and the change was not reverted."""
    return any(change.rule == rule for change in changes(layer))


def user_class(layer):
    """The class ``layer`` had before any change of the engine (what its user built)."""
    recorded = changes(layer)
    return recorded[0].before if recorded else type(layer)


def saves_merged(layer):
    """Whether ``layer`` saves the plain Keras layer's weights (see `Change.saves_merged`)."""
    recorded = changes(layer)
    return bool(recorded) and recorded[-1].saves_merged


def now_restorable(layer):
    """Its parent now records ``layer``'s config (a rule's ``finish`` made the parent one of this
    library's classes): ``layer`` saves its own weights under its own class name again."""
    recorded = changes(layer)
    if recorded and recorded[-1].saves_merged:
        layer.__class__ = base_class(layer)
        object.__setattr__(layer, _CHANGES, recorded[:-1] + (dataclasses.replace(recorded[-1], saves_merged=False),))


def change(layer, new_class, rule, merged=False, **attributes):
    """Give ``layer`` the class ``new_class`` (same instance layout), set ``attributes`` and
    record the `Change` under the rule named ``rule``.

    The new class must add behaviour only (methods, properties); the object keeps its
    variables, name, trainable flag, dtype policy and every reference to it.

    ``merged``: the layer's parent re-creates it on load (``Site.restorable`` false) as its
    user's class. Keras files name the entries of layer lists (a Sequential's layers, keras-hub's
    ``transformer_layers``) after the class, so the layer gets a subclass of ``new_class`` bearing
    that class's name, and its weights land where the re-created layer looks for them.
    """
    if not isinstance(layer, keras.layers.Layer) or not issubclass(new_class, keras.layers.Layer):
        raise TypeError(f"the engine changes Keras layers, got {type(layer).__name__} -> {new_class.__name__}")
    record = Change(rule, type(layer), tuple(name for name in attributes if name not in vars(layer)), merged)
    saved_as = user_class(layer)
    if merged and saved_as.__name__ != new_class.__name__:
        new_class = _named_variant(new_class, saved_as.__name__)
    layer.__class__ = new_class
    for name, value in attributes.items():
        object.__setattr__(layer, name, value)  # plain attributes, outside Keras's tracking
    object.__setattr__(layer, _CHANGES, changes(layer) + (record,))
    return layer


def _undo(layer, record):
    """Give ``layer`` its class before ``record`` and remove what ``record`` added."""
    layer.__class__ = record.before
    for name in record.added:
        vars(layer).pop(name, None)
    remaining = tuple(change for change in changes(layer) if change is not record)
    if remaining:
        object.__setattr__(layer, _CHANGES, remaining)
    else:
        vars(layer).pop(_CHANGES, None)


_VARIANTS = {}


def _named_variant(cls, name):
    key = (cls, name)
    if key not in _VARIANTS:
        _VARIANTS[key] = type(name, (cls,), {"__module__": cls.__module__, "__qualname__": name,
                                             "variant_of": cls})
    return _VARIANTS[key]


def base_class(layer):
    """The class of ``layer`` as this library registered it (not a saving name variant)."""
    return type(layer).__dict__.get("variant_of", type(layer))


@dataclasses.dataclass(frozen=True)
class Rule:
    """A kind of change the engine applies: which layers it takes and what each becomes.

    Attributes:
        name: recorded in each `Change` (``"factorize"``, ``"quantize"``).
        function: the public function, named in messages (``"quantize_model"``).
        targets: ``() -> {class: new class}``; exact classes only (a subclass of Dense may
            compute something else, so it is named as skipped, never converted). A function
            because keras-hub's classes join when keras-hub is imported.
        considers: ``(Site) -> bool``: the layers the rule looks at at all (the others are
            neither converted nor named).
        check: ``(layer, **options) -> (reason, layer_options)``: why to leave a considered,
            built, float layer of a target class (``None`` to convert), and the options of
            its conversion.
        convert: ``(layer, swap, **layer_options)``: converts one layer; ``swap(**attributes)``
            changes its class (the engine records the change) and must be called once.
        finish: ``(sites, **options)``, optional: runs after every planned layer is converted.
        restore: ``(layer)``, optional: runs on each layer before `revert` gives it its class
            back (quantization puts the weights on the grid there).
        unrecorded: ``(layer) -> Change or None``, optional: the change to revert on a layer of
            the rule's classes that the engine did not record (built directly, or reloaded).
        noun: what the rule converts, for messages (``"embedding"``, ``"layer"``).
        nothing: the error when a model has nothing to convert, after ``Model 'name' ``.
        left: warning for the layers found but left, ``{converted}`` the count converted.
        merged: warning for the converted layers that a `.keras` file reloads as plain layers.
    """

    name: str
    function: str
    targets: Callable[[], dict]
    considers: Callable[[Site], bool]
    check: Callable[..., tuple]
    convert: Callable[..., Any]
    finish: Optional[Callable[..., Any]] = None
    restore: Optional[Callable[[Any], Any]] = None
    unrecorded: Optional[Callable[[Any], Optional[Change]]] = None
    noun: str = "layer"
    nothing: str = "has no layer to convert"
    left: str = "{function} left these layers unchanged"
    merged: str = "these layers are created by their parent layer's code; a .keras file reloads them as plain layers"


def keras_hub_alias(classes, name):
    """``classes`` plus keras-hub's alias of the Keras class ``name`` (``ReversibleEmbedding``)
    mapped to the same target, when keras-hub is imported (it adds nothing to Keras's class)."""
    hub = sys.modules.get("keras_hub")
    if hub is not None:
        classes = {**classes, getattr(hub.layers, name): classes[getattr(keras.layers, name)]}
    return classes


@dataclasses.dataclass
class Plan:
    """What `apply` will do: ``convert`` holds (site, layer options) pairs, ``skipped`` the
    layers found but left, as ``"path (reason)"``."""

    rule: Rule
    convert: list
    skipped: list
    options: dict


def check_model(model, function):
    """Raise unless ``model`` is a built Keras layer or model."""
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"{function} needs a Keras model, got {type(model).__name__}")
    if not model.built:
        raise ValueError(f"Model {model.name!r} is not built: build, call or train it before {function}")


def plan(model: keras.layers.Layer, rule: Rule, layers: LayerChoice = None, exclude: LayerChoice = None,
         **options: Any) -> Plan:
    """What `apply` would do to ``model`` under ``rule``, without doing it.

    Args:
        model: a built Keras model.
        rule: a `Rule`.
        layers: None for every layer the rule takes; names, paths (``"block/dense"``), layer
            objects, or a predicate ``layer -> bool``. A layer named here that the rule cannot
            convert raises.
        exclude: the same forms, for layers to leave.
        **options: the rule's options, passed to its ``check``.

    Raises:
        TypeError, ValueError: a bad model or argument, an unknown layer name, a named layer the
            rule refuses, or nothing to convert.
    """
    check_model(model, rule.function)
    sites = walk(model)
    chosen = select(sites, "layers", layers)
    excluded = select(sites, "exclude", exclude)
    named = layers is not None and not callable(layers)
    targets = rule.targets()
    convert, skipped, refused = [], [], []
    for site in sites:
        layer = site.layer
        if excluded is not None and excluded(site) or chosen is not None and not chosen(site):
            continue
        if not rule.considers(site):
            if named:
                refused.append(f"{site.path} ({type(layer).__name__}, not a {rule.noun} {rule.function} converts)")
            continue
        layer_options = {}
        if base_class(layer) not in targets:
            recorded = changes(layer)
            reason = (f"{type(layer).__name__}, changed by {recorded[-1].rule}: {rule.function} must come first"
                      if recorded else f"{type(layer).__name__}, a class {rule.function} does not convert")
        elif layer.quantization_mode is not None or getattr(layer, "lora_enabled", False):
            reason = f"{type(layer).__name__}, already quantized by Keras or LoRA-enabled"
        elif not layer.built:
            reason = f"{type(layer).__name__}, not built"
        else:
            reason, layer_options = rule.check(layer, **options)
        if reason is None:
            convert.append((site, layer_options))
        elif named:
            refused.append(f"{site.path} ({reason})")
        else:
            skipped.append(f"{site.path} ({reason})")
    if refused:
        raise ValueError(f"{rule.function} cannot convert the {rule.noun}s named in layers=: {'; '.join(refused)}")
    if not convert:
        raise ValueError(
            f"Model {model.name!r} {rule.nothing}"
            + (f" among {layers}" if layers is not None else "")
            + (f"; found but skipped: {'; '.join(skipped)}" if skipped else "")
        )
    return Plan(rule, convert, skipped, options)


def apply(model: keras.layers.Layer, plan: Plan) -> keras.layers.Layer:
    """Carry out a `plan` on ``model``, in place, in its distribution scope; then `after_change`
    and one warning for the layers left and one for those a `.keras` file reloads as plain
    layers. Returns ``model``."""
    rule = plan.rule
    with model_scope(model):
        for site, layer_options in plan.convert:
            target = rule.targets()[base_class(site.layer)]
            swapped = []

            def swap(layer=site.layer, target=target, merged=not site.restorable, **attributes):
                if swapped:
                    raise RuntimeError(f"rule {rule.name!r} changed {layer.name!r} twice")
                swapped.append(change(layer, target, rule.name, merged=merged, **attributes))

            rule.convert(site.layer, swap, **layer_options)
            if not swapped:
                raise RuntimeError(f"rule {rule.name!r} did not change {site.layer.name!r}")
        if rule.finish is not None:
            rule.finish(walk(model), **plan.options)
    after_change(model)
    converted = len(plan.convert)
    warn_once(rule.left.format(function=rule.function, converted=converted), plan.skipped, stacklevel=4)
    merged = [site.path for site, _ in plan.convert
              if any(change.saves_merged for change in changes(site.layer)[-1:])]
    shown = merged[:5] + ([f"... {len(merged) - 5} more"] if len(merged) > 5 else [])
    warn_once(rule.merged.format(function=rule.function, converted=converted, merged=len(merged)), shown,
              stacklevel=4)
    return model


def revert(model: keras.layers.Layer, rule: Rule) -> keras.layers.Layer:
    """Undo every change of ``rule`` in ``model`` (the newest change of each layer, if it is the
    rule's; layers of the rule's classes that were never recorded through ``rule.unrecorded``):
    ``rule.restore(layer)`` first, then the layer's class before the change, without the
    attributes the change added. Then `after_change`. Returns ``model``."""
    undo = []
    for layer in all_layers(model) + [model]:
        recorded = changes(layer)
        if recorded and recorded[-1].rule == rule.name:
            undo.append((layer, recorded[-1]))
        elif not recorded and rule.unrecorded is not None:
            synthesized = rule.unrecorded(layer)
            if synthesized is not None:
                undo.append((layer, synthesized))
    if rule.restore is not None:
        for layer, _ in undo:
            rule.restore(layer)
    for layer, record in undo:
        _undo(layer, record)
    after_change(model)
    return model


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


def embedding_table(layer):
    """The V x d table variable of a Keras ``Embedding``, even when a subclass of ours overrides
    ``embeddings`` with a computed value (the factor product, the fake-quantized table)."""
    return keras.layers.Embedding.embeddings.fget(layer)


class ModelCache(weakref.WeakKeyDictionary):
    """Functions compiled from a model, keyed by the model (weakly). `after_change` drops the
    entries of every changed model and of every model that contains it or that it contains, so
    a cache of this type never serves a function traced before a change."""

    def __init__(self):
        super().__init__()
        _CACHES.append(self)


_CACHES = []  # every ModelCache (module-level caches, alive as long as their modules)

# Attributes in which keras-hub tasks keep functions compiled from their weights: a
# `CausalLM`'s and a `Seq2SeqLM`'s `generate_function` (public; their `compile` resets it the
# same way). The sampler keeps only its random seed, which no change makes stale.
_COMPILED_ATTRIBUTES = ("train_function", "test_function", "predict_function", "generate_function")


def after_change(model: keras.layers.Layer) -> None:
    """Make ``model`` use its changed layers: drop every function compiled from the old ones -
    Keras's train/test/predict functions and keras-hub's ``generate_function`` at every depth,
    and this library's `ModelCache` entries - and, on PyTorch, re-register parameters (as
    `Model.quantize` does). Change the outermost model you will call: an outer model that
    wraps ``model`` keeps its own compiled functions."""
    inside = [model] + all_layers(model)
    for layer in inside:
        for attribute in _COMPILED_ATTRIBUTES:
            if getattr(layer, attribute, None) is not None:
                setattr(layer, attribute, None)
    changed = {id(layer) for layer in inside}
    for cache in list(_CACHES):
        for key in list(cache.keys()):
            if id(key) in changed or id(model) in {id(layer) for layer in all_layers(key)}:
                cache.pop(key, None)
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


@contextlib.contextmanager
def calibration_hooks_reached(block):
    """Keras 3.15 calibrates GPTQ / AWQ by patching each layer's `call` with a hook, but
    dispatches a layer already switched to its GPTQ / AWQ dtype policy to `quantized_call`, so
    the hooks never run: the Hessians and activation statistics stay zero and the result is
    round-to-nearest (keras-team/keras#23512). While `block` is called inside this context,
    route each of its uncalibrated layers that carries such a hook to it (it computes with the
    float kernel, as `quantized_call` would). A Keras with the fix sets no such layer up, and
    this does nothing."""
    routed = [layer for layer in all_layers(block)
              if getattr(layer, "quantization_mode", None) in ("gptq", "awq")
              and "call" in vars(layer) and "quantized_call" not in vars(layer)
              and not getattr(layer, f"is_{layer.quantization_mode}_calibrated", False)]
    for layer in routed:
        layer.quantized_call = layer.call
    try:
        yield
    finally:
        for layer in routed:
            del layer.quantized_call


def _probe_flatten_layers():
    outer = keras.Sequential([keras.layers.Dense(2)])
    assert [type(layer) for layer in outer._flatten_layers(include_self=False)] == [keras.layers.Dense]


def _probe_tracking_after_build():
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    layer._tracker.unlock()
    extra = layer.add_weight(shape=(1,), name="probe")
    layer._tracker.lock()
    delattr(layer, "bias")
    assert any(extra is weight for weight in layer.weights) and len(layer.weights) == 2


def _probe_set_keras_mask():
    from keras.src.backend import set_keras_mask  # noqa: F401


def _probe_embedding_property():
    layer = keras.layers.Embedding(4, 2)
    layer.build()
    assert embedding_table(layer) is layer._embeddings


def _probe_attention_projections():
    attention = keras.layers.MultiHeadAttention(num_heads=1, key_dim=2)
    attention.build((1, 3, 2), (1, 3, 2))
    assert all(isinstance(layer, keras.layers.EinsumDense) for layer in attention_projections(attention).values())


def _probe_quantized_call():
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    assert callable(layer.quantized_call) and not hasattr(layer, "is_gptq_calibrated")


def _probe_torch_track_variables():
    if keras.backend.backend() == "torch":
        assert callable(keras.layers.Dense(1)._track_variables)


# Every private Keras attribute the library uses, with a probe that raises if this Keras moved it.
KERAS_INTERNALS = {
    "Layer._flatten_layers": _probe_flatten_layers,
    "Layer._tracker (variables added and removed after build)": _probe_tracking_after_build,
    "keras.src.backend.set_keras_mask": _probe_set_keras_mask,
    "Embedding.embeddings (the property's getter) and Embedding._embeddings": _probe_embedding_property,
    "MultiHeadAttention._query_dense/_key_dense/_value_dense/_output_dense": _probe_attention_projections,
    "TorchLayer._track_variables": _probe_torch_track_variables,
    "Layer.quantized_call and is_<mode>_calibrated (calibration_hooks_reached, keras#23512)":
        _probe_quantized_call,
}


def check_keras_internals():
    """Run every probe of `KERAS_INTERNALS`; raise RuntimeError naming the attributes this Keras
    moved. Returns True."""
    problems = []
    for name, probe in KERAS_INTERNALS.items():
        try:
            probe()
        except Exception as error:  # pragma: no cover - only on a Keras that changed
            problems.append(f"{name} ({type(error).__name__}: {error})")
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
