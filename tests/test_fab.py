"""FAB-T (Croce & Hein 2020): minimal L-inf and L2 perturbations, checked where
the minimum is known (a linear model) and against the budget it is judged at."""

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


def test_the_l2_box_projection_is_the_smallest_step_onto_the_plane():
    rng = np.random.default_rng(0)
    points = rng.uniform(0.2, 0.8, (64, 12)).astype("float32")
    w = rng.normal(size=(64, 12)).astype("float32")
    c = rng.normal(size=64).astype("float32")
    d = ops.convert_to_numpy(project_onto_hyperplane(points, w, c, 0.0, 1.0, "l2"))
    # away from the box edges: the unconstrained minimum c w / ||w||^2
    free = c[:, None] * w / (w**2).sum(1, keepdims=True)
    inside = np.abs(free).max(1) <= 0.2
    assert inside.sum() > 10
    np.testing.assert_allclose(d[inside], free[inside], atol=1e-5)
    assert (points + d).min() >= -1e-6 and (points + d).max() <= 1 + 1e-6
    # Near an edge, the coordinate that hits it stops there and the others
    # take the rest along w: x = (0.95, 0.5), w = (1, 2), c = 0.5 gives
    # d = (0.05, 0.225) (the KKT point, lambda = 0.1125), not (0.1, 0.2).
    d = ops.convert_to_numpy(
        project_onto_hyperplane(np.array([[0.95, 0.5]], "float32"),
                                np.array([[1.0, 2.0]], "float32"),
                                np.array([0.5], "float32"), 0.0, 1.0, "l2")
    )  # fmt: skip
    np.testing.assert_allclose(d, [[0.05, 0.225]], atol=1e-6)


def test_the_l2_projection_agrees_with_a_general_solver():
    from scipy.optimize import minimize

    rng = np.random.default_rng(3)
    points = rng.uniform(0.0, 1.0, (12, 5)).astype("float32")
    w = rng.normal(size=(12, 5)).astype("float32")
    w[0, 2] = 0.0  # a coordinate the plane does not depend on stays put
    c = rng.uniform(-1.0, 1.0, 12).astype("float32")
    d = ops.convert_to_numpy(project_onto_hyperplane(points, w, c, 0.0, 1.0, "l2"))
    assert d[0, 2] == 0.0
    checked = 0
    for p, wi, ci, di in zip(points, w, c, d, strict=True):
        # each coordinate moves up (w c > 0) or down (w c < 0) towards the plane
        room = np.where(wi * ci > 0, 1 - p, np.where(wi * ci < 0, p, 0.0))
        if np.sum(room * np.abs(wi)) < abs(ci):
            continue  # out of reach: checked by the L-inf test's edge case
        checked += 1
        best = minimize(
            lambda v: v @ v, np.zeros(5), jac=lambda v: 2 * v, method="SLSQP",
            bounds=list(zip(-p, 1 - p, strict=True)),
            constraints=[{"type": "eq", "fun": lambda v, wi=wi, ci=ci: wi @ v - ci}],
            options={"ftol": 1e-12},
        )  # fmt: skip
        np.testing.assert_allclose(di, best.x, atol=2e-4)
    assert checked >= 8


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


def smallest_steps(weights, dual_order):
    """Inputs near the middle of [0, 1], their predicted labels, and the
    smallest step to another class of the linear model: the logit gap over
    the dual norm (`dual_order`: 1 for L-inf steps, 2 for L2) of the
    difference of the two weight columns."""
    rng = np.random.default_rng(1)
    x = rng.uniform(0.45, 0.55, (32, 10)).astype("float32")
    logits = x @ weights
    y = logits.argmax(1)
    gaps = logits[np.arange(32), y][:, None] - logits  # (32, 3), 0 at the true class
    differences = weights.T[y][:, None, :] - weights.T[None]
    spans = np.linalg.norm(differences, ord=dual_order, axis=-1)  # (32, 3)
    true = np.arange(3)[None] == y[:, None]
    smallest = np.where(true, np.inf, gaps / np.where(true, 1.0, spans)).min(1)
    return x, y, smallest


def test_on_a_linear_model_it_finds_the_smallest_perturbation():
    model, weights = linear()
    x, y, smallest = smallest_steps(weights, 1)
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


def test_on_a_linear_model_the_l2_version_finds_the_smallest_l2_perturbation():
    model, weights = linear()
    x, y, smallest = smallest_steps(weights, 2)
    # the minimal step is along a weight difference: it stays in [0, 1]
    # when its L2 size is below 0.45 (no coordinate moves further)
    inside = smallest < 0.4
    assert inside.sum() > 10
    broken = FABT(2.0, steps=20, norm="l2").generate(model, x, y)
    size = np.linalg.norm(broken - x, axis=1)
    assert np.all((broken @ weights).argmax(1)[inside] != y[inside])
    assert np.all(size[inside] >= smallest[inside] * (1 - 1e-4))
    assert np.all(size[inside] <= smallest[inside] * 1.06)
    # and the L-inf version's answer is larger in L2 where the two differ
    linf = FABT(2.0, steps=20).generate(model, x, y)
    assert np.mean(np.linalg.norm(linf - x, axis=1)[inside]) > np.mean(size[inside])


def test_it_breaks_a_trained_model_within_the_budget(trained_logits_model, digits):
    _, (x, y) = digits
    x, y = x[:64], y[:64]
    x_adv = FABT(0.1, steps=20, target_classes=3).generate(trained_logits_model, x, y)
    assert np.abs(x_adv - x).max() <= 0.1 + 1e-6
    l2 = FABT(0.5, steps=20, target_classes=3, norm="l2")
    x_l2 = l2.generate(trained_logits_model, x, y)
    assert np.linalg.norm((x_l2 - x).reshape(64, -1), axis=1).max() <= 0.5 + 1e-5
    predicted_l2 = np.argmax(ops.convert_to_numpy(trained_logits_model(x_l2)), -1)
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    predicted = np.argmax(ops.convert_to_numpy(trained_logits_model(x_adv)), -1)
    clean = np.argmax(ops.convert_to_numpy(trained_logits_model(x)), -1)
    assert np.mean(predicted == y) < np.mean(clean == y) - 0.1
    assert np.mean(predicted_l2 == y) < np.mean(clean == y) - 0.1


def test_named_configured_and_refusing_what_it_cannot_do():
    attack = attacks.get("fab-t", 0.1, seed=0)
    assert isinstance(attack, FABT) and attacks.name_of(attack) == "fab-t"
    assert attacks.name_of(FABT(0.1, steps=20)) == "fab-t20"
    config = FABT(0.1, steps=7, target_classes=3).get_config()
    assert FABT.from_config(config).get_config() == config
    l2 = attacks.get("fab-t-l2", 0.5)
    assert l2.norm == "l2" and attacks.name_of(l2) == "fab-t-l2"
    with pytest.raises(ValueError, match="L1 projection"):
        FABT(0.1, norm="l1")
    with pytest.raises(ValueError, match="alpha_max"):
        FABT(0.1, alpha_max=2.0)
