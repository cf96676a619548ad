"""LUTs and flip-flops of the threshold-logic neuron, its multiply-accumulate baseline and a
folded binary-layer array on iCE40 UP5K, measured in one run.

The baseline computes the same neuron the way a generic datapath would: +-1 inputs
times +-1 weights with ``*``, a plain sum, and a compare against a threshold register,
with the threshold in a register and the output registered, like the neuron.

    python benchmarks/threshold_vs_mac.py [--fan-in 64] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from hilt.firmware.synthesis import synthesize
from hilt.hdl.threshold_array import BinaryLayerArray
from hilt.hdl.threshold_neuron import ThresholdNeuron


class MacNeuron(wiring.Component):
    """y = [sum_i (2x_i - 1)(2w_i - 1) >= T] with multipliers and a plain sum."""

    def __init__(self, fan_in: int):
        self.fan_in = fan_in
        width = bits_for(fan_in, require_sign_bit=True) + 1
        super().__init__({"x": In(fan_in), "w": In(fan_in), "threshold": In(signed(width)),
                          "load": In(1), "y": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        x, w = self.x, self.w
        threshold = Signal.like(self.threshold)
        with m.If(self.load):
            m.d.sync += threshold.eq(self.threshold)
        total = sum((x[i] * 2 - 1).as_signed() * (w[i] * 2 - 1).as_signed()
                    for i in range(self.fan_in))
        m.d.sync += self.y.eq(total >= threshold)
        return m


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fan-in", type=int, default=64)
    parser.add_argument("--json", help="write the numbers to this file")
    args = parser.parse_args()
    designs = {
        f"ThresholdNeuron(fan_in={args.fan_in})": ThresholdNeuron(fan_in=args.fan_in),
        f"multiply-accumulate neuron (fan_in={args.fan_in})": MacNeuron(args.fan_in),
        "BinaryLayerArray(64 x 64, pe=8, simd=16)":
            BinaryLayerArray(in_features=64, out_features=64, pe=8, simd=16),
    }
    rows = {}
    print(f"{'design':48s} {'LUTs':>6} {'FFs':>5} {'carries':>8} {'BRAMs':>6}")
    for name, design in designs.items():
        report = synthesize(design, "ice40")
        rows[name] = asdict(report)
        print(f"{name:48s} {report.luts:>6} {report.flip_flops:>5} {report.carries:>8} "
              f"{report.brams:>6}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=2)


if __name__ == "__main__":
    main()
