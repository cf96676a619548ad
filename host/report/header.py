"""What a run was: the lines at the top of its report, and the command that repeats it.

A training run's ``results.json`` records the algorithm, the backends' URLs, the seed
and the whole config, so the ``hilt train`` command that reproduces it can be written
out: the fields that differ from the algorithm's defaults become ``--set NAME=VALUE``
(in the form ``hilt train --set`` reads back). A sweep records its normalised config; a
benchmark folder, only the names of its benchmarks.
"""

from __future__ import annotations

import importlib
import json
import shlex
from dataclasses import asdict
from typing import Any

from .folder import Run
from .records import cell

CONFIGS = {"ff": ("hilt.host.train.ff", "FFConfig"),
           "backprop": ("hilt.host.train.backprop", "BackpropConfig"),
           "mfff": ("hilt.host.train.mfff", "MFFFConfig"),
           "pat": ("hilt.host.train.pat", "PATConfig"),
           "ff-pulse": ("hilt.host.train.pulse_ff", "PulseFFConfig")}
"""Each algorithm's config class, whose defaults ``hilt train`` starts from."""
TIME_FORMAT = "%Y-%m-%d %H:%M:%S %Z"


def _setting(value: Any) -> str:
    """``value`` as ``hilt train --set`` reads it."""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def training_command(results: dict[str, Any]) -> str | None:
    """The ``hilt train`` command that repeats the run ``results`` records (without
    ``--out``), or None for an algorithm this hilt does not know."""
    algorithm = results["algorithm"]
    if algorithm not in CONFIGS:
        return None
    module, name = CONFIGS[algorithm]
    defaults = json.loads(json.dumps(asdict(getattr(importlib.import_module(module), name)())))
    config = results["config"]
    parts = ["hilt", "train", "--algo", algorithm]
    if results.get("dataset", "digits") != "digits":
        parts += ["--dataset", str(results["dataset"])]
    for backend in results.get("backends") or ():
        parts += ["--backend", backend["url"] if backend else "none"]
    if config.get("epochs") != defaults.get("epochs"):
        parts += ["--epochs", str(config["epochs"])]
    if results.get("seed", 0) != 0:
        parts += ["--seed", str(results["seed"])]
    for key, value in config.items():
        if key not in ("epochs", "seed") and value != defaults.get(key):
            parts += ["--set", f"{key}={_setting(value)}"]
    return shlex.join(parts)


def header(run: Run) -> tuple[str, list[tuple[str, str]]]:
    """The page title and the header's name/value lines for ``run``."""
    finished = run.finished.strftime(TIME_FORMAT)
    results = run.results
    if run.kind == "training":
        backends = [b["url"] if b else "none" for b in results.get("backends") or ()]
        items = [("what", f"training run (hilt train): {results['algorithm']} on "
                          f"{results.get('dataset', 'digits')}"),
                 ("backends", ", ".join(backends) or "none (digital layers in-process)"),
                 ("seed", cell(results.get("seed"))),
                 ("epochs", cell(results["config"].get("epochs"))),
                 ("test accuracy", f"{100 * results['test_accuracy']:.2f}%"),
                 ("training time", f"{results['seconds']} s" if "seconds" in results else "-")]
        command = training_command(results)
        if command:
            items.append(("equivalent command", command))
        title = f"hilt report: {results['algorithm']} training run"
    elif run.kind == "sweep":
        config, info = results["config"], results.get("run", {})
        items = [("what", f"design-space sweep (hilt sweep) of the {config.get('element')} "
                          f"element on {cell(config.get('family'))}"),
                 ("points", f"{len(results['points'])}, {len(results['pareto_front'])} on the "
                            f"Pareto front"),
                 ("epochs per training", cell(config.get("epochs"))),
                 ("seed", cell(config.get("seed"))),
                 ("config hash", cell(results.get("config_hash"))),
                 ("run", f"{cell(info.get('seconds'))} s on {info.get('executor', '-')}, "
                         f"{info.get('evaluated', '-')} points evaluated, "
                         f"{info.get('resumed', '-')} resumed")]
        title = f"hilt report: sweep of the {config.get('element')} element"
    else:
        names = [b.name for b in run.benchmarks]
        items = [("what", f"benchmarks (hilt bench): {', '.join(names)}")]
        title = "hilt report: benchmarks"
    items += [("finished", finished), ("folder", str(run.path.resolve()))]
    return title, items
