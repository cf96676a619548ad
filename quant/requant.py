"""Integer requantisation between layers, exact with respect to Brevitas' QuantReLU.

A layer's accumulator ``acc`` stands for ``acc * 2^acc_exp``. A Brevitas ``QuantReLU``
with an unsigned ``act_bits`` quantizer on a power-of-two scale 2^out_exp computes, in
float, ``clamp(round(relu(v) / 2^out_exp), 0, 2^act_bits - 1)`` with ``torch.round``
(round half to even). Dividing by a power of two is exact in float, so the same integer
comes from shifting the accumulator by ``out_exp - acc_exp`` bits: right with round half
to even when positive, left (nothing to round) otherwise, then clamping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .shift_golden import as_int_activations


def round_shift_right(x: ArrayLike, shift: int) -> np.ndarray:
    """x / 2^shift rounded half to even (``torch.round`` semantics), exactly, in int64.

    Parameters
    ----------
    x
        Integer array.
    shift
        Bits to shift right, >= 0.
    """
    x = as_int_activations(x)
    if isinstance(shift, bool) or not isinstance(shift, int | np.integer) or shift < 0:
        raise ValueError(f"shift must be an int >= 0, got {shift!r}")
    shift = int(shift)
    if shift == 0:
        return x
    if shift >= 64:
        # |x| <= 2^63, so |x / 2^shift| <= 1/2, and the tie at -1/2 goes to the even 0.
        return np.zeros_like(x)
    floor = np.right_shift(x, shift)  # arithmetic: floor division for negatives too
    remainder = x - np.left_shift(floor, shift)  # in [0, 2^shift)
    half = np.int64(1) << np.int64(shift - 1)
    round_up = (remainder > half) | ((remainder == half) & (floor % 2 == 1))
    return floor + round_up


def requantize_relu(acc: ArrayLike, acc_exp: int, out_exp: int, act_bits: int) -> np.ndarray:
    """The integer output of a power-of-two QuantReLU fed ``acc * 2^acc_exp``.

    Parameters
    ----------
    acc
        Integer accumulator (any shape).
    acc_exp
        Its scale exponent: real value = acc * 2^acc_exp.
    out_exp
        The QuantReLU's scale exponent: real output = result * 2^out_exp.
    act_bits
        Unsigned activation width; results lie in 0 .. 2^act_bits - 1.

    Returns
    -------
    np.ndarray
        int64, ``clamp(round_half_even(acc * 2^(acc_exp - out_exp)), 0, 2^act_bits - 1)``.
    """
    for name, number in (("acc_exp", acc_exp), ("out_exp", out_exp), ("act_bits", act_bits)):
        if isinstance(number, bool) or not isinstance(number, int | np.integer):
            raise ValueError(f"{name} must be an int, got {number!r}")
    if not 1 <= act_bits <= 62:
        raise ValueError(f"act_bits must be in 1..62, got {act_bits}")
    acc = as_int_activations(acc, "acc")
    top = (1 << act_bits) - 1
    shift = int(out_exp) - int(acc_exp)
    if shift >= 0:
        return np.clip(round_shift_right(acc, shift), 0, top)
    # Left shift: any acc >= 1 shifted by act_bits or more already exceeds top, so capping
    # the shift and the operand first keeps the same result and cannot overflow.
    left = min(-shift, act_bits)
    operand = np.clip(acc, 0, 1 << act_bits)
    return np.minimum(np.left_shift(operand, left), top)


@dataclass(frozen=True)
class ReluRequant:
    """Requantisation from one layer's accumulator to the next layer's activations.

    ``acc * 2^acc_exp`` -> unsigned ``act_bits`` integers at scale 2^out_exp, as a
    Brevitas ``QuantReLU`` with a power-of-two scale computes it.
    """

    acc_exp: int
    out_exp: int
    act_bits: int

    @property
    def shift(self) -> int:
        """Bits to shift the accumulator right (negative: left)."""
        return self.out_exp - self.acc_exp

    @property
    def max_value(self) -> int:
        """The largest activation, 2^act_bits - 1."""
        return (1 << self.act_bits) - 1

    def __call__(self, acc: ArrayLike) -> np.ndarray:
        return requantize_relu(acc, self.acc_exp, self.out_exp, self.act_bits)
