"""``hilt bench``: the benchmarks of a source checkout, by name, each table kept on disk.

Every script in ``benchmarks/`` measures one thing within one run (so its ratios hold on
a noisy machine), prints a table and writes its numbers as JSON with ``--json``. This
runs the ones asked for, one after the other, in a fresh interpreter each, and keeps
both outputs side by side in the output folder: ``NAME.json`` and ``NAME.txt``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import hilt

BENCHMARKS = Path(hilt.__file__).resolve().parent / "benchmarks"
"""Where the benchmark scripts live: ``benchmarks/`` of the checkout hilt runs from."""

class BenchError(Exception):
    """A benchmark that cannot be found or that failed; the message says which and why."""


@dataclass(frozen=True)
class BenchRun:
    """One benchmark's run: its name, the files it left and how long it took."""

    name: str
    json: Path
    table: Path
    seconds: float


def available(folder: Path = BENCHMARKS) -> list[str]:
    """The benchmark names in ``folder`` (its scripts, without ``.py``), sorted."""
    if not folder.is_dir():
        raise BenchError(f"no benchmarks folder at {folder}: hilt bench runs the benchmarks "
                         f"of a source checkout installed with pip install -e")
    return sorted(path.stem for path in folder.glob("*.py") if not path.stem.startswith("_"))


def run_benchmarks(names: Sequence[str], out: Path, *, extra: Sequence[str] = (),
                   folder: Path = BENCHMARKS) -> list[BenchRun]:
    """Run the benchmarks ``names`` (all of them if empty; ``extra`` arguments go to the
    one named), writing ``NAME.json`` and ``NAME.txt`` into ``out``; stops at the first that fails.

    Raises
    ------
    BenchError
        An unknown name or arguments for several (before anything runs), or a benchmark
        that exits non-zero.
    """
    known = available(folder)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise BenchError(f"unknown benchmark {', '.join(map(repr, unknown))}; accepted: "
                         f"{', '.join(known)}")
    if extra and len(names) != 1:
        raise BenchError(f"arguments {' '.join(extra)!r} are for one benchmark; name exactly "
                         f"one, got {len(names) or 'all'}")
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for name in names or known:
        json_path, table = out / f"{name}.json", out / f"{name}.txt"
        json_path.unlink(missing_ok=True)
        command = [sys.executable, str(folder / f"{name}.py"), "--json", str(json_path),
                   *extra]
        start = time.perf_counter()
        with table.open("w") as text:
            process = subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, text=True)
            for line in process.stdout:
                sys.stdout.write(line)
                text.write(line)
            status = process.wait()
        if status != 0:
            raise BenchError(f"benchmark {name} failed with exit status {status}; its output "
                             f"is in {table}")
        runs.append(BenchRun(name, json_path, table, time.perf_counter() - start))
    return runs
