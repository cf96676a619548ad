"""The data sets hilt trains on, by name, with nothing downloaded.

- ``digits``: scikit-learn's 8x8 digits, bundled (:mod:`.digits`);
- ``mnist``, ``fashion-mnist``: a local folder of the four standard IDX files
  (:mod:`.idx`); ``mnist-t10k``, ``fashion-mnist-t10k``: the test files alone, the first
  8,000 images to train and the last 2,000 to test;
- ``npz:PATH``: a researcher's own arrays (:mod:`.npz`).
"""

from __future__ import annotations

import os
from pathlib import Path

from .dataset import Dataset, DatasetError
from .digits import DIGITS_PIXEL_MAX, load_digits
from .idx import load_idx_folder, load_idx_test_split, read_idx
from .npz import load_npz

__all__ = ["DATASETS", "DIGITS_PIXEL_MAX", "Dataset", "DatasetError", "data_folder",
           "default_data_dir", "load_dataset", "load_digits", "load_idx_folder",
           "load_idx_test_split", "load_npz", "read_idx"]

FOLDER_DATASETS = ("mnist", "fashion-mnist")
"""The data sets read from a folder of IDX files."""

DATASETS = ("digits", *FOLDER_DATASETS, *(f"{name}-t10k" for name in FOLDER_DATASETS),
            "npz:PATH")
"""Every name :func:`load_dataset` takes (``npz:`` followed by a file's path)."""


def default_data_dir() -> Path:
    """Where folder data sets are looked for without ``--data-dir``:
    ``$XDG_CACHE_HOME/hilt/datasets`` (``~/.cache/hilt/datasets``), one folder a data set."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "hilt" / "datasets"


def data_folder(name: str, data_dir: str | Path | None) -> Path:
    """The folder the files of ``name`` are read from: ``data_dir`` itself where given,
    else the data set's folder in :func:`default_data_dir`."""
    if data_dir is not None:
        return Path(data_dir)
    return default_data_dir() / name.removesuffix("-t10k")


def load_dataset(name: str, data_dir: str | Path | None = None, seed: int = 0) -> Dataset:
    """The data set called ``name`` (one of :data:`DATASETS`).

    ``seed`` picks the split where the data set has none of its own (the digits);
    ``data_dir`` is the folder of a folder data set.

    Raises
    ------
    DatasetError
        An unknown name, a missing or malformed file, or values no trainer can take.
    """
    if data_dir is not None and name.removesuffix("-t10k") not in FOLDER_DATASETS:
        raise DatasetError(f"a data directory ({data_dir}) is for "
                           f"{', '.join(FOLDER_DATASETS)} and their -t10k splits; {name!r} "
                           f"takes none")
    if name == "digits":
        return load_digits(seed)
    if name.startswith("npz:") and len(name) > len("npz:"):
        return load_npz(Path(name.removeprefix("npz:")).expanduser(), name)
    if name in FOLDER_DATASETS:
        return load_idx_folder(name, data_folder(name, data_dir))
    if name.removesuffix("-t10k") in FOLDER_DATASETS:
        return load_idx_test_split(name, data_folder(name, data_dir))
    raise DatasetError(f"dataset must be one of {', '.join(DATASETS)}, got {name!r}")
