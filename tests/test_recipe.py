"""The training recipe of the job: optimizer, schedules, augmentation,
training attack, objective, robust early stopping; recorded and refused."""

import json

import keras
import numpy as np
import pytest

from keras_adv.attacks import FGSM
from keras_adv.attacks import PGD
from keras_adv.evaluation.probe import ProbeSet
from keras_adv.experiments import recipe
from keras_adv.experiments.sweep import SweepSettings
from keras_adv.training import objectives
from tests.conftest import assert_refused
from tests.conftest import mlp
from tests.conftest import run_cli


def rates(schedule, steps):
    return np.array([float(schedule(step)) for step in steps])


def test_the_default_recipe_is_the_jobs_old_one_adam_at_1e_3_constant():
    settings = SweepSettings()
    optimizer = recipe.optimizer(settings, steps_per_epoch=10)
    assert isinstance(optimizer, keras.optimizers.Adam)
    assert float(optimizer.learning_rate) == pytest.approx(1e-3)
    assert optimizer.weight_decay is None
    assert not recipe.augmenting(settings)
    assert (
        recipe.split_for_early_stopping(settings, np.zeros((5, 2)), np.zeros(5))[1]
        is None
    )


def test_sgd_takes_the_literatures_momentum_unless_told_and_nesterov():
    plain = recipe.optimizer(SweepSettings(optimizer="sgd"), 10)
    told = recipe.optimizer(
        SweepSettings(optimizer="sgd", momentum=0.5, nesterov=True, weight_decay=5e-4),
        10,
    )
    assert isinstance(plain, keras.optimizers.SGD) and plain.momentum == 0.9
    assert not plain.nesterov and plain.weight_decay is None
    assert told.momentum == 0.5 and told.nesterov and told.weight_decay == 5e-4


def test_piecewise_divides_by_ten_at_each_milestone():
    settings = SweepSettings(epochs=4, learning_rate=0.1, lr_schedule="piecewise")
    schedule = recipe.learning_rate(settings, steps_per_epoch=10)  # 40 steps
    got = rates(schedule, [0, 20, 21, 30, 31, 39])
    np.testing.assert_allclose(got, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-5)
    custom = recipe.learning_rate(
        SweepSettings(epochs=4, lr_schedule="piecewise", lr_milestones=[0.25]), 10
    )
    np.testing.assert_allclose(rates(custom, [10, 11]), [1e-3, 1e-4], rtol=1e-5)


def test_cosine_decays_from_the_rate_to_zero_over_training():
    settings = SweepSettings(epochs=2, learning_rate=0.2, lr_schedule="cosine")
    got = rates(recipe.learning_rate(settings, 10), [0, 10, 20])
    np.testing.assert_allclose(got, [0.2, 0.1, 0.0], atol=1e-6)


def test_cyclic_is_wong_et_als_triangle_evaluated_after_each_step():
    epochs, steps = 5, 7
    settings = SweepSettings(epochs=epochs, learning_rate=0.2, lr_schedule="cyclic")
    schedule = recipe.learning_rate(settings, steps)
    # Wong et al.'s code: np.interp(t, [0, epochs * 2 // 5, epochs], [0, lr, 0])
    # at t = epoch + (i + 1) / steps.
    t = (np.arange(epochs * steps) + 1) / steps
    expected = np.interp(t, [0, epochs * 2 // 5, epochs], [0, 0.2, 0])
    np.testing.assert_allclose(
        rates(schedule, range(epochs * steps)), expected, atol=1e-6
    )
    assert rates(schedule, range(epochs * steps)).min() >= 0


def test_the_cyclic_schedule_saves_and_loads_with_the_model(tmp_path):
    settings = SweepSettings(epochs=3, learning_rate=0.05, lr_schedule="cyclic")
    model = mlp()
    model.compile(recipe.optimizer(settings, 4), "sparse_categorical_crossentropy")
    model.fit(np.zeros((8, 64)), np.zeros(8), batch_size=4, epochs=1, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path).optimizer
    schedule = loaded.get_config()["learning_rate"]
    assert schedule == model.optimizer.get_config()["learning_rate"]
    assert "Triangular" in schedule["class_name"]
    # 2 of 12 steps done, peak at step 4: the rate is now 0.05 * 3 / 4
    assert float(loaded.learning_rate) == pytest.approx(0.0375)


def test_the_training_attack_takes_the_step_size_relative_to_epsilon_and_start():
    default = recipe.training_attack(SweepSettings(train_attack="pgd7"), 0.1)
    fast = recipe.training_attack(
        SweepSettings(
            train_attack="fgsm", train_relative_step_size=1.25, train_random_start=True
        ),
        0.1,
    )
    assert isinstance(default, PGD) and default.steps == 7 and default.random_start
    assert default.step_size is None  # the attack's own, 2.5 * eps / steps
    assert isinstance(fast, FGSM) and fast.random_start
    assert fast.step_size == pytest.approx(0.125) and fast.epsilon == 0.1
    clean_start = recipe.training_attack(
        SweepSettings(train_attack="pgd7", train_random_start=False), 0.1
    )
    assert not clean_start.random_start


def test_the_objective_takes_its_parameter():
    assert (
        recipe.objective(SweepSettings(objective="trades", trades_beta=1.0)).beta == 1
    )
    mixed = recipe.objective(SweepSettings(objective="mixed", mixed_alpha=0.3))
    assert isinstance(mixed, objectives.Mixed) and mixed.alpha == 0.3
    assert isinstance(recipe.objective(SweepSettings()), objectives.Madry)
    aligned = recipe.objective(SweepSettings(objective="gradalign", gradalign_lam=2.0))
    assert isinstance(aligned, objectives.GradAlign) and aligned.lam == 2.0


@pytest.mark.parametrize(
    "fields, says",
    [
        ({"momentum": 0.9}, "only apply with optimizer = 'sgd'"),
        ({"nesterov": True}, "only apply with optimizer = 'sgd'"),
        ({"lr_milestones": [0.5]}, "only apply with lr_schedule = 'piecewise'"),
        ({"lr_schedule": "piecewise", "lr_milestones": [0.7, 0.3]}, "increasing"),
        ({"trades_beta": 6.0}, "only apply with objective = 'trades'"),
        ({"mixed_alpha": 0.5}, "only apply with objective = 'mixed'"),
        ({"gradalign_lam": 1.0}, "only apply with objective = 'gradalign'"),
        ({"awp_warmup": 5}, "only apply with awp_gamma > 0"),
        ({"objective": "mixed", "mixed_alpha": 2.0}, "alpha"),
        ({"train_attack": "apgd-ce", "train_relative_step_size": 1.0}, "step_size"),
        ({"train_attack": "square", "train_random_start": True}, "random_start"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"optimizer": "rmsprop"}, "adam, sgd"),
        ({"lr_schedule": "linear"}, "constant, piecewise, cosine, cyclic"),
        ({"crop_padding": -1}, "crop_padding"),
        ({"early_stopping_split": 0.6}, "early_stopping_split"),
    ],
)
def test_a_field_out_of_range_or_that_does_not_apply_is_refused(fields, says):
    with pytest.raises(ValueError, match="Argument") as error:
        SweepSettings(**fields)
    assert says in str(error.value)


def windows(padded, height, width):
    """Every crop of `padded` of the given size, and its mirror image."""
    rows, cols = padded.shape[0] - height + 1, padded.shape[1] - width + 1
    crops = [
        padded[i : i + height, j : j + width] for i in range(rows) for j in range(cols)
    ]
    return crops + [crop[:, ::-1] for crop in crops]


def test_augmentation_crops_a_window_of_the_padded_image_and_flips_it():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(40, 6, 5, 2)).astype("float32")
    y = np.arange(40)
    batches = recipe.AugmentedBatches(x, y, batch_size=16, padding=2, flip=True, seed=0)
    seen, changed = [], 0
    for index in range(len(batches)):
        images, labels = batches[index]
        images = keras.ops.convert_to_numpy(images)
        assert images.shape[1:] == x.shape[1:]
        for image, label in zip(images, labels, strict=True):
            padded = np.pad(x[label], ((2, 2), (2, 2), (0, 0)))
            assert any(np.array_equal(image, w) for w in windows(padded, 6, 5))
            changed += not np.array_equal(image, x[label])
        seen += list(labels)
    assert sorted(seen) == list(range(40))  # every example once per epoch
    assert changed > 20  # most images moved or flipped
    first = list(batches[0][1])
    batches.on_epoch_end()
    assert list(batches[0][1]) != first  # reshuffled each epoch


def test_augmentation_refuses_data_that_are_not_images():
    with pytest.raises(ValueError, match="need images"):
        recipe.AugmentedBatches(np.zeros((4, 64)), np.zeros(4), 2, 4, False, 0)


def test_early_stopping_keeps_the_weights_of_the_best_held_out_epoch(digits):
    (x, y), _ = digits
    settings = SweepSettings(train_attack="fgsm", early_stopping_split=0.2, epochs=3)
    (x_fit, y_fit), held_out = recipe.split_for_early_stopping(settings, x, y)
    assert len(held_out[0]) == round(0.2 * len(x)) and len(x_fit) + len(
        held_out[0]
    ) == len(x)
    model = mlp()
    model.compile(
        keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(True)
    )

    def sabotage(epoch, logs):  # the last epoch ends with a useless model
        if epoch == settings.epochs - 1:
            model.set_weights([np.zeros_like(w) for w in model.get_weights()])

    callbacks = [
        keras.callbacks.LambdaCallback(on_epoch_end=sabotage),
        *recipe.early_stopping_callbacks(settings, 0.05, held_out, from_logits=True),
    ]
    history = model.fit(
        x_fit, y_fit, epochs=settings.epochs, callbacks=callbacks, verbose=0
    )
    record = recipe.early_stopping_record(history.history)
    assert record["last_epoch"] == 3 and record["best_epoch"] < 3
    assert record["last_robust_accuracy"] < 0.2 < record["best_robust_accuracy"]
    # The model now holds the best epoch's weights: measured again, the same.
    probe = ProbeSet(held_out, max_examples=len(held_out[0]))
    again = float(np.mean(probe.run(model, FGSM(0.05), epsilon=0.05).correct))
    assert again == pytest.approx(record["best_robust_accuracy"], abs=1e-6)


RECIPE_FLAGS = [
    "--optimizer", "sgd", "--learning-rate", "0.05", "--nesterov",
    "--lr-schedule", "piecewise", "--lr-milestones", "0.5",
    "--weight-decay", "1e-4", "--crop-padding", "1", "--flip",
    "--train-attack", "fgsm", "--train-relative-step-size", "1.25",
    "--train-random-start", "--early-stopping-split", "0.1",
]  # fmt: skip


@pytest.mark.slow
def test_a_sweep_runs_the_recipe_and_records_every_field(tmp_path):
    code, _, err = run_cli(
        "sweep", "--quiet", "--name", "r", "--train-eps", "0.05",
        "--attack-eps", "0.05", "--attacks", "fgsm", "--epochs", "2",
        "--max-test-examples", "32", "--no-checks", *RECIPE_FLAGS,
        cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, err
    run = tmp_path / "runs" / "r"
    results = json.loads((run / "results.json").read_text())
    assert {
        key: results["settings"][key]
        for key in ("optimizer", "learning_rate", "nesterov", "lr_schedule",
                    "lr_milestones", "weight_decay", "crop_padding", "flip",
                    "train_relative_step_size", "train_random_start",
                    "early_stopping_split", "momentum")
    } == {
        "optimizer": "sgd", "learning_rate": 0.05, "nesterov": True,
        "lr_schedule": "piecewise", "lr_milestones": [0.5], "weight_decay": 1e-4,
        "crop_padding": 1, "flip": True, "train_relative_step_size": 1.25,
        "train_random_start": True, "early_stopping_split": 0.1, "momentum": None,
    }  # fmt: skip
    stopping = results["training"]["0.05"]["early_stopping"]
    assert stopping["last_epoch"] == 2 and 1 <= stopping["best_epoch"] <= 2
    report = (run / "report.md").read_text()
    assert "Recipe: sgd (momentum 0.9, Nesterov) at learning rate 0.05" in report
    assert "random crop (padding 1) and horizontal flip" in report
    assert "robust early stopping on 10% of the training data held out" in report
    # The same command resumes (every recipe field part of the settings) ...
    assert run_cli("sweep", "--quiet", "--name", "r", "--train-eps", "0.05",
                   "--attack-eps", "0.05", "--attacks", "fgsm", "--epochs", "2",
                   "--max-test-examples", "32", "--no-checks", *RECIPE_FLAGS,
                   cwd=tmp_path)[0] == 0  # fmt: skip
    # ... and another recipe in the same folder is refused.
    changed = [f if f != "0.05" else "0.02" for f in RECIPE_FLAGS]
    code, _, err = run_cli(
        "sweep", "--quiet", "--name", "r", "--train-eps", "0.05",
        "--attack-eps", "0.05", "--attacks", "fgsm", "--epochs", "2",
        "--max-test-examples", "32", "--no-checks", *changed, cwd=tmp_path,
    )  # fmt: skip
    assert_refused(code, err, "other settings")


@pytest.mark.parametrize(
    "flags, says",
    [
        (["--momentum", "0.9"], "momentum and nesterov only apply"),
        (["--lr-schedule", "cosine", "--lr-milestones", "0.5"], "lr_milestones"),
        (["--early-stopping-split", "0.9"], "--early-stopping-split must be"),
        (["--learning-rate", "-1"], "--learning-rate must be"),
    ],
)
def test_a_bad_recipe_flag_is_refused_in_one_line(tmp_path, flags, says):
    code, _, err = run_cli("sweep", "--quiet", *flags, cwd=tmp_path)
    assert_refused(code, err, says)


def test_a_recipe_key_in_a_config_file_is_checked_and_named(tmp_path):
    (tmp_path / "c.toml").write_text('optimizer = "sgd"\nmomentum = "high"\n')
    code, _, err = run_cli("sweep", "--config", "c.toml", cwd=tmp_path)
    assert_refused(code, err, "momentum in c.toml", "'high'")


@pytest.mark.parametrize(
    "fields",
    [
        {"train_attack": "pgd7", "train_random_start": "yes"},
        {"flip": 1},
        {"nesterov": "true", "optimizer": "sgd"},
    ],
)
def test_a_python_caller_s_wrong_type_is_refused_before_any_training(fields):
    """`SweepSettings` is the Python API: no flag parser checked these types."""
    name = next(key for key in fields if key not in ("train_attack", "optimizer"))
    with pytest.raises(ValueError, match=f"`{name}` must be True or False"):
        SweepSettings(**fields)
