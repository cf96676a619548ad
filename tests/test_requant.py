"""Integer requantisation against torch.round and Brevitas' QuantReLU, exactly."""

import numpy as np
import pytest
import torch
from brevitas.nn import QuantReLU
from brevitas.quant import Uint8ActPerTensorFixedPointMaxInit
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hilt.quant.pow2_export import scale_exponent
from hilt.quant.requant import ReluRequant, requantize_relu, round_shift_right


@settings(max_examples=300, deadline=None)
@given(
    x=hnp.arrays(np.int64, st.integers(0, 20), elements=st.integers(-(2**45), 2**45)),
    shift=st.integers(0, 50),
)
def test_round_shift_right_is_torch_round_of_the_quotient(x, shift):
    # float64 holds these quotients exactly, so torch.round is the reference.
    expected = torch.round(torch.from_numpy(x).double() / 2.0**shift).long().numpy()
    assert np.array_equal(round_shift_right(x, shift), expected)


def test_round_shift_right_ties_go_to_even():
    x = np.array([-7, -5, -3, -1, 1, 3, 5, 7, 6])
    assert round_shift_right(x, 1).tolist() == [-4, -2, -2, 0, 0, 2, 2, 4, 3]
    assert round_shift_right(np.array([-6, -2, 2, 6, 10]), 2).tolist() == [-2, 0, 0, 2, 2]


def test_round_shift_right_at_the_int64_edges():
    low, high = np.iinfo(np.int64).min, np.iinfo(np.int64).max
    x = np.array([low, high, -1, 1])
    assert round_shift_right(x, 63).tolist() == [-1, 1, 0, 0]
    assert round_shift_right(x, 64).tolist() == [0, 0, 0, 0]
    assert round_shift_right(x, 0).tolist() == x.tolist()


def _pow2_relu(act_bits, out_exp):
    # Brevitas' scale = 2^round(log2 max_val) / 2^act_bits, so this max_val gives 2^out_exp.
    relu = QuantReLU(
        act_quant=Uint8ActPerTensorFixedPointMaxInit,
        bit_width=act_bits,
        max_val=2.0 ** (out_exp + act_bits),
    ).eval()
    assert scale_exponent(relu.act_quant.scale()) == out_exp
    return relu


@pytest.mark.parametrize("act_bits", [2, 4, 7])
@pytest.mark.parametrize(("acc_exp", "out_exp"), [(-10, -4), (-6, -6), (-5, -3), (-4, -7), (0, -2)])
def test_requantize_relu_equals_brevitas_quant_relu(act_bits, acc_exp, out_exp):
    rng = np.random.default_rng(act_bits)
    span = 1 << (out_exp - acc_exp + act_bits + 1) if out_exp > acc_exp else 1 << (act_bits + 1)
    acc = rng.integers(-span, span, size=2000)
    acc[:4] = [0, -1, span - 1, 1 << max(0, out_exp - acc_exp - 1)]  # includes a tie
    relu = _pow2_relu(act_bits, out_exp)
    with torch.no_grad():
        out = relu(torch.from_numpy(np.ldexp(acc.astype(np.float32), acc_exp)))
    expected = (out.double() / 2.0**out_exp).numpy()
    got = requantize_relu(acc, acc_exp, out_exp, act_bits)
    assert np.array_equal(got, expected)
    assert np.array_equal(ReluRequant(acc_exp, out_exp, act_bits)(acc), got)


def test_left_shift_saturates_without_overflow():
    acc = np.array([0, 1, 2, -5, 1 << 62, np.iinfo(np.int64).max])
    assert requantize_relu(acc, 0, -60, 7).tolist() == [0, 127, 127, 0, 127, 127]
    assert requantize_relu(acc, 0, -3, 7).tolist() == [0, 8, 16, 0, 127, 127]


def test_relu_requant_parameters():
    requant = ReluRequant(acc_exp=-10, out_exp=-4, act_bits=7)
    assert (requant.shift, requant.max_value) == (6, 127)
    assert ReluRequant(acc_exp=-2, out_exp=-5, act_bits=3).shift == -3


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: round_shift_right(np.array([1]), -1), r"shift must be an int >= 0, got -1"),
        (lambda: round_shift_right(np.array([1.5]), 1), r"x must be an integer array"),
        (lambda: requantize_relu(np.array([1.0]), 0, 0, 4), r"acc must be an integer array"),
        (lambda: requantize_relu(np.array([1]), 0, 0, 0), r"act_bits must be in 1\.\.62, got 0"),
        (lambda: requantize_relu(np.array([1]), 0.5, 0, 4), r"acc_exp must be an int, got 0\.5"),
    ],
)
def test_requant_refuses_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
