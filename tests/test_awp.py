"""Adversarial weight perturbation (AWP, Wu et al. 2020) by hand."""

import keras
import numpy as np
import pytest

from keras_adv import FGSM
from keras_adv import PGD
from keras_adv import AdversarialModel
from tests.conftest import linear_grads
from tests.conftest import linear_model

CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def linear():
    return linear_model(5, 3, bias=[0.2, -0.1, 0.0])


def data(n=16):
    rng = np.random.default_rng(1)
    return rng.uniform(0, 1, (n, 5)).astype("float32"), rng.integers(0, 3, n)


@pytest.mark.parametrize("log_clean", [True, False])
def test_one_step_is_the_gradient_at_the_perturbed_weights_applied_to_w(log_clean):
    """AWP's step by hand: x_adv by FGSM at w; v = gamma ||w|| g / ||g|| for
    the kernel (the bias is left alone), g the adversarial loss's gradient
    at w; the update is -lr times the gradient at w + v, applied to w."""
    model = linear()
    w, b = (v.astype("float64") for v in model.get_weights())
    x, y = data()
    gamma, lr, eps = 0.3, 0.5, 0.1
    adv = AdversarialModel(
        model=model,
        attack=FGSM(eps, clip=None),
        objective="madry",
        awp_gamma=gamma,
        log_clean=log_clean,
    )
    adv.compile(keras.optimizers.SGD(lr), CE)
    adv.fit(x, y, batch_size=len(y), epochs=1, shuffle=False, verbose=0)

    x_adv = x + eps * np.sign(linear_grads(w, b, x, y)[2])
    g_w, _, _ = linear_grads(w, b, x_adv, y)
    v = gamma * np.linalg.norm(w) * g_w / np.linalg.norm(g_w)
    step_w, step_b, _ = linear_grads(w + v, b, x_adv, y)
    new_w, new_b = model.get_weights()
    np.testing.assert_allclose(new_w, w - lr * step_w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(new_b, b - lr * step_b, rtol=1e-4, atol=1e-6)
    # and not the plain step at w
    plain_w = w - lr * linear_grads(w, b, x_adv, y)[0]
    assert np.abs(new_w - plain_w).max() > 1e-3


def test_batchnorm_statistics_move_once_per_step_not_in_the_awp_pass():
    """The AWP pass runs in training mode, but what it assigns is dropped:
    moving statistics equal those of the same step without AWP's pass
    (Keras's step at w + v updates them once, as the reference does)."""
    x, y = data(32)

    def build(gamma):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((5,))
        hidden = keras.layers.BatchNormalization(momentum=0.5)(inputs)
        model = keras.Model(inputs, keras.layers.Dense(3)(hidden))
        adv = AdversarialModel(
            model=model, attack=FGSM(0.1), objective="madry", awp_gamma=gamma
        )
        adv.compile(keras.optimizers.SGD(0.1), CE)
        adv.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
        return model.layers[1].moving_mean.numpy()

    # Statistics of the batch the step sees (x_adv made at w): the same.
    np.testing.assert_allclose(build(0.2), build(0.0), rtol=1e-5, atol=1e-6)


def test_awp_trains_saves_and_is_checked(tmp_path):
    x, y = data(64)
    model = AdversarialModel(
        model=linear(), attack=PGD(0.1, steps=3, seed=0), objective="trades",
        awp_gamma=0.01,
    )  # fmt: skip
    model.compile(keras.optimizers.Adam(1e-2), CE)
    history = model.fit(x, y, epochs=2, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    path = str(tmp_path / "awp.keras")
    model.save(path)
    assert keras.saving.load_model(path).awp_gamma == 0.01
    for bad in (-0.1, 1.0, "0.01", True):
        with pytest.raises(ValueError, match="awp_gamma"):
            AdversarialModel(model=linear(), attack=FGSM(0.1), awp_gamma=bad)
    with pytest.raises(ValueError, match="awp_gamma"):
        AdversarialModel(
            model=linear(), attack=PGD(0.1, steps=2), objective="freelb",
            awp_gamma=0.01,
        )  # fmt: skip


def test_no_weight_perturbation_during_the_warmup_epochs():
    x, y = data()

    def trained(epochs, **awp):
        model = linear()
        adv = AdversarialModel(
            model=model, attack=FGSM(0.1, clip=None), objective="madry", **awp
        )
        adv.compile(keras.optimizers.SGD(0.5), CE)
        history = adv.fit(x, y, batch_size=len(y), epochs=epochs, shuffle=False,
                          verbose=0).history  # fmt: skip
        return model.get_weights()[0], history

    plain, _ = trained(1)
    warming, history = trained(1, awp_gamma=0.3, awp_warmup=1)
    np.testing.assert_allclose(warming, plain, rtol=1e-6)  # epoch 1: no AWP
    assert history["awp_scale"] == [0.0]
    plain, _ = trained(2)
    started, history = trained(2, awp_gamma=0.3, awp_warmup=1)
    assert np.abs(started - plain).max() > 1e-4  # epoch 2: AWP
    assert history["awp_scale"] == [0.0, 1.0]
    with pytest.raises(ValueError, match="awp_warmup"):
        AdversarialModel(model=linear(), attack=FGSM(0.1), awp_warmup=2)
    with pytest.raises(ValueError, match="awp_warmup"):
        AdversarialModel(model=linear(), attack=FGSM(0.1), awp_gamma=0.1, awp_warmup=-1)
