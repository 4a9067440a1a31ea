"""`AdversarialModel`: construction, objectives, logs, schedule, bad input."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_adv import FGSM
from keras_adv import PGD
from keras_adv import AdversarialModel
from keras_adv import backend
from keras_adv.training import objectives
from tests.conftest import dict_input_model

CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def data(n=128, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, 12)).astype("float32")
    y = (x[:, :6].sum(1) > x[:, 6:].sum(1)).astype("int32")
    return x, y


def base_model(seed=0, batchnorm=False):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((12,), name="features")
    h = keras.layers.Dense(16, activation="relu")(inputs)
    if batchnorm:
        h = keras.layers.BatchNormalization()(h)
        h = keras.layers.Dropout(0.2)(h)
    outputs = keras.layers.Dense(2)(h)
    return keras.Model(inputs, outputs, name="base")


def adversarial(attack=None, objective="mixed", **kwargs):
    base = base_model(batchnorm=kwargs.pop("batchnorm", False))
    model = AdversarialModel(
        base.inputs,
        base.outputs,
        attack=attack or FGSM(0.1),
        objective=objective,
        **kwargs,
    )
    model.compile(keras.optimizers.SGD(0.1), CE, metrics=["accuracy"])
    return model


def test_functional_construction_trains_and_logs_clean_and_adversarial_values():
    x, y = data()
    model = adversarial()
    history = model.fit(
        x, y, epochs=2, batch_size=32, verbose=0, validation_data=data(64, seed=1)
    )
    keys = set(history.history)
    for key in ["loss", "clean_loss", "adv_loss", "accuracy", "adv_accuracy"]:
        assert key in keys and f"val_{key}" in keys
    assert all(np.isfinite(v).all() for v in history.history.values())
    # FGSM at eps 0.1 makes the loss on perturbed inputs higher than clean.
    assert history.history["adv_loss"][-1] > history.history["clean_loss"][-1]


def test_wrapping_an_existing_model_shares_its_weights():
    x, y = data()
    base = base_model()
    model = AdversarialModel(model=base, attack=FGSM(0.1))
    model.compile(keras.optimizers.SGD(0.1), CE)
    before = base.get_weights()
    model.fit(x, y, epochs=1, verbose=0)
    after = base.get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(before, after, strict=True))
    np.testing.assert_allclose(
        ops.convert_to_numpy(model.predict(x, verbose=0)),
        ops.convert_to_numpy(base.predict(x, verbose=0)),
    )


def test_sequential_and_functional_models_can_be_wrapped():
    keras.utils.set_random_seed(0)
    sequential = keras.Sequential([keras.Input((12,)), keras.layers.Dense(2)])
    model = AdversarialModel(model=sequential, attack=FGSM(0.1))
    assert model.predict(data(4)[0], verbose=0).shape == (4, 2)


@pytest.mark.parametrize(
    "objective, expected",
    [
        ("mixed", lambda clean, adv: 0.5 * clean + 0.5 * adv),
        (objectives.Mixed(alpha=0.25), lambda clean, adv: 0.75 * clean + 0.25 * adv),
        ("madry", lambda clean, adv: adv),
    ],
    ids=["mixed", "mixed-0.25", "madry"],
)
def test_objective_combines_clean_and_adversarial_loss(objective, expected):
    x, y = data()
    model = adversarial(objective=objective)
    result = model.evaluate(x, y, batch_size=128, verbose=0, return_dict=True)
    want = expected(result["clean_loss"], result["adv_loss"])
    assert result["loss"] == pytest.approx(want, rel=1e-5)


def test_trades_adds_the_kl_term_and_its_attack_moves_predictions():
    x, y = data()
    model = adversarial(PGD(0.1, steps=3, seed=0), objective="trades")
    result = model.evaluate(x, y, batch_size=128, verbose=0, return_dict=True)
    assert result["loss"] > result["clean_loss"]  # beta * KL > 0
    x_adv = ops.convert_to_numpy(model.adversarial_examples(x, y, model(x)))
    assert np.abs(x_adv - x).max() <= 0.1 + 1e-6
    # The attack it runs maximises the objective's KL term, not crossentropy.
    assert model._training_attack().loss == model.objective.attack_loss
    drift = np.abs(model.predict(x_adv, verbose=0) - model.predict(x, verbose=0))
    assert drift.mean() > 0


def test_evaluate_can_skip_the_attack():
    x, y = data()
    model = adversarial(evaluate_adversarial=False)
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    assert result["loss"] == pytest.approx(result["clean_loss"])
    assert not [key for key in result if key.startswith("adv_")]


def test_warmup_trains_clean_then_the_ramp_grows_the_budget():
    x, y = data()
    model = adversarial(FGSM(0.2), adv_warmup=1, epsilon_ramp=2)
    history = model.fit(x, y, epochs=4, batch_size=32, verbose=0).history
    assert history["adv_epsilon_scale"] == [0.0, 0.5, 1.0, 1.0]
    # No perturbation during warm-up: adversarial and clean losses coincide.
    assert history["adv_loss"][0] == pytest.approx(history["clean_loss"][0], 1e-5)
    assert history["adv_loss"][1] > history["clean_loss"][1]
    assert float(ops.convert_to_numpy(model.epsilon_scale)) == 1.0  # after fit


def test_attack_runs_in_inference_mode_by_default():
    x, y = data()
    model = adversarial(PGD(0.1, steps=3, seed=0), batchnorm=True)
    model.fit(x, y, epochs=1, verbose=0)  # builds, non-trivial statistics
    bn = next(
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    )
    before = bn.get_weights()
    model.adversarial_examples(ops.convert_to_tensor(x), ops.convert_to_tensor(y))
    for a, b in zip(before, bn.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    if not backend.TRAINING_MODE_ATTACKS:
        with pytest.raises(ValueError, match="attack_training"):
            adversarial(FGSM(0.1), attack_training=True)
        return
    model.attack_training = True
    model.adversarial_examples(ops.convert_to_tensor(x), ops.convert_to_tensor(y))
    assert not np.allclose(before[2], bn.get_weights()[2])  # moving mean moved


def test_predict_is_clean():
    x, _ = data()
    base = base_model()
    model = AdversarialModel(model=base, attack=FGSM(0.3))
    np.testing.assert_allclose(
        model.predict(x, verbose=0), base.predict(x, verbose=0), rtol=1e-6
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"attack": None}, "attack"),
        ({"attack": "fgsm"}, "attack"),
        ({"attack": FGSM(1.0)}, r"whole valid input range.*epsilon=1.0"),
        ({"attack": FGSM(0.1), "objective": "adversarial"}, "objective"),
        ({"attack": FGSM(0.1), "objective": objectives.Mixed}, "objective"),
        ({"attack": FGSM(0.1), "adv_warmup": -1}, "adv_warmup"),
        ({"attack": FGSM(0.1), "epsilon_ramp": 1.5}, "epsilon_ramp"),
    ],
)
def test_bad_construction_arguments(kwargs, match):
    base = base_model()
    with pytest.raises(ValueError, match=match):
        AdversarialModel(base.inputs, base.outputs, **kwargs)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, "half"])
def test_alpha_outside_unit_interval(alpha):
    with pytest.raises(ValueError, match="alpha"):
        objectives.Mixed(alpha=alpha)


def test_wrapping_needs_a_model_with_inputs():
    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="defined inputs"):
        AdversarialModel(model=Subclassed(), attack=FGSM(0.1))
    with pytest.raises(ValueError, match="not both"):
        base = base_model()
        AdversarialModel(base.inputs, base.outputs, model=base, attack=FGSM(0.1))
    with pytest.raises(ValueError, match="needs `inputs, outputs`"):
        AdversarialModel(attack=FGSM(0.1))


def test_compile_without_loss_and_fit_without_compile():
    base = base_model()
    model = AdversarialModel(base.inputs, base.outputs, attack=FGSM(0.1))
    x, y = data()
    with pytest.raises(ValueError, match="compile"):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="`loss` is required"):
        model.compile("adam")


def test_integer_only_inputs_are_rejected():
    ids = keras.Input((5,), dtype="int32", name="ids")
    outputs = keras.layers.Dense(2)(
        keras.layers.Flatten()(keras.layers.Embedding(10, 3)(ids))
    )
    model = AdversarialModel(ids, outputs, attack=FGSM(0.1))
    model.compile("adam", CE)
    x = np.random.default_rng(0).integers(0, 10, (8, 5)).astype("int32")
    with pytest.raises(ValueError, match="no float input"):
        model.fit(x, np.zeros(8, "int32"), verbose=0)


def test_multi_input_model_perturbs_float_inputs_and_leaves_ids_alone():
    model, (inputs, outputs), x, y = dict_input_model(FGSM(0.1))
    model.compile("adam", CE, metrics=["accuracy"])
    model.fit(x, y, epochs=1, verbose=0)
    tensors = {k: ops.convert_to_tensor(v) for k, v in x.items()}
    x_adv = model.adversarial_examples(tensors, ops.convert_to_tensor(y))
    np.testing.assert_array_equal(ops.convert_to_numpy(x_adv["ids"]), x["ids"])
    moved = np.abs(ops.convert_to_numpy(x_adv["image"]) - x["image"])
    assert moved.max() == pytest.approx(0.1, abs=1e-6)

    named = AdversarialModel(inputs, outputs, attack=FGSM(0.1), perturb=["pixels"])
    named.compile("adam", CE)
    with pytest.raises(ValueError, match=r"`perturb` names inputs that do not exist"):
        named.fit(x, y, verbose=0)


@pytest.mark.parametrize("attack", [FGSM(0.1), PGD(0.1, steps=2, seed=0)], ids=repr)
def test_training_steps_do_not_check_input_values(attack, monkeypatch):
    # The value check costs a forward pass and a copy to NumPy; on torch
    # (eager) it would run on every batch. The step must not ask for it.
    from keras_adv import argument_validation as validation

    def refuse(*args):
        raise AssertionError("input values checked inside a training step")

    monkeypatch.setattr(validation, "check_concrete_inputs", refuse)
    x, y = data()
    adversarial(attack).fit(x, y, epochs=1, batch_size=32, verbose=0)
    with pytest.raises(AssertionError, match="training step"):
        attack(
            lambda inputs: inputs, ops.convert_to_tensor(x), ops.convert_to_tensor(y)
        )


def test_a_wrapped_model_is_called_directly_by_the_training_step(monkeypatch):
    # The wrapper's own `__call__` costs ~0.2 ms per call on torch eager and
    # attacks call the model on every step: only Keras's clean pass uses it.
    x, y = data()
    base = base_model()
    model = AdversarialModel(
        model=base, attack=PGD(0.1, steps=2, seed=0), shared_pass=False
    )
    outer, inner = calls_per_step(model, [model, base], x, y, monkeypatch)
    assert outer == 1  # Keras's clean pass
    assert inner == 1 + 2 + 1  # clean, two attack steps, adv


def calls_per_step(model, layers, x, y, monkeypatch):
    """How often each of `layers` runs `call` per step of an eager `fit`."""
    calls = [[] for _ in layers]
    for layer, counted in zip(layers, calls, strict=True):
        call = layer.call

        def counting(*args, call=call, counted=counted, **kwargs):
            counted.append(1)
            return call(*args, **kwargs)

        monkeypatch.setattr(layer, "call", counting)
    model.compile(keras.optimizers.SGD(0.1), CE, run_eagerly=True)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)  # builds
    for counted in calls:
        counted.clear()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    steps = len(x) // 32
    return [len(counted) / steps for counted in calls]


def test_only_a_graph_of_one_model_is_called_directly(tmp_path):
    from keras_adv.training import model_wrapping

    base = base_model()
    x = ops.convert_to_tensor(data(8)[0])
    wrapped = AdversarialModel(model=base, attack=FGSM(0.1))
    assert model_wrapping.direct_layer(wrapped) is base
    np.testing.assert_array_equal(
        ops.convert_to_numpy(wrapped._forward(x, training=False)),
        ops.convert_to_numpy(wrapped(x, training=False)),
    )
    path = tmp_path / "wrapped.keras"
    wrapped.save(path)
    loaded = keras.saving.load_model(path)
    assert model_wrapping.direct_layer(loaded) is loaded.layers[-1]

    inputs = keras.Input((12,))
    as_list = AdversarialModel(inputs, [base(inputs)], attack=FGSM(0.1))
    more_layers = AdversarialModel(
        inputs, keras.layers.Dense(2)(base(inputs)), attack=FGSM(0.1)
    )
    of_layers = adversarial()  # the base model's own layers, not a model
    for model in (as_list, more_layers, of_layers):
        assert model_wrapping.direct_layer(model) is None
        np.testing.assert_array_equal(
            ops.convert_to_numpy(keras.tree.flatten(model._forward(x, False))[0]),
            ops.convert_to_numpy(keras.tree.flatten(model(x, training=False))[0]),
        )


@pytest.mark.parametrize(
    "make_attack",
    [lambda: PGD(0.1, steps=2, seed=1), lambda: FGSM(0.1)],
    ids=["pgd", "fgsm"],
)
def test_log_clean_false_trains_the_same_weights_and_logs_no_clean_values(
    make_attack, tmp_path
):
    x, y = data()

    def trained(log_clean):
        model = AdversarialModel(
            model=base_model(),
            attack=make_attack(),
            objective="madry",
            log_clean=log_clean,
        )
        model.compile(keras.optimizers.SGD(0.1), CE, metrics=["accuracy"])
        history = model.fit(
            x,
            y,
            epochs=2,
            batch_size=32,
            shuffle=False,
            verbose=0,
            validation_data=data(64, seed=1),
        )
        return model, history.history

    full, full_logs = trained(True)
    fast, fast_logs = trained(False)
    for a, b in zip(full.get_weights(), fast.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert set(full_logs) - set(fast_logs) == {"clean_loss", "accuracy"}
    assert {"val_clean_loss", "val_accuracy"} <= set(fast_logs)
    for key in ("loss", "adv_loss", "adv_accuracy", "val_accuracy"):
        np.testing.assert_allclose(fast_logs[key], full_logs[key], rtol=1e-5)
    np.testing.assert_allclose(fast_logs["loss"], fast_logs["adv_loss"], rtol=1e-6)
    fast.save(tmp_path / "fast.keras")
    assert keras.saving.load_model(tmp_path / "fast.keras").log_clean is False


def test_log_clean_false_runs_no_clean_forward_pass(monkeypatch):
    x, y = data()
    counts = {}
    for log_clean in (True, False):
        base = base_model()
        model = AdversarialModel(
            model=base,
            attack=PGD(0.1, steps=2, seed=0),
            objective="madry",
            log_clean=log_clean,
        )
        (counts[log_clean],) = calls_per_step(model, [base], x, y, monkeypatch)
    assert counts == {True: 1 + 2 + 1, False: 2 + 1}  # (clean,) attack, adv


@pytest.mark.parametrize("objective", ["mixed", "trades"])
def test_log_clean_false_needs_an_objective_that_skips_the_clean_loss(objective):
    with pytest.raises(ValueError, match=r"log_clean=False.*objective='madry'"):
        adversarial(objective=objective, log_clean=False)
