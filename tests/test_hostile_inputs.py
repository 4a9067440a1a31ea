"""Hostile input, by class: each class of mistake is refused in one clear line,
or handled right; nothing a user made is lost; nothing is silently wrong.

Each test covers one class with several members (issue 13). The CLI, config
and result-file classes live in `test_cli_hostile.py`.
"""

import keras
import numpy as np
import pytest

from keras_adv import FGSM
from keras_adv import PGD
from keras_adv import AdversarialModel
from keras_adv import argument_validation as validation
from keras_adv import evaluate_robustness
from keras_adv.callbacks import AdversarialMonitor
from keras_adv.experiments import data
from keras_adv.training import data_check


def dense(classes=3, features=4, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((features,)), keras.layers.Dense(classes)])


def xy(n=32, features=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, features)).astype("float32")
    return x, (np.arange(n) % classes).astype("int32")


# Values the API accepted but should not, or refused but should not.


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: FGSM(0.1, targeted="no"), "targeted"),
        (lambda: PGD(0.1, random_start="yes"), "random_start"),
        (lambda: FGSM(0.1, clip="01"), "clip"),
        (lambda: FGSM(0.1, clip=("0", "1")), "clip"),
        (lambda: FGSM(float("nan")), "epsilon"),
        (lambda: FGSM(-0.1), "epsilon"),
        (lambda: FGSM(True), "epsilon"),
        (lambda: PGD(0.1, steps=np.float32(2.5)), "steps"),
        (
            lambda: AdversarialModel(model=dense(), attack=FGSM(0.1), log_clean="no"),
            "log_clean",
        ),
        (
            lambda: AdversarialModel(
                model=dense(), attack=FGSM(0.1), evaluate_adversarial="false"
            ),
            "evaluate_adversarial",
        ),
    ],
)
def test_wrong_types_are_refused_naming_the_argument(make, match):
    with pytest.raises(ValueError, match=f"`{match}`.*Received"):
        make()


def test_numpy_numbers_are_accepted_as_numbers():
    assert FGSM(np.float32(0.25)).epsilon == 0.25
    assert FGSM(np.float64(0.5)).epsilon == 0.5
    assert PGD(np.int64(1), steps=np.int32(3)).steps == 3
    assert FGSM(0.1, clip=(np.float32(-1), np.int64(1))).clip == (-1.0, 1.0)
    assert FGSM(0.1, targeted=np.bool_(True)).targeted is True


@pytest.mark.parametrize("dtype", ["float64", "float16"])
def test_any_float_precision_is_attacked_and_returned_in_it(dtype):
    model = dense()
    x, y = xy()
    for attack in (FGSM(0.1), PGD(0.1, steps=2, seed=0)):
        x_adv = attack.generate(model, x.astype(dtype), y)
        assert x_adv.dtype == dtype
        assert np.abs(x_adv.astype("float32") - x).max() <= 0.1 + 2e-3
        tensor = keras.ops.convert_to_tensor(x.astype(dtype))  # JAX: no float64
        tensor_adv = attack(lambda v: model(v), tensor, y)
        assert tensor_adv.dtype == tensor.dtype


def test_one_attack_serves_label_columns_and_vectors_in_turn():
    model = dense()
    x, y = xy()
    attack = PGD(0.1, steps=2, random_start=False)
    first = attack.generate(model, x, y)
    np.testing.assert_allclose(attack.generate(model, x, y[:, None]), first)
    np.testing.assert_allclose(attack.generate(model, x, y), first)


def test_one_hot_labels_of_the_wrong_width_are_refused_up_front():
    model = dense(classes=3)
    x, y = xy()
    for width in (2, 5):
        with pytest.raises(ValueError, match=r"one-hot rows as wide as.*3 outputs"):
            FGSM(0.1).generate(model, x, np.eye(width)[y % width])
    np.testing.assert_allclose(  # the right width works and equals class ids
        FGSM(0.1).generate(model, x, np.eye(3)[y]), FGSM(0.1).generate(model, x, y)
    )


# Inputs outside the attack's valid range: refused on every path, checked once
# per fit or dataset (the steps never see values).

RANGE = "outside the valid input range clip=\\(0.0, 1.0\\)"


def compiled(model):
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def adversarial():
    return compiled(AdversarialModel(model=dense(), attack=FGSM(0.1)))


def batches(x, y, size=8):
    for start in range(0, len(x), size):
        yield x[start : start + size], y[start : start + size]


class Batches(keras.utils.PyDataset):
    def __init__(self, x, y):
        super().__init__()
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x) // 8

    def __getitem__(self, i):
        return self.x[8 * i : 8 * i + 8], self.y[8 * i : 8 * i + 8]


@pytest.mark.parametrize(
    "path",
    [
        "fit arrays",
        "fit generator",
        "fit PyDataset",
        "fit validation_data",
        "evaluate arrays",
        "evaluate generator",
        "monitor",
        "evaluate_robustness at epsilon 0",
    ],
)
def test_inputs_on_the_wrong_scale_are_refused_on_every_path(path):
    x, y = xy()
    pixels = x * 255
    with pytest.raises(ValueError, match=RANGE):
        if path == "fit arrays":
            adversarial().fit(pixels, y, epochs=1, verbose=0)
        elif path == "fit generator":
            adversarial().fit(batches(pixels, y), epochs=1, verbose=0)
        elif path == "fit PyDataset":
            adversarial().fit(Batches(pixels, y), epochs=1, verbose=0)
        elif path == "fit validation_data":
            adversarial().fit(x, y, validation_data=(pixels, y), verbose=0)
        elif path == "evaluate arrays":
            adversarial().evaluate(pixels, y, verbose=0)
        elif path == "evaluate generator":
            adversarial().evaluate(batches(pixels, y), verbose=0)
        elif path == "monitor":
            compiled(dense()).fit(
                x, y, verbose=0, callbacks=[AdversarialMonitor((pixels, y))]
            )
        else:
            evaluate_robustness(
                dense(), (pixels, y), epsilons=[0.0], attacks=[FGSM(0.1)], checks=False
            )


def test_a_tf_data_pipeline_is_checked_by_its_first_batch():
    tf = pytest.importorskip("tensorflow")
    x, y = xy()
    dataset = tf.data.Dataset.from_tensor_slices((x * 255, y)).batch(8)
    with pytest.raises(ValueError, match=RANGE):
        adversarial().fit(dataset, epochs=1, verbose=0)
    good = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    assert len(adversarial().fit(good, epochs=2, verbose=0).history["loss"]) == 2


def test_a_checked_generator_still_yields_every_batch():
    x, y = xy(n=32)
    trained = []

    class CountSteps(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            trained.append(batch)

    # exactly four batches: one lost to the check would leave three steps
    adversarial().fit(batches(x, y), epochs=1, verbose=0, callbacks=[CountSteps()])
    assert trained == [0, 1, 2, 3]


def test_labels_the_model_cannot_output_are_refused_before_training():
    x, y = xy(classes=3)
    for labels, match in ((y - 1, r"labels in \[0, 2\]"), (y + 3, r"\[0, 2\]")):
        with pytest.raises(ValueError, match=match):
            adversarial().fit(x, labels, epochs=1, verbose=0)


def test_unperturbed_integer_inputs_are_not_range_checked():
    from conftest import dict_input_model

    model, _, x, y = dict_input_model(FGSM(0.1))
    compiled(model).fit(x, y, epochs=1, verbose=0)  # ids 0..9 are not perturbed
    x["image"] = x["image"] * 255
    with pytest.raises(ValueError, match=RANGE):
        model.fit(x, y, epochs=1, verbose=0)


def test_the_range_check_runs_once_per_fit_not_per_step(monkeypatch):
    calls = []
    check = validation.check_value_range
    monkeypatch.setattr(
        validation,
        "check_value_range",
        lambda *a, **k: calls.append(1) or check(*a, **k),
    )
    x, y = xy(n=64)
    adversarial().fit(x, y, batch_size=8, epochs=3, validation_data=(x, y), verbose=0)
    assert len(calls) == 2  # the training and the validation inputs, once each
    assert data_check.peek(None) == (None, None)


# Data files: the scale follows the dtype, never a guess per split; labels,
# splits and shapes are checked once, up front.


def save_npz(path, **overrides):
    rng = np.random.default_rng(0)
    arrays = dict(
        x_train=rng.integers(0, 256, (20, 6, 6)).astype("uint8"),
        y_train=np.arange(20) % 4,
        x_test=rng.integers(0, 256, (8, 6, 6)).astype("uint8"),
        y_test=np.arange(8) % 4,
    )
    arrays.update(overrides)
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize(
    "overrides, match",
    [
        # standardised data, [0, 2] data, floats in [0, 255] beside [0, 1]
        ({"x_train": np.linspace(-2, 2, 720).reshape(20, 6, 6)}, r"x_train.*-2, 2"),
        ({"x_test": np.linspace(0, 2, 288).reshape(8, 6, 6)}, r"x_test.*\[0, 2\]"),
        ({"x_train": np.full((20, 6, 6), 200.0)}, r"x_train.*200.*\[0, 1\]"),
        ({"x_train": np.full((20, 6, 6), 300, "int32")}, r"integers in \[300, 300\]"),
        ({"y_train": np.arange(20) % 4 - 1}, r"y_train.*negative"),
        ({"y_train": (np.arange(20) % 4) + 0.5}, r"y_train.*fractional"),
        ({"y_test": np.full(8, 7)}, r"label 7.*stop at 3"),
        ({"x_test": np.zeros((0, 6, 6), "uint8"), "y_test": np.zeros(0)}, "empty"),
        ({"y_train": np.arange(19) % 4}, r"y_train.*shape \(20,\)"),
        ({"x_test": np.zeros((8, 5, 5), "uint8")}, "different example shapes"),
        ({"x_train": np.full((20, 6, 6), np.nan)}, "NaN"),
    ],
)
def test_data_files_that_do_not_fit_are_refused_naming_the_array(
    tmp_path, overrides, match
):
    path = save_npz(tmp_path / "data.npz", **overrides)
    with pytest.raises(ValueError, match=match) as error:
        data.load(path)
    assert "data.npz" in str(error.value)


def test_data_scale_follows_the_dtype(tmp_path):
    pixels = np.full((20, 6, 6), 51, "uint8")
    (x_train, _), (x_test, _) = data.load(
        save_npz(tmp_path / "a.npz", x_train=pixels, x_test=pixels[:8] / 255.0)
    )
    np.testing.assert_allclose(x_train, 0.2, rtol=1e-6)  # uint8: divided by 255
    np.testing.assert_allclose(x_test, 0.2, rtol=1e-6)  # floats in [0, 1]: as is
    # a float split whose maximum happens to be 1 or less is not rescaled
    dark = np.full((20, 6, 6), 0.004, "float32")
    (x_train, _), _ = data.load(save_npz(tmp_path / "b.npz", x_train=dark))
    np.testing.assert_allclose(x_train, 0.004, rtol=1e-6)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"not a zip at all", "not an .npz archive"),
        (b"\x93NUMPY pickled-looking", "not an .npz archive"),
    ],
)
def test_a_file_that_is_not_an_npz_is_named_and_never_unpickled(
    tmp_path, content, match
):
    path = tmp_path / "broken.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as error:
        data.load(str(path))
    assert "pickle" not in str(error.value) and "broken.npz" in str(error.value)


def test_object_arrays_in_an_npz_are_refused_without_unpickling(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(
        path,
        x_train=np.array([object()] * 3),
        y_train=np.zeros(3),
        x_test=np.zeros((3, 2)),
        y_test=np.zeros(3),
    )
    with pytest.raises(ValueError, match="cannot be read as numeric arrays"):
        data.load(str(path))


def test_a_fingerprint_changes_with_the_content_only(tmp_path):
    first = data.load(save_npz(tmp_path / "a.npz"))
    same = data.load(save_npz(tmp_path / "b.npz"))
    other = data.load(save_npz(tmp_path / "a.npz", y_test=np.arange(8)[::-1] % 4))
    assert data.fingerprint(first) == data.fingerprint(same)
    assert data.fingerprint(first) != data.fingerprint(other)
    assert len(data.fingerprint(first)) == 64


# Loading: a saved model that needs an unregistered object says which, and how.


def unregistered_loss(y_true, y_pred):
    return keras.losses.sparse_categorical_crossentropy(y_true, y_pred, True)


class UnregisteredPGD(PGD):
    pass


@pytest.mark.parametrize(
    "attack, name",
    [
        (PGD(0.1, steps=2, loss=unregistered_loss), "unregistered_loss"),
        (UnregisteredPGD(0.1, steps=2), "UnregisteredPGD"),
    ],
)
def test_a_model_needing_an_unregistered_object_names_it(tmp_path, attack, name):
    model = compiled(AdversarialModel(model=dense(), attack=attack))
    model.fit(*xy(n=8), verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    with pytest.raises(ValueError, match=f"'{name}'.*register_keras_serializable"):
        keras.saving.load_model(path)
    custom = {name: unregistered_loss if "loss" in name else UnregisteredPGD}
    loaded = keras.saving.load_model(path, custom_objects=custom)
    assert type(loaded.attack).__name__ == type(attack).__name__
