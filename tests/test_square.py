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


def _l2_norms(x_adv, x):
    return np.linalg.norm((x_adv - x).reshape(len(x), -1), axis=1)


def test_l2_respects_the_ball_and_the_valid_range(trained_image_model, digits_images):
    x, y = digits_images
    x_adv = Square(1.0, queries=200, seed=0, norm="l2").generate(
        trained_image_model, x, y
    )
    assert _l2_norms(x_adv, x).max() <= 1.0 + 1e-5
    assert 0.0 <= x_adv.min() and x_adv.max() <= 1.0
    clean = _accuracy(trained_image_model, x, y)
    assert _accuracy(trained_image_model, x_adv, y) < clean - 0.2
    # more queries search further: never fewer examples broken (same seed,
    # one batch, so both runs draw the same start and the same first queries)
    short = Square(0.6, queries=20, seed=3, norm="l2")
    long = Square(0.6, queries=300, seed=3, norm="l2")
    model = trained_image_model
    broken_short = (
        np.argmax(
            model.predict(short.generate(model, x, y, batch_size=len(x)), verbose=0), 1
        )
        != y
    )
    broken_long = (
        np.argmax(
            model.predict(long.generate(model, x, y, batch_size=len(x)), verbose=0), 1
        )
        != y
    )
    assert np.all(broken_long[broken_short])
    assert broken_long.sum() > broken_short.sum()


def _reference_pattern(side):
    """The L2 window of Andriushchenko et al.'s code, built by its loops."""

    def rectangles(rows, cols):
        delta = np.zeros((rows, cols))
        centre = [rows // 2, cols // 2]
        for ring in range(max(rows // 2 + 1, cols // 2 + 1)):
            delta[max(centre[0], 0) : min(centre[0] + 2 * ring + 1, rows),
                  max(centre[1], 0) : min(centre[1] + 2 * ring + 1, cols)] += (
                1.0 / (ring + 1) ** 2
            )  # fmt: skip
            centre[0] -= 1
            centre[1] -= 1
        norm = np.sqrt((delta**2).sum())
        return delta / norm if norm else delta

    delta = np.zeros((side, side))
    delta[: side // 2] = rectangles(side // 2, side)
    delta[side // 2 :] = -rectangles(side - side // 2, side)
    return delta / np.sqrt((delta**2).sum())


@pytest.mark.parametrize("side", [1, 2, 3, 4, 5, 7, 8, 11])
def test_the_l2_window_pattern_is_the_papers(side):
    local = np.arange(12, dtype="float32")
    pattern = keras.ops.convert_to_numpy(
        square._pattern(local[:, None], local[None, :], float(side), 12)
    )
    np.testing.assert_allclose(
        pattern[:side, :side], _reference_pattern(side), atol=1e-6
    )
    assert not pattern[side:].any() and not pattern[:, side:].any()


def test_l2_window_side_is_odd_at_least_three_and_shrinks():
    attack = Square(0.1, queries=10000, p_init=0.8, norm="l2")
    sides = [float(attack._l2_side(i, 28, 28)) for i in (0, 11, 60, 300, 9000)]
    # sqrt(p * 28 * 28) for p = 0.8, 0.4, 0.2, 0.1, 0.8 / 512, rounded, made odd
    assert sides == [25.0, 19.0, 13.0, 9.0, 3.0]


@pytest.mark.parametrize("norm, epsilon", [("linf", 0.15), ("l2", 1.0)])
def test_uses_no_gradients(
    trained_image_model, digits_images, monkeypatch, norm, epsilon
):
    """Square never asks for a gradient, and breaks a model that masks them."""
    x, y = digits_images

    def no_gradients(*args, **kwargs):
        raise AssertionError("Square took a gradient")

    from keras_adv import backend

    monkeypatch.setattr(backend, "value_and_input_grad", no_gradients)
    model = masked(trained_image_model, (8, 8, 1))
    x_adv = Square(epsilon, queries=300, seed=0, norm=norm).generate(model, x, y)
    monkeypatch.undo()
    pgd = PGD(epsilon, norm, steps=10, random_start=False).generate(model, x, y)
    np.testing.assert_array_equal(pgd, x)  # zero gradients: PGD cannot move
    assert _accuracy(model, x_adv, y) < _accuracy(model, x, y) - 0.3


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_epsilon_zero_is_the_identity(trained_image_model, digits_images, norm):
    x, y = digits_images
    attack = Square(0.0, queries=20, seed=0, norm=norm)
    x_adv = attack.generate(trained_image_model, x, y)
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
    with pytest.raises(ValueError, match="not L1"):
        Square(0.1, norm="l1")
    config = Square(0.2, queries=9, norm="l2").get_config()
    assert square.Square.from_config(config).get_config() == config
    # a config saved before Square had an L2 version loads as L-inf
    del config["norm"]
    assert square.Square.from_config(config).norm == "linf"


def test_l2_needs_three_by_three_images():
    model = keras.Sequential(
        [keras.Input((2, 2, 1)), keras.layers.Flatten(), keras.layers.Dense(3)]
    )
    x = np.full((2, 2, 2, 1), 0.5, "float32")
    with pytest.raises(ValueError, match="at least 3x3"):
        Square(0.1, queries=2, norm="l2").generate(model, x, np.array([0, 1]))
