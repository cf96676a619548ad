"""Wall time of one RTL regression under Icarus and under Verilator, measured in one run.

The same jobs (corners and random codes) go through both simulators; each is run once
to build (and cache) and then timed over ``--repeats`` runs, so the ratio compares
simulation, not compilation. Machines here are shared and noisy: read the ratio.

    python benchmarks/sim_speed.py [--vectors 512] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from hilt.sim.shift_regression import ArrayConfig, corner_jobs, random_jobs, run_jobs

SIMULATORS = ("icarus", "verilator")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=["shift", "multiplier"], default="shift")
    parser.add_argument("--vectors", type=int, default=512, help="random vectors per job")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write the numbers to this file")
    args = parser.parse_args()

    config = ArrayConfig(kind=args.kind)
    rng = np.random.default_rng(0)
    jobs = corner_jobs(config, rng) + random_jobs(config, rng, vectors=args.vectors)
    rows = {}
    for sim in SIMULATORS:
        started = time.perf_counter()
        report, _ = run_jobs(config, jobs, sim=sim)
        first = time.perf_counter() - started
        timings = [run_jobs(config, jobs, sim=sim)[0].wall_s for _ in range(args.repeats)]
        rows[sim] = {
            "vectors": report.vectors, "values": report.values,
            "mismatches": report.mismatches, "cycles": report.cycles,
            "first_call_s": round(first, 2), "median_s": round(statistics.median(timings), 2),
            "cycles_per_s": round(report.cycles / statistics.median(timings)),
        }
        print(f"{sim:10s} {report.vectors} vectors, {report.values} values, "
              f"{report.mismatches} mismatches, {report.cycles} cycles: first call "
              f"{first:.1f} s, then median {statistics.median(timings):.2f} s "
              f"({rows[sim]['cycles_per_s']} cycles/s)")
    ratio = rows["icarus"]["median_s"] / rows["verilator"]["median_s"]
    print(f"Icarus / Verilator wall time: {ratio:.2f}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"config": vars(config), "simulators": rows,
                       "icarus_over_verilator": round(ratio, 3)}, out, indent=2)


if __name__ == "__main__":
    main()
