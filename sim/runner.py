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
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from amaranth.back import verilog

from hilt.sim.build_cache import cached_build, default_cache_dir, log_tail
from hilt.sim.errors import BuildFailed, SimulationError, SimulationFailed, SimulatorNotFound
from hilt.sim.toolchains import (
    SIMULATORS,
    TIMESCALE,
    Toolchain,
    available_simulators,
    cocotb_runner,
    cxx_has_fst_libraries,
    find_toolchain,
)

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

PARAMS_ENV = "HILT_TB_PARAMS"
_ENV_TRUE = ("1", "yes", "y", "on", "true", "enable")


def _waves_format(toolchain: Toolchain, waves: bool) -> str | None:
    if not waves:
        return None
    if toolchain.sim == "icarus" or cxx_has_fst_libraries(toolchain.cxx):
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
    toolchain = find_toolchain(sim)
    waves_format = _waves_format(toolchain, _waves_requested(waves))
    cache_dir = (default_cache_dir() if cache_dir is None else Path(cache_dir)).absolute()
    started = time.monotonic()

    source = verilog.convert(component, name=toplevel, emit_src=False)
    build_dir, cached = cached_build(toolchain, source, toplevel, waves_format, cache_dir)

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

    runner = cocotb_runner(toolchain, {PARAMS_ENV: str(params_file)})
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
                where += f", ending:\n{log_tail(log_file)}\n"
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

