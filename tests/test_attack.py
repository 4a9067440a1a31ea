"""The shared `Attack` behaviour: argument checks, input checks, config, loss hook."""

import math

import keras
import numpy as np
import pytest

from keras_adv import FGSM
from keras_adv import PGD
from tests.conftest import forward_of
from tests.conftest import per_example_loss


@pytest.fixture(scope="module")
def tiny_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])


X = np.full((4, 5), 0.5, "float32")
Y = np.array([0, 1, 2, 0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epsilon": -0.1}, r"epsilon.*Received: epsilon=-0.1"),
        ({"epsilon": math.nan}, "epsilon"),
        ({"epsilon": math.inf}, "epsilon"),
        ({"epsilon": "0.1"}, "epsilon"),
        ({"epsilon": 0.1, "norm": "l3"}, r"norm.*Received: norm='l3'"),
        ({"epsilon": 0.1, "clip": (1.0, 0.0)}, r"clip.*low < high"),
        ({"epsilon": 0.1, "clip": (0.5, 0.5)}, "clip"),
        ({"epsilon": 0.1, "clip": (0.0, math.inf)}, "clip"),
        ({"epsilon": 0.1, "clip": "unit"}, "clip"),
        ({"epsilon": 0.1, "step_size": 0.0}, r"step_size.*> 0"),
        ({"epsilon": 0.1, "step_size": -1.0}, "step_size"),
        ({"epsilon": 0.1, "steps": 0}, r"steps.*>= 1"),
        ({"epsilon": 0.1, "steps": 2.5}, "steps"),
        ({"epsilon": 0.1, "restarts": 0}, "restarts"),
        ({"epsilon": 0.1, "restarts": 3, "random_start": False}, "random_start"),
        ({"epsilon": 0.1, "loss": "hinge"}, r"loss.*'dlr'.*Received: loss='hinge'"),
        ({"epsilon": 0.1, "from_logits": "yes"}, "from_logits"),
    ],
)
def test_bad_hyperparameters_raise_naming_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PGD(**kwargs)


def test_fgsm_validates_like_pgd():
    with pytest.raises(ValueError, match="epsilon"):
        FGSM(-1.0)
    with pytest.raises(ValueError, match="norm"):
        FGSM(0.1, norm="linf2")


@pytest.mark.parametrize("call", ["generate", "call"])
def test_integer_inputs_are_rejected(tiny_model, call):
    x = np.ones((4, 5), dtype="int32")
    attack = FGSM(0.1)
    with pytest.raises(ValueError, match=r"`x` must be a floating-point"):
        if call == "generate":
            attack.generate(tiny_model, x, Y)
        else:
            attack(forward_of(tiny_model), x, Y)


@pytest.mark.parametrize("call", ["generate", "call"])
def test_batch_mismatch_is_rejected(tiny_model, call):
    attack = FGSM(0.1)
    with pytest.raises(ValueError, match=r"same number of examples"):
        if call == "generate":
            attack.generate(tiny_model, X, Y[:3])
        else:
            attack(forward_of(tiny_model), X, Y[:3])


@pytest.mark.parametrize("labels", [[0, 1, 3, 0], [0, -1, 2, 0], [0.5, 1, 2, 0]])
@pytest.mark.parametrize("call", ["generate", "call"])
def test_labels_outside_the_class_range_are_rejected(tiny_model, call, labels):
    attack = FGSM(0.1)
    with pytest.raises(ValueError, match=r"`y` must hold"):
        if call == "generate":
            attack.generate(tiny_model, X, np.array(labels))
        else:
            attack(forward_of(tiny_model), X, np.array(labels))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("call", ["generate", "call"])
def test_non_finite_inputs_are_rejected(tiny_model, call, bad):
    x = X.copy()
    x[2, 3] = bad
    with pytest.raises(ValueError, match=r"`x` must hold finite values.*1 NaN or Inf"):
        if call == "generate":
            FGSM(0.1).generate(tiny_model, x, Y)
        else:
            FGSM(0.1)(forward_of(tiny_model), x, Y)


def test_inputs_outside_clip_are_rejected_with_the_fix(tiny_model):
    with pytest.raises(ValueError, match=r"outside the valid input range.*255"):
        FGSM(0.1).generate(tiny_model, X * 255.0, Y)
    # ...and accepted with the matching clip, or none.
    FGSM(25.0, clip=(0.0, 255.0)).generate(tiny_model, X * 255.0, Y)
    FGSM(0.1, clip=None).generate(tiny_model, X * 255.0, Y)


def test_generate_argument_errors(tiny_model):
    with pytest.raises(ValueError, match=r"`y` is required"):
        FGSM(0.1).generate(tiny_model, X)
    with pytest.raises(ValueError, match=r"`model` must be a keras.Model"):
        FGSM(0.1).generate(lambda t: t, X, Y)
    with pytest.raises(ValueError, match=r"batch_size"):
        FGSM(0.1).generate(tiny_model, X, Y, batch_size=0)
    with pytest.raises(ValueError, match=r"at least one example"):
        FGSM(0.1).generate(tiny_model, X[:0], Y[:0])


@pytest.mark.parametrize(
    "attack",
    [
        FGSM(0.1),
        FGSM(0.5, norm="l2", random_start=True, step_size=0.2, seed=3),
        PGD(0.03, steps=7, step_size=0.01, restarts=2, clip=(-1.0, 1.0), seed=1),
        PGD(0.5, norm="l2", targeted=True, random_start=False, from_logits=True),
        PGD(0.1, loss=keras.losses.CategoricalHinge()),
    ],
    ids=repr,
)
def test_config_round_trips(attack):
    config = attack.get_config()
    clone = type(attack).from_config(config)
    assert clone.get_config() == config
    # ...and through Keras's own serialization, as a saved model would.
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(attack)
    )
    assert type(restored) is type(attack)
    assert restored.get_config() == config


def test_a_custom_loss_is_what_the_attack_raises(tiny_model):
    """FGSM on `loss = output[:, 0]` of a linear model steps along sign(W[:, 0])."""

    def first_output(y_true, y_pred):
        return y_pred[:, 0]

    x_adv = FGSM(0.1, loss=first_output).generate(tiny_model, X, Y)
    kernel = tiny_model.layers[0].get_weights()[0]
    np.testing.assert_allclose(x_adv, X + 0.1 * np.sign(kernel[:, 0]), atol=1e-6)


def test_a_keras_loss_object_is_used_unreduced(trained_logits_model, digits):
    _, (x, y) = digits
    model = trained_logits_model
    y_one_hot = np.eye(10, dtype="float32")[y]
    squared = keras.losses.MeanSquaredError()
    x_adv = PGD(0.1, steps=5, loss=squared, restarts=2, seed=0).generate(
        model, x, y_one_hot
    )

    def value(inputs):
        return float(squared(y_one_hot, model.predict(inputs, verbose=0)))

    assert value(x_adv) > value(x) * 1.2
    assert (
        per_example_loss(model, x_adv, y).mean() > per_example_loss(model, x, y).mean()
    )


def test_a_loss_that_is_not_per_example_still_works_for_one_start(tiny_model):
    def mean_squared(y_true, y_pred):
        return keras.ops.mean(keras.ops.square(y_pred), axis=-1)

    x_adv = FGSM(0.1, loss=mean_squared).generate(tiny_model, X, Y)
    assert np.abs(x_adv - X).max() == pytest.approx(0.1, abs=1e-6)


def test_a_reduced_loss_is_rejected(tiny_model):
    def scalar_loss(y_true, y_pred):
        return keras.ops.mean(y_pred)

    with pytest.raises(ValueError, match=r"`loss` must return one value per example"):
        FGSM(0.1, loss=scalar_loss).generate(tiny_model, X, Y)


def test_clone_applies_overrides_and_owns_its_random_state():
    def custom(y_true, y_pred):
        return keras.ops.sum(y_pred, axis=-1)

    attack = PGD(0.1, steps=3, seed=4, loss=custom)
    copy = attack.clone(from_logits=True)
    assert copy.get_config() == {**attack.get_config(), "from_logits": True}
    assert copy.loss is custom and copy.seed_generator is not attack.seed_generator
    with pytest.raises(ValueError, match="epsilon"):
        attack.clone(epsilon=-1.0)
