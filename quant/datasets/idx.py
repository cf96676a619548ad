"""MNIST-format data sets from a local folder of IDX files, gzipped or not.

MNIST and Fashion-MNIST ship as the same four files (``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``),
28x28 uint8 pixels and labels 0..9. Nothing is downloaded: the folder is the user's.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from .dataset import Dataset, DatasetError

IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
"""IDX type codes and the big-endian element each stands for."""

PARTS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
"""The standard file names of each part, images first."""

CLASSES = 10
"""MNIST and Fashion-MNIST both have ten classes."""


def read_idx(path: Path) -> np.ndarray:
    """The array an IDX file holds (gzipped where its name ends in ``.gz``); a
    :class:`DatasetError` naming the file where it is not one."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DatasetError(f"{path}: cannot be read: {error}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise DatasetError(f"{path}: not an IDX file (its first bytes are {raw[:4].hex()}, an "
                           f"IDX file starts 0000, a type code and a dimension count)")
    dtype, dims = IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * dims
    if dims < 1 or len(raw) < header:
        raise DatasetError(f"{path}: IDX header of {dims} dimensions is cut short")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DatasetError(f"{path}: an IDX array of shape {shape} takes {expected} bytes, "
                           f"the file holds {len(raw)}")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def find_file(folder: Path, stem: str) -> Path | None:
    """``folder/stem`` or ``folder/stem.gz``, whichever exists."""
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def read_part(files: dict[str, Path], part: str) -> tuple[np.ndarray, np.ndarray]:
    """Images flattened to (N, rows * cols) and labels int64 of one part, from the
    files :func:`find_files` found."""
    images_path, labels_path = (files[stem] for stem in PARTS[part])
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim < 2:
        raise DatasetError(f"{images_path}: images must be an IDX array of 2 or more "
                           f"dimensions, got shape {images.shape}")
    if labels.ndim != 1 or labels.dtype.kind not in "ui":
        raise DatasetError(f"{labels_path}: labels must be a 1-D integer IDX array, got "
                           f"shape {labels.shape} of {labels.dtype}")
    if len(labels) != len(images):
        raise DatasetError(f"{labels_path}: {len(labels)} labels for the {len(images)} "
                           f"images of {images_path.name}")
    return images.reshape(len(images), -1), labels.astype(np.int64)


def find_files(name: str, folder: Path, parts: tuple[str, ...]) -> dict[str, Path]:
    """The file of every standard name ``parts`` need; a :class:`DatasetError` naming
    each expected and the folder searched where one is missing."""
    stems = [stem for part in parts for stem in PARTS[part]]
    found = {stem: find_file(folder, stem) for stem in stems}
    missing = [stem for stem, path in found.items() if path is None]
    if missing:
        where = f"{folder} lacks {', '.join(missing)}" if folder.is_dir() else \
            f"there is no folder {folder}"
        raise DatasetError(f"{name}: {where}; its folder holds {', '.join(stems)} (each plain "
                           f"or .gz); give the folder that holds them with --data-dir")
    return {stem: path for stem, path in found.items() if path is not None}


def load_idx_folder(name: str, folder: Path) -> Dataset:
    """The standard split of an MNIST-format folder: the 60,000 training images to train,
    the 10,000 test images to test."""
    files = find_files(name, folder, ("train", "t10k"))
    x_train, y_train = read_part(files, "train")
    x_test, y_test = read_part(files, "t10k")
    return _dataset(name, folder, x_train, y_train, x_test, y_test)


def load_idx_test_split(name: str, folder: Path, train: int = 8000) -> Dataset:
    """A split of the test files alone, for a folder that holds only them: the first
    ``train`` images to train, the rest to test."""
    x, y = read_part(find_files(name, folder, ("t10k",)), "t10k")
    if not 0 < train < len(y):
        raise DatasetError(f"{name}: {folder} holds {len(y)} test images, too few to train on "
                           f"the first {train} and test on the rest")
    return _dataset(name, folder, x[:train], y[:train], x[train:], y[train:])


def _dataset(name: str, folder: Path, x_train: np.ndarray, y_train: np.ndarray,
             x_test: np.ndarray, y_test: np.ndarray) -> Dataset:
    """A Dataset of IDX arrays: uint8 pixels have the range 0..255 of their format."""
    if x_train.dtype == np.uint8:
        low, high, range_from = 0.0, 255.0, "stated"
    else:
        both = np.concatenate([x_train, x_test])
        low, high, range_from = float(both.min()), float(both.max()), "inferred"
    return Dataset(name, x_train, y_train, x_test, y_test, low, high, CLASSES, str(folder),
                   range_from)
