"""The power-of-two weight quantizer: its values, its scale, its QuantTensor, its gradient."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from brevitas.nn import QuantConv2d, QuantLinear
from hypothesis import given, settings
from hypothesis import strategies as st

from hilt.quant.pow2_format import PowerOfTwoFormat
from hilt.quant.pow2_quant import PowerOfTwoWeightQuant, pow2_round_ste, round_log2

EXP_BITS = [1, 2, 3, 4]


def _layers(exp_bits):
    torch.manual_seed(exp_bits)
    return [
        QuantLinear(
            16, 8, bias=False, weight_quant=PowerOfTwoWeightQuant, weight_exp_bits=exp_bits
        ),
        QuantConv2d(3, 5, 3, bias=False, weight_quant=PowerOfTwoWeightQuant.let(exp_bits=exp_bits)),
    ]


def _is_pow2(value: float) -> bool:
    return value > 0 and math.frexp(value)[0] == 0.5


@pytest.mark.parametrize("exp_bits", EXP_BITS)
def test_quant_weight_is_consistent(exp_bits):
    fmt = PowerOfTwoFormat(exp_bits)
    allowed = {0} | {s * (1 << k) for k in range(fmt.max_exp + 1) for s in (1, -1)}
    for layer in _layers(exp_bits):
        qw = layer.quant_weight()
        assert qw.signed
        assert qw.bit_width.item() == fmt.max_exp + 2
        assert qw.scale.numel() == 1 and _is_pow2(qw.scale.item())
        ints = qw.int()
        assert torch.equal(qw.value, ints.to(qw.value.dtype) * qw.scale)
        assert set(ints.unique().tolist()) <= allowed
        # S = scale * 2^max_exp is the power of two nearest max |w| in the log domain,
        # and the largest weight gets the top magnitude S (exponent code 0).
        pow2_scale = qw.scale.item() * 2.0**fmt.max_exp
        max_abs = layer.weight.abs().max().item()
        assert (
            Fraction(pow2_scale) ** 2 / 2 < Fraction(max_abs) ** 2 < 2 * Fraction(pow2_scale) ** 2
        )
        assert qw.value.abs().max().item() == pow2_scale


@pytest.mark.parametrize(
    ("max_abs", "pow2_scale"),
    [
        (0.3, 0.25),
        (0.36, 0.5),
        (0.7, 0.5),
        (0.71, 1.0),
        (1.0, 1.0),
        (1.9, 2.0),
        (2.0**-20 * 1.3, 2.0**-20),
        (2.0**10 * 1.5, 2.0**11),
    ],
)
def test_scale_is_the_power_of_two_nearest_max_abs(max_abs, pow2_scale):
    layer = QuantLinear(4, 2, bias=False, weight_quant=PowerOfTwoWeightQuant)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.1, -1.0, 0.5, 0.0], [0.25, 0.9, -0.2, 0.3]]) * max_abs)
    qw = layer.quant_weight()
    assert qw.scale.item() * 2.0 ** PowerOfTwoFormat(3).max_exp == pow2_scale
    assert qw.value.abs().max().item() == pow2_scale


def test_flush_to_zero_at_half_the_smallest_magnitude():
    for max_exp in (0, 2, 6):
        half = torch.tensor(2.0 ** -(max_exp + 1))
        just_above = torch.nextafter(half, torch.tensor(1.0))
        got = pow2_round_ste(torch.stack([half, just_above, -just_above]), max_exp)
        assert got.tolist() == [0.0, 2.0**-max_exp, -(2.0**-max_exp)]


def test_exp_bits_by_let_and_by_keyword_agree():
    torch.manual_seed(0)
    by_let = QuantLinear(16, 8, bias=False, weight_quant=PowerOfTwoWeightQuant.let(exp_bits=2))
    by_keyword = QuantLinear(
        16, 8, bias=False, weight_quant=PowerOfTwoWeightQuant, weight_exp_bits=2
    )
    by_keyword.load_state_dict(by_let.state_dict())
    assert by_let.weight_quant.tensor_quant.fmt == PowerOfTwoFormat(2)
    assert torch.equal(by_let.quant_weight().value, by_keyword.quant_weight().value)
    default = QuantLinear(16, 8, bias=False, weight_quant=PowerOfTwoWeightQuant)
    assert default.weight_quant.tensor_quant.fmt == PowerOfTwoFormat(3)


def test_bad_exp_bits_is_refused_when_the_layer_is_built():
    with pytest.raises(ValueError, match=r"exp_bits must be in 1\.\.6"):
        QuantLinear(4, 4, bias=False, weight_quant=PowerOfTwoWeightQuant, weight_exp_bits=7)


@pytest.mark.parametrize("exp_bits", EXP_BITS)
def test_quantizing_quantized_weights_changes_nothing(exp_bits):
    for layer in _layers(exp_bits):
        before = layer.quant_weight().value.detach().clone()
        with torch.no_grad():
            layer.weight.copy_(before)
        assert torch.equal(layer.quant_weight().value, before)


def _expected_level(r: float, max_exp: int) -> float:
    """Nearest level of |r| in the log domain, by exact rational arithmetic."""
    magnitude = Fraction(abs(r))
    if magnitude <= Fraction(1, 2 ** (max_exp + 1)):
        return 0.0
    k = 0  # find k with 2^-(k+1) < magnitude <= 2^-k, k may be negative
    while magnitude <= Fraction(1, 2) ** (k + 1):
        k += 1
    while magnitude > Fraction(2) ** (-k):
        k -= 1
    # log2 |r| rounds up to -k exactly when |r| > 2^-(k+1/2), i.e. |r|^2 > 2^-(2k+1).
    e = k if magnitude**2 > Fraction(2) ** (-(2 * k + 1)) else k + 1
    e = min(max(e, 0), max_exp)
    return math.copysign(2.0**-e, r)


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(
        st.floats(min_value=-2.0, max_value=2.0, allow_nan=False, width=32),
        min_size=1,
        max_size=32,
    ),
    exp_bits=st.integers(1, 4),
)
def test_rounding_is_the_nearest_level_in_the_log_domain(values, exp_bits):
    max_exp = PowerOfTwoFormat(exp_bits).max_exp
    r = torch.tensor(values, dtype=torch.float32)
    got = pow2_round_ste(r, max_exp).tolist()
    assert got == [_expected_level(v, max_exp) for v in values]


def test_round_log2_is_exact_next_to_the_irrational_midpoints():
    for dtype in (torch.float32, torch.float64):
        info = torch.finfo(dtype)
        mid = torch.tensor(math.sqrt(0.5), dtype=dtype)
        below = torch.nextafter(mid, torch.tensor(0.0, dtype=dtype))
        above = torch.nextafter(mid, torch.tensor(1.0, dtype=dtype))
        values = torch.stack([below, mid, above, torch.tensor(info.tiny, dtype=dtype)])
        expected = []
        for v in values.tolist():
            # log2 v rounds to 0 when v^2 > 1/2 (v in [1/2, 1)), else to -1.
            expected.append(0 if v < 1 and Fraction(v) ** 2 > Fraction(1, 2) else -1)
        expected[-1] = round(math.log2(info.tiny))
        assert round_log2(values).tolist() == expected


def test_gradient_passes_straight_through_also_for_flushed_weights():
    r = torch.tensor([0.9, 0.3, -0.01, 0.0, -0.6], requires_grad=True)
    y = pow2_round_ste(r, 2)
    assert y.tolist() == [1.0, 0.25, 0.0, 0.0, -0.5]
    y.backward(torch.arange(1.0, 6.0))
    assert r.grad.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_layer_trains_through_the_quantizer():
    torch.manual_seed(0)
    layer = QuantLinear(8, 2, bias=False, weight_quant=PowerOfTwoWeightQuant)
    layer(torch.randn(4, 8)).square().sum().backward()
    grad = layer.weight.grad
    assert grad is not None and bool(np.all(np.isfinite(grad.numpy())))
    assert int((grad != 0).sum()) == grad.numel()
