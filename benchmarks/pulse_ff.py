"""Pulse-trained Forward-Forward on the digits, measured in one run: accuracy and cost per
rule and state width against the golden twin, and the same configuration's speed against
the co-simulated board.

For every rule and every ``--state-bits``, one run against ``golden:icebreaker`` crossbars
(``rows`` x 74, then ``rows`` x ``rows`` for each further layer, the board's other sizes
kept): test accuracy after the last epoch, cell pulses (potentiation / depression), slots,
refresh reads and writes, training samples per second. Then, unless ``--cosim-samples 0``,
a short run of the same configuration (first state width) at ``--cosim-rows`` rows on
``--cosim-samples`` training and as many test samples, once against ``golden:`` and once
against ``cosim:`` (the native engine), with both samples per second and whether the two
runs agree. The co-simulated crossbar is the table's size unless ``--cosim-rows`` says
otherwise (Verilator builds a 64 x 74 one in about half a minute on two cores, cached).

    python benchmarks/pulse_ff.py [--rows 64] [--layers 1] [--state-bits 4,6,8]
        [--epochs 20] [--cosim-rows ROWS] [--cosim-samples 64] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace
from typing import Any

import numpy as np

from hilt.host.backends import open_backend
from hilt.host.train.pulse_ff import (
    RULES,
    STOCHASTIC_LR,
    PulseFFConfig,
    PulseFFResult,
    train_pulse_ff,
)
from hilt.quant.datasets import Dataset, load_digits

RULE_SETTINGS = {rule: {"update": "stochastic", "lr": lr} for rule, lr in STOCHASTIC_LR.items()}
"""Stochastic pulse trains (the rules as such, without the host summing updates) at the
learning rates picked for them."""


def crossbar_urls(scheme: str, rows: int, layers: int, state_bits: int) -> list[str]:
    """One crossbar URL per layer, each as wide as the layer below it gives."""
    urls, cols = [], 74
    for _ in range(layers):
        urls.append(f"{scheme}:icebreaker?pe=synapse&rows={rows}&cols={cols}"
                    f"&state_bits={state_bits}")
        cols = rows
    return urls


def run(split: Dataset, urls: list[str], config: PulseFFConfig) -> PulseFFResult:
    """One training run on freshly opened crossbars, closed after."""
    layers = []
    try:
        for url in urls:
            layers.append(open_backend(url))
        return train_pulse_ff(split, layers, config, progress=False)
    finally:
        for layer in layers:
            layer.close()


def row(rule: str, state_bits: int, result: PulseFFResult) -> dict[str, Any]:
    cost = result.cost
    return {"rule": rule, "state_bits": state_bits, "test_accuracy": result.test_accuracy,
            "potentiation": cost.potentiation, "depression": cost.depression,
            "slots": cost.slots, "updates": cost.updates, "reads": cost.reads,
            "writes": cost.writes, "refreshes": cost.refreshes,
            "samples_per_s": result.samples_per_second, "seconds": result.seconds,
            "test_curve": result.curves.test_accuracy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64, help="rows of every crossbar")
    parser.add_argument("--layers", type=int, default=1, help="crossbars, input to output")
    parser.add_argument("--state-bits", default="4,6,8", help="comma-separated state widths")
    parser.add_argument("--rules", default=",".join(RULES), help="comma-separated rules")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cosim-rows", type=int, default=None,
                        help="rows of every crossbar in the golden-vs-cosim run (default: "
                             "--rows)")
    parser.add_argument("--cosim-samples", type=int, default=64,
                        help="training (and test) samples of the golden-vs-cosim run; 0: none")
    parser.add_argument("--json", help="write the numbers to this file")
    args = parser.parse_args()
    if args.cosim_rows is None:
        args.cosim_rows = args.rows
    widths = [int(bits) for bits in args.state_bits.split(",")]
    rules = args.rules.split(",")
    unknown = [rule for rule in rules if rule not in RULES]
    if unknown:
        parser.error(f"--rules must be among {', '.join(RULES)}, got {', '.join(unknown)}")
    split = load_digits(args.seed)

    results = []
    print(f"{'rule':15s} {'bits':>4} {'accuracy':>8} {'potent.':>9} {'depress.':>9} "
          f"{'slots':>8} {'reads':>6} {'writes':>6} {'samples/s':>9}")
    for rule in rules:
        config = PulseFFConfig(rule=rule, epochs=args.epochs, seed=args.seed,
                               **RULE_SETTINGS[rule])
        for bits in widths:
            result = run(split, crossbar_urls("golden", args.rows, args.layers, bits), config)
            results.append(row(rule, bits, result) | {"config": asdict(config)})
            line = results[-1]
            print(f"{rule:15s} {bits:>4} {line['test_accuracy']:>8.3f} "
                  f"{line['potentiation']:>9} {line['depression']:>9} {line['slots']:>8} "
                  f"{line['reads']:>6} {line['writes']:>6} {line['samples_per_s']:>9.1f}")

    speeds = []
    if args.cosim_samples:
        n = args.cosim_samples
        short = split.subset(n, n)
        for rule in rules:
            config = replace(PulseFFConfig(rule=rule, seed=args.seed, **RULE_SETTINGS[rule]),
                             epochs=1)
            measured = {}
            for scheme in ("golden", "cosim"):
                urls = crossbar_urls(scheme, args.cosim_rows, args.layers, widths[0])
                measured[scheme] = run(short, urls, config)
            same = bool(np.array_equal(measured["golden"].test_predictions,
                                       measured["cosim"].test_predictions)
                        and measured["golden"].cost == measured["cosim"].cost)
            speeds.append({"rule": rule, "rows": args.cosim_rows, "state_bits": widths[0],
                           "samples": n,
                           "golden_samples_per_s": measured["golden"].samples_per_second,
                           "cosim_samples_per_s": measured["cosim"].samples_per_second,
                           "cosim_seconds": measured["cosim"].seconds,
                           "identical": same})
            speed = speeds[-1]
            print(f"{rule}, {n} samples, {args.cosim_rows} rows, {widths[0]} bits: golden "
                  f"{speed['golden_samples_per_s']:.1f} samples/s, cosim "
                  f"{speed['cosim_samples_per_s']:.2f} samples/s "
                  f"({speed['golden_samples_per_s'] / speed['cosim_samples_per_s']:.0f}x), "
                  f"identical: {same}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"rows": args.rows, "layers": args.layers, "epochs": args.epochs,
                       "seed": args.seed, "runs": results, "cosim": speeds}, out, indent=2)


if __name__ == "__main__":
    main()
