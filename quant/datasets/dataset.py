"""The one data-set type every trainer takes: a train/test split of flat feature vectors
with integer class labels, and the range that maps its features onto [0, 1]."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


class DatasetError(ValueError):
    """A data set that cannot be loaded or used: a missing file, a malformed one, values
    a trainer cannot take. The message is one line naming the file, key or value."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split: features (N, F), integer or float, and labels int64 (N,) in
    ``0..classes-1``.

    Attributes
    ----------
    name
        What ``--dataset`` called it (``digits``, ``mnist``, ``npz:PATH``).
    x_train, y_train, x_test, y_test
        Features and labels of the two parts.
    low, high
        The feature value that maps to 0 and the one that maps to 1 (:meth:`scaled`).
    classes
        The number of classes.
    source
        Where the data came from (a folder, a file, or the package that bundles it).
    range_from
        ``stated`` where the range is part of the format or the file, ``inferred`` where
        it was read off the data.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    low: float
    high: float
    classes: int
    source: str
    range_from: str = "stated"
    _scaled: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        check_parts(self.name, self.x_train, self.y_train, self.x_test, self.y_test,
                    self.classes)
        if not (np.isfinite(self.low) and np.isfinite(self.high) and self.high > self.low):
            raise DatasetError(f"{self.name}: the feature range must be finite with high > "
                               f"low, got {self.low!r}..{self.high!r}")

    @property
    def features(self) -> int:
        """Features per sample, ``F``."""
        return int(self.x_train.shape[1])

    def scaled(self, part: str) -> np.ndarray:
        """The features of ``part`` (``train`` or ``test``) as float32 mapped onto [0, 1]
        by the range, clipped to it."""
        if part not in ("train", "test"):
            raise ValueError(f"part must be 'train' or 'test', got {part!r}")
        if part not in self._scaled:
            raw = self.x_train if part == "train" else self.x_test
            unit = (raw.astype(np.float64) - self.low) / (self.high - self.low)
            self._scaled[part] = np.clip(unit, 0.0, 1.0).astype(np.float32)
        return self._scaled[part]

    def blank_features(self, count: int) -> tuple[int, ...]:
        """The ``count`` features that vary least over the training images, in index
        order: where a label can be written without covering the image, as
        Forward-Forward writes it into MNIST's blank border."""
        if not 1 <= count <= self.features:
            raise DatasetError(f"{self.name}: {count} blank features asked of "
                               f"{self.features}; accepted 1..{self.features}")
        spread = self.scaled("train").var(axis=0)
        return tuple(sorted(int(i) for i in np.argsort(spread, kind="stable")[:count]))

    def subset(self, train: int | None = None, test: int | None = None) -> Dataset:
        """The same data set cut to its first ``train`` training and ``test`` test samples."""
        return Dataset(self.name, self.x_train[:train], self.y_train[:train],
                       self.x_test[:test], self.y_test[:test], self.low, self.high,
                       self.classes, self.source, self.range_from)

    def describe(self) -> dict[str, Any]:
        """What a run's results record of its data set."""
        return {"name": self.name, "source": self.source, "features": self.features,
                "classes": self.classes, "train": len(self.y_train), "test": len(self.y_test),
                "range": [self.low, self.high], "range_from": self.range_from,
                "dtype": str(self.x_train.dtype)}


def check_parts(name: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                y_test: np.ndarray, classes: int) -> None:
    """Refuse parts a trainer cannot take, naming the part and what would be accepted."""
    if classes < 2:
        raise DatasetError(f"{name}: a classifier needs at least 2 classes, got {classes}")
    for part, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.ndim != 2 or x.shape[1] < 1:
            raise DatasetError(f"{name}: x_{part} must be 2-D (samples, features), got shape "
                               f"{x.shape}")
        if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
            raise DatasetError(f"{name}: x_{part} must hold integer or float features, got "
                               f"{x.dtype}")
        if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            bad = np.argwhere(~np.isfinite(x))[0]
            raise DatasetError(f"{name}: x_{part} holds a NaN or infinite feature (sample "
                               f"{bad[0]}, feature {bad[1]}); every feature must be finite")
        if y.shape != (x.shape[0],):
            raise DatasetError(f"{name}: y_{part} must hold one label per sample, "
                               f"{x.shape[0]}, got shape {y.shape}")
        if y.dtype != np.int64:
            raise DatasetError(f"{name}: y_{part} must be int64 labels, got {y.dtype}")
        if len(y) == 0:
            raise DatasetError(f"{name}: the {part} part is empty")
        if y.min() < 0 or y.max() >= classes:
            wrong = y[(y < 0) | (y >= classes)][0]
            raise DatasetError(f"{name}: y_{part} holds the label {wrong}; accepted "
                               f"0..{classes - 1}")
    if x_train.shape[1] != x_test.shape[1]:
        raise DatasetError(f"{name}: x_train has {x_train.shape[1]} features and x_test "
                           f"{x_test.shape[1]}; both parts need the same")


def as_labels(name: str, key: str, values: np.ndarray) -> np.ndarray:
    """``values`` as int64 class labels, refusing fractions and non-numbers."""
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    if values.dtype.kind == "f" and np.isfinite(values).all() and \
            np.array_equal(values, np.round(values)):
        return values.astype(np.int64)
    raise DatasetError(f"{name}: {key} must hold integer class labels, got {values.dtype} "
                       f"values such as {values.ravel()[:3].tolist()}")
