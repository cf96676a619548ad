"""The digits split: integer pixels, a stratified and reproducible split."""

import numpy as np
import pytest

from hilt.quant.datasets import DIGITS_PIXEL_MAX, load_digits_split


def test_digits_split_is_integer_pixels_and_labels():
    split = load_digits_split()
    assert split.x_train.shape == (1437, 64) and split.x_test.shape == (360, 64)
    assert split.x_train.dtype == np.int64 and split.y_train.dtype == np.int64
    pixels = np.concatenate([split.x_train, split.x_test])
    assert pixels.min() == 0 and pixels.max() == DIGITS_PIXEL_MAX
    assert set(np.unique(split.y_test)) == set(range(10))


def test_digits_split_is_stratified_and_reproducible():
    split = load_digits_split(seed=3, test_fraction=0.25)
    train_share = np.bincount(split.y_train) / len(split.y_train)
    test_share = np.bincount(split.y_test) / len(split.y_test)
    assert np.abs(train_share - test_share).max() < 0.01
    again = load_digits_split(seed=3, test_fraction=0.25)
    assert all(np.array_equal(a, b) for a, b in zip(split, again, strict=True))
    other = load_digits_split(seed=4, test_fraction=0.25)
    assert not np.array_equal(split.y_test, other.y_test)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_digits_split_refuses_a_bad_fraction(fraction):
    with pytest.raises(ValueError, match=r"test_fraction must be in \(0, 1\)"):
        load_digits_split(test_fraction=fraction)
