import inspect

import keras_adv
from keras_adv import attacks


def test_top_level_api_is_pinned():
    assert sorted(keras_adv.__all__) == [
        "APGD",
        "APGDT",
        "AdversarialModel",
        "Attack",
        "FABT",
        "FGSM",
        "MIM",
        "NFGSM",
        "PGD",
        "RobustnessResult",
        "RobustnessWarning",
        "Square",
        "__version__",
        "autoattack",
        "callbacks",
        "evaluate_robustness",
        "metrics",
        "objectives",
        "sanity_checks",
    ]
    for name in keras_adv.__all__:
        assert hasattr(keras_adv, name)


def test_attacks_api_is_pinned():
    assert sorted(attacks.__all__) == [
        "APGD",
        "APGDT",
        "Attack",
        "FABT",
        "FGSM",
        "MIM",
        "NFGSM",
        "PGD",
        "Square",
        "get",
        "name_of",
    ]


def test_version_is_semver():
    major, minor, patch = keras_adv.__version__.split(".")
    assert all(part.isdigit() for part in (major, minor, patch))


def test_callbacks_api_is_pinned():
    assert sorted(keras_adv.callbacks.__all__) == [
        "AdversarialMonitor",
        "CatastrophicOverfittingGuard",
        "RobustnessCurve",
    ]


# Tensors, arrays and datasets: as in Keras's own signatures, left unannotated.
DATA_PARAMETERS = {"data", "x", "y", "y_true", "y_pred", "y_pred_adv"}


def _defined_in(module):
    """The public classes and functions `module` defines (not those it imports)."""
    return [
        obj
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and obj.__module__ == module.__name__
    ]


def entry_points():
    """The public constructors and functions a user calls by keyword."""
    from keras_adv import objectives

    public = [
        getattr(namespace, name)
        for namespace in (keras_adv, attacks, keras_adv.callbacks)
        for name in namespace.__all__
    ]
    public += _defined_in(objectives) + _defined_in(keras_adv.metrics)
    public += _defined_in(keras_adv.sanity_checks)
    for obj in public:
        if inspect.isclass(obj):
            yield f"{obj.__name__}.__init__", obj.__init__
            for method in ("generate", "__call__"):
                if method in vars(obj):
                    yield f"{obj.__name__}.{method}", vars(obj)[method]
        elif inspect.isfunction(obj):
            yield obj.__name__, obj


def test_public_signatures_carry_type_hints():
    missing = []
    for where, fn in entry_points():
        if fn is object.__init__:
            continue
        for p in inspect.signature(fn).parameters.values():
            if p.name in {"self", *DATA_PARAMETERS} or p.kind in (
                p.VAR_POSITIONAL,
                p.VAR_KEYWORD,
            ):
                continue
            if p.annotation is p.empty:
                missing.append(f"{where}({p.name})")
    assert missing == []
