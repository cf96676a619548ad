"""Weight-stationary vector arrays: the structure shared by the shift array and its multiplier twin.

A vector PE takes ``lanes`` weights and activations per beat, turns each pair into a
term, sums the terms in an adder tree and accumulates over the beats of one input
vector. A vector array holds ``pes`` such PEs side by side, all fed the same
activation beat, and reads their weights from a memory indexed by the beat number.
What a lane does with its weight (shift or multiply) is a :class:`Lane` object, so
both arrays are this one structure with a different lane.
"""

from __future__ import annotations

from typing import Protocol

from amaranth.hdl import Module, Mux, Shape, Signal, Value, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hilt.hdl.adder_tree import adder_tree
from hilt.hdl.params import check_int
from hilt.quant.pow2_format import PowerOfTwoFormat

MAX_ACT_WIDTH = 32


def code_layout(fmt: PowerOfTwoFormat) -> data.StructLayout:
    """A power-of-two weight on the weights port: exponent code, then the sign bit."""
    return data.StructLayout({"exp": fmt.exp_bits, "sign": 1})


class Lane(Protocol):
    """What one lane of a vector PE does with its weight and activation."""

    def weight_shape(self, fmt: PowerOfTwoFormat) -> Shape:
        """The shape of one weight as the weight memory holds it."""

    def store(self, fmt: PowerOfTwoFormat, code: data.View) -> Value:
        """Turn a weight code from the weights port into what the memory holds."""

    def term(self, fmt: PowerOfTwoFormat, weight: Value, activation: Value) -> Value:
        """The signed term that the lane contributes to the PE's sum."""

    def carry(self, fmt: PowerOfTwoFormat, weight: Value) -> Value:
        """One bit added to the PE's sum beside the term.

        It lets a lane negate by ones' complement and leave the +1 to the adder tree.
        """


def check_array_params(*, lanes: int, pes: int, act_width: int, exp_bits: int, depth: int,
                       acc_width: int | None = None) -> tuple[PowerOfTwoFormat, int]:
    """Validate a vector array's parameters; returns its weight format and accumulator width.

    Raises ``TypeError`` or ``ValueError`` naming the parameter, its value and what
    would be accepted.
    """
    check_int("lanes", lanes, 1)
    check_int("pes", pes, 1)
    check_int("act_width", act_width, 2, MAX_ACT_WIDTH)
    fmt = PowerOfTwoFormat(exp_bits)
    check_int("depth", depth, 1)
    needed = fmt.accumulator_width(act_width, depth)
    if acc_width is None:
        return fmt, needed
    if check_int("acc_width", acc_width, 1) < needed:
        raise ValueError(
            f"acc_width={acc_width} is too small: a sum of depth={depth} terms of "
            f"{act_width}-bit activations and weights up to 2^{fmt.max_exp} needs "
            f"at least {needed} bits"
        )
    return fmt, acc_width


class VectorPE(wiring.Component):
    """One PE: ``lanes`` terms summed by an adder tree and accumulated over the beats.

    Parameters
    ----------
    lane : Lane
        Turns a stored weight and an activation into a term.
    lanes, act_width, fmt, acc_width
        Lanes per beat, signed activation width, weight format, accumulator width.

    Ports
    -----
    weights : In(ArrayLayout(lane.weight_shape(fmt), lanes))
    activations : In(ArrayLayout(signed(act_width), lanes))
    lane_enable : In(lanes)
        Lanes whose bit is clear contribute zero (the tail of a vector shorter than a beat).
    accumulate : In(1)
        Add this beat's sum to the accumulator.
    last : In(1)
        With ``accumulate``: the vector's last beat. ``result`` takes the total on the
        next clock edge and the accumulator restarts from zero.
    result : Out(signed(acc_width))

    Latency: one cycle from the last beat to ``result``.
    """

    def __init__(self, *, lane: Lane, lanes: int, act_width: int, fmt: PowerOfTwoFormat,
                 acc_width: int):
        self.lane = lane
        self.lanes = lanes
        self.act_width = act_width
        self.fmt = fmt
        self.acc_width = acc_width
        super().__init__({
            "weights": In(data.ArrayLayout(lane.weight_shape(fmt), lanes)),
            "activations": In(data.ArrayLayout(signed(act_width), lanes)),
            "lane_enable": In(lanes),
            "accumulate": In(1),
            "last": In(1),
            "result": Out(signed(acc_width)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        lanes = list(zip(self.lane_enable, self.weights, self.activations, strict=True))
        terms = [Mux(enable, self.lane.term(self.fmt, weight, activation), 0)
                 for enable, weight, activation in lanes]
        carries = adder_tree([enable & self.lane.carry(self.fmt, weight)
                              for enable, weight, _ in lanes])
        beat_sum = Signal(signed(self.acc_width), attrs={"keep": 1})
        m.d.comb += beat_sum.eq(adder_tree([*terms, carries], m))

        acc = Signal(signed(self.acc_width))
        with m.If(self.accumulate):
            with m.If(self.last):
                m.d.sync += [self.result.eq(acc + beat_sum), acc.eq(0)]
            with m.Else():
                m.d.sync += acc.eq(acc + beat_sum)
        return m


class VectorArray(wiring.Component):
    """``pes`` vector PEs sharing one activation stream, weight-stationary.

    The weights of one layer tile (``pes`` outputs by ``depth`` inputs) are written
    beat by beat into a memory, then any number of input vectors stream through:
    each vector is ``beats = ceil(depth / lanes)`` activation beats, and each yields
    one result beat holding the ``pes`` dot products.

    Parameters
    ----------
    lane : Lane
        What a lane does with a weight (see :mod:`hilt.hdl.shift_array`).
    lanes : int
        Activations per beat (L), at least 1.
    pes : int
        Processing elements (M), at least 1.
    act_width : int
        Width of a signed activation, 2..32.
    exp_bits : int
        Width of a weight's exponent code (see :class:`PowerOfTwoFormat`).
    depth : int
        Inputs per vector (K); need not be a multiple of ``lanes``.
    acc_width : int, optional
        Accumulator width; by default the smallest that no sum of ``depth`` terms can
        overflow. A narrower one is refused.

    Ports
    -----
    weights : In(stream.Signature(weight_layout))
        ``{"beat", "codes"}``: ``codes[m][l]`` is PE m's weight for input
        ``beat * lanes + l``. Ready only while no vector is in flight.
    activations : In(stream.Signature(activation_layout))
        The beats of each input vector in order; lanes past ``depth`` in the last beat
        are ignored.
    results : Out(stream.Signature(result_layout))
        One beat per input vector, in order.

    Latency: two cycles from a vector's last activation beat to its result beat.
    Throughput: one activation beat per cycle while ``results`` is not stalled.
    """

    def __init__(self, *, lane: Lane, lanes: int, pes: int, act_width: int, exp_bits: int,
                 depth: int, acc_width: int | None = None):
        try:
            self.fmt, self.acc_width = check_array_params(
                lanes=lanes, pes=pes, act_width=act_width, exp_bits=exp_bits, depth=depth,
                acc_width=acc_width)
        except (TypeError, ValueError):
            # A component refused at construction was never meant to be elaborated.
            self._MustUse__silence = True
            raise
        self.lane = lane
        self.lanes, self.pes, self.act_width, self.depth = lanes, pes, act_width, depth
        self.beats = -(-depth // lanes)
        self.code_layout = code_layout(self.fmt)
        self.weight_layout = data.StructLayout({
            "beat": range(self.beats),
            "codes": data.ArrayLayout(data.ArrayLayout(self.code_layout, lanes), pes),
        })
        self.activation_layout = data.ArrayLayout(signed(act_width), lanes)
        self.result_layout = data.ArrayLayout(signed(self.acc_width), pes)
        super().__init__({
            "weights": In(stream.Signature(self.weight_layout)),
            "activations": In(stream.Signature(self.activation_layout)),
            "results": Out(stream.Signature(self.result_layout)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        lanes, pes = self.lanes, self.pes
        stored = data.ArrayLayout(data.ArrayLayout(self.lane.weight_shape(self.fmt), lanes), pes)
        m.submodules.weight_memory = memory = Memory(shape=stored, depth=self.beats, init=[])
        write = memory.write_port()
        read = memory.read_port()

        # Stage 1 holds the accepted activation beat while the memory reads its weights.
        beat = Signal(range(self.beats))
        held_valid = Signal()
        held_last = Signal()
        held = Signal(self.activation_layout)
        result_valid = Signal()

        # The held beat can retire unless it would complete a result that has nowhere to go.
        retire = ~held_valid | ~held_last | ~result_valid | self.results.ready
        idle = (beat == 0) & ~held_valid
        # Loading weights takes priority, so no beat ever reads a half-written tile.
        m.d.comb += [
            self.weights.ready.eq(idle),
            self.activations.ready.eq(retire & ~(idle & self.weights.valid)),
        ]

        m.d.comb += [
            write.addr.eq(self.weights.payload.beat),
            write.en.eq(self.weights.valid & self.weights.ready),
        ]
        for pe in range(pes):
            for i in range(lanes):
                m.d.comb += write.data[pe][i].eq(
                    self.lane.store(self.fmt, self.weights.payload.codes[pe][i]))

        m.d.comb += [read.addr.eq(beat), read.en.eq(retire)]
        with m.If(self.activations.valid & self.activations.ready):
            m.d.sync += [
                held.eq(self.activations.payload),
                held_valid.eq(1),
                held_last.eq(beat == self.beats - 1),
                beat.eq(Mux(beat == self.beats - 1, 0, beat + 1)),
            ]
        with m.Elif(retire):
            m.d.sync += held_valid.eq(0)

        # Lanes past `depth` in the last beat carry no input.
        tail = self.depth - (self.beats - 1) * lanes
        lane_enable = Mux(held_last, (1 << tail) - 1, (1 << lanes) - 1)

        step = held_valid & retire
        for pe in range(pes):
            unit = VectorPE(lane=self.lane, lanes=lanes, act_width=self.act_width,
                            fmt=self.fmt, acc_width=self.acc_width)
            m.submodules[f"pe{pe}"] = unit
            m.d.comb += [
                unit.weights.eq(read.data[pe]),
                unit.activations.eq(held),
                unit.lane_enable.eq(lane_enable),
                unit.accumulate.eq(step),
                unit.last.eq(held_last),
                self.results.payload[pe].eq(unit.result),
            ]

        with m.If(self.results.valid & self.results.ready):
            m.d.sync += result_valid.eq(0)
        with m.If(step & held_last):
            m.d.sync += result_valid.eq(1)
        m.d.comb += self.results.valid.eq(result_valid)
        return m
