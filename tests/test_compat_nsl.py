"""`keras_adv.compat.nsl`: NSL's adversarial regularization on keras-adv."""

import ast
import os
import pathlib
import runpy

import keras
import numpy as np
import pytest
from keras import ops

import keras_adv.compat.nsl as nsl
from keras_adv import FGSM
from keras_adv import PGD
from keras_adv import AdversarialModel
from keras_adv.training import objectives
from tests.conftest import linear_grads
from tests.conftest import linear_model

ROOT = pathlib.Path(__file__).parents[1]


def linear(seed=0, name="image"):
    return linear_model(6, 3, seed=seed, name=name)


def data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.uniform(0, 1, (n, 6)).astype("float32"),
        rng.integers(0, 3, n).astype("int32"),
    )


def input_grad(w, b, x, y):
    """The input gradient of each example's crossentropy, for a linear model."""
    return linear_grads(w, b, x, y)[2]


CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


# --- the attack each config means -------------------------------------------


def test_the_defaults_are_nsls_and_mean_one_l2_step():
    config = nsl.make_adv_reg_config()
    assert config.multiplier == 0.2
    neighbor = config.adv_neighbor_config
    assert neighbor.adv_step_size == 0.001
    assert neighbor.adv_grad_norm is nsl.NormType.L2
    attack = nsl.configs.attack_of(neighbor)
    assert isinstance(attack, FGSM)
    assert (attack.epsilon, attack.norm, attack.clip) == (0.001, "l2", None)


def test_pgd_settings_give_pgd_in_the_pgd_epsilon_ball():
    config = nsl.make_adv_reg_config(
        adv_step_size=0.02,
        adv_grad_norm="infinity",
        pgd_iterations=5,
        pgd_epsilon=0.05,
        random_init=True,
        clip_value_min=0.0,
        clip_value_max=1.0,
    )
    attack = nsl.configs.attack_of(config.adv_neighbor_config)
    assert isinstance(attack, PGD) and not isinstance(attack, FGSM)
    assert (attack.epsilon, attack.steps, attack.step_size) == (0.05, 5, 0.02)
    assert attack.norm == "linf" and attack.random_start and attack.clip == (0, 1)
    # No pgd_epsilon: NSL does not project; K steps of s stay within K * s.
    unbounded = nsl.make_adv_reg_config(adv_step_size=0.02, pgd_iterations=3)
    assert nsl.configs.attack_of(unbounded.adv_neighbor_config).epsilon == 0.06


@pytest.mark.parametrize("norm", ["l2", "infinity"])
def test_the_neighbour_is_nsls_step_computed_by_hand(norm):
    model = linear()
    w, b = model.get_weights()
    x, y = data(8)
    config = nsl.make_adv_reg_config(adv_step_size=0.1, adv_grad_norm=norm)
    attack = nsl.configs.attack_of(config.adv_neighbor_config)
    g = input_grad(w, b, x, y)
    if norm == "l2":  # NSL: the gradient over its L2 norm, per example
        direction = g / np.linalg.norm(g, axis=1, keepdims=True)
    else:
        direction = np.sign(g)
    expected = x + 0.1 * direction
    got = attack.generate(model, x, y)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_pgd_neighbour_steps_and_projects_as_nsl_does():
    model = linear()
    w, b = model.get_weights()
    x, y = data(8)
    config = nsl.make_adv_reg_config(
        adv_step_size=0.1, adv_grad_norm="l2", pgd_iterations=3, pgd_epsilon=0.15
    )
    point = x.copy()
    for _ in range(3):  # step, then project x_adv - x onto the L2 ball
        g = input_grad(w, b, point, y)
        point = point + 0.1 * g / np.linalg.norm(g, axis=1, keepdims=True)
        delta = point - x
        norm = np.linalg.norm(delta, axis=1, keepdims=True)
        point = x + delta * np.minimum(1.0, 0.15 / norm)
    got = nsl.configs.attack_of(config.adv_neighbor_config).generate(model, x, y)
    np.testing.assert_allclose(got, point, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"adv_grad_norm": "l1"}, "adv_grad_norm='l1'"),
        ({"adv_grad_norm": "l3"}, "adv_grad_norm='l3'"),
        ({"feature_mask": np.ones(6)}, "feature_mask"),
        ({"clip_value_min": 0.0}, "clip_value_max=None"),
        ({"random_init": True, "pgd_iterations": 3}, "pgd_epsilon=None"),
        ({"adv_step_size": 0}, "adv_step_size=0"),
        ({"pgd_epsilon": -1.0}, "pgd_epsilon=-1.0"),
        ({"pgd_iterations": 0}, "pgd_iterations=0"),
        ({"multiplier": -0.5}, "multiplier=-0.5"),
    ],
)
def test_configs_keras_adv_cannot_honour_are_refused_in_one_line(kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        config = nsl.make_adv_reg_config(**kwargs)
        nsl.keras.AdversarialRegularization(linear(), adv_config=config)
    assert "\n" not in str(info.value)


# --- the objective -----------------------------------------------------------


@pytest.mark.parametrize("shared_pass", [True, False])
def test_regularized_objective_is_its_formula_by_hand(shared_pass):
    """One SGD step on `L(x) + m * L(x_adv)` equals the step computed by hand
    (x_adv: FGSM from the clean gradient, held fixed)."""
    model = linear()
    w, b = model.get_weights()
    x, y = data(16)
    m, eps, lr = 0.3, 0.1, 0.5
    adv = AdversarialModel(
        model=model,
        attack=FGSM(eps, clip=None),
        objective=objectives.Regularized(m),
        shared_pass=shared_pass,
    )
    adv.compile(keras.optimizers.SGD(lr), CE)
    adv.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)

    x_adv = x + eps * np.sign(input_grad(w, b, x, y))
    grad_w = np.zeros_like(w)
    grad_b = np.zeros_like(b)
    for inputs, weight in ((x, 1.0), (x_adv, m)):
        by_hand = linear_grads(w, b, inputs, y)
        grad_w += weight * by_hand[0]
        grad_b += weight * by_hand[1]
    new_w, new_b = model.get_weights()
    np.testing.assert_allclose(new_w, w - lr * grad_w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(new_b, b - lr * grad_b, rtol=1e-4, atol=1e-6)


def test_regularized_round_trips_and_is_found_by_name():
    objective = objectives.get("regularized")
    assert isinstance(objective, objectives.Regularized)
    assert objective.multiplier == 0.2
    config = keras.saving.serialize_keras_object(objectives.Regularized(0.7))
    assert keras.saving.deserialize_keras_object(config).multiplier == 0.7


# --- the wrapper ------------------------------------------------------------


def nsl_model(config, sample_weight_key=None, seed=0):
    model = nsl.keras.AdversarialRegularization(
        linear(seed),
        label_keys=["label"],
        sample_weight_key=sample_weight_key,
        adv_config=config,
    )
    model.compile(keras.optimizers.SGD(0.2), CE, metrics=["accuracy"])
    return model


def twin(config, seed=0):
    """The AdversarialModel configuration NSL's config means."""
    neighbor = config.adv_neighbor_config
    model = AdversarialModel(
        model=linear(seed),
        attack=nsl.configs.attack_of(neighbor),
        objective=objectives.Regularized(config.multiplier),
    )
    model.compile(keras.optimizers.SGD(0.2), CE, metrics=["accuracy"])
    return model


@pytest.mark.parametrize(
    "settings",
    [
        {"adv_step_size": 0.1, "adv_grad_norm": "infinity"},
        {"adv_step_size": 0.3, "adv_grad_norm": "l2", "multiplier": 0.5},
        {"adv_step_size": 0.05, "pgd_iterations": 3, "pgd_epsilon": 0.1},
    ],
    ids=["fgsm", "fgm", "pgd"],
)
def test_training_equals_the_matching_adversarial_model(settings):
    x, y = data()
    config = nsl.make_adv_reg_config(**settings)
    ours = nsl_model(config)
    history = ours.fit({"image": x, "label": y}, batch_size=32, epochs=2,
                       shuffle=False, verbose=0).history  # fmt: skip
    reference = twin(config)
    expected = reference.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(ours.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for key in ("loss", "clean_loss", "adv_loss", "adv_accuracy"):
        np.testing.assert_allclose(history[key], expected.history[key], rtol=1e-5)
    # NSL's loss: labeled loss + multiplier * adversarial loss.
    np.testing.assert_allclose(
        history["loss"][-1],
        history["clean_loss"][-1] + config.multiplier * history["adv_loss"][-1],
        rtol=1e-5,
    )


def test_a_dataset_of_dicts_trains_as_the_arrays_do():
    tf = pytest.importorskip("tensorflow")
    x, y = data()
    config = nsl.make_adv_reg_config(adv_step_size=0.1)
    from_arrays = nsl_model(config)
    from_arrays.fit({"image": x, "label": y}, batch_size=32, shuffle=False, verbose=0)
    from_dataset = nsl_model(config)
    dataset = tf.data.Dataset.from_tensor_slices({"image": x, "label": y}).batch(32)
    from_dataset.fit(dataset, validation_data=dataset, verbose=0)
    for a, b in zip(from_arrays.get_weights(), from_dataset.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    scores = from_dataset.evaluate(dataset, return_dict=True, verbose=0)
    assert {"accuracy", "adv_accuracy", "adv_loss", "loss"} <= set(scores)


def test_sample_weight_key_weighs_the_examples():
    x, y = data()
    weight = np.where(np.arange(len(y)) % 2 == 0, 1.0, 0.0).astype("float32")
    config = nsl.make_adv_reg_config(adv_step_size=0.1)
    ours = nsl_model(config, sample_weight_key="weight")
    ours.fit({"image": x, "label": y, "weight": weight}, batch_size=32,
             shuffle=False, verbose=0)  # fmt: skip
    reference = twin(config)
    reference.fit(x, y, sample_weight=weight, batch_size=32, shuffle=False, verbose=0)
    for a, b in zip(ours.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    unweighted = twin(config)
    unweighted.fit(x, y, batch_size=32, shuffle=False, verbose=0)
    kernel = [
        ops.convert_to_numpy(m.trainable_variables[0]) for m in (ours, unweighted)
    ]
    assert not np.allclose(*kernel)


def test_the_base_model_shares_the_weights_and_predicts_without_labels():
    x, y = data()
    model = nsl_model(nsl.make_adv_reg_config(adv_step_size=0.1))
    model.fit({"image": x, "label": y}, batch_size=32, verbose=0)
    np.testing.assert_allclose(
        model.predict({"image": x, "label": y}, verbose=0),
        model.base_model.predict(x, verbose=0),
        rtol=1e-5,
    )


def test_a_regression_model_ascends_its_own_loss():
    """NSL's neighbour follows the compiled loss; for MSE, not crossentropy."""
    x, _ = data(8)
    target = np.zeros((8, 1), "float32")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,), name="image")
    base = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model = nsl.keras.AdversarialRegularization(
        base, adv_config=nsl.make_adv_reg_config(adv_step_size=0.1,
                                                 adv_grad_norm="infinity")
    )  # fmt: skip
    model.compile("sgd", "mse")
    w, b = base.get_weights()
    # d/dx (x.w + b - 0)^2 = 2 (x.w + b) w
    expected = x + 0.1 * np.sign(2.0 * (x @ w + b) * w.T)
    got = model.attack.generate(base, x, target)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    model.fit({"image": x, "label": target}, batch_size=8, verbose=0)


@pytest.mark.parametrize(
    "make, match",
    [
        (
            lambda: nsl.keras.AdversarialRegularization(
                linear(), label_keys=["a", "b"]
            ),
            "label_keys",
        ),
        (
            lambda: nsl.keras.AdversarialRegularization(
                linear(), base_with_labels_in_features=True
            ),
            "base_with_labels",
        ),
        (
            lambda: nsl.keras.AdversarialRegularization(linear(), adv_config={}),
            "adv_config",
        ),
    ],  # fmt: skip
    ids=["two-labels", "labels-in-features", "not-a-config"],
)
def test_unsupported_constructor_arguments_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_a_dict_without_the_label_or_the_input_says_which_key():
    x, y = data()
    model = nsl_model(nsl.make_adv_reg_config())
    with pytest.raises(ValueError, match="no label under 'label'.*'image', 'y'"):
        model.fit({"image": x, "y": y}, verbose=0)
    two = nsl.keras.AdversarialRegularization(two_input_model())
    two.compile("sgd", CE)
    with pytest.raises(ValueError, match="input 'b' is not among the features"):
        two.fit({"a": x, "c": x, "label": y}, verbose=0)


def two_input_model():
    a, b = keras.Input((6,), name="a"), keras.Input((6,), name="b")
    merged = keras.layers.Concatenate()([a, b])
    return keras.Model({"a": a, "b": b}, keras.layers.Dense(3)(merged))


def test_several_named_inputs_are_matched_by_name_and_bounded_jointly():
    x, y = data()
    model = nsl.keras.AdversarialRegularization(
        two_input_model(), adv_config=nsl.make_adv_reg_config(adv_step_size=0.2)
    )
    model.compile("sgd", CE)
    history = model.fit({"b": x, "a": 1 - x, "label": y}, verbose=0).history
    assert np.isfinite(history["adv_loss"][0])


def test_the_nsl_style_script_runs_with_only_its_import_changed(capsys):
    script = ROOT / "examples" / "nsl_style_training.py"
    tree = ast.parse(script.read_text())
    imports = [
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        and "keras_adv" in ast.unparse(node)
    ]
    assert imports == ["import keras_adv.compat.nsl as nsl"]  # the one change
    if keras.backend.backend() != "tensorflow":
        pytest.importorskip("tensorflow")  # the script's tf.data pipeline
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    runpy.run_path(str(script), run_name="__main__")
    printed = capsys.readouterr().out
    assert "adversarial-regularized model" in printed and "adv_accuracy" in printed
