"""Hardware cost of the processing elements, synthesised and placed on iCE40 UP5K and ECP5.

For each element (the shift-vector array, its multiplier twin with DSPs and with LUT
multipliers, the threshold-neuron array and the synapse crossbar), each width and
device, the benchmark walks a ladder of sizes upwards. Each size is synthesised out of
context (the component alone: LUTs, flip-flops, DSPs, block RAMs) and, if that fits the
device, placed and routed inside a three-pin harness (hilt.firmware.placement) for its
Fmax. The walk stops at the first size that does not fit, so the last size placed is the
largest that fits. Throughput is operations per cycle times Fmax; an operation is one
multiply-accumulate (a shift-add for the shift array, a one-bit XNOR-popcount step for
the threshold array, a conductance-times-input product for the crossbar).

The headline, per device and width: the largest shift array against the largest
multiplier array (the faster of its DSP and LUT forms), and their throughput ratio.

    python benchmarks/hardware_cost.py [--devices up5k ecp5-25k] [--elements shift ...]
        [--widths 8 16] [--workers 2] [--json out.json] [--resume rows.jsonl]

Placing the larger sizes takes minutes each; with ``--resume`` every measured row is
appended to a file and a rerun takes the rows it finds there instead of measuring again.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from amaranth.lib import wiring

from hilt.firmware.placement import DEVICES, place
from hilt.firmware.synthesis import synthesize
from hilt.hdl.synapse_crossbar import SynapseCrossbar
from hilt.hdl.threshold_array import BinaryLayerArray
from hilt.quant.synapse_device import SoftBoundsDevice
from hilt.quant.synapse_golden import step_tables_from_device
from hilt.sim.shift_regression import ArrayConfig

DEPTH = 64
"""Inputs per vector of the vector arrays (K): the weight memory holds K / L beats."""

EXP_BITS = {4: 2, 8: 3, 16: 4}
"""Exponent bits that go with each activation width: the twin's integer weight is then
2, 8 or 16 bits plus sign, so width 16 is the 16-bit multiply of the shift-array papers."""

# Sizes in MACs per cycle, each about twice the one before (lanes, PEs).
VECTOR_LADDER = [(2, 1), (2, 2), (4, 2), (4, 4), (8, 4), (8, 8), (16, 8), (16, 16), (32, 16),
                 (32, 32)]
BINARY_LADDER = [(2, 8), (4, 8), (4, 16), (8, 16), (8, 32), (16, 32), (16, 64), (32, 64),
                 (64, 64)]
CROSSBAR_LADDER = [(2, 8), (4, 8), (8, 8), (16, 8), (16, 16), (32, 16), (32, 32)]


@dataclass(frozen=True)
class Point:
    """One element at one size and width, to be synthesised and placed on one device."""

    device: str
    element: str
    width: int
    size: tuple[int, int]

    @property
    def use_dsp(self) -> bool:
        return self.element != "multiplier-lut"

    def build(self) -> wiring.Component:
        """The component this point measures."""
        a, b = self.size
        if self.element in ("shift", "multiplier-dsp", "multiplier-lut"):
            kind = "shift" if self.element == "shift" else "multiplier"
            return ArrayConfig(kind=kind, lanes=a, pes=b, act_width=self.width,
                               exp_bits=EXP_BITS[self.width], depth=DEPTH).build()
        if self.element == "threshold":
            return BinaryLayerArray(in_features=64, out_features=64, pe=a, simd=b)
        tables = step_tables_from_device(SoftBoundsDevice(dw_min=0.2), self.width)
        return SynapseCrossbar(a, b, tables, in_bits=4, max_pulses=15)

    @property
    def ops_per_cycle(self) -> float:
        """Operations the element completes per clock cycle at full rate."""
        a, b = self.size
        if self.element == "crossbar":
            rows, cols = a, b
            return rows * cols / (cols + 1)  # one column per cycle, plus the cycle that takes it
        return a * b

    @property
    def label(self) -> str:
        a, b = self.size
        names = {"threshold": f"pe={a} simd={b}", "crossbar": f"{a}x{b}"}
        return names.get(self.element, f"L={a} M={b}")


ELEMENTS: dict[str, tuple[list[tuple[int, int]], tuple[int, ...] | None]] = {
    "shift": (VECTOR_LADDER, None),
    "multiplier-dsp": (VECTOR_LADDER, None),
    "multiplier-lut": (VECTOR_LADDER, None),
    "threshold": (BINARY_LADDER, (1,)),
    "crossbar": (CROSSBAR_LADDER, (4,)),
}
"""Each element's ladder of sizes and the widths it is measured at: its weight bits (the
threshold array) or cell state bits (the crossbar), or None for the vector arrays, whose
activation widths ``--widths`` chooses."""

ACTIVATION_WIDTHS = (8, 16)
"""The vector arrays' activation widths unless ``--widths`` says otherwise."""


def measure(point: Point) -> dict[str, Any]:
    """Synthesise ``point``'s component alone and, if it can fit, place it in the harness."""
    spec = DEVICES[point.device]
    start = time.perf_counter()
    synth = synthesize(point.build(), spec.family, use_dsp=point.use_dsp)
    row: dict[str, Any] = {**asdict(point), "label": point.label,
                           "ops_per_cycle": point.ops_per_cycle,
                           "luts": synth.luts, "flip_flops": synth.flip_flops,
                           "dsps": synth.dsps, "brams": synth.brams}
    placed = place(point.build(), point.device, use_dsp=point.use_dsp)
    row.update(fits=placed.fits, reason=placed.reason, placed_luts=placed.luts,
               luts_available=placed.luts_available, dsps_available=placed.dsps_available,
               brams_available=placed.brams_available, fmax_mhz=placed.fmax_mhz,
               seconds=round(time.perf_counter() - start, 1))
    if placed.fits and placed.fmax_mhz:
        ops = point.ops_per_cycle * placed.fmax_mhz * 1e6
        row.update(gops=ops / 1e9, ops_per_lut=ops / max(synth.luts, 1))
    return row


def between(low: tuple[int, int], high: tuple[int, int]) -> tuple[int, int] | None:
    """The size halfway between two neighbours of a ladder (they differ in one dimension)."""
    middle = tuple((a + b) // 2 for a, b in zip(low, high, strict=True))
    return middle if low < middle < high and middle != low else None


def walk(device: str, element: str, width: int,
         done: dict[str, dict[str, Any]] | None = None,
         resume: str | None = None) -> list[dict[str, Any]]:
    """Measure a ladder upwards until a size does not fit, then the size halfway back.

    Returns every row measured; the largest fitting size is within a factor of 1.5 of the
    largest that the device could hold.
    """
    ladder, _widths = ELEMENTS[element]
    rows: list[dict[str, Any]] = []
    for index, size in enumerate(ladder):
        rows.append(_measure_and_say(Point(device, element, width, size), done or {}, resume))
        if not rows[-1]["fits"]:
            middle = between(ladder[index - 1], size) if index else None
            if middle is not None:
                rows.append(_measure_and_say(Point(device, element, width, middle),
                                             done or {}, resume))
            break
    return rows


def _key(point: Point) -> str:
    return json.dumps([point.device, point.element, point.width, list(point.size)])


def _measure_and_say(point: Point, done: dict[str, dict[str, Any]],
                     resume: str | None) -> dict[str, Any]:
    row = done.get(_key(point))
    if row is None:
        row = measure(point)
        if resume:
            with open(resume, "a") as out:
                out.write(json.dumps(row) + "\n")
    print(f"  {point.device} {point.element} w{point.width} {point.label}: "
          + (f"{row['luts']} LUTs, {row['fmax_mhz']:.1f} MHz" if row["fits"]
             else f"does not fit ({row['reason']})"), flush=True)
    return row


def largest(rows: list[dict[str, Any]], device: str, width: int,
            elements: tuple[str, ...]) -> dict[str, Any] | None:
    """The fitting row of ``elements`` with the highest throughput, if any fits."""
    fitting = [r for r in rows if r["device"] == device and r["width"] == width
               and r["element"] in elements and r["fits"]]
    return max(fitting, key=lambda r: (r["gops"], r["ops_per_cycle"]), default=None)


def headline(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per device and width: the largest shift and multiplier arrays and their throughput."""
    out = []
    keys = sorted({(r["device"], r["width"]) for r in rows if r["element"] == "shift"})
    for device, width in keys:
        shift = largest(rows, device, width, ("shift",))
        mul = largest(rows, device, width, ("multiplier-dsp", "multiplier-lut"))
        if shift is None or mul is None:
            continue
        out.append({"device": device, "width": width,
                    "shift": shift["label"], "shift_macs": shift["ops_per_cycle"],
                    "shift_mhz": shift["fmax_mhz"], "shift_gops": shift["gops"],
                    "multiplier": f"{mul['label']} ({mul['element'].split('-')[1].upper()})",
                    "multiplier_macs": mul["ops_per_cycle"], "multiplier_mhz": mul["fmax_mhz"],
                    "multiplier_gops": mul["gops"], "ratio": shift["gops"] / mul["gops"]})
    return out


def table(rows: list[dict[str, Any]]) -> str:
    """The measured rows as an aligned text table."""
    head = (f"{'device':9s} {'element':15s} {'w':>2} {'size':14s} {'ops/cyc':>7} {'LUTs':>6} "
            f"{'FFs':>6} {'DSP':>4} {'BRAM':>4} {'placed':>7} {'Fmax':>6} {'GOPS':>7} "
            f"{'kOPS/LUT':>8}")
    lines = [head]
    for r in rows:
        fits = r["fits"]
        lines.append(
            f"{r['device']:9s} {r['element']:15s} {r['width']:>2} {r['label']:14s} "
            f"{r['ops_per_cycle']:>7.1f} {r['luts']:>6} {r['flip_flops']:>6} {r['dsps']:>4} "
            f"{r['brams']:>4} {(r['placed_luts'] if fits else 'no fit'):>7} "
            + (f"{r['fmax_mhz']:>6.1f} {r['gops']:>7.3f} {r['ops_per_lut'] / 1e3:>8.1f}"
               if fits else f"{'-':>6} {'-':>7} {'-':>8}"))
    return "\n".join(lines)


def _walk(job: tuple[str, str, int, dict[str, dict[str, Any]], str | None]
          ) -> list[dict[str, Any]]:
    return walk(*job)


def _done_rows(resume: str | None) -> dict[str, dict[str, Any]]:
    """The rows a previous run appended to ``resume``, by point."""
    if not resume:
        return {}
    try:
        with open(resume) as lines:
            rows = [json.loads(line) for line in lines if line.strip()]
    except FileNotFoundError:
        return {}
    return {_key(Point(r["device"], r["element"], r["width"], tuple(r["size"]))): r
            for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", nargs="+", default=["up5k", "ecp5-25k"],
                        choices=sorted(DEVICES))
    parser.add_argument("--elements", nargs="+", default=list(ELEMENTS), choices=list(ELEMENTS))
    parser.add_argument("--widths", nargs="+", type=int,
                        help="activation bits of the vector arrays (default 8 16)")
    parser.add_argument("--workers", type=int, default=1, help="series measured at once")
    parser.add_argument("--json", help="write the rows and the headline to this file")
    parser.add_argument("--resume", help="JSON-lines file of measured rows: reused, appended to")
    args = parser.parse_args()
    done = _done_rows(args.resume)
    jobs = []
    for device in args.devices:
        for element in args.elements:
            _ladder, widths = ELEMENTS[element]
            if widths is None:
                widths = tuple(args.widths or ACTIVATION_WIDTHS)
            jobs.extend((device, element, width, done, args.resume) for width in widths)
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            results = list(pool.map(_walk, jobs))
    else:
        results = [_walk(job) for job in jobs]
    rows = [row for rows in results for row in rows]
    print(table(rows))
    heads = headline(rows)
    print("\nlargest arrays that fit, throughput at Fmax:")
    for h in heads:
        print(f"  {DEVICES[h['device']].name}, {h['width']}-bit: shift {h['shift']} "
              f"{h['shift_gops']:.2f} GOPS at {h['shift_mhz']:.1f} MHz; multiplier "
              f"{h['multiplier']} {h['multiplier_gops']:.2f} GOPS at {h['multiplier_mhz']:.1f} "
              f"MHz; shift / multiplier = {h['ratio']:.2f}x")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"rows": rows, "headline": heads}, out, indent=2)


if __name__ == "__main__":
    main()
