"""The co-simulation bridge: a simulated UART design behind a socket URL and a pty.

Most tests use an echo board of our own (:class:`EchoBoard`): the firmware's UART with
every received byte sent back plus one, so an echo proves the bytes crossed the design
and were not looped back by the bridge. The last one runs the host's transport against
the board's protocol engine (:class:`~hilt.firmware.top.FirmwareTop`).
"""

from __future__ import annotations

import os
import random
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial
from amaranth.hdl import Instance, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hilt.firmware.targets import MemoryTarget
from hilt.firmware.top import FirmwareTop, capability_record
from hilt.firmware.uart import Uart, UartTx
from hilt.host.protocol import reference
from hilt.host.transport import Device
from hilt.sim.cosim import CosimBoard, start_cosim
from hilt.sim.errors import BuildFailed, SimulationFailed, SimulatorNotFound
from hilt.sim.testbenches.cosim_bridge import TxDecoder, frame_runs

DIVISOR = 4
TESTS = Path(__file__).parent
ENGINES = [pytest.param(("icarus", "cocotb"), id="icarus-cocotb"),
           pytest.param(("verilator", "native"), id="verilator-native")]
"""The bridge's behaviour is checked on the cocotb engine (under Icarus, the faster to
build) and on the native one."""
# Runs a scrap of Python with this module's EchoBoard importable, unbuffered.
PYTHON_WITH_ECHO = [sys.executable, "-u", "-c",
                    f"import sys; sys.path.insert(0, {str(TESTS)!r}); "
                    f"from test_cosim import EchoBoard; exec(sys.argv[1])"]


class EchoBoard(wiring.Component):
    """A UART whose every received byte goes back out plus one (mod 256)."""

    def __init__(self, divisor: int) -> None:
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.uart = uart = Uart(self.divisor)
        m.d.comb += [
            uart.rx.eq(self.rx),
            self.tx.eq(uart.tx),
            uart.tx_data.payload.eq(uart.rx_data.payload + 1),
            uart.tx_data.valid.eq(uart.rx_data.valid),
            uart.rx_data.ready.eq(uart.tx_data.ready),
        ]
        return m


class UnbuildableBoard(wiring.Component):
    """UART pins around an instance of a module that no Verilog source defines."""

    def __init__(self) -> None:
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.missing = Instance("no_such_cell", i_a=self.rx, o_y=self.tx)
        return m


def echo_board(board_kind: tuple[str, str], **options) -> CosimBoard:
    """An :class:`EchoBoard` started on ``board_kind``, a (simulator, engine) of ENGINES."""
    sim, engine = board_kind
    return start_cosim(EchoBoard(DIVISOR), sim=sim, engine=engine, divisor=DIVISOR, **options)


def plus_one(data: bytes) -> bytes:
    return bytes((byte + 1) % 256 for byte in data)


def random_bytes(count: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(count)


def running(pid: int | str) -> bool:
    """Whether a process exists and is not a zombie (whoever adopted it may be slow to reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def session_of(pid: int) -> int | None:
    """The session of a process, None if it has already gone."""
    try:
        return os.getsid(pid)
    except ProcessLookupError:
        return None


def echo(port: serial.SerialBase, data: bytes) -> bytes:
    port.write(data)
    return port.read(len(data))


def line_edges(bits: list[int], bit_ns: int, start_ns: int = 0) -> list[tuple[int, int]]:
    """The edges of a line (idle high) carrying ``bits``, one every ``bit_ns``."""
    edges, level = [], 1
    for index, bit in enumerate(bits):
        if bit != level:
            edges.append((start_ns + index * bit_ns, bit))
            level = bit
    return edges


def frame_bits(byte: int) -> list[int]:
    return [level for level, count in frame_runs(byte) for _ in range(count)]


def test_tx_decoder_frames_glitches_and_framing_errors():
    bit = 40
    bad_stop = [*frame_bits(0x5A)[:-1], 0, 0, 1]  # the line stays low into the stop bit
    bits = [1, *frame_bits(0x00), *frame_bits(0xFF), 1, 1, *frame_bits(0xA5), *bad_stop,
            *frame_bits(0x81)]
    decoder = TxDecoder(bit)
    for time_ns, level in line_edges(bits, bit, start_ns=1000):
        decoder.edge(time_ns, level)
    # Nothing after the last stop bit's middle has happened yet: that frame stays open.
    end = 1000 + len(bits) * bit
    assert decoder.decode(end - bit) == [0x00, 0xFF, 0xA5, None]
    assert decoder.edges
    assert decoder.decode(end) == [0x81]
    assert not decoder.edges
    # A glitch shorter than half a bit starts no frame, and no edge is kept for it.
    decoder.edge(5000, 0)
    decoder.edge(5000 + bit // 4, 1)
    assert decoder.decode(5000 + 20 * bit) == []
    assert not decoder.edges


@pytest.mark.parametrize(("sim", "engine"), [("icarus", "cocotb"), ("verilator", "cocotb"),
                                             ("verilator", "native")])
def test_echo_through_socket_url(sim, engine):
    data = random_bytes(600, seed=1)
    with start_cosim(EchoBoard(DIVISOR), sim=sim, engine=engine, divisor=DIVISOR,
                     pty=False) as board:
        assert board.engine == engine
        assert board.url == f"socket://127.0.0.1:{board.port}"
        assert board.pty is None
        with serial.serial_for_url(board.url, timeout=30) as port:
            assert echo(port, data) == plus_one(data)
        results = board.stop()
    assert not board.running
    assert results["bytes_to_design"] == results["bytes_from_design"] == len(data)
    assert results["tx_framing_errors"] == results["bytes_dropped"] == 0
    assert results["clients"] == 1
    # Every byte takes ten bits of DIVISOR cycles each way, back to back.
    assert results["cycles"] >= 10 * DIVISOR * len(data)
    assert results["wall_seconds"] > 0
    assert not board.run_dir.exists()


@pytest.mark.parametrize("board_kind", ENGINES)
def test_echo_through_pty_then_socket(board_kind):
    data = random_bytes(300, seed=2)
    with echo_board(board_kind) as board:
        assert board.pty is not None and os.path.exists(board.pty)
        with serial.Serial(board.pty, timeout=30) as port:
            assert echo(port, data) == plus_one(data)
        # A second client of the pty starts on a clean line, and so does the socket.
        with serial.Serial(board.pty, timeout=30) as port:
            assert echo(port, b"\x00\xff\n\r\x03") == b"\x01\x00\x0b\x0e\x04"
        with serial.serial_for_url(board.url, timeout=30) as port:
            assert echo(port, data[:50]) == plus_one(data[:50])
        results = board.stop()
    assert results["bytes_from_design"] == len(data) + 5 + 50
    assert not os.path.exists(board.pty)


@pytest.mark.parametrize("board_kind", ENGINES)
def test_one_tcp_client_at_a_time_then_closed_port_is_reported(board_kind):
    with echo_board(board_kind, pty=False) as board:
        first = serial.serial_for_url(board.url, timeout=30)
        assert echo(first, b"first") == plus_one(b"first")
        # While one client is connected another is accepted and closed at once.
        with (serial.serial_for_url(board.url, timeout=10) as intruder,
              pytest.raises(serial.SerialException, match="disconnected")):
            intruder.read(1)
        assert echo(first, b"still") == plus_one(b"still")
        first.close()
        with serial.serial_for_url(board.url, timeout=30) as second:
            assert echo(second, b"second") == plus_one(b"second")
            results = board.stop()
            with pytest.raises(serial.SerialException, match="disconnected"):
                second.read(1)
    assert (results["clients"], results["clients_refused"]) == (2, 1)
    with pytest.raises(serial.SerialException):
        serial.serial_for_url(board.url, timeout=1)


@pytest.mark.parametrize("board_kind", ENGINES)
def test_port_in_use_is_a_clear_error(board_kind, tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match=rf"port {port} on 127.0.0.1 cannot be listened "
                                             rf"on \(Address already in use"):
            echo_board(board_kind, port=port,
                        run_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # refused before anything was built or started


@pytest.mark.parametrize("board_kind", ENGINES)
def test_simulator_dying_is_reported_with_its_log(board_kind, tmp_path):
    board = echo_board(board_kind, pty=False,
                        run_dir=tmp_path)
    # The simulator: the native harness itself, or the cocotb engine's child simulator.
    children = Path(f"/proc/{board.pid}/task/{board.pid}/children").read_text().split()
    os.kill(board.pid if board.engine == "native" else int(children[0]), signal.SIGKILL)
    with pytest.raises(SimulationFailed, match=r"(?s)stopped without finishing.*sim\.log ends"):
        board.stop()
    assert board.run_dir.exists()  # kept for its logs


@pytest.mark.parametrize("board_kind", ENGINES)
def test_design_that_does_not_build_is_a_clear_error(board_kind):
    with pytest.raises(BuildFailed, match="no_such_cell"):
        start_cosim(UnbuildableBoard(), sim=board_kind[0], engine=board_kind[1],
                    divisor=DIVISOR)


def test_design_without_uart_pins_is_refused():
    with pytest.raises(ValueError, match="one-bit In port 'rx'"):
        start_cosim(UartTx(DIVISOR), sim="icarus", divisor=DIVISOR)


@pytest.mark.parametrize("board_kind", ENGINES)
def test_board_stops_when_its_owner_dies(board_kind):
    owner = subprocess.Popen(
        [*PYTHON_WITH_ECHO,
         "from hilt.sim.cosim import CosimBoard, start_cosim\n"
         f"board = start_cosim(EchoBoard({DIVISOR}), sim={board_kind[0]!r}, "
         f"engine={board_kind[1]!r}, divisor={DIVISOR})\n"
         "print(board.url, board.pid)\n"
         "import time; time.sleep(600)"],
        stdout=subprocess.PIPE, text=True)
    try:
        url, pid = owner.stdout.readline().split()
    finally:
        owner.kill()
        owner.wait()
        owner.stdout.close()
    deadline = time.monotonic() + 20
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(pid), "the simulation outlived its owner"
    with pytest.raises(serial.SerialException):
        serial.serial_for_url(url, timeout=1)


@pytest.mark.parametrize("board_kind", ENGINES)
def test_serve_forever_stops_cleanly_on_ctrl_c(board_kind):
    server = subprocess.Popen(
        [*PYTHON_WITH_ECHO,
         "from hilt.sim.cosim import serve_forever\n"
         f"serve_forever(EchoBoard({DIVISOR}), sim={board_kind[0]!r}, engine={board_kind[1]!r}, "
         f"divisor={DIVISOR})"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    while not lines or lines[-1] != "Ctrl-C stops it\n":
        line = server.stdout.readline()
        assert line, f"serve_forever ended early: {lines} {server.stderr.read()}"
        lines.append(line)
    url = lines[0].split()[-1]
    assert url.startswith("socket://127.0.0.1:")
    assert lines[1].startswith("pseudo-terminal: /dev/pts/")
    with serial.serial_for_url(url, timeout=30) as port:
        assert echo(port, b"abc") == b"bcd"
    server.send_signal(signal.SIGINT)
    out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "Traceback" not in err
    assert "stopped: 3 bytes to the board, 3 from it" in out


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_device_session_with_cosimulated_firmware(sim):
    """The host's transport through the bridge to the gateware: identify, write, read,
    pulse, forward, checked against the reference memory target."""
    size, max_payload, rx_buffer = 64, 64, 128
    memory = MemoryTarget(size)
    capability = capability_record([memory], board="cosim", build="test-cosim",
                                   max_payload=max_payload, baud=25_000_000,
                                   rx_buffer=rx_buffer)
    top = FirmwareTop([memory], capability, divisor=DIVISOR, max_payload=max_payload,
                      rx_buffer=rx_buffer)
    golden = reference.MemoryTarget(size)
    inputs = [random_bytes(length, seed=length) for length in (1, 7, 32, 60, 60, 60)]
    with (start_cosim(top, sim=sim, divisor=DIVISOR, pty=False) as board,
          Device(board.url, timeout=5.0) as device):
        assert device.capabilities.board == "cosim"
        assert device.capabilities.targets[0]["params"] == {"size": size}
        assert device.capabilities.rx_buffer == rx_buffer
        device.write(0, 5, b"\x10\x20\x30")
        golden.write(5, b"\x10\x20\x30")
        device.pulse(0, bytes([6, 0, 6, 0, 63, 0]))
        golden.pulse(bytes([6, 0, 6, 0, 63, 0]))
        assert device.read(0, 0, size) == golden.read(0, size)
        assert device.forward(0, inputs) == [golden.forward(data) for data in inputs]
        assert device.stats.damaged_frames == 0
    results = board.stop()
    assert results["tx_framing_errors"] == 0
    assert results["bytes_to_design"] == device.stats.bytes_sent


def read_until(fd: int, wanted: bytes, timeout: float) -> bytes:
    """What a terminal shows until ``wanted`` appears, or ``timeout`` seconds pass."""
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                seen += os.read(fd, 1024)
            except OSError:
                break
    return seen


@pytest.mark.parametrize("board_kind", ENGINES)
def test_miniterm_talks_to_the_board_through_its_pty(board_kind):
    """pyserial's miniterm, a user's terminal on a pty of its own, opens the board's pty:
    what is typed reaches the design and its answer is shown."""
    with echo_board(board_kind) as board:
        terminal, user = os.openpty()
        miniterm = subprocess.Popen(
            [sys.executable, "-m", "serial.tools.miniterm", "--raw", "--quiet", board.pty,
             "115200"], stdin=user, stdout=user, stderr=user, start_new_session=True)
        os.close(user)
        try:
            time.sleep(1.0)  # miniterm opens the port, then starts reading the console
            os.write(terminal, b"hilt")
            shown = read_until(terminal, b"ijmu", timeout=30)
            os.write(terminal, b"\x1d")  # Ctrl-], miniterm's exit key
            assert miniterm.wait(timeout=10) == 0
        finally:
            if miniterm.poll() is None:
                miniterm.kill()
            os.close(terminal)
        results = board.stop()
    assert b"ijmu" in shown
    assert results["bytes_to_design"] == 4 and results["bytes_from_design"] == 4


@pytest.mark.parametrize("board_kind", ENGINES)
def test_the_timeline_measures_the_line_in_bit_times(board_kind):
    """Bytes sent back to back keep the line full: an echo of N bytes spans 10 N bit
    times plus the one byte the echo lags behind."""
    data = random_bytes(200, seed=3)
    with echo_board(board_kind, pty=False,
                     timeline=True) as board:
        with pytest.raises(ValueError, match="timeline=True and stopped"):
            board.bit_times(0, 1)
        with serial.serial_for_url(board.url, timeout=30) as port:
            assert echo(port, data) == plus_one(data)
        results = board.stop()
    timeline = results["timeline"]
    assert len(timeline["to_design_ns"]) == len(timeline["from_design_ns"]) == len(data)
    span = board.bit_times(0, len(data))
    assert 10 * len(data) + 10 <= span <= 10 * len(data) + 12
    assert board.bit_times(len(data) - 1, len(data)) == pytest.approx(span - 10 * (len(data) - 1))
    with pytest.raises(ValueError, match=r"received_to must be in 1\.\.200, got 0"):
        board.bit_times(0, 0)


def test_the_native_engine_without_a_compiler_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(SimulatorNotFound, match=r"verilator: cannot simulate, missing .*c\+\+"
                       ) as error:
        start_cosim(EchoBoard(DIVISOR), engine="native", divisor=DIVISOR, cache_dir=tmp_path)
    assert "apt install g++" in str(error.value)


@pytest.mark.parametrize(("sim", "engine", "message"), [
    ("icarus", "native", r"engine native runs under Verilator only, not sim 'icarus'; give "
                         r"sim verilator, or engine cocotb"),
    ("verilator", "fast", r"engine must be one of native, cocotb, got 'fast'"),
])
def test_an_engine_the_simulator_cannot_run_is_refused_before_building(sim, engine, message,
                                                                         tmp_path):
    with pytest.raises(ValueError, match=message):
        start_cosim(EchoBoard(DIVISOR), sim=sim, engine=engine, divisor=DIVISOR,
                    cache_dir=tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("board_kind", ENGINES)
def test_a_hung_simulator_is_killed_with_its_log_and_leaves_no_process(board_kind, tmp_path):
    board = echo_board(board_kind, pty=False, run_dir=tmp_path)
    session = board.pid
    # Freeze every process of the board's session: the harness, or cocotb's runner and
    # the simulator it started.
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
            and running(p.name) and session_of(int(p.name)) == session]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    with pytest.raises(SimulationFailed, match=r"(?s)did not stop within 1 s and was killed"
                                               r".*sim\.log ends:\n"):
        board.stop(timeout=1)
    deadline = time.monotonic() + 10
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(running(pid) for pid in pids), "a simulator process outlived the kill"
