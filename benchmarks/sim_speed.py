"""Vectors per second of one RTL regression under Icarus, Verilator and Amaranth, in one run.

The same jobs (corners and random codes, the same seed, so the same vectors, the same
valid gaps and back-pressure) go through every simulator and each output is compared
bit for bit with the integer golden model. Icarus and Verilator run the generated
Verilog under cocotb; Amaranth's simulator runs the component itself in Python.

Each simulator is called once untimed, then timed over ``--repeats`` calls. For Icarus
and Verilator the untimed call builds the simulation (cached by the harness), so the
timed calls leave out compilation but keep what every call pays: Verilog generation,
the simulator's start-up and the run. Amaranth has no build step to leave out: each
timed call elaborates the design and simulates it, and its untimed call only warms the
interpreter. Machines here are shared and noisy: read the ratios, measured in one run.

    python benchmarks/sim_speed.py [--vectors 512] [--repeats 3] [--simulators icarus,amaranth]
                                   [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict

import numpy as np

from hilt.sim.shift_regression import (
    ArrayConfig,
    Job,
    RegressionReport,
    corner_jobs,
    random_jobs,
    run_jobs,
)

SIMULATORS = ("icarus", "verilator", "amaranth")


def simulators(text: str) -> list[str]:
    """A comma-separated subset of :data:`SIMULATORS`, in the order given."""
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SIMULATORS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated subset of {','.join(SIMULATORS)}, got {text!r}")
    return list(dict.fromkeys(chosen))


def checked(report: RegressionReport) -> RegressionReport:
    """``report``, unless an output differed from the golden model: a benchmark of a
    regression that fails measures nothing."""
    if report.mismatches:
        raise SystemExit(f"{report.sim}: {report.mismatches} mismatches; first: "
                         f"{report.first_mismatch}")
    return report


def measure(sim: str, config: ArrayConfig, jobs: Sequence[Job], repeats: int) -> dict:
    """One untimed call, then ``repeats`` timed ones (each report's own ``wall_s``)."""
    started = time.perf_counter()
    report = checked(run_jobs(config, jobs, sim=sim)[0])
    first = time.perf_counter() - started
    timings = [checked(run_jobs(config, jobs, sim=sim)[0]).wall_s for _ in range(repeats)]
    median = statistics.median(timings)
    return {
        "simulator": sim, "vectors": report.vectors, "values": report.values,
        "mismatches": report.mismatches, "cycles": report.cycles,
        "first_call_s": round(first, 3), "seconds": [round(t, 3) for t in timings],
        "median_s": round(median, 3), "vectors_per_s": round(report.vectors / median, 1),
        "cycles_per_s": round(report.cycles / median),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=["shift", "multiplier"], default="shift")
    parser.add_argument("--vectors", type=int, default=512, help="random vectors per job")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--simulators", type=simulators, default=list(SIMULATORS),
                        help=f"comma-separated subset of {','.join(SIMULATORS)} (default: all)")
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args()
    if args.repeats < 1 or args.vectors < 1:
        parser.error("--repeats and --vectors must be at least 1")

    config = ArrayConfig(kind=args.kind)
    rng = np.random.default_rng(0)
    jobs = corner_jobs(config, rng) + random_jobs(config, rng, vectors=args.vectors)
    rows = []
    for sim in args.simulators:
        row = measure(sim, config, jobs, args.repeats)
        rows.append(row)
        print(f"{sim}: {row['values']} values, {row['mismatches']} mismatches, "
              f"{row['cycles']} cycles; "
              f"first call {row['first_call_s']:.2f} s, timed {row['seconds']}", flush=True)
    slowest = max(row["median_s"] for row in rows)
    for row in rows:
        row["x_slowest"] = round(slowest / row["median_s"], 2)

    print(f"\n{config.kind} array {config.lanes}x{config.pes}, depth {config.depth}: "
          f"{len(jobs)} jobs, median of {args.repeats}")
    print(f"{'simulator':10s} {'vectors':>8s} {'median s':>9s} {'vectors/s':>10s} "
          f"{'x slowest':>10s}")
    for row in rows:
        print(f"{row['simulator']:10s} {row['vectors']:>8d} {row['median_s']:>9.2f} "
              f"{row['vectors_per_s']:>10.1f} {row['x_slowest']:>10.2f}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"config": asdict(config), "jobs": len(jobs), "repeats": args.repeats,
                       "rows": rows}, out, indent=2)


if __name__ == "__main__":
    main()
