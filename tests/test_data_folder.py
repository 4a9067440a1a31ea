"""`--dataset DIR`: a folder of images, one sub-folder per class."""

import json

import numpy as np
import pytest
from PIL import Image

from keras_adv.experiments import data
from tests.conftest import run_cli

CLASSES = ("cat", "dog", "eel")  # labels 0, 1, 2: sorted folder names


def write_images(folder, per_class=8, size=(8, 8), mode="L", seed=0):
    """`per_class` random images per class; returns {path: pixels}."""
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
    written = {}
    for label, name in enumerate(CLASSES):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            path = folder / name / f"{i}.png"
            Image.fromarray(pixels, mode).save(path)
            written[path] = (pixels, label)
    return written


def find(x, pixels):
    """Indices of the examples of `x` equal to `pixels` / 255."""
    target = pixels.reshape(x.shape[1:]).astype("float32") / 255.0
    return [i for i in range(len(x)) if np.array_equal(x[i], target)]


def test_one_folder_is_split_stratified_with_its_pixels_and_labels(tmp_path):
    written = write_images(tmp_path)
    (x_train, y_train), (x_test, y_test) = data.load(str(tmp_path))
    assert x_train.shape == (18, 8, 8, 1) and x_test.shape == (6, 8, 8, 1)
    assert x_train.dtype == np.float32
    np.testing.assert_array_equal(np.bincount(y_test), [2, 2, 2])
    for pixels, label in written.values():  # every file once, with its label
        in_train, in_test = find(x_train, pixels), find(x_test, pixels)
        assert len(in_train) + len(in_test) == 1
        assert [*y_train[in_train], *y_test[in_test]] == [label]


def test_the_same_folder_gives_the_same_data_and_the_seed_another_split(tmp_path):
    write_images(tmp_path)
    first, again = data.load(str(tmp_path)), data.load(str(tmp_path), seed=0)
    other = data.load(str(tmp_path), seed=1)
    assert data.fingerprint(first) == data.fingerprint(again)
    assert data.fingerprint(first) != data.fingerprint(other)


def test_train_and_test_sub_folders_are_used_as_given(tmp_path):
    train = write_images(tmp_path / "train", per_class=4, seed=0)
    test = write_images(tmp_path / "test", per_class=2, seed=1)
    (x_train, y_train), (x_test, y_test) = data.load(str(tmp_path))
    assert len(x_train) == 12 and len(x_test) == 6
    for written, x, y in ((train, x_train, y_train), (test, x_test, y_test)):
        for pixels, label in written.values():
            (index,) = find(x, pixels)
            assert y[index] == label
    assert set(y_test[:3]) != {0}  # shuffled: the first images are not all cats


def test_rgb_images_keep_three_channels(tmp_path):
    written = write_images(tmp_path, mode="RGB", size=(5, 4))
    (x_train, _), (x_test, _) = data.load(str(tmp_path))
    assert x_train.shape[1:] == (4, 5, 3)
    pixels, _ = next(iter(written.values()))
    assert len(find(x_train, pixels)) + len(find(x_test, pixels)) == 1


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda p: Image.new("L", (9, 8)).save(p / "dog" / "big.png"), "9x8"),
        (lambda p: (p / "dog" / "bad.png").write_bytes(b"no png"), "bad.png"),
        (
            lambda p: [f.unlink() for f in (p / "eel").iterdir() if f.name != "0.png"],
            "at least two",
        ),
    ],
    ids=["sizes", "unreadable", "one image"],
)
def test_folders_that_cannot_be_used_are_refused_naming_the_file(
    tmp_path, spoil, message
):
    write_images(tmp_path)
    spoil(tmp_path)
    with pytest.raises(data.DataError, match=message):
        data.load(str(tmp_path))


def test_a_test_folder_with_an_unknown_class_is_refused(tmp_path):
    write_images(tmp_path / "train", per_class=2)
    write_images(tmp_path / "test", per_class=2)
    (tmp_path / "test" / "fox").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "test" / "fox" / "0.png")
    with pytest.raises(data.DataError, match="fox"):
        data.load(str(tmp_path))


def test_empty_and_one_class_folders_are_refused(tmp_path):
    with pytest.raises(data.DataError, match="holds no images"):
        data.load(str(tmp_path))
    (tmp_path / "only").mkdir()
    for i in range(4):
        Image.new("L", (8, 8)).save(tmp_path / "only" / f"{i}.png")
    with pytest.raises(data.DataError, match="two or more"):
        data.load(str(tmp_path))


def test_a_sweep_trains_and_attacks_a_folder_of_images(tmp_path):
    folder = tmp_path / "images"
    write_images(folder, per_class=12)
    code, out, err = run_cli(
        "sweep", "--dataset", str(folder), "--train-eps", "0.1",
        "--attack-eps", "0", "0.1", "--attacks", "fgsm", "--epochs", "1",
        "--no-checks", "--out", str(tmp_path / "runs"), "--name", "folder",
        "--quiet",
    )  # fmt: skip
    assert code == 0, err[-2000:]
    results = json.loads((tmp_path / "runs" / "folder" / "results.json").read_text())
    assert results["settings"]["dataset"] == str(folder)
    assert results["data"]["sha256"] == data.fingerprint(data.load(str(folder)))
    assert {c["attack"] for c in results["cells"]} >= {"fgsm"}


def test_a_test_folder_with_fewer_classes_keeps_the_training_labels(tmp_path):
    write_images(tmp_path / "train", per_class=2)
    test = write_images(tmp_path / "test", per_class=2, seed=1)
    for path in (tmp_path / "test" / "cat").iterdir():
        path.unlink()
    (tmp_path / "test" / "cat").rmdir()
    _, (x_test, y_test) = data.load(str(tmp_path))
    for pixels, label in list(test.values())[2:]:  # dogs and eels: 1 and 2
        (index,) = find(x_test, pixels)
        assert y_test[index] == label
