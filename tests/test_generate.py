"""`Attack.generate`: batching, dataset inputs, one compilation per model."""

import keras
import numpy as np
import pytest

from keras_adv import FGSM
from keras_adv import PGD
from tests.conftest import count_traces
from tests.conftest import forward_of


def test_generate_matches_one_direct_call_across_batch_boundaries(
    trained_logits_model, digits
):
    _, (x, y) = digits  # 450 examples: batches of 128 leave a partial one
    model = trained_logits_model
    batched = FGSM(0.1).generate(model, x, y, batch_size=128)
    direct = np.asarray(FGSM(0.1)(forward_of(model), x, y))
    assert batched.shape == x.shape and batched.dtype == x.dtype
    # Compiled and eager gradients may differ in the last bit; where a
    # gradient is nearly zero its sign can flip, so allow a few such pixels.
    assert np.mean(np.isclose(batched, direct, atol=1e-6)) > 0.999


def test_generate_accepts_a_dataset_of_batches(trained_logits_model, digits):
    tf = pytest.importorskip("tensorflow")
    _, (x, y) = digits
    model = trained_logits_model
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(100)
    from_dataset = FGSM(0.1).generate(model, dataset)
    from_arrays = FGSM(0.1).generate(model, x, y, batch_size=100)
    np.testing.assert_array_equal(from_dataset, from_arrays)
    with pytest.raises(ValueError, match=r"`y` must be None"):
        FGSM(0.1).generate(model, dataset, y)


def test_generate_accepts_a_list_of_batches(trained_logits_model, digits):
    _, (x, y) = digits
    batches = [(x[:200], y[:200]), (x[200:], y[200:])]
    got = FGSM(0.1).generate(trained_logits_model, batches)
    np.testing.assert_array_equal(got, FGSM(0.1).generate(trained_logits_model, x, y))
    with pytest.raises(ValueError, match=r"\(x, y\) batches"):
        FGSM(0.1).generate(trained_logits_model, [x[:10]])


@pytest.mark.skipif(
    keras.backend.backend() == "torch", reason="torch runs eagerly: nothing to trace"
)
def test_generate_traces_once_per_model(trained_logits_model, digits):
    _, (x, y) = digits
    attack = PGD(0.1, steps=3, seed=0)
    traces = count_traces(attack)
    attack.generate(trained_logits_model, x, y, batch_size=64)  # 8 batches, 1 partial
    attack.generate(trained_logits_model, x[:100], y[:100], batch_size=64)
    assert len(traces) == 1


def test_an_epsilon_per_call_sets_the_budget_without_recompiling(
    trained_logits_model, digits
):
    _, (x, y) = digits
    attack = FGSM(0.1)
    traces = count_traces(attack)
    for eps in (0.05, 0.2):
        x_adv = attack.generate(trained_logits_model, x, y, epsilon=eps)
        # FGSM moves every pixel by eps unless the valid range stops it.
        assert np.abs(x_adv - x).max() == pytest.approx(eps, abs=1e-6)
    if keras.backend.backend() != "torch":  # torch runs eagerly: no traces
        assert len(traces) == 1
    with pytest.raises(ValueError, match="epsilon"):
        attack.generate(trained_logits_model, x, y, epsilon=-1.0)


def test_generated_examples_fool_the_model(trained_logits_model, digits):
    _, (x, y) = digits
    model = trained_logits_model
    clean = np.mean(np.argmax(model.predict(x, verbose=0), 1) == y)
    x_adv = PGD(0.2, steps=10, seed=0).generate(model, x, y)
    robust = np.mean(np.argmax(model.predict(x_adv, verbose=0), 1) == y)
    assert clean > 0.9 and robust < 0.2


@pytest.mark.skipif(
    keras.backend.backend() == "torch", reason="torch runs eagerly: nothing to trace"
)
def test_tracing_does_not_grow_with_steps(trained_logits_model, digits, monkeypatch):
    """PGD's steps run in a fori_loop: the gradient is traced once, not per step."""
    from keras_adv.attacks import pgd

    _, (x, y) = digits
    traced = []
    original = pgd.backend.value_and_input_grad

    def counting(loss_fn, inputs):
        traced.append(1)
        return original(loss_fn, inputs)

    monkeypatch.setattr(pgd.backend, "value_and_input_grad", counting)
    PGD(0.1, steps=25, seed=0).generate(trained_logits_model, x[:64], y[:64])
    assert 1 <= len(traced) <= 2  # a backend may trace a loop body twice


def test_calling_the_attack_inside_a_compiled_function(trained_logits_model, digits):
    """The path a training step takes: `attack(forward, x, y)` while traced."""
    from keras_adv import backend

    _, (x, y) = digits
    model = trained_logits_model
    attack = FGSM(0.1)
    compiled = backend.compile_fn(
        lambda xb, yb: attack(forward_of(model), xb, yb), model.variables
    )
    inside = keras.ops.convert_to_numpy(compiled(x[:64], y[:64]))
    outside = attack.generate(model, x[:64], y[:64])
    assert np.mean(np.isclose(inside, outside, atol=1e-6)) > 0.999


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TF's warning")
def test_many_attacks_raise_no_retracing_warning(trained_logits_model, digits, caplog):
    """One compiled function per attack and model is by design, not retracing."""
    _, (x, y) = digits
    for eps in (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07):
        FGSM(eps).generate(trained_logits_model, x[:32], y[:32])
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
