"""Co-simulation: a simulated board behind a serial URL and a pseudo-terminal.

:func:`start_cosim` builds a design with UART pins ``rx`` and ``tx`` (cached, like every
build of :mod:`hilt.sim.runner`), runs it in a background process on one of two engines,
and returns once the board listens. Anything that speaks pyserial then talks to the
simulated UART: ``serial.serial_for_url(board.url)`` (``socket://127.0.0.1:PORT``),
``serial.Serial(board.pty)``, or :class:`hilt.host.transport.Device`. The line runs as fast
as the simulator does, not at a baud rate.

- ``native`` (the default under Verilator): the design and hilt's C++ harness
  (``cosim_harness.cpp``, built by :mod:`hilt.sim.native_build`) in one program that runs
  the clock, the UART line and the sockets with no Python in the loop.
- ``cocotb`` (Icarus, or Verilator): the bridge testbench
  :mod:`hilt.sim.testbenches.cosim_bridge` under cocotb, started by a small Python process
  (this module run with ``-m``) through cocotb's runner; for pin- and cycle-level work.

Both get the same design (:class:`BoardReset` around it), the same options and the same
files, and answer the same bytes. The background process runs in a session of its own, so
a Ctrl-C at the terminal reaches only the caller, which then stops the board cleanly. The
board stops when asked (:meth:`CosimBoard.stop`, which creates the stop file) and also
when the caller dies: the native harness and cocotb's simulator watch their parent, and
cocotb's Python process also watches a pipe from the caller.

:func:`serve_forever` is the body of a command that keeps a board up until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from amaranth.back import verilog
from amaranth.hdl import ClockDomain, ClockSignal, Module, Shape
from amaranth.lib import wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.lib.wiring import In, Out

from hilt.firmware.uart import MIN_DIVISOR
from hilt.hdl.params import check_int
from hilt.sim.build_cache import cached_build, default_cache_dir, log_tail
from hilt.sim.errors import SimulationFailed, SimulatorNotFound
from hilt.sim.native_build import native_build, program
from hilt.sim.runner import PARAMS_ENV
from hilt.sim.toolchains import SIMULATORS, TIMESCALE, cocotb_runner, find_toolchain

__all__ = ["ENGINES", "BoardReset", "CosimBoard", "build_board", "check_engine",
           "check_port_free", "serve_forever", "start_cosim"]

logger = logging.getLogger(__name__)

ENGINES = ("native", "cocotb")
"""How a co-simulated board runs: hilt's C++ harness under Verilator, or cocotb's bridge."""
TESTBENCH = "hilt.sim.testbenches.cosim_bridge"
TOPLEVEL = "top"

POLL_BYTES = 16
"""While bytes move, the bridge polls its sockets every this many byte times."""
FED_POLL_BYTES = 64
"""The native harness polls every this many byte times while the host keeps the line fed,
and every :data:`POLL_BYTES` once it has not."""
IDLE_AFTER_CYCLES = 1 << 16
"""Clock cycles without a byte either way before the bridge idles."""
IDLE_CYCLES = 1 << 10
"""Clock cycles simulated per idle step."""
IDLE_WAIT_S = 0.05
"""Longest wall time an idle bridge waits for a client between steps."""
STOP_TIMEOUT_S = 30.0


class CosimBoard:
    """A running co-simulated board; made by :func:`start_cosim`.

    Attributes
    ----------
    url : str
        ``socket://127.0.0.1:PORT``, for ``serial.serial_for_url`` or ``Device``.
    port : int
        The TCP port.
    pty : str or None
        The pseudo-terminal's path (``/dev/pts/N``), None if it was not asked for.
    sim : str
        The simulator.
    engine : str
        ``native`` (hilt's C++ harness) or ``cocotb`` (the cocotb bridge).
    bit_ns : int
        Simulated nanoseconds per bit on the line.
    pid : int
        The background process, in a session of its own: the native harness itself, or
        the Python process whose child the simulator is.
    run_dir : Path
        The run's directory: ``sim.log`` (the harness, or cocotb and the bridge), and for
        the cocotb engine ``runner.log`` (the background process). Removed after a clean
        stop unless ``run_dir`` was given.
    """

    def __init__(self, *, sim: str, engine: str, process: subprocess.Popen, run_dir: Path,
                 keep: bool, ready_path: Path, stop_path: Path, reset_path: Path,
                 results_path: Path, bit_ns: int) -> None:
        self.sim = sim
        self.engine = engine
        self.bit_ns = bit_ns
        self.pid = process.pid
        self.run_dir = run_dir
        self.url = ""
        self.port = 0
        self.pty: str | None = None
        self._process = process
        self._keep = keep
        self._ready_path = ready_path
        self._stop_path = stop_path
        self._reset_path = reset_path
        self._results_path = results_path
        self._results: dict[str, Any] | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return (f"CosimBoard({self.sim}, {self.engine}, {self.url!r}, pty={self.pty!r}, "
                f"{state})")

    def __enter__(self) -> CosimBoard:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if kind is None:
            self.stop()
        else:
            # Already failing: stop without raising a second error over the first.
            try:
                self.stop()
            except SimulationFailed as error:
                logger.warning("%s", error)

    @property
    def running(self) -> bool:
        """Whether the simulator's process is still running."""
        return self._process.poll() is None

    def reset(self) -> None:
        """Press the board's reset button: the design's registers are cleared within about
        50 ms of wall time, its memories keep their contents, and a host's session with it
        ends (the firmware answers NOT_SYNCED until the next SYNC).

        Raises
        ------
        SimulationFailed
            The simulator is not running.
        """
        if not self.running:
            raise self._failure("is not running, so it cannot be reset")
        self._reset_path.touch()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> dict[str, Any]:
        """Stop the simulation cleanly and return the bridge's results.

        The results: ``bytes_to_design``, ``bytes_from_design``, ``bytes_dropped`` (sent by
        the design with no client attached), ``tx_framing_errors``, ``clients``,
        ``clients_refused``, ``resets``, ``sim_time_ns``, ``cycles``, ``wall_seconds``, and
        with ``timeline`` asked of :func:`start_cosim` the ``timeline`` of every byte each
        way (see :meth:`bit_times`). Calling it again returns the same results.

        Raises
        ------
        SimulationFailed
            The simulator died, or did not stop within ``timeout`` seconds and was killed.
        """
        if self._results is not None:
            return self._results
        self._request_stop()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            raise self._failure(f"did not stop within {timeout:g} s and was killed") from None
        except BaseException:
            self._kill()
            raise
        return self._finish()

    def bit_times(self, sent_from: int, received_to: int) -> float:
        """Line bit times from the start bit of byte ``sent_from`` to the board (0 the
        first of the run) to the stop bit of byte ``received_to - 1`` from it.

        Payload bits over this span is how full a stretch of traffic kept the line, in
        the board's own time, whatever the simulator's speed. Only after :meth:`stop`, on
        a board started with ``timeline=True``.
        """
        timeline = (self._results or {}).get("timeline")
        if timeline is None:
            raise ValueError("bit_times needs a board started with timeline=True and stopped")
        sent, received = timeline["to_design_ns"], timeline["from_design_ns"]
        if not 0 <= sent_from < len(sent):
            raise ValueError(f"sent_from must be in 0..{len(sent) - 1}, got {sent_from}")
        if not 1 <= received_to <= len(received):
            raise ValueError(f"received_to must be in 1..{len(received)}, got {received_to}")
        return (received[received_to - 1] - sent[sent_from]) / self.bit_ns

    def wait(self) -> dict[str, Any]:
        """Block until the simulation ends (someone else stopped it); its results.

        Raises
        ------
        SimulationFailed
            The simulator died.
        """
        if self._results is not None:
            return self._results
        try:
            self._process.wait()
        except BaseException:
            self._request_stop()
            raise
        return self._finish()

    # -- the background process -------------------------------------------------------------

    def _request_stop(self) -> None:
        with contextlib.suppress(OSError):
            self._stop_path.touch()
        with contextlib.suppress(OSError):
            self._process.stdin.close()

    def _kill(self) -> None:
        """End the background process and the simulator (its session) at once."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()
        with contextlib.suppress(OSError):
            self._process.stdin.close()

    def _failure(self, what: str) -> SimulationFailed:
        tails = []
        for name in ("sim.log", "runner.log"):
            tail = log_tail(self.run_dir / name)
            if tail.strip():
                tails.append(f"{self.run_dir / name} ends:\n{tail}")
        detail = "\n".join(tails) or f"no log in {self.run_dir}"
        return SimulationFailed(f"co-simulation under {self.sim} {what}\n{detail}",
                                failures=[what], results=None, run_dir=self.run_dir)

    def _finish(self) -> dict[str, Any]:
        status = self._process.returncode
        if not self._results_path.is_file():
            raise self._failure(f"stopped without finishing (exit status {status})")
        self._results = json.loads(self._results_path.read_text())
        if not self._keep:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        return self._results

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready_path.is_file():
            if self._process.poll() is not None:
                raise self._failure(f"stopped before its bridge listened "
                                    f"(exit status {self._process.returncode})")
            if time.monotonic() > deadline:
                self._kill()
                raise self._failure(f"did not listen within {timeout:g} s and was killed")
            time.sleep(0.02)
        ready = json.loads(self._ready_path.read_text())
        self.port = ready["port"]
        self.url = f"socket://127.0.0.1:{self.port}"
        self.pty = ready["pty"]


class BoardReset(wiring.Component):
    """``design`` as a board holds it: its clock from the ``clk`` pin and its reset from the
    ``rst`` button through a reset synchronizer, as every Amaranth platform builds the
    ``sync`` domain from the board's reset pin. Its UART pins pass straight through.

    The simulated design's registers then reset from a register, not from a top-level
    input: Verilator re-evaluates everything that reads an input whenever an input
    changes, which with ``rst`` read by every register's next state was a third of each
    clock cycle's cost.
    """

    def __init__(self, design: wiring.Component) -> None:
        self.design = design
        super().__init__({"clk": In(1), "rst": In(1), "rx": In(1, init=1),
                          "tx": Out(1, init=1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(self.clk)
        m.submodules.reset_sync = ResetSynchronizer(self.rst, domain="sync")
        m.submodules.design = self.design
        m.d.comb += [self.design.rx.eq(self.rx), self.tx.eq(self.design.tx)]
        return m


def check_port_free(port: int) -> None:
    """Refuse a TCP port on 127.0.0.1 that something already listens on, as the bridge
    would find it, before anything is built; 0 (any free port) always passes."""
    if port == 0:
        return
    try:
        socket.create_server(("127.0.0.1", port)).close()
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise ValueError(f"port {port} on 127.0.0.1 cannot be listened on ({reason}); give "
                         f"another, or 0 for any free one") from None


def _check_uart_pins(component: wiring.Component) -> None:
    members = component.signature.members
    for name, flow in (("rx", wiring.In), ("tx", wiring.Out)):
        if name not in members or not members[name].is_port or members[name].flow != flow \
                or Shape.cast(members[name].shape).width != 1:
            component._MustUse__silence = True  # refused here, so not "created but unused"
            raise ValueError(f"a co-simulated design needs a one-bit {flow.name} port "
                             f"{name!r} (its UART pin); {type(component).__name__} has "
                             f"{sorted(members.keys())}")


def check_engine(engine: str | None, sim: str) -> str:
    """The engine a board under ``sim`` runs on: ``engine``, or by default ``native`` under
    Verilator and ``cocotb`` under Icarus.

    Raises ValueError, in one line naming what is accepted, for an unknown engine or for
    ``native`` under a simulator other than Verilator.
    """
    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {', '.join(SIMULATORS)}, got {sim!r}")
    if engine is None:
        return "native" if sim == "verilator" else "cocotb"
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "native" and sim != "verilator":
        raise ValueError(f"engine native runs under Verilator only, not sim {sim!r}; give "
                         f"sim verilator, or engine cocotb")
    return engine


def build_board(component: wiring.Component, *, sim: str = "verilator",
                engine: str | None = None, cache_dir: Path | None = None) -> tuple[Path, bool]:
    """Build ``component`` as :func:`start_cosim` would run it, without starting it: its
    build directory in the cache and whether it was cached. The directory's stamp records
    how long the build took (:func:`hilt.sim.build_cache.build_seconds`).

    Raises as :func:`start_cosim` does for the design, the engine and the build.
    """
    try:
        engine = check_engine(engine, sim)
        _check_uart_pins(component)
    except ValueError:
        component._MustUse__silence = True  # refused here, so not "created but unused"
        raise
    return _build(component, sim, engine, cache_dir)


def _build(component: wiring.Component, sim: str, engine: str,
           cache_dir: Path | None) -> tuple[Path, bool]:
    try:
        toolchain = find_toolchain(sim)
    except SimulatorNotFound:
        component._MustUse__silence = True  # refused here, so not "created but unused"
        raise
    cache_dir = (default_cache_dir() if cache_dir is None else Path(cache_dir)).absolute()
    source = verilog.convert(BoardReset(component), name=TOPLEVEL, emit_src=False)
    if engine == "native":
        return native_build(toolchain, source, TOPLEVEL, cache_dir)
    return cached_build(toolchain, source, TOPLEVEL, None, cache_dir)


def start_cosim(component: wiring.Component, *, sim: str = "verilator", divisor: int,
                engine: str | None = None, port: int = 0, pty: bool = True,
                clock_ns: int = 10, cache_dir: Path | None = None,
                run_dir: Path | None = None, ready_timeout: float = 60.0,
                timeline: bool = False) -> CosimBoard:
    """Build ``component`` and serve its UART on a TCP port and a pty, in the background.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
        A design with a one-bit input port ``rx`` and output port ``tx`` (its UART pins)
        and the default ``sync`` clock domain.
    sim : str
        ``"verilator"`` or ``"icarus"``.
    engine : str, optional
        ``"native"``: the design and hilt's C++ harness compiled into one program by
        Verilator, no Python while it runs (the default under Verilator); ``"cocotb"``:
        the cocotb bridge :mod:`hilt.sim.testbenches.cosim_bridge` (the default, and the
        only engine, under Icarus). Both answer the same bytes.
    divisor : int
        The design's clock cycles per bit; the bridge's UART uses the same.
    port : int
        TCP port on 127.0.0.1; 0 for any free one (see :attr:`CosimBoard.port`).
    pty : bool
        Also open a pseudo-terminal (POSIX).
    clock_ns : int
        Simulated clock period in ns (at least 2); it sets simulated time only, not speed.
    cache_dir : Path, optional
        Root of the build cache (:func:`hilt.sim.runner.default_cache_dir` by default).
    run_dir : Path, optional
        Where to create the run directory (kept); by default a temporary one, removed
        after a clean stop.
    ready_timeout : float
        Seconds the simulator may take, once built, to start listening.
    timeline : bool
        Record the simulated time of every byte each way, for :meth:`CosimBoard.bit_times`.

    Raises
    ------
    ValueError
        The design lacks the UART pins, a parameter is out of range, ``port`` is taken,
        or ``engine`` is unknown or not available under ``sim``.
    SimulatorNotFound
        The simulator is not installed; the message says how to install it.
    BuildFailed
        The design did not build; the message ends with the build log.
    SimulationFailed
        The simulator stopped before it listened (a port already in use, say); the
        message ends with its log.
    """
    check_int("divisor", divisor, MIN_DIVISOR)
    check_int("port", port, 0, 65535)
    check_int("clock_ns", clock_ns, 2)
    try:
        engine = check_engine(engine, sim)
        _check_uart_pins(component)
        check_port_free(port)
    except ValueError:
        component._MustUse__silence = True  # refused here, so not "created but unused"
        raise
    build_dir, _ = _build(component, sim, engine, cache_dir)

    if run_dir is None:
        work, keep = Path(tempfile.mkdtemp(prefix=f"hilt-cosim-{sim}-")), False
    else:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        work, keep = Path(tempfile.mkdtemp(prefix=f"cosim-{sim}-", dir=run_dir)), True
    paths = {name: work / name for name in ("ready.json", "stop", "reset", "results.json")}
    params = {
        "divisor": divisor, "clock_ns": clock_ns, "port": port, "pty": pty,
        "ready_path": str(paths["ready.json"]), "stop_path": str(paths["stop"]),
        "reset_path": str(paths["reset"]), "timeline": bool(timeline),
        "results_path": str(paths["results.json"]),
        "poll_cycles": POLL_BYTES * 10 * divisor, "idle_after_cycles": IDLE_AFTER_CYCLES,
        "idle_cycles": IDLE_CYCLES, "idle_wait_s": IDLE_WAIT_S,
    }
    if engine == "native":
        command = [str(program(build_dir)),
                   *_harness_arguments(params, "" if keep else str(work))]
        log_name = "sim.log"
        env = dict(os.environ)
    else:
        (work / "params.json").write_text(json.dumps(params))
        spec = {"sim": sim, "build_dir": str(build_dir), "run_dir": str(work), "keep": keep}
        (work / "spec.json").write_text(json.dumps(spec))
        command = [sys.executable, "-m", __name__, str(work / "spec.json")]
        log_name = "runner.log"
        # cocotb's runner changes what it does under pytest; the simulation is not a test.
        env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    with open(work / log_name, "wb") as log:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=log,
                                   stderr=subprocess.STDOUT, cwd=work, env=env,
                                   start_new_session=True)
    board = CosimBoard(sim=sim, engine=engine, process=process, run_dir=work, keep=keep,
                       ready_path=paths["ready.json"], stop_path=paths["stop"],
                       reset_path=paths["reset"], results_path=paths["results.json"],
                       bit_ns=divisor * clock_ns)
    try:
        board._wait_ready(ready_timeout)
    except BaseException:
        board._kill()
        raise
    logger.info("co-simulation under %s (%s engine) listening on %s (pty %s), run "
                "directory %s", sim, engine, board.url, board.pty, work)
    return board


def _harness_arguments(params: dict[str, Any], orphan_cleanup: str) -> list[str]:
    """The native harness's command line for the bridge's ``params``; it removes
    ``orphan_cleanup`` (if not empty) when it stops because its parent died."""
    values = {
        "divisor": params["divisor"], "clock-ns": params["clock_ns"], "port": params["port"],
        "pty": int(params["pty"]), "timeline": int(params["timeline"]),
        "poll-cycles": params["poll_cycles"],
        "fed-poll-cycles": FED_POLL_BYTES * 10 * params["divisor"],
        "idle-after-cycles": params["idle_after_cycles"],
        "idle-cycles": params["idle_cycles"],
        "idle-wait-us": max(1, round(params["idle_wait_s"] * 1e6)),
        "ready": params["ready_path"], "stop": params["stop_path"],
        "reset": params["reset_path"], "results": params["results_path"],
        "orphan-cleanup": orphan_cleanup,
    }
    return [f"--{name}={value}" for name, value in values.items()]


def serve_forever(component: wiring.Component, *, sim: str = "verilator", divisor: int,
                  engine: str | None = None, port: int = 0, pty: bool = True,
                  clock_ns: int = 10, announce: Callable[[str], None] = print,
                  ) -> dict[str, Any]:
    """Serve ``component`` as :func:`start_cosim` does until Ctrl-C; the bridge's results.

    ``announce`` gets the lines for the user: where to connect, and on Ctrl-C what moved.
    A Ctrl-C stops the simulator cleanly (a second one kills it) and returns normally.

    Raises
    ------
    SimulationError
        As :func:`start_cosim`, or :class:`SimulationFailed` if the simulator dies while
        serving.
    """
    try:
        board = start_cosim(component, sim=sim, engine=engine, divisor=divisor, port=port,
                            pty=pty, clock_ns=clock_ns)
    except KeyboardInterrupt:
        announce("interrupted before the board was up")
        return {}
    announce(f"co-simulated board ({sim}, {board.engine} engine, {divisor} cycles a bit) "
             f"on {board.url}")
    if board.pty is not None:
        announce(f"pseudo-terminal: {board.pty}")
    announce("Ctrl-C stops it")
    try:
        results = board.wait()
    except KeyboardInterrupt:
        announce("stopping the simulator")
        try:
            results = board.stop()
        except KeyboardInterrupt:
            board._kill()
            announce("killed the simulator")
            return {}
    announce(f"stopped: {results['bytes_to_design']} bytes to the board, "
             f"{results['bytes_from_design']} from it, {results['sim_time_ns'] / 1e6:.3f} ms "
             f"simulated in {results['wall_seconds']:.1f} s")
    return results


def _stop_when_orphaned(stop_path: Path) -> None:
    """Create the stop file when the caller closes our stdin, or dies."""
    with contextlib.suppress(OSError):
        sys.stdin.buffer.read()
        stop_path.touch()


def _run(spec_path: Path) -> int:
    """The background process: run the bridge under the simulator until it stops."""
    spec = json.loads(spec_path.read_text())
    work = Path(spec["run_dir"])
    caller = os.getppid()
    params = json.loads((work / "params.json").read_text())
    threading.Thread(target=_stop_when_orphaned, args=(Path(params["stop_path"]),),
                     daemon=True).start()
    runner = cocotb_runner(find_toolchain(spec["sim"]), {PARAMS_ENV: str(work / "params.json")})
    try:
        runner.test(test_module=TESTBENCH, hdl_toplevel=TOPLEVEL, hdl_toplevel_lang="verilog",
                    build_dir=spec["build_dir"], test_dir=work,
                    results_xml=str(work / "results.xml"), timescale=TIMESCALE,
                    log_file=work / "sim.log")
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    if os.getppid() != caller and not spec["keep"]:
        # Stopped because the caller died: nobody else will remove the run directory.
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(_run(Path(sys.argv[1])))
