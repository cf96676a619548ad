"""Export of power-of-two weights to sign / exponent-code / zero arrays, and its refusals."""

import numpy as np
import pytest
import torch
from brevitas.nn import QuantConv2d, QuantLinear
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn

from hilt.quant.pow2_export import (
    PowerOfTwoWeights,
    encode_pow2_weights,
    export_pow2_weights,
    scale_exponent,
)
from hilt.quant.pow2_format import PowerOfTwoFormat
from hilt.quant.pow2_quant import PowerOfTwoWeightQuant


@pytest.mark.parametrize("exp_bits", [1, 2, 3, 4])
def test_export_reproduces_the_quantized_layer_weight(exp_bits):
    torch.manual_seed(exp_bits)
    layers = [
        QuantLinear(
            12, 6, bias=False, weight_quant=PowerOfTwoWeightQuant, weight_exp_bits=exp_bits
        ),
        QuantConv2d(
            2, 4, (3, 2), bias=False, weight_quant=PowerOfTwoWeightQuant, weight_exp_bits=exp_bits
        ),
    ]
    fmt = PowerOfTwoFormat(exp_bits)
    for layer in layers:
        weights = export_pow2_weights(layer)
        qw = layer.quant_weight()
        assert weights.fmt == fmt
        assert weights.shape == tuple(layer.weight.shape)
        assert (weights.sign.dtype, weights.exp.dtype, weights.zero.dtype) == (
            np.uint8,
            np.uint8,
            np.bool_,
        )
        assert 2.0**weights.scale_exp == qw.scale.item()
        assert np.array_equal(weights.int_weights(), qw.int().numpy())
        assert np.array_equal(weights.real_weights(), qw.value.detach().double().numpy())
        assert np.array_equal(weights.exp == fmt.zero_code, weights.zero)


def _codes(draw_shape, fmt):
    codes = st.integers(0, fmt.max_exp + 1).map(lambda c: fmt.zero_code if c > fmt.max_exp else c)
    return hnp.arrays(np.uint8, draw_shape, elements=codes)


@st.composite
def pow2_weights(draw):
    fmt = PowerOfTwoFormat(draw(st.integers(1, 5)))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, max_side=5))
    exp = draw(_codes(shape, fmt))
    zero = exp == fmt.zero_code
    sign = np.where(zero, 0, draw(hnp.arrays(np.uint8, shape, elements=st.integers(0, 1))))
    return PowerOfTwoWeights(fmt, sign.astype(np.uint8), exp, zero, draw(st.integers(-40, 40)))


@settings(max_examples=200, deadline=None)
@given(weights=pow2_weights())
def test_encoding_round_trips(weights):
    again = encode_pow2_weights(
        weights.real_weights(), weights.fmt, scale=2.0**weights.scale_exp, name="w"
    )
    for name in ("sign", "exp", "zero"):
        assert np.array_equal(getattr(again, name), getattr(weights, name))
    assert again.scale_exp == weights.scale_exp
    # Without a scale, the codes may shift, the values may not.
    derived = encode_pow2_weights(torch.from_numpy(weights.real_weights()), weights.fmt)
    assert np.array_equal(derived.real_weights(), weights.real_weights())
    if not weights.zero.all():
        assert derived.exp[~derived.zero].min() == 0


def test_int_weights_follow_the_format():
    fmt = PowerOfTwoFormat(2)
    exp = np.array([0, 1, 2, 3], dtype=np.uint8)
    weights = PowerOfTwoWeights(fmt, np.array([0, 1, 0, 0], np.uint8), exp, exp == 3, -2)
    assert weights.int_weights().tolist() == [4, -2, 1, 0]
    assert weights.real_weights().tolist() == [1.0, -0.5, 0.25, 0.0]
    assert weights.int_weights().tolist() == [
        fmt.int_weight(int(s), int(e)) for s, e in zip(weights.sign, weights.exp, strict=True)
    ]


def test_arrays_are_read_only():
    weights = encode_pow2_weights([1.0, -0.5], 2)
    with pytest.raises(ValueError, match="read-only"):
        weights.exp[0] = 1


def test_matrix_flattens_like_a_conv_weight():
    real = np.array([1.0, 0.5, -0.25, 0.0] * 6).reshape(2, 3, 2, 2)
    weights = encode_pow2_weights(real, 2)
    assert weights.matrix().shape == (2, 12)
    assert np.array_equal(weights.matrix().real_weights(), real.reshape(2, 12))


@pytest.mark.parametrize(
    ("weight", "exp_bits", "scale", "match"),
    [
        ([0.5, 0.3], 3, None, r"w\[1\] = 0\.3 is not 0 or \+-2\^k"),
        (
            [[1.0, 0.0], [0.0, -(2.0**-7)]],
            3,
            None,
            r"w\[1, 1\] = -0\.0078125 = 2\^-1 \* 2\^-6 needs more magnitudes than exp_bits=3 "
            r"holds: .* accepted values are 0 and \+-2\^j \* 2\^-6 for j in 0\.\.6",
        ),
        ([4.0], 1, 1.0, r"w\[0\] = 4\.0 = 2\^2 \* 2\^0 needs more magnitudes than exp_bits=1"),
        ([0.25], 2, 0.5, r"w\[0\] = 0\.25 = 2\^-1 \* 2\^-1 needs more magnitudes"),
        ([1.0, float("nan")], 2, None, r"w\[1\] = nan is not finite"),
        ([1.0], 3, 0.75, r"scale of w = 0\.75 is not a power of two; .* 2\^-1 or 2\^0"),
        ([1.0], 3, -0.5, r"scale of w must be a positive power of two 2\^s, got -0\.5"),
        ([1.0], 3, 0.0, r"scale of w must be a positive power of two"),
        (
            [1.0],
            3,
            torch.ones(4, 1),
            r"scale of w must be a single per-tensor power of two, "
            r"got shape \(4, 1\)",
        ),
    ],
)
def test_encoding_refuses_what_the_format_cannot_hold(weight, exp_bits, scale, match):
    with pytest.raises(ValueError, match=match):
        encode_pow2_weights(weight, exp_bits, scale=scale, name="w")


def test_scale_exponent():
    assert scale_exponent(2.0**-9) == -9
    assert scale_exponent(torch.tensor([8.0])) == 3
    with pytest.raises(ValueError, match=r"act scale = 0\.1 is not a power of two"):
        scale_exponent(0.1, "act scale")


def test_export_refuses_a_plain_layer():
    with pytest.raises(ValueError, match=r"layer fc1 \(Linear\) has no Brevitas weight_quant"):
        export_pow2_weights(nn.Linear(4, 2), name="fc1")


def test_export_refuses_another_quantizer():
    layer = QuantLinear(4, 2, bias=False)  # Brevitas' default Int8WeightPerTensorFloat
    with pytest.raises(
        ValueError,
        match=r"layer QuantLinear \(QuantLinear\) does not quantize its weight with "
        r"PowerOfTwoWeightQuant \(its weight quantizer is RescalingIntQuant\)",
    ):
        export_pow2_weights(layer)
    disabled = QuantLinear(4, 2, bias=False, weight_quant=None)
    with pytest.raises(ValueError, match=r"its weight quantizer is disabled"):
        export_pow2_weights(disabled, name="fc2")


def test_export_refuses_a_per_channel_scale():
    layer = QuantLinear(
        4, 3, bias=False, weight_quant=PowerOfTwoWeightQuant, weight_scaling_per_output_channel=True
    )
    with pytest.raises(ValueError, match=r"scale of fc\.weight must be a single per-tensor"):
        export_pow2_weights(layer, name="fc")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            dict(exp=np.array([0, 4], np.uint8)),
            r"exp\[1\] = 4 is invalid for exp_bits=2: expected 0\.\.2 or the zero code 3",
        ),
        (
            dict(zero=np.array([False, False])),
            r"zero\[1\] = False is invalid for exp_bits=2: expected True exactly where exp is "
            r"the zero code 3",
        ),
        (
            dict(sign=np.array([0, 1], np.uint8)),
            r"sign\[1\] = 1 is invalid for exp_bits=2: expected 0 where the weight "
            r"is zero",
        ),
        (
            dict(sign=np.array([2, 0], np.uint8)),
            r"sign\[0\] = 2 is invalid for exp_bits=2: expected 0 \(positive\) or 1",
        ),
        (dict(sign=np.array([0, 0], np.int64)), r"sign must be a uint8 array, got int64"),
        (dict(zero=np.array([False, True, True])), r"sign, exp and zero must have one shape"),
    ],
)
def test_weights_refuse_inconsistent_codes(change, match):
    fields = dict(
        fmt=PowerOfTwoFormat(2),
        sign=np.array([0, 0], np.uint8),
        exp=np.array([0, 3], np.uint8),
        zero=np.array([False, True]),
        scale_exp=0,
    )
    fields.update(change)
    with pytest.raises(ValueError, match=match):
        PowerOfTwoWeights(**fields)
