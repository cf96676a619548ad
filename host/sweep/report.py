"""What a sweep writes and prints: the results file, the tables and the plot.

``results.json`` (the config, every point, the Pareto front and how the run went) is
written last and atomically, so a folder that has one holds a whole sweep. Tables show
the parameters the grid varies as columns and the fixed ones above them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .run import SweepResult
from .run_folder import write_atomic

COLUMNS = (("accuracy", "accuracy"), ("luts", "LUTs"), ("flip_flops", "FFs"),
           ("dsps", "DSPs"), ("brams", "BRAMs"), ("seconds", "seconds"))
"""The measured columns of every table: record key and header."""


def varying(result: SweepResult) -> list[str]:
    """The parameters (family included) that take more than one value in the sweep."""
    names = list(result.points[0]["params"]) if result.points else []
    return [n for n in names if len({json.dumps(p["params"][n]) for p in result.points}) > 1]


def fixed(result: SweepResult) -> dict[str, Any]:
    """The parameters that take one value, with that value."""
    moving = varying(result)
    first = result.points[0]["params"] if result.points else {}
    return {n: v for n, v in first.items() if n not in moving}


def label(names: list[str], record: dict[str, Any]) -> str:
    """A point's values of the parameters ``names``, e.g. ``exp_bits=2 pes=4``."""
    return " ".join(f"{n}={_cell(record['params'][n])}" for n in names) or "the point"


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _row(names: list[str], record: dict[str, Any]) -> list[str]:
    cells = [_cell(record["params"][n]) for n in names]
    cells.append(f"{100 * record['accuracy']:.2f}%")
    cells += [str(record[key]) for key, _ in COLUMNS[1:-1]]
    cells.append(f"{record['seconds']:.1f}")
    return cells


def _headers(names: list[str]) -> list[str]:
    return [*names, *(header for _, header in COLUMNS)]


def results_json(result: SweepResult) -> dict[str, Any]:
    """The content of ``results.json``."""
    front = set(result.front)
    return {
        "config": result.config.as_json(),
        "config_hash": result.config.hash,
        "points": [{**record, "on_front": i in front} for i, record in enumerate(result.points)],
        "pareto_front": result.front,
        "run": {"seconds": result.seconds, "evaluated": result.evaluated,
                "resumed": result.resumed, "trainings": result.trainings,
                "executor": result.executor},
    }


def front_table(result: SweepResult) -> str:
    """The Pareto front as an aligned text table, for the terminal."""
    names = varying(result)
    rows = [_headers(names)] + [_row(names, result.points[i]) for i in result.front]
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True))
             for row in rows]
    return "\n".join(lines)


def markdown(result: SweepResult) -> str:
    """The content of ``results.md``: every point, then the front."""
    config = result.config
    shown_fixed = ", ".join(f"{n}={_cell(v)}" for n, v in fixed(result).items())
    names = varying(result)
    header = _headers(names)
    rule = "|" + "|".join("---" if i < len(names) else "---:" for i in range(len(header))) + "|"

    def table(indices: list[int]) -> list[str]:
        return ["| " + " | ".join(header) + " |", rule] + [
            "| " + " | ".join(_row(names, result.points[i])) + " |" for i in indices]

    front = set(result.front)
    lines = [
        f"# Sweep: {config.element}",
        "",
        f"{len(result.points)} points, {config.epochs} epochs, seed {config.seed}, "
        f"config hash {config.hash}. Fixed: {shown_fixed or 'nothing'}.",
        "Accuracy: the integer golden model on the held-out digits; resources: Yosys, "
        "out of context; seconds: training (shared by the points of one number format) "
        "plus synthesis.",
        "",
        "## Pareto front (accuracy against LUTs)",
        "",
        *table(result.front),
        "",
        "## All points",
        "",
        *table(list(range(len(result.points)))),
        "",
        f"Points on the front: {', '.join(str(i) for i in sorted(front))} (grid order, "
        "from 0).",
    ]
    return "\n".join(lines) + "\n"


def plot(result: SweepResult, path: Path) -> None:
    """Accuracy against LUTs, every point, with the front marked and labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = varying(result)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    families = list(dict.fromkeys(r["params"]["family"] for r in result.points))
    for family, marker in zip(families, "osD^v", strict=False):
        members = [r for r in result.points if r["params"]["family"] == family]
        ax.scatter([r["luts"] for r in members], [100 * r["accuracy"] for r in members],
                   marker=marker, color="tab:blue", alpha=0.6,
                   label=f"points ({family})" if len(families) > 1 else "points")
        on_front = [result.points[i] for i in result.front
                    if result.points[i]["params"]["family"] == family]
        ax.step([r["luts"] for r in on_front], [100 * r["accuracy"] for r in on_front],
                where="post", color="tab:red", linewidth=1)
        ax.scatter([r["luts"] for r in on_front], [100 * r["accuracy"] for r in on_front],
                   marker=marker, facecolors="none", edgecolors="tab:red", s=120,
                   linewidths=1.5,
                   label=f"Pareto front ({family})" if len(families) > 1 else "Pareto front")
        for record in on_front:
            ax.annotate(label(names, record), (record["luts"], 100 * record["accuracy"]),
                        textcoords="offset points", xytext=(6, -10), fontsize="x-small")
    ax.set_xlabel(f"LUTs ({', '.join(families)})")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Sweep of the {result.config.element} element: accuracy against LUTs")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(result: SweepResult, folder: Path) -> dict[str, Path]:
    """Write ``results.md``, ``pareto.png`` and, last, ``results.json`` into ``folder``."""
    folder = Path(folder)
    files = {"markdown": folder / "results.md", "plot": folder / "pareto.png",
             "json": folder / "results.json"}
    write_atomic(files["markdown"], markdown(result))
    tmp = folder / ".pareto.png.tmp.png"
    plot(result, tmp)
    tmp.replace(files["plot"])
    write_atomic(files["json"], json.dumps(results_json(result), indent=2) + "\n")
    return files
