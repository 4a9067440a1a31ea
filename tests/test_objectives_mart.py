"""MART (Wang et al. 2020): the objective against its formula computed by hand."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_adv.attacks import PGD
from keras_adv.training import AdversarialModel
from keras_adv.training import objectives
from tests.conftest import mlp
from tests.conftest import softmax


def mart_by_hand(logits, logits_adv, y, beta, weight):
    p, q = softmax(logits), softmax(logits_adv)
    rows = np.arange(len(y))
    other = q.copy()
    other[rows, y] = 0.0
    boosted = -np.log(q[rows, y]) - np.log(1.0001 - other.max(axis=1) + 1e-12)
    kl = (p * (np.log(p) - np.log(q))).sum(axis=1)
    per_example = boosted + beta * kl * (1.0000001 - p[rows, y])
    return (per_example * weight).sum() / len(y)


@pytest.mark.parametrize("from_logits", [True, None])
def test_mart_is_its_formula(from_logits):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 4)).astype("float32")
    logits_adv = (logits + rng.normal(size=(6, 4))).astype("float32")
    y = rng.integers(0, 4, 6).astype("int32")
    weight = rng.uniform(0.5, 2.0, 6).astype("float32")
    mart = objectives.get("mart")
    mart.from_logits = from_logits
    value = mart.combine(
        None,
        None,
        ops.convert_to_tensor(logits),
        ops.convert_to_tensor(logits_adv),
        y=ops.convert_to_tensor(y),
        sample_weight=ops.convert_to_tensor(weight),
    )
    expected = mart_by_hand(logits, logits_adv, y, 6.0, weight)
    np.testing.assert_allclose(ops.convert_to_numpy(value), expected, rtol=1e-5)


def test_mart_takes_probabilities_too():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(5, 3)).astype("float32")
    logits_adv = (logits + rng.normal(size=(5, 3))).astype("float32")
    y = rng.integers(0, 3, 5).astype("int32")
    value = objectives.MART(beta=2.0, from_logits=False).combine(
        None, None, softmax(logits), softmax(logits_adv), y=y
    )
    expected = mart_by_hand(logits, logits_adv, y, 2.0, np.ones(5))
    np.testing.assert_allclose(ops.convert_to_numpy(value), expected, rtol=1e-5)


def test_mart_trains_and_round_trips_its_config(digits, tmp_path):
    (x, y), _ = digits
    model = AdversarialModel(
        model=mlp(), attack=PGD(0.1, steps=3, seed=0), objective="mart"
    )
    model.compile(
        keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(True)
    )
    history = model.fit(x[:512], y[:512], epochs=3, batch_size=64, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    assert history["adv_loss"][-1] < history["adv_loss"][0]
    path = str(tmp_path / "mart.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.objective, objectives.MART)
    assert loaded.objective.beta == 6.0


def test_mart_refuses_a_non_positive_beta():
    with pytest.raises(ValueError, match="beta"):
        objectives.MART(beta=0.0)
