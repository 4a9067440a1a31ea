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
        ({"norm": "l1"}, "APGD.s L1 version"),
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
