import keras
import numpy as np
import pytest

from keras_adv import PGD
from keras_adv.attacks import APGDT


def _accuracy(model, x, y):
    return np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y)


def test_targeted_runs_break_at_least_what_pgd_breaks(trained_logits_model, digits):
    _, (x, y) = digits
    model = trained_logits_model
    x_adv = APGDT(0.1, steps=20, target_classes=3, seed=0).generate(model, x, y)
    assert np.abs(x_adv - x).max() <= 0.1 + 1e-6
    assert 0.0 <= x_adv.min() and x_adv.max() <= 1.0
    pgd = PGD(0.1, steps=20, seed=0).generate(model, x, y)
    assert _accuracy(model, x_adv, y) <= _accuracy(model, pgd, y)


def test_more_target_classes_never_break_fewer(trained_logits_model, digits):
    """Runs add successes: the first target's run is the one-target attack."""
    _, (x, y) = digits
    model = trained_logits_model
    one = APGDT(0.05, steps=10, target_classes=1, seed=3).generate(model, x, y)
    three = APGDT(0.05, steps=10, target_classes=3, seed=3).generate(model, x, y)
    assert _accuracy(model, three, y) <= _accuracy(model, one, y)


def test_uses_at_most_all_other_classes():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5)])
    x = np.random.default_rng(0).uniform(size=(6, 4)).astype("float32")
    x_adv = APGDT(0.1, steps=3, target_classes=9, seed=0).generate(
        model, x, np.arange(6) % 5
    )
    # Nine targets asked, four exist: it runs those and stays in the ball.
    assert x_adv.shape == x.shape
    assert np.abs(x_adv - x).max() <= 0.1 + 1e-6


def test_needs_four_classes():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    x = np.full((2, 4), 0.5, "float32")
    with pytest.raises(ValueError, match="at least 4 classes"):
        APGDT(0.1, steps=2).generate(model, x, np.array([0, 1]))


def test_config_has_no_loss_or_targeted():
    config = APGDT(0.1, steps=5, target_classes=4, seed=2).get_config()
    assert "loss" not in config and "targeted" not in config
    assert APGDT.from_config(config).get_config() == config
