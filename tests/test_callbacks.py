"""The callbacks publish into Keras `logs` and work with Keras's own callbacks."""

import csv

import keras
import numpy as np
import pytest

from keras_adv import FGSM
from keras_adv import PGD
from keras_adv import AdversarialModel
from keras_adv.callbacks import AdversarialMonitor
from keras_adv.callbacks import CatastrophicOverfittingGuard
from keras_adv.callbacks import RobustnessCurve
from tests.conftest import count_traces

CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
KEYS = [
    "adv_perturbation_linf",
    "adv_perturbation_l2",
    "adv_perturbation_linf_max",
    "adv_perturbation_l2_max",
    "adv_prediction_drift",
    "adv_prediction_drift_l1",
    "adv_kl",
    "adv_flip_rate",
    "adv_robust_accuracy",
    "adv_clean_accuracy",
]


@pytest.fixture(scope="module")
def digits_flat(digits):
    (x, y), (x_test, y_test) = digits
    return x, y, x_test[:200], y_test[:200]


def model_for(seed=0, lr=1e-2, compiled=True):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    if compiled:
        model.compile(keras.optimizers.Adam(lr), CE, metrics=["accuracy"])
    return model


def test_monitor_keys_reach_history_with_sensible_values(digits_flat):
    x, y, x_probe, y_probe = digits_flat
    monitor = AdversarialMonitor((x_probe, y_probe), epsilon=0.1)
    history = model_for().fit(x, y, epochs=3, verbose=0, callbacks=[monitor]).history
    for key in KEYS:
        assert len(history[key]) == 3, key
    assert history["adv_perturbation_linf"][-1] == pytest.approx(0.1, abs=1e-5)
    assert history["adv_perturbation_linf_max"][-1] == pytest.approx(0.1, abs=1e-5)
    assert history["adv_robust_accuracy"][-1] < history["adv_clean_accuracy"][-1]
    assert 0 < history["adv_flip_rate"][-1] <= 1
    assert history["adv_kl"][-1] > 0 and history["adv_prediction_drift"][-1] > 0
    assert monitor.history["adv_flip_rate"] == history["adv_flip_rate"]


def test_monitor_defaults_to_the_adversarial_models_own_attack(digits_flat):
    x, y, x_probe, y_probe = digits_flat
    base = model_for(compiled=False)
    model = AdversarialModel(model=base, attack=PGD(0.05, steps=3, seed=0))
    model.compile("adam", CE)
    monitor = AdversarialMonitor((x_probe, y_probe), epsilon=0.3)  # not used
    history = model.fit(x, y, epochs=1, verbose=0, callbacks=[monitor]).history
    assert history["adv_perturbation_linf_max"][0] == pytest.approx(0.05, abs=1e-5)


def test_every_skips_epochs_but_not_the_first(digits_flat):
    x, y, x_probe, y_probe = digits_flat
    monitor = AdversarialMonitor((x_probe, y_probe), epsilon=0.1, every=2)
    model_for().fit(x, y, epochs=5, verbose=0, callbacks=[monitor])
    assert len(monitor.history["adv_flip_rate"]) == 3  # epochs 1, 3, 5


def test_csv_logger_after_the_monitor_records_the_keys(tmp_path, digits_flat):
    x, y, x_probe, y_probe = digits_flat
    path = tmp_path / "log.csv"
    monitor = AdversarialMonitor((x_probe, y_probe), epsilon=0.1)
    model_for().fit(
        x, y, epochs=2, verbose=0, callbacks=[monitor, keras.callbacks.CSVLogger(path)]
    )
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 2
    assert float(rows[1]["adv_perturbation_linf"]) == pytest.approx(0.1, abs=1e-5)
    assert 0 <= float(rows[1]["adv_robust_accuracy"]) <= 1


def test_csv_logger_before_the_monitor_misses_the_keys(tmp_path, digits_flat):
    """Why the docs say the monitor must come first."""
    x, y, x_probe, y_probe = digits_flat
    path = tmp_path / "log.csv"
    monitor = AdversarialMonitor((x_probe, y_probe), epsilon=0.1)
    model_for().fit(
        x, y, epochs=2, verbose=0, callbacks=[keras.callbacks.CSVLogger(path), monitor]
    )
    header = next(csv.reader(path.open()))
    assert "loss" in header and "adv_robust_accuracy" not in header


def test_tensorboard_event_files_hold_the_keys(tmp_path, digits_flat):
    pytest.importorskip("tensorflow")
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    )
    x, y, x_probe, y_probe = digits_flat
    monitor = AdversarialMonitor((x_probe, y_probe), epsilon=0.1)
    board = keras.callbacks.TensorBoard(tmp_path / "logs")
    model_for().fit(x, y, epochs=2, verbose=0, callbacks=[monitor, board])
    reader = event_accumulator.EventAccumulator(
        str(tmp_path / "logs" / "train"), size_guidance={"tensors": 0, "scalars": 0}
    )
    reader.Reload()
    tags = set(reader.Tags()["tensors"]) | set(reader.Tags()["scalars"])
    assert "epoch_adv_robust_accuracy" in tags
    assert "epoch_adv_perturbation_l2" in tags


def test_early_stopping_and_checkpoint_act_on_the_keys(tmp_path, digits_flat):
    x, y, x_probe, y_probe = digits_flat
    monitor = AdversarialMonitor((x_probe, y_probe), epsilon=0.1)
    stopper = keras.callbacks.EarlyStopping(
        monitor="adv_robust_accuracy", mode="max", patience=1
    )
    path = tmp_path / "best.keras"
    checkpoint = keras.callbacks.ModelCheckpoint(
        path, monitor="adv_flip_rate", mode="min", save_best_only=True
    )
    # A learning rate of zero freezes the model: no improvement after epoch 1.
    history = model_for(lr=0.0).fit(
        x, y, epochs=10, verbose=0, callbacks=[monitor, stopper, checkpoint]
    )
    assert len(history.history["loss"]) == 2
    assert path.exists()


def test_edge_cases(digits_flat):
    x, y, x_probe, y_probe = digits_flat
    # A probe set smaller than one batch, and logs=None.
    monitor = AdversarialMonitor((x_probe[:10], y_probe[:10]), epsilon=0.1)
    monitor.set_model(model_for(compiled=False))  # uncompiled: still attackable
    monitor.on_train_begin()
    monitor.on_epoch_end(0, logs=None)
    assert monitor.history["adv_perturbation_linf"][0] == pytest.approx(0.1, 1e-4)
    # steps_per_execution > 1 (which Keras's torch backend does not offer)
    if keras.backend.backend() != "torch":
        model = model_for()
        model.compile(keras.optimizers.Adam(1e-2), CE, steps_per_execution=4)
        monitor = AdversarialMonitor((x_probe, y_probe))
        history = model.fit(x, y, epochs=1, verbose=0, callbacks=[monitor])
        assert "adv_flip_rate" in history.history
    # NaN in the probe set: clear error at construction.
    bad = x_probe.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        AdversarialMonitor((bad, y_probe))


def test_several_outputs_are_a_clear_error(digits_flat):
    x, y, x_probe, y_probe = digits_flat
    inputs = keras.Input((64,))
    model = keras.Model(
        inputs, [keras.layers.Dense(10)(inputs), keras.layers.Dense(10)(inputs)]
    )
    monitor = AdversarialMonitor((x_probe, y_probe))
    monitor.set_model(model)
    with pytest.raises(ValueError, match="one output"):
        monitor.on_train_begin()


@pytest.mark.skipif(keras.backend.backend() == "torch", reason="eager: no tracing")
def test_monitor_is_compiled_once_not_per_epoch(digits_flat):
    x, y, x_probe, y_probe = digits_flat
    attack = FGSM(0.1)
    traces = count_traces(attack)
    monitor = AdversarialMonitor((x_probe, y_probe), attack=attack, batch_size=64)
    model_for().fit(x, y, epochs=4, verbose=0, callbacks=[monitor])
    assert 1 <= len(traces) <= 2  # 200 = 3 x 64 + 8: traced once, not per epoch


def test_robustness_curve_logs_and_tabulates(digits_flat):
    x, y, x_probe, y_probe = digits_flat
    curve = RobustnessCurve(
        (x_probe, y_probe),
        {"fgsm": FGSM(0.1), "pgd": PGD(0.1, steps=5, seed=0)},
        epsilons=[0.0, 0.05, 0.2],
    )
    monitor = AdversarialMonitor((x_probe, y_probe), epsilon=0.1, max_examples=512)
    history = (
        model_for().fit(x, y, epochs=2, verbose=0, callbacks=[curve, monitor]).history
    )
    assert len(curve.table) == 2 * 2 * 3
    for name in ("fgsm", "pgd"):
        assert history[f"adv_accuracy@{name}_0"] == history["adv_clean_accuracy"]
        assert (
            history[f"adv_accuracy@{name}_0.2"][-1]
            < history[f"adv_accuracy@{name}_0.05"][-1]
        )
    with pytest.raises(ValueError, match="epsilons"):
        RobustnessCurve((x_probe, y_probe), [FGSM(0.1)], epsilons=[-0.1])


class _Scramble(keras.callbacks.Callback):
    """Plants a collapse: replaces the weights with noise at one epoch's end."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            rng = np.random.default_rng(0)
            self.model.set_weights(
                [
                    rng.normal(size=w.shape).astype("float32")
                    for w in self.model.get_weights()
                ]
            )


def test_guard_fires_on_a_collapse_stops_and_restores(digits_flat):
    x, y, x_probe, y_probe = digits_flat
    model = model_for()
    model.fit(x, y, epochs=10, verbose=0)  # a model worth guarding
    model.compile(keras.optimizers.Adam(0.0), CE)  # then frozen
    guard = CatastrophicOverfittingGuard(
        (x_probe, y_probe), epsilon=0.02, stop_training=True, seed=0
    )
    before = model.get_weights()
    with pytest.warns(UserWarning, match="Catastrophic overfitting at epoch 3"):
        history = model.fit(
            x, y, epochs=6, verbose=0, callbacks=[_Scramble(2), guard]
        ).history
    assert history["adv_catastrophic_overfitting"] == [0.0, 0.0, 1.0]
    assert guard.fired_epochs == [2]
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b)  # the best (pre-collapse) weights


def test_guard_stays_quiet_on_healthy_training(digits_flat, recwarn):
    x, y, x_probe, y_probe = digits_flat
    guard = CatastrophicOverfittingGuard((x_probe, y_probe), epsilon=0.02, seed=0)
    history = model_for().fit(x, y, epochs=3, verbose=0, callbacks=[guard]).history
    assert history["adv_catastrophic_overfitting"] == [0.0, 0.0, 0.0]
    assert not [w for w in recwarn if "Catastrophic" in str(w.message)]
