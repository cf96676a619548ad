"""cocotb testbench that bridges a design's UART pins to a TCP socket and a pseudo-terminal.

It runs any design with a serial input ``rx``, a serial output ``tx``, ``clk`` and ``rst``
until it is told to stop, and meanwhile lets the outside world talk to the design's UART:

- a TCP server on ``127.0.0.1:PORT`` (``socket://127.0.0.1:PORT`` for pyserial), one client
  at a time; a second client is accepted and closed at once while the first is connected;
- a pseudo-terminal (``os.openpty``) whose slave path a client opens like a serial port.

Bytes from either client are serialised onto ``rx`` as 8N1 frames of ``divisor`` clock
cycles a bit; bytes the design sends on ``tx`` are deserialised and sent to every client
that is attached at the time (with none attached they are dropped, as on a real line).

Pacing. The simulator runs this module's Python only at triggers, and the sockets are
never waited on while the design has work to do: while anything moves (bytes queued for
``rx`` or being shifted, a frame being received from ``tx``, or less than
``idle_after_cycles`` since the last byte either way) the sockets are polled without
blocking every ``poll_cycles`` clock cycles. Once the line has been quiet that long the
bridge idles: simulated time advances ``idle_cycles`` at a time and between steps the
bridge blocks in ``select``, which returns at once when a client connects or sends, for a
wall time that doubles from :data:`IDLE_WAIT_MIN_S` up to ``idle_wait_s``. An idle board
therefore costs little CPU, a client's first byte is picked up within one idle step, and a
design that computes for longer than ``idle_after_cycles`` before it answers is slowed
gradually rather than at once.

The pins are driven and sampled from timers and value changes rather than on every clock
edge: ``rx`` is driven with one timer per run of equal bits, and ``tx`` is decoded from
the times of its edges (one callback per edge, :class:`TxDecoder`). The clock itself runs
in the simulator's C++ (cocotb's GPI clock).

It stops when the file ``stop_path`` exists or when the process that started the simulator
exits (its parent process id changes), then closes the sockets and writes its results.
When the file ``reset_path`` appears it is removed and ``rst`` is held high for
:data:`RESET_CYCLES` clock cycles: the board's reset button, which clears the design's
registers (its session among them) while its memories keep what they held.

With ``timeline`` set the results also carry the simulated time of every byte's start
bit on ``rx`` and of every byte's stop bit end on ``tx``, from which a caller measures
how full the line was over a stretch of traffic.

Run through :mod:`hilt.sim.cosim`. Parameters (JSON)::

    {"divisor": int, "clock_ns": int, "port": int (0: any free port), "pty": bool,
     "ready_path": str, "stop_path": str, "reset_path": str, "timeline": bool,
     "poll_cycles": int, "idle_after_cycles": int, "idle_cycles": int, "idle_wait_s": float}

Once listening it writes ``ready_path`` (renamed into place): ``{"port": int, "pty": str |
None}``. Results::

    {"bytes_to_design": int, "bytes_from_design": int, "bytes_dropped": int,
     "tx_framing_errors": int, "clients": int, "clients_refused": int, "resets": int,
     "sim_time_ns": float, "cycles": int, "wall_seconds": float
     [, "timeline": {"to_design_ns": [float], "from_design_ns": [float]}]}
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import socket
import termios
import time
import tty
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import Event, Timer

from hilt.firmware.uart import MIN_DIVISOR
from hilt.hdl.params import check_int
from hilt.sim.runner import testbench_params, write_testbench_results
from hilt.sim.testbenches.icarus import wake_comb_processes

logger = logging.getLogger("cosim_bridge")

FRAME_BITS = 10
"""Start bit, eight data bits, stop bit."""
RX_QUEUE_LIMIT = 4096
"""Bytes read from clients but not yet on ``rx``; beyond this the sockets are not read,
so a fast client is held back by TCP's (or the pty's) own flow control."""
OUTPUT_LIMIT = 1 << 16
"""Bytes for one client that it has not read yet; beyond this the oldest are dropped."""
IDLE_WAIT_MIN_S = 0.001
STOP_CHECK_S = 0.05
"""Wall time between checks of the stop file and of the parent process."""
READ_CHUNK = 4096
RESET_CYCLES = 4
"""Clock cycles ``rst`` is held high for a reset asked through ``reset_path``."""




def frame_runs(byte: int) -> tuple[tuple[int, int], ...]:
    """The 8N1 frame of ``byte`` as runs of ``(level, bits)``, start bit first."""
    bits = [0] + [(byte >> i) & 1 for i in range(8)] + [1]
    runs: list[list[int]] = []
    for bit in bits:
        if runs and runs[-1][0] == bit:
            runs[-1][1] += 1
        else:
            runs.append([bit, 1])
    return tuple((level, count) for level, count in runs)


class TxDecoder:
    """Bytes from the times of a serial line's edges, as a UART sampling mid-bit gets them.

    A frame starts at a falling edge; bit ``k`` (0 the start bit, 9 the stop bit) is the
    line's level at ``start + (k + 1/2)`` bit times. A start bit that is high again by its
    middle was a glitch and starts nothing; a low stop bit is a framing error. A frame is
    decoded once the time passes its stop bit's middle, told by the next edge or by
    :meth:`decode` with the current time, so bits need no timers of their own.
    """

    def __init__(self, bit_ns: int) -> None:
        self.bit_ns = bit_ns
        self.edges: list[tuple[float, int]] = []
        """Edges (time, new level) not yet consumed, the first the open frame's start."""
        self.ends_ns: list[float] = []
        """When the stop bit of each frame the last :meth:`decode` returned ended."""

    def edge(self, time_ns: float, level: int) -> None:
        """Record an edge; while no frame is open only a falling one, which opens one."""
        if self.edges or level == 0:
            self.edges.append((time_ns, level))

    def decode(self, now_ns: float) -> list[int | None]:
        """The frames complete by ``now_ns``: a byte, or None for a framing error."""
        frames: list[int | None] = []
        self.ends_ns = []
        edges = self.edges
        while edges:
            start = edges[0][0]
            if now_ns <= start + 9.5 * self.bit_ns:
                break
            index, levels = 0, []
            for bit in range(FRAME_BITS):
                sample = start + (bit + 0.5) * self.bit_ns
                while index + 1 < len(edges) and edges[index + 1][0] <= sample:
                    index += 1
                levels.append(edges[index][1])
            if levels[0]:
                del edges[:1]  # a glitch: look for the next falling edge
            else:
                frames.append(sum(level << i for i, level in enumerate(levels[1:9]))
                              if levels[9] else None)
                self.ends_ns.append(start + FRAME_BITS * self.bit_ns)
                del edges[:index + 1]
            while edges and edges[0][1] == 1:
                del edges[:1]
        return frames


class _Client(ABC):
    """One attached client: a file descriptor, its unsent output and how to move bytes."""

    def __init__(self, name: str, fd: int) -> None:
        self.name = name
        self.fd = fd
        self.output = bytearray()

    @abstractmethod
    def _read(self, size: int) -> bytes:
        """Up to ``size`` bytes from the file descriptor, raising as the OS does."""

    @abstractmethod
    def _write(self, data: bytes) -> int:
        """Write what the descriptor takes now; how many bytes it took."""

    def read(self, size: int) -> bytes | None:
        """Up to ``size`` bytes without blocking; None once the client has gone."""
        try:
            data = self._read(size)
        except BlockingIOError:
            return b""
        except OSError:
            return None
        return data or None

    def queue(self, data: bytes) -> int:
        """Queue ``data`` for the client; returns how many old bytes were dropped."""
        self.output += data
        excess = len(self.output) - OUTPUT_LIMIT
        if excess > 0:
            del self.output[:excess]
            return excess
        return 0

    def flush(self) -> bool:
        """Send what the client will take now; False once the client has gone."""
        while self.output:
            try:
                sent = self._write(self.output)
            except BlockingIOError:
                return True
            except OSError:
                return False
            del self.output[:sent]
        return True


class _TcpClient(_Client):
    def __init__(self, connection: socket.socket, address: str) -> None:
        super().__init__(f"TCP client {address}", connection.fileno())
        self.connection = connection

    def _read(self, size: int) -> bytes:
        return self.connection.recv(size)

    def _write(self, data: bytes) -> int:
        return self.connection.send(data)

    def close(self) -> None:
        self.connection.close()


class _PtyClient(_Client):
    """Whoever has the pty's slave open; the master end is ours."""

    def _read(self, size: int) -> bytes:
        return os.read(self.fd, size)

    def _write(self, data: bytes) -> int:
        return os.write(self.fd, data)


class Bridge:
    """The pin-level UART on one side, the sockets on the other, and the pacing between."""

    def __init__(self, dut: Any, params: dict[str, Any]) -> None:
        self.dut = dut
        self.divisor = check_int("divisor", params["divisor"], MIN_DIVISOR)
        self.clock_ns = check_int("clock_ns", params["clock_ns"], 2)
        self.idle_after_ns = params["idle_after_cycles"] * self.clock_ns
        self.idle_wait_max_s = float(params["idle_wait_s"])
        self.idle_wait_s = IDLE_WAIT_MIN_S
        self.stop_path = Path(params["stop_path"])
        self.reset_path = Path(params["reset_path"])
        self.timeline: dict[str, list[float]] | None = (
            {"to_design_ns": [], "from_design_ns": []} if params["timeline"] else None)
        bit_ns = self.divisor * self.clock_ns
        self.busy_step = Timer(params["poll_cycles"] * self.clock_ns, unit="ns")
        self.idle_step = Timer(params["idle_cycles"] * self.clock_ns, unit="ns")
        self.tx_decoder = TxDecoder(bit_ns)
        self.run_timers = {n: Timer(n * bit_ns, unit="ns") for n in range(1, FRAME_BITS + 1)}
        self.frames = [frame_runs(byte) for byte in range(256)]

        self.listener = socket.create_server(("127.0.0.1", params["port"]))
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.tcp: _TcpClient | None = None
        self.pty: _PtyClient | None = None
        self.pty_path: str | None = None
        self.pty_attached = False
        self.pty_poll = select.poll()
        if params["pty"]:
            master, slave = os.openpty()
            self.pty_path = os.ttyname(slave)
            # Raw: no echo, no line editing, no CR/LF translation, for whoever opens it.
            tty.setraw(slave)
            # Closing our slave end makes the master report a hang-up while no client has
            # the slave open, which is how an attached client is told from none.
            os.close(slave)
            os.set_blocking(master, False)
            self.pty = _PtyClient(f"pty {self.pty_path}", master)
            self.pty_poll.register(master, select.POLLIN)

        self.to_design = bytearray()
        self.from_design = bytearray()
        self.rx_wake = Event()
        self.rx_busy = False
        self.last_activity_ns = 0.0
        self.parent = os.getppid()
        self.next_stop_check = 0.0
        self.reset_asked = False
        self.counts = {"bytes_to_design": 0, "bytes_from_design": 0, "bytes_dropped": 0,
                       "tx_framing_errors": 0, "clients": 0, "clients_refused": 0,
                       "resets": 0}

    # -- the pins ---------------------------------------------------------------------------

    async def drive_rx(self) -> None:
        """Shift queued bytes onto ``rx``, back to back, starting on a falling clock edge."""
        rx = self.dut.rx
        while True:
            if not self.to_design:
                self.rx_busy = False
                self.rx_wake.clear()
                await self.rx_wake.wait()
                # Bit boundaries on falling edges keep ``rx`` from changing on a rising one.
                await self.dut.clk.falling_edge
            self.rx_busy = True
            chunk = bytes(self.to_design)
            self.to_design.clear()
            for byte in chunk:
                if self.timeline is not None:
                    self.timeline["to_design_ns"].append(get_sim_time("ns"))
                for level, bits in self.frames[byte]:
                    rx.value = level
                    await self.run_timers[bits]
                self.counts["bytes_to_design"] += 1
            self.last_activity_ns = get_sim_time("ns")

    async def monitor_tx(self) -> None:
        """Record every edge of ``tx`` and decode the frames it completes."""
        tx = self.dut.tx
        change = tx.value_change
        while True:
            await change
            now = get_sim_time("ns")
            self.tx_decoder.edge(now, 1 if tx.value == 1 else 0)
            self.take_tx(now)

    def take_tx(self, now_ns: float) -> None:
        """Move the frames that ``tx`` completed by ``now_ns`` to the clients' queue."""
        frames = self.tx_decoder.decode(now_ns)
        if not frames:
            return
        for byte, end_ns in zip(frames, self.tx_decoder.ends_ns, strict=True):
            if byte is None:
                self.counts["tx_framing_errors"] += 1
                logger.warning("the design sent a frame with a low stop bit")
            else:
                self.from_design.append(byte)
                self.counts["bytes_from_design"] += 1
                if self.timeline is not None:
                    self.timeline["from_design_ns"].append(end_ns)
        self.last_activity_ns = now_ns

    # -- the sockets ------------------------------------------------------------------------

    def busy(self) -> bool:
        """Whether anything is moving or moved recently (see the module's docstring)."""
        return (bool(self.to_design) or self.rx_busy or bool(self.tx_decoder.edges)
                or get_sim_time("ns") - self.last_activity_ns < self.idle_after_ns)

    def _check_pty(self) -> None:
        """Notice a client opening or closing the pty's slave."""
        if self.pty is None:
            return
        hung_up = any(event & select.POLLHUP for _, event in self.pty_poll.poll(0))
        if hung_up and self.pty_attached:
            self._take(self.pty)  # what it wrote before it closed was on the line
            self._detach_pty()
        elif not hung_up and not self.pty_attached:
            self.pty_attached = True
            logger.info("%s: a client opened it", self.pty.name)

    def _detach_pty(self) -> None:
        self.pty_attached = False
        self.counts["bytes_dropped"] += len(self.pty.output)
        self.pty.output.clear()
        # Drop what the last client left unread, so the next one starts on a clean line.
        termios.tcflush(self.pty.fd, termios.TCOFLUSH)
        logger.info("%s: its client closed it", self.pty.name)

    def _attached(self) -> list[_Client]:
        clients: list[_Client] = [self.tcp] if self.tcp is not None else []
        if self.pty is not None and self.pty_attached:
            clients.append(self.pty)
        return clients

    def _accept(self) -> None:
        try:
            connection, address = self.listener.accept()
        except BlockingIOError:
            return
        name = f"{address[0]}:{address[1]}"
        if self.tcp is not None:
            self.counts["clients_refused"] += 1
            logger.warning("refused TCP client %s: %s is connected", name, self.tcp.name)
            connection.close()
            return
        connection.setblocking(False)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.tcp = _TcpClient(connection, name)
        self.counts["clients"] += 1
        logger.info("%s connected", self.tcp.name)

    def _drop_tcp(self) -> None:
        logger.info("%s disconnected", self.tcp.name)
        self.counts["bytes_dropped"] += len(self.tcp.output)
        self.tcp.close()
        self.tcp = None

    def _take(self, client: _Client) -> bool:
        """Read what ``client`` sent into the queue for ``rx``; False once it has gone."""
        room = RX_QUEUE_LIMIT - len(self.to_design)
        if room <= 0:
            return True
        data = client.read(min(room, READ_CHUNK))
        if data is None:
            return False
        if data:
            self.to_design += data
            self.rx_wake.set()
            self.last_activity_ns = get_sim_time("ns")
        return True

    def service(self, wait_s: float) -> None:
        """Move bytes between the queues and the clients, waiting up to ``wait_s`` for any."""
        self.take_tx(get_sim_time("ns"))
        self._check_pty()
        clients = self._attached()
        if self.from_design:
            if not clients:
                self.counts["bytes_dropped"] += len(self.from_design)
            for client in clients:
                self.counts["bytes_dropped"] += client.queue(self.from_design)
            self.from_design.clear()
        readers = [self.listener.fileno()]
        if len(self.to_design) < RX_QUEUE_LIMIT:
            readers += [client.fd for client in clients]
        writers = [client.fd for client in clients if client.output]
        readable, writable, _ = select.select(readers, writers, [], wait_s)
        if self.listener.fileno() in readable:
            self._accept()
        for client in clients:
            if ((client.fd in readable and not self._take(client))
                    or (client.fd in writable and not client.flush())):
                if client is self.tcp:
                    self._drop_tcp()
                else:
                    self._detach_pty()

    def stop_requested(self) -> bool:
        """The stop file exists or the parent process is gone (checked every 50 ms).

        Between the checks it also notices a reset request (see :meth:`reset_if_asked`).
        """
        now = time.monotonic()
        if now < self.next_stop_check:
            return False
        self.next_stop_check = now + STOP_CHECK_S
        self.reset_asked = self.reset_asked or self.reset_path.exists()
        if self.stop_path.exists():
            logger.info("stop file %s found", self.stop_path)
            return True
        if os.getppid() != self.parent:
            logger.info("the process that started the simulator has gone")
            return True
        return False

    async def reset_if_asked(self) -> None:
        """Press the board's reset button if the reset file appeared, then remove the file."""
        if not self.reset_asked:
            return
        self.reset_asked = False
        with contextlib.suppress(FileNotFoundError):
            self.reset_path.unlink()
        logger.info("reset asked: rst high for %d cycles", RESET_CYCLES)
        await self.dut.clk.falling_edge
        self.dut.rst.value = 1
        await Timer(RESET_CYCLES * self.clock_ns, unit="ns")
        self.dut.rst.value = 0
        self.counts["resets"] += 1
        self.last_activity_ns = get_sim_time("ns")

    def close(self) -> None:
        """Close the listener, the TCP client and the pty (its slave path disappears)."""
        if self.tcp is not None:
            self._drop_tcp()
        self.listener.close()
        if self.pty is not None:
            with contextlib.suppress(OSError):
                os.close(self.pty.fd)

    # -- the whole run ----------------------------------------------------------------------

    async def run(self, ready_path: Path) -> None:
        """Reset the design, announce the endpoints, then serve until told to stop."""
        dut = self.dut
        if cocotb.SIM_NAME.lower().startswith("icarus"):
            wake_comb_processes(dut)
        dut.rx.value = 1
        dut.rst.value = 1
        Clock(dut.clk, self.clock_ns, unit="ns", impl="gpi").start()
        await Timer(2 * self.clock_ns, unit="ns")
        dut.rst.value = 0
        await dut.clk.falling_edge
        cocotb.start_soon(self.drive_rx())
        cocotb.start_soon(self.monitor_tx())

        partial = ready_path.with_suffix(".partial")
        partial.write_text(json.dumps({"port": self.port, "pty": self.pty_path}))
        partial.rename(ready_path)
        logger.info("listening on socket://127.0.0.1:%d%s", self.port,
                    f" and {self.pty_path}" if self.pty_path else "")
        while not self.stop_requested():
            await self.reset_if_asked()
            if self.busy():
                self.idle_wait_s = IDLE_WAIT_MIN_S
                await self.busy_step
                self.service(0.0)
            else:
                await self.idle_step
                self.service(self.idle_wait_s)
                self.idle_wait_s = min(2 * self.idle_wait_s, self.idle_wait_max_s)
        # Hand over what the design sent last before the clients are closed.
        self.service(0.0)
        for client in self._attached():
            client.flush()


@cocotb.test()
async def bridge(dut):
    """Serve the design's UART until stopped, then write the byte counts and times."""
    params = testbench_params()
    started = time.monotonic()
    bridge = Bridge(dut, params)
    try:
        await bridge.run(Path(params["ready_path"]))
    finally:
        bridge.close()
    sim_time_ns = get_sim_time("ns")
    timeline = {} if bridge.timeline is None else {"timeline": bridge.timeline}
    write_testbench_results(params, {
        **bridge.counts,
        **timeline,
        "sim_time_ns": sim_time_ns,
        "cycles": int(sim_time_ns // bridge.clock_ns),
        "wall_seconds": time.monotonic() - started,
    })
