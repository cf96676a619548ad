"""Recognising and reading a run folder: a training run, a sweep, or benchmarks.

Each of hilt's commands leaves a folder whose finished state is marked by a file
written last and whole: ``results.json`` for ``hilt train`` (with ``algorithm`` and
``curves``) and for ``hilt sweep`` (with ``points`` and ``pareto_front``), and a
``NAME.json`` beside its ``NAME.txt`` for each benchmark of ``hilt bench``. Only those
are read, so a report never shows a run that has not finished; a folder holding none of
them is refused with a message that says what was looked for, and what the folder seems
to hold instead (a training run's checkpoints, a sweep's points).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from .errors import ReportError

RESULTS = "results.json"
EXPECTED = (f"{RESULTS} (a finished `hilt train` or `hilt sweep`) or NAME.json with "
            f"NAME.txt (`hilt bench`)")
"""What a run folder must hold, as the error messages say it."""


@dataclass(frozen=True)
class Benchmark:
    """One benchmark of a bench folder: its printed table and its numbers."""

    name: str
    table: str
    data: Any
    finished: datetime


@dataclass(frozen=True)
class Run:
    """A recognised run folder.

    ``results`` is the parsed ``results.json`` of a training run or a sweep (empty for
    benchmarks); ``finished`` is when the folder's last result file was written.
    """

    path: Path
    kind: Literal["training", "sweep", "bench"]
    results: dict[str, Any]
    finished: datetime
    benchmarks: tuple[Benchmark, ...] = ()


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime).astimezone()


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError as error:
        raise ReportError(f"cannot read {path}: {error.strerror}") from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(_read_text(path))
    except RecursionError:
        raise ReportError(f"{path} nests too deep to be read; expected what `hilt` writes "
                          f"there") from None
    except ValueError as error:
        raise ReportError(f"{path} is not valid JSON ({error}); expected what `hilt` "
                          f"writes there") from None


def _missing(record: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    return [key for key in keys if key not in record]


def _results_run(path: Path) -> Run:
    file = path / RESULTS
    results = _read_json(file)
    if isinstance(results, dict) and "pareto_front" in results:
        kind, what, needed = "sweep", "a sweep", ("config", "points", "pareto_front")
    elif isinstance(results, dict) and "algorithm" in results:
        kind, what = "training", "a training run"
        needed = ("algorithm", "config", "test_accuracy", "curves")
    else:
        raise ReportError(f"{file} is neither a training run's (algorithm, curves, ...) nor "
                          f"a sweep's (points, pareto_front, ...)")
    missing = _missing(results, needed)
    if kind == "training" and "curves" in results:
        curves = results["curves"]
        missing += (_missing(curves, ("train_accuracy", "test_accuracy", "loss"))
                    if isinstance(curves, dict) else ["curves as a mapping"])
    if missing:
        raise ReportError(f"{file} looks like {what}'s results but lacks "
                          f"{', '.join(missing)}")
    shapes = {"config": dict, "curves": dict, "points": list, "pareto_front": list}
    for key in needed:
        if key in shapes and not isinstance(results[key], shapes[key]):
            kind_name = "an object" if shapes[key] is dict else "a list"
            raise ReportError(f"{file}: its {key} is {type(results[key]).__name__}, not "
                              f"{kind_name} as hilt writes it")
    return Run(path, kind, results, _mtime(file))


def _bench_run(path: Path) -> Run | None:
    pairs = sorted(p for p in path.glob("*.json") if p.with_suffix(".txt").is_file())
    if not pairs:
        return None
    benchmarks = tuple(
        Benchmark(p.stem, _read_text(p.with_suffix(".txt")), _read_json(p),
                  _mtime(p))
        for p in pairs)
    return Run(path, "bench", {}, max(b.finished for b in benchmarks), benchmarks)


def _unfinished(path: Path) -> str:
    """What an unrecognised folder seems to hold, for the error message."""
    if (path / "points.jsonl").exists():
        return ("it holds a sweep that has not finished (points.jsonl, no results.json): "
                "run the same `hilt sweep` again to finish it")
    if any((path / name).exists() for name in ("checkpoints", "model.pt", "curves.png")):
        return "it holds a training run that has not finished (no results.json)"
    if not any(path.iterdir()):
        return "it is empty"
    return "it holds neither"


def load_run(path: str | Path) -> Run:
    """The run folder at ``path``, recognised and read.

    Raises
    ------
    ReportError
        ``path`` does not exist or is not a folder, holds no finished results, or holds
        a results file that is unreadable or not one hilt writes.
    """
    path = Path(path)
    if not path.exists():
        raise ReportError(f"run folder {path} does not exist; expected a folder with {EXPECTED}")
    if not path.is_dir():
        raise ReportError(f"{path} is a file, not a run folder; expected a folder with "
                          f"{EXPECTED}")
    if (path / RESULTS).is_file():
        return _results_run(path)
    run = _bench_run(path)
    if run is None:
        raise ReportError(f"no results in {path}: expected {EXPECTED}; {_unfinished(path)}")
    return run
