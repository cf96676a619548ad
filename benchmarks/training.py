"""Every training algorithm on one data set (digits by default), measured in one run with
one seed.

- accuracy of backprop, Forward-Forward, model-free Forward-Forward with each simulated
  physical layer and with the physical layers removed, physics-aware training, and
  Forward-Forward in a synapse crossbar trained by pulses under each rule and update, at
  the board's cells and at finer ones (with the pulses spent), beside float
  Forward-Forward of the same architecture (one layer of 64, goodness classifier);
- physical queries and digital MACs per sample for MF-FF against physics-aware training;
- robustness: MF-FF through drifting optical layers, then a bump, then training on;
- samples per second of one training epoch of the demo's network against the board's
  golden twin and against the co-simulated board (the same frames, so the same result).

Every run goes through :func:`hilt.host.train.run.run_training`, as ``hilt train``
would, and leaves its folder (results.json, curves.png, model.pt) under ``--out``.
The runs are independent and go to ``--workers`` processes.

    python benchmarks/training.py [--seed 0] [--epochs N] [--workers 2] [--out DIR]
                                  [--dataset NAME] [--data-dir DIR]
                                  [--json out.json] [--only NAME ...]

Each record keeps ``name``, ``algorithm``, ``dataset`` and ``test_accuracy``; a pulse run
also ``float_reference_accuracy``, the accuracy of ``ff-pulse-float`` in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from hilt.host.train.pulse_ff import STOCHASTIC_LR

NOISE = "noise=0.01"
"""Measurement noise of the simulated physical layers: 1% of the signal's spread."""
FINE_CELL = "state_bits=6&dw_min=0.05"
"""A finer cell than the board's (4-bit states, a fifth of the range a pulse): 64
levels, a twentieth of the range a pulse at the far bound."""
STOCHASTIC = {rule: {"update": "stochastic", "lr": str(lr)} for rule, lr in STOCHASTIC_LR.items()}
"""Stochastic pulse trains at the learning rates picked for them; the summed updates
take the defaults'."""
FLOAT_REFERENCE = "ff-pulse-float"
"""The run whose accuracy every pulse run is held against."""

RUNS: dict[str, dict[str, Any]] = {
    "backprop": {"algorithm": "backprop"},
    "ff": {"algorithm": "ff"},
    "mfff-optical": {"algorithm": "mfff", "backends": [f"physical:optical?{NOISE}"]},
    "mfff-acoustic": {"algorithm": "mfff", "backends": [f"physical:acoustic?{NOISE}"]},
    "mfff-none": {"algorithm": "mfff", "backends": ["none"]},
    "pat-optical": {"algorithm": "pat", "backends": [f"physical:optical?{NOISE}"]},
    "pat-acoustic": {"algorithm": "pat", "backends": [f"physical:acoustic?{NOISE}"]},
    "ff-pulse-float": {"algorithm": "ff", "overrides": {"hidden": "64", "predict_layers": "0"}},
    "ff-pulse-bidirectional": {"algorithm": "ff-pulse", "overrides": {
        "rule": "bidirectional", **STOCHASTIC["bidirectional"]}},
    "ff-pulse-unidirectional": {"algorithm": "ff-pulse", "overrides": {
        "rule": "unidirectional", **STOCHASTIC["unidirectional"]}},
    "ff-pulse-mixed-bidirectional": {"algorithm": "ff-pulse", "overrides": {
        "rule": "bidirectional", "update": "mixed"}},
    "ff-pulse-mixed-unidirectional": {"algorithm": "ff-pulse", "overrides": {
        "rule": "unidirectional", "update": "mixed"}},
    "ff-pulse-readback-unidirectional": {"algorithm": "ff-pulse", "overrides": {
        "rule": "unidirectional", "update": "readback"}},
    "ff-pulse-fine-unidirectional": {"algorithm": "ff-pulse", "cell": FINE_CELL, "overrides": {
        "rule": "unidirectional", **STOCHASTIC["unidirectional"]}},
    "ff-pulse-fine-mixed-unidirectional": {"algorithm": "ff-pulse", "cell": FINE_CELL,
                                           "overrides": {"rule": "unidirectional",
                                                         "update": "mixed"}},
    "ff-pulse-fine-readback-unidirectional": {"algorithm": "ff-pulse", "cell": FINE_CELL,
                                              "overrides": {"rule": "unidirectional",
                                                            "update": "readback"}},
}
"""The accuracy runs: what :func:`run_training` is given besides the seed and epochs."""

SPEED_BACKENDS = ("golden:icebreaker?pe=binary", "cosim:icebreaker?pe=binary&sim=verilator")
"""The demo's board, as its golden twin and co-simulated: one training epoch on each."""


def accuracy_run(name: str, out: Path, seed: int, epochs: int | None,
                 data: tuple[str, Path | None]) -> dict[str, Any]:
    """One entry of :data:`RUNS` on the data set ``data`` (name, folder), trained and
    written to ``out / name``."""
    from hilt.host.train.run import pulse_backend, run_training
    from hilt.quant.datasets import load_dataset

    spec = RUNS[name]
    backends = spec.get("backends", ())
    if "cell" in spec:
        dataset = load_dataset(*data, seed=seed)
        cols = dataset.features + dataset.classes
        backends = [f"{pulse_backend(cols)}&{spec['cell']}"]
    return run_training(spec["algorithm"], out / name, backends=backends, dataset=data[0],
                        data_dir=data[1], seed=seed, epochs=epochs, progress=False,
                        overrides=spec.get("overrides"))


def robustness_run(name: str, out: Path, seed: int, epochs: int | None,
                   data: tuple[str, Path | None]) -> dict[str, Any]:
    """MF-FF through optical layers that drift, then a bump of 0.25, then 3 more epochs."""
    from dataclasses import asdict, replace

    from hilt.host.train.goodness import LabelLayout
    from hilt.host.train.mfff import MFFFConfig
    from hilt.host.train.robustness import robustness_study
    from hilt.host.train.run import block_urls, close_layers, open_layers
    from hilt.quant.datasets import load_dataset

    config = MFFFConfig(seed=seed)
    config = replace(config, epochs=epochs) if epochs else config
    dataset = load_dataset(*data, seed=seed)
    urls = block_urls([f"physical:optical?{NOISE}&drift=0.001"], config.blocks, config.hidden,
                      LabelLayout.of(dataset, config.label), config.label_route())
    layers = open_layers(urls, seed)
    try:
        result = robustness_study(dataset, layers, config, strength=0.25,
                                  retrain_epochs=3, progress=False)
    finally:
        close_layers(layers)
    return {"test_accuracy": result.trained_accuracy, **asdict(result)}


def speed_run(name: str, out: Path, seed: int, epochs: int | None,
              data: tuple[str, Path | None]) -> dict[str, Any]:
    """One epoch of the demo's network against each of :data:`SPEED_BACKENDS` (on digits,
    the data set the demo's board is as wide as, whatever ``data`` says)."""
    from hilt.host.train.demo import DEMO_SETTINGS
    from hilt.host.train.run import run_training

    records = {}
    for url in SPEED_BACKENDS:
        scheme = url.split(":", 1)[0]
        records[scheme] = run_training("mfff", out / f"{name}-{scheme}", backends=[url],
                                       seed=seed, epochs=1, progress=False,
                                       overrides=DEMO_SETTINGS)
    golden, cosim = records["golden"], records["cosim"]
    return {"test_accuracy": cosim["test_accuracy"],
            "golden_samples_per_second": golden["samples_per_second"],
            "cosim_samples_per_second": cosim["samples_per_second"],
            "ratio": golden["samples_per_second"] / cosim["samples_per_second"],
            "same_result": golden["test_accuracy"] == cosim["test_accuracy"]
            and golden["curves"] == cosim["curves"]}


JOBS: dict[str, Callable[..., dict[str, Any]]] = {
    **{name: accuracy_run for name in RUNS}, "robustness": robustness_run,
    "speed": speed_run}


def label(results: dict[str, dict[str, Any]], dataset: str) -> None:
    """Give every record its ``name``, ``algorithm`` and ``dataset``, and every pulse run
    the accuracy of :data:`FLOAT_REFERENCE` from the same run."""
    reference = results.get(FLOAT_REFERENCE, {}).get("test_accuracy")
    for name, record in results.items():
        spec = RUNS.get(name, {})
        record.update(name=name, algorithm=spec.get("algorithm", "mfff"),
                      dataset="digits" if name == "speed" else dataset)
        if spec.get("algorithm") == "ff-pulse":
            record["float_reference_accuracy"] = reference


def _share_cores(workers: int) -> None:
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def _run(job: tuple[str, Path, int, int | None, tuple[str, Path | None]],
         ) -> tuple[str, dict[str, Any]]:
    name = job[0]
    return name, JOBS[name](*job)


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| run | test accuracy | physical queries / sample / epoch | "
             "digital MACs / sample / epoch | digital MACs / sample, whole run | "
             "inference MACs | seconds |",
             "|---|---|---|---|---|---|---|"]
    for name in RUNS:
        if name not in results:
            continue
        r = results[name]
        per_epoch = r.get("train_macs_per_sample")
        epochs = len(r["curves"]["test_accuracy"]) if "curves" in r else None
        cells = [_number(r.get("queries_per_sample"), ".2f"),
                 _number(per_epoch, ",.0f"),
                 _number(per_epoch * epochs if per_epoch and epochs else None, ",.0f"),
                 _number(r.get("inference_macs"), ",.0f")]
        lines.append(f"| {name} | {r['test_accuracy']:.4f} | {' | '.join(cells)} | "
                     f"{r['seconds']:.1f} |")
    pulsed = [name for name in RUNS if name in results and "pulses" in results[name]]
    if pulsed:
        lines += ["", "| run | test accuracy | float FF, same net | cell pulses | "
                      "potentiation | depression | refreshes (rows read / rewritten) | "
                      "pulses / sample | refreshes / 1,000 samples | samples/s |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for name in pulsed:
            r = results[name]
            seen = r["data"]["train"] * len(r["curves"]["test_accuracy"])
            lines.append(f"| {name} | {r['test_accuracy']:.4f} | "
                         f"{_number(r.get('float_reference_accuracy'), '.4f')} | "
                         f"{r['pulses']:,} | "
                         f"{r['potentiation']:,} | {r['depression']:,} | {r['refreshes']} "
                         f"({r['refresh_reads']} / {r['refresh_writes']}) | "
                         f"{r['pulses'] / seen:.3f} | {1000 * r['refreshes'] / seen:.2f} | "
                         f"{r['samples_per_second']:.0f} |")
    if "robustness" in results:
        r = results["robustness"]
        lines.append("")
        lines.append(f"robustness (optical, drift 1e-3 per batch, moved "
                     f"{max(c for c in r['drift_change'] if c is not None):.1%}): trained "
                     f"{r['trained_accuracy']:.4f}, bumped by {r['strength']} "
                     f"{r['perturbed_accuracy']:.4f}, after {r['retrain_epochs']} more "
                     f"epochs {r['retrained_accuracy']:.4f}")
    if "speed" in results:
        r = results["speed"]
        lines.append("")
        lines.append(f"one epoch of the demo network: golden {r['golden_samples_per_second']:.0f}"
                     f" samples/s, co-simulated board {r['cosim_samples_per_second']:.1f} "
                     f"samples/s ({r['ratio']:.0f}x); same result: {r['same_result']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None,
                        help="override every run's epochs (default: each algorithm's own)")
    parser.add_argument("--workers", type=int, default=min(len(JOBS), os.cpu_count() or 1))
    parser.add_argument("--out", type=Path, default=Path("runs/bench-training"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--only", nargs="*", choices=list(JOBS), default=None)
    parser.add_argument("--dataset", default="digits",
                        help="the data set of the accuracy runs, as hilt train takes it")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    names = args.only or list(JOBS)
    data = (args.dataset, args.data_dir)
    jobs = [(name, args.out, args.seed, args.epochs, data) for name in names]
    with ProcessPoolExecutor(max_workers=args.workers, initializer=_share_cores,
                             initargs=(args.workers,)) as pool:
        results = dict(pool.map(_run, jobs))
    label(results, args.dataset)
    print(_table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
