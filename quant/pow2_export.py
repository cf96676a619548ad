"""Export of power-of-two weights to the codes the shift-vector PE stores.

A trained ``QuantLinear`` / ``QuantConv2d`` with :class:`PowerOfTwoWeightQuant` (or any
float tensor whose values are already 0 or +-2^k) becomes a :class:`PowerOfTwoWeights`:
per weight a sign bit, an exponent code (``fmt.zero_code`` for zero) and a zero flag,
plus one power-of-two exponent for the whole tensor. Nothing is rounded here: a value
that the format cannot hold exactly is an error, because the golden model and the RTL
must agree with the Brevitas layer bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn

from .pow2_format import PowerOfTwoFormat
from .pow2_quant import PowerOfTwoQuant


def _format_index(flat_index: int, shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(int(i)) for i in np.unravel_index(flat_index, shape)) + "]"


def scale_exponent(scale: float | torch.Tensor | np.ndarray, what: str = "scale") -> int:
    """The integer ``s`` with ``scale == 2^s``; a ``ValueError`` naming ``what`` otherwise.

    Accepts a Python number or a one-element tensor/array (a per-tensor scale as Brevitas
    returns it). Per-channel scales are rejected: the PE has one shift for the tensor.
    """
    if isinstance(scale, torch.Tensor):
        scale = scale.detach().cpu().double().numpy()
    array = np.asarray(scale, dtype=np.float64)
    if array.size != 1:
        raise ValueError(
            f"{what} must be a single per-tensor power of two, got shape {array.shape}"
        )
    number = float(array.reshape(()))
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{what} must be a positive power of two 2^s, got {number!r}")
    mantissa, exponent = math.frexp(number)
    if mantissa != 0.5:
        raise ValueError(
            f"{what} = {number!r} is not a power of two; the shift-vector PE needs 2^s "
            f"(nearest: 2^{exponent - 1} or 2^{exponent})"
        )
    return exponent - 1


def _as_format(fmt: PowerOfTwoFormat | int) -> PowerOfTwoFormat:
    return fmt if isinstance(fmt, PowerOfTwoFormat) else PowerOfTwoFormat(fmt)


@dataclass(frozen=True, eq=False)
class PowerOfTwoWeights:
    """Power-of-two weights as the shift-vector PE stores them.

    Parameters
    ----------
    fmt
        The number format (``exp_bits``, ``max_exp``, ``zero_code``).
    sign
        uint8, 1 where the weight is negative, 0 elsewhere (zeros included).
    exp
        uint8 exponent codes e in 0..``fmt.max_exp``, ``fmt.zero_code`` where zero.
    zero
        bool, True where the weight is zero (redundant with ``exp``, kept for the RTL).
    scale_exp
        Real weight = integer weight * 2^scale_exp, with integer weight +-2^(max_exp - e).

    All three arrays have the layer's weight shape, e.g. (out, in) or (out, in, kh, kw).
    They are stored read-only.
    """

    fmt: PowerOfTwoFormat
    sign: np.ndarray
    exp: np.ndarray
    zero: np.ndarray
    scale_exp: int

    def __post_init__(self) -> None:
        if not isinstance(self.fmt, PowerOfTwoFormat):
            raise TypeError(f"fmt must be a PowerOfTwoFormat, got {self.fmt!r}")
        if isinstance(self.scale_exp, bool) or not isinstance(self.scale_exp, int | np.integer):
            raise TypeError(f"scale_exp must be an int, got {self.scale_exp!r}")
        object.__setattr__(self, "scale_exp", int(self.scale_exp))
        arrays = {}
        for name, dtype in (("sign", np.uint8), ("exp", np.uint8), ("zero", np.bool_)):
            array = np.asarray(getattr(self, name))
            if array.dtype != dtype:
                raise ValueError(f"{name} must be a {np.dtype(dtype)} array, got {array.dtype}")
            arrays[name] = array
        shapes = {name: array.shape for name, array in arrays.items()}
        if len(set(shapes.values())) != 1:
            raise ValueError(f"sign, exp and zero must have one shape, got {shapes}")
        sign, exp, zero = arrays["sign"], arrays["exp"], arrays["zero"]
        fmt = self.fmt
        checks = (
            (sign > 1, "sign", "0 (positive) or 1 (negative)"),
            (
                (exp > fmt.max_exp) & (exp != fmt.zero_code),
                "exp",
                f"0..{fmt.max_exp} or the zero code {fmt.zero_code}",
            ),
            (
                zero != (exp == fmt.zero_code),
                "zero",
                f"True exactly where exp is the zero code {fmt.zero_code}",
            ),
            (zero & (sign != 0), "sign", "0 where the weight is zero"),
        )
        for bad, name, accepted in checks:
            if bad.any():
                flat = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"{name}{_format_index(flat, bad.shape)} = {arrays[name].flat[flat].item()!r} "
                    f"is invalid for exp_bits={fmt.exp_bits}: expected {accepted}"
                )
        for name, array in arrays.items():
            array = array.copy()
            array.setflags(write=False)
            object.__setattr__(self, name, array)

    @classmethod
    def from_codes(cls, fmt: PowerOfTwoFormat, sign: ArrayLike, exp: ArrayLike,
                   scale_exp: int = 0) -> PowerOfTwoWeights:
        """Weights from sign bits and exponent codes; the zero flags follow from the codes.

        The sign of a zero weight is ignored (cleared), as the hardware ignores it.
        """
        exp = np.asarray(exp).astype(np.uint8)
        zero = exp == fmt.zero_code
        sign = np.where(zero, 0, np.asarray(sign)).astype(np.uint8)
        return cls(fmt, sign, exp, zero, scale_exp)

    @property
    def shape(self) -> tuple[int, ...]:
        """The weight shape of the layer."""
        return self.exp.shape

    def int_weights(self) -> np.ndarray:
        """Integer weights 0 or +-2^(max_exp - e) as int64, in the weight shape."""
        shift = np.where(self.zero, 0, self.fmt.max_exp - self.exp.astype(np.int64))
        magnitude = np.where(self.zero, 0, np.left_shift(np.int64(1), shift))
        return np.where(self.sign == 1, -magnitude, magnitude)

    def real_weights(self) -> np.ndarray:
        """The weights as float64, exactly: int weight * 2^scale_exp."""
        return np.ldexp(self.int_weights().astype(np.float64), self.scale_exp)

    def matrix(self) -> PowerOfTwoWeights:
        """The same weights as a matrix (out, in * kh * kw), the order ``im2col`` uses."""
        if self.exp.ndim < 1:
            raise ValueError("a scalar weight has no output dimension")
        rows = self.shape[0]
        return PowerOfTwoWeights(
            self.fmt,
            self.sign.reshape(rows, -1),
            self.exp.reshape(rows, -1),
            self.zero.reshape(rows, -1),
            self.scale_exp,
        )


def encode_pow2_weights(
    weight: ArrayLike | torch.Tensor,
    fmt: PowerOfTwoFormat | int,
    *,
    scale: float | torch.Tensor | None = None,
    name: str = "weight",
) -> PowerOfTwoWeights:
    """Encode a float tensor whose values are already 0 or +-2^k.

    Parameters
    ----------
    weight
        Real weights (any shape). Every nonzero value must be +-2^j * ``scale`` with
        j in 0..``fmt.max_exp``.
    fmt
        The format, or its ``exp_bits``.
    scale
        The value of integer weight 1, a power of two (Brevitas' ``quant_weight().scale``).
        ``None`` picks the one that gives the largest magnitude the code e = 0.
    name
        What to call the tensor in error messages (e.g. ``"fc1.weight"``).

    Raises
    ------
    ValueError
        Naming the first offending index and value, and what would be accepted: a value
        that is not 0 or +-2^k, a magnitude outside the format's 2^exp_bits - 1 binades,
        or a scale that is not a power of two.
    """
    fmt = _as_format(fmt)
    if isinstance(weight, torch.Tensor):
        weight = weight.detach().cpu().double().numpy()
    values = np.asarray(weight, dtype=np.float64)
    flat = values.reshape(-1)
    magnitude = np.abs(flat)

    not_finite = ~np.isfinite(flat)
    if not_finite.any():
        i = int(np.flatnonzero(not_finite)[0])
        raise ValueError(
            f"{name}{_format_index(i, values.shape)} = {float(flat[i])!r} is not finite"
        )
    mantissa, binade = np.frexp(magnitude)
    nonzero = magnitude != 0
    not_pow2 = nonzero & (mantissa != 0.5)
    if not_pow2.any():
        i = int(np.flatnonzero(not_pow2)[0])
        raise ValueError(
            f"{name}{_format_index(i, values.shape)} = {float(flat[i])!r} is not 0 or +-2^k; "
            f"encode only weights quantized by PowerOfTwoWeightQuant"
        )
    log2_magnitude = binade.astype(np.int64) - 1

    if scale is None:
        scale_exp = int(log2_magnitude[nonzero].max()) - fmt.max_exp if nonzero.any() else 0
        explain_scale = f"the largest magnitude sets 2^scale_exp = 2^{scale_exp}"
    else:
        scale_exp = scale_exponent(scale, f"scale of {name}")
        explain_scale = f"scale 2^{scale_exp}"
    int_exp = log2_magnitude - scale_exp  # |w| = 2^int_exp * 2^scale_exp
    out_of_range = nonzero & ((int_exp < 0) | (int_exp > fmt.max_exp))
    if out_of_range.any():
        i = int(np.flatnonzero(out_of_range)[0])
        raise ValueError(
            f"{name}{_format_index(i, values.shape)} = {float(flat[i])!r} = 2^{int(int_exp[i])} * "
            f"2^{scale_exp} needs more magnitudes than exp_bits={fmt.exp_bits} holds: with "
            f"{explain_scale}, accepted values are 0 and +-2^j * 2^{scale_exp} for j in "
            f"0..{fmt.max_exp}"
        )

    exp = np.where(nonzero, fmt.max_exp - int_exp, fmt.zero_code).astype(np.uint8)
    sign = (nonzero & np.signbit(flat)).astype(np.uint8)
    return PowerOfTwoWeights(
        fmt,
        sign.reshape(values.shape),
        exp.reshape(values.shape),
        (~nonzero).reshape(values.shape),
        scale_exp,
    )


def export_pow2_weights(layer: nn.Module, name: str | None = None) -> PowerOfTwoWeights:
    """Export the quantized weight of a Brevitas layer built with PowerOfTwoWeightQuant.

    Parameters
    ----------
    layer
        A ``QuantLinear``, ``QuantConv2d`` (or any Brevitas weight layer) whose
        ``weight_quant`` is :class:`PowerOfTwoWeightQuant`.
    name
        What to call the layer in error messages; defaults to its class name.

    Returns
    -------
    PowerOfTwoWeights
        In the layer's weight shape, with ``scale_exp`` from ``quant_weight().scale``,
        so that ``int_weights() * 2^scale_exp == layer.quant_weight().value`` exactly.
    """
    what = name if name is not None else type(layer).__name__
    proxy = getattr(layer, "weight_quant", None)
    if proxy is None:
        raise ValueError(
            f"layer {what} ({type(layer).__name__}) has no Brevitas weight_quant; "
            f"expected e.g. QuantLinear(..., weight_quant=PowerOfTwoWeightQuant)"
        )
    tensor_quant = getattr(proxy, "tensor_quant", None)
    if not isinstance(tensor_quant, PowerOfTwoQuant) or not proxy.is_quant_enabled:
        found = type(tensor_quant).__name__ if proxy.is_quant_enabled else "disabled"
        raise ValueError(
            f"layer {what} ({type(layer).__name__}) does not quantize its weight with "
            f"PowerOfTwoWeightQuant (its weight quantizer is {found}); build it with "
            f"weight_quant=PowerOfTwoWeightQuant"
        )
    with torch.no_grad():
        quant_weight = layer.quant_weight()
    return encode_pow2_weights(
        quant_weight.value, tensor_quant.fmt, scale=quant_weight.scale, name=f"{what}.weight"
    )
