import numpy as np
import pytest
from keras import ops
from keras import random

from keras_adv import norms

RNG = np.random.default_rng(0)


def batch(shape=(6, 4, 3)):
    return RNG.normal(size=shape).astype("float32")


def test_lp_norm_matches_numpy():
    x = batch()
    flat = x.reshape(len(x), -1)
    np.testing.assert_allclose(
        ops.convert_to_numpy(norms.lp_norm(x, "linf")), np.abs(flat).max(1), rtol=1e-6
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(norms.lp_norm(x, "l2")),
        np.linalg.norm(flat, axis=1),
        rtol=1e-5,
    )


@pytest.mark.parametrize("norm", norms.NORMS)
def test_normalize_grad_has_unit_norm_and_ascends(norm):
    g = batch()
    d = ops.convert_to_numpy(norms.normalize_grad(g, norm))
    np.testing.assert_allclose(ops.convert_to_numpy(norms.lp_norm(d, norm)), 1.0, 1e-5)
    # A steepest-ascent direction has a positive inner product with the gradient.
    assert np.all((d * g).reshape(len(g), -1).sum(1) > 0)


@pytest.mark.parametrize("norm", norms.NORMS)
def test_normalize_grad_of_zero_is_zero_not_nan(norm):
    d = ops.convert_to_numpy(norms.normalize_grad(np.zeros((3, 5), "float32"), norm))
    assert np.all(d == 0.0)


@pytest.mark.parametrize("norm", norms.NORMS)
def test_project_to_ball_lands_inside_and_fixes_inner_points(norm):
    delta = 3.0 * batch()
    projected = norms.project_to_ball(delta, 0.5, norm)
    lengths = ops.convert_to_numpy(norms.lp_norm(projected, norm))
    assert np.all(lengths <= 0.5 + 1e-6)
    np.testing.assert_allclose(lengths, 0.5, rtol=1e-5)  # all started outside
    inner = 0.01 * batch()
    np.testing.assert_allclose(
        ops.convert_to_numpy(norms.project_to_ball(inner, 10.0, norm)), inner, 1e-6
    )
    # Projection is idempotent.
    twice = norms.project_to_ball(projected, 0.5, norm)
    np.testing.assert_allclose(
        ops.convert_to_numpy(twice), ops.convert_to_numpy(projected), atol=1e-6
    )


@pytest.mark.parametrize("norm", norms.NORMS)
def test_project_to_zero_ball_is_zero_without_nan(norm):
    out = ops.convert_to_numpy(norms.project_to_ball(np.zeros((2, 3)), 0.0, norm))
    assert np.all(out == 0.0)


@pytest.mark.parametrize("norm", norms.NORMS)
def test_random_in_ball_stays_inside_and_spreads(norm):
    sample = norms.random_in_ball(
        (500, 2), 0.3, norm, random.SeedGenerator(1), "float32"
    )
    lengths = ops.convert_to_numpy(norms.lp_norm(sample, norm))
    assert np.all(lengths <= 0.3 + 1e-6)
    # Uniform in a 2-d ball: P(radius < r) = (r / eps)^2, so a quarter lie
    # within half the radius (and, for L-inf, the same for the square).
    inner_share = np.mean(lengths < 0.15)
    assert 0.18 < inner_share < 0.32


def test_unknown_norm_is_rejected():
    with pytest.raises(ValueError, match="norm"):
        norms.lp_norm(batch(), "l3")


def test_l1_norm_and_projection_match_a_bisection():
    """The sorted projection equals `sign(d) max(|d| - theta, 0)` with theta
    found by bisection on `sum max(|d| - theta, 0) = eps` (the KKT form)."""
    delta = 3.0 * batch((5, 7, 2))
    flat = delta.reshape(5, -1)
    np.testing.assert_allclose(
        ops.convert_to_numpy(norms.lp_norm(delta, "l1")), np.abs(flat).sum(1), 1e-5
    )
    projected = ops.convert_to_numpy(norms.project_to_ball(delta, 1.5, "l1"))
    for row, out in zip(flat, projected.reshape(5, -1), strict=True):
        low, high = 0.0, np.abs(row).max()
        for _ in range(100):
            theta = (low + high) / 2
            if np.maximum(np.abs(row) - theta, 0).sum() > 1.5:
                low = theta
            else:
                high = theta
        expected = np.sign(row) * np.maximum(np.abs(row) - theta, 0)
        np.testing.assert_allclose(out, expected, atol=1e-5)


def test_l1_ascent_moves_only_the_largest_gradient_coordinates():
    g = batch((4, 200))  # the top 1% of 200: two coordinates per example
    d = ops.convert_to_numpy(norms.normalize_grad(g, "l1"))
    for grad, step in zip(g, d, strict=True):
        top = np.argsort(-np.abs(grad))[:2]
        assert set(np.flatnonzero(step)) == set(top)
        np.testing.assert_allclose(step[top], np.sign(grad[top]) / 2, 1e-6)


def test_l1_box_projection_is_the_nearest_point_of_ball_and_box():
    """`project_l1_box` solves min ||z - d||^2 s.t. ||z||_1 <= eps and
    0 <= x + z <= 1 (checked against a general solver), uses the whole
    budget when the box leaves room, and lands nearer than projecting onto
    the ball and clipping afterwards (which wastes budget)."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (16, 6)).astype("float32")
    d = rng.normal(0, 0.8, (16, 6)).astype("float32")
    eps = 1.0
    z = ops.convert_to_numpy(norms.project_l1_box(d, x, eps, 0.0, 1.0))
    assert np.abs(z).sum(1).max() <= eps + 1e-5
    assert (x + z).min() >= -1e-6 and (x + z).max() <= 1 + 1e-6
    n = 6
    for xi, di, zi in zip(x, d, z, strict=True):
        # z = a - b with a, b >= 0: a smooth problem for SLSQP
        constraints = [
            {"type": "ineq", "fun": lambda v: eps - v.sum()},
            {"type": "ineq", "fun": lambda v, xi=xi: xi + v[:n] - v[n:]},
            {"type": "ineq", "fun": lambda v, xi=xi: 1 - xi - v[:n] + v[n:]},
        ]
        best = minimize(
            lambda v, di=di: ((v[:n] - v[n:] - di) ** 2).sum(), np.zeros(2 * n),
            method="SLSQP", bounds=[(0, None)] * (2 * n), constraints=constraints,
            options={"ftol": 1e-14, "maxiter": 500},
        )  # fmt: skip
        np.testing.assert_allclose(zi, best.x[:n] - best.x[n:], atol=1e-4)
    clipped = (
        np.clip(x + ops.convert_to_numpy(norms.project_to_ball(d, eps, "l1")), 0, 1) - x
    )
    outside = np.abs(np.clip(x + d, 0, 1) - x).sum(1) > eps + 1e-3
    assert outside.sum() >= 4
    np.testing.assert_allclose(np.abs(z[outside]).sum(1), eps, rtol=1e-5)
    nearer = ((z - d) ** 2).sum(1) <= ((clipped - d) ** 2).sum(1) + 1e-6
    assert nearer.all() and (np.abs(clipped[outside]).sum(1) < eps - 1e-3).any()
