"""Device over socket:// against the reference device: pipelining, errors and faults."""

from __future__ import annotations

import os
import select
import socket
import struct
import sys
import threading

import pytest

from hilt.host.faults import TO_DEVICE, TO_HOST, FaultProxy, Faults
from hilt.host.protocol import spec
from hilt.host.protocol.reference import MemoryTarget, ReferenceDevice, serve_tcp
from hilt.host.transport import (
    BoardResetError,
    Device,
    DeviceError,
    LinkClosedError,
    LinkError,
    LinkTimeoutError,
    Request,
)

C = spec.Command
FAST = {"timeout": 0.05}
"""For links with faults, where timeouts are part of the recovery."""
PATIENT = {"timeout": 2.0}
"""For clean links: no timeout should fire even on a loaded machine."""
EVERY_FRAME_FROM_2 = range(2, sys.maxsize)
"""Frames after the session's SYNC and IDENTIFY."""


@pytest.fixture
def memory() -> MemoryTarget:
    return MemoryTarget(size=4096)


@pytest.fixture
def board(memory) -> ReferenceDevice:
    return ReferenceDevice([memory], max_payload=128)


@pytest.fixture
def server(board):
    with serve_tcp(board) as server:
        yield server


@pytest.fixture
def link(server):
    with Device(server.url, **PATIENT) as device:
        yield device


def expected_forward(memory: MemoryTarget, payload: bytes) -> bytes:
    return payload.translate(memory.forward_table())


def mixed_batch(count: int) -> tuple[list[Request], dict[int, bytes]]:
    """Writes to distinct addresses, pulses, forwards and reads, interleaved."""
    requests, written = [], {}
    for i in range(count):
        address, data = 16 * i, bytes([i % 251 + 1, 7, i % 13])
        written[address] = data
        requests.append(Request(C.WRITE, struct.pack(spec.WRITE_FORMAT, 0, address) + data))
        requests.append(Request(C.FORWARD, bytes([0]) + bytes(range(i % 40 + 1))))
        if i % 3 == 0:
            requests.append(Request(C.PULSE, b"\x00" + struct.pack("<H", 16 * i + 1)))
        if i % 5 == 0:
            requests.append(Request(C.READ, struct.pack(spec.READ_FORMAT, 0, 16 * i, 3)))
    return requests, written


def check_batch(memory: MemoryTarget, requests: list[Request], results: list[bytes],
                written: dict[int, bytes]) -> None:
    """Every write and pulse applied exactly once; every answer what the state implies."""
    assert memory.writes == {(address, data): 1 for address, data in written.items()}
    pulsed = {16 * i + 1 for i in range(len(written)) if i % 3 == 0}
    assert memory.pulses == dict.fromkeys(pulsed, 1)
    for address, data in written.items():
        expected = bytes([data[0], (data[1] + (address + 1 in pulsed)) & 0xFF, data[2]])
        assert memory.memory[address:address + 3] == expected
    for request, result in zip(requests, results, strict=True):
        if request.command is C.FORWARD:
            assert result == expected_forward(memory, request.payload[1:])
        elif request.command is C.READ:
            address = struct.unpack(spec.READ_FORMAT, request.payload)[1]
            assert result == memory.memory[address:address + 3]
        else:
            assert result == b""


# -- the ordinary session ----------------------------------------------------------------


def test_open_syncs_and_reads_the_capabilities(link, board):
    assert link.capabilities == board.capabilities
    assert link.max_payload == 128 and board.synced
    assert link.stats.frames_sent == link.stats.frames_received == 2


def test_commands_reach_the_target(link, memory):
    link.write(0, 100, b"\x01\x02\x03")
    assert link.read(0, 99, 5) == b"\x00\x01\x02\x03\x00"
    link.pulse(0, struct.pack("<2H", 100, 101))
    assert memory.memory[100:103] == b"\x02\x03\x03"
    assert link.forward(0, [b"\x00", b"\x64\x65"]) == [b"\x01", b"\x67\x69"]
    link.reset()
    assert memory.memory[100:103] == bytes(3) and memory.resets == 1


@pytest.mark.parametrize("window", [1, 8, 64])
def test_a_pipelined_batch_is_complete_correct_and_in_order(server, memory, window):
    requests, written = mixed_batch(60)
    with Device(server.url, window=window, **PATIENT) as link:
        results = link.transact(requests)
        stats = link.stats
    check_batch(memory, requests, results, written)
    assert stats.retransmissions == 0 and stats.frames_sent == len(requests) + 2
    biggest = max(len(r.payload) for r in requests) + 12
    assert stats.peak_in_flight_bytes <= window * biggest


def test_a_pty_path_works_like_a_serial_port(board, memory):
    controller, port = os.openpty()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            if select.select([controller], [], [], 0.01)[0]:
                reply = board.receive(os.read(controller, 65536))
                os.write(controller, reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with Device(os.ttyname(port), baudrate=115_200, **PATIENT) as link:
            link.write(0, 5, b"\x07\x08")
            assert link.read(0, 5, 2) == b"\x07\x08"
            inputs = [bytes(range(i, i + 9)) for i in range(40)]
            assert link.forward(0, inputs) == [expected_forward(memory, x) for x in inputs]
    finally:
        stop.set()
        thread.join()
        os.close(controller)
        os.close(port)


def test_exempt_commands_inside_a_batch(link):
    payload = struct.pack(spec.WRITE_FORMAT, 0, 0) + b"\x05"
    results = link.transact([Request(C.WRITE, payload), Request(C.IDENTIFY),
                             Request(C.READ, struct.pack(spec.READ_FORMAT, 0, 0, 1))])
    assert results[0] == b"" and results[2] == b"\x05"
    assert b'"protocol":1' in results[1]


def test_rx_buffer_bounds_the_bytes_in_flight(memory):
    board = ReferenceDevice([memory], max_payload=128, rx_buffer=300)
    with serve_tcp(board) as server, Device(server.url, window=64, **PATIENT) as link:
        assert link.capabilities.rx_buffer == 300
        results = link.forward(0, [bytes([i]) * 100 for i in range(40)])
        assert link.stats.peak_in_flight_bytes <= 300
    assert results == [expected_forward(memory, bytes([i]) * 100) for i in range(40)]


# -- refusals and bad arguments ----------------------------------------------------------


def test_a_refused_command_stops_the_batch_and_the_session_goes_on(link, memory):
    requests = [Request(C.WRITE, struct.pack(spec.WRITE_FORMAT, 0, address) + b"\x01")
                for address in (0, 1, 5000, 2, 3)]
    with pytest.raises(DeviceError, match="WRITE seq 3: device answered BAD_ADDRESS") as caught:
        link.transact(requests)
    assert caught.value.status == spec.Status.BAD_ADDRESS
    assert memory.writes == {(0, b"\x01"): 1, (1, b"\x01"): 1}
    link.write(0, 9, b"\x09")
    assert link.read(0, 9, 1) == b"\x09"
    assert link.stats.timeouts == 0


def test_oversized_frames_are_refused_before_sending(link):
    sent = link.stats.frames_sent
    with pytest.raises(ValueError, match=r"data is 126 bytes; one WRITE carries 1..125 .* split"):
        link.write(0, 0, bytes(126))
    with pytest.raises(ValueError, match=r"payloads\[1\] is 128 bytes; one FORWARD carries at "
                                         r"most 127"):
        link.forward(0, [b"\x01", bytes(128)])
    with pytest.raises(ValueError, match=r"count must be an int 1..128, got 129"):
        link.read(0, 0, 129)
    with pytest.raises(ValueError, match=r"requests\[0\]: PULSE payload is 129 bytes"):
        link.transact([Request(C.PULSE, bytes(129))])
    assert link.stats.frames_sent == sent


@pytest.mark.parametrize(("call", "words"), [
    (lambda d: d.write(256, 0, b"x"), "target must be an int 0..255, got 256"),
    (lambda d: d.write(0, -1, b"x"), "address must be an int 0..65535, got -1"),
    (lambda d: d.write(0, 0, "x"), "data must be bytes, got str"),
    (lambda d: d.read(0, 0, 0), "count must be an int 1..128, got 0"),
    (lambda d: d.transact([b"raw"]), r"requests\[0\] must be a Request, got b'raw'"),
    (lambda d: Request(C.ERROR), "command must be one of .*, got <Command.ERROR: 127>"),
    (lambda d: Request(C.WRITE, "text"), "payload must be bytes, got str"),
])
def test_bad_arguments_name_the_parameter(link, call, words):
    with pytest.raises(ValueError, match=words):
        call(link)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"window": 65}, "window must be an int 1..64, got 65"),
    ({"window": 0}, "window must be an int 1..64, got 0"),
    ({"retries": -1}, r"retries must be an int 0\.\.1000, got -1"),
    ({"retries": 10**6}, r"retries must be an int 0\.\.1000, got 1000000"),
    ({"timeout": 0}, "timeout must be a number of seconds above 0 and at most 3600, got 0"),
    ({"timeout": float("inf")}, "at most 3600, got inf"),
    ({"timeout": float("nan")}, "at most 3600, got nan"),
    ({"baudrate": 0}, r"baudrate must be an int 300\.\.100000000, got 0"),
    ({"baudrate": 1}, r"baudrate must be an int 300\.\.100000000, got 1"),
])
def test_bad_settings_are_refused(kwargs, words):
    with pytest.raises(ValueError, match=words):
        Device("loop://", **kwargs)


def test_bad_ports_are_refused_clearly():
    with pytest.raises(ValueError, match="port 'nosuch://x' is not usable"):
        Device("nosuch://x")
    with pytest.raises(ValueError, match="port must be a path, a pyserial URL or a serial-like"):
        Device(42)
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(LinkError, match=f"could not open 'socket://127.0.0.1:{port}'"):
        Device(f"socket://127.0.0.1:{port}")


def test_a_link_that_echoes_is_not_taken_for_a_device():
    with pytest.raises(LinkTimeoutError, match="SYNC seq 0: no answer after 1 retries"):
        Device("loop://", timeout=0.02, retries=1)


def test_a_silent_device_times_out_with_the_command_named():
    silent = socket.create_server(("127.0.0.1", 0))
    try:
        with pytest.raises(LinkTimeoutError, match=r"SYNC seq 0: no answer after 2 retries "
                                                   r"\(no response within 0.02 s\)"):
            Device(f"socket://127.0.0.1:{silent.getsockname()[1]}", timeout=0.02, retries=2)
    finally:
        silent.close()


def test_a_closed_device_says_so(server):
    device = Device(server.url, **PATIENT)
    device.close()
    with pytest.raises(LinkClosedError, match="the Device is closed"):
        device.read(0, 0, 1)


# -- faults ------------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "to_device", "to_host"), [
    (1, Faults(drop_byte=0.05, flip_byte=0.05), Faults()),
    (2, Faults(), Faults(drop_byte=0.05, flip_byte=0.05)),
    (3, Faults(drop_frame=0.05, duplicate=0.05), Faults(drop_frame=0.05, duplicate=0.05)),
    (4, Faults(drop_byte=0.03, flip_byte=0.03, drop_frame=0.03, duplicate=0.03),
     Faults(drop_byte=0.03, flip_byte=0.03, drop_frame=0.03, duplicate=0.03)),
])
def test_every_write_applies_exactly_once_through_faults(server, memory, seed, to_device,
                                                         to_host):
    requests, written = mixed_batch(80)
    proxy = FaultProxy(server.url, seed=seed, to_device=to_device, to_host=to_host)
    with proxy, Device(proxy.url, window=8, timeout=0.05, retries=10) as link:
        results = link.transact(requests)
        stats = link.stats
    check_batch(memory, requests, results, written)
    injected = sum(n for counts in proxy.counts.values() for kind, n in counts.items()
                   if kind != "frames")
    assert injected > 0 and stats.retransmissions > 0


def test_duplicated_frames_are_applied_once(server, memory):
    requests, written = mixed_batch(30)
    everything = Faults(duplicate=1.0)
    with FaultProxy(server.url, to_device=everything, to_host=everything) as proxy, \
            Device(proxy.url, window=8, **FAST) as link:
        results = link.transact(requests)
        assert link.stats.ignored_frames >= len(requests)
    check_batch(memory, requests, results, written)
    assert proxy.counts[TO_DEVICE]["duplicate"] == len(requests) + 2


def test_the_read_barrier_keeps_a_retried_read_from_seeing_a_later_write(server):
    read = Request(C.READ, struct.pack(spec.READ_FORMAT, 0, 0, 1))
    write = Request(C.WRITE, struct.pack(spec.WRITE_FORMAT, 0, 0) + b"\x05")
    lose_first_answer = Faults(drop_frame=1.0, frames=range(2, 3))
    with FaultProxy(server.url, to_host=lose_first_answer) as proxy, \
            Device(proxy.url, **FAST) as link:
        assert link.transact([read, write, read]) == [b"\x00", b"", b"\x05"]
        assert link.stats.retransmissions >= 1
    assert proxy.counts[TO_HOST]["drop_frame"] == 1


def test_a_lost_link_times_out_and_ends_the_session(server, memory):
    blackhole = Faults(drop_frame=1.0, frames=EVERY_FRAME_FROM_2)
    with FaultProxy(server.url, to_device=blackhole) as proxy, \
            Device(proxy.url, timeout=0.02, retries=3) as link:
        with pytest.raises(LinkTimeoutError, match=r"WRITE seq 1: no answer after 3 retries "
                                                   r"\(last: no response within 0.02 s\)"):
            link.write(0, 0, b"\x01")
        assert link.stats.retransmissions == 3 and memory.writes == {}
        with pytest.raises(LinkError, match=r"no session .*call sync\(\)"):
            link.write(0, 0, b"\x01")


def test_a_board_reset_mid_batch_is_reported_not_replayed(server, board, memory):
    requests, _ = mixed_batch(40)
    with Device(server.url, **PATIENT) as link:
        board.schedule_board_reset(after_frames=25)
        with pytest.raises(BoardResetError, match=r"was reset .* Call sync\(\)"):
            link.transact(requests)
        with pytest.raises(LinkError, match=r"no session .*the board was reset"):
            link.read(0, 0, 1)
        assert not board.synced and not any(memory.memory)
        link.sync()
        link.write(0, 3, b"\x03")
        assert link.read(0, 3, 1) == b"\x03"


def test_a_link_cut_mid_batch_raises_link_closed(server, memory):
    requests, _ = mixed_batch(40)
    with FaultProxy(server.url, close_after=20) as proxy, Device(proxy.url, **FAST) as link:
        with pytest.raises(LinkClosedError, match="the link failed while"):
            link.transact(requests)
        with pytest.raises(LinkError, match="no session"):
            link.read(0, 0, 1)
    assert proxy.counts[TO_DEVICE]["cut"] == 1
    assert all(count == 1 for count in memory.writes.values())


def test_the_retry_budget_is_per_frame_so_a_wide_window_lasts_as_long_as_a_narrow_one(
        server, memory):
    """The first request is lost, so the whole window is resent (charged to it); then an
    answer to that resend is lost, so the frames behind it are resent again (charged to
    the one whose answer was lost). Those frames went out three times, yet each frame
    spent at most one retry: a budget of one is enough, as it is for a window of one."""
    payloads = [bytes(range(i % 40 + 1)) for i in range(60)]
    with FaultProxy(server.url, to_device=Faults(drop_frame=1.0, frames=range(2, 3)),
                    to_host=Faults(drop_frame=1.0, frames=range(42, 43))) as proxy, \
            Device(proxy.url, window=32, timeout=0.05, retries=1) as link:
        results = link.forward(0, payloads)
        stats = link.stats
    assert results == [expected_forward(memory, payload) for payload in payloads]
    assert proxy.counts[TO_DEVICE]["drop_frame"] == proxy.counts[TO_HOST]["drop_frame"] == 1
    assert (stats.most_retries, stats.most_resends) == (1, 2)
