"""The report's plots, drawn with matplotlib (Agg) from the run's numbers, as PNG bytes.

Each function draws one figure from data the run recorded (or derived from it by
:mod:`.devices`) and returns the PNG; the caller decides where it goes (inline in the
page and as a file beside it).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

from .devices import PhysicalResponse, SynapseResponse
from .html import GENERATOR

DPI = 100


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": GENERATOR})
    _pyplot().close(figure)
    return buffer.getvalue()


def learning_curves(curves: dict[str, Any], title: str) -> bytes:
    """Train and test accuracy per epoch beside the local losses per epoch."""
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = range(1, len(curves["test_accuracy"]) + 1)
    left.plot(epochs, curves["train_accuracy"], marker="o", label="train")
    left.plot(epochs, curves["test_accuracy"], marker="o", label="test")
    left.set(xlabel="epoch", ylabel="accuracy", title=title)
    left.grid(alpha=0.3)
    left.legend()
    parts = len(curves["loss"][0]) if curves["loss"] else 0
    for part in range(parts):
        values = [losses[part] for losses in curves["loss"]]
        if not all(v is None or math.isnan(v) for v in values):
            right.plot(epochs, values, marker="o", label=f"part {part}")
    right.set(xlabel="epoch", ylabel="loss", title="local losses")
    right.grid(alpha=0.3)
    if parts:
        right.legend()
    return _png(figure)


def synapse(response: SynapseResponse) -> bytes:
    """A cell's level against pulse number (potentiation, then depression) beside its
    up and down step tables against level."""
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    split = response.potentiation
    pulses = range(len(response.levels))
    left.plot(pulses[:split + 1], response.levels[:split + 1], marker=".",
              color="tab:blue", label="potentiation")
    left.plot(pulses[split:], response.levels[split:], marker=".", color="tab:red",
              label="depression")
    left.set(xlabel="pulse number", ylabel="conductance level",
             title=f"{response.state_bits}-bit cell, from level 0")
    left.grid(alpha=0.3)
    left.legend()
    levels = range(len(response.up))
    right.step(levels, response.up, where="mid", color="tab:blue", label="up step")
    right.step(levels, response.down, where="mid", color="tab:red", label="down step")
    right.set(xlabel="level", ylabel="levels moved by one pulse", title="step tables")
    right.grid(alpha=0.3)
    right.legend()
    return _png(figure)


def physical(response: PhysicalResponse) -> bytes:
    """A physical layer's first outputs against its input 0, with the run's relative
    reading noise as a band."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 3.8))
    for channel, output in enumerate(response.outputs):
        line, = axes.plot(response.drive, output, label=f"output {channel}")
        if response.noise:
            low = [y * (1 - response.noise) for y in output]
            high = [y * (1 + response.noise) for y in output]
            axes.fill_between(response.drive, low, high, color=line.get_color(), alpha=0.2)
    system = response.system
    axes.set(xlabel="input 0 (other inputs 0)", ylabel="noiseless reading",
             title=f"{system['system']} layer {system['in_features']} -> "
                   f"{system['out_features']}, seed {system['seed']}")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return _png(figure)


def pareto(points: Sequence[dict[str, Any]], front: Sequence[int],
           labels: Sequence[str], groups: Sequence[str]) -> bytes:
    """Accuracy against LUTs for every point, the Pareto front drawn and labelled.

    ``groups`` names each point's FPGA family: LUTs of different families are different
    units, so each family gets its own colour and its own staircase.
    """
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for n, group in enumerate(dict.fromkeys(groups)):
        colour = colours[n % len(colours)]
        members = [i for i, g in enumerate(groups) if g == group]
        axes.scatter([points[i]["luts"] for i in members],
                     [100 * points[i]["accuracy"] for i in members],
                     color=colour, alpha=0.5, label=f"{group}: points" if group else "points")
        chosen = sorted((i for i in front if groups[i] == group),
                        key=lambda i: points[i]["luts"])
        x = [points[i]["luts"] for i in chosen]
        y = [100 * points[i]["accuracy"] for i in chosen]
        axes.step(x, y, where="post", color=colour, linewidth=1)
        axes.scatter(x, y, facecolors="none", edgecolors=colour, s=140, linewidths=1.8,
                     label=f"{group}: Pareto front" if group else "Pareto front")
        for i in chosen:
            axes.annotate(labels[i], (points[i]["luts"], 100 * points[i]["accuracy"]),
                          textcoords="offset points", xytext=(6, -12 - 10 * n),
                          fontsize="x-small", color=colour)
    axes.set(xlabel="LUTs", ylabel="test accuracy (%)", title="accuracy against LUTs")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return _png(figure)


def throughput(records: Sequence[dict[str, Any]], groups: Sequence[str]) -> bytes:
    """Throughput (GOPS) against LUTs of measured designs, one colour per group.

    The hardware-cost benchmark's trade-off: where a design sits up and to the left, it
    does more per LUT.
    """
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 5))
    palette = plt.get_cmap("tab20").colors
    for n, group in enumerate(dict.fromkeys(groups)):
        members = [r for r, g in zip(records, groups, strict=True) if g == group]
        members.sort(key=lambda r: r["luts"])
        axes.plot([r["luts"] for r in members], [r["gops"] for r in members],
                  marker="os^D"[n // 10 % 4], linestyle="-" if n // 10 % 2 == 0 else "--",
                  color=palette[2 * (n % 10) + n // 10 % 2], label=group or "designs")
    axes.set(xscale="log", yscale="log", xlabel="LUTs (synthesis)",
             ylabel="GOPS at Fmax (placed)", title="throughput against LUTs")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize="x-small", ncol=2)
    return _png(figure)
