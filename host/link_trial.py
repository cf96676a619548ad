"""A batch that leaves a mark of every write and pulse, to count what a link did to it.

Fault tests and the link benchmark send a :class:`LinkTrial` to a board's memory target
through a damaged link and then tally, from the answers and from the memory read back
over a clean one, whether any command was applied twice or lost. Each of its ``count``
steps owns one address ``a`` and a value ``d`` (2..201) and sends:

- WRITE ``a`` <- ``d``; PULSE ``a`` (``+1``); READ ``a``, which must answer ``d + 1``;
- a FORWARD of 1..MAX_FORWARD bytes (the board must take frames of MAX_FORWARD + 1),
  whose answer depends on everything written so far.

The memory must end holding ``d + 1`` at ``a``. More means the pulse was applied twice;
``d`` after a READ that answered ``d + 1`` means the write was applied again after the
pulse; anything else is a write or pulse that was lost. The trial begins with a RESET,
so the expected answers do not depend on what the board held before.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

from hilt.host.protocol import reference, spec
from hilt.host.transport import Device, Request

STEP_STRIDE = 4
"""Addresses between two steps' marks."""
MAX_FORWARD = 24
"""Longest FORWARD payload of a step, in bytes."""


@dataclass(frozen=True)
class TrialTally:
    """What a trial's answers and the memory after it show."""

    requests: int
    applied_twice: int
    """Marks showing a pulse applied twice, or a write applied again after its pulse."""
    not_applied: int
    """Marks showing a write or a pulse that never took effect."""
    results_lost: int
    """Answers missing or different from a fault-free board's."""


class LinkTrial:
    """The requests of a trial on memory target ``target`` and the answers they must get.

    Parameters
    ----------
    count : int
        Steps (four or five requests each), 1..``memory_size // STEP_STRIDE``.
    memory_size : int
        Bytes of the board's memory target.
    target : int
        The memory target's id.
    seed : int
        Draws the values and FORWARD inputs.
    """

    def __init__(self, count: int, *, memory_size: int, target: int = 0, seed: int = 0):
        steps = memory_size // STEP_STRIDE
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= steps:
            raise ValueError(f"count must be an int in 1..{steps} for a {memory_size}-byte "
                             f"memory, got {count!r}")
        rng = random.Random(seed)
        self.memory_size = memory_size
        self.target = target
        self.marks = {STEP_STRIDE * i: rng.randint(2, 201) for i in range(count)}
        self.requests = [Request(spec.Command.RESET)]
        self.mark_reads: dict[int, int] = {}
        for address, value in self.marks.items():
            self.requests.append(Request(spec.Command.WRITE,
                                         struct.pack(spec.WRITE_FORMAT, target, address)
                                         + bytes([value])))
            self.requests.append(Request(spec.Command.PULSE, struct.pack("<BH", target, address)))
            self.mark_reads[address] = len(self.requests)
            self.requests.append(Request(spec.Command.READ,
                                         struct.pack(spec.READ_FORMAT, target, address, 1)))
            inputs = rng.randbytes(rng.randint(1, MAX_FORWARD))
            self.requests.append(Request(spec.Command.FORWARD, bytes([target]) + inputs))
        self.expected = self._replay()

    def _replay(self) -> list[bytes]:
        """The answers of a fault-free board, from the reference memory target."""
        memory = reference.MemoryTarget(self.memory_size)
        answers = []
        for request in self.requests:
            payload = request.payload
            if request.command is spec.Command.RESET:
                memory.reset()
                answers.append(b"")
            elif request.command is spec.Command.WRITE:
                _, address = struct.unpack_from(spec.WRITE_FORMAT, payload)
                memory.write(address, payload[struct.calcsize(spec.WRITE_FORMAT):])
                answers.append(b"")
            elif request.command is spec.Command.PULSE:
                memory.pulse(payload[1:])
                answers.append(b"")
            elif request.command is spec.Command.READ:
                _, address, size = struct.unpack(spec.READ_FORMAT, payload)
                answers.append(memory.read(address, size))
            else:
                answers.append(memory.forward(payload[1:]))
        return answers

    @property
    def span(self) -> tuple[int, int]:
        """The address and length of memory that holds every mark."""
        return 0, max(self.marks) + 1

    def read_back(self, device: Device) -> bytes:
        """The memory that holds the marks, read over ``device`` in frames it can carry."""
        start, length = self.span
        chunk = device.max_payload
        return b"".join(device.read(self.target, address, min(chunk, start + length - address))
                        for address in range(start, start + length, chunk))

    def tally(self, results: list[bytes] | None, memory: bytes) -> TrialTally:
        """Count what went wrong, from the batch's answers (None if the call failed) and
        the memory from address 0 read after it."""
        answers = results if results is not None else [None] * len(self.requests)
        lost = sum(got != want for got, want in zip(answers, self.expected, strict=True))
        twice = missing = 0
        for address, value in self.marks.items():
            final = memory[address]
            read = answers[self.mark_reads[address]]
            if final > value + 1 or (final == value and read == bytes([value + 1])):
                twice += 1
            elif final != value + 1:
                missing += 1
        return TrialTally(len(self.requests), twice, missing, lost)
