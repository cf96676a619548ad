"""LUTs, flip-flops, DSPs and BRAMs of the shift array and its multiplier twin on iCE40 UP5K.

Both arrays are synthesised out of context by YoWASP Yosys at the same configurations,
the twin both with DSPs (SB_MAC16; the UP5K has 8) and with LUT multipliers.

    python benchmarks/shift_vs_multiplier.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from hilt.firmware.synthesis import synthesize
from hilt.sim.shift_regression import ArrayConfig

CONFIGS = [
    {"lanes": 4, "pes": 2, "act_width": 8, "exp_bits": 3, "depth": 64},
    {"lanes": 8, "pes": 4, "act_width": 8, "exp_bits": 3, "depth": 64},
]
VARIANTS = [("shift", True), ("multiplier", True), ("multiplier", False)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the numbers to this file")
    args = parser.parse_args()
    rows = []
    print(f"{'L':>3} {'M':>3} {'array':22s} {'LUTs':>6} {'FFs':>5} {'DSPs':>5} {'BRAMs':>6}")
    for params in CONFIGS:
        for kind, use_dsp in VARIANTS:
            array = ArrayConfig(kind=kind, **params).build()
            report = synthesize(array, "ice40", use_dsp=use_dsp)
            label = kind if kind == "shift" else f"{kind} ({'DSP' if use_dsp else 'LUT'})"
            rows.append({**params, "array": label, **asdict(report)})
            print(f"{params['lanes']:>3} {params['pes']:>3} {label:22s} {report.luts:>6} "
                  f"{report.flip_flops:>5} {report.dsps:>5} {report.brams:>6}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=2)


if __name__ == "__main__":
    main()
