"""The dispatcher in Amaranth's simulator, byte for byte against the reference device.

The frame layer, the dispatcher and its targets run without the UART
(:class:`~hilt.firmware.top.FrameDevice`), fed wire bytes with random gaps and read under
random back-pressure; the reference device (:mod:`hilt.host.protocol.reference`) gets the
same bytes, and the two response streams must be identical. After the last expected byte
the device must stay quiet: an extra response fails as surely as a wrong one.
"""

from __future__ import annotations

import json
import random
import struct
from typing import Any

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from cobs import cobs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hilt.firmware.dispatcher import Dispatcher, RequestReceiver
from hilt.firmware.targets import TARGET_COMMANDS, MemoryTarget, Op, TargetSignature
from hilt.firmware.top import FrameDevice, capability_record
from hilt.host.protocol import codec, reference, spec
from hilt.sim.frame_exchange import exchange
from hilt.sim.testbenches.firmware_fuzz import COMMAND_WEIGHTS, compare_responses, fuzz_stream

Command = spec.Command
Status = spec.Status
MAX_PAYLOAD = 24
BOARD, BUILD = "sim-board", "0123abcd"


class Doubler(wiring.Component):
    """A test target: FORWARD answers every input byte twice, so its result can be longer
    than max_payload. WRITE and READ are refused with BAD_ADDRESS and PULSE with
    BAD_PAYLOAD before any payload is taken, and a FORWARD check answers without taking
    its payload, so the dispatcher's early ``done`` path runs."""

    def __init__(self):
        super().__init__(TargetSignature())

    def describe(self) -> dict[str, Any]:
        return {"kind": "doubler"}

    def elaborate(self, platform) -> Module:
        m = Module()
        request = self.request.payload
        left, status, byte, second = Signal(16), Signal(8), Signal(8), Signal()

        def answer(code: int) -> None:
            m.d.sync += status.eq(code)
            m.next = "done"

        with m.FSM():
            with m.State("idle"):
                m.d.comb += self.request.ready.eq(1)
                with m.If(self.request.valid):
                    m.d.sync += left.eq(request.count)
                    with m.Switch(request.op):
                        with m.Case(Op.WRITE, Op.READ):
                            answer(Status.BAD_ADDRESS)
                        with m.Case(Op.PULSE):
                            answer(Status.BAD_PAYLOAD)
                        with m.Case(Op.RESET):
                            answer(Status.OK)
                        with m.Case(Op.FORWARD):
                            with m.If(request.check | (request.count == 0)):
                                answer(Status.OK)
                            with m.Else():
                                m.next = "take"
            with m.State("take"):
                m.d.comb += self.payload.ready.eq(1)
                with m.If(self.payload.valid):
                    m.d.sync += [byte.eq(self.payload.payload.data), left.eq(left - 1)]
                    m.next = "twice"
            with m.State("twice"):
                m.d.comb += [self.result.valid.eq(1), self.result.payload.eq(byte)]
                with m.If(self.result.ready):
                    m.d.sync += second.eq(~second)
                    with m.If(second & (left == 0)):
                        answer(Status.OK)
                    with m.Elif(second):
                        m.next = "take"
            with m.State("done"):
                m.d.comb += [self.done.valid.eq(1), self.done.payload.eq(status)]
                with m.If(self.done.ready):
                    m.next = "idle"
        return m


class ReferenceDoubler:
    """:class:`Doubler` for the reference device."""

    def describe(self) -> dict[str, Any]:
        return {"kind": "doubler"}

    def write(self, address: int, data: bytes) -> None:
        raise reference.TargetError(Status.BAD_ADDRESS, "nothing to write")

    def read(self, address: int, count: int) -> bytes:
        raise reference.TargetError(Status.BAD_ADDRESS, "nothing to read")

    def forward(self, payload: bytes) -> bytes:
        return bytes(b for b in payload for _ in range(2))

    def pulse(self, payload: bytes) -> None:
        raise reference.TargetError(Status.BAD_PAYLOAD, "nothing to pulse")

    def reset(self) -> None:
        pass


# Memories smaller than 256 bytes (FORWARD looks up b % size) and larger, and an id gap.
MEMORY_SIZES = {0: 40, 3: 300}
DOUBLER_ID = 9


def gateware_targets() -> dict[int, wiring.Component]:
    return {**{i: MemoryTarget(size) for i, size in MEMORY_SIZES.items()},
            DOUBLER_ID: Doubler()}


def reference_device(max_payload: int = MAX_PAYLOAD) -> reference.ReferenceDevice:
    targets = {**{i: reference.MemoryTarget(size) for i, size in MEMORY_SIZES.items()},
               DOUBLER_ID: ReferenceDoubler()}
    return reference.ReferenceDevice(targets, max_payload=max_payload, board=BOARD, build=BUILD)


def frame_device(max_payload: int = MAX_PAYLOAD) -> FrameDevice:
    targets = gateware_targets()
    record = capability_record(targets, board=BOARD, build=BUILD, max_payload=max_payload,
                               baud=spec.DEFAULT_BAUD)
    return FrameDevice(targets, record, max_payload=max_payload)


def check_against_reference(line: bytes, expected: bytes, **probs) -> None:
    got = exchange(frame_device(), line, len(expected), **probs)
    assert (message := compare_responses(got, expected)) is None, message


def wire(*frames: tuple) -> bytes:
    return b"".join(codec.encode_frame(*frame) for frame in frames)


def answers(*frames: tuple) -> bytes:
    """Response frames: (seq, command, status, payload), the flag added to the command."""
    return b"".join(codec.encode_frame(seq, int(command) | spec.RESPONSE_FLAG, status, payload)
                    for seq, command, status, payload in frames)


def read_args(target: int, address: int, count: int) -> bytes:
    return struct.pack(spec.READ_FORMAT, target, address, count)


def write_args(target: int, address: int, data: bytes) -> bytes:
    return struct.pack(spec.WRITE_FORMAT, target, address) + data


# --- the random streams ---------------------------------------------------------------

SEEDS = (10, 11, 12)
FUZZ_FRAMES = 70


@pytest.mark.parametrize("seed, valid_prob, ready_prob", [
    (SEEDS[0], 1.0, 1.0),       # full rate both ways
    (SEEDS[1], 0.7, 0.7),
    (SEEDS[2], 0.9, 0.15),      # a slow host: the device must hold the line, not drop bytes
])
def test_fuzz_stream_matches_reference(seed, valid_prob, ready_prob):
    line, expected = fuzz_stream(random.Random(seed), FUZZ_FRAMES, reference_device())
    check_against_reference(line, expected, seed=seed, valid_prob=valid_prob,
                            ready_prob=ready_prob)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False), st.integers(0, 2**16))
def test_streams_match_reference(rng, seed):
    line, expected = fuzz_stream(rng, 20, reference_device())
    check_against_reference(line, expected, seed=seed)


def test_fuzz_stream_reaches_every_outcome():
    """The streams above are worth something only if they reach every decision."""
    responses = [frame for seed in SEEDS for frame in codec.FrameDecoder().feed(
        fuzz_stream(random.Random(seed), FUZZ_FRAMES, reference_device())[1])]
    seen = {(frame.command, frame.status) for frame in responses}
    wanted = {(int(c), Status.OK) for c in spec.HOST_COMMANDS}
    wanted |= {(int(c), Status.BAD_PAYLOAD) for c in spec.HOST_COMMANDS}
    wanted |= {(int(c), Status.BAD_TARGET) for c in TARGET_COMMANDS if c != Command.RESET}
    wanted |= {(int(c), Status.BAD_ADDRESS) for c in (Command.WRITE, Command.READ,
                                                      Command.PULSE)}
    wanted |= {(int(Command.ERROR), int(s)) for s in (Status.BAD_CRC, Status.BAD_FRAME,
                                                     Status.TOO_LONG)}
    assert wanted <= seen, sorted(wanted - seen)
    statuses = {status for _, status in seen}
    assert {Status.NOT_SYNCED, Status.OUT_OF_SEQUENCE, Status.BAD_FRAME,
            Status.UNKNOWN_COMMAND} <= statuses
    error_seqs = {frame.seq == 0 for frame in responses if frame.command == Command.ERROR}
    assert error_seqs == {True, False}
    assert set(COMMAND_WEIGHTS) == spec.HOST_COMMANDS


# --- decisions, spelled out -----------------------------------------------------------

def test_session_sequencing_and_duplicates():
    data = b"\x11\x22\x33"
    line = wire(
        (4, Command.READ, 0, read_args(0, 0, 3)),              # before any SYNC
        (9, Command.SYNC),
        (10, Command.WRITE, 0, write_args(0, 5, data)),
        (10, Command.WRITE, 0, write_args(0, 5, b"\x99")),     # a retry: not applied
        (11, Command.PULSE, 0, bytes([0]) + struct.pack("<3H", 5, 39, 5)),
        (12, Command.PULSE, 0, bytes([0]) + struct.pack("<H", 40)),   # refused ...
        (12, Command.READ, 0, read_args(0, 5, 3)),             # ... so 12 is still expected
        (12, Command.READ, 0, read_args(0, 39, 1)),            # a retry of a READ: executed
        (20, Command.READ, 0, read_args(0, 5, 1)),             # ahead: out of sequence
        (13, Command.FORWARD, 0, bytes([0, 5, 45, 0])),
        (14, Command.RESET),
        (15, Command.READ, 0, read_args(0, 5, 3)),
    )
    expected = answers(
        (4, Command.READ, Status.NOT_SYNCED, b""),
        (9, Command.SYNC, Status.OK, b""),
        (10, Command.WRITE, Status.OK, b""),
        (10, Command.WRITE, Status.OK, b""),
        (11, Command.PULSE, Status.OK, b""),
        (12, Command.PULSE, Status.BAD_ADDRESS, b""),
        (12, Command.READ, Status.OK, b"\x13\x22\x33"),
        (12, Command.READ, Status.OK, b"\x01"),
        (20, Command.READ, Status.OUT_OF_SEQUENCE, b"\x0d"),
        # b -> b + 1 + memory[b % 40]: 5 -> 6 + 0x13, 45 -> 46 + 0x13, 0 -> 1
        (13, Command.FORWARD, Status.OK, bytes([0x19, 0x41, 0x01])),
        (14, Command.RESET, Status.OK, b""),
        (15, Command.READ, Status.OK, b"\x00\x00\x00"),
    )
    assert reference_device().receive(line) == expected
    check_against_reference(line, expected)


def test_payload_and_target_checks_in_order():
    big = MEMORY_SIZES[3]
    line = wire(
        (0, Command.SYNC),
        (1, Command.READ, 0, read_args(0, 0, 0)),              # count 0
        (1, Command.READ, 0, read_args(7, 0, MAX_PAYLOAD + 1)),  # count first, then target
        (1, Command.READ, 0, read_args(7, 0, 1)),
        (1, Command.READ, 0, read_args(3, big - 2, 3)),        # past the end
        (1, Command.WRITE, 0, write_args(0, 0, b"")),          # no data
        (1, Command.WRITE, 0, write_args(0, 40, b"\x01")),
        (1, Command.PULSE, 0, bytes([0, 1, 0, 2])),            # an odd number of bytes
        (1, Command.FORWARD, 0, bytes([0])),                   # no inputs
        (1, Command.FORWARD, 0, b""),                          # not even a target id
        (1, Command.RESET, 0, b"\x00"),
        (1, Command.IDENTIFY, 0, b"\x00"),
        (1, Command.SYNC, 0, b"\x00"),
        (1, Command.FORWARD, 0, bytes([DOUBLER_ID]) + bytes(range(1, 13))),  # 24 bytes back
        (2, Command.FORWARD, 0, bytes([DOUBLER_ID]) + bytes(range(1, 14))),  # 26: too many
        (2, Command.FORWARD, 0, bytes([DOUBLER_ID])),          # an empty result
        (3, Command.WRITE, 0, write_args(DOUBLER_ID, 0, b"\x01")),
    )
    expected = answers(
        (0, Command.SYNC, Status.OK, b""),
        (1, Command.READ, Status.BAD_PAYLOAD, b""),
        (1, Command.READ, Status.BAD_PAYLOAD, b""),
        (1, Command.READ, Status.BAD_TARGET, b""),
        (1, Command.READ, Status.BAD_ADDRESS, b""),
        (1, Command.WRITE, Status.BAD_PAYLOAD, b""),
        (1, Command.WRITE, Status.BAD_ADDRESS, b""),
        (1, Command.PULSE, Status.BAD_PAYLOAD, b""),
        (1, Command.FORWARD, Status.BAD_PAYLOAD, b""),
        (1, Command.FORWARD, Status.BAD_PAYLOAD, b""),
        (1, Command.RESET, Status.BAD_PAYLOAD, b""),
        (1, Command.IDENTIFY, Status.BAD_PAYLOAD, b""),
        (1, Command.SYNC, Status.BAD_PAYLOAD, b""),
        (1, Command.FORWARD, Status.OK, bytes(b for b in range(1, 13) for _ in range(2))),
        (2, Command.FORWARD, Status.BAD_PAYLOAD, b""),
        (2, Command.FORWARD, Status.OK, b""),
        (3, Command.WRITE, Status.BAD_ADDRESS, b""),
    )
    assert reference_device().receive(line) == expected
    check_against_reference(line, expected)


def test_frames_that_do_not_decode():
    """An ERROR frame echoes the first body byte, or 0 where the reference has none."""
    header = struct.pack(spec.HEADER_FORMAT, 0x42, Command.IDENTIFY, 0, 0)
    bad_crc = (codec.crc16(header) ^ 1).to_bytes(spec.CRC_SIZE, "big")
    line = b"".join([
        b"\x05\x42\x01\x00",                    # cut short inside a block: seq 0
        b"\x01\x00",                            # decodes to nothing: seq 0
        b"\x02\x37\x00",                        # one byte, too short for a header
        cobs.encode(header + bad_crc) + b"\x00",
        bytes(range(5, 70)) + b"\x00",          # a run too long for any frame
        wire((0x43, 0x85, 0, b""), (0x44, Command.READ, 3, b"")),
        b"\x00\x00" + wire((0x42, Command.IDENTIFY)),   # idle line, then a good frame
    ])
    error = Command.ERROR
    expected = answers(
        (0, error, Status.BAD_FRAME, b""),
        (0, error, Status.BAD_FRAME, b""),
        (0x37, error, Status.BAD_FRAME, b""),
        (0x42, error, Status.BAD_CRC, b""),
        (6, error, Status.TOO_LONG, b""),
        (0x43, 0x85, Status.UNKNOWN_COMMAND, b""),
        (0x44, Command.READ, Status.BAD_FRAME, b""),
        (0x42, Command.IDENTIFY, Status.OK, reference_device().capabilities.to_payload()),
    )
    assert reference_device().receive(line) == expected
    check_against_reference(line, expected)


def test_mismatch_names_the_response_and_both_frames():
    first = answers((1, Command.SYNC, Status.OK, b""))
    second = answers((2, Command.READ, Status.OK, b"\x05"))
    other = answers((2, Command.READ, Status.BAD_ADDRESS, b""))
    assert compare_responses(first + second, first + second) is None
    assert compare_responses(first + other, first + second) == (
        "response 1 of 2: got seq 2 cmd 0x83 (READ) BAD_ADDRESS payload b'', "
        "expected seq 2 cmd 0x83 (READ) OK payload b'\\x05'")
    assert compare_responses(first, first + second).startswith("response 1 of 2: got nothing")
    assert compare_responses(first + second[:3], first + second).startswith(
        "response 1 of 2: got an unfinished frame")
    assert compare_responses(first + second + first, first + second).endswith(
        "expected nothing")


# --- records, targets and parameters ----------------------------------------------------

def test_capability_record_is_the_reference_devices():
    targets = gateware_targets()
    record = capability_record(targets, board=BOARD, build=BUILD, max_payload=MAX_PAYLOAD,
                               baud=spec.DEFAULT_BAUD, rx_buffer=300)
    device = reference.ReferenceDevice(
        {**{i: reference.MemoryTarget(size) for i, size in MEMORY_SIZES.items()},
         DOUBLER_ID: ReferenceDoubler()},
        max_payload=MAX_PAYLOAD, board=BOARD, build=BUILD, rx_buffer=300)
    assert record == device.capabilities.to_payload()
    parsed = codec.Capabilities.from_payload(record)
    assert (parsed.board, parsed.build, parsed.max_payload, parsed.rx_buffer) == (
        BOARD, BUILD, MAX_PAYLOAD, 300)
    assert parsed.target(3) == {"id": 3, **reference.MemoryTarget(300).describe()}
    for target in targets.values():
        unused(target)


def unused(component: wiring.Component) -> wiring.Component:
    """``component``, which this test makes without elaborating it."""
    component._MustUse__silence = True
    return component


def test_memory_target_describes_itself_as_the_reference():
    for size in (1, 40, 0x10000):
        assert unused(MemoryTarget(size)).describe() == reference.MemoryTarget(size).describe()


def test_target_ops_are_the_protocols_commands():
    assert {op.name: op.value for op in Op} == {c.name: int(c) for c in TARGET_COMMANDS}
    assert set(TARGET_COMMANDS) == spec.HOST_COMMANDS - spec.SEQUENCE_EXEMPT
    assert unused(MemoryTarget(4)).signature == TargetSignature()
    assert TargetSignature() != wiring.Signature(dict(TargetSignature().members))


def record_for(targets, max_payload=MAX_PAYLOAD) -> bytes:
    return capability_record(targets, board=BOARD, build=BUILD, max_payload=max_payload,
                             baud=spec.DEFAULT_BAUD)


def memory() -> MemoryTarget:
    return unused(MemoryTarget(4))


@pytest.mark.parametrize("make, error, message", [
    (lambda: MemoryTarget(0), ValueError, r"size must be 1..65536, got 0"),
    (lambda: MemoryTarget(0x10001), ValueError, r"size must be 1..65536, got 65537"),
    (lambda: RequestReceiver(0), ValueError, r"max_payload must be 1..4096, got 0"),
    (lambda: Dispatcher({}, b"{}", 8), ValueError, r"targets must hold at least one target"),
    (lambda: Dispatcher({256: memory()}, b"{}", 8), ValueError,
     r"target ids must be ints in 0..255, got \[256\]"),
    (lambda: Dispatcher([object()], b"{}", 8), TypeError,
     r"target 0 must be a component with a TargetSignature"),
    (lambda: Dispatcher([memory()], b"{}", 5000), ValueError,
     r"max_payload must be 1..4096, got 5000"),
    (lambda: Dispatcher([memory()], "{}", 8), TypeError, r"capability must be bytes"),
    (lambda: Dispatcher([memory()], b"\xff", 8), ValueError,
     r"capability must be UTF-8 JSON"),
    (lambda: Dispatcher([memory()], b"[1]", 8), ValueError,
     r"capability must hold a JSON object"),
    (lambda: Dispatcher([memory()], record_for([memory()], 16), 8), ValueError,
     r"announces max_payload 16, the dispatcher has 8"),
    (lambda: Dispatcher({1: memory()}, record_for([memory()], 8), 8), ValueError,
     r"announces target ids \[0\], the dispatcher has \[1\]"),
    (lambda: Dispatcher([memory()], b"{" + b" " * 4096 + b"}", 8), ValueError,
     r"capability must be at most 4096 bytes, got 4098"),
    (lambda: capability_record([], board="", build=BUILD, max_payload=8, baud=1), ValueError,
     r"board must be a non-empty str, got ''"),
    (lambda: capability_record([], board=BOARD, build=BUILD, max_payload=8, baud=0),
     ValueError, r"baud must be at least 1, got 0"),
    (lambda: capability_record([], board=BOARD, build="x" * 4096, max_payload=8, baud=1),
     ValueError, r"the capability record is \d+ bytes, more than the protocol's 4096"),
])
def test_parameters_are_validated(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_record_keys_follow_the_spec():
    record = json.loads(record_for([]))
    assert list(record) == list(spec.CAPABILITY_FIELDS)
