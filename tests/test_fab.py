"""FAB-T (Croce & Hein 2020): minimal L-inf perturbations, checked where the
minimum is known (a linear model) and against the budget it is judged at."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_adv import attacks
from keras_adv.attacks.fab import FABT
from keras_adv.attacks.fab import project_onto_hyperplane


def test_the_box_projection_is_the_smallest_step_onto_the_plane():
    rng = np.random.default_rng(0)
    points = rng.uniform(0.2, 0.8, (64, 12)).astype("float32")
    w = rng.normal(size=(64, 12)).astype("float32")
    c = rng.normal(size=64).astype("float32")
    d = ops.convert_to_numpy(project_onto_hyperplane(points, w, c, 0.0, 1.0))
    reachable = np.abs(c) <= np.abs(w).sum(1) * 0.2  # room >= 0.2 everywhere
    # on the plane, inside the box, and of L-inf size |c| / ||w||_1 where
    # no coordinate hits the box edge (the unconstrained minimum)
    np.testing.assert_allclose((w * d).sum(1)[reachable], c[reachable], atol=1e-4)
    assert (points + d).min() >= -1e-6 and (points + d).max() <= 1 + 1e-6
    size = np.abs(d).max(1)
    np.testing.assert_allclose(
        size[reachable], (np.abs(c) / np.abs(w).sum(1))[reachable], rtol=1e-4
    )
    # Near the box edge: the smallest step uses the other coordinates more,
    # and a plane out of reach moves every coordinate to its edge.
    edge = np.array([[0.99, 0.5]], "float32")
    d = ops.convert_to_numpy(
        project_onto_hyperplane(edge, np.array([[1.0, 1.0]], "float32"),
                                np.array([0.4], "float32"), 0.0, 1.0)
    )  # fmt: skip
    np.testing.assert_allclose(d, [[0.01, 0.39]], atol=1e-6)
    d = ops.convert_to_numpy(
        project_onto_hyperplane(edge, np.array([[1.0, 1.0]], "float32"),
                                np.array([5.0], "float32"), 0.0, 1.0)
    )  # fmt: skip
    np.testing.assert_allclose(d, [[0.01, 0.5]], atol=1e-6)


def linear(seed=0, classes=3, features=10):
    inputs = keras.Input((features,))
    layer = keras.layers.Dense(classes)
    model = keras.Model(inputs, layer(inputs))
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [rng.normal(size=(features, classes)).astype("float32"),
         np.zeros(classes, "float32")]
    )  # fmt: skip
    return model, layer.get_weights()[0]


def test_on_a_linear_model_it_finds_the_smallest_perturbation():
    model, weights = linear()
    rng = np.random.default_rng(1)
    x = rng.uniform(0.45, 0.55, (32, 10)).astype("float32")
    logits = x @ weights
    y = logits.argmax(1)
    # the smallest L-inf step to any other class k: the logit gap over the
    # L1 norm of the difference of the two weight columns
    rows = np.arange(32)
    gaps = logits[rows, y][:, None] - logits  # (32, 3), 0 at the true class
    spans = np.abs(weights.T[y][:, None, :] - weights.T[None]).sum(-1)  # (32, 3)
    true = np.arange(3)[None] == y[:, None]
    smallest = np.where(true, np.inf, gaps / np.where(true, 1.0, spans)).min(1)
    inside = smallest < 0.4  # reachable without touching [0, 1]'s edges
    assert inside.sum() > 10
    broken = FABT(1.0, steps=20).generate(model, x, y)
    size = np.abs(broken - x).max(1)
    wrong = (broken @ weights).argmax(1) != y
    assert np.all(wrong[inside])
    # within 6% of the minimum: FAB overshoots by eta = 1.05, then pulls back
    assert np.all(size[inside] >= smallest[inside] * (1 - 1e-4))
    assert np.all(size[inside] <= smallest[inside] * 1.06)
    # judged at a budget below the minimum: nothing is broken, x is returned
    kept = FABT(0.9, steps=20).generate(model, x[inside], y[inside] * 0 + y[inside])
    below = FABT(1.0, steps=20)
    x_small = below.generate(
        model, x[inside], y[inside], epsilon=0.95 * smallest[inside].min()
    )
    np.testing.assert_array_equal(x_small, x[inside])
    assert kept.shape == x[inside].shape


def test_it_breaks_a_trained_model_within_the_budget(trained_logits_model, digits):
    _, (x, y) = digits
    x, y = x[:64], y[:64]
    x_adv = FABT(0.1, steps=20, target_classes=3).generate(trained_logits_model, x, y)
    assert np.abs(x_adv - x).max() <= 0.1 + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    predicted = np.argmax(ops.convert_to_numpy(trained_logits_model(x_adv)), -1)
    clean = np.argmax(ops.convert_to_numpy(trained_logits_model(x)), -1)
    assert np.mean(predicted == y) < np.mean(clean == y) - 0.1


def test_named_configured_and_refusing_what_it_cannot_do():
    attack = attacks.get("fab-t", 0.1, seed=0)
    assert isinstance(attack, FABT) and attacks.name_of(attack) == "fab-t"
    assert attacks.name_of(FABT(0.1, steps=20)) == "fab-t20"
    config = FABT(0.1, steps=7, target_classes=3).get_config()
    assert FABT.from_config(config).get_config() == config
    with pytest.raises(ValueError, match="L-inf"):
        FABT(0.1, norm="l2")
    with pytest.raises(ValueError, match="alpha_max"):
        FABT(0.1, alpha_max=2.0)
