"""The shift-and-add golden model against Brevitas' float layers, bit for bit."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from brevitas.nn import QuantConv2d, QuantLinear
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hilt.quant.pow2_export import PowerOfTwoWeights, encode_pow2_weights, export_pow2_weights
from hilt.quant.pow2_format import PowerOfTwoFormat
from hilt.quant.pow2_quant import PowerOfTwoWeightQuant
from hilt.quant.shift_golden import im2col, shift_conv2d, shift_matmul, worst_case_magnitude

EXP_BITS = [1, 2, 3, 4]
X_EXP = -3  # float input = integer input * 2^X_EXP


def _int_inputs(rng, shape, bits=5):
    return rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=shape, dtype=np.int64)


def _to_float(x_int):
    return torch.from_numpy(np.ldexp(x_int.astype(np.float32), X_EXP))


def _scaled(y_int, weights):
    return np.ldexp(y_int.astype(np.float64), weights.scale_exp + X_EXP)


@pytest.mark.parametrize("exp_bits", EXP_BITS)
def test_shift_matmul_equals_quant_linear(exp_bits):
    torch.manual_seed(exp_bits)
    rng = np.random.default_rng(exp_bits)
    layer = QuantLinear(
        24, 10, bias=False, weight_quant=PowerOfTwoWeightQuant, weight_exp_bits=exp_bits
    ).eval()
    weights = export_pow2_weights(layer)
    x_int = _int_inputs(rng, (32, 24))
    with torch.no_grad():
        expected = layer(_to_float(x_int)).double().numpy()
    assert worst_case_magnitude(weights, 16) <= 1 << 24  # float32 sums of the layer are exact
    assert np.array_equal(_scaled(shift_matmul(weights, x_int), weights), expected)


@pytest.mark.parametrize("exp_bits", EXP_BITS)
@pytest.mark.parametrize(
    ("kernel", "stride", "padding"), [(3, 1, 0), (3, 2, 1), ((2, 3), (1, 2), (1, 0))]
)
def test_shift_conv2d_equals_quant_conv2d(exp_bits, kernel, stride, padding):
    torch.manual_seed(exp_bits)
    rng = np.random.default_rng(exp_bits)
    layer = QuantConv2d(
        3,
        4,
        kernel,
        stride=stride,
        padding=padding,
        bias=False,
        weight_quant=PowerOfTwoWeightQuant,
        weight_exp_bits=exp_bits,
    ).eval()
    weights = export_pow2_weights(layer)
    x_int = _int_inputs(rng, (2, 3, 7, 6))
    with torch.no_grad():
        expected = layer(_to_float(x_int)).double().numpy()
    got = shift_conv2d(weights, x_int, stride=stride, padding=padding)
    assert got.shape == expected.shape
    assert np.array_equal(_scaled(got, weights), expected)


@st.composite
def weights_and_inputs(draw):
    fmt = PowerOfTwoFormat(draw(st.integers(1, 4)))
    rows, depth, batch = draw(st.integers(1, 6)), draw(st.integers(1, 9)), draw(st.integers(0, 5))
    exp = draw(hnp.arrays(np.uint8, (rows, depth), elements=st.integers(0, fmt.zero_code)))
    zero = exp == fmt.zero_code
    signs = draw(hnp.arrays(np.uint8, (rows, depth), elements=st.integers(0, 1)))
    weights = PowerOfTwoWeights(fmt, np.where(zero, 0, signs).astype(np.uint8), exp, zero, 0)
    limit = 1 << 40
    x = draw(hnp.arrays(np.int64, (batch, depth), elements=st.integers(-limit, limit)))
    return weights, x


@settings(max_examples=200, deadline=None)
@given(case=weights_and_inputs())
def test_shift_matmul_equals_integer_matmul(case):
    weights, x = case
    assert np.array_equal(shift_matmul(weights, x), x @ weights.int_weights().T)


def test_im2col_orders_patches_like_torch_unfold():
    rng = np.random.default_rng(0)
    x = _int_inputs(rng, (2, 3, 6, 5))
    got = im2col(x, (3, 2), stride=(2, 1), padding=(1, 1))
    cols = F.unfold(torch.from_numpy(x).double(), (3, 2), stride=(2, 1), padding=(1, 1))
    n, ho, wo, depth = got.shape
    assert np.array_equal(got.reshape(n, ho * wo, depth), cols.transpose(1, 2).numpy())


def test_overflow_is_refused_at_the_exact_int64_limit():
    one = encode_pow2_weights([[1.0]], 1)  # integer weight 1
    top = np.iinfo(np.int64).max
    assert shift_matmul(one, np.array([[top]])).tolist() == [[top]]
    two = encode_pow2_weights([[1.0, 1.0]], 1)
    with pytest.raises(ValueError, match=r"shift_matmul could overflow int64: \|y\| can reach"):
        shift_matmul(two, np.array([[top, 0]]))
    wide = encode_pow2_weights([[1.0, 2.0**-4]], 3)  # integer weights 64 and 4
    with pytest.raises(ValueError, match=r"max \|x\| = 2\^57|max \|x\| = 144115188075855872"):
        shift_matmul(wide, np.array([[0, -(1 << 57)]]))


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.ones((2, 2)), r"x must be an integer array .* got dtype float64"),
        (
            np.ones((2, 3), np.int64),
            r"x must have shape \(N, 2\) for weights \(1, 2\), got \(2, 3\)",
        ),
        (np.ones(2, np.int64), r"x must have shape \(N, 2\)"),
        (np.array([[2**63, 0]], np.uint64), r"x has a value above int64: 9223372036854775808"),
    ],
)
def test_shift_matmul_refuses_bad_activations(x, match):
    weights = encode_pow2_weights([[1.0, -0.5]], 2)
    with pytest.raises(ValueError, match=match):
        shift_matmul(weights, x)


def test_shift_conv2d_refuses_bad_arguments():
    conv = encode_pow2_weights(np.ones((2, 3, 3, 3)), 2)
    x = np.zeros((1, 3, 4, 4), np.int64)
    with pytest.raises(ValueError, match=r"conv weights must have shape \(M, C, kh, kw\)"):
        shift_conv2d(encode_pow2_weights(np.ones((2, 3)), 2), x)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 3, H, W\)"):
        shift_conv2d(conv, np.zeros((1, 2, 4, 4), np.int64))
    with pytest.raises(ValueError, match=r"stride must be an int >= 1 or a pair of them, got 0"):
        shift_conv2d(conv, x, stride=0)
    with pytest.raises(ValueError, match=r"padding must be an int >= 0"):
        shift_conv2d(conv, x, padding=(-1, 0))
    with pytest.raises(ValueError, match=r"kernel 3x3 is larger than the padded input 2x2"):
        shift_conv2d(conv, np.zeros((1, 3, 2, 2), np.int64))
