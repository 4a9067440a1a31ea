"""`AdversarialModel` with `keras.saving`, ModelCheckpoint and BackupAndRestore."""

import keras
import numpy as np
import pytest

from keras_adv import PGD
from keras_adv import AdversarialModel
from keras_adv.training import objectives
from tests.conftest import dict_input_model
from tests.test_adversarial_model import CE
from tests.test_adversarial_model import base_model
from tests.test_adversarial_model import data


def compiled(wrap, **kwargs):
    base = base_model()
    attack = PGD(0.05, steps=2, seed=3)
    if wrap:
        model = AdversarialModel(model=base, attack=attack, **kwargs)
    else:
        model = AdversarialModel(base.inputs, base.outputs, attack=attack, **kwargs)
    model.compile(keras.optimizers.Adam(0.01), CE, metrics=["accuracy"])
    return model


@pytest.mark.parametrize("wrap", [False, True], ids=["functional", "wrapped"])
def test_keras_file_round_trips_weights_attack_and_objective(tmp_path, wrap):
    x, y = data()
    model = compiled(wrap, objective=objectives.Trades(beta=2.0), adv_warmup=1)
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is AdversarialModel
    assert loaded.attack.get_config() == model.attack.get_config()
    assert isinstance(loaded.objective, objectives.Trades)
    assert loaded.objective.beta == 2.0
    assert loaded.schedule.warmup == 1
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6
    )
    # The loaded model keeps training adversarially.
    history = loaded.fit(x, y, epochs=1, verbose=0).history
    assert "adv_loss" in history


def test_model_checkpoint_saves_the_best_adversarial_model(tmp_path):
    x, y = data()
    model = compiled(False)
    path = tmp_path / "best.keras"
    checkpoint = keras.callbacks.ModelCheckpoint(
        path, monitor="adv_accuracy", mode="max", save_best_only=True
    )
    model.fit(x, y, epochs=2, verbose=0, callbacks=[checkpoint])
    assert isinstance(keras.saving.load_model(path), AdversarialModel)


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("interrupted")


@pytest.mark.slow
def test_backup_and_restore_resumes_to_the_uninterrupted_weights(tmp_path):
    x, y = data()

    def run(callbacks):
        keras.utils.set_random_seed(0)
        model = compiled(False, epsilon_ramp=2)
        model.fit(
            x, y, epochs=4, batch_size=32, shuffle=False, verbose=0, callbacks=callbacks
        )
        return model

    reference = run([]).get_weights()
    backup = keras.callbacks.BackupAndRestore(tmp_path / "backup")
    with pytest.raises(RuntimeError, match="interrupted"):
        run([backup, _Interrupt(2)])
    resumed = run([keras.callbacks.BackupAndRestore(tmp_path / "backup")])
    for a, b in zip(reference, resumed.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_dict_input_model_round_trips(tmp_path):
    model, _, x, y = dict_input_model(PGD(0.1), n=16)
    model.compile("adam", CE)
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "dict.keras")
    loaded = keras.saving.load_model(tmp_path / "dict.keras")
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6
    )
    loaded.fit(x, y, epochs=1, verbose=0)
