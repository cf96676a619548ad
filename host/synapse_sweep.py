"""The seed paper's experiment: the digits perceptron trained on synapse devices, swept.

One factor at a time around a reference device (linear response, 64 levels, no
device-to-device variation), each device trained with every learning rule of
:mod:`hilt.quant.synapse_rules` and set against the float baseline of the same run
(same initial weights, data order and schedule):

- response: linear, soft-bounds, exponential (nonlinearity 3), and up/down asymmetry
  with the up step 2.5 times the down step (``up_down = 1.5 / 3.5``) on a linear and on
  a soft-bounds device; the soft-bounds and the 2.5x linear device are the headline
  devices on which plain stochastic-pulse SGD is known to collapse;
- levels (range / step): 16 and 256 besides the reference 64;
- device-to-device variation of the step: 0.1 and 0.3 on the linear device, and 0.3 on
  the soft-bounds device.

"Levels" is the number of pulses that cross the whole conductance range at the nominal
step: ``dw_min = range / levels`` for the linear and soft-bounds devices, and for the
exponential device the curve that reaches Gmax after exactly ``levels`` pulses.

Training is per sample (batch size 1), as a crossbar applies one rank-one update per
example. :func:`run_sweep` writes ``sweep.json``, ``sweep.md`` and ``sweep.png`` into a
folder and logs a line per run; ``hilt synapse-sweep`` is its command-line face.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from multiprocessing import get_context
from pathlib import Path

from hilt.quant.datasets import load_digits
from hilt.quant.synapse_device import (
    ExponentialDevice,
    LinearDevice,
    SoftBoundsDevice,
    SynapseDevice,
)
from hilt.quant.synapse_mlp import MLPConfig, TrainResult, train_mlp
from hilt.quant.synapse_rules import (
    ReadBackRule,
    StochasticPulseSGD,
    SynapseRule,
    UnidirectionalRule,
)

__all__ = [
    "FULL_CONFIG",
    "QUICK_CONFIG",
    "RULES",
    "TARGET_GAP_POINTS",
    "DeviceSetting",
    "SweepResult",
    "SweepRow",
    "run_sweep",
    "sweep_grid",
]

logger = logging.getLogger(__name__)

ASYMMETRY_2_5X = 1.5 / 3.5
"""``up_down`` whose up step is 2.5 times the down step: (1 + a) / (1 - a) = 2.5."""

TARGET_GAP_POINTS = 2.0
"""The issue's target: the best rule within this many points of float on the headline devices."""

FULL_CONFIG = MLPConfig()
"""The schedule of the full sweep, the perceptron's default (about 97% in float)."""

QUICK_CONFIG = MLPConfig(hidden=16, epochs=3, batch_size=16, lr=0.2)
"""A smoke-test schedule: mini-batches, few epochs, seconds in all."""

RULES: dict[str, Callable[[], SynapseRule]] = {
    "plain SGD": lambda: StochasticPulseSGD(max_pulses=32),
    "unidirectional": lambda: UnidirectionalRule(
        max_pulses=32, refresh_threshold=0.25, check_every=16
    ),
    "read-back": lambda: ReadBackRule(max_pulses=32, refresh_threshold=0.25, check_every=16),
}
"""The rules compared, by the name the table uses, and their settings."""

RESPONSES = ("linear", "soft-bounds", "exponential")


@dataclass(frozen=True)
class DeviceSetting:
    """One device of the grid, as plain data (it crosses process boundaries).

    Attributes
    ----------
    factor : str
        The factor this row varies: "reference", "response", "levels" or "variation".
    response : str
        "linear", "soft-bounds" or "exponential".
    levels : int
        Pulses across the whole range at the nominal step, >= 2.
    dtod : float
        Device-to-device spread of the step, >= 0.
    up_down : float
        Up/down asymmetry, in (-1, 1).
    nonlinearity : float
        The exponential device's pulses-to-range over pulses-per-e-fold, > 0.
    headline : bool
        One of the two devices on which the issue sets its target.
    """

    factor: str
    response: str
    levels: int = 64
    dtod: float = 0.0
    up_down: float = 0.0
    nonlinearity: float = 3.0
    headline: bool = False

    def __post_init__(self) -> None:
        if self.response not in RESPONSES:
            raise ValueError(f"response must be one of {RESPONSES}, got {self.response!r}")
        if isinstance(self.levels, bool) or not isinstance(self.levels, int) or self.levels < 2:
            raise ValueError(f"levels must be an integer >= 2, got {self.levels!r}")

    @property
    def label(self) -> str:
        """A short human name, e.g. ``soft-bounds up 2.5x, 64 levels, dtod 0.3``."""
        name = self.response
        if self.response == "exponential":
            name += f" nl {self.nonlinearity:g}"
        if self.up_down:
            ratio = (1 + self.up_down) / (1 - self.up_down)
            name += f" up {ratio:.3g}x"
        return f"{name}, {self.levels} levels, dtod {self.dtod:g}"

    def build(self) -> SynapseDevice:
        """The device model, conductance range [0, 1]."""
        variation = {"up_down": self.up_down, "dw_min_dtod": self.dtod}
        if self.response == "linear":
            return LinearDevice(1 / self.levels, **variation)
        if self.response == "soft-bounds":
            return SoftBoundsDevice(1 / self.levels, **variation)
        # NeuroSim's parameterisation: Gmax after exactly `levels` pulses.
        a = self.levels / self.nonlinearity
        b = 1 / -math.expm1(-self.nonlinearity)
        return ExponentialDevice(a, a, b_up=b, b_down=b, **variation)


def sweep_grid(*, quick: bool = False) -> list[DeviceSetting]:
    """The device settings of the sweep, reference first; ``quick`` keeps two of them."""
    reference = DeviceSetting("reference", "linear")
    soft = DeviceSetting("response", "soft-bounds", headline=True)
    if quick:
        return [replace(reference, levels=16), replace(soft, levels=16)]
    return [
        reference,
        soft,
        DeviceSetting("response", "linear", up_down=ASYMMETRY_2_5X, headline=True),
        DeviceSetting("response", "soft-bounds", up_down=ASYMMETRY_2_5X),
        DeviceSetting("response", "exponential"),
        DeviceSetting("levels", "linear", levels=16),
        DeviceSetting("levels", "linear", levels=256),
        DeviceSetting("variation", "linear", dtod=0.1),
        DeviceSetting("variation", "linear", dtod=0.3),
        DeviceSetting("variation", "soft-bounds", dtod=0.3),
    ]


@dataclass
class SweepRow:
    """One device trained with one rule, next to the float baseline."""

    setting: DeviceSetting
    rule: str
    result: TrainResult
    float_accuracy: float

    @property
    def gap_points(self) -> float:
        """Float accuracy minus this accuracy, in percentage points (> 0: behind float)."""
        return 100 * (self.float_accuracy - self.result.accuracy)


@dataclass
class SweepResult:
    """Everything one sweep measured, and where it wrote it.

    Attributes
    ----------
    rows : list of SweepRow
        Grid order: setting by setting, rule by rule within each.
    baseline : TrainResult
        The float run.
    config : MLPConfig
        The schedule all runs shared.
    seed : int
        Seed of every run.
    seconds : float
        Wall time of the whole sweep.
    files : dict of str to Path
        "json", "markdown" and "plot".
    """

    rows: list[SweepRow]
    baseline: TrainResult
    config: MLPConfig
    seed: int
    seconds: float
    files: dict[str, Path]

    def best(self, setting: DeviceSetting) -> SweepRow:
        """The most accurate rule on ``setting``."""
        return max((r for r in self.rows if r.setting == setting), key=lambda r: r.result.accuracy)

    def verdicts(self) -> list[str]:
        """One line per headline device: does its best rule meet the target, or by how much not."""
        lines = []
        for setting in dict.fromkeys(r.setting for r in self.rows if r.setting.headline):
            row = self.best(setting)
            gap = row.gap_points
            verdict = ("within" if gap <= TARGET_GAP_POINTS
                       else f"short by {gap - TARGET_GAP_POINTS:.1f} points of")
            lines.append(f"{setting.label}: best rule {row.rule} at "
                         f"{100 * row.result.accuracy:.1f}%, {gap:.1f} points behind float, "
                         f"{verdict} the {TARGET_GAP_POINTS:g}-point target")
        return lines


def _train(split, setting: DeviceSetting | None, rule: str | None, config: MLPConfig,
           seed: int) -> TrainResult:
    if setting is None:
        return train_mlp(split, config=config, seed=seed)
    return train_mlp(split, device=setting.build(), rule=RULES[rule](), config=config, seed=seed)


def _job(setting: DeviceSetting | None, rule: str | None, config: MLPConfig,
         seed: int) -> TrainResult:
    """One run in a worker process (the split is loaded there, it is cheap)."""
    return _train(load_digits(seed=0), setting, rule, config, seed)


def run_sweep(
    out_dir: Path,
    *,
    quick: bool = False,
    seed: int = 0,
    epochs: int | None = None,
    workers: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run the sweep and write ``sweep.json``, ``sweep.md`` and ``sweep.png`` into ``out_dir``.

    Parameters
    ----------
    out_dir
        Output folder, created if missing.
    quick
        Two devices and :data:`QUICK_CONFIG` (seconds) instead of the full grid and
        :data:`FULL_CONFIG` (about ten minutes on two cores).
    seed
        Seed of the runs (initial weights, data order, device spread, rounding); the
        data split is always the fixed seed-0 split.
    epochs
        Overrides the schedule's epochs.
    workers
        Processes to run in parallel (each on one thread); default: one for ``quick``,
        else up to two, bounded by the CPU count.
    progress
        Called with one line per finished run; default: the module logger at INFO.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int)
                               or epochs < 1):
        raise ValueError(f"epochs must be an integer >= 1 or None, got {epochs!r}")
    if workers is None:
        workers = 1 if quick else min(2, os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1 or None, got {workers!r}")
    say = progress if progress is not None else logger.info
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    config = QUICK_CONFIG if quick else FULL_CONFIG
    if epochs is not None:
        config = replace(config, epochs=epochs)
    grid = sweep_grid(quick=quick)
    jobs: list[tuple[DeviceSetting | None, str | None]] = [(None, None)]
    jobs += [(setting, rule) for setting in grid for rule in RULES]
    started = time.perf_counter()
    results: dict[int, TrainResult] = {}

    def report(index: int, result: TrainResult) -> None:
        results[index] = result
        setting, rule = jobs[index]
        what = "float baseline" if setting is None else f"{setting.label}: {rule}"
        say(f"[{len(results)}/{len(jobs)}] {what}: {100 * result.accuracy:.1f}%, "
            f"{result.stats.pulses} pulses, {result.seconds:.0f} s")

    if workers == 1:
        split = load_digits(seed=0)
        for index, (setting, rule) in enumerate(jobs):
            report(index, _train(split, setting, rule, config, seed))
    else:
        # Spawned, not forked: a fork after torch has started its thread pool can hang.
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(_job, setting, rule, config, seed): index
                       for index, (setting, rule) in enumerate(jobs)}
            for future, index in futures.items():
                report(index, future.result())

    baseline = results[0]
    rows = [SweepRow(setting, rule, results[index], baseline.accuracy)
            for index, (setting, rule) in enumerate(jobs) if setting is not None]
    files = {"json": out_dir / "sweep.json", "markdown": out_dir / "sweep.md",
             "plot": out_dir / "sweep.png"}
    result = SweepResult(rows, baseline, config, seed, time.perf_counter() - started, files)
    files["json"].write_text(json.dumps(_as_json(result), indent=2) + "\n")
    files["markdown"].write_text(_as_markdown(result))
    _plot(result, files["plot"])
    for line in result.verdicts():
        say(line)
    return result


def _as_json(result: SweepResult) -> dict:
    def run(r: TrainResult) -> dict:
        return {"accuracy": r.accuracy, "curve": r.curve, "losses": r.losses,
                "stats": asdict(r.stats), "seconds": r.seconds}

    return {
        "seed": result.seed,
        "config": asdict(result.config),
        "seconds": result.seconds,
        "target_gap_points": TARGET_GAP_POINTS,
        "float": run(result.baseline),
        "rows": [{"setting": asdict(row.setting), "label": row.setting.label, "rule": row.rule,
                  "float_accuracy": row.float_accuracy, "gap_points": row.gap_points,
                  **run(row.result)} for row in result.rows],
        "verdicts": result.verdicts(),
    }


def _as_markdown(result: SweepResult) -> str:
    c = result.config
    lines = [
        "# Digits perceptron on synapse devices",
        "",
        f"64-{c.hidden}-10 perceptron, {c.epochs} epochs, batch {c.batch_size}, lr {c.lr:g}, "
        f"weights in ±{c.weight_range:g}, seed {result.seed}; float baseline "
        f"{100 * result.baseline.accuracy:.1f}%; sweep {result.seconds:.0f} s.",
        "Gap: float minus device accuracy, in points. Pulses, resets and reads: spent by the "
        "updates (initial programming excluded).",
        "",
        "| device setting | factor | rule | accuracy | float | gap | pulses | resets | reads |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result.rows:
        s = row.result.stats
        name = f"**{row.setting.label}**" if row.setting.headline else row.setting.label
        lines.append(f"| {name} | {row.setting.factor} | {row.rule} | "
                     f"{100 * row.result.accuracy:.1f}% | {100 * row.float_accuracy:.1f}% | "
                     f"{row.gap_points:.1f} | {s.pulses} | {s.resets} | {s.reads} |")
    lines += ["", "Target (headline devices in bold): the best rule within "
              f"{TARGET_GAP_POINTS:g} points of float.", ""]
    lines += [f"- {line}" for line in result.verdicts()]
    return "\n".join(lines) + "\n"


def _plot(result: SweepResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = list(dict.fromkeys(row.setting for row in result.rows))
    rules = list(dict.fromkeys(row.rule for row in result.rows))
    by_key = {(row.setting, row.rule): row for row in result.rows}
    width = 0.8 / len(rules)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(8.0, 1.2 * len(settings)), 8.5),
                                      sharex=True)
    for k, rule in enumerate(rules):
        xs = [i + (k - (len(rules) - 1) / 2) * width for i in range(len(settings))]
        rows = [by_key[(s, rule)] for s in settings]
        accuracies = [100 * r.result.accuracy for r in rows]
        bars = top.bar(xs, accuracies, width, label=rule)
        top.bar_label(bars, [f"{a:.1f}" for a in accuracies], rotation=90, padding=2,
                      fontsize="x-small")
        bottom.bar(xs, [max(r.result.stats.pulses, 1) for r in rows], width, label=rule)
    float_pct = 100 * result.baseline.accuracy
    top.axhline(float_pct, color="black", linestyle="--", label=f"float {float_pct:.1f}%")
    top.axhline(float_pct - TARGET_GAP_POINTS, color="grey", linestyle=":",
                label=f"float - {TARGET_GAP_POINTS:g} points")
    lowest = min(100 * row.result.accuracy for row in result.rows)
    top.set_ylim(max(0.0, 10 * math.floor(lowest / 10) - 10), 104)  # room for the labels
    top.set_ylabel("test accuracy (%)")
    top.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    top.set_title("Digits perceptron on synapse devices, by device setting and rule")
    bottom.set_yscale("log")
    bottom.set_ylabel("pulses spent by the updates")
    bottom.set_xticks(range(len(settings)))
    bottom.set_xticklabels(
        [s.label.replace(", ", "\n").replace(" up ", "\nup ") for s in settings],
        fontsize="small",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
