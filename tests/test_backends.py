"""The same library on TensorFlow, JAX and PyTorch."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_adv import PGD
from keras_adv import AdversarialModel

ROOT = os.path.dirname(os.path.dirname(__file__))
BACKENDS = [b for b in ("tensorflow", "jax", "torch") if importlib.util.find_spec(b)]


def run_in(backend, script, env=None):
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, "KERAS_BACKEND": backend, **(env or {})},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="spawns every backend itself; once is enough",
)
def test_fgsm_examples_agree_across_backends(tmp_path):
    """One .keras file, loaded in each backend, gives the same FGSM examples."""
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(64, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 10, 64)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    from keras_adv.experiments.zoo import small_cnn

    small_cnn(seed=0).save(tmp_path / "model.keras")
    results = {}
    for backend in BACKENDS:
        run_in(
            backend,
            f"""
            import numpy as np, keras
            from keras_adv import FGSM
            data = np.load({str(tmp_path / "data.npz")!r})
            model = keras.saving.load_model({str(tmp_path / "model.keras")!r})
            x_adv = FGSM(0.1).generate(model, data["x"], data["y"])
            np.save({str(tmp_path / backend)!r}, x_adv)
        """,
        )
        results[backend] = np.load(tmp_path / f"{backend}.npy")
    reference = results.pop("tensorflow")
    for backend, x_adv in results.items():
        # Float differences can flip the sign of a near-zero gradient.
        assert np.mean(np.isclose(x_adv, reference, atol=1e-6)) > 0.999, backend


def test_attack_random_state_advances_during_fit():
    """Random starts differ from step to step, also under JAX's stateless step."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    model = AdversarialModel(
        inputs, keras.layers.Dense(2)(inputs), attack=PGD(0.1, steps=2, seed=1)
    )
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    state = model.attack.seed_generator.state
    before = keras.ops.convert_to_numpy(state).copy()
    x = np.random.default_rng(0).uniform(size=(64, 6)).astype("float32")
    model.fit(x, np.zeros(64, "int32"), batch_size=16, epochs=1, verbose=0)
    after = keras.ops.convert_to_numpy(model.attack.seed_generator.state)
    assert not np.array_equal(before, after)
    # Four steps, one draw each (plus none for the symbolic build): the
    # counter moved by more than one step's worth.
    assert int(after[0]) - int(before[0]) >= 4 or int(after[1]) != int(before[1])


@pytest.mark.slow
@pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX DataParallel")
def test_jax_data_parallel_trains_an_adversarial_model():
    output = run_in(
        "jax",
        """
        import numpy as np, keras, jax
        assert len(jax.devices()) == 2, jax.devices()
        keras.distribution.set_distribution(keras.distribution.DataParallel())
        from keras_adv import AdversarialModel, FGSM
        from tests.test_adversarial_model import CE, base_model, data
        x, y = data(256)
        base = base_model(seed=0)
        model = AdversarialModel(base.inputs, base.outputs, attack=FGSM(0.1))
        model.compile(keras.optimizers.SGD(0.1), CE, metrics=["accuracy"])
        history = model.fit(x, y, epochs=3, batch_size=64, verbose=0).history
        assert history["loss"][-1] < history["loss"][0], history
        assert all(np.isfinite(w).all() for w in model.get_weights())
        print("DATA_PARALLEL_OK", history["adv_accuracy"][-1])
    """,
        env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
    )
    assert "DATA_PARALLEL_OK" in output
