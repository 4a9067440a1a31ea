import numpy as np
import pytest

from keras_adv.data import load_digits


def test_digits_are_scaled_shaped_and_split_stratified():
    (x_train, y_train), (x_test, y_test) = load_digits()
    assert x_train.shape[1:] == (8, 8, 1) and x_train.dtype == np.float32
    assert len(x_train) + len(x_test) == 1797
    assert len(x_test) == 450
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert set(np.unique(y_train)) == set(range(10))
    train_share = np.bincount(y_train) / len(y_train)
    test_share = np.bincount(y_test) / len(y_test)
    np.testing.assert_allclose(train_share, test_share, atol=0.01)


def test_digits_split_is_reproducible_and_seeded():
    first, again, other = load_digits(seed=1), load_digits(seed=1), load_digits(seed=2)
    np.testing.assert_array_equal(first[1][1], again[1][1])
    assert not np.array_equal(first[1][1], other[1][1])


def test_bad_test_fraction():
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits(test_fraction=1.5)
