"""Brevitas weight quantizer of the shift-vector PE: every weight is 0 or +-2^-e * S.

The quantizer is composed the way Brevitas composes its own (compare
``brevitas.quant.fixed_point.Int8WeightPerTensorFixedPoint``): an injector built from
small named pieces, resolved by ``WeightQuantSolver`` into core modules.

* Scaling: ``MaxStatsScaling`` (max |w| of the weight) restricted to a power of two by
  Brevitas' ``PowerOfTwoRestrictValue`` with its round: S = 2^round(log2 max|w|), the
  power of two nearest max|w| in the log domain, computed by Brevitas in float. So the
  largest weight always gets code e = 0 and no magnitude is wasted; Brevitas' fixed-point
  quantizers round up (``CeilSte``) instead, which for log-domain levels would leave the
  top level unused for about half of all tensors. Weights up to sqrt(2) * S map to +-S,
  which is also the power of two nearest them, so nothing is clipped that rounding would
  not have moved anyway.
* Tensor quant: :class:`PowerOfTwoQuant`, which rounds w / S to 0 or +-2^-e with a
  straight-through gradient (:func:`pow2_round_ste`).

Rounding rule (of r = w / S, exact, no float log2 involved):

* |r| <= 2^-(max_exp+1), half the smallest magnitude, flushes to 0 (ties go to zero,
  as in Brevitas' ternary quantizer's threshold);
* otherwise e = the integer nearest to -log2|r| (no ties exist: the midpoints
  2^-(k+1/2) are irrational), clamped to 0 .. max_exp.

The QuantTensor it returns reads in the units of the hardware: scale = S * 2^-max_exp
(a power of two), integer values 0 or +-2^(max_exp-e), bit_width = max_exp + 2 (signed).

Examples
--------
>>> from brevitas.nn import QuantLinear
>>> fc = QuantLinear(8, 4, bias=False, weight_quant=PowerOfTwoWeightQuant)
>>> fc2 = QuantLinear(8, 4, bias=False, weight_quant=PowerOfTwoWeightQuant.let(exp_bits=2))
>>> fc3 = QuantLinear(8, 4, bias=False, weight_quant=PowerOfTwoWeightQuant, weight_exp_bits=2)
"""

from __future__ import annotations

import math

import torch
from brevitas.core.bit_width import BitWidthConst
from brevitas.core.function_wrapper import RoundSte
from brevitas.core.utils import StatelessBuffer
from brevitas.inject import ExtendedInjector, value
from brevitas.inject.enum import RestrictValueType
from brevitas.quant.base import MaxStatsScaling
from brevitas.quant.solver import WeightQuantSolver
from torch import Tensor, nn

from .pow2_format import PowerOfTwoFormat

# The nearest double to sqrt(1/2) lies above it, so for any binary float m (float16 to
# float64, all exact as doubles) "m > sqrt(1/2)" is exactly "double(m) >= _SQRT_HALF".
_SQRT_HALF = math.sqrt(0.5)


def round_log2(magnitude: Tensor) -> Tensor:
    """The integer nearest to log2(magnitude), exactly, for positive finite floats.

    ``frexp`` splits m * 2^p with m in [1/2, 1); log2 m lies in [-1, 0) and rounds to 0
    exactly when m > sqrt(1/2). Comparing mantissas avoids float log2, whose rounding
    would misplace values next to the (irrational) midpoints.
    """
    mantissa, exponent = torch.frexp(magnitude)
    round_down = mantissa.double() < _SQRT_HALF
    return exponent.to(torch.int64) - round_down.to(torch.int64)


class _PowerOfTwoRoundSteFn(torch.autograd.Function):
    """Power-of-two rounding forward, identity backward (Brevitas' ``round_ste`` idea)."""

    @staticmethod
    def forward(ctx, r: Tensor, max_exp: int) -> Tensor:
        magnitude = r.abs()
        is_zero = magnitude <= 2.0 ** -(max_exp + 1)
        # Zero magnitudes take a dummy exponent; they are masked out below.
        exp = -round_log2(torch.where(is_zero, torch.ones_like(magnitude), magnitude))
        exp = exp.clamp(0, max_exp)
        levels = torch.ldexp(torch.ones_like(r), -exp.to(r.dtype))
        return torch.where(is_zero, torch.zeros_like(r), torch.copysign(levels, r))

    @staticmethod
    def backward(ctx, grad_y: Tensor) -> tuple[Tensor, None]:
        return grad_y, None


def pow2_round_ste(r: Tensor, max_exp: int) -> Tensor:
    """Round ``r`` (weights over their scale S) to 0 or +-2^-e, e in 0..max_exp.

    Uses the rounding rule of this module's docstring; the gradient passes straight
    through, also for weights flushed to zero, so that they can grow back in training.
    """
    return _PowerOfTwoRoundSteFn.apply(r, max_exp)


class PowerOfTwoQuant(nn.Module):
    """Tensor quant of power-of-two weights: y = S * pow2_round(x / S).

    Parameters
    ----------
    scaling_impl
        Module returning S, the power of two nearest max |x| (per tensor).
    exp_bits
        Bits of the exponent code; 2^exp_bits - 1 magnitudes plus zero.

    Returns
    -------
    tuple of Tensor
        ``(y, scale, zero_point, bit_width)`` as Brevitas' ``IntQuant``-based quantizers:
        y in de-quantized form, scale = S * 2^-max_exp (the value of integer weight 1),
        zero_point 0, bit_width max_exp + 2.

    Notes
    -----
    A plain ``nn.Module`` (not TorchScript): the rounding is an autograd Function, which
    Brevitas' JIT mode cannot compile.
    """

    def __init__(self, scaling_impl: nn.Module, exp_bits: int) -> None:
        super().__init__()
        self.fmt = PowerOfTwoFormat(exp_bits)
        self.scaling_impl = scaling_impl
        self.zero_point = StatelessBuffer(torch.tensor(0.0))
        self.bit_width = BitWidthConst(self.fmt.int_weight_width)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        max_exp = self.fmt.max_exp
        pow2_scale = self.scaling_impl(x)
        # Dividing and multiplying by a power of two is exact, so y * 2^max_exp / S
        # is exactly the integer weight.
        y = pow2_round_ste(x / pow2_scale, max_exp) * pow2_scale
        int_scale = pow2_scale * 2.0**-max_exp
        return y, int_scale, self.zero_point(), self.bit_width()


class PowerOfTwoValues(ExtendedInjector):
    """Values 0 or +-2^-e * S with an ``exp_bits``-bit exponent code (default 3)."""

    tensor_quant = PowerOfTwoQuant
    exp_bits = 3
    signed = True
    narrow_range = False

    @value
    def bit_width(exp_bits):
        return PowerOfTwoFormat(exp_bits).int_weight_width


class PerTensorPoTScaling(ExtendedInjector):
    """One power-of-two scale per tensor, the one nearest the statistic in the log domain."""

    scaling_per_output_channel = False
    restrict_scaling_type = RestrictValueType.POWER_OF_TWO
    restrict_value_float_to_int_impl = RoundSte


class PowerOfTwoWeightQuant(
    PowerOfTwoValues, MaxStatsScaling, PerTensorPoTScaling, WeightQuantSolver
):
    """Power-of-two weight quantizer for the shift-vector PE, S = 2^round(log2 max|w|).

    Select the exponent width with ``PowerOfTwoWeightQuant.let(exp_bits=2)`` or with the
    layer keyword ``weight_exp_bits=2``.
    """
