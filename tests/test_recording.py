"""Record a session against the reference device, replay it with no device at all."""

from __future__ import annotations

import json
import struct

import pytest

from hilt.host.faults import FaultProxy, Faults
from hilt.host.protocol import spec
from hilt.host.protocol.reference import MemoryTarget, ReferenceDevice, serve_tcp
from hilt.host.recording import FROM_DEVICE, TO_DEVICE, ReplayError, ReplaySerial
from hilt.host.transport import Device

FAST = {"timeout": 0.05}
"""For a lossy link, where timeouts are part of the recovery."""
PATIENT = {"timeout": 2.0}
"""For clean links and replays: no timeout should fire even on a loaded machine."""


def session(device: Device) -> list:
    """A little of everything, returning what the host saw."""
    device.write(0, 10, b"\x01\x02\x03")
    device.pulse(0, struct.pack("<H", 11))
    return [device.capabilities, device.read(0, 9, 5),
            device.forward(0, [bytes([i]) * (i + 1) for i in range(24)])]


def record(path, faults: Faults | None = None) -> list:
    board = ReferenceDevice([MemoryTarget(256)], max_payload=64)
    with serve_tcp(board) as server:
        if faults is None:
            with Device(server.url, record=path, **PATIENT) as device:
                return session(device)
        with FaultProxy(server.url, to_host=faults) as proxy, \
                Device(proxy.url, record=path, **FAST) as device:
            results = session(device)
            assert device.stats.retransmissions > 0
            return results


def test_a_replayed_session_gives_identical_results(tmp_path):
    path = tmp_path / "session.jsonl"
    recorded = record(path)
    replay = ReplaySerial(path)
    with Device(replay, **FAST) as device:
        assert session(device) == recorded
    assert replay.unplayed == 0


def test_a_session_with_retransmissions_replays_too(tmp_path):
    path = tmp_path / "lossy.jsonl"
    recorded = record(path, Faults(drop_frame=1.0, frames=range(4, 6)))
    replay = ReplaySerial(path)
    with Device(replay, **FAST) as device:
        assert session(device) == recorded
        assert device.stats.retransmissions > 0
    assert replay.unplayed == 0


def test_the_recording_is_one_readable_frame_per_line(tmp_path):
    path = tmp_path / "session.jsonl"
    record(path)
    header, *lines = (json.loads(line) for line in path.read_text().splitlines())
    assert header["format"] == "hilt-link-recording" and header["protocol"] == 1
    assert [(r["dir"], r["cmd"], r["response"]) for r in lines[:2]] == [
        (TO_DEVICE, "SYNC", False), (FROM_DEVICE, "SYNC", True)]
    assert all(line["wire"].endswith("00") and line["t"] >= 0 for line in lines)
    writes = [r for r in lines if r["cmd"] == "WRITE"]
    assert [(r["seq"], r["status"], r["length"]) for r in writes] == [
        (1, "OK", 6), (1, "OK", 0)]
    assert sum(r["cmd"] == "FORWARD" for r in lines) == 48


def test_a_request_that_was_not_recorded_is_an_error(tmp_path):
    path = tmp_path / "session.jsonl"
    record(path)
    mismatch = r"line \d+: the host sent .*'cmd': 'WRITE'.* but the recording has"
    with Device(ReplaySerial(path), **FAST) as device, \
            pytest.raises(ReplayError, match=mismatch):
        device.write(0, 10, b"\x09")


def test_going_past_the_end_of_a_recording_is_an_error(tmp_path):
    path = tmp_path / "session.jsonl"
    record(path)
    with Device(ReplaySerial(path), **FAST) as device:
        session(device)
        with pytest.raises(ReplayError, match="after the end of the recording"):
            device.reset()


HEADER = b'{"format": "hilt-link-recording", "version": 1}\n'
DEEP = b"[" * 3000 + b"]" * 3000
"""Nesting past what any recursive reader survives."""


@pytest.mark.parametrize(("content", "words"), [
    (b"", "not a hilt-link-recording v1 header"),
    (HEADER + b'{"dir": "sideways", "wire": "00"}', "line 2: 'dir' must be"),
    (HEADER + b'{"dir": "host->device", "wire": "xyz"}', "is not a usable recording"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "is not a recording: it is not UTF-8 text"),
    (b"[1, 2]\n", "not a usable recording"),
    (DEEP, "not a usable recording"),
    (HEADER + DEEP, "not a usable recording"),
])
def test_a_bad_recording_is_refused(tmp_path, content, words):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(ReplayError, match=words):
        ReplaySerial(path)


def test_a_recording_is_never_written_over_and_an_unwritable_one_is_named(tmp_path):
    board = ReferenceDevice([MemoryTarget(64)])
    with serve_tcp(board) as server:
        earlier = tmp_path / "earlier.jsonl"
        earlier.write_text("an earlier session\n")
        with pytest.raises(ValueError, match=r"record=.*earlier.jsonl' exists; a recording "
                                             r"is never written over another"):
            Device(server.url, record=earlier)
        assert earlier.read_text() == "an earlier session\n"
        blocked = tmp_path / "a-file" / "session.jsonl"
        (tmp_path / "a-file").write_text("")
        with pytest.raises(ValueError, match=r"record=.*session.jsonl' cannot be written"):
            Device(server.url, record=blocked)


def test_a_missing_recording_is_refused(tmp_path):
    with pytest.raises(ReplayError, match="cannot read the recording"):
        ReplaySerial(tmp_path / "missing.jsonl")


def test_replay_needs_a_timeout_to_wait(tmp_path):
    path = tmp_path / "session.jsonl"
    record(path)
    sync, answer = (bytes.fromhex(json.loads(line)["wire"])
                    for line in path.read_text().splitlines()[1:3])
    replay = ReplaySerial(path)
    replay.write(spec.DELIMITER + sync)
    assert replay.read(1000) == answer
    with pytest.raises(ReplayError, match="waits with no timeout"):
        replay.read(1)
