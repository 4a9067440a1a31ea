"""N-FGSM (de Jorge et al. 2022): noise of radius k * eps, one sign step of
eps, no projection onto the eps ball; checked against the formula."""

import keras
import numpy as np
import pytest

from keras_adv import FGSM
from keras_adv import NFGSM
from keras_adv import AdversarialModel
from keras_adv import attacks


def linear_model(seed=0):
    """Two logits, `W x`: the loss of class 0 has the input gradient
    `(1 - p0) (W[:, 1] - W[:, 0])`, whose sign is the same everywhere."""
    model = keras.Sequential(
        [keras.Input((16,)), keras.layers.Dense(2, use_bias=False)]
    )
    w = np.random.default_rng(seed).normal(size=(16, 2)).astype("float32")
    model.layers[0].set_weights([w])
    return model, np.sign(w[:, 1] - w[:, 0])


def test_the_step_is_noise_plus_eps_times_the_gradient_sign_unprojected():
    model, sign = linear_model()
    x = np.full((256, 16), 0.5, dtype="float32")  # far from the [0, 1] edges
    eps = 0.05
    x_adv = NFGSM(eps, seed=1).generate(model, x, np.zeros(256, "int32"))
    eta = x_adv - x - eps * sign  # the formula's noise, recovered
    assert np.abs(eta).max() <= 2 * eps + 1e-6  # uniform in [-k eps, k eps]
    assert eta.std() == pytest.approx(2 * eps / np.sqrt(3), rel=0.05)
    assert abs(eta.mean()) < 0.1 * eps  # centred on x
    # Not projected: many coordinates leave the eps ball (up to 3 eps).
    assert np.abs(x_adv - x).max() > 2.5 * eps


def test_without_noise_it_is_fgsm():
    model, _ = linear_model(1)
    x = np.random.default_rng(0).uniform(0.2, 0.8, (32, 16)).astype("float32")
    y = np.zeros(32, "int32")
    np.testing.assert_allclose(
        NFGSM(0.1, noise=0.0).generate(model, x, y),
        FGSM(0.1).generate(model, x, y),
        atol=1e-6,
    )


def test_inputs_stay_in_the_clip_range():
    model, _ = linear_model(2)
    x = np.random.default_rng(1).uniform(0, 1, (64, 16)).astype("float32")
    x_adv = NFGSM(0.2, seed=0).generate(model, x, np.zeros(64, "int32"))
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0


def test_named_configured_and_saved_with_a_model(tmp_path):
    attack = attacks.get("nfgsm", 0.1, seed=3)
    assert isinstance(attack, NFGSM) and attacks.name_of(attack) == "nfgsm"
    assert attacks.name_of(attacks.get("N-FGSM-l2", 0.5)) == "nfgsm-l2"
    config = NFGSM(0.1, noise=1.5, step_size=0.08).get_config()
    assert config["noise"] == 1.5 and "random_start" not in config
    assert NFGSM.from_config(config).get_config() == config
    with pytest.raises(ValueError, match="noise"):
        NFGSM(0.1, noise=-1.0)
    inputs = keras.Input((16,))
    model = AdversarialModel(
        inputs, keras.layers.Dense(2)(inputs), attack=NFGSM(0.1, noise=1.5)
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(True))
    model.fit(np.full((8, 16), 0.5, "float32"), np.zeros(8, "int32"), verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.attack, NFGSM) and loaded.attack.noise == 1.5


def test_it_cannot_measure_robust_accuracy():
    """Its examples leave the ball: a robust accuracy under it would be wrong."""
    from keras_adv import evaluate_robustness
    from keras_adv.experiments.sweep import SweepSettings

    model, _ = linear_model()
    data = (np.full((8, 16), 0.5, "float32"), np.zeros(8, "int32"))
    with pytest.raises(ValueError, match="'nfgsm' is a training attack"):
        evaluate_robustness(model, data, epsilons=[0.1], attacks=["nfgsm"])
    with pytest.raises(ValueError, match="'nfgsm' is a training attack"):
        SweepSettings(attacks=("pgd20", "nfgsm"))
    SweepSettings(train_attack="nfgsm")  # training with it is what it is for
