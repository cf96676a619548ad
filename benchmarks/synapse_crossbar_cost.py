"""LUTs, flip-flops and DSPs of synapse crossbars on iCE40 UP5K, measured in one run.

Each crossbar holds its cells' levels in registers and shares one step-table ROM,
saturating adder and multiply-accumulate per row, so the registers grow with
rows x cols x state bits and the logic mostly with rows; the LFSR noise adds one
register per pair.
The step tables come from a soft-bounds device quantised to the state width.

    python benchmarks/synapse_crossbar_cost.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from hilt.firmware.synthesis import synthesize
from hilt.hdl.synapse_crossbar import SynapseCrossbar
from hilt.quant.synapse_device import SoftBoundsDevice
from hilt.quant.synapse_golden import step_tables_from_device

# (rows, cols, state bits, noise bits) of each design measured.
DESIGNS = [(4, 4, 4, 0), (8, 8, 4, 0), (8, 8, 4, 1), (8, 8, 6, 0)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in-bits", type=int, default=4, help="signed read input bits")
    parser.add_argument("--max-pulses", type=int, default=15, help="slots per update")
    parser.add_argument("--json", help="write the numbers to this file")
    args = parser.parse_args()
    rows_out = {}
    print(f"{'design':44s} {'LUTs':>6} {'FFs':>5} {'DSPs':>5} {'carries':>8} {'BRAMs':>6}")
    for rows, cols, state_bits, noise_bits in DESIGNS:
        tables = step_tables_from_device(SoftBoundsDevice(dw_min=0.2), state_bits)
        design = SynapseCrossbar(rows, cols, tables, in_bits=args.in_bits,
                                 max_pulses=args.max_pulses, noise_bits=noise_bits)
        name = f"SynapseCrossbar({rows}x{cols}, b={state_bits}, noise_bits={noise_bits})"
        report = synthesize(design, "ice40")
        rows_out[name] = asdict(report)
        print(f"{name:44s} {report.luts:>6} {report.flip_flops:>5} {report.dsps:>5} "
              f"{report.carries:>8} {report.brams:>6}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows_out, out, indent=2)


if __name__ == "__main__":
    main()
