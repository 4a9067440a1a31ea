"""Datasets: `digits` (bundled with scikit-learn, the default), Keras's
MNIST / Fashion-MNIST / CIFAR-10, and `.npz` files.

Every loader returns `(x_train, y_train), (x_test, y_test)` with `x` float32
in [0, 1] and a channel axis, `y` int32 class labels.
"""

import gzip
import os

import numpy as np

DATASETS = ("digits", "fashion_mnist", "mnist", "cifar10")
# Debian's dataset-fashion-mnist package: the files Keras would download.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
_IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def load_digits(test_fraction=0.25, seed=0):
    """scikit-learn's 1,797 8x8 digit images, scaled to [0, 1], split stratified.

    Args:
        test_fraction: share of the examples held out for testing, in (0, 1).
            Defaults to 0.25.
        seed: seed of the split. Defaults to 0.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: `x` float32 `(n, 8, 8, 1)`
        in [0, 1], `y` int32 class labels 0-9.
    """
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(
            "Argument `test_fraction` must be in (0, 1). "
            f"Received: test_fraction={test_fraction}"
        )
    digits = sklearn_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target.astype("int32")
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed
    )
    return (x_train, y_train), (x_test, y_test)


def load(name, seed=0, fashion_mnist_dir=FASHION_MNIST_DIR):
    """Loads a dataset by name, or an `.npz` file by path.

    Args:
        name: `"digits"`, `"fashion_mnist"`, `"mnist"`, `"cifar10"`, or the
            path of an `.npz` file holding `x_train`, `y_train`, `x_test`,
            `y_test` (pixels in [0, 255] integers or [0, 1] floats).
        seed: seed of the `digits` split. Defaults to 0.
        fashion_mnist_dir: where Debian's `dataset-fashion-mnist` keeps the
            files; used before any download. Defaults to its install path.
    """
    if str(name).endswith(".npz"):
        return _load_npz(name)
    if name == "digits":
        return load_digits(seed=seed)
    if name == "fashion_mnist" and _has_idx_files(fashion_mnist_dir):
        return _load_idx(fashion_mnist_dir)
    if name in DATASETS:
        return _load_keras(name)
    raise ValueError(
        f"Argument `name` must be one of {list(DATASETS)} or the path of an .npz "
        f"file with x_train, y_train, x_test, y_test. Received: name={name!r}"
    )


def _scale(x, y):
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if np.issubdtype(x.dtype, np.integer) or x.max() > 1.0:
        x = x.astype("float32") / 255.0
    return x.astype("float32"), np.asarray(y).reshape(-1).astype("int32")


def _load_npz(path):
    if not os.path.isfile(path):
        raise ValueError(f"Argument `name` names no file: {path!r} does not exist.")
    with np.load(path) as data:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(data.files)
        if missing:
            raise ValueError(
                f"The .npz file {path!r} lacks {sorted(missing)}; it needs "
                "x_train, y_train, x_test and y_test."
            )
        train = _scale(data["x_train"], data["y_train"])
        test = _scale(data["x_test"], data["y_test"])
    return train, test


def _has_idx_files(directory):
    return all(os.path.isfile(os.path.join(directory, f)) for f in _IDX_FILES)


def _read_idx(path):
    """An IDX file (the MNIST format): magic, dimensions, then uint8 data."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    dims = data[3]
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)
    )
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def _load_idx(directory):
    x_train, y_train, x_test, y_test = (
        _read_idx(os.path.join(directory, name)) for name in _IDX_FILES
    )
    return _scale(x_train, y_train), _scale(x_test, y_test)


def _load_keras(name):
    import keras

    try:
        train, test = getattr(keras.datasets, name).load_data()
    except Exception as error:  # offline, blocked, corrupted cache...
        hint = (
            " Offline, install Debian's dataset-fashion-mnist package "
            f"(files in {FASHION_MNIST_DIR})."
            if name == "fashion_mnist"
            else ""
        )
        raise ValueError(
            f"Could not load {name!r} through keras.datasets ({error}). It is "
            "downloaded on first use into ~/.keras/datasets, which needs the "
            f"network.{hint} Or save the arrays to an .npz file and pass its path."
        ) from None
    return _scale(*train), _scale(*test)
