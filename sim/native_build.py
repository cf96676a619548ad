"""Building the native co-simulation engine: a design and hilt's C++ harness, by Verilator.

The harness (``cosim_harness.cpp``, beside this module) runs the clock and the UART line
in C++ and bridges the line to a TCP port and a pty, so no Python runs while the design
simulates. :func:`native_build` compiles it with the design into one executable, through
the same build cache as every other simulator build, keyed by the Verilog, the harness's
source, the flags and the toolchain.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

from hilt.sim.build_cache import cached, log_tail
from hilt.sim.errors import BuildFailed
from hilt.sim.toolchains import Toolchain

__all__ = ["EXECUTABLE", "HARNESS", "native_build", "program"]

HARNESS = Path(__file__).with_name("cosim_harness.cpp")
EXECUTABLE = "cosim-board"
_FORMAT = 1
"""Bump when the layout of a native build changes, so stale builds are never reused."""

VERILATOR_FLAGS = ("--cc", "--exe", "-O3", "-Wno-fatal", "-Wno-lint", "-Wno-style")
"""Amaranth's Verilog is fine but not lint-clean (widths, unused bits): warnings stay in
the log instead of stopping the build."""
MAKE_FLAGS = ("OPT_FAST=-O1", "OPT_SLOW=-O1", "OPT_GLOBAL=-O2")
"""The model at -O1: on the firmware its per-cycle code ran a few percent faster than at
-O2 or -O3 (one long function, whose code then stays smaller) and compiles faster; the
harness and Verilator's runtime at -O2."""


def _key(toolchain: Toolchain, source: str, toplevel: str) -> str:
    material = json.dumps({
        "format": _FORMAT,
        "engine": "native",
        "tool": toolchain.identity,
        "make": toolchain.make_vars,
        "verilator_flags": VERILATOR_FLAGS,
        "make_flags": MAKE_FLAGS,
        "harness": HARNESS.read_text(),
        "toplevel": toplevel,
        "verilog": source,
    }, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def _run_step(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> float:
    started = time.monotonic()
    with open(log, "ab") as handle:
        handle.write(("$ " + " ".join(command) + "\n").encode())
        handle.flush()
        try:
            completed = subprocess.run(command, cwd=cwd, env=env, stdout=handle,
                                       stderr=subprocess.STDOUT, check=False)
        except OSError as error:
            raise BuildFailed(f"verilator: cannot run {command[0]} ({error}); log {log}:\n"
                              f"{log_tail(log)}") from None
    if completed.returncode != 0:
        raise BuildFailed(f"verilator: {' '.join(command[:2])} failed (exit status "
                          f"{completed.returncode}); log {log}:\n{log_tail(log)}")
    return time.monotonic() - started


def _build(toolchain: Toolchain, build_dir: Path, source_file: Path, toplevel: str) -> None:
    """Verilate the design with the harness, then compile both with make; the seconds each
    step took go to ``steps.json``, for the build-time benchmark."""
    env = {**os.environ, **toolchain.env}
    env["PATH"] = os.pathsep.join([*toolchain.path_prefix, env.get("PATH", "")])
    log = build_dir / "build.log"
    obj = build_dir / "obj"
    verilate = _run_step(
        [toolchain.verilator, *VERILATOR_FLAGS, "--top-module", toplevel, "--prefix", "Vtop",
         "-Mdir", str(obj), "-o", EXECUTABLE, str(source_file), str(HARNESS)],
        env, build_dir, log)
    jobs = str(max(1, os.cpu_count() or 1))
    compile_ = _run_step(["make", "-C", str(obj), "-f", "Vtop.mk", "-j", jobs,
                          *toolchain.make_vars, *MAKE_FLAGS], env, build_dir, log)
    (build_dir / "steps.json").write_text(json.dumps({"verilate": verilate,
                                                      "compile": compile_}))


def native_build(toolchain: Toolchain, source: str, toplevel: str,
                 cache_dir: Path) -> tuple[Path, bool]:
    """The build directory of ``source``'s design with the harness, building it unless
    cached, and whether it was; its program is :func:`program`.

    Raises
    ------
    ValueError
        ``toolchain`` is not Verilator's.
    BuildFailed
        Verilator or the C++ compiler failed; the message ends with the build log.
    """
    if toolchain.sim != "verilator":
        raise ValueError(f"the native engine is built by Verilator, not {toolchain.sim}")
    key = _key(toolchain, source, toplevel)

    def build(build_dir: Path, source_file: Path) -> None:
        _build(toolchain, build_dir, source_file, toplevel)

    return cached(f"native-{toplevel}-{key[:20]}", key, source, toplevel, cache_dir, build)


def program(build_dir: Path) -> Path:
    """The co-simulation program in a native build directory."""
    return build_dir / "obj" / EXECUTABLE
