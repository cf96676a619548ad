"""Each board firmware's processing element over the co-simulated UART, against its twin.

The iCEBreaker firmware with each processing element it can carry runs under Verilator
behind the bridge; its golden twin (:func:`~hilt.host.reference_board.reference_board`,
built from nothing but the board's IDENTIFY record) gets the same frames. Every response
must be the same bytes: loads, forwards, pulses, read-backs, resets and refusals.
"""

from __future__ import annotations

import random
import socket
import struct
from collections.abc import Iterator

import numpy as np
import pytest

from hilt.firmware.board_firmware import FIRMWARE_PES, firmware_top
from hilt.firmware.boards import BOARDS
from hilt.host.protocol import codec, spec
from hilt.host.protocol.binary_layout import THRESHOLD_BASE
from hilt.host.protocol.synapse_layout import Slot
from hilt.host.reference_board import reference_board
from hilt.sim.cosim import ENGINES, start_cosim

C = spec.Command
DIVISOR = 4
PE = 1
"""The processing element's target id; 0 is the memory."""


def write(address: int, data: bytes) -> tuple[C, bytes]:
    return C.WRITE, struct.pack(spec.WRITE_FORMAT, PE, address) + data


def read(address: int, count: int) -> tuple[C, bytes]:
    return C.READ, struct.pack(spec.READ_FORMAT, PE, address, count)


def forward(data: bytes) -> tuple[C, bytes]:
    return C.FORWARD, bytes([PE]) + data


def synapse_session(target, rng: random.Random) -> Iterator[tuple[C, bytes]]:
    lay = target.layout
    for row in range(lay.rows):
        levels = [rng.randint(0, lay.max_level) for _ in range(2 * lay.cols)]
        yield write(row, lay.pack_row(levels[:lay.cols], levels[lay.cols:]))
    inputs = [[rng.randint(lay.in_low, lay.in_high) for _ in range(lay.cols)] for _ in range(3)]
    yield forward(lay.pack_inputs(inputs))
    for uni in (False, True):
        slots = [Slot(rng.getrandbits(lay.rows), rng.getrandbits(lay.rows),
                      rng.getrandbits(lay.cols), rng.getrandbits(lay.cols), uni, k == 2)
                 for k in range(3)]
        yield C.PULSE, bytes([PE]) + b"".join(lay.pack_slot(slot) for slot in slots)
    for row in range(lay.rows):
        yield read(row, lay.row_bytes)
    yield forward(lay.pack_inputs(inputs))
    yield write(lay.rows, bytes(lay.row_bytes))  # BAD_ADDRESS
    yield read(0, lay.row_bytes + 1)  # BAD_PAYLOAD
    yield C.RESET, b""
    yield read(0, lay.row_bytes)


def shift_session(target, rng: random.Random) -> Iterator[tuple[C, bytes]]:
    lay = target.layout
    columns = lay.beats * lay.lanes
    sign = np.array([[rng.getrandbits(1) for _ in range(columns)] for _ in range(lay.pes)])
    exp = np.array([[rng.randint(0, lay.fmt.zero_code) for _ in range(columns)]
                    for _ in range(lay.pes)])
    data = lay.pack_codes(sign, exp)
    half = lay.beats // 2 * lay.beat_bytes
    yield write(0, data[:half])
    yield write(lay.beats // 2, data[half:])
    inputs = [[rng.randint(lay.in_low, lay.in_high) for _ in range(lay.depth)] for _ in range(2)]
    yield forward(lay.pack_inputs(inputs))
    yield read(0, 1)  # BAD_ADDRESS: no read port
    yield C.PULSE, bytes([PE, 1])  # BAD_PAYLOAD: no pulses
    yield write(lay.beats, bytes(lay.beat_bytes))  # BAD_ADDRESS
    yield C.RESET, b""
    yield forward(lay.pack_inputs(inputs[:1]))


def binary_session(target, rng: random.Random) -> Iterator[tuple[C, bytes]]:
    lay = target.layout
    bits = np.array([[rng.getrandbits(1) for _ in range(lay.in_features)]
                     for _ in range(lay.out_features)], dtype=np.uint8)
    yield write(0, lay.pack_weights(bits))
    thresholds = [rng.randint(0, lay.max_threshold) for _ in range(lay.out_features)]
    yield write(THRESHOLD_BASE, lay.pack_thresholds(thresholds))
    inputs = np.array([[rng.getrandbits(1) for _ in range(lay.in_features)] for _ in range(4)],
                      dtype=np.uint8)
    yield forward(lay.pack_inputs(inputs))
    yield write(THRESHOLD_BASE, lay.pack_thresholds([lay.max_threshold + 1]))  # BAD_PAYLOAD
    yield read(0, 1)  # BAD_ADDRESS
    yield C.RESET, b""
    yield forward(lay.pack_inputs(inputs[:1]))


SESSIONS = {"synapse_crossbar": synapse_session, "shift_array": shift_session,
            "binary_layer": binary_session}


def exchange(connection: socket.socket, frame: bytes) -> bytes:
    """Send one frame, return the one frame that answers it."""
    connection.sendall(frame)
    answer = b""
    while not answer.endswith(spec.DELIMITER):
        chunk = connection.recv(4096)
        assert chunk, "the board closed the connection"
        answer += chunk
    return answer


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("pe", FIRMWARE_PES)
def test_the_board_answers_every_frame_as_its_twin(pe, engine):
    top = firmware_top(BOARDS["icebreaker"], {"pe": pe}, divisor=DIVISOR, clock_hz=100e6)
    rng = random.Random(pe)
    statuses = []
    with start_cosim(top, sim="verilator", engine=engine, divisor=DIVISOR,
                     pty=False) as board, \
            socket.create_connection(("127.0.0.1", board.port), timeout=60) as connection:
        identify = codec.encode_frame(0, C.IDENTIFY)
        record = codec.FrameDecoder().feed(exchange(connection, identify))[0].payload
        twin = reference_board(codec.Capabilities.from_payload(record))
        assert twin.receive(identify) == exchange(connection, identify)
        sync = codec.encode_frame(0, C.SYNC)
        assert exchange(connection, sync) == twin.receive(sync)
        target = twin.targets[PE]
        seq = 1
        for index, (command, payload) in enumerate(SESSIONS[target.describe()["kind"]](
                target, rng)):
            frame = codec.encode_frame(seq, command, 0, payload)
            expected = twin.receive(frame)
            got = exchange(connection, frame)
            assert got == expected, f"frame {index} ({command.name}): board {got!r}, " \
                                    f"twin {expected!r}"
            status = codec.FrameDecoder().feed(got)[0].status
            statuses.append(spec.Status(status))
            if status == spec.Status.OK:
                seq = (seq + 1) % spec.SEQ_MODULUS
    assert spec.Status.OK in statuses
    assert {spec.Status.BAD_ADDRESS, spec.Status.BAD_PAYLOAD} <= set(statuses)
