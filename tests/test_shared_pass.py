"""The two-pass FGSM-mixed step gives what the general step gives."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_adv import FGSM
from keras_adv import PGD
from keras_adv import AdversarialModel
from keras_adv import backend
from keras_adv.training import objectives
from keras_adv.training.two_pass_step import shared_pass_weights
from tests.test_adversarial_model import CE
from tests.test_adversarial_model import base_model
from tests.test_adversarial_model import data

NEEDS_STEP = pytest.mark.skipif(
    backend.shared_pass_step is None, reason="this backend has no two-pass step"
)


def model_for(attack, objective="mixed", shared_pass=True, batchnorm=False, loss=CE):
    base = base_model(seed=0, batchnorm=batchnorm)
    model = AdversarialModel(
        base.inputs,
        base.outputs,
        attack=attack,
        objective=objective,
        shared_pass=shared_pass,
    )
    model.compile(keras.optimizers.SGD(0.1), loss, metrics=["accuracy"])
    return model


@NEEDS_STEP
@pytest.mark.parametrize(
    "objective",
    ["mixed", objectives.Mixed(alpha=0.3), "madry", objectives.Regularized(0.2)],
    ids=repr,
)
def test_two_pass_step_trains_like_the_general_step(objective, monkeypatch):
    from keras_adv.training import two_pass_step

    x, y = data()
    step = two_pass_step.backend.shared_pass_step
    traced = []

    def counting_step(*args, **kwargs):
        traced.append(1)
        return step(*args, **kwargs)

    monkeypatch.setattr(two_pass_step.backend, "shared_pass_step", counting_step)
    weights, logs = [], []
    for shared in (True, False):
        model = model_for(FGSM(0.1), objective, shared_pass=shared)
        traced.clear()
        history = model.fit(x, y, epochs=2, batch_size=32, shuffle=False, verbose=0)
        assert bool(traced) == shared  # the two-pass step really ran (or not)
        weights.append(model.get_weights())
        logs.append(history.history)
    for a, b in zip(*weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for key in ["loss", "clean_loss", "adv_loss", "accuracy", "adv_accuracy"]:
        np.testing.assert_allclose(logs[0][key], logs[1][key], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "make",
    [
        lambda: model_for(PGD(0.1, steps=3, seed=0)),
        lambda: model_for(FGSM(0.1, random_start=True, seed=0)),
        lambda: model_for(FGSM(0.1, targeted=True)),
        lambda: model_for(FGSM(0.1), objective="trades"),
        lambda: model_for(FGSM(0.1), batchnorm=True),
        lambda: model_for(FGSM(0.1), shared_pass=False),
        lambda: model_for(FGSM(0.1), loss=keras.losses.MeanSquaredError()),
        lambda: model_for(
            FGSM(0.1),
            loss=keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, ignore_class=0
            ),
        ),
        lambda: model_for(FGSM(0.1, from_logits=False)),  # disagrees with the loss
    ],
    ids=[
        "pgd",
        "fgsm-rs",
        "targeted",
        "trades",
        "batchnorm",
        "off",
        "mse",
        "ignore-class",
        "from-logits-mismatch",
    ],
)
def test_two_pass_step_is_not_used_where_it_would_not_be_exact(make):
    model = make()
    assert shared_pass_weights(model, ops.convert_to_tensor(data(4)[0])) is None


@NEEDS_STEP
@pytest.mark.skipif(not backend.TRAINING_MODE_ATTACKS, reason="no training mode")
def test_batchnorm_model_uses_it_when_the_attack_runs_in_training_mode():
    base = base_model(seed=0, batchnorm=True)
    model = AdversarialModel(
        base.inputs, base.outputs, attack=FGSM(0.1), attack_training=True
    )
    model.compile("sgd", CE)
    assert shared_pass_weights(model, ops.convert_to_tensor(data(4)[0])) == (0.5, 1.0)
