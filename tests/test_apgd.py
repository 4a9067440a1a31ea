import numpy as np
import pytest

from keras_adv import PGD
from keras_adv.attacks import APGD
from keras_adv.attacks.apgd import checkpoints
from tests.conftest import per_example_loss


def _accuracy(model, x, y):
    return np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y)


def test_checkpoints_follow_the_paper():
    """p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)."""
    is_checkpoint, lengths = checkpoints(100)
    assert list(np.flatnonzero(is_checkpoint) + 1) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert list(lengths[is_checkpoint]) == [22, 19, 16, 13, 10, 7, 6, 6]
    assert checkpoints(3)[0].all()  # tiny budgets: a checkpoint every step


def test_never_worse_than_its_start(trained_logits_model, digits):
    """Each example ends misclassified or with at least its starting loss."""
    _, (x, y) = digits
    model = trained_logits_model
    x_adv = APGD(0.05, steps=10, random_start=False).generate(model, x, y)
    fooled = np.argmax(model.predict(x_adv, verbose=0), axis=1) != y
    kept = per_example_loss(model, x_adv, y) >= per_example_loss(model, x, y) - 1e-4
    assert np.all(fooled | kept)
    assert np.abs(x_adv - x).max() <= 0.05 + 1e-6 and 0 <= x_adv.min()


@pytest.mark.parametrize("loss", ["ce", "dlr"])
def test_at_least_as_strong_as_pgd_with_the_same_budget(
    trained_logits_model, digits, loss
):
    """Same loss, same steps: the schedule and momentum must not lose ground."""
    _, (x, y) = digits
    model = trained_logits_model
    pgd = PGD(0.1, steps=20, loss=loss, seed=0).generate(model, x, y)
    apgd = APGD(0.1, steps=20, loss=loss, seed=0).generate(model, x, y)
    assert _accuracy(model, apgd, y) <= _accuracy(model, pgd, y)
    assert _accuracy(model, apgd, y) < _accuracy(model, x, y) - 0.3


def test_l1_stays_in_the_ball_and_the_box_and_beats_pgd(trained_logits_model, digits):
    """L1-APGD (Croce & Hein 2021): inside ball and box, and stronger than
    PGD-L1 with the same steps (which moves a fixed 1% of coordinates)."""
    _, (x, y) = digits
    model = trained_logits_model
    apgd = APGD(4.0, norm="l1", steps=50, seed=0).generate(model, x, y)
    assert np.abs(apgd - x).sum(axis=1).max() <= 4.0 * (1 + 1e-5)
    assert apgd.min() >= 0 and apgd.max() <= 1
    pgd = PGD(4.0, norm="l1", steps=50, seed=0).generate(model, x, y)
    assert _accuracy(model, apgd, y) < _accuracy(model, pgd, y)
    assert _accuracy(model, apgd, y) < _accuracy(model, x, y) - 0.3


def test_l1_sparse_direction_keeps_the_top_share():
    from keras import ops

    from keras_adv.attacks.apgd import sparse_direction

    grad = np.random.default_rng(0).normal(size=(3, 50)).astype("float32")
    share = np.array([0.2, 0.02, 1.0], "float32")
    direction = ops.convert_to_numpy(sparse_direction(grad, share))
    for g, d, k in zip(grad, direction, (10, 1, 50), strict=True):
        top = np.argsort(-np.abs(g))[:k]
        assert set(np.flatnonzero(d)) == set(top)
        np.testing.assert_allclose(d[top], np.sign(g[top]) / k, rtol=1e-6)
        assert abs(np.abs(d).sum() - 1) < 1e-5


def test_l1_checkpoint_follows_the_sparsity():
    """Every 4% of the steps: the share becomes the best point's share of
    moved coordinates / 1.5; an example whose share fell by over 5% resets
    its step to epsilon and goes back to its best point, another divides its
    step by 1.5, no lower than epsilon / 10."""
    from keras import ops

    attack = APGD(2.0, norm="l1", steps=100)
    x = np.zeros((3, 100), "float32")
    best = np.zeros((3, 100), "float32")
    best[0, :30] = 0.01  # 30 of 100 moved, was 100: sparser
    best[1, :98] = 0.01  # 98, was 100: not sparser
    best[2, :98] = 0.01  # the same, its step already at the floor
    state = {
        "best": best, "best_grad": np.ones((3, 100), "float32"),
        "x": np.full((3, 100), 0.5, "float32"), "grad": np.zeros((3, 100), "float32"),
        "share": np.full(3, 0.2, "float32"), "moved": np.full(3, 100.0, "float32"),
        "size": np.array([1.0, 1.5, 0.2], "float32"),
    }  # fmt: skip
    new = np.full((3, 100), 0.7, "float32")

    def where(mask, a, b):
        return ops.where(ops.reshape(mask, (-1, 1)), a, b)

    out = attack._l1_checkpoint(3, dict(state), x, new, state["grad"], 2.0, 4, where)
    out = {k: ops.convert_to_numpy(v) for k, v in out.items()}
    np.testing.assert_allclose(out["share"], [0.3 / 1.5, 0.98 / 1.5, 0.98 / 1.5], 1e-6)
    np.testing.assert_allclose(out["size"], [2.0, 1.0, 0.2], 1e-6)
    np.testing.assert_array_equal(out["x"][0], best[0])
    np.testing.assert_array_equal(out["x"][1:], new[1:])
    np.testing.assert_array_equal(out["moved"], [30, 98, 98])
    # between checkpoints nothing changes but the point
    out = attack._l1_checkpoint(2, dict(state), x, new, state["grad"], 2.0, 4, where)
    np.testing.assert_allclose(ops.convert_to_numpy(out["size"]), state["size"])
    np.testing.assert_array_equal(ops.convert_to_numpy(out["x"]), new)


def test_more_restarts_never_break_fewer(trained_logits_model, digits):
    """Restarts keep each example's success: the first restart is the single run."""
    _, (x, y) = digits
    model = trained_logits_model
    x_adv = APGD(0.1, steps=20, restarts=2, seed=1).generate(model, x, y)
    fooled = np.argmax(model.predict(x_adv, verbose=0), axis=1) != y
    single = APGD(0.1, steps=20, seed=1).generate(model, x, y)
    single_fooled = np.argmax(model.predict(single, verbose=0), axis=1) != y
    assert fooled.sum() >= single_fooled.sum()
    assert np.all(fooled[single_fooled])  # the very examples stay broken


def test_l2_ball(trained_logits_model, digits):
    _, (x, y) = digits
    x_adv = APGD(0.5, norm="l2", steps=10, seed=0).generate(trained_logits_model, x, y)
    assert np.sqrt(((x_adv - x) ** 2).sum(axis=1)).max() <= 0.5 + 1e-5


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"rho": 1.5}, "rho"),
        ({"rho": 0.0}, "rho"),
        ({"restarts": 2, "random_start": False}, "random_start"),
        ({"steps": 0}, "steps"),
        ({"loss": "hinge"}, "loss"),
    ],
)
def test_bad_hyperparameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        APGD(0.1, **kwargs)


def test_eot_averages_over_draws_a_pass_per_draw(trained_logits_model, digits):
    """Each gradient takes `eot_draws` passes; on a deterministic model their
    mean is the one-draw gradient, so the result is the same."""
    import keras

    _, (x, y) = digits
    x, y = x[:32], y[:32]
    calls = []

    def forward(inputs):
        calls.append(1)
        return trained_logits_model(inputs, training=False)

    results = {}
    for draws in (1, 4):
        calls.clear()
        attack = APGD(0.1, steps=5, random_start=False, eot_draws=draws)
        outputs = attack(forward, x, y, check_values=False)
        results[draws] = keras.ops.convert_to_numpy(outputs)
        results[f"calls{draws}"] = len(calls)
    assert results["calls4"] == 4 * results["calls1"]
    np.testing.assert_allclose(results[4], results[1], atol=1e-5)


def test_eot_is_named_and_parsed():
    from keras_adv.attacks import get
    from keras_adv.attacks import name_of

    attack = get("apgd-dlr50-eot20-l2")
    assert (attack.steps, attack.eot_draws, attack.norm, attack.loss) == (
        50, 20, "l2", "dlr"
    )  # fmt: skip
    assert name_of(attack) == "apgd-dlr50-eot20-l2"
    assert name_of(APGD(0.1, eot_draws=20)) == "apgd-ce-eot20"
    with pytest.raises(ValueError, match="apgd-ce and apgd-dlr only"):
        get("pgd20-eot5")
    with pytest.raises(ValueError, match="eot_draws"):
        APGD(0.1, eot_draws=0)
