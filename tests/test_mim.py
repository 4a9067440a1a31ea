import numpy as np
import pytest

from keras_adv import PGD
from keras_adv.attacks import MIM
from tests.conftest import per_example_loss


def test_without_momentum_it_is_the_basic_iterative_method(
    trained_logits_model, digits
):
    """With `decay=0`, sign(g / ||g||_1) = sign(g): MIM is PGD without a start."""
    _, (x, y) = digits
    model = trained_logits_model
    mim = MIM(0.1, steps=5, decay=0.0).generate(model, x[:64], y[:64])
    bim = PGD(0.1, steps=5, step_size=0.02, random_start=False)
    np.testing.assert_allclose(mim, bim.generate(model, x[:64], y[:64]), atol=1e-6)


def test_momentum_changes_the_path_and_raises_the_loss(trained_logits_model, digits):
    _, (x, y) = digits
    model = trained_logits_model
    x_adv = MIM(0.1, steps=10, seed=0).generate(model, x, y)
    no_momentum = MIM(0.1, steps=10, decay=0.0).generate(model, x, y)
    assert not np.allclose(x_adv, no_momentum)
    assert np.abs(x_adv - x).max() <= 0.1 + 1e-6
    assert (
        per_example_loss(model, x_adv, y).mean()
        > 3 * per_example_loss(model, x, y).mean()
    )


def test_default_step_spans_the_ball(trained_logits_model, digits):
    """`steps` steps of `epsilon / steps` reach the ball's surface, no further."""
    _, (x, y) = digits
    x_adv = MIM(0.1, steps=4).generate(trained_logits_model, x[:32], y[:32])
    assert np.abs(x_adv - x[:32]).max() == pytest.approx(0.1, abs=1e-6)


def test_bad_decay_is_rejected():
    with pytest.raises(ValueError, match=r"decay.*Received: decay=-1"):
        MIM(0.1, decay=-1.0)
