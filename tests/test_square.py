import keras
import numpy as np
import pytest

from keras_adv import PGD
from keras_adv.attacks import Square
from keras_adv.attacks import square
from tests.conftest import masked


def _accuracy(model, x, y):
    return np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y)


def test_respects_the_ball_and_the_valid_range(trained_image_model, digits_images):
    x, y = digits_images
    x_adv = Square(0.1, queries=100, seed=0).generate(trained_image_model, x, y)
    assert np.abs(x_adv - x).max() <= 0.1 + 1e-6
    assert 0.0 <= x_adv.min() and x_adv.max() <= 1.0
    assert _accuracy(trained_image_model, x_adv, y) < _accuracy(
        trained_image_model, x, y
    )


def test_uses_no_gradients(trained_image_model, digits_images, monkeypatch):
    """Square never asks for a gradient, and breaks a model that masks them."""
    x, y = digits_images

    def no_gradients(*args, **kwargs):
        raise AssertionError("Square took a gradient")

    from keras_adv import backend

    monkeypatch.setattr(backend, "value_and_input_grad", no_gradients)
    model = masked(trained_image_model, (8, 8, 1))
    x_adv = Square(0.15, queries=300, seed=0).generate(model, x, y)
    monkeypatch.undo()
    pgd = PGD(0.15, steps=10, random_start=False).generate(model, x, y)
    np.testing.assert_array_equal(pgd, x)  # zero gradients: PGD cannot move
    assert _accuracy(model, x_adv, y) < _accuracy(model, x, y) - 0.3


def test_epsilon_zero_is_the_identity(trained_image_model, digits_images):
    x, y = digits_images
    x_adv = Square(0.0, queries=20, seed=0).generate(trained_image_model, x, y)
    np.testing.assert_array_equal(x_adv, x)


def test_window_side_shrinks_on_the_papers_schedule():
    attack = Square(0.1, queries=10000, p_init=0.8)
    sides = [float(attack._side(i, 32, 32)) for i in (0, 11, 60, 300, 9000)]
    # sqrt(p * 32 * 32) for p = 0.8, 0.4, 0.2, 0.1, 0.8 / 512, capped at 31.
    assert sides == [29.0, 20.0, 14.0, 10.0, 1.0]


def test_an_example_stops_once_misclassified(trained_image_model, digits_images):
    """More queries never un-break an example broken by the stripes."""
    x, y = digits_images
    model = trained_image_model
    # One batch, so both runs draw the same stripes first.
    start = Square(0.3, queries=1, seed=5).generate(model, x, y, batch_size=len(x))
    later = Square(0.3, queries=50, seed=5).generate(model, x, y, batch_size=len(x))
    broken = np.argmax(model.predict(start, verbose=0), axis=1) != y
    np.testing.assert_array_equal(later[broken], start[broken])


def test_needs_images():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    x = np.full((2, 4), 0.5, "float32")
    with pytest.raises(ValueError, match=r"image inputs \(batch, height, width"):
        Square(0.1, queries=2).generate(model, x, np.array([0, 1]))


def test_bad_hyperparameters_raise():
    with pytest.raises(ValueError, match="queries"):
        Square(0.1, queries=0)
    with pytest.raises(ValueError, match="p_init"):
        Square(0.1, p_init=1.5)
    assert "norm" not in Square(0.1).get_config()
    assert square.Square.from_config(Square(0.2, queries=9).get_config()).queries == 9
