"""`--model`: a zoo name, the user's `.keras` file or builder function, checked."""

import json

import keras
import numpy as np
import pytest

from keras_adv.experiments import model_source
from keras_adv.experiments.model_source import ModelSourceError
from keras_adv.experiments.sweep import SweepSettings
from keras_adv.experiments.sweep import run_sweep
from tests.conftest import assert_refused
from tests.conftest import run_cli

BUILDER = '''
import keras


def build(input_shape, num_classes):
    """A flat MLP with Dropout ending in a softmax: probabilities out."""
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(num_classes, activation="softmax"),
        ],
        name="user_mlp",
    )


def two_outputs(input_shape, num_classes):
    inputs = keras.Input(input_shape)
    flat = keras.layers.Flatten()(inputs)
    return keras.Model(inputs, [keras.layers.Dense(num_classes)(flat)] * 2)


def not_a_model(input_shape, num_classes):
    return "model"
'''


def bn_dropout_cnn(input_shape=(8, 8, 1), num_classes=10):
    """BatchNorm, Dropout, a pooling head: not the reference CNN's shape."""
    layers = keras.layers
    keras.utils.set_random_seed(3)
    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Conv2D(8, 3, padding="same"),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.Dropout(0.1),
            layers.GlobalAveragePooling2D(),
            layers.Dense(num_classes),
        ],
        name="bn_dropout_cnn",
    )


@pytest.fixture
def keras_file(tmp_path):
    path = tmp_path / "mine.keras"
    bn_dropout_cnn().save(path)
    return str(path)


@pytest.fixture
def builder_file(tmp_path):
    path = tmp_path / "my_models.py"
    path.write_text(BUILDER)
    return str(path)


def _weights(model):
    return [np.asarray(w) for w in model.get_weights()]


def test_a_keras_file_gives_its_architecture_with_the_same_fresh_weights_per_seed(
    keras_file,
):
    saved = keras.saving.load_model(keras_file)
    first, from_logits = model_source.build(keras_file, (8, 8, 1), 10, seed=0)
    second, _ = model_source.build(keras_file, (8, 8, 1), 10, seed=0)
    other, _ = model_source.build(keras_file, (8, 8, 1), 10, seed=1)
    assert from_logits is True
    assert [layer.__class__ for layer in first.layers] == [
        layer.__class__ for layer in saved.layers
    ]
    kernel = 0  # the first Conv2D kernel
    assert np.array_equal(_weights(first)[kernel], _weights(second)[kernel])
    assert not np.array_equal(_weights(first)[kernel], _weights(other)[kernel])
    assert not np.array_equal(_weights(first)[kernel], _weights(saved)[kernel])
    kept, _ = model_source.build(keras_file, (8, 8, 1), 10, seed=0, init="weights")
    assert np.array_equal(_weights(kept)[kernel], _weights(saved)[kernel])


def test_a_builder_function_is_called_with_the_data_shape(builder_file):
    model, from_logits = model_source.build(
        f"{builder_file}:build", (8, 8, 1), 10, seed=0
    )
    assert model.name == "user_mlp" and model.input_shape == (None, 8, 8, 1)
    assert from_logits is False  # a softmax head: probabilities
    record = model_source.describe(f"{builder_file}:build")
    assert record["kind"] == "function" and len(record["sha256"]) == 64


@pytest.mark.parametrize(
    "source, shape, classes, fragment",
    [
        ("nothing_here", (8, 8, 1), 10, "neither a zoo name"),
        ("missing.keras", (8, 8, 1), 10, "no such .keras file"),
        ("KERAS", (8, 8, 1), 3, "data have 3 classes"),  # wrong class count
        ("KERAS", (28, 28, 1), 10, "takes inputs of shape (8, 8, 1)"),
        ("PY:two_outputs", (8, 8, 1), 10, "2 outputs"),
        ("PY:not_a_model", (8, 8, 1), 10, "must give a keras.Model"),
        ("PY:absent", (8, 8, 1), 10, "has no function absent"),
        ("no_such_module_xyz:build", (8, 8, 1), 10, "cannot import"),
    ],
)
def test_models_that_do_not_fit_are_refused_in_one_line(
    keras_file, builder_file, source, shape, classes, fragment
):
    source = source.replace("KERAS", keras_file).replace("PY", builder_file)
    with pytest.raises(ModelSourceError) as error:
        model_source.build(source, shape, classes, seed=0)
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_init_weights_needs_a_keras_file():
    with pytest.raises(ModelSourceError, match="--init weights"):
        model_source.build("small_cnn", (8, 8, 1), 10, seed=0, init="weights")


@pytest.mark.slow
def test_a_sweep_trains_a_users_keras_file_and_records_it(tmp_path, keras_file):
    settings = SweepSettings(
        train_epsilons=(0.0, 0.1),
        attack_epsilons=(0.0, 0.1),
        attacks=("fgsm",),
        train_attack="fgsm",
        epochs=1,
        max_test_examples=64,
        checks=False,
        model=keras_file,
    )
    results = run_sweep(settings, tmp_path / "run")
    assert results["model"]["kind"] == "keras_file"
    assert results["settings"]["model"] == keras_file
    expected = bn_dropout_cnn().count_params()
    for entry in results["training"].values():
        assert entry["architecture"] == "bn_dropout_cnn"
        assert entry["parameters"] == expected
    # the same file resumes; a changed file under the same name is refused
    run_sweep(settings, tmp_path / "run")
    keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                      keras.layers.Dense(10)]).save(keras_file)  # fmt: skip
    with pytest.raises(Exception, match="--model .* changed"):
        run_sweep(settings, tmp_path / "run")


@pytest.mark.slow
def test_the_cli_sweeps_a_builder_function_and_refuses_a_misfit(tmp_path, builder_file):
    tiny = ["--train-eps", "0", "0.1", "--attack-eps", "0", "0.1", "--attacks",
            "fgsm", "--train-attack", "fgsm", "--epochs", "1",
            "--max-test-examples", "64", "--no-checks"]  # fmt: skip
    code, out, err = run_cli(
        "sweep", "--out", str(tmp_path), "--name", "f",
        "--model", f"{builder_file}:build", *tiny, "--quiet",
    )  # fmt: skip
    assert code == 0, err
    results = json.loads((tmp_path / "f" / "results.json").read_text())
    assert results["training"]["0.1"]["architecture"] == "user_mlp"
    report = (tmp_path / "f" / "report.md").read_text()
    assert f"model `{builder_file}:build` (user_mlp," in report
    code, _, err = run_cli(
        "sweep", "--out", str(tmp_path), "--name", "g",
        "--model", f"{builder_file}:two_outputs", *tiny,
    )  # fmt: skip
    assert_refused(code, err, "2 outputs")
