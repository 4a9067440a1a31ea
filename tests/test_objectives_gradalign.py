"""GradAlign (Andriushchenko & Flammarion 2020) against a hand computation."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_adv import FGSM
from keras_adv import AdversarialModel
from keras_adv.training import objectives
from tests.conftest import linear_grads
from tests.conftest import linear_model

CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def linear(seed=0):
    return linear_model(5, 3, scale=1.5, bias=[0.5, -0.5, 0.0], seed=seed)


def data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 5))
    eta = rng.uniform(-2.0, 2.0, (n, 5))
    return x, rng.integers(0, 3, n), eta


def input_grad(w, b, x, y):
    return linear_grads(w, b, x, y)[2]


def alignment_by_hand(w, b, x, y, eta, lam, fixed=None):
    """`lam * (1 - mean cos)`; `fixed`: the weights of the held gradient at x."""
    w0, b0 = (w, b) if fixed is None else fixed
    first, second = input_grad(w0, b0, x, y), input_grad(w, b, x + eta, y)
    cos = (first * second).sum(1) / (
        np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1)
    )
    return lam * (1.0 - cos.mean())


def test_the_alignment_term_is_its_formula():
    model = linear()
    w, b = model.get_weights()
    x, y, eta = data()
    value = objectives.GradAlign(lam=0.7).alignment(
        model,
        ops.convert_to_tensor(x.astype("float32")),
        ops.convert_to_tensor(y),
        ops.convert_to_tensor(eta.astype("float32")),
    )
    expected = alignment_by_hand(w, b, x, y, eta, 0.7)
    assert expected > 0.05  # the two gradients really differ
    np.testing.assert_allclose(ops.convert_to_numpy(value), expected, rtol=1e-4)


class _AlignmentOnly(objectives.GradAlign):
    """GradAlign's term alone, at a fixed `eta`: the training loss is the term."""

    def __init__(self, eta, lam):
        super().__init__(lam=lam)
        self.eta = eta

    def combine(self, clean, adversarial, y_pred, y_pred_adv):
        return 0.0 * adversarial

    def penalty(self, forward, x, y, epsilon, norm, seed):
        return self.alignment(forward, x, y, ops.convert_to_tensor(self.eta))


def test_training_follows_the_gradient_through_the_second_input_gradient():
    """One SGD step on the term equals the step along its gradient computed by
    finite differences (the gradient at x held fixed, as in the paper); it
    would be zero if the input gradient at x + eta were not differentiated."""
    model = linear()
    w, b = (v.astype("float64") for v in model.get_weights())
    x, y, eta = data()
    lam, lr = 0.7, 0.5
    adv = AdversarialModel(
        model=model,
        attack=FGSM(0.1),
        objective=_AlignmentOnly(eta.astype("float32"), lam),
    )
    adv.compile(keras.optimizers.SGD(lr), CE)
    adv.fit(
        x.astype("float32"), y, batch_size=len(y), epochs=1, shuffle=False, verbose=0
    )

    def term(w_, b_):
        return alignment_by_hand(w_, b_, x, y, eta, lam, fixed=(w, b))

    step = 1e-6
    grad_w = np.zeros_like(w)
    for index in np.ndindex(w.shape):
        delta = np.zeros_like(w)
        delta[index] = step
        grad_w[index] = (term(w + delta, b) - term(w - delta, b)) / (2 * step)
    grad_b = np.zeros_like(b)
    for index in np.ndindex(b.shape):
        delta = np.zeros_like(b)
        delta[index] = step
        grad_b[index] = (term(w, b + delta) - term(w, b - delta)) / (2 * step)
    assert np.abs(grad_w).max() > 1e-3
    new_w, new_b = model.get_weights()
    np.testing.assert_allclose(new_w, w - lr * grad_w, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(new_b, b - lr * grad_b, rtol=1e-3, atol=1e-6)


def test_gradalign_trains_and_round_trips(tmp_path):
    x, y, _ = data(64)
    model = AdversarialModel(model=linear(), attack=FGSM(0.1), objective="gradalign")
    model.compile(keras.optimizers.SGD(0.1), CE)
    history = model.fit(x.astype("float32"), y, epochs=2, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    # The loss is L(x_adv) plus the non-negative alignment term.
    assert all(
        total >= adv - 1e-6
        for total, adv in zip(history["loss"], history["adv_loss"], strict=True)
    )
    path = str(tmp_path / "gradalign.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.objective, objectives.GradAlign)
    assert loaded.objective.lam == 0.2


def test_what_gradalign_cannot_do_is_refused():
    with pytest.raises(ValueError, match="log_clean=False"):
        AdversarialModel(
            model=linear(), attack=FGSM(0.1), objective="gradalign", log_clean=False
        )
    with pytest.raises(ValueError, match="lam=-1.0"):
        objectives.GradAlign(lam=-1.0)
