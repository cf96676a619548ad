"""What the command dispatcher drives: the gateware target interface, and a byte memory.

A target is anything WRITE, READ, FORWARD, PULSE and RESET reach: a processing-element
array, a synapse crossbar, or :class:`MemoryTarget`. Each is a component whose signature
is :class:`TargetSignature`; the dispatcher (:mod:`hilt.firmware.dispatcher`) owns the
protocol (framing, sequencing, the command's own payload checks and the target id) and
hands a target only its part of a command.

The interface, from the target's side
-------------------------------------
``request``: In(stream of :data:`TARGET_REQUEST`) ``{op, check, address, count}``
    ``op`` is an :class:`Op`, numbered as the protocol's command codes. ``count`` is the
    number of ``payload`` beats that follow for WRITE (the data bytes, at least one),
    FORWARD (the inputs after the target id) and PULSE (the update slots after the
    target id); FORWARD and PULSE may carry none. For READ ``count`` is the number of
    bytes asked for (1..max_payload) and no payload follows; RESET has neither.
    ``address`` is the WRITE or READ address, 0 otherwise.
``payload``: In(stream of :data:`~hilt.firmware.framing.BODY_BEAT`) ``{data, last}``
    The ``count`` payload bytes in order, ``last`` on the final one.
``result``: Out(stream of ``unsigned(8)``)
    The bytes a READ (exactly ``count``) or FORWARD answers; nothing for the others.
    A result longer than the device's max_payload makes the command BAD_PAYLOAD.
``done``: Out(stream of ``unsigned(8)``)
    One beat per request: a :class:`~hilt.host.protocol.spec.Status` code, ``OK`` or the
    refusal (``BAD_ADDRESS``, ``BAD_PAYLOAD``). It ends the request, so a result may be
    empty; a target offers it only once every result byte has been taken.

Every command reaches a target twice: first with ``check`` set, then, only if that
answered ``OK``, with ``check`` clear and the same fields and payload. A check changes
nothing and answers no result: it decides the status the command will end with, so a
refused command applies nothing, as the protocol requires (a PULSE whose last slot is
out of range must not apply the first). The commit that follows must apply the command
and answer ``OK``. A target may answer ``done`` before it has taken all of the payload
(a refusal decided from ``request`` alone); the dispatcher then sends no more of it.
RESET reaches every target in id order, all checks first, then all commits.

The dispatcher takes ``result`` whenever it is offered and ``done`` in any cycle no
result byte is offered, sends the payload as fast as it is taken, and drives one target
at a time; a target must answer every request it takes, or the dispatcher waits for it
for ever.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hilt.firmware.framing import BODY_BEAT
from hilt.hdl.params import check_int
from hilt.host.protocol import spec

OK = int(spec.Status.OK)
BAD_ADDRESS = int(spec.Status.BAD_ADDRESS)
BAD_PAYLOAD = int(spec.Status.BAD_PAYLOAD)

TARGET_COMMANDS = tuple(sorted(spec.HOST_COMMANDS - spec.SEQUENCE_EXEMPT))
"""The commands that reach targets: every host command but IDENTIFY and SYNC."""


class Op(enum.Enum, shape=max(TARGET_COMMANDS).bit_length()):
    """The operation a target is asked for; its value is the protocol's command code."""

    WRITE = spec.Command.WRITE.value
    READ = spec.Command.READ.value
    FORWARD = spec.Command.FORWARD.value
    PULSE = spec.Command.PULSE.value
    RESET = spec.Command.RESET.value


TARGET_REQUEST = data.StructLayout({"op": Op, "check": 1, "address": 16, "count": 16})
"""One request to a target (see the module docstring)."""


class TargetSignature(wiring.Signature):
    """The ports of a target, as the target sees them (see the module docstring)."""

    def __init__(self):
        super().__init__({
            "request": In(stream.Signature(TARGET_REQUEST)),
            "payload": In(stream.Signature(BODY_BEAT)),
            "result": Out(stream.Signature(8)),
            "done": Out(stream.Signature(8)),
        })

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return "TargetSignature()"


class MemoryTarget(wiring.Component):
    """A byte memory behaving exactly as :class:`hilt.host.protocol.reference.MemoryTarget`.

    - WRITE stores the payload at ``address``; READ returns ``count`` bytes from there;
      either is refused with BAD_ADDRESS if it reaches past the memory.
    - FORWARD maps each input byte ``b`` to ``(b + 1 + memory[b % size]) % 256``;
      BAD_PAYLOAD without inputs.
    - PULSE takes u16 little-endian addresses and adds one to each byte addressed, once
      per occurrence; BAD_PAYLOAD for no bytes or an odd number, else BAD_ADDRESS if any
      address is outside the memory, and then nothing is applied.
    - RESET zeroes the memory, one byte a cycle.

    The memory is one block RAM with a synchronous read port; it holds zeros after
    configuration. Each FORWARD input and each PULSE slot takes a few cycles; WRITE and
    READ take one a byte.

    Parameters
    ----------
    size : int
        Bytes of memory, 1..65536 (the addresses a u16 reaches).
    """

    def __init__(self, size: int):
        try:
            self.size = check_int("size", size, 1, 0x10000)
        except (TypeError, ValueError):
            self._MustUse__silence = True
            raise
        super().__init__(TargetSignature())

    def describe(self) -> dict[str, Any]:
        """The target's capability entry without its id, as the reference target's."""
        return {"kind": "memory", "params": {"size": self.size},
                "write": {"unit": "byte", "size": self.size},
                "forward": {"in_bytes": None, "out_bytes": None}}

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.memory = memory = Memory(shape=8, depth=self.size, init=[])
        write = memory.write_port()
        read = memory.read_port()
        request = self.request.payload
        beat = self.payload.payload

        pointer = Signal(16)        # the memory address of the next byte
        left = Signal(16)           # payload beats to take, or result bytes to send
        status = Signal(8)          # the answer `done` carries
        held = Signal(8)            # a FORWARD input, or a PULSE address's low byte
        high = Signal()             # the next PULSE byte is an address's high byte
        outside = Signal()          # a PULSE address seen so far is outside the memory
        taken = self.payload.valid & self.payload.ready
        sent = self.result.valid & self.result.ready
        fits = request.address + request.count <= self.size
        slot = Cat(held, beat.data)
        # FORWARD looks up memory[b % size]; every byte is an address when size >= 256.
        looked_up = beat.data if self.size >= 256 else beat.data % self.size

        def answer(code) -> None:
            m.d.sync += status.eq(code)
            m.next = "done"

        with m.FSM():
            with m.State("idle"):
                m.d.comb += [self.request.ready.eq(1), read.addr.eq(request.address)]
                with m.If(self.request.valid):
                    m.d.sync += [pointer.eq(request.address), left.eq(request.count),
                                 high.eq(0), outside.eq(0)]
                    with m.Switch(request.op):
                        with m.Case(Op.WRITE):
                            with m.If(request.check | ~fits):
                                answer(Mux(fits, OK, BAD_ADDRESS))
                            with m.Else():
                                m.next = "write"
                        with m.Case(Op.READ):
                            with m.If(request.check | ~fits):
                                answer(Mux(fits, OK, BAD_ADDRESS))
                            with m.Else():
                                m.next = "read"
                        with m.Case(Op.FORWARD):
                            with m.If(request.count == 0):
                                answer(BAD_PAYLOAD)
                            with m.Elif(request.check):
                                answer(OK)
                            with m.Else():
                                m.next = "forward"
                        with m.Case(Op.PULSE):
                            with m.If((request.count == 0) | request.count[0]):
                                answer(BAD_PAYLOAD)
                            with m.Elif(request.check):
                                m.next = "pulse check"
                            with m.Else():
                                m.next = "pulse"
                        with m.Case(Op.RESET):
                            with m.If(request.check):
                                answer(OK)
                            with m.Else():
                                m.d.sync += pointer.eq(0)
                                m.next = "clear"

            with m.State("write"):
                m.d.comb += [self.payload.ready.eq(1), write.addr.eq(pointer),
                             write.data.eq(beat.data), write.en.eq(self.payload.valid)]
                with m.If(taken):
                    m.d.sync += [pointer.eq(pointer + 1), left.eq(left - 1)]
                    with m.If(left == 1):
                        answer(OK)

            with m.State("read"):
                # The port reads ahead: the byte on `result` was addressed a cycle before.
                m.d.comb += [self.result.valid.eq(1), self.result.payload.eq(read.data),
                             read.addr.eq(pointer + sent)]
                with m.If(sent):
                    m.d.sync += [pointer.eq(pointer + 1), left.eq(left - 1)]
                    with m.If(left == 1):
                        answer(OK)

            with m.State("forward"):
                m.d.comb += [self.payload.ready.eq(1), read.addr.eq(looked_up)]
                with m.If(taken):
                    m.d.sync += [held.eq(beat.data), left.eq(left - 1)]
                    m.next = "forward result"

            with m.State("forward result"):
                m.d.comb += [read.en.eq(0), self.result.valid.eq(1),
                             self.result.payload.eq(held + 1 + read.data)]
                with m.If(sent):
                    with m.If(left == 0):
                        answer(OK)
                    with m.Else():
                        m.next = "forward"

            with m.State("pulse check"):
                m.d.comb += self.payload.ready.eq(1)
                with m.If(taken):
                    m.d.sync += [left.eq(left - 1), high.eq(~high), held.eq(beat.data)]
                    bad = outside | (high & (slot >= self.size))
                    m.d.sync += outside.eq(bad)
                    with m.If(left == 1):
                        answer(Mux(bad, BAD_ADDRESS, OK))

            with m.State("pulse"):
                m.d.comb += [self.payload.ready.eq(1), read.addr.eq(slot)]
                with m.If(taken):
                    m.d.sync += [left.eq(left - 1), high.eq(~high), held.eq(beat.data)]
                    with m.If(high):
                        m.d.sync += pointer.eq(slot)
                        m.next = "pulse apply"

            with m.State("pulse apply"):
                # Two bytes pass before the next slot's read, so it sees this write.
                m.d.comb += [write.addr.eq(pointer), write.data.eq(read.data + 1),
                             write.en.eq(1)]
                with m.If(left == 0):
                    answer(OK)
                with m.Else():
                    m.next = "pulse"

            with m.State("clear"):
                m.d.comb += [write.addr.eq(pointer), write.data.eq(0), write.en.eq(1)]
                m.d.sync += pointer.eq(pointer + 1)
                with m.If(pointer == self.size - 1):
                    answer(OK)

            with m.State("done"):
                m.d.comb += [self.done.valid.eq(1), self.done.payload.eq(status)]
                with m.If(self.done.ready):
                    m.next = "idle"
        return m
