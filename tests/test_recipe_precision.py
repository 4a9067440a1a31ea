"""The recipe's `precision`: Keras's mixed-precision policies in the job."""

import json

import keras
import numpy as np
import pytest

from keras_adv.experiments import model_source
from keras_adv.experiments import recipe
from keras_adv.experiments.data import load_digits
from keras_adv.experiments.model_source import ModelSourceError
from keras_adv.experiments.sweep import SweepSettings
from keras_adv.experiments.sweep import train_model
from keras_adv.training import AdversarialModel
from tests.conftest import assert_refused
from tests.conftest import run_cli
from tests.test_model_source import bn_dropout_cnn


@pytest.fixture
def tiny_digits():
    (x_train, y_train), test = load_digits(seed=0)
    return (x_train[:256], y_train[:256]), test


def computing_layers(model):
    """The layers with weights (those mixed precision changes), nested too."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += computing_layers(layer)
        elif layer.weights:
            found.append(layer)
    return found


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_the_model_trains_in_the_policy_and_the_global_policy_is_restored(
    tiny_digits, precision
):
    settings = SweepSettings(
        train_attack="fgsm", epochs=2, batch_size=64, precision=precision
    )
    model, record = train_model(settings, 0.05, tiny_digits)
    assert keras.mixed_precision.global_policy().name == "float32"
    assert isinstance(model, AdversarialModel)
    layers = computing_layers(model)
    assert layers and all(layer.dtype_policy.name == precision for layer in layers)
    assert all(w.dtype == "float32" for w in model.weights)  # float32 variables
    scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (precision == "mixed_float16")  # Keras's compile decides
    x = tiny_digits[0][0][:8]
    scores = model.predict(x, verbose=0)
    assert scores.dtype == np.float32  # a float32 head ends the model
    assert record["epochs"] == 2


def test_float32_stays_as_the_model_was_built(tiny_digits):
    model, _ = train_model(SweepSettings(epochs=1), 0.0, tiny_digits)
    assert all(layer.dtype_policy.name == "float32" for layer in model.layers)
    assert "float32_output" not in [layer.name for layer in model.layers]


def test_a_keras_file_is_rebuilt_in_the_policy_and_keeps_its_weights(tmp_path):
    path = str(tmp_path / "user.keras")
    saved = bn_dropout_cnn()
    saved.save(path)
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    settings = SweepSettings(precision="mixed_bfloat16")
    with recipe.dtype_policy(settings):
        model, _ = model_source.build(path, (8, 8, 1), 10, 0, init="weights")
    assert {layer.dtype_policy.name for layer in computing_layers(model)} == {
        "mixed_bfloat16"
    }
    np.testing.assert_allclose(
        model.predict(x, verbose=0), saved.predict(x, verbose=0), atol=0.05
    )  # the file's weights, computed in bfloat16


def test_the_global_policy_is_restored_when_building_fails():
    settings = SweepSettings(precision="mixed_bfloat16")
    with pytest.raises(ModelSourceError):
        with recipe.dtype_policy(settings):
            model_source.build("no_such.keras", (8, 8, 1), 10, 0)
    assert keras.mixed_precision.global_policy().name == "float32"


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="mixed_float16, mixed_bfloat16") as error:
        SweepSettings(precision="float16")
    assert "precision='float16'" in str(error.value)


def test_an_unknown_precision_flag_is_refused_with_the_choices(tmp_path):
    code, _, err = run_cli("sweep", "--precision", "half", cwd=tmp_path)
    assert code == 2 and "Traceback" not in err  # argparse: usage, then why
    assert "--precision: invalid choice: 'half'" in err and "mixed_bfloat16" in err


def test_an_unknown_precision_in_a_config_file_is_named(tmp_path):
    (tmp_path / "c.toml").write_text('precision = "float16"\n')
    code, _, err = run_cli("sweep", "--config", "c.toml", cwd=tmp_path)
    assert_refused(code, err, "precision in c.toml", "'float16'")


@pytest.mark.slow
def test_a_sweep_in_mixed_precision_records_it_and_resumes(tmp_path):
    args = (
        "sweep", "--quiet", "--name", "p", "--train-eps", "0.05",
        "--attack-eps", "0.05", "--attacks", "fgsm", "--epochs", "1",
        "--max-test-examples", "32", "--no-checks",
        "--precision", "mixed_bfloat16",
    )  # fmt: skip
    code, _, err = run_cli(*args, cwd=tmp_path)
    assert code == 0, err
    run = tmp_path / "runs" / "p"
    results = json.loads((run / "results.json").read_text())
    assert results["settings"]["precision"] == "mixed_bfloat16"
    assert "precision mixed_bfloat16" in (run / "report.md").read_text()
    assert keras.mixed_precision.global_policy().name == "float32"
    assert run_cli(*args, cwd=tmp_path)[0] == 0  # resumes: the same recipe
