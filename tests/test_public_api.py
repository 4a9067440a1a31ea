import keras_adv
from keras_adv import attacks


def test_top_level_api_is_pinned():
    assert sorted(keras_adv.__all__) == [
        "APGD",
        "APGDT",
        "AdversarialModel",
        "Attack",
        "FGSM",
        "MIM",
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
        "FGSM",
        "MIM",
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
