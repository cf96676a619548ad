"""The data sets hilt's examples and end-to-end proofs run on, with no download.

scikit-learn bundles the 8x8 digits (1797 images, pixel values 0..16), which is small
enough to train on in seconds on a CPU and whose pixels are already integers, so they
feed the integer golden model and the RTL unchanged.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

DIGITS_PIXEL_MAX = 16
"""Digits pixels are integers 0..16 (5 bits unsigned)."""

DIGITS_BLANK_PIXELS = (0, 8, 16, 24, 32, 40, 48, 56, 31, 39)
"""The ten digits pixels that carry (almost) no ink: the whole left column and two of the
right one. Over all 1797 images each has a variance of at most 0.04 (of 0..16 pixels),
the next one 0.09; a label written into them, as Forward-Forward does in the blank
border of MNIST, costs the image nothing and keeps an input 64 wide."""


class DigitsSplit(NamedTuple):
    """A train/test split of the digits: pixels int64 (N, 64) in 0..16, labels int64 (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits_split(seed: int = 0, test_fraction: float = 0.2) -> DigitsSplit:
    """A fixed stratified split of scikit-learn's digits.

    Parameters
    ----------
    seed
        Seed of the shuffle; the same seed gives the same split.
    test_fraction
        Share of the images held out, in (0, 1).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    digits = load_digits()
    pixels = digits.data.astype(np.int64)
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        pixels, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    return DigitsSplit(x_train, y_train, x_test, y_test)
