import keras
import numpy as np
import pytest
from keras import ops

from keras_adv.metrics import FlipRate
from keras_adv.metrics import PerturbationNorm
from keras_adv.metrics import PredictionDrift
from keras_adv.metrics import RobustAccuracy


def value(metric):
    return float(ops.convert_to_numpy(metric.result()))


def test_perturbation_norm_mean_and_max_over_batches():
    x = np.zeros((3, 2, 2), "float32")
    delta = np.array([0.1, 0.2, 0.4], "float32")[:, None, None] * np.ones((3, 2, 2))
    linf, l2 = PerturbationNorm("linf"), PerturbationNorm("l2", "max")
    for metric in (linf, l2):
        metric.update_state(x[:2], (x + delta)[:2])
        metric.update_state(x[2:], (x + delta)[2:])
    assert value(linf) == pytest.approx((0.1 + 0.2 + 0.4) / 3)
    assert value(l2) == pytest.approx(0.4 * 2)  # sqrt(4 * 0.4^2)
    linf.reset_state()
    assert value(linf) == 0.0
    weighted, heaviest = PerturbationNorm("linf"), PerturbationNorm("linf", "max")
    for metric in (weighted, heaviest):
        metric.update_state(x, x + delta, sample_weight=np.array([1.0, 3.0, 0.0]))
    assert value(weighted) == pytest.approx((0.1 + 3 * 0.2) / 4)
    assert value(heaviest) == pytest.approx(0.2)  # the 0.4 example has weight 0
    assert l2.name == "perturbation_l2_max" and linf.name == "perturbation_linf"


def test_prediction_drift_on_logits_and_probabilities():
    clean = np.array([[0.9, 0.1], [0.5, 0.5]], "float32")
    perturbed = np.array([[0.1, 0.9], [0.5, 0.5]], "float32")
    l1 = PredictionDrift("l1")
    l1.update_state(clean, perturbed)
    assert value(l1) == pytest.approx((1.6 + 0.0) / 2, rel=1e-5)
    l2 = PredictionDrift("l2")
    l2.update_state(clean, perturbed)
    assert value(l2) == pytest.approx(np.sqrt(2 * 0.8**2) / 2, rel=1e-5)
    kl = PredictionDrift("kl")
    kl.update_state(clean, perturbed)
    want = 0.9 * np.log(0.9 / 0.1) + 0.1 * np.log(0.1 / 0.9)
    assert value(kl) == pytest.approx(want / 2, rel=1e-4)
    # The same outputs as logits give the drift of their softmax.
    logits = np.log(clean)
    from_logits = PredictionDrift("l1", from_logits=True)
    from_logits.update_state(logits, np.log(perturbed))
    assert value(from_logits) == pytest.approx(value(l1), rel=1e-5)


def test_flip_rate_and_robust_accuracy():
    clean = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0]], "float32")
    perturbed = np.array([[0.0, 2.0], [0.0, 2.0], [0.0, 2.0], [2.0, 0.0]], "float32")
    flips = FlipRate()
    flips.update_state(clean, perturbed)
    assert value(flips) == pytest.approx(0.75)
    labels = np.array([1, 1, 0, 0])
    accuracy = RobustAccuracy()
    accuracy.update_state(labels, perturbed)
    assert value(accuracy) == pytest.approx(0.75)
    one_hot = RobustAccuracy()
    one_hot.update_state(np.eye(2)[labels], perturbed)
    assert value(one_hot) == pytest.approx(0.75)


def test_binary_outputs_use_the_right_threshold():
    accuracy = RobustAccuracy()
    accuracy.update_state(np.array([1, 0]), np.array([[0.7], [0.2]], "float32"))
    assert value(accuracy) == 1.0  # probabilities: threshold 0.5
    logits = RobustAccuracy()
    logits.update_state(np.array([1, 0]), np.array([[0.3], [-2.0]], "float32"))
    assert value(logits) == 1.0  # logits: threshold 0


@pytest.mark.parametrize(
    "metric",
    [
        PerturbationNorm("l2", "max"),
        PredictionDrift("kl", from_logits=True),
        FlipRate(),
        RobustAccuracy(name="robust"),
    ],
    ids=lambda m: m.name,
)
def test_metrics_round_trip_through_config(metric):
    clone = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(metric)
    )
    assert type(clone) is type(metric) and clone.get_config() == metric.get_config()


def test_bad_arguments():
    with pytest.raises(ValueError, match="norm"):
        PerturbationNorm("l3")
    with pytest.raises(ValueError, match="reduction"):
        PerturbationNorm("l2", "median")
    with pytest.raises(ValueError, match="distance"):
        PredictionDrift("js")
