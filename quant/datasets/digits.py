"""scikit-learn's 8x8 digits: bundled with the install, so every example runs with no
download. 1797 images whose pixels are already integers 0..16, so they feed the integer
golden model and the RTL unchanged."""

from __future__ import annotations

import numpy as np

from .dataset import Dataset

DIGITS_PIXEL_MAX = 16
"""Digits pixels are integers 0..16 (5 bits unsigned)."""


def load_digits(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """A fixed stratified split of the digits; the same seed gives the same split.

    Parameters
    ----------
    seed
        Seed of the shuffle.
    test_fraction
        Share of the images held out, in (0, 1).
    """
    from sklearn.datasets import load_digits as bundled
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    digits = bundled()
    pixels = digits.data.astype(np.int64)
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        pixels, labels, test_size=test_fraction, random_state=seed, stratify=labels)
    return Dataset("digits", x_train, y_train, x_test, y_test, 0.0, float(DIGITS_PIXEL_MAX),
                   10, "scikit-learn (bundled)")
