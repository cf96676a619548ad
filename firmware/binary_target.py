"""The binary (threshold-logic) layer array as a gateware protocol target.

:class:`BinaryLayerTarget` wraps a :class:`~hilt.hdl.threshold_array.BinaryLayerArray` in
:class:`~hilt.firmware.targets.TargetSignature`, with the byte layout and refusals of
:mod:`hilt.host.protocol.binary_layout`, so it answers exactly as the reference face
:class:`hilt.host.binary_target.BinaryLayerTarget` does.

The front end is byte-serial and buffers one unit at a time: a shift register of
``row_bytes`` bytes takes a weight row, a threshold or an input vector, byte by byte
from the top. A check takes the whole payload and decides the status from a few flags
(padding or a threshold out of range seen, units past the last neuron, the final unit
cut short) without touching the array. The commit takes it again: WRITE first steps a
(neuron fold, lane) pair to the addressed neuron, one neuron a cycle (no divider), then
hands each row to the array as ``synapse_folds`` weight beats, shifting the register
``simd`` bits at a time, or each threshold as one threshold beat; FORWARD hands each
vector to ``inputs`` and answers the array's output register a byte at a time, taking
the output only after its last byte, so no output vector is copied. READ and PULSE are
refused from the request alone. RESET writes a zero weight beat over every lane and
slice and a zero threshold over every lane, since a reset does not clear memories: the
array is then as configuration leaves it.
"""

from __future__ import annotations

from typing import Any, Literal

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import enum, wiring

from hilt.firmware.targets import BAD_ADDRESS, BAD_PAYLOAD, OK, Op, TargetSignature
from hilt.hdl.threshold_array import BinaryLayerArray
from hilt.host.protocol.binary_layout import (
    THRESHOLD_BASE,
    BinaryLayerLayout,
    describe_binary_layer,
)


class _Unit(enum.Enum, shape=2):
    """What the payload's units are: weight rows, thresholds or input vectors."""

    WEIGHTS = 0
    THRESHOLDS = 1
    INPUTS = 2


class BinaryLayerTarget(wiring.Component):
    """A binarized fully connected layer behind the target interface.

    Parameters are those of :class:`~hilt.hdl.threshold_array.BinaryLayerArray`; the
    layout further requires ``max_weight`` 1 and ``out_features`` at most
    ``THRESHOLD_BASE``. A refused parameter raises TypeError or ValueError naming it,
    its value and what is accepted.

    Attributes
    ----------
    array : BinaryLayerArray
        The layer driven.
    layout : BinaryLayerLayout
        The byte layout, shared with the reference face.
    """

    def __init__(self, *, in_features: int, out_features: int, pe: int, simd: int,
                 max_weight: int = 1, emit: Literal["bits", "counts"] = "bits"):
        try:
            self.layout = BinaryLayerLayout(in_features, out_features, pe, simd, max_weight,
                                            emit)
        except (TypeError, ValueError):
            self._MustUse__silence = True
            raise
        self.array = BinaryLayerArray(in_features=in_features, out_features=out_features,
                                      pe=pe, simd=simd, max_weight=max_weight, emit=emit)
        super().__init__(TargetSignature())

    def describe(self) -> dict[str, Any]:
        """The target's capability entry without its id, as the reference face's."""
        return describe_binary_layer(self.layout)

    def elaborate(self, platform) -> Module:
        m = Module()
        lay, array = self.layout, self.array
        fold = array.folding
        in_features, out_features, pe, simd = lay.in_features, lay.out_features, lay.pe, lay.simd
        m.submodules.array = array

        request = self.request.payload
        beat = self.payload.payload
        taken = self.payload.valid & self.payload.ready
        sent = self.result.valid & self.result.ready

        shift = Signal(8 * lay.row_bytes)   # the unit being taken, its bytes enter at the top
        incoming = Cat(shift[8:], beat.data)  # `shift` once this beat is in
        index = Signal(range(max(lay.row_bytes, lay.out_bytes)))  # byte within the unit
        unit = Signal(_Unit)
        status = Signal(8)          # the answer `done` carries
        check = Signal()            # the request is a check
        bad = Signal()              # a unit so far had padding set or a threshold too high
        beyond = Signal()           # a unit so far was past the last neuron
        final = Signal()            # the unit being applied is the payload's last
        seek = Signal(range(out_features))        # neurons still to step over
        neuron_fold = Signal(range(fold.neuron_folds + 1))
        lane = Signal(range(pe))    # with neuron_fold: the neuron the next unit is for
        synapse_fold = Signal(range(fold.synapse_folds))

        def answer(code) -> None:
            m.d.sync += status.eq(code)
            m.next = "done"

        def next_neuron() -> None:
            with m.If(lane == pe - 1):
                m.d.sync += [lane.eq(0), neuron_fold.eq(neuron_fold + 1)]
            with m.Else():
                m.d.sync += lane.eq(lane + 1)

        thresholds = unit == _Unit.THRESHOLDS
        complete = index == Mux(thresholds, lay.threshold_bytes - 1, lay.row_bytes - 1)
        threshold = incoming[8 * (lay.row_bytes - lay.threshold_bytes):]
        spare = 8 * lay.row_bytes - in_features
        padding = beat.data[8 - spare:].any() if spare else Const(0)
        unit_bad = Mux(thresholds, threshold > lay.max_threshold, padding)
        # The next unit would be for neuron `out_features`, one past the last.
        past_last = (neuron_fold == out_features // pe) & (lane == out_features % pe)

        with m.FSM():
            with m.State("idle"):
                m.d.comb += self.request.ready.eq(1)
                with m.If(self.request.valid):
                    to_threshold = request.address >= THRESHOLD_BASE
                    first = Mux(to_threshold, request.address - THRESHOLD_BASE,
                                request.address)
                    m.d.sync += [check.eq(request.check), index.eq(0), bad.eq(0),
                                 beyond.eq(0), seek.eq(first), neuron_fold.eq(0), lane.eq(0),
                                 synapse_fold.eq(0)]
                    with m.Switch(request.op):
                        with m.Case(Op.WRITE):
                            m.d.sync += unit.eq(Mux(to_threshold, _Unit.THRESHOLDS,
                                                    _Unit.WEIGHTS))
                            with m.If(first < out_features):
                                m.next = "seek"
                            with m.Else():
                                answer(BAD_ADDRESS)
                        with m.Case(Op.READ):
                            answer(BAD_ADDRESS)
                        with m.Case(Op.FORWARD):
                            m.d.sync += unit.eq(_Unit.INPUTS)
                            with m.If(request.count == 0):
                                answer(BAD_PAYLOAD)
                            with m.Else():
                                m.next = "take"
                        with m.Case(Op.PULSE):
                            answer(BAD_PAYLOAD)
                        with m.Case(Op.RESET):
                            with m.If(request.check):
                                answer(OK)
                            with m.Else():
                                m.next = "clear"

            with m.State("seek"):
                with m.If(seek == 0):
                    m.next = "take"
                with m.Else():
                    m.d.sync += seek.eq(seek - 1)
                    next_neuron()

            with m.State("take"):
                m.d.comb += self.payload.ready.eq(1)
                with m.If(taken):
                    m.d.sync += [shift.eq(incoming), index.eq(Mux(complete, 0, index + 1))]
                    with m.If(complete):
                        m.d.sync += bad.eq(bad | unit_bad)
                        # Counting neurons in a check (FORWARD's answer ignores it).
                        with m.If(check & past_last):
                            m.d.sync += beyond.eq(1)
                        with m.Elif(check):
                            next_neuron()
                    with m.If(check & beat.last):
                        too_many = (unit != _Unit.INPUTS) & (beyond | past_last)
                        answer(Mux(~complete, BAD_PAYLOAD,
                                   Mux(too_many, BAD_ADDRESS,
                                       Mux(bad | unit_bad, BAD_PAYLOAD, OK))))
                    with m.Elif(~check & complete):
                        m.d.sync += final.eq(beat.last)
                        with m.Switch(unit):
                            with m.Case(_Unit.WEIGHTS):
                                m.next = "weights"
                            with m.Case(_Unit.THRESHOLDS):
                                m.next = "threshold"
                            with m.Case(_Unit.INPUTS):
                                m.next = "inputs"

            def unit_applied() -> None:
                with m.If(final):
                    answer(OK)
                with m.Else():
                    m.next = "take"

            with m.State("weights"):
                m.d.comb += [array.weights.valid.eq(1),
                             array.weights.payload.neuron_fold.eq(neuron_fold),
                             array.weights.payload.synapse_fold.eq(synapse_fold),
                             array.weights.payload.pe.eq(lane),
                             array.weights.payload.w.eq(shift[:simd])]
                with m.If(array.weights.ready):
                    m.d.sync += shift.eq(shift >> simd)
                    with m.If(synapse_fold == fold.synapse_folds - 1):
                        m.d.sync += synapse_fold.eq(0)
                        next_neuron()
                        unit_applied()
                    with m.Else():
                        m.d.sync += synapse_fold.eq(synapse_fold + 1)

            with m.State("threshold"):
                m.d.comb += [array.thresholds.valid.eq(1),
                             array.thresholds.payload.neuron_fold.eq(neuron_fold),
                             array.thresholds.payload.pe.eq(lane),
                             array.thresholds.payload.threshold.eq(
                                 shift[8 * (lay.row_bytes - lay.threshold_bytes):])]
                with m.If(array.thresholds.ready):
                    next_neuron()
                    unit_applied()

            with m.State("inputs"):
                m.d.comb += [array.inputs.valid.eq(1),
                             array.inputs.payload.eq(shift[:in_features])]
                with m.If(array.inputs.ready):
                    m.next = "send"

            with m.State("send"):
                outputs = array.outputs.payload
                if lay.emit == "bits":
                    wide = Cat(outputs, Const(0, 8 * lay.out_bytes - out_features))
                else:
                    width = lay.count_width
                    wide = Cat(*(Cat(outputs[n * width:(n + 1) * width],
                                     Const(0, 8 * lay.count_bytes - width))
                                 for n in range(out_features)))
                m.d.comb += [self.result.valid.eq(array.outputs.valid),
                             self.result.payload.eq(wide.word_select(index, 8))]
                with m.If(sent):
                    m.d.sync += index.eq(index + 1)
                    with m.If(index == lay.out_bytes - 1):
                        m.d.comb += array.outputs.ready.eq(1)
                        m.d.sync += index.eq(0)
                        unit_applied()

            with m.State("clear"):
                last_neuron = (neuron_fold == fold.neuron_folds - 1) & (lane == pe - 1)
                zero_threshold = synapse_fold == 0
                m.d.comb += [array.weights.valid.eq(1),
                             array.weights.payload.neuron_fold.eq(neuron_fold),
                             array.weights.payload.synapse_fold.eq(synapse_fold),
                             array.weights.payload.pe.eq(lane),
                             array.thresholds.valid.eq(zero_threshold),
                             array.thresholds.payload.neuron_fold.eq(neuron_fold),
                             array.thresholds.payload.pe.eq(lane)]
                with m.If(array.weights.ready & (array.thresholds.ready | ~zero_threshold)):
                    with m.If(synapse_fold == fold.synapse_folds - 1):
                        m.d.sync += synapse_fold.eq(0)
                        with m.If(last_neuron):
                            answer(OK)
                        with m.Else():
                            next_neuron()
                    with m.Else():
                        m.d.sync += synapse_fold.eq(synapse_fold + 1)

            with m.State("done"):
                m.d.comb += [self.done.valid.eq(1), self.done.payload.eq(status)]
                with m.If(self.done.ready):
                    m.next = "idle"
        return m

