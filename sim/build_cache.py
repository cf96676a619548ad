"""The build cache: one compiled simulator model per design, shared between processes.

Builds are keyed by a hash of the Verilog and the toolchain, so a regression that runs
the same design many times, or many pytest-xdist workers, compiles it once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cocotb
import cocotb_tools.config

from hilt.sim.errors import BuildFailed
from hilt.sim.toolchains import TIMESCALE, Toolchain, cocotb_runner

logger = logging.getLogger(__name__)

# Bump when the layout of a cached build changes, so stale builds are never reused.
_CACHE_FORMAT = 1
_STAMP = "hilt-build.json"


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


def _cache_key(toolchain: Toolchain, source: str, toplevel: str, waves: str | None) -> str:
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


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` of a log file, for an error message; empty if it is unreadable."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _build(toolchain: Toolchain, build_dir: Path, source_file: Path, toplevel: str,
           waves: str | None) -> None:
    build_args = []
    if toolchain.sim == "verilator":
        # Amaranth's Verilog is fine but not lint-clean (widths, unused bits); warnings
        # stay in the build log instead of stopping the build.
        build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style"]
        if waves == "fst":
            build_args.append("--trace-fst")
    runner = cocotb_runner(toolchain)
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
            f"log {log_file}:\n{log_tail(log_file)}") from None


Builder = Callable[[Path, Path], None]
"""Builds a design: given the build directory and the Verilog file written into it."""


def cached_build(toolchain: Toolchain, source: str, toplevel: str, waves: str | None,
                 cache_dir: Path) -> tuple[Path, bool]:
    """The build directory of this design for cocotb's runner, building it unless cached."""
    key = _cache_key(toolchain, source, toplevel, waves)

    def build(build_dir: Path, source_file: Path) -> None:
        _build(toolchain, build_dir, source_file, toplevel, waves)

    return cached(f"{toolchain.sim}-{toplevel}-{key[:20]}", key, source, toplevel, cache_dir,
                  build)


def cached(name: str, key: str, source: str, toplevel: str, cache_dir: Path,
           build: Builder) -> tuple[Path, bool]:
    """The build directory ``name`` under ``cache_dir``, made by ``build`` unless cached.

    ``key`` is the digest of everything the build depends on, and ``name`` should carry
    part of it. A build is complete once its stamp file exists; the stamp is renamed into
    place last, so a reader that sees it never sees a half-built directory and needs no
    lock. Builders take a per-build file lock and look again, so of many processes that
    miss together exactly one builds and the others wait and reuse it. The stamp records
    the build's wall time (:func:`build_seconds`).
    """
    build_dir = cache_dir / "builds" / name
    stamp = build_dir / _STAMP
    subject = f"build {name}"
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
        build(build_dir, source_file)
        seconds = time.monotonic() - started
        logger.info("%s: built in %.1f s", subject, seconds)
        partial = stamp.with_suffix(".partial")
        partial.write_text(json.dumps({"key": key, "seconds": seconds}))
        partial.rename(stamp)
    return build_dir, False


def build_seconds(build_dir: Path) -> float:
    """The wall time the build in ``build_dir`` took, as its stamp recorded it."""
    return float(json.loads((build_dir / _STAMP).read_text())["seconds"])
