import gzip

import numpy as np
import pytest

from keras_adv.experiments import data
from keras_adv.experiments.data import load_digits


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


def write_idx(path, array):
    """An IDX file as MNIST ships it: magic (0, 0, 8, ndim), sizes, bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(size).to_bytes(4, "big") for size in array.shape
    )
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_from_debian_files_without_network(tmp_path, monkeypatch):
    import keras

    def no_network():
        raise AssertionError("tried to download")

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", no_network)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28))
    labels = rng.integers(0, 10, 5)
    for name, array in [
        ("train-images-idx3-ubyte.gz", images),
        ("train-labels-idx1-ubyte.gz", labels),
        ("t10k-images-idx3-ubyte.gz", images[:2]),
        ("t10k-labels-idx1-ubyte.gz", labels[:2]),
    ]:
        write_idx(tmp_path / name, array)
    (x, y), (x_test, y_test) = data.load("fashion_mnist", fashion_mnist_dir=tmp_path)
    assert x.shape == (5, 28, 28, 1) and x.dtype == np.float32
    np.testing.assert_allclose(x[..., 0], images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    assert x_test.shape == (2, 28, 28, 1) and list(y_test) == list(labels[:2])


def test_offline_keras_dataset_is_a_clear_error(tmp_path, monkeypatch):
    import keras

    def offline():
        raise OSError("network unreachable")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(ValueError, match=r"cifar10.*network.*\.npz"):
        data.load("cifar10")
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", offline)
    with pytest.raises(ValueError, match="dataset-fashion-mnist"):
        data.load("fashion_mnist", fashion_mnist_dir=tmp_path)  # no files there


def test_npz_files(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "mine.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (6, 4, 4)),
        y_train=np.arange(6) % 2,
        x_test=rng.integers(0, 256, (2, 4, 4)),
        y_test=np.array([[0], [1]]),
    )
    (x, y), (x_test, y_test) = data.load(str(path))
    assert x.shape == (6, 4, 4, 1) and x.max() <= 1.0 and y.dtype == np.int32
    assert list(y_test) == [0, 1]
    np.savez(tmp_path / "bad.npz", x_train=np.zeros(3))
    with pytest.raises(ValueError, match="lacks"):
        data.load(str(tmp_path / "bad.npz"))
    with pytest.raises(ValueError, match="does not exist"):
        data.load(str(tmp_path / "missing.npz"))


def test_unknown_dataset():
    with pytest.raises(ValueError, match=r"one of \['digits'"):
        data.load("imagenet")
