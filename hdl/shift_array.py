"""The shift-vector PE array: power-of-two weights, so each lane shifts instead of multiplying.

After the SVPE of n-BQ-NN: a weight is a sign and an exponent code (see
:class:`~hilt.quant.pow2_format.PowerOfTwoFormat`), and a lane's term is the activation
shifted left by ``max_exp - e`` and negated by the sign. The golden model is
:func:`hilt.quant.shift_golden.shift_matmul`. One shift-vector PE on its own is
``VectorPE(lane=ShiftLane(), ...)``; the array instantiates ``pes`` of them.
"""

from __future__ import annotations

from amaranth.hdl import Mux, Value
from amaranth.lib import data

from hilt.hdl.vector_array import VectorArray, code_layout
from hilt.quant.pow2_format import PowerOfTwoFormat


class ShiftLane:
    """Keeps the weight as its code; the term is a shift, a negation and a zero test."""

    def weight_shape(self, fmt: PowerOfTwoFormat) -> data.StructLayout:
        return code_layout(fmt)

    def store(self, fmt: PowerOfTwoFormat, code: data.View) -> Value:
        return Value.cast(code)

    def term(self, fmt: PowerOfTwoFormat, weight: Value, activation: Value) -> Value:
        code = data.View(code_layout(fmt), weight)
        # A zero weight gates the activation before the shifter (only exp <= max_exp is
        # shifted meaningfully), and -v == ~v + 1 inverts after it, leaving the +1 to
        # `carry` and the adder tree. Both gates fold into the shifter's first and last
        # mux levels, so a lane costs little more than its shifter.
        gated = Mux(self._nonzero(fmt, code), activation, 0)
        shifted = gated << (fmt.max_exp - code.exp)[:fmt.exp_bits]
        return shifted ^ self.carry(fmt, weight).replicate(len(shifted)).as_signed()

    def carry(self, fmt: PowerOfTwoFormat, weight: Value) -> Value:
        code = data.View(code_layout(fmt), weight)
        return code.sign & self._nonzero(fmt, code)

    @staticmethod
    def _nonzero(fmt: PowerOfTwoFormat, code: data.View) -> Value:
        return code.exp != fmt.zero_code


class ShiftVectorArray(VectorArray):
    """M shift-vector PEs of L lanes sharing one activation stream.

    Parameters and ports as :class:`~hilt.hdl.vector_array.VectorArray`.
    """

    def __init__(self, *, lanes: int, pes: int, act_width: int, exp_bits: int, depth: int,
                 acc_width: int | None = None):
        super().__init__(lane=ShiftLane(), lanes=lanes, pes=pes, act_width=act_width,
                         exp_bits=exp_bits, depth=depth, acc_width=acc_width)
