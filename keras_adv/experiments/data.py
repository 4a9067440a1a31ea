"""Datasets: `digits` (bundled with scikit-learn, the default), Keras's
MNIST / Fashion-MNIST / CIFAR-10, and `.npz` files.

Every loader returns `(x_train, y_train), (x_test, y_test)` with `x` float32
in [0, 1] and a channel axis, `y` int32 class labels. The data are checked
once, up front, and refused with the fix when they do not fit; `fingerprint`
identifies a dataset by its content.
"""

import gzip
import hashlib
import os
import zipfile

import numpy as np

DATASETS = ("digits", "fashion_mnist", "mnist", "cifar10")
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
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
    raise DataError(
        f"Argument `name` must be one of {list(DATASETS)} or the path of an .npz "
        f"file with x_train, y_train, x_test, y_test. Received: name={name!r}"
    )


class DataError(ValueError):
    """A dataset that cannot be used as given: the message says what to change."""


def fingerprint(data):
    """The SHA-256 of a dataset's arrays (dtype, shape and bytes), as hex.

    Identifies the data by content: the same path with other contents, or
    another version of a built-in dataset, gives another fingerprint.
    """
    digest = hashlib.sha256()
    for split in data:
        for array in split:
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def _scale(x, y, split, source):
    """Pixels to float32 in [0, 1], labels to int32 ids; refuses what does not fit.

    The scale follows the dtype, never the values: integer pixels are
    divided by 255, floats are taken as they are and must lie in [0, 1].
    """
    x, y = np.asarray(x), np.asarray(y)
    where = f"x_{split} in {source}"
    if x.ndim == 3:
        x = x[..., None]
    if len(x) == 0:
        raise DataError(f"{where} is empty: each split needs at least one example.")
    if np.issubdtype(x.dtype, np.integer):
        low, high = int(x.min()), int(x.max())
        if low < 0 or high > 255:
            raise DataError(
                f"{where} holds integers in [{low}, {high}]; integer pixels must be "
                "in [0, 255] (they are divided by 255). Save floats in [0, 1] instead."
            )
        x = x.astype("float32") / 255.0
    elif np.issubdtype(x.dtype, np.floating):
        x = x.astype("float32")
        if not np.all(np.isfinite(x)):
            raise DataError(f"{where} holds NaN or Inf values; remove or impute them.")
        low, high = float(x.min()), float(x.max())
        if low < 0.0 or high > 1.0:
            raise DataError(
                f"{where} holds floats in [{low:g}, {high:g}]; keras-adv's budgets "
                "are on the scale [0, 1]. Save uint8 pixels in [0, 255] (divided "
                "by 255 on load) or floats scaled to [0, 1]."
            )
    else:
        raise DataError(f"{where} has dtype {x.dtype}; pixels must be numbers.")
    return x, _labels(y, len(x), split, source)


def _labels(y, count, split, source):
    where = f"y_{split} in {source}"
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.reshape(-1)
    if y.ndim != 1 or len(y) != count:
        raise DataError(
            f"{where} must hold one class id per example: shape ({count},). "
            f"Received shape {y.shape}."
        )
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise DataError(f"{where} has dtype {y.dtype}; class ids must be integers.")
    if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
        raise DataError(
            f"{where} holds fractional or non-finite labels; class ids "
            "must be whole numbers 0, 1, 2, ..."
        )
    if y.min() < 0:
        raise DataError(
            f"{where} holds negative labels ({y.min():g}); class ids "
            "must be 0, 1, 2, ..."
        )
    return y.astype("int32")


def check_splits(train, test, source):
    """Refuses a train and a test split that do not belong to one model."""
    if train[0].shape[1:] != test[0].shape[1:]:
        raise DataError(
            f"The splits of {source} have different example shapes: train "
            f"{train[0].shape[1:]}, test {test[0].shape[1:]}."
        )
    classes = int(train[1].max()) + 1
    if int(test[1].max()) >= classes:
        raise DataError(
            f"y_test in {source} holds label {int(test[1].max())}, but the "
            f"training labels stop at {classes - 1}: a model trained on them "
            "cannot output it."
        )
    return train, test


def _load_npz(path):
    if not os.path.isfile(path):
        raise DataError(f"Argument `name` names no file: {path!r} does not exist.")
    source = repr(path)
    if not zipfile.is_zipfile(path):
        raise DataError(
            f"{source} is not an .npz archive (not a zip file). Write one with "
            "numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)."
        )
    with np.load(path) as data:
        missing = set(_NPZ_KEYS) - set(data.files)
        if missing:
            raise DataError(
                f"The .npz file {source} lacks {sorted(missing)}; it needs "
                "x_train, y_train, x_test and y_test."
            )
        try:
            arrays = {key: data[key] for key in _NPZ_KEYS}
        except (ValueError, OSError, zipfile.BadZipFile) as error:
            raise DataError(
                f"The .npz file {source} cannot be read as numeric arrays "
                f"({error.__class__.__name__}); save plain NumPy number arrays."
            ) from None
    train = _scale(arrays["x_train"], arrays["y_train"], "train", source)
    test = _scale(arrays["x_test"], arrays["y_test"], "test", source)
    return check_splits(train, test, source)


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
    source = f"the IDX files in {directory}"
    return _scale(x_train, y_train, "train", source), _scale(
        x_test, y_test, "test", source
    )


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
        raise DataError(
            f"Could not load {name!r} through keras.datasets ({error}). It is "
            "downloaded on first use into ~/.keras/datasets, which needs the "
            f"network.{hint} Or save the arrays to an .npz file and pass its path."
        ) from None
    source = f"keras.datasets.{name}"
    return _scale(*train, "train", source), _scale(*test, "test", source)
