"""A session recorded against the co-simulated iCEBreaker firmware, replayed without a board.

``tests/data/cosim_session.jsonl`` was made by :func:`run_session` against
``hilt cosim --board icebreaker`` (Verilator) with ``Device(url, record=...)``. The
replay checks the recorded answers against what the firmware's memory target must
answer; the slow test records a fresh session against the co-simulated board and checks
on each engine and checks that it equals the shipped one frame for frame each way (copy
its file over the shipped one after a deliberate firmware change).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hilt.host.recording import ReplayError, ReplaySerial
from hilt.host.transport import Device

RECORDING = Path(__file__).parent / "data" / "cosim_session.jsonl"
DATA = bytes(range(7, 47))


def run_session(device: Device) -> dict:
    """Identify, write, read back, forward a batch, pulse and reset the memory target."""
    identity = device.identify()
    device.write(0, 100, DATA)
    read = device.read(0, 100, len(DATA))
    inputs = [bytes([n, n + 1, n + 2]) for n in range(90, 130, 4)]
    outputs = device.forward(0, inputs)
    device.pulse(0, (100).to_bytes(2, "little") + (101).to_bytes(2, "little"))
    pulsed = device.read(0, 100, 2)
    device.reset()
    cleared = device.read(0, 100, 4)
    return {"board": identity.board, "targets": [t["kind"] for t in identity.targets],
            "read": read, "inputs": inputs, "outputs": outputs, "pulsed": pulsed,
            "cleared": cleared}


def expected_forward(memory: bytearray, payload: bytes) -> bytes:
    """The memory target's FORWARD: each byte b becomes b + 1 + memory[b], modulo 256."""
    return bytes((b + 1 + memory[b % len(memory)]) & 0xFF for b in payload)


def test_the_recorded_session_replays_with_the_firmware_answers():
    with Device(ReplaySerial(RECORDING)) as device:
        result = run_session(device)
    memory = bytearray(1024)
    memory[100:100 + len(DATA)] = DATA
    assert (result["board"], result["targets"]) == ("icebreaker", ["memory", "synapse_crossbar"])
    assert result["read"] == DATA
    assert result["outputs"] == [expected_forward(memory, x) for x in result["inputs"]]
    assert result["pulsed"] == bytes([DATA[0] + 1, DATA[1] + 1])
    assert result["cleared"] == bytes(4)


def test_a_host_that_strays_from_the_recording_is_told_where():
    with Device(ReplaySerial(RECORDING)) as device:
        device.identify()
        with pytest.raises(ReplayError, match="line"):
            device.write(0, 101, DATA)


def _frames(path: Path) -> dict[str, list[str]]:
    """The frames each way, in order. How the two ways interleave depends on how fast the
    board answers while the host keeps a window of frames in flight, so it is not compared.
    """
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    frames: dict[str, list[str]] = {}
    for line in lines:
        if "wire" in line:
            frames.setdefault(line["dir"], []).append(line["wire"])
    return frames


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["native", "cocotb"])
def test_the_shipped_recording_is_what_the_firmware_answers_now(engine, tmp_path):
    from hilt.firmware.board_firmware import firmware_top
    from hilt.firmware.boards import BOARDS
    from hilt.sim.cosim import start_cosim

    top = firmware_top(BOARDS["icebreaker"], None, divisor=4, clock_hz=100e6)
    fresh = tmp_path / "session.jsonl"
    with start_cosim(top, sim="verilator", engine=engine, divisor=4, pty=False) as board, \
            Device(board.url, timeout=5, record=fresh) as device:
        run_session(device)
    assert _frames(fresh) == _frames(RECORDING)
