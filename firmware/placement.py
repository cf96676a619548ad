"""Out-of-context place and route of one component, for its Fmax and whether it fits a device.

:func:`~hilt.firmware.synthesis.synthesize` counts cells; a co-designer also needs the
clock rate the placed component reaches and whether it fits the device at all. A
component's ports outnumber any package's pins, so :class:`PinHarness` puts it between
a serial-in shift register that drives every input and a loadable shift register that
captures every output: three pins besides clock and reset, every port registered, so
the critical path is the component's own (plus at most one multiplexer level into the
capture register), and nothing the component computes can be optimised away.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hilt.firmware.build import toolchain
from hilt.firmware.synthesis import synthesis_script

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Device:
    """One FPGA part that components are placed on."""

    name: str
    family: str
    nextpnr_args: tuple[str, ...]
    target_mhz: float
    # nextpnr's utilisation names for the sites counted as LUTs, DSPs and block RAMs.
    sites: tuple[str, str, str]
    # How many of each the part has, so that a design synthesis already shows too big for
    # it is not handed to the placer.
    capacity: tuple[int, int, int]
    # Yosys's cells that take LUT, DSP and block-RAM sites, each with how many it takes.
    cells: tuple[dict[str, int], dict[str, int], dict[str, int]]


_ICE40_CELLS = ({"SB_LUT4": 1}, {"SB_MAC16": 1}, {"SB_RAM40_4K": 1})
# An ECP5 carry cell (two bits of an adder) takes the two LUT sites of a slice half.
_ECP5_CELLS = ({"LUT4": 1, "CCU2C": 2}, {"MULT18X18D": 1}, {"DP16KD": 1})
_ECP5_SITES = ("TRELLIS_COMB", "MULT18X18D", "DP16KD")

DEVICES = {
    "up5k": Device("iCE40 UP5K (SG48)", "ice40", ("--up5k", "--package", "sg48"), 48.0,
                   ("ICESTORM_LC", "ICESTORM_DSP", "ICESTORM_RAM"), (5280, 8, 30), _ICE40_CELLS),
    "ecp5-25k": Device("ECP5 LFE5U-25F (CABGA381)", "ecp5", ("--25k", "--package", "CABGA381"),
                       100.0, _ECP5_SITES, (24288, 28, 56), _ECP5_CELLS),
    "ecp5-85k": Device("ECP5 LFE5U-85F (CABGA381)", "ecp5", ("--85k", "--package", "CABGA381"),
                       100.0, _ECP5_SITES, (83640, 156, 208), _ECP5_CELLS),
}
"""The devices :func:`place` knows, by the name ``benchmarks/hardware_cost.py`` uses."""


class PinHarness(wiring.Component):
    """Drives every input of ``component`` from a shift register and captures every output.

    ``si`` shifts one bit per cycle into the input register; while ``load`` is high the
    output register takes the component's outputs, otherwise it shifts them out on ``so``.
    """

    def __init__(self, component: wiring.Component):
        self.component = component
        super().__init__({"si": In(1), "load": In(1), "so": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.dut = dut = self.component
        inputs, outputs = [], []
        for _path, member, value in dut.signature.flatten(dut):
            (inputs if member.flow == In else outputs).append(Value.cast(value))
        in_width = sum(len(value) for value in inputs)
        out_width = sum(len(value) for value in outputs)
        chain = Signal(max(in_width, 1))
        m.d.sync += chain.eq(Cat(self.si, chain[:-1]))
        offset = 0
        for value in inputs:
            m.d.comb += value.eq(chain[offset:offset + len(value)])
            offset += len(value)
        capture = Signal(max(out_width, 1))
        with m.If(self.load):
            m.d.sync += capture.eq(Cat(*outputs))
        with m.Else():
            m.d.sync += capture.eq(capture >> 1)
        m.d.comb += self.so.eq(capture[0])
        return m


@dataclass(frozen=True)
class Placement:
    """A component placed and routed on one device, inside its :class:`PinHarness`."""

    device: str
    fits: bool
    luts: int
    flip_flops: int
    dsps: int
    brams: int
    luts_available: int
    dsps_available: int
    brams_available: int
    fmax_mhz: float | None
    target_mhz: float
    seconds: float
    reason: str = ""


_DOES_NOT_FIT = re.compile(
    r"(?i)(unable to place|unable to find legal placement|utilisation limit|too many|exceed|"
    r"not enough|failed to place|failed to expand region)")
_UTILISATION = re.compile(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%")


def place(component: wiring.Component, device: str = "up5k", *, use_dsp: bool = True,
          seed: int = 1) -> Placement:
    """Synthesise ``component`` in a :class:`PinHarness`, place and route it on ``device``.

    A design that nextpnr cannot place for lack of sites comes back with ``fits=False``
    and the reason; any other tool failure raises ``RuntimeError`` with the log's tail.
    Fmax is nextpnr's estimate for the harness clock after routing.
    """
    source_text = verilog.convert(PinHarness(component), name="top")
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    spec = DEVICES[device]
    env, _versions = toolchain(spec.family)
    yosys = env["YOSYS"]
    nextpnr = env[f"NEXTPNR_{spec.family.upper()}"]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hilt-place-") as tmp:
        work = Path(tmp)
        (work / "top.v").write_text(source_text)
        script = (f"read_verilog top.v; {synthesis_script(spec.family, use_dsp)}; "
                  "check -assert; tee -q -o stat.json stat -json; write_json top.json")
        logger.info("place: %s on %s", type(component).__name__, device)
        done = subprocess.run([yosys, "-q", "-l", "yosys.log", "-p", script], cwd=work,
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"Yosys failed on {type(component).__name__} for {device}:\n"
                               f"{_tail(work / 'yosys.log')}")
        cells = json.loads((work / "stat.json").read_text())["design"]["num_cells_by_type"]
        flip_flops = sum(n for kind, n in cells.items()
                         if kind.startswith(("SB_DFF", "TRELLIS_FF")))
        needed = [sum(cells.get(kind, 0) * sites for kind, sites in kinds.items())
                  for kinds in spec.cells]
        over = [f"{n} {what} (the part has {cap})" for n, cap, what
                in zip(needed, spec.capacity, ("LUTs", "DSPs", "block RAMs"), strict=True)
                if n > cap]
        if over:
            return Placement(device=device, fits=False, luts=needed[0], flip_flops=flip_flops,
                             dsps=needed[1], brams=needed[2], luts_available=spec.capacity[0],
                             dsps_available=spec.capacity[1], brams_available=spec.capacity[2],
                             fmax_mhz=None, target_mhz=spec.target_mhz,
                             seconds=time.perf_counter() - start,
                             reason="synthesis needs " + ", ".join(over))
        pnr_args = [nextpnr, *spec.nextpnr_args, "--json", "top.json", "--report", "pnr.json",
                    "--freq", str(spec.target_mhz), "--timing-allow-fail", "--seed", str(seed),
                    "--log", "nextpnr.log", "-q",
                    "--pcf-allow-unconstrained" if spec.family == "ice40"
                    else "--lpf-allow-unconstrained"]
        done = subprocess.run(pnr_args, cwd=work, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        log = _tail(work / "nextpnr.log") + "\n" + done.stderr
        report_path = work / "pnr.json"
        if done.returncode != 0 or not report_path.exists():
            full_log = (work / "nextpnr.log").read_text(errors="replace") if (
                work / "nextpnr.log").exists() else ""
            return _misfit(device, spec, full_log + "\n" + done.stderr, flip_flops, seconds,
                           f"nextpnr failed on {type(component).__name__} for {device}:\n"
                           f"{log.strip()}")
        report = json.loads(report_path.read_text())
    usage = report["utilization"]
    lut_site, dsp_site, bram_site = spec.sites

    def used(site: str) -> int:
        return usage.get(site, {}).get("used", 0)

    def available(site: str) -> int:
        return usage.get(site, {}).get("available", 0)

    fmax = [timing["achieved"] for timing in report.get("fmax", {}).values()]
    return Placement(device=device, fits=True, luts=used(lut_site), flip_flops=flip_flops,
                     dsps=used(dsp_site), brams=used(bram_site),
                     luts_available=available(lut_site), dsps_available=available(dsp_site),
                     brams_available=available(bram_site),
                     fmax_mhz=min(fmax) if fmax else None, target_mhz=spec.target_mhz,
                     seconds=seconds)


def _misfit(device: str, spec: Device, log: str, flip_flops: int, seconds: float,
            failure: str) -> Placement:
    """The placement that nextpnr's ``log`` shows did not fit; other failures raise."""
    if _DOES_NOT_FIT.search(log) is None:
        raise RuntimeError(failure)
    over = [f"{used} {site} (the part has {available})"
            for site, used, available in ((m[1], int(m[2]), int(m[3]))
                                          for m in _UTILISATION.finditer(log))
            if used > available]
    line = next(text for text in log.splitlines() if _DOES_NOT_FIT.search(text))
    return Placement(device=device, fits=False, luts=0, flip_flops=flip_flops, dsps=0,
                     brams=0, luts_available=spec.capacity[0], dsps_available=spec.capacity[1],
                     brams_available=spec.capacity[2], fmax_mhz=None,
                     target_mhz=spec.target_mhz, seconds=seconds,
                     reason=("placement needs " + ", ".join(dict.fromkeys(over))) if over
                     else line.strip().removeprefix("ERROR: "))


def _tail(path: Path, lines: int = 15) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
