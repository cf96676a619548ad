"""The shift-vector PE array as a gateware protocol target.

:class:`ShiftArrayTarget` wraps a :class:`~hilt.hdl.shift_array.ShiftVectorArray` in
:class:`~hilt.firmware.targets.TargetSignature`, with the byte layout and refusals of
:mod:`hilt.host.protocol.shift_layout`, so it answers exactly as the reference face
:class:`hilt.host.shift_target.ShiftArrayTarget` does.

The front end is byte-serial and holds one beat at a time, so it costs few LUTs:

- WRITE shifts each code into a one-beat register (the first byte ends up lowest, as
  the array's ``codes`` field wants it) and sends a full beat on ``weights``. Its check
  takes the whole payload: whether the length is whole beats, whether a beat falls past
  the memory and whether a padding bit is set are all known only at its end, and no
  divider is spent on the length.
- FORWARD shifts each input into a one-beat register of ``lanes`` activations and sends
  it on ``activations``; the ragged last beat of a vector is filled by shifting without
  taking a byte (the lanes past ``depth`` are ignored by the array). The array's result
  beat is held on its stream, not copied, while its bytes are answered one at a time.
- READ is refused (BAD_ADDRESS) and PULSE refused (BAD_PAYLOAD) from the request alone.
- RESET writes the zero code to every beat, a cycle a beat. The same clear runs once
  after configuration (and after any reset of the clock domain) before the first
  request is taken, so the array computes with zero weights until it is written, as
  the reference face does.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring

from hilt.firmware.targets import BAD_ADDRESS, BAD_PAYLOAD, OK, Op, TargetSignature
from hilt.hdl.shift_array import ShiftVectorArray
from hilt.host.protocol.shift_layout import ShiftArrayLayout, describe_shift_array


class ShiftArrayTarget(wiring.Component):
    """A shift-vector PE array behind the target interface (module docstring).

    Parameters are those of :class:`~hilt.hdl.shift_array.ShiftVectorArray`; the
    one-byte layout further requires ``act_width <= 8``. A refused parameter raises
    TypeError or ValueError naming it, its value and what would be accepted.

    Attributes
    ----------
    array : ShiftVectorArray
        The array driven.
    layout : ShiftArrayLayout
        The byte layout, shared with the reference face.
    """

    def __init__(self, *, lanes: int, pes: int, act_width: int, exp_bits: int, depth: int,
                 acc_width: int | None = None):
        try:
            self.array = ShiftVectorArray(lanes=lanes, pes=pes, act_width=act_width,
                                          exp_bits=exp_bits, depth=depth, acc_width=acc_width)
            self.layout = ShiftArrayLayout(lanes, pes, act_width, exp_bits, depth,
                                           self.array.acc_width)
        except (TypeError, ValueError):
            # A component refused at construction was never meant to be elaborated.
            self._MustUse__silence = True
            if hasattr(self, "array"):
                self.array._MustUse__silence = True
            raise
        super().__init__(TargetSignature())

    def describe(self) -> dict[str, Any]:
        """The target's capability entry without its id, as the reference face's."""
        return describe_shift_array(self.layout)

    def elaborate(self, platform) -> Module:
        m = Module()
        lay, array = self.layout, self.array
        m.submodules.array = array
        lanes, act_width, code_bits = lay.lanes, lay.act_width, lay.code_bits

        request = self.request.payload
        byte = self.payload.payload
        taken = self.payload.valid & self.payload.ready
        sent = self.result.valid & self.result.ready

        codes = Signal(lay.beat_bytes * code_bits)     # the weight beat being gathered
        inputs = Signal(lanes * act_width)             # the activation beat being gathered
        beat = Signal(range(lay.beats + 1))  # beat written or streamed; `beats` = past the end
        lane = Signal(range(lanes))          # lane of the next input
        index = Signal(range(max(lay.beat_bytes, lay.out_bytes)))  # byte within a beat / y
        left = Signal(16)                    # payload bytes still to take
        status = Signal(8)                   # the answer `done` carries
        check = Signal()                     # the request is a check
        bad = Signal()                       # a byte so far is refused
        past = Signal()                      # a beat so far falls past the memory
        booting = Signal(init=1)             # the clear after configuration answers nothing

        def answer(code) -> None:
            m.d.sync += status.eq(code)
            m.next = "done"

        # A code's bits above its sign, an input's bits above its sign, must be clear.
        padding_bad = byte.data[code_bits:].any()
        if act_width < 8:
            top = byte.data[act_width - 1:]
            input_bad = top.any() & ~top.all()
        else:
            input_bad = Const(0)
        beat_full = index == lay.beat_bytes - 1
        last_beat = beat == lay.beats - 1
        lanes_full = lane == lanes - 1
        vector_end = last_beat & (lane == lay.tail - 1)
        fill = last_beat & (lane >= lay.tail) if lay.tail < lanes else Const(0)
        zero_beat = Const(lay.fmt.zero_code, code_bits).replicate(lay.beat_bytes)

        m.d.comb += array.weights.payload.beat.eq(beat)
        with m.FSM(init="clear"):
            with m.State("idle"):
                m.d.comb += self.request.ready.eq(1)
                with m.If(self.request.valid):
                    m.d.sync += [left.eq(request.count), index.eq(0), lane.eq(0), beat.eq(0),
                                 bad.eq(0), past.eq(0), check.eq(request.check)]
                    with m.Switch(request.op):
                        with m.Case(Op.WRITE):
                            m.d.sync += beat.eq(Mux(request.address >= lay.beats, lay.beats,
                                                    request.address))
                            m.next = "write"
                        with m.Case(Op.READ):
                            answer(BAD_ADDRESS)
                        with m.Case(Op.FORWARD):
                            with m.If(request.count == 0):
                                answer(BAD_PAYLOAD)
                            with m.Else():
                                m.next = "forward"
                        with m.Case(Op.PULSE):
                            answer(BAD_PAYLOAD)
                        with m.Case(Op.RESET):
                            with m.If(request.check):
                                answer(OK)
                            with m.Else():
                                m.next = "clear"

            with m.State("write"):
                m.d.comb += self.payload.ready.eq(1)
                with m.If(taken):
                    m.d.sync += [codes.eq(Cat(codes[code_bits:], byte.data[:code_bits])),
                                 left.eq(left - 1), index.eq(Mux(beat_full, 0, index + 1)),
                                 bad.eq(bad | padding_bad)]
                    with m.If(check):
                        over = beat == lay.beats
                        with m.If(beat_full):
                            with m.If(over):
                                m.d.sync += past.eq(1)
                            with m.Else():
                                m.d.sync += beat.eq(beat + 1)
                        with m.If(left == 1):
                            answer(Mux(~beat_full, BAD_PAYLOAD,
                                       Mux(past | over, BAD_ADDRESS,
                                           Mux(bad | padding_bad, BAD_PAYLOAD, OK))))
                    with m.Elif(beat_full):
                        m.next = "load"

            with m.State("load"):
                m.d.comb += [array.weights.valid.eq(1), array.weights.payload.codes.eq(codes)]
                with m.If(array.weights.ready):
                    m.d.sync += beat.eq(beat + 1)
                    with m.If(left == 0):
                        answer(OK)
                    with m.Else():
                        m.next = "write"

            with m.State("forward"):
                m.d.comb += self.payload.ready.eq(~fill)
                with m.If(taken | fill):
                    m.d.sync += [inputs.eq(Cat(inputs[act_width:], byte.data[:act_width])),
                                 lane.eq(Mux(lanes_full, 0, lane + 1))]
                    with m.If(lanes_full):
                        with m.If(check):
                            m.d.sync += beat.eq(Mux(last_beat, 0, beat + 1))
                        with m.Else():
                            m.next = "activate"
                with m.If(taken):
                    m.d.sync += [left.eq(left - 1), bad.eq(bad | input_bad)]
                    with m.If(check & (left == 1)):
                        answer(Mux(bad | input_bad | ~vector_end, BAD_PAYLOAD, OK))

            with m.State("activate"):
                m.d.comb += [array.activations.valid.eq(1),
                             array.activations.payload.eq(inputs)]
                with m.If(array.activations.ready):
                    m.d.sync += beat.eq(Mux(last_beat, 0, beat + 1))
                    with m.If(last_beat):
                        m.next = "send"
                    with m.Else():
                        m.next = "forward"

            with m.State("send"):
                ys = array.results.payload
                pad = 8 * lay.y_bytes - lay.acc_width
                wide = Cat(*(Cat(ys[i], ys[i][-1].replicate(pad)) for i in range(lay.pes)))
                m.d.comb += [self.result.valid.eq(array.results.valid),
                             self.result.payload.eq(wide.word_select(index, 8))]
                with m.If(sent):
                    m.d.sync += index.eq(index + 1)
                    with m.If(index == lay.out_bytes - 1):
                        m.d.comb += array.results.ready.eq(1)
                        m.d.sync += index.eq(0)
                        with m.If(left == 0):
                            answer(OK)
                        with m.Else():
                            m.next = "forward"

            with m.State("clear"):
                m.d.comb += [array.weights.valid.eq(1), array.weights.payload.codes.eq(zero_beat)]
                with m.If(array.weights.ready):
                    m.d.sync += beat.eq(beat + 1)
                    with m.If(last_beat):
                        with m.If(booting):
                            m.d.sync += booting.eq(0)
                            m.next = "idle"
                        with m.Else():
                            answer(OK)

            with m.State("done"):
                m.d.comb += [self.done.valid.eq(1), self.done.payload.eq(status)]
                with m.If(self.done.ready):
                    m.next = "idle"
        return m
