"""Datasets: `digits` (bundled with scikit-learn, the default), Keras's
MNIST / Fashion-MNIST / CIFAR-10, `.npz` files, and folders of images.

Every loader returns `(x_train, y_train), (x_test, y_test)` with `x` float32
in [0, 1] and a channel axis, `y` int32 class labels. The data are checked
once, up front, and refused with the fix when they do not fit; `fingerprint`
identifies a dataset by its content.
"""

import gzip
import importlib.util
import os
import zipfile

import numpy as np

from keras_adv.evaluation.state import digest

DATASETS = ("digits", "fashion_mnist", "mnist", "cifar10")
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# Debian's dataset-fashion-mnist package: the files Keras would download.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
TEST_FRACTION = 0.25  # held out for testing from a folder without train/, test/
IMAGE_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # what Keras reads
_GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "F")  # PIL's one-channel modes
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
    """Loads a dataset by name, an `.npz` file or a folder of images by path.

    Args:
        name: `"digits"`, `"fashion_mnist"`, `"mnist"`, `"cifar10"`, the
            path of an `.npz` file holding `x_train`, `y_train`, `x_test`,
            `y_test` (pixels in [0, 255] integers or [0, 1] floats), or the
            path of a folder of images with one sub-folder per class
            (`load_folder`).
        seed: seed of the `digits` split and of a folder's. Defaults to 0.
        fashion_mnist_dir: where Debian's `dataset-fashion-mnist` keeps the
            files; used before any download. Defaults to its install path.
    """
    if str(name).endswith(".npz"):
        return _load_npz(name)
    if os.path.isdir(str(name)):
        return load_folder(name, seed=seed)
    if name == "digits":
        return load_digits(seed=seed)
    if name == "fashion_mnist" and _has_idx_files(fashion_mnist_dir):
        return _load_idx(fashion_mnist_dir)
    if name in DATASETS:
        return _load_keras(name)
    raise DataError(
        f"Argument `name` must be one of {list(DATASETS)}, the path of an .npz "
        "file with x_train, y_train, x_test, y_test, or a folder of images with "
        f"one sub-folder per class. Received: name={name!r}"
    )


class DataError(ValueError):
    """A dataset that cannot be used as given: the message says what to change."""


def fingerprint(data):
    """The SHA-256 of a dataset's arrays (dtype, shape and bytes), as hex.

    Identifies the data by content: the same path with other contents, or
    another version of a built-in dataset, gives another fingerprint.
    """
    return digest([array for split in data for array in split])


def dataset_key(name):
    """How a `--dataset` is recorded: a built-in's name, else its absolute path."""
    name = str(name)
    return name if name in DATASETS else os.path.abspath(name)


def identity(name, data, seed):
    """What a model trained on `data` keeps about them, to be evaluated on them.

    The dataset as `--dataset` takes it (a path made absolute) and the split
    seed, so the same data load again; their SHA-256, so other data are
    refused; and their form: input shape, range and scaling, class count.
    """
    (x_train, y_train), (x_test, y_test) = data
    return {
        "dataset": dataset_key(name),
        "seed": seed,
        "sha256": fingerprint(data),
        "train_examples": len(x_train),
        "test_examples": len(x_test),
        "input_shape": list(x_train.shape[1:]),
        "input_range": [0.0, 1.0],
        "preprocessing": "integer pixels / 255, floats as they are (data.load)",
        "classes": int(max(y_train.max(), y_test.max())) + 1,
    }


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


def load_folder(directory, seed=0):
    """Images in one sub-folder per class, read by Keras's
    `image_dataset_from_directory`.

    `directory/train/<class>/...` and `directory/test/<class>/...` are used as
    they are (the same class sub-folders in both); otherwise
    `directory/<class>/...` is split, stratified by class, into
    `1 - TEST_FRACTION` for training and `TEST_FRACTION` for testing. Labels
    number the classes in the sorted order of their folder names, as Keras
    does. Every image must have the size of the others (no silent resize);
    the images are grayscale when the first one is, RGB otherwise. Pixels
    are scaled from [0, 255] to [0, 1]. The examples are put in an order set
    by `seed` only, so that the first test images cover every class and the
    data (and their `fingerprint`) are the same on every load.

    Args:
        directory: the folder.
        seed: seed of the split and the order. Defaults to 0.

    Returns:
        `(x_train, y_train), (x_test, y_test)` as `load` gives them.
    """
    from sklearn.model_selection import train_test_split

    directory = os.fspath(directory)
    source = f"the image folder {directory}"
    size, color = _image_format(directory, source)
    train_dir, test_dir = (os.path.join(directory, s) for s in ("train", "test"))
    if os.path.isdir(train_dir) and os.path.isdir(test_dir):
        x_train, y_train, classes = _read_images(train_dir, size, color, source)
        x_test, y_test, test_classes = _read_images(test_dir, size, color, source)
        unknown = sorted(set(test_classes) - set(classes))
        if unknown:
            raise DataError(
                f"{source}: test/ has class folder(s) {unknown} that train/ lacks; "
                "a model trained on train/ cannot predict them. Add them to train/ "
                "or remove them from test/."
            )
        y_test = np.asarray([classes.index(c) for c in test_classes], "int32")[y_test]
        rng = np.random.default_rng(seed)
        train_order, test_order = (
            rng.permutation(len(x_train)),
            rng.permutation(len(x_test)),
        )
        x_train, y_train = x_train[train_order], y_train[train_order]
        x_test, y_test = x_test[test_order], y_test[test_order]
    else:
        x, y, _ = _read_images(directory, size, color, source)
        if min(np.bincount(y)) < 2:
            raise DataError(
                f"{source} has a class with one image; each class needs at least "
                "two (one to train on, one to test), or give train/ and test/ "
                "sub-folders."
            )
        x_train, x_test, y_train, y_test = train_test_split(
            x, y, test_size=TEST_FRACTION, stratify=y, random_state=seed
        )
    train = _scale(x_train, y_train, "train", source)
    test = _scale(x_test, y_test, "test", source)
    return check_splits(train, test, source)


def _image_files(directory):
    """The image files under `directory` that Keras reads, sorted."""
    found = []
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        found += [
            os.path.join(root, f)
            for f in sorted(files)
            if f.lower().endswith(IMAGE_FORMATS)
        ]
    return found


def _image_format(directory, source):
    """`((height, width), color_mode)` shared by every image, or `DataError`."""
    from PIL import Image

    files = _image_files(directory)
    if not files:
        raise DataError(
            f"{source} holds no images (.png, .jpg, .jpeg, .bmp, .gif): put "
            "each class's images in a sub-folder named after the class."
        )
    first = sizes = None
    for path in files:
        try:
            with Image.open(path) as image:
                size, mode = image.size, image.mode
        except OSError as error:
            raise DataError(
                f"{source}: {path} cannot be read as an image ({error}); remove "
                "or replace it."
            ) from None
        if first is None:
            first, sizes = path, size
            color = "grayscale" if mode in _GRAYSCALE_MODES else "rgb"
        elif size != sizes:
            raise DataError(
                f"{source} holds images of different sizes: {first} is "
                f"{sizes[0]}x{sizes[1]}, {path} is {size[0]}x{size[1]} (width x "
                "height). Resize them to one size first."
            )
    return (sizes[1], sizes[0]), color


def _read_images(directory, size, color, source):
    """`(x uint8, y int32, class names)` of one folder of class sub-folders."""
    if importlib.util.find_spec("tensorflow") is None:  # Keras reads with tf.data
        raise DataError(
            f"Reading {source} needs TensorFlow (Keras's "
            "image_dataset_from_directory uses tf.data): pip install tensorflow, "
            "or save the images as an .npz file."
        )
    import keras

    try:
        dataset = keras.utils.image_dataset_from_directory(
            directory,
            color_mode=color,
            batch_size=None,
            image_size=size,
            shuffle=False,
            verbose=False,
        )
    except ValueError as error:  # no class folders
        raise DataError(f"{source}: {error}") from None
    if len(dataset.class_names) < 2:
        raise DataError(
            f"{source} has {len(dataset.class_names)} class sub-folder(s) in "
            f"{directory}; a classifier needs two or more."
        )
    xs, ys = [], []
    for x, y in dataset.as_numpy_iterator():
        xs.append(x)
        ys.append(y)
    x = np.round(np.stack(xs)).astype("uint8")  # decoded pixels, same size
    return x, np.asarray(ys, "int32"), dataset.class_names


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
