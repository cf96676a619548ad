"""Data sets: the bundled digits, MNIST-format IDX folders and npz files, each loaded into
the one Dataset type, and every way a file can be wrong refused in one line."""

import numpy as np
import pytest
from conftest import mnist_folder, write_idx

from hilt.quant.datasets import (
    DIGITS_PIXEL_MAX,
    Dataset,
    DatasetError,
    data_folder,
    default_data_dir,
    load_dataset,
    load_digits,
    read_idx,
)


def test_digits_split_is_integer_pixels_and_labels():
    split = load_digits()
    assert split.x_train.shape == (1437, 64) and split.x_test.shape == (360, 64)
    assert split.x_train.dtype == np.int64 and split.y_train.dtype == np.int64
    pixels = np.concatenate([split.x_train, split.x_test])
    assert pixels.min() == 0 and pixels.max() == DIGITS_PIXEL_MAX
    assert set(np.unique(split.y_test)) == set(range(10))
    assert (split.name, split.features, split.classes) == ("digits", 64, 10)
    assert split.scaled("train").max() == 1.0 and split.scaled("train").dtype == np.float32
    assert np.array_equal(np.rint(split.scaled("test") * 16), split.x_test)


def test_digits_split_is_stratified_and_reproducible():
    split = load_digits(seed=3, test_fraction=0.25)
    train_share = np.bincount(split.y_train) / len(split.y_train)
    test_share = np.bincount(split.y_test) / len(split.y_test)
    assert np.abs(train_share - test_share).max() < 0.01
    again = load_dataset("digits", seed=3)
    assert np.array_equal(again.y_test, load_digits(seed=3).y_test)
    assert np.array_equal(split.x_test, load_digits(seed=3, test_fraction=0.25).x_test)
    other = load_digits(seed=4, test_fraction=0.25)
    assert not np.array_equal(split.y_test, other.y_test)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_digits_split_refuses_a_bad_fraction(fraction):
    with pytest.raises(ValueError, match=r"test_fraction must be in \(0, 1\)"):
        load_digits(test_fraction=fraction)


@pytest.mark.parametrize("gz", [True, False])
def test_an_mnist_folder_loads_its_standard_split(tmp_path, gz):
    data = load_dataset("mnist", mnist_folder(tmp_path / "m", gz=gz))
    assert (data.features, data.classes, len(data.y_train), len(data.y_test)) == (36, 10, 30, 12)
    assert (data.low, data.high, data.range_from) == (0.0, 255.0, "stated")
    assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int64
    assert data.y_train.tolist() == [i % 10 for i in range(30)]
    assert data.describe()["source"] == str(tmp_path / "m")


def test_a_test_only_folder_splits_its_first_images_to_train(tmp_path):
    folder = mnist_folder(tmp_path, train=30, test=9000)
    for stem in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (folder / stem).unlink()
    data = load_dataset("fashion-mnist-t10k", folder)
    assert (len(data.y_train), len(data.y_test)) == (8000, 1000)
    assert data.y_test[0] == 8000 % 10
    with pytest.raises(DatasetError, match=r"fashion-mnist: .* lacks train-images-idx3-ubyte, "
                       r"train-labels-idx1-ubyte; its folder holds train-images-idx3-ubyte, "
                       r"train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
                       r"t10k-labels-idx1-ubyte \(each plain or \.gz\); give the folder"):
        load_dataset("fashion-mnist", folder)


def test_a_folder_data_set_is_looked_for_in_the_cache_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / "hilt" / "datasets"
    assert data_folder("mnist-t10k", None) == tmp_path / "hilt" / "datasets" / "mnist"
    with pytest.raises(DatasetError, match=f"mnist: there is no folder {tmp_path}/hilt/"
                       f"datasets/mnist; its folder holds train-images-idx3-ubyte"):
        load_dataset("mnist")
    mnist_folder(tmp_path / "hilt" / "datasets" / "mnist")
    assert load_dataset("mnist").features == 36


def test_idx_files_that_are_not_are_named(tmp_path):
    folder = mnist_folder(tmp_path, gz=False)
    (folder / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05\x01")
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte: an IDX array of shape "
                       r"\(5,\) takes 13 bytes, the file holds 9"):
        load_dataset("mnist", folder)
    (folder / "t10k-labels-idx1-ubyte").write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(DatasetError, match="not an IDX file"):
        load_dataset("mnist", folder)
    (folder / "t10k-labels-idx1-ubyte").unlink()
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte\.gz: cannot be read"):
        load_dataset("mnist", folder)


def test_idx_labels_must_match_the_images_and_the_classes(tmp_path):
    folder = mnist_folder(tmp_path, gz=False)
    write_idx(folder / "t10k-labels-idx1-ubyte", np.arange(11))
    with pytest.raises(DatasetError, match="11 labels for the 12 images"):
        load_dataset("mnist", folder)
    write_idx(folder / "t10k-labels-idx1-ubyte", np.full(12, 10))
    with pytest.raises(DatasetError, match=r"mnist: y_test holds the label 10; accepted 0\.\.9"):
        load_dataset("mnist", folder)


def test_read_idx_keeps_the_shape(tmp_path):
    write_idx(tmp_path / "a.gz", np.arange(24).reshape(2, 3, 4))
    assert read_idx(tmp_path / "a.gz").tolist() == np.arange(24).reshape(2, 3, 4).tolist()


def test_an_npz_data_set_takes_any_features_and_classes(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "own.npz"
    np.savez(path, x_train=rng.normal(size=(20, 3, 5)), y_train=np.arange(20) % 4,
             x_test=rng.normal(size=(6, 3, 5)), y_test=np.arange(6) % 4)
    data = load_dataset(f"npz:{path}")
    assert (data.name, data.features, data.classes, data.range_from) == (
        f"npz:{path}", 15, 4, "inferred")
    both = np.concatenate([data.x_train.ravel(), data.x_test.ravel()])
    assert (data.low, data.high) == (both.min(), both.max())
    assert data.scaled("test").min() >= 0.0 and data.scaled("test").max() <= 1.0
    np.savez(path, x_train=np.full((4, 2), 3, dtype=np.uint16), y_train=[0, 1, 0, 1],
             x_test=np.ones((2, 2), dtype=np.uint16), y_test=[1, 0], x_range=[0, 1023],
             classes=3)
    data = load_dataset(f"npz:{path}")
    assert (data.low, data.high, data.range_from, data.classes) == (0, 1023, "stated", 3)


@pytest.mark.parametrize(("arrays", "message"), [
    ({"y_test": None}, r"lacks the key y_test; an npz data set holds x_train, y_train, x_test, "
                       r"y_test"),
    ({"x_test": np.array([[1.0, np.nan], [0, 0]])},
     r"x_test holds a NaN or infinite feature \(sample 0, feature 1\)"),
    ({"y_train": [0, -1, 0, 1]}, r"y_train holds the label -1; accepted 0\.\.1"),
    ({"y_train": [0, 1.5, 0, 1]}, r"y_train must hold integer class labels"),
    ({"y_test": [0, 1, 2]}, r"y_test must hold one label per sample, 2, got shape \(3,\)"),
    ({"x_test": np.ones((2, 3))}, r"x_train has 2 features and x_test 3"),
    ({"x_range": [1, 1]}, r"x_range must be two finite numbers low < high"),
    ({"y_train": [0, 0, 0, 0], "y_test": [0, 0]}, r"a classifier needs at least 2 classes"),
    ({"classes": 2, "y_train": [0, 2, 0, 1]}, r"y_train holds the label 2; accepted 0\.\.1"),
    ({"x_train": np.array(["a", "b"])}, r"x_train must be a numeric array"),
])
def test_a_bad_npz_is_refused_naming_the_key(tmp_path, arrays, message):
    full = {"x_train": np.ones((4, 2)), "y_train": [0, 1, 0, 1], "x_test": np.ones((2, 2)),
            "y_test": [1, 0], **arrays}
    np.savez(tmp_path / "d.npz", **{key: value for key, value in full.items()
                                    if value is not None})
    with pytest.raises(DatasetError, match=message):
        load_dataset(f"npz:{tmp_path / 'd.npz'}")


def test_a_missing_or_unreadable_npz_is_named(tmp_path):
    with pytest.raises(DatasetError, match=r"no such file .*absent\.npz"):
        load_dataset(f"npz:{tmp_path / 'absent.npz'}")
    (tmp_path / "bad.npz").write_text("text")
    with pytest.raises(DatasetError, match=r"bad\.npz is not a readable \.npz file"):
        load_dataset(f"npz:{tmp_path / 'bad.npz'}")


@pytest.mark.parametrize(("name", "data_dir", "message"), [
    ("cifar", None, r"dataset must be one of digits, mnist, fashion-mnist, mnist-t10k, "
                    r"fashion-mnist-t10k, npz:PATH, got 'cifar'"),
    ("npz:", None, "dataset must be one of"),
    ("digits", "/tmp", r"a data directory \(/tmp\) is for mnist, fashion-mnist and their "
                       r"-t10k splits; 'digits' takes none"),
])
def test_an_unknown_name_or_a_stray_folder_is_refused(name, data_dir, message):
    with pytest.raises(DatasetError, match=message):
        load_dataset(name, data_dir)


def test_blank_features_are_the_least_varying_ones():
    x = np.zeros((8, 5))
    x[:, 1] = np.arange(8)
    x[:, 3] = np.arange(8) % 2
    data = Dataset("toy", x, np.arange(8) % 2, x[:2], np.array([0, 1]), 0.0, 8.0, 2, "here")
    assert data.blank_features(2) == (0, 2)
    assert data.blank_features(4) == (0, 2, 3, 4)
    with pytest.raises(DatasetError, match=r"toy: 6 blank features asked of 5; accepted 1\.\.5"):
        data.blank_features(6)
    assert data.subset(3, 1).x_train.shape == (3, 5) and data.subset(3, 1).y_test.tolist() == [0]
