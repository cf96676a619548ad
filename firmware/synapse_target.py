"""The synapse crossbar as a gateware protocol target.

:class:`SynapseCrossbarTarget` wraps a :class:`~hilt.hdl.synapse_crossbar.SynapseCrossbar`
in :class:`~hilt.firmware.targets.TargetSignature`, with the byte layout and refusals of
:mod:`hilt.host.synapse_target` (whose :class:`~hilt.host.synapse_target.SynapseLayout`
it imports), so it answers exactly as the reference face
:class:`hilt.host.synapse_target.SynapseCrossbarTarget` does.

A check takes the whole payload and decides the status without touching the crossbar;
the commit takes it again and drives the crossbar: WRITE buffers the row's ``2 * cols``
bytes and sends one ``program`` beat; READ sends one ``readback`` beat and answers the
``state`` beat's levels a byte at a time; FORWARD buffers each ``cols``-byte vector,
sends it on ``x`` and answers the ``y`` beat a byte at a time; PULSE buffers each slot
and sends it on ``update``. READ and FORWARD only read the crossbar. RESET holds the
crossbar in reset for one cycle, which zeroes every level and returns every LFSR to
its seed, as a hardware reset does. Since a check refuses any update longer than
``max_pulses`` and any PULSE whose final slot is not ``last``, the crossbar's
``overrun`` is never set and its slot count is zero between commands.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Array, Cat, Const, Module, Mux, ResetInserter, Signal
from amaranth.lib import wiring

from hilt.firmware.targets import BAD_ADDRESS, BAD_PAYLOAD, OK, Op, TargetSignature
from hilt.hdl.synapse_crossbar import SynapseCrossbar
from hilt.host.protocol.synapse_layout import SynapseLayout, describe_crossbar
from hilt.quant.synapse_tables import StepTables


class SynapseCrossbarTarget(wiring.Component):
    """A ``rows x cols`` synapse crossbar behind the target interface.

    Parameters are those of :class:`~hilt.hdl.synapse_crossbar.SynapseCrossbar`; the
    one-byte layout further requires ``state_bits <= 8`` and ``in_bits <= 8``.

    Attributes
    ----------
    crossbar : SynapseCrossbar
        The crossbar driven.
    layout : SynapseLayout
        The byte layout, shared with the reference face.
    """

    def __init__(self, rows: int, cols: int, tables: StepTables, *, in_bits: int,
                 max_pulses: int, noise_bits: int = 0, lfsr_bits: int = 16, seed: int = 0,
                 dw_min: float | None = None):
        self.dw_min = dw_min
        try:
            self.crossbar = SynapseCrossbar(rows, cols, tables, in_bits=in_bits,
                                            max_pulses=max_pulses, noise_bits=noise_bits,
                                            lfsr_bits=lfsr_bits, seed=seed)
            self.layout = SynapseLayout(rows, cols, tables.state_bits, in_bits,
                                        self.crossbar.acc_width)
        except (TypeError, ValueError):
            self._MustUse__silence = True
            if hasattr(self, "crossbar"):
                self.crossbar._MustUse__silence = True
            raise
        super().__init__(TargetSignature())

    def describe(self) -> dict[str, Any]:
        """The target's capability entry without its id, as the reference face's."""
        bar = self.crossbar
        return describe_crossbar(self.layout, bar.tables, max_pulses=bar.max_pulses,
                                 noise_bits=bar.noise_bits, lfsr_bits=bar.lfsr_bits,
                                 seed=bar.seed, dw_min=self.dw_min)

    def elaborate(self, platform) -> Module:
        m = Module()
        lay, bar = self.layout, self.crossbar
        rows, cols, b = lay.rows, lay.cols, lay.state_bits
        clear = Signal()
        m.submodules.crossbar = ResetInserter({"sync": clear})(bar)

        request = self.request.payload
        beat = self.payload.payload
        taken = self.payload.valid & self.payload.ready
        sent = self.result.valid & self.result.ready

        # Payload bytes of a row, a vector or a slot; result bytes of a row or of a y.
        held = [Signal(8, name=f"in{k}") for k in range(max(lay.row_bytes, lay.slot_bytes))]
        answer_bytes = [Signal(8, name=f"out{k}")
                        for k in range(max(lay.row_bytes, lay.out_bytes))]
        index = Signal(range(len(held) + len(answer_bytes) + 1))  # byte within the unit
        left = Signal(16)           # payload bytes still to take
        status = Signal(8)          # the answer `done` carries
        check = Signal()            # the request is a check
        bad = Signal()              # the payload so far is refused
        row = Signal(range(rows))
        run = Signal(range(bar.max_pulses + 1))  # slots of the update so far

        def answer(code) -> None:
            m.d.sync += status.eq(code)
            m.next = "done"

        def store(count: int) -> None:
            """Hold the beat at `index` of a `count`-byte unit; wrap after the last.

            One comparison per byte rather than ``Array(held)[index]`` on the left: that
            gives every byte a case over every index, Verilog quadratic in the row.
            """
            for k, byte in enumerate(held[:count]):
                with m.If(index == k):
                    m.d.sync += byte.eq(beat.data)
            m.d.sync += [left.eq(left - 1), index.eq(Mux(index == count - 1, 0, index + 1))]

        # A level's bits past state_bits, an input's bits past its sign, must be clear.
        level_bad = beat.data[b:].any() if b < 8 else Const(0)
        if lay.in_bits < 8:
            top = beat.data[lay.in_bits - 1:]
            input_bad = top.any() & ~top.all()
        else:
            input_bad = Const(0)
        # The slot completed by this beat, if it is the slot's final byte.
        slot = Cat(*held[:lay.slot_bytes - 1], beat.data)
        last_bit = slot[lay.slot_bits - 1]
        slot_bad = slot[lay.slot_bits:].any() | (run == bar.max_pulses)

        with m.FSM():
            with m.State("idle"):
                m.d.comb += self.request.ready.eq(1)
                with m.If(self.request.valid):
                    m.d.sync += [left.eq(request.count), index.eq(0), bad.eq(0), run.eq(0),
                                 check.eq(request.check), row.eq(request.address)]
                    with m.Switch(request.op):
                        with m.Case(Op.WRITE):
                            with m.If(request.address >= rows):
                                answer(BAD_ADDRESS)
                            with m.Elif(request.count != lay.row_bytes):
                                answer(BAD_PAYLOAD)
                            with m.Else():
                                m.next = "write"
                        with m.Case(Op.READ):
                            with m.If(request.address >= rows):
                                answer(BAD_ADDRESS)
                            with m.Elif(request.count != lay.row_bytes):
                                answer(BAD_PAYLOAD)
                            with m.Elif(request.check):
                                answer(OK)
                            with m.Else():
                                m.next = "readback"
                        with m.Case(Op.FORWARD):
                            with m.If(request.count == 0):
                                answer(BAD_PAYLOAD)
                            with m.Else():
                                m.next = "forward"
                        with m.Case(Op.PULSE):
                            with m.If(request.count == 0):
                                answer(BAD_PAYLOAD)
                            with m.Else():
                                m.next = "pulse"
                        with m.Case(Op.RESET):
                            m.d.comb += clear.eq(~request.check)
                            answer(OK)

            with m.State("write"):
                m.d.comb += self.payload.ready.eq(1)
                with m.If(taken):
                    store(lay.row_bytes)
                    m.d.sync += bad.eq(bad | level_bad)
                    with m.If(left == 1):
                        with m.If(check):
                            answer(Mux(bad | level_bad, BAD_PAYLOAD, OK))
                        with m.Else():
                            m.next = "program"

            with m.State("program"):
                program = bar.program.payload
                m.d.comb += [bar.program.valid.eq(1), program.row.eq(row)]
                m.d.comb += [program.plus[j].eq(held[j][:b]) for j in range(cols)]
                m.d.comb += [program.minus[j].eq(held[cols + j][:b]) for j in range(cols)]
                with m.If(bar.program.ready):
                    answer(OK)

            with m.State("readback"):
                m.d.comb += [bar.readback.valid.eq(1), bar.readback.payload.eq(row)]
                with m.If(bar.readback.ready):
                    m.next = "state"

            with m.State("state"):
                levels = bar.state_layout(bar.state.payload)
                m.d.comb += bar.state.ready.eq(1)
                with m.If(bar.state.valid):
                    m.d.sync += [answer_bytes[j].eq(levels.plus[j]) for j in range(cols)]
                    m.d.sync += [answer_bytes[cols + j].eq(levels.minus[j])
                                 for j in range(cols)]
                    m.d.sync += index.eq(0)
                    m.next = "send row"

            with m.State("send row"):
                m.d.comb += [self.result.valid.eq(1),
                             self.result.payload.eq(Array(answer_bytes)[index])]
                with m.If(sent):
                    m.d.sync += index.eq(index + 1)
                    with m.If(index == lay.row_bytes - 1):
                        answer(OK)

            with m.State("forward"):
                m.d.comb += self.payload.ready.eq(1)
                with m.If(taken):
                    store(cols)
                    m.d.sync += bad.eq(bad | input_bad)
                    with m.If(check & (left == 1)):
                        whole = index == cols - 1
                        answer(Mux(bad | input_bad | ~whole, BAD_PAYLOAD, OK))
                    with m.Elif(~check & (index == cols - 1)):
                        m.next = "x"

            with m.State("x"):
                m.d.comb += bar.x.valid.eq(1)
                m.d.comb += [bar.x.payload[j].eq(held[j][:lay.in_bits]) for j in range(cols)]
                with m.If(bar.x.ready):
                    m.next = "y"

            with m.State("y"):
                ys = bar.y_layout(bar.y.payload)
                pad = 8 * lay.y_bytes - lay.acc_width
                wide = Cat(*(Cat(ys[i], ys[i][-1].replicate(pad)) for i in range(rows)))
                m.d.comb += bar.y.ready.eq(1)
                with m.If(bar.y.valid):
                    m.d.sync += [answer_bytes[k].eq(wide.word_select(k, 8))
                                 for k in range(lay.out_bytes)]
                    m.d.sync += index.eq(0)
                    m.next = "send y"

            with m.State("send y"):
                m.d.comb += [self.result.valid.eq(1),
                             self.result.payload.eq(Array(answer_bytes)[index])]
                with m.If(sent):
                    m.d.sync += index.eq(index + 1)
                    with m.If(index == lay.out_bytes - 1):
                        m.d.sync += index.eq(0)
                        with m.If(left == 0):
                            answer(OK)
                        with m.Else():
                            m.next = "forward"

            with m.State("pulse"):
                complete = index == lay.slot_bytes - 1
                m.d.comb += self.payload.ready.eq(1)
                with m.If(taken):
                    store(lay.slot_bytes)
                    with m.If(complete):
                        m.d.sync += [bad.eq(bad | slot_bad),
                                     run.eq(Mux(last_bit, 0, run + 1))]
                    with m.If(check & (left == 1)):
                        refused = bad | ~complete | slot_bad | ~last_bit
                        answer(Mux(refused, BAD_PAYLOAD, OK))
                    with m.Elif(~check & complete):
                        m.next = "update"

            with m.State("update"):
                m.d.comb += [bar.update.valid.eq(1),
                             bar.update.payload.eq(Cat(*held[:lay.slot_bytes]))]
                with m.If(bar.update.ready):
                    with m.If(left == 0):
                        answer(OK)
                    with m.Else():
                        m.next = "pulse"

            with m.State("done"):
                m.d.comb += [self.done.valid.eq(1), self.done.payload.eq(status)]
                with m.If(self.done.ready):
                    m.next = "idle"
        return m
