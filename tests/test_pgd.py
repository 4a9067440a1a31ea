import keras
import numpy as np
import pytest
from keras import ops

from keras_adv import FGSM
from keras_adv import PGD
from keras_adv import norms
from tests.conftest import forward_of
from tests.conftest import per_example_loss

ATTACKS = {
    "fgsm-linf": lambda eps: FGSM(eps),
    "fgsm-l2": lambda eps: FGSM(eps * 5, norm="l2"),
    "fgsm-rs": lambda eps: FGSM(eps, random_start=True, seed=1),
    "pgd-linf": lambda eps: PGD(eps, steps=5, seed=1),
    "pgd-l2": lambda eps: PGD(eps * 5, norm="l2", steps=5, seed=1),
    "pgd-l1": lambda eps: PGD(eps * 20, norm="l1", steps=10, seed=1),
    "pgd-restarts": lambda eps: PGD(eps, steps=3, restarts=3, seed=1),
    "bim": lambda eps: PGD(eps, steps=5, random_start=False),
}


@pytest.fixture
def test_batch(digits):
    _, (x, y) = digits
    return x[:96], y[:96]


@pytest.mark.parametrize("make", ATTACKS.values(), ids=ATTACKS.keys())
def test_epsilon_zero_is_the_identity(make, trained_logits_model, test_batch):
    x, y = test_batch
    x_adv = make(0.0).generate(trained_logits_model, x, y)
    np.testing.assert_array_equal(x_adv, x)


@pytest.mark.parametrize("make", ATTACKS.values(), ids=ATTACKS.keys())
def test_perturbation_stays_in_the_ball_and_the_valid_range(
    make, trained_logits_model, test_batch
):
    x, y = test_batch
    attack = make(0.1)
    x_adv = attack.generate(trained_logits_model, x, y)
    lengths = ops.convert_to_numpy(norms.lp_norm(x_adv - x, attack.norm))
    assert np.all(lengths <= attack.epsilon * (1 + 1e-5) + 1e-6)
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert lengths.mean() > 0.3 * attack.epsilon  # it did move


def test_clip_range_is_respected_when_not_unit(trained_logits_model, test_batch):
    x, y = test_batch
    x_scaled = x * 2.0 - 1.0  # the model sees other inputs, the range is what counts
    x_adv = PGD(0.3, steps=3, clip=(-1.0, 1.0), seed=0).generate(
        trained_logits_model, x_scaled, y
    )
    assert x_adv.min() >= -1.0 and x_adv.max() <= 1.0
    assert x_adv.min() < -0.999 and x_adv.max() > 0.999


def test_pgd_raises_the_loss_at_least_as_much_as_fgsm_on_average(
    trained_logits_model, digits
):
    _, (x, y) = digits
    model = trained_logits_model
    clean = per_example_loss(model, x, y).mean()
    fgsm = per_example_loss(model, FGSM(0.1).generate(model, x, y), y).mean()
    pgd = per_example_loss(
        model, PGD(0.1, steps=10, seed=0).generate(model, x, y), y
    ).mean()
    assert fgsm > clean + 0.5
    assert pgd >= fgsm


def test_targeted_attack_lowers_the_target_class_loss(trained_logits_model, digits):
    _, (x, y) = digits
    target = (y + 1) % 10
    model = trained_logits_model
    x_adv = PGD(0.2, steps=10, targeted=True, seed=0).generate(model, x, target)
    before = per_example_loss(model, x, target)
    after = per_example_loss(model, x_adv, target)
    assert after.mean() < before.mean() - 1.0
    hit_rate = np.mean(np.argmax(model.predict(x_adv, verbose=0), 1) == target)
    assert hit_rate > 0.3


def test_restarts_keep_each_examples_worst_case(trained_logits_model, test_batch):
    """With the same start points, R restarts give, per example, the best of R runs."""
    x, y = test_batch
    model = trained_logits_model
    rng = np.random.default_rng(0)
    starts = np.clip(x + rng.uniform(-0.1, 0.1, (3,) + x.shape), 0, 1).astype(x.dtype)

    def run(restarts, points):
        attack = PGD(0.1, steps=3, restarts=restarts, seed=0)
        attack.random_start_points = lambda x, eps, count=1: ops.convert_to_tensor(
            points
        )
        return ops.convert_to_numpy(attack(forward_of(model), x, y))

    singles = np.stack(
        [per_example_loss(model, run(1, starts[r : r + 1]), y) for r in range(3)]
    )
    best = per_example_loss(model, run(3, starts), y)
    np.testing.assert_allclose(best, singles.max(axis=0), rtol=1e-4, atol=1e-5)
    assert np.all(best >= singles[0] - 1e-5)  # never worse than one start


def test_zero_gradient_gives_no_nan():
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(3, kernel_initializer="zeros")]
    )
    x = np.full((4, 6), 0.5, "float32")
    y = np.array([0, 1, 2, 0])
    for attack in [
        FGSM(0.1),
        FGSM(0.5, norm="l2"),
        PGD(0.1, seed=0),
        PGD(0.5, norm="l2", restarts=2, seed=0),
    ]:
        x_adv = attack.generate(model, x, y)
        assert np.all(np.isfinite(x_adv)), attack
    np.testing.assert_array_equal(FGSM(0.1).generate(model, x, y), x)


def test_same_seed_gives_the_same_result(trained_logits_model, test_batch):
    x, y = test_batch
    model = trained_logits_model
    first = PGD(0.1, steps=3, restarts=2, seed=7).generate(model, x, y)
    again = PGD(0.1, steps=3, restarts=2, seed=7).generate(model, x, y)
    other = PGD(0.1, steps=3, restarts=2, seed=8).generate(model, x, y)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_random_start_advances_between_calls(trained_logits_model, test_batch):
    x, y = test_batch
    attack = PGD(0.1, steps=1, seed=3)
    first = attack.generate(trained_logits_model, x, y)
    second = attack.generate(trained_logits_model, x, y)
    assert not np.array_equal(first, second)


def test_probability_and_logit_models_are_attacked_alike(
    trained_logits_model, trained_probs_model, test_batch
):
    x, y = test_batch
    from_logits = FGSM(0.1).generate(trained_logits_model, x, y)
    from_probs = FGSM(0.1).generate(trained_probs_model, x, y)
    assert np.mean(from_logits == from_probs) > 0.99  # same gradient signs


def test_one_hot_labels_give_the_same_result_as_class_ids(
    trained_logits_model, test_batch
):
    x, y = test_batch
    model = trained_logits_model
    sparse = FGSM(0.1).generate(model, x, y)
    one_hot = FGSM(0.1).generate(model, x, np.eye(10, dtype="float32")[y])
    np.testing.assert_array_equal(sparse, one_hot)


def test_default_step_size_follows_madry():
    assert PGD(0.3, steps=10).effective_step_size() == pytest.approx(0.075)
    assert PGD(0.3, steps=10, step_size=0.01).effective_step_size() == 0.01


PREDICTING = {
    "fgsm": lambda: FGSM(0.1),
    "bim": lambda: PGD(0.1, steps=3, random_start=False),
    "fgsm-rs": lambda: FGSM(0.1, random_start=True, seed=2),
    "pgd-restarts": lambda: PGD(0.1, steps=2, restarts=2, seed=2),
}


@pytest.mark.parametrize("make", PREDICTING.values(), ids=PREDICTING.keys())
def test_perturb_and_predict_equals_perturb_then_forward(
    make, trained_logits_model, test_batch
):
    x, y = (ops.convert_to_tensor(part) for part in test_batch)
    forward = forward_of(trained_logits_model)
    x_adv, y_pred = make().perturb_and_predict(forward, x, y, 0.1)
    expected = make().perturb(forward, x, y, 0.1)

    def numpy(tensor):
        return ops.convert_to_numpy(ops.stop_gradient(tensor))

    np.testing.assert_allclose(numpy(x_adv), numpy(expected), atol=1e-6)
    np.testing.assert_allclose(numpy(y_pred), numpy(forward(x)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make", PREDICTING.values(), ids=PREDICTING.keys())
def test_perturb_and_predict_reuses_a_first_pass_at_x(
    make, trained_logits_model, test_batch
):
    x, y = (ops.convert_to_tensor(part) for part in test_batch)
    model, calls = trained_logits_model, []

    def forward(inputs):
        calls.append("predict")
        return model(inputs, training=False)

    attack = make()
    attack.perturb(forward, x, y, 0.1)
    alone = len(calls)
    calls.clear()
    attack.perturb_and_predict(forward, x, y, 0.1)
    reuses = not attack.random_start  # the first pass is at x itself
    assert len(calls) == alone + (0 if reuses else 1)


def test_perturb_and_predict_runs_a_subclass_own_perturb(
    trained_logits_model, test_batch
):
    class Still(PGD):
        def perturb(self, forward, x, y, epsilon):
            return x

    x, y = (ops.convert_to_tensor(part) for part in test_batch)
    x_adv, _ = Still(0.1, random_start=False).perturb_and_predict(
        forward_of(trained_logits_model), x, y, 0.1
    )
    np.testing.assert_array_equal(ops.convert_to_numpy(x_adv), test_batch[0])


def test_l1_pgd_breaks_what_l1_noise_of_its_budget_does_not(
    trained_logits_model, digits
):
    _, (x, y) = digits
    x, y = x[:200], y[:200]
    model = trained_logits_model

    def accuracy(x_adv):
        predicted = np.argmax(ops.convert_to_numpy(model(x_adv)), -1)
        return float(np.mean(predicted == y))

    attack = PGD(4.0, norm="l1", steps=20, seed=0)  # 4 of 64 pixels' full range
    x_adv = attack.generate(model, x, y)
    noise = norms.random_in_ball(x.shape, 4.0, "l1", keras.random.SeedGenerator(0))
    x_noise = np.clip(x + ops.convert_to_numpy(noise), 0.0, 1.0)
    assert accuracy(x_adv) < accuracy(x_noise) - 0.2
    assert np.all(np.abs(x_adv - x).reshape(len(x), -1).sum(1) <= 4.0 + 1e-4)
