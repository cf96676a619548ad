"""The XNOR-popcount-compare golden model: counts, thresholds, logic gates and refusals."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hilt.quant.binary_golden import (
    as_bits,
    check_thresholds,
    magnitude_sums,
    popcount_matches,
    signed_sums,
    threshold_layer,
)


def _signed(bits):
    return 2 * bits.astype(np.int64) - 1


def test_popcount_counts_matching_positions():
    x = np.array([[1, 0, 1, 1], [0, 0, 0, 0]], np.uint8)
    w = np.array([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 1, 1]], np.uint8)
    assert popcount_matches(x, w).tolist() == [[4, 1, 3], [1, 2, 0]]
    assert signed_sums(x, w).tolist() == [[4, -2, 2], [-2, 0, -4]]
    assert popcount_matches(x, w).dtype == np.int64


def test_magnitudes_weight_each_match():
    x = np.array([[1, 0, 1]], np.uint8)
    w = np.array([[1, 1, 1], [0, 0, 0]], np.uint8)
    m = np.array([[2, 0, 3], [1, 4, 1]])
    assert magnitude_sums(w, m).tolist() == [5, 6]
    assert popcount_matches(x, w, m).tolist() == [[5, 4]]
    # +2*(+1) + 0*(-1) + 3*(+1) = 5 and -1 + 4 - 1 = 2.
    assert signed_sums(x, w, m).tolist() == [[5, 2]]
    assert threshold_layer(x, w, [5, 5], m).tolist() == [[1, 0]]


@st.composite
def layers(draw, magnitudes=True):
    batch, rows, depth = draw(st.integers(0, 6)), draw(st.integers(1, 6)), draw(st.integers(0, 40))
    bits = st.integers(0, 1)
    x = draw(hnp.arrays(np.uint8, (batch, depth), elements=bits))
    w = draw(hnp.arrays(np.uint8, (rows, depth), elements=bits))
    m = (
        draw(hnp.arrays(np.int64, (rows, depth), elements=st.integers(0, 7)))
        if magnitudes and draw(st.booleans())
        else None
    )
    return x, w, m


@settings(max_examples=300, deadline=None)
@given(case=layers())
def test_signed_sum_is_the_dot_product_of_signs(case):
    x, w, m = case
    weights = np.ones(w.shape, np.int64) if m is None else m
    counts = popcount_matches(x, w, m)
    # An independent route: multiply +-1 values instead of counting XNORs.
    assert np.array_equal(signed_sums(x, w, m), _signed(x) @ (weights * _signed(w)).T)
    assert np.array_equal(2 * counts - weights.sum(axis=1), signed_sums(x, w, m))
    assert ((counts >= 0) & (counts <= weights.sum(axis=1))).all()


@settings(max_examples=300, deadline=None)
@given(case=layers(), data=st.data())
def test_threshold_layer_compares_the_count(case, data):
    x, w, m = case
    sums = magnitude_sums(w, m)
    thresholds = np.array([data.draw(st.integers(0, int(s) + 1)) for s in sums])
    y = threshold_layer(x, w, thresholds, m)
    assert y.dtype == np.uint8 and y.shape == (x.shape[0], w.shape[0])
    assert np.array_equal(y, popcount_matches(x, w, m) >= thresholds)
    assert (threshold_layer(x, w, np.zeros_like(sums), m) == 1).all()  # T = 0 always fires
    assert (threshold_layer(x, w, sums + 1, m) == 0).all()  # T = S + 1 never does


@pytest.mark.parametrize("fan_in", [1, 3, 5])
def test_one_cell_is_and_or_majority(fan_in):
    x = np.array(list(itertools.product([0, 1], repeat=fan_in)), np.uint8)
    ones = np.ones((1, fan_in), np.uint8)
    gates = {
        fan_in: x.all(axis=1),  # AND
        1: x.any(axis=1),  # OR
        (fan_in + 1) // 2: x.sum(axis=1) > fan_in // 2,  # MAJ (odd fan-in)
    }
    for threshold, expected in gates.items():
        assert np.array_equal(threshold_layer(x, ones, [threshold])[:, 0], expected)
    # Weight bit 0 inverts its input: XNOR(x, 0) = NOT x, so T = fan_in is NOR.
    nor = threshold_layer(x, np.zeros_like(ones), [fan_in])[:, 0]
    assert np.array_equal(nor, ~x.any(axis=1))


def test_bool_bits_and_large_batches_are_accepted():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, size=(70_000, 64)).astype(bool)  # more rows than one chunk
    w = rng.integers(0, 2, size=(2, 64), dtype=np.uint8)
    expected = _signed(x) @ _signed(w).T
    assert np.array_equal(signed_sums(x, w), expected)
    assert as_bits(x).dtype == np.uint8


@pytest.mark.parametrize(
    ("x", "w", "m", "match"),
    [
        (
            np.array([[1, 2]]),
            np.ones((1, 2), np.uint8),
            None,
            r"x_bits\[0, 1\] = 2 is not a bit: expected 0 \(-1\) or 1 \(\+1\)",
        ),
        (
            np.ones((1, 2)),
            np.ones((1, 2), np.uint8),
            None,
            r"x_bits must be an integer or bool array of bits .* got dtype float64",
        ),
        (
            np.ones((1, 2), np.uint8),
            np.array([[0, -1]]),
            None,
            r"w_bits\[0, 1\] = -1 is not a bit",
        ),
        (np.ones(2, np.uint8), np.ones((1, 2), np.uint8), None, r"x_bits must have shape \(N, K\)"),
        (
            np.ones((3, 2), np.uint8),
            np.ones((1, 3), np.uint8),
            None,
            r"w_bits must have shape \(M, 2\) to match x_bits \(3, 2\), got \(1, 3\)",
        ),
        (
            np.ones((1, 2), np.uint8),
            np.ones((1, 2), np.uint8),
            np.array([[1, -3]]),
            r"magnitudes\[0, 1\] = -3 is negative",
        ),
        (
            np.ones((1, 2), np.uint8),
            np.ones((1, 2), np.uint8),
            np.ones(2, np.int64),
            r"magnitudes must have the shape of w_bits \(1, 2\) \(one per weight\), got \(2,\)",
        ),
        (
            np.ones((1, 2), np.uint8),
            np.ones((1, 2), np.uint8),
            np.ones((1, 2)),
            r"magnitudes must be an integer array, got dtype float64",
        ),
        (
            np.ones((1, 2), np.uint8),
            np.ones((1, 2), np.uint8),
            np.array([[2**62, 1]]),
            r"magnitudes up to 4611686018427387904 over a fan-in of 2 could overflow int64",
        ),
    ],
)
def test_popcount_refuses_bad_operands(x, w, m, match):
    with pytest.raises(ValueError, match=match):
        popcount_matches(x, w, m)


@pytest.mark.parametrize(
    ("thresholds", "match"),
    [
        (
            [0, 6, 3],
            r"layer 2 thresholds\[1\] = 6 is out of range for neuron 1: expected 0\.\.5 "
            r"\(0 always fires, 5 = sum of magnitudes \+ 1 never fires\)",
        ),
        ([0, 0, -1], r"layer 2 thresholds\[2\] = -1 is out of range for neuron 2: expected 0\.\.5"),
        (np.array([0, 0, 2**64 - 1], np.uint64), r"thresholds\[2\] = 18446744073709551615"),
        ([0.0, 1.0, 2.0], r"layer 2 thresholds must be an integer array, got dtype float64"),
        ([1, 2], r"layer 2 thresholds must have shape \(3,\) \(one per neuron\), got \(2,\)"),
    ],
)
def test_thresholds_out_of_range_name_the_neuron(thresholds, match):
    x = np.ones((1, 4), np.uint8)
    w = np.ones((3, 4), np.uint8)
    with pytest.raises(ValueError, match=match):
        threshold_layer(x, w, thresholds, name="layer 2 thresholds")


def test_threshold_range_follows_the_magnitudes():
    w = np.ones((2, 3), np.uint8)
    m = np.array([[1, 1, 1], [3, 0, 4]])
    assert check_thresholds([4, 8], magnitude_sums(w, m)).tolist() == [4, 8]
    with pytest.raises(ValueError, match=r"thresholds\[0\] = 5 .* expected 0\.\.4"):
        threshold_layer(np.zeros((1, 3), np.uint8), w, [5, 8], m)
