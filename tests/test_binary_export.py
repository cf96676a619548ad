"""Folding BatchNorm and sign into count thresholds, exactly, and the exporter's refusals."""

import itertools
import math
from decimal import Context, Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest
import torch
from brevitas.inject.enum import ScalingImplType, ScalingPerOutputType, StatsOp
from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant.binary import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from hilt.quant.binary_export import (
    FLOAT32_MARGIN,
    BatchNormSign,
    BinaryLayerSpec,
    FoldedNeuron,
    export_binary_layers,
    fold_batchnorm_sign,
)


def _linear(bits, scale=1.0):
    """A binary QuantLinear whose quantized weights are +-scale with the given bits."""
    bits = np.asarray(bits, np.uint8)
    layer = QuantLinear(
        bits.shape[1],
        bits.shape[0],
        bias=False,
        weight_quant=SignedBinaryWeightPerTensorConst,
        weight_scaling_const=scale,
    )
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(bits.astype(np.float32) - 0.5) * scale)
    return layer


def _batchnorm(gamma, beta, mean, var, eps=1e-5):
    bn = nn.BatchNorm1d(len(gamma), eps=eps)
    with torch.no_grad():
        for tensor, values in (
            (bn.weight, gamma),
            (bn.bias, beta),
            (bn.running_mean, mean),
            (bn.running_var, var),
        ):
            tensor.copy_(torch.tensor(values, dtype=torch.float32))
    return bn


def _sign():
    return QuantIdentity(act_quant=SignedBinaryActPerTensorConst)


def _inputs(bits):
    return torch.from_numpy(2 * np.asarray(bits, np.float32) - 1)


def _brevitas(stack, x_bits):
    with torch.no_grad():
        return stack.eval()(_inputs(x_bits)).double().numpy()


def _random_bits(rng, shape):
    return rng.integers(0, 2, size=shape, dtype=np.uint8)


def _all_inputs(fan_in):
    return np.array(list(itertools.product([0, 1], repeat=fan_in)), np.uint8)


def _decimal_oracle(scale, gamma, beta, mean, var, eps):
    """s -> sign(gamma (c s - mean) + beta sqrt(var + eps)) >= 0, in 1000-digit decimals.

    An oracle independent of the exporter's squares: every float converts to Decimal
    exactly, products and sums of them are exact at this precision, and only the square
    root rounds, 1000 digits down, far below any nonzero value these floats can form.
    """
    context = Context(prec=1000)
    d = Decimal
    term = context.multiply(d(beta), context.sqrt(context.add(d(var), d(eps))))

    def fires(signed_sum):
        shifted = context.subtract(context.multiply(d(scale), signed_sum), d(mean))
        return context.add(context.multiply(d(gamma), shifted), term) >= 0

    return fires


def _float32(lo, hi):
    return st.floats(lo, hi, allow_subnormal=False).map(lambda v: float(np.float32(v)))


@st.composite
def neurons(draw):
    total = draw(st.integers(0, 120))
    scale = draw(st.sampled_from([2.0**-3, 1.0, 4.0]) | _float32(1e-3, 10.0))
    # The mean where the counts are, or anywhere, so thresholds land inside and outside.
    near = _float32(-1.5, 1.5).map(lambda u: u * scale * max(total, 1))
    mean = draw(near | _float32(-1e4, 1e4))
    return dict(
        total=total,
        scale=scale,
        gamma=draw(_float32(-8.0, 8.0)),
        beta=draw(_float32(-4.0, 4.0) | _float32(-1e3, 1e3)),
        mean=float(np.float32(mean)),
        var=draw(_float32(0.0, 64.0)),
        eps=draw(st.sampled_from([1e-5, 1e-3, 0.1]) | st.floats(1e-9, 1.0)),
    )


@settings(max_examples=400, deadline=None)
@given(neuron=neurons())
def test_folded_threshold_equals_the_exact_bn_sign_decision(neuron):
    total = neuron.pop("total")
    flip, threshold = fold_batchnorm_sign(total, **neuron)
    assert flip == (neuron["gamma"] < 0)
    assert 0 <= threshold <= total + 1
    fires = _decimal_oracle(**neuron)
    for count in range(total + 1):
        original = total - count if flip else count  # flipping the bits counts the others
        expected = fires(2 * original - total)
        assert (count >= threshold) == expected, (count, threshold)


@st.composite
def ties(draw):
    """Neurons whose BatchNorm output is exactly 0 at the count ``tie``."""
    total = draw(st.integers(0, 100))
    tie = draw(st.integers(0, total))
    scale = 2.0 ** draw(st.integers(-3, 3))
    sigma = 2.0 ** draw(st.integers(-2, 2))
    eps = 2.0 ** -draw(st.integers(4, 10))
    gamma = draw(st.sampled_from([-1, 1])) * draw(st.integers(1, 7)) / 4
    mean = draw(st.integers(-total, total)) * scale
    # gamma * (z - mean) / sigma + beta = 0 at the tie; every value here is exact in float32.
    beta = -gamma * (scale * (2 * tie - total) - mean) / sigma
    assert float(np.float32(beta)) == beta
    return (
        total,
        tie,
        dict(scale=scale, gamma=gamma, beta=beta, mean=mean, var=sigma * sigma - eps, eps=eps),
    )


@settings(max_examples=300, deadline=None)
@given(case=ties())
def test_a_tie_on_the_threshold_fires(case):
    total, tie, neuron = case
    flip, threshold = fold_batchnorm_sign(total, **neuron)
    sign = BatchNormSign.from_floats(**neuron)
    assert sign.fires(2 * tie - total)  # output exactly 0: sign(0) = +1
    # >= not >: the tie is the first count that fires (counted on the flipped weights).
    assert threshold == (total - tie if flip else tie)
    # float32 may round a tie either way, unless every term is 0 (beta = mean = z = 0).
    if neuron["beta"] == neuron["mean"] == 0:
        assert sign.float32_margin(total) >= 1.0
    else:
        assert sign.float32_margin(total) == 0.0


def test_ties_pre_activation_zero_and_constant_neurons_match_brevitas():
    fan_in = 8
    bits = _random_bits(np.random.default_rng(1), (7, fan_in))
    gamma = [1.0, -1.0, 0.5, 0.0, 0.0, 0.0, -0.0]
    beta = [0.0, 0.0, -0.25, 0.5, -0.5, 0.0, 0.0]
    mean = [0.0, 0.0, 1.0, 3.0, 3.0, 3.0, 3.0]
    # var + eps = 1 exactly, so torch's float32 BatchNorm makes no rounding here either.
    stack = nn.Sequential(_linear(bits), _batchnorm(gamma, beta, mean, [0.75] * 7, 0.25), _sign())
    (spec,) = export_binary_layers(stack)
    # Neurons 0, 1: output z, 0 at p = 4 (a pre-activation of exactly 0) -> +1. Neuron 2:
    # 0.5 (z - 1) - 0.25 = 0 at z = 1.5, between counts; it fires from z = 2, p = 5.
    # Neurons 3..6: gamma = 0, the output is beta: always +1 for beta >= 0 (also 0, and
    # gamma = -0.0 flips nothing), never for beta < 0.
    assert spec.thresholds.tolist() == [4, 4, 5, 0, 9, 0, 0]
    assert np.array_equal(
        spec.weight_bits, np.where([[0], [1], [0], [0], [0], [0], [0]], 1 - bits, bits)
    )
    x = _all_inputs(fan_in)
    expected = _brevitas(stack, x) > 0
    assert np.array_equal(spec.forward(x), expected)
    counts = (x[:, None, :] == bits[None]).sum(axis=2)
    assert expected[counts[:, 0] == 4, 0].all() and expected[counts[:, 1] == 4, 1].all()
    # Those ties have every term 0, which float32 evaluates exactly: they are safe.
    assert spec.float32_margin[0] == spec.float32_margin[1] == 1.0
    assert np.isinf(spec.float32_margin[3:]).all()


def test_a_sign_without_batchnorm_is_folded_too():
    bits = _random_bits(np.random.default_rng(2), (5, 6))
    stack = nn.Sequential(_linear(bits), _sign())
    (spec,) = export_binary_layers(stack)
    assert spec.thresholds.tolist() == [3] * 5  # 2p - 6 >= 0, with 0 -> +1
    x = _all_inputs(6)
    assert np.array_equal(spec.forward(x), _brevitas(stack, x) > 0)


def test_negative_gamma_flips_the_bits_and_the_comparison():
    rng = np.random.default_rng(3)
    fan_in = 12
    bits = _random_bits(rng, (6, fan_in))
    bits[1], bits[3] = bits[0], bits[2]  # neurons 0, 1 and 2, 3 differ only in gamma's sign
    gamma = [2.0, -2.0, 0.5, -0.5, -3.0, 1.0]
    beta = [0.3, 0.3, -1.0, -1.0, 4.0, 0.0]
    mean = [1.0, 1.0, -2.0, -2.0, 0.0, 0.5]
    stack = nn.Sequential(_linear(bits), _batchnorm(gamma, beta, mean, [2.0] * 6), _sign())
    (spec,) = export_binary_layers(stack)
    negative = np.array(gamma) < 0
    assert np.array_equal(spec.weight_bits[negative], 1 - bits[negative])
    assert np.array_equal(spec.weight_bits[~negative], bits[~negative])
    x = _all_inputs(fan_in)
    assert spec.float32_safe
    assert np.array_equal(spec.forward(x), _brevitas(stack, x) > 0)
    # The same neuron with gamma and -gamma: complementary outputs (no tie here), and the
    # flipped neuron fires on the counts of the unflipped one at or below S - T.
    out = spec.forward(x)
    assert np.array_equal(out[:, 0], 1 - out[:, 1])
    counts = (x[:, None, :] == bits[None]).sum(axis=2)
    assert np.array_equal(out[:, 1], counts[:, 1] <= fan_in - spec.thresholds[1])


@pytest.mark.parametrize("fan_in", [1, 3, 7, 13, 37, 61, 67, 100])
def test_any_fan_in_exports_exactly(fan_in):
    rng = np.random.default_rng(fan_in)
    width = 9
    bits = _random_bits(rng, (width, fan_in))
    gamma = rng.uniform(-2, 2, width)
    beta = rng.uniform(-1, 1, width)
    mean = rng.uniform(-0.5, 0.5, width) * fan_in
    var = rng.uniform(0.1, 0.4, width) * fan_in
    last = _random_bits(rng, (4, width))
    stack = nn.Sequential(
        _linear(bits), _batchnorm(gamma, beta, mean, var), _sign(), _linear(last, 2.0**-3)
    )
    hidden, logits = export_binary_layers(stack)
    assert hidden.shape == (width, fan_in) and logits.shape == (4, width)
    assert hidden.float32_safe and logits.float32_safe
    x = _all_inputs(fan_in) if fan_in <= 13 else _random_bits(rng, (2000, fan_in))
    with torch.no_grad():
        stack.eval()
        expected_bits = stack[:3](_inputs(x)).numpy() > 0
        bn_out = stack[:2](_inputs(x)).numpy()
        expected_logits = stack(_inputs(x)).double().numpy()
    hidden_bits = hidden.forward(x)
    assert np.array_equal(hidden_bits, expected_bits)
    assert np.array_equal(hidden_bits, bn_out >= 0)
    assert np.array_equal(logits.forward(hidden_bits) * float(logits.scale), expected_logits)


def test_last_layer_gives_integer_logits_on_a_positive_scale():
    rng = np.random.default_rng(4)
    bits = _random_bits(rng, (10, 21))
    stack = nn.Sequential(_linear(bits, 2.0**-3))
    (spec,) = export_binary_layers(stack, input_scale=2.0)
    assert spec.thresholds is None and spec.float32_margin is None
    assert spec.scale == Fraction(1, 4) and spec.float32_exact and spec.float32_safe
    x = _random_bits(rng, (300, 21))
    logits = spec.forward(x)
    assert logits.dtype == np.int64
    with torch.no_grad():
        expected = stack(2 * _inputs(x)).double().numpy()
    assert np.array_equal(logits * 0.25, expected)
    assert np.array_equal(logits.argmax(axis=1), expected.argmax(axis=1))


def test_a_zero_latent_weight_is_bit_one():
    layer = _linear(np.ones((2, 3), np.uint8))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.0, -0.0, -0.2], [0.3, 0.0, -1e-30]]))
    (spec,) = export_binary_layers(nn.Sequential(layer))
    assert spec.weight_bits.tolist() == [[1, 1, 0], [1, 1, 0]]  # sign(0) = +1, as Brevitas
    x = _all_inputs(3)
    assert np.array_equal(spec.forward(x), _brevitas(nn.Sequential(layer), x))


def test_brevitas_default_binary_scale_exports_but_is_not_float32_exact():
    bits = _random_bits(np.random.default_rng(5), (3, 40))
    stack = nn.Sequential(_linear(bits, 0.1))
    (spec,) = export_binary_layers(stack)
    assert spec.scale == Fraction(float(np.float32(0.1)))  # as stored, not 1/10
    assert np.array_equal(spec.weight_bits, bits)
    assert not spec.float32_exact and not spec.float32_safe


def test_float32_rounding_can_disagree_and_the_margin_says_so():
    # beta is the float32 nearest -z0 / sqrt(2 + eps): the exact output at z0 lies within
    # half an ulp of beta from 0, closer than torch's float32 BatchNorm can resolve.
    fan_in, count = 64, 2
    z0 = 2 * count - fan_in
    eps = 1e-5
    with localcontext() as context:
        context.prec = 100
        beta = float(np.float32(-float(Decimal(z0) / (Decimal(2) + Decimal(eps)).sqrt())))
    bits = np.ones((1, fan_in), np.uint8)
    stack = nn.Sequential(_linear(bits), _batchnorm([1.0], [beta], [0.0], [2.0], eps), _sign())
    (spec,) = export_binary_layers(stack)
    x = np.zeros((1, fan_in), np.uint8)
    x[0, :count] = 1  # count matches
    exact = _decimal_oracle(1.0, 1.0, beta, 0.0, 2.0, eps)(z0)
    brevitas = bool(_brevitas(stack, x)[0, 0] > 0)
    assert brevitas != exact  # float32 says +1, the stored parameters say -1
    assert spec.forward(x)[0, 0] == exact
    assert spec.float32_margin[0] < FLOAT32_MARGIN
    assert spec.float32_exact and not spec.float32_safe


def test_stacks_of_several_layers_and_a_binary_output():
    rng = np.random.default_rng(6)
    stack = nn.Sequential(
        _linear(_random_bits(rng, (11, 20))),
        _batchnorm(
            rng.uniform(-1, 1, 11),
            rng.uniform(-1, 1, 11),
            rng.normal(0, 2, 11),
            rng.uniform(1, 5, 11),
        ),
        _sign(),
        _linear(_random_bits(rng, (5, 11))),
        _sign(),
    )
    first, second = export_binary_layers(stack, name="net")
    assert (first.name, second.name) == ("net.0", "net.3")
    assert second.thresholds is not None  # a stack may end in bits
    x = _random_bits(rng, (500, 20))
    assert np.array_equal(second.forward(first.forward(x)), _brevitas(stack, x) > 0)


def _valid():
    return [
        _linear(np.ones((3, 4), np.uint8)),
        _batchnorm([1.0] * 3, [0.0] * 3, [0.0] * 3, [1.0] * 3),
        _sign(),
    ]


def _replace(index, module):
    layers = _valid()
    layers[index] = module
    return layers


@pytest.mark.parametrize(
    ("layers", "match"),
    [
        (
            _replace(2, QuantReLU(bit_width=1)),
            r"layers\.2 is a QuantReLU, not a QuantIdentity with a signed binary act quant",
        ),
        (
            _replace(2, QuantIdentity()),
            r"layers\.2 quantizes to 8-bit signed values \(RescalingIntQuant\), not signed binary",
        ),
        (_replace(2, QuantIdentity(act_quant=None)), r"layers\.2 does not quantize"),
        (
            [*_valid(), nn.ReLU(), _linear(np.ones((2, 3), np.uint8))],
            r"layers\.3 is a ReLU where a QuantLinear with binary weights must be",
        ),
        (
            [_linear(np.ones((3, 4), np.uint8)), QuantReLU()],
            r"layers\.1 is a QuantReLU after layers\.0; expected a BatchNorm1d, a signed binary "
            r"QuantIdentity, or the end of the stack",
        ),
        (
            _replace(0, QuantLinear(4, 3, weight_quant=SignedBinaryWeightPerTensorConst)),
            r"layers\.0 has a bias; the threshold neuron has none",
        ),
        (
            _replace(0, QuantLinear(4, 3, bias=False)),
            r"layers\.0 does not quantize its weight to signed binary \(its weight quantizer is "
            r"RescalingIntQuant, 8 bits\)",
        ),
        (
            _replace(0, QuantLinear(4, 3, bias=False, weight_quant=None)),
            r"layers\.0 does not quantize its weight .* \(its weight quantizer is disabled\)",
        ),
        (
            _replace(
                0,
                QuantLinear(
                    4,
                    3,
                    bias=False,
                    weight_quant=SignedBinaryWeightPerTensorConst,
                    weight_scaling_impl_type=ScalingImplType.STATS,
                    weight_scaling_stats_op=StatsOp.MAX,
                    weight_scaling_per_output_type=ScalingPerOutputType.CHANNEL,
                ),
            ),
            r"layers\.0 weight scale must be one positive per-tensor value, got shape \(3, 1\)",
        ),
        (
            _replace(0, nn.Linear(4, 3, bias=False)),
            r"layers\.0 is a Linear where a QuantLinear with binary weights must be",
        ),
        (
            _replace(
                0,
                QuantLinear(
                    4,
                    3,
                    bias=False,
                    weight_quant=SignedBinaryWeightPerTensorConst,
                    input_quant=SignedBinaryActPerTensorConst,
                ),
            ),
            r"layers\.0 quantizes its input; a binary layer takes the previous layer's bits",
        ),
        (_valid()[:2], r"layers\.1 \(BatchNorm1d\) ends the stack with no binary activation"),
        (
            _replace(1, nn.BatchNorm1d(3, track_running_stats=False)),
            r"layers\.1 has no running statistics \(track_running_stats=False\)",
        ),
        (
            _replace(1, nn.BatchNorm1d(5)),
            r"layers\.1 normalises 5 features but layers\.0 has 3 outputs",
        ),
        (
            _replace(1, _batchnorm([1.0, float("nan"), 1.0], [0.0] * 3, [0.0] * 3, [1.0] * 3)),
            r"layers\.1\.weight\[1\] = nan is not finite",
        ),
        (
            _replace(1, _batchnorm([1.0] * 3, [0.0] * 3, [0.0] * 3, [1.0, 1.0, 0.0], eps=0.0)),
            r"layers\.1 neuron 2: var \+ eps = 0 is not positive",
        ),
        ([], r"layers is empty"),
    ],
)
def test_export_names_the_layer_that_cannot_be_folded(layers, match):
    with pytest.raises(ValueError, match=match):
        export_binary_layers(nn.Sequential(*layers))


def test_affine_free_batchnorm_is_folded():
    bits = np.eye(4, dtype=np.uint8)
    bn = nn.BatchNorm1d(4, affine=False)
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([-4.0, -1.0, 1.0, 5.0]))
    (spec,) = export_binary_layers(nn.Sequential(_linear(bits), bn, _sign()))
    # 2p - 4 >= mean: p >= 0, 1.5, 2.5, 4.5 -> T = 0, 2, 3, 5.
    assert spec.thresholds.tolist() == [0, 2, 3, 5]


def test_batchnorm_sign_refuses_what_cannot_be_a_neuron():
    assert fold_batchnorm_sign(0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0) == FoldedNeuron(False, 0)
    with pytest.raises(ValueError, match=r"scale must be positive, got -1"):
        BatchNormSign.from_floats(-1.0, 1.0, 0.0, 0.0, 1.0, 0.0)
    with pytest.raises(ValueError, match=r"neuron gamma = inf is not finite"):
        BatchNormSign.from_floats(1.0, math.inf, 0.0, 0.0, 1.0, 0.0)
    with pytest.raises(ValueError, match=r"total must be an int >= 0, got -1"):
        BatchNormSign.from_floats(1.0, 1.0, 0.0, 0.0, 1.0, 0.0).fold(-1)
    with pytest.raises(ValueError, match=r"input_scale must be positive, got 0"):
        export_binary_layers(nn.Sequential(*_valid()), input_scale=0)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            dict(thresholds=np.array([0, 7])),
            r"fc thresholds\[1\] = 7 is out of range for neuron 1: expected 0\.\.6",
        ),
        (
            dict(weight_bits=np.array([[0, 1, 1, 0, 1], [1, 1, 1, 3, 0]])),
            r"fc weight_bits\[1, 3\] = 3 is not a bit",
        ),
        (dict(weight_bits=np.ones(5, np.uint8)), r"fc weight_bits must have shape \(out, in\)"),
        (dict(scale=Fraction(0)), r"fc scale must be positive, got 0"),
        (dict(scale="1"), r"fc scale must be a Fraction, got '1'"),
        (dict(float32_margin=np.ones(3)), r"fc float32_margin must have shape \(2,\), got \(3,\)"),
    ],
)
def test_layer_spec_refuses_inconsistent_fields(change, match):
    fields = dict(
        weight_bits=np.array([[0, 1, 1, 0, 1], [1, 1, 1, 0, 0]], np.uint8),
        thresholds=np.array([0, 6]),
        scale=Fraction(1),
        name="fc",
    )
    fields.update(change)
    with pytest.raises((ValueError, TypeError), match=match):
        BinaryLayerSpec(**fields)


def test_layer_spec_is_read_only_and_accepts_magnitudes():
    spec = BinaryLayerSpec(
        np.array([[1, 0, 1]], np.uint8), np.array([6]), Fraction(1, 2), np.array([[1, 2, 3]])
    )
    assert spec.sums.tolist() == [6] and spec.float32_exact
    assert not spec.float32_safe  # margins unknown
    assert spec.forward(np.array([[1, 0, 1], [1, 1, 1]])).tolist() == [[1], [0]]
    with pytest.raises(ValueError, match="read-only"):
        spec.thresholds[0] = 1
