"""The threshold-logic binary neuron: XNOR, popcount, compare against a run-time threshold.

After TULIP and FTL. A binary value is one bit, 1 meaning +1 and 0 meaning -1, so the
product of an input and a weight is their XNOR, and a neuron of fan-in N computes

    p = sum_i m_i * XNOR(x_i, w_i)        y = [p >= T]

with optional per-input magnitudes ``m_i`` in ``0..max_weight`` (``max_weight = 1``
is a plain binary neuron, every ``m_i = 1``). The threshold ``T`` is the one
parameter that makes the same cell an AND (``T = N``), an OR (``T = 1``), a majority
(``T = ceil(N / 2)`` for odd N) or a BNN neuron with its BatchNorm folded in; ``T = 0`` always
fires and ``T = sum(m) + 1`` never does.

:func:`match_count` is the datapath that :class:`ThresholdNeuron` and the folded
arrays of :mod:`hilt.hdl.threshold_array` share; :func:`count_widths` sizes it.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Cat, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from hilt.hdl.adder_tree import adder_tree
from hilt.hdl.params import check_int


def count_widths(*, fan_in: int, max_weight: int,
                 count_width: int | None = None) -> tuple[int, int]:
    """Validate a neuron's sizes; returns the widths of its count and of its threshold.

    The count holds ``0..fan_in * max_weight``; the threshold one more value, so that
    ``T = sum(m) + 1`` ("never fires") is always representable.
    """
    check_int("fan_in", fan_in, 1)
    check_int("max_weight", max_weight, 1)
    largest = fan_in * max_weight
    needed = bits_for(largest)
    if count_width is not None and check_int("count_width", count_width, 1) < needed:
        raise ValueError(
            f"count_width={count_width} is too small: fan_in={fan_in} inputs of magnitude up "
            f"to max_weight={max_weight} sum to {largest}, which needs at least {needed} bits")
    return (needed if count_width is None else count_width), bits_for(largest + 1)


def synapse_layout(lanes: int, max_weight: int) -> data.StructLayout:
    """The weights of ``lanes`` inputs: sign bits ``w`` and, if ``max_weight > 1``, magnitudes."""
    fields = {"w": lanes}
    if max_weight > 1:
        fields["magnitudes"] = data.ArrayLayout(unsigned(bits_for(max_weight)), lanes)
    return data.StructLayout(fields)


def clamp_magnitudes(magnitudes: Sequence[Value], max_weight: int) -> list[Value]:
    """``magnitudes`` with every one above ``max_weight`` replaced by ``max_weight``.

    A magnitude field holds more than ``max_weight`` unless ``max_weight + 1`` is a
    power of two; clamping keeps every count within the width :func:`count_widths` gave
    it, and costs nothing when there is nothing to clamp.
    """
    magnitudes = [Value.cast(magnitude) for magnitude in magnitudes]
    if (max_weight + 1) & max_weight == 0:
        return magnitudes
    return [Mux(magnitude > max_weight, max_weight, magnitude)[:len(magnitude)]
            for magnitude in magnitudes]


def popcount(bits: Sequence[Value], m: Module | None = None) -> Value:
    """The number of set ``bits``, by a compressor tree.

    Full adders (3:2 counters) turn each three bits into a two-bit count, and a balanced
    adder tree with kept partial sums (see :func:`adder_tree`) adds the counts. On
    iCE40 a 64-input :class:`ThresholdNeuron` takes 142 LUTs this way, against 164 with
    a kept adder tree over single bits and 177 with Yosys's own multi-operand adder.
    """
    bits = [Value.cast(bit) for bit in bits]
    whole = len(bits) - len(bits) % 3
    counts = [Cat(a ^ b ^ c, (a & b) | (a & c) | (b & c))
              for a, b, c in zip(*[iter(bits[:whole])] * 3, strict=True)]
    return adder_tree([*counts, *bits[whole:]], m)


def match_count(x: Value, w: Value, magnitudes: Sequence[Value] | None = None,
                enable: Value | None = None, m: Module | None = None) -> Value:
    """``sum_i m_i * XNOR(x_i, w_i)`` over the lanes whose ``enable`` bit is set.

    Without ``magnitudes`` every ``m_i`` is 1 and the sum is a :func:`popcount` of the
    matches; with them, a balanced adder tree of the gated magnitudes. Either way its
    depth and width grow as log2 of the lane count. Given the module ``m``, partial sums
    are kept signals of ``m`` (see :func:`adder_tree`).
    """
    matches = ~(Value.cast(x) ^ Value.cast(w))
    if enable is not None:
        matches &= enable
    if magnitudes is None:
        return popcount(list(matches), m)
    return adder_tree([Mux(match, magnitude, 0)
                       for match, magnitude in zip(matches, magnitudes, strict=True)], m)


class ThresholdNeuron(wiring.Component):
    """One threshold-logic neuron of ``fan_in`` binary inputs with a run-time threshold.

    Parameters
    ----------
    fan_in : int
        Inputs N, at least 1.
    max_weight : int
        Largest per-input magnitude, at least 1; 1 (the default) is a plain binary
        neuron with no magnitude port.
    count_width : int, optional
        Width of the match count; by default ``bits_for(fan_in * max_weight)``. A
        narrower one is refused.

    Ports
    -----
    inputs : In(stream.Signature(input_layout))
        ``{"x", "w"}`` (``fan_in`` bits each, bit i is input i, 1 meaning +1) and, when
        ``max_weight > 1``, ``"magnitudes"``: ``fan_in`` unsigned magnitudes; one above
        ``max_weight`` counts as ``max_weight``.
    threshold : In(stream.Signature(unsigned(threshold_width)))
        Writes the threshold register; always ready. The register is 0 (always fires)
        after reset. A threshold taken on the same clock edge as an input applies from
        the next input on.
    result : Out(stream.Signature(result_layout))
        ``{"y", "count"}``: ``y = [count >= T]`` and the count itself, one beat per input.

    Latency: one cycle; ``result`` is valid from the clock edge that takes the input.
    Throughput: one input per cycle while ``result`` is not stalled.
    """

    def __init__(self, *, fan_in: int, max_weight: int = 1, count_width: int | None = None):
        try:
            self.count_width, self.threshold_width = count_widths(
                fan_in=fan_in, max_weight=max_weight, count_width=count_width)
        except (TypeError, ValueError):
            # A component refused at construction was never meant to be elaborated.
            self._MustUse__silence = True
            raise
        self.fan_in, self.max_weight = fan_in, max_weight
        self.synapse_layout = synapse_layout(fan_in, max_weight)
        self.input_layout = data.StructLayout({"x": fan_in, **self.synapse_layout.members})
        self.result_layout = data.StructLayout({"y": 1, "count": self.count_width})
        super().__init__({
            "inputs": In(stream.Signature(self.input_layout)),
            "threshold": In(stream.Signature(unsigned(self.threshold_width))),
            "result": Out(stream.Signature(self.result_layout)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        threshold = Signal(self.threshold_width)
        m.d.comb += self.threshold.ready.eq(1)
        with m.If(self.threshold.valid):
            m.d.sync += threshold.eq(self.threshold.payload)

        inputs = self.inputs.payload
        magnitudes = None
        if self.max_weight > 1:
            magnitudes = clamp_magnitudes(inputs.magnitudes, self.max_weight)
        count = Signal(self.count_width)
        m.d.comb += count.eq(match_count(inputs.x, inputs.w, magnitudes, m=m))

        m.d.comb += self.inputs.ready.eq(~self.result.valid | self.result.ready)
        with m.If(self.inputs.valid & self.inputs.ready):
            m.d.sync += [
                self.result.payload.y.eq(count >= threshold),
                self.result.payload.count.eq(count),
                self.result.valid.eq(1),
            ]
        with m.Elif(self.result.ready):
            m.d.sync += self.result.valid.eq(0)
        return m

