"""A researcher's own data set as one ``.npz`` file: ``x_train``, ``y_train``, ``x_test``,
``y_test``, any number of features and classes, integer or float features.

Two optional keys state what would otherwise be read off the data: ``x_range`` (two
numbers, the feature values that map to 0 and 1) and ``classes`` (the class count, where
some class is absent from both parts). Without ``x_range`` the range runs from the
smaller of 0 and the least feature to the greatest feature of both parts.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .dataset import Dataset, DatasetError, as_labels

KEYS = ("x_train", "y_train", "x_test", "y_test")
"""The arrays an npz data set must hold."""


def load_npz(path: Path, name: str | None = None) -> Dataset:
    """The data set in the ``.npz`` file ``path``; a :class:`DatasetError` naming the file
    and the key for a missing key or a value no trainer can take."""
    name = name or f"npz:{path}"
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise DatasetError(f"{name}: no such file {path}") from None
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise DatasetError(f"{name}: {path} is not a readable .npz file ({error})") from None
    missing = [key for key in KEYS if key not in arrays]
    if missing:
        raise DatasetError(f"{name}: {path} lacks the key {', '.join(missing)}; an npz data "
                           f"set holds {', '.join(KEYS)} (and optionally x_range, classes)")
    x_train, x_test = (_features(name, key, arrays[key]) for key in ("x_train", "x_test"))
    y_train, y_test = (as_labels(name, key, arrays[key]) for key in ("y_train", "y_test"))
    classes = _classes(name, arrays.get("classes"), y_train, y_test)
    if "x_range" in arrays:
        low, high = _range(name, arrays["x_range"])
        range_from = "stated"
    else:
        both = np.concatenate([x_train.ravel(), x_test.ravel()])
        finite = both[np.isfinite(both)] if both.dtype.kind == "f" else both
        low = min(0.0, float(finite.min())) if finite.size else 0.0
        high = float(finite.max()) if finite.size else 1.0
        range_from = "inferred"
    return Dataset(name, x_train, y_train, x_test, y_test, low, high, classes, str(path),
                   range_from)


def _features(name: str, key: str, values: np.ndarray) -> np.ndarray:
    """Samples flattened to (N, F); integer or float features only."""
    if values.dtype.kind not in "uif" or values.ndim < 2:
        raise DatasetError(f"{name}: {key} must be a numeric array of shape (samples, "
                           f"features, ...), got shape {values.shape} of {values.dtype}")
    return values.reshape(len(values), -1)


def _classes(name: str, stated: np.ndarray | None, y_train: np.ndarray,
             y_test: np.ndarray) -> int:
    """The stated class count, or one more than the greatest label."""
    if stated is None:
        return int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    if stated.shape != () or stated.dtype.kind not in "ui":
        raise DatasetError(f"{name}: classes must be one integer, got {stated!r}")
    return int(stated)


def _range(name: str, stated: np.ndarray) -> tuple[float, float]:
    """The stated feature range, two finite numbers, low below high."""
    if stated.shape != (2,) or stated.dtype.kind not in "uif" or \
            not np.isfinite(stated.astype(np.float64)).all() or not stated[1] > stated[0]:
        raise DatasetError(f"{name}: x_range must be two finite numbers low < high, got "
                           f"{stated.tolist()!r}")
    return float(stated[0]), float(stated[1])
