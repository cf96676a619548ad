"""Fuzzing the device firmware against the reference device, and its cocotb testbench.

:func:`fuzz_stream` makes a random byte stream a host (or a broken line) could send:
valid requests of every command, with retries, duplicates, gaps and random seqs, before
and after SYNC, and frames that are corrupted, truncated, over-long, mis-framed or pure
noise. :func:`compare_responses` names the first response on which two devices differ.
Both are plain Python, for the Amaranth simulator tests and for the test that runs this
testbench.

The cocotb test drives :class:`~hilt.firmware.top.FirmwareTop` through its UART pins with
cocotbext-uart and compares what it answers with the reference device's answers, which
the caller computes. Run through :func:`hilt.sim.runner.simulate`. Parameters (JSON)::

    {"clock_ns": int, "divisor": int,
     "bursts": [[byte, ...], ...],     # sent one after the other on rx
     "expected": [[byte, ...], ...]}   # what the device must answer to each burst

Each burst is sent at line rate once the answers to the one before have all arrived, so
a burst no longer than the device's ``rx_buffer`` never overruns it. Results::

    {"received": [[byte, ...], ...],   # what arrived on tx after each burst
     "timed_out": int | None,          # the burst whose answers did not all come
     "framing_errors": int, "overruns": int, "cycles": int}

Under Icarus the testbench first runs every combinational block once (see
:func:`wake_comb_processes`).
"""

from __future__ import annotations

import logging
import random
import struct
import warnings

import cocotb
from cobs import cobs
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, SimTimeoutError, with_timeout
from cocotbext.uart import UartSink, UartSource

from hilt.host.protocol import codec, spec
from hilt.host.protocol.reference import ReferenceDevice
from hilt.sim.runner import testbench_params, write_testbench_results
from hilt.sim.testbenches.icarus import wake_comb_processes
from hilt.sim.testbenches.streams import sim_cycle
from hilt.sim.testbenches.uart import line_baud

Command = spec.Command
UNKNOWN_CODES = (0x00, 0x08, 0x10, int(Command.ERROR), spec.RESPONSE_FLAG,
                 spec.RESPONSE_FLAG | int(Command.READ), 0xFF)
"""Command codes a device must answer UNKNOWN_COMMAND: none, unused, ERROR, responses."""
COMMAND_WEIGHTS = {Command.WRITE: 5, Command.READ: 5, Command.FORWARD: 4, Command.PULSE: 4,
                   Command.RESET: 1, Command.SYNC: 1, Command.IDENTIFY: 0.5}
"""How often each host command is sent (IDENTIFY answers are long: keep them rare)."""


class _Host:
    """A host while fuzzing: the frames it sent lately, and the reference device that
    answers them, which tells it the seq expected next, so most requests are in sequence."""

    def __init__(self, rng: random.Random, device: ReferenceDevice):
        self.rng = rng
        self.device = device
        self.max_payload = device.max_payload
        # A target's memory size, to aim addresses at its edges (64 if it has none).
        self.sizes = {i: getattr(target, "size", 64) for i, target in device.targets.items()}
        self.sent: list[bytes] = []
        self.answers: list[bytes] = []

    def send(self, piece: bytes) -> bytes:
        """``piece``, after the device has answered it."""
        self.answers.append(self.device.receive(piece))
        return piece

    def target(self) -> int:
        """Mostly a target that exists, sometimes one that does not."""
        rng = self.rng
        if rng.random() < 0.85:
            return rng.choice(list(self.sizes))
        return rng.choice([i for i in range(256) if i not in self.sizes])

    def address(self, target: int, span: int) -> int:
        """An address for ``span`` bytes: inside, at the edge or past the memory."""
        rng = self.rng
        size = self.sizes.get(target, 64)
        kind = rng.random()
        if kind < 0.7:
            return rng.randrange(max(size - span + 1, 1))
        if kind < 0.9:
            return max(size - span + rng.randrange(-1, 3), 0)
        return rng.choice([size, 0xFFFF, rng.randrange(0x10000)])

    def data(self, most: int) -> bytes:
        rng = self.rng
        return bytes(rng.choice([0, rng.randrange(256)])
                     for _ in range(rng.randint(0, max(most, 0))))

    def payload(self, command: Command) -> bytes:
        """A payload for ``command``, right in shape most of the time."""
        rng = self.rng
        room = self.max_payload
        if command in (Command.IDENTIFY, Command.SYNC, Command.RESET):
            return b"" if rng.random() < 0.7 else self.data(3) + b"\x01"
        target = self.target()
        if command is Command.WRITE:
            if rng.random() < 0.1:
                return self.data(3)
            data = self.data(room - 3) or b"\x2a"
            return (bytes([target]) + self.address(target, len(data)).to_bytes(2, "little")
                    + data)
        if command is Command.READ:
            count = rng.choice([rng.randint(1, min(room, 16)), rng.randint(0, room + 2)])
            args = (bytes([target]) + self.address(target, count).to_bytes(2, "little")
                    + count.to_bytes(2, "little"))
            return args if rng.random() < 0.9 else args[:rng.randrange(5)] + self.data(2)
        if command is Command.PULSE:
            slots = rng.randint(0, (room - 1) // 2)
            size = self.sizes.get(target, 64)
            addresses = [rng.randrange(size) if rng.random() < 0.95 else
                         rng.choice([size, 0xFFFF]) for _ in range(slots)]
            body = b"".join(a.to_bytes(2, "little") for a in addresses)
            if body and rng.random() < 0.1:
                body = body[:-1]
            return bytes([target]) + body
        if rng.random() < 0.05:  # FORWARD without even a target id
            return b""
        return bytes([target]) + self.data(room - 1)

    def request(self) -> bytes:
        """One well-formed request frame; it may still be refused."""
        rng = self.rng
        kind = rng.random()
        if kind < 0.08:
            return codec.encode_frame(rng.randrange(256), rng.choice(UNKNOWN_CODES))
        if kind < 0.12:
            return codec.encode_frame(rng.randrange(256), rng.choice(list(Command)),
                                      rng.randrange(1, 256))
        if kind < 0.2 and self.sent:
            return rng.choice(self.sent[-8:])                    # a retry
        command = rng.choices(list(COMMAND_WEIGHTS), weights=list(COMMAND_WEIGHTS.values()))[0]
        seq = self.device.expected
        roll = rng.random()
        if roll < 0.05:
            seq = (seq + rng.randint(1, 4)) % spec.SEQ_MODULUS           # a gap
        elif roll < 0.1:
            seq = rng.randrange(spec.SEQ_MODULUS)
        frame = codec.encode_frame(seq, command, spec.Status.OK, self.payload(command))
        self.sent.append(frame)
        return frame

    def damaged(self) -> bytes:
        """Something that is not a good frame."""
        rng = self.rng
        frame = self.request()
        kind = rng.randrange(8)
        if kind == 0:           # a flipped bit: a made or lost zero splits or merges runs
            i = rng.randrange(len(frame) - 1)
            return frame[:i] + bytes([frame[i] ^ 1 << rng.randrange(8)]) + frame[i + 1:]
        if kind == 1:           # cut short
            return frame[:rng.randrange(1, len(frame) - 1)] + spec.DELIMITER
        if kind == 2:           # noise, delimiters and all
            return bytes(rng.choice([0, rng.randrange(256)]) for _ in range(rng.randint(1, 30)))
        if kind == 3:           # a payload longer than the device takes
            return codec.encode_frame(rng.randrange(256), Command.FORWARD, spec.Status.OK,
                                      self.data(3) + bytes(self.max_payload + 1))
        if kind == 4:           # a run too long for any frame, cut off before its end
            size = codec.max_wire_size(self.max_payload) + rng.randint(0, 40)
            return bytes(rng.randrange(1, 256) for _ in range(size)) + spec.DELIMITER
        if kind == 5:           # a length field that lies, under a good CRC
            payload = self.data(8)
            length = (len(payload) + rng.choice([-1, 1, 256])) % 0x10000
            body = struct.pack(spec.HEADER_FORMAT, rng.randrange(256), Command.WRITE, 0,
                               length) + payload
            crc = struct.pack(spec.CRC_FORMAT, codec.crc16(body))
            return cobs.encode(body + crc) + spec.DELIMITER
        if kind == 6:           # a body too short for a header, or none at all
            return cobs.encode(self.data(6)) + spec.DELIMITER
        return spec.DELIMITER * rng.randint(1, 3) + frame         # idle line first


def fuzz_stream(rng: random.Random, frames: int, device: ReferenceDevice) -> tuple[bytes, bytes]:
    """``frames`` requests and damaged frames as one byte stream, and ``device``'s answers.

    ``device`` is a fresh reference device: the stream aims at its targets (addresses at
    the edges of a target's ``size``) and mostly at the seq it expects. The stream
    starts unsynced (a few requests come before the first SYNC), syncs, and ends with a
    delimiter and an IDENTIFY: whatever came before, a device must answer it.
    """
    host = _Host(rng, device)
    pieces = [host.send(host.request()) for _ in range(rng.randint(0, 3))]
    pieces.append(host.send(codec.encode_frame(rng.randrange(256), Command.SYNC)))
    for _ in range(frames):
        pieces.append(host.send(host.damaged() if rng.random() < 0.25 else host.request()))
    pieces.append(host.send(spec.DELIMITER + codec.encode_frame(rng.randrange(256),
                                                                Command.IDENTIFY)))
    return b"".join(pieces), b"".join(host.answers)


def describe_frame(wire: bytes | None) -> str:
    """A response frame for a message: decoded if it decodes, else its bytes."""
    if wire is None:
        return "nothing"
    if not wire.endswith(spec.DELIMITER):
        return f"an unfinished frame {wire!r}"
    try:
        frame = codec.decode_frame(wire)
    except codec.FrameError:
        return f"undecodable {wire!r}"
    name = spec.Command(frame.command).name if frame.command in set(Command) else "?"
    try:
        status = spec.Status(frame.status).name
    except ValueError:
        status = str(frame.status)
    return (f"seq {frame.seq} cmd {frame.cmd:#04x} ({name}) {status} "
            f"payload {frame.payload[:24]!r}{'...' if len(frame.payload) > 24 else ''}")


def compare_responses(got: bytes, expected: bytes) -> str | None:
    """None if equal, else which response differs first and both versions of it."""
    if got == expected:
        return None
    ours, theirs = _frames(got), _frames(expected)
    for index in range(max(len(ours), len(theirs))):
        mine = ours[index] if index < len(ours) else None
        wanted = theirs[index] if index < len(theirs) else None
        if mine != wanted:
            return (f"response {index} of {len(theirs)}: got {describe_frame(mine)}, "
                    f"expected {describe_frame(wanted)}")
    raise AssertionError("unreachable: the streams differ")


def _frames(wire: bytes) -> list[bytes]:
    """The frames in ``wire`` with their delimiters, and any unfinished one after them."""
    *complete, tail = wire.split(spec.DELIMITER)
    return [frame + spec.DELIMITER for frame in complete] + ([tail] if tail else [])




@cocotb.test()
async def firmware_against_reference(dut):
    params = testbench_params()
    clock_ns, divisor = params["clock_ns"], params["divisor"]
    baud = line_baud(clock_ns, divisor)
    bursts, expected = params["bursts"], params["expected"]

    if cocotb.SIM_NAME.lower().startswith("icarus"):
        wake_comb_processes(dut)
    dut.rx.value = 1
    Clock(dut.clk, clock_ns, unit="ns").start()
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    started = sim_cycle(clock_ns)
    with warnings.catch_warnings():
        # cocotbext-uart 0.1.4 idles the line with setimmediatevalue (see testbenches.uart).
        warnings.filterwarnings("ignore", message="Use `handle.set", category=DeprecationWarning)
        source = UartSource(dut.rx, baud=baud, bits=8, stop_bits=1)
    sink = UartSink(dut.tx, baud=baud, bits=8, stop_bits=1)
    for model in (source, sink):
        model.log.setLevel(logging.WARNING)

    byte_ns = 10 * divisor * clock_ns
    received: list[list[int]] = []
    timed_out = None
    for index, (burst, answer) in enumerate(zip(bursts, expected, strict=True)):
        await source.write(bytes(burst))
        # The device answers within a few byte times of the last byte of each request.
        budget = (len(burst) + len(answer) + 20) * 3 * byte_ns
        got: list[int] = []
        try:
            await with_timeout(source.wait(), budget, "ns")
            while len(got) < len(answer):
                await with_timeout(sink.wait(), budget, "ns")
                got += sink.read_nowait()
        except SimTimeoutError:
            timed_out = index
        received.append(got)
        if timed_out is not None:
            break
    # Anything more the device says comes within a few byte times.
    await ClockCycles(dut.clk, 20 * 10 * divisor)
    await RisingEdge(dut.clk)
    if received:
        received[-1] += sink.read_nowait()
    write_testbench_results(params, {
        "received": received, "timed_out": timed_out,
        "framing_errors": int(dut.framing_errors.value), "overruns": int(dut.overruns.value),
        "cycles": sim_cycle(clock_ns) - started,
    })
