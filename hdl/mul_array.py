"""The multiplier twin of the shift-vector array: same ports, ``*`` instead of ``<<``.

It decodes each power-of-two code into a signed integer weight once, when the weight
is written, and multiplies in every lane, so that synthesis of the two arrays at one
configuration compares a shifter against a multiplier (LUTs, DSPs, Fmax) and nothing
else.
"""

from __future__ import annotations

from amaranth.hdl import Const, Mux, Shape, Value, signed
from amaranth.lib import data

from hilt.hdl.vector_array import VectorArray
from hilt.quant.pow2_format import PowerOfTwoFormat


class MultiplyLane:
    """Holds the integer weight +-2^(max_exp - e) and multiplies the activation by it."""

    def weight_shape(self, fmt: PowerOfTwoFormat) -> Shape:
        return signed(fmt.int_weight_width)

    def store(self, fmt: PowerOfTwoFormat, code: data.View) -> Value:
        shift = (fmt.max_exp - code.exp)[:fmt.exp_bits]
        magnitude = Const(1, signed(fmt.int_weight_width)) << shift
        return Mux(code.exp == fmt.zero_code, 0, Mux(code.sign, -magnitude, magnitude))

    def term(self, fmt: PowerOfTwoFormat, weight: Value, activation: Value) -> Value:
        return activation * weight.as_signed()

    def carry(self, fmt: PowerOfTwoFormat, weight: Value) -> Value:
        return Const(0, 1)


class MultiplierVectorArray(VectorArray):
    """M multiply-accumulate PEs of L lanes, the twin of :class:`ShiftVectorArray`.

    Parameters and ports as :class:`~hilt.hdl.vector_array.VectorArray`.
    """

    def __init__(self, *, lanes: int, pes: int, act_width: int, exp_bits: int, depth: int,
                 acc_width: int | None = None):
        super().__init__(lane=MultiplyLane(), lanes=lanes, pes=pes, act_width=act_width,
                         exp_bits=exp_bits, depth=depth, acc_width=acc_width)
