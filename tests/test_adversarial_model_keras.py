"""`AdversarialModel` keeps the rest of Keras working."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from keras import ops

from keras_adv import FGSM
from keras_adv import PGD
from keras_adv import AdversarialModel
from tests.test_adversarial_model import CE
from tests.test_adversarial_model import adversarial
from tests.test_adversarial_model import base_model
from tests.test_adversarial_model import data

TF_ONLY = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="TensorFlow-specific"
)


@TF_ONLY
def test_tf_data_input():
    import tensorflow as tf

    x, y = data()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    history = adversarial().fit(dataset, epochs=1, verbose=0, validation_data=dataset)
    assert "val_adv_accuracy" in history.history


def test_py_dataset_input():
    x, y = data()

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 4

        def __getitem__(self, index):
            return x[index * 32 : (index + 1) * 32], y[index * 32 : (index + 1) * 32]

    history = adversarial().fit(Batches(), epochs=1, verbose=0)
    assert np.isfinite(history.history["adv_loss"][0])


def test_sample_weight_weights_the_adversarial_loss_too():
    x, y = data()
    model = adversarial(objective="madry")
    ones = model.evaluate(x, y, verbose=0, return_dict=True)
    weights = np.where(np.arange(len(x)) < 64, 1.0, 0.0).astype("float32")
    half = model.evaluate(x, y, sample_weight=weights, verbose=0, return_dict=True)
    first_half = model.evaluate(x[:64], y[:64], verbose=0, return_dict=True)
    assert half["adv_loss"] != pytest.approx(ones["adv_loss"])
    # Keras's default reduction divides by the batch size: half the weight mass.
    assert half["adv_loss"] == pytest.approx(first_half["adv_loss"] / 2, rel=1e-4)


def test_class_weight_is_accepted():
    x, y = data()
    history = adversarial().fit(
        x, y, class_weight={0: 1.0, 1: 3.0}, epochs=1, verbose=0
    )
    assert np.isfinite(history.history["loss"][0])


def test_jit_compile_trains_as_eager_does():
    """Compiled (XLA; torch.compile on PyTorch, whose first step compiles for
    ~40 s here: two batches, not four) and eager training agree."""
    x, y = data(n=64)
    results = []
    for jit in (False, True):
        base = base_model(seed=0)
        model = AdversarialModel(
            base.inputs, base.outputs, attack=PGD(0.1, steps=2, random_start=False)
        )
        model.compile(keras.optimizers.SGD(0.1), CE, jit_compile=jit)
        model.fit(x, y, epochs=1, batch_size=32, shuffle=False, verbose=0)
        results.append(model.get_weights())
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_batchnorm_and_dropout_model_trains():
    x, y = data()
    model = adversarial(PGD(0.1, steps=2, seed=0), batchnorm=True)
    history = model.fit(x, y, epochs=2, batch_size=32, verbose=0).history
    assert history["loss"][1] < history["loss"][0]


@pytest.fixture
def policy():
    yield keras.mixed_precision.set_dtype_policy
    keras.mixed_precision.set_dtype_policy("float32")


@pytest.mark.parametrize("name", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_fgsm_moves_every_pixel(policy, name):
    policy(name)
    rng = np.random.default_rng(0)
    base = base_model()
    model = AdversarialModel(base.inputs, base.outputs, attack=FGSM(0.05))
    model.compile(keras.optimizers.SGD(0.1), CE)
    x = rng.uniform(0.2, 0.8, (64, 12)).astype("float32")
    y = rng.integers(0, 2, 64).astype("int32")
    model.fit(x, y, epochs=1, verbose=0)
    x_adv = ops.convert_to_numpy(
        model.adversarial_examples(ops.convert_to_tensor(x), ops.convert_to_tensor(y))
    )
    np.testing.assert_allclose(np.abs(x_adv - x), 0.05, atol=1e-6)


def test_summary_runs(capsys):
    adversarial().summary()
    assert "Total params" in capsys.readouterr().out


@TF_ONLY
@pytest.mark.slow
def test_mirrored_strategy_matches_one_device():
    """Two logical CPUs under MirroredStrategy give one device's weights and logs."""
    script = textwrap.dedent(
        """
        import numpy as np, tensorflow as tf, keras
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from keras_adv import AdversarialModel, PGD
        from tests.test_adversarial_model import CE, base_model, data
        x, y = data()
        def train(strategy):
            with strategy.scope():
                base = base_model(seed=0)
                model = AdversarialModel(base.inputs, base.outputs,
                    attack=PGD(0.1, steps=2, random_start=False))
                model.compile(keras.optimizers.SGD(0.1), CE, metrics=["accuracy"])
            history = model.fit(x, y, epochs=2, batch_size=32, shuffle=False,
                                verbose=0)
            return model.get_weights(), history.history
        one, logs_one = train(tf.distribute.get_strategy())
        two, logs_two = train(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
        for a, b in zip(one, two):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
        for key in ["loss", "clean_loss", "adv_loss", "adv_accuracy"]:
            np.testing.assert_allclose(logs_one[key], logs_two[key], rtol=1e-4)
        print("MIRRORED_OK")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert "MIRRORED_OK" in result.stdout, result.stderr[-3000:]
