import numpy as np
import pytest
from keras import ops

from keras_adv import losses

LOGITS = np.array([[3.0, 1.0, 0.5, -1.0], [0.2, 2.0, 1.5, 0.0]], "float32")
LABELS = np.array([0, 2])


def _numpy(fn, *args):
    return ops.convert_to_numpy(fn(*(ops.convert_to_tensor(a) for a in args)))


def test_dlr_matches_its_definition():
    z = LOGITS
    # Example 0: right (z_y=3, best other 1), sorted 3 >= 1 >= 0.5.
    # Example 1: wrong (z_y=1.5, best other 2), sorted 2 >= 1.5 >= 0.2.
    expected = [-(3.0 - 1.0) / (3.0 - 0.5), -(1.5 - 2.0) / (2.0 - 0.2)]
    got = _numpy(lambda y, p: losses.dlr(y, p, from_logits=True), LABELS, z)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_dlr_ignores_shifts_and_scales_of_the_logits():
    base = _numpy(lambda y, p: losses.dlr(y, p, True), LABELS, LOGITS)
    moved = _numpy(lambda y, p: losses.dlr(y, p, True), LABELS, 7.0 * LOGITS - 3.0)
    np.testing.assert_allclose(moved, base, rtol=1e-4)


def test_dlr_and_margin_agree_on_logits_and_probabilities():
    probs = np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True)
    for fn in (losses.dlr, losses.margin):
        from_logits = _numpy(lambda y, p, fn=fn: fn(y, p), LABELS, LOGITS)
        from_probs = _numpy(lambda y, p, fn=fn: fn(y, p), LABELS, probs)
        np.testing.assert_allclose(from_probs, from_logits, rtol=1e-4)


def test_margin_is_negative_exactly_when_misclassified():
    got = _numpy(lambda y, p: losses.margin(y, p, True), LABELS, LOGITS)
    np.testing.assert_allclose(got, [2.0, -0.5], rtol=1e-5)


def test_targeted_dlr_matches_its_definition():
    targets = np.array([1, 0])
    # sorted: ex0 3, 1, .5, -1 ; ex1 2, 1.5, .2, 0
    expected = [
        -(3.0 - 1.0) / (3.0 - 0.5 * (0.5 - 1.0)),
        -(1.5 - 0.2) / (2.0 - 0.5 * (0.2 + 0.0)),
    ]
    got = _numpy(
        lambda y, t, p: losses.targeted_dlr(y, t, p, True), LABELS, targets, LOGITS
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_dlr_needs_three_classes():
    with pytest.raises(ValueError, match="at least 3 classes"):
        losses.dlr(ops.convert_to_tensor([0]), ops.convert_to_tensor([[1.0, 2.0]]))


def _log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


@pytest.mark.parametrize(
    "labels",
    [LABELS, LABELS.reshape(-1, 1), LABELS.astype("float32")],
    ids=["ids", "ids-column", "float-ids"],
)
@pytest.mark.parametrize("from_logits", [True, None])
def test_crossentropy_of_class_ids_is_minus_the_true_class_log_probability(
    labels, from_logits, monkeypatch
):
    # from_logits=True takes the backend's fused op (fewer eager ops per
    # attack step), None the generic path.
    fused, calls = losses.ops.sparse_categorical_crossentropy, []
    monkeypatch.setattr(
        losses.ops,
        "sparse_categorical_crossentropy",
        lambda *args, **kwargs: calls.append(1) or fused(*args, **kwargs),
    )
    expected = -_log_softmax(LOGITS)[np.arange(2), LABELS]
    np.testing.assert_allclose(
        _numpy(lambda y, z: losses.crossentropy(y, z, from_logits), labels, LOGITS),
        expected,
        rtol=1e-5,
    )
    assert len(calls) == (1 if from_logits else 0)


def test_crossentropy_of_one_hot_and_probability_targets():
    one_hot = np.eye(4, dtype="float32")[LABELS]
    expected = -_log_softmax(LOGITS)[np.arange(2), LABELS]
    np.testing.assert_allclose(
        _numpy(lambda y, z: losses.crossentropy(y, z, True), one_hot, LOGITS),
        expected,
        rtol=1e-5,
    )
    probabilities = np.exp(_log_softmax(LOGITS))
    np.testing.assert_allclose(
        _numpy(lambda y, z: losses.crossentropy(y, z, False), LABELS, probabilities),
        expected,
        rtol=1e-5,
    )
