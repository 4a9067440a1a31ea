import keras
import numpy as np
import pytest

from keras_adv import FGSM
from tests.conftest import forward_of


def softmax_regression(weights, bias, probabilities):
    model = keras.Sequential(
        [
            keras.Input((weights.shape[0],)),
            keras.layers.Dense(
                weights.shape[1], activation="softmax" if probabilities else None
            ),
        ]
    )
    model.layers[0].set_weights([weights, bias])
    return model


def closed_form_fgsm(x, y, weights, bias, epsilon):
    """FGSM by hand: d CE / d x = W (softmax(xW + b) - onehot(y))."""
    logits = x @ weights + bias
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    grad = (p - np.eye(weights.shape[1])[y]) @ weights.T
    return np.clip(x + epsilon * np.sign(grad), 0.0, 1.0)


@pytest.mark.parametrize("probabilities", [False, True])
def test_fgsm_equals_the_closed_form_on_logistic_regression(probabilities):
    rng = np.random.default_rng(3)
    weights = rng.normal(size=(20, 4)).astype("float32")
    bias = rng.normal(size=4).astype("float32")
    x = rng.uniform(size=(64, 20)).astype("float32")
    y = rng.integers(0, 4, size=64)
    model = softmax_regression(weights, bias, probabilities)
    got = FGSM(0.1).generate(model, x, y, batch_size=16)
    want = closed_form_fgsm(x.astype("float64"), y, weights, bias, 0.1)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_fgsm_moves_every_pixel_by_epsilon_where_the_range_allows():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(10, 3)).astype("float32")
    model = softmax_regression(weights, np.zeros(3, "float32"), False)
    x = np.full((8, 10), 0.5, dtype="float32")
    x_adv = FGSM(0.2).generate(model, x, rng.integers(0, 3, 8))
    np.testing.assert_allclose(np.abs(x_adv - x), 0.2, atol=1e-6)


def test_fgsm_l2_takes_one_step_of_length_epsilon():
    rng = np.random.default_rng(1)
    model = softmax_regression(
        rng.normal(size=(10, 3)).astype("float32"), np.zeros(3, "float32"), False
    )
    x = np.full((8, 10), 0.5, dtype="float32")
    x_adv = FGSM(0.3, norm="l2", clip=None).generate(model, x, rng.integers(0, 3, 8))
    np.testing.assert_allclose(np.linalg.norm(x_adv - x, axis=1), 0.3, rtol=1e-5)


def test_fgsm_raises_the_loss_of_a_trained_model(trained_logits_model, digits):
    from tests.conftest import per_example_loss

    _, (x, y) = digits
    x_adv = FGSM(0.1).generate(trained_logits_model, x, y)
    before = per_example_loss(trained_logits_model, x, y)
    after = per_example_loss(trained_logits_model, x_adv, y)
    assert after.mean() > before.mean() + 0.5


def test_fgsm_random_start_stays_in_the_ball():
    rng = np.random.default_rng(2)
    model = softmax_regression(
        rng.normal(size=(10, 3)).astype("float32"), np.zeros(3, "float32"), False
    )
    x = rng.uniform(size=(32, 10)).astype("float32")
    attack = FGSM(0.1, random_start=True, seed=0)
    assert attack.effective_step_size() == pytest.approx(0.125)
    x_adv = np.asarray(attack(forward_of(model), x, rng.integers(0, 3, 32)))
    assert np.abs(x_adv - x).max() <= 0.1 + 1e-6
    assert 0.0 <= x_adv.min() and x_adv.max() <= 1.0


def test_fgsm_config_has_no_iteration_arguments():
    config = FGSM(0.1, random_start=True, seed=4).get_config()
    assert "steps" not in config and "restarts" not in config
    assert FGSM.from_config(config).get_config() == config
