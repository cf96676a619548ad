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
from typing import TextIO

import hilt
from hilt.host.output_folder import Staging, claim

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
                   folder: Path = BENCHMARKS, force: bool = False) -> list[BenchRun]:
    """Run the benchmarks ``names`` (all of them if empty; ``extra`` arguments go to the
    one named), writing ``NAME.json`` and ``NAME.txt`` into ``out``; stops at the first
    that fails.

    ``out`` is claimed before anything runs (:func:`~hilt.host.output_folder.claim`;
    ``force`` takes a folder of another kind). Each benchmark writes into a staging folder,
    and its two files replace an earlier run's only when it has succeeded.

    Raises
    ------
    BenchError
        An unknown name or arguments for several (before anything runs), or a benchmark
        that exits non-zero (its earlier files are left as they were).
    OutputError
        ``out`` holds another kind of run or cannot be written.
    """
    known = available(folder)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise BenchError(f"unknown benchmark {', '.join(map(repr, unknown))}; accepted: "
                         f"{', '.join(known)}")
    if extra and len(names) != 1:
        raise BenchError(f"arguments {' '.join(extra)!r} are for one benchmark; name exactly "
                         f"one, got {len(names) or 'all'}")
    # The scripts run in their own folder: every path they are given must be absolute.
    out = claim(Path(out).absolute(), "bench", force=force)
    runs = []
    for name in names or known:
        with Staging(out, last=(f"{name}.json",)) as stage:
            json_path, table = stage.path / f"{name}.json", stage.path / f"{name}.txt"
            command = [sys.executable, str(folder / f"{name}.py"), "--json", str(json_path),
                       *extra]
            start = time.perf_counter()
            with table.open("w") as text:
                status = _run(command, folder, text)
            if status != 0:
                raise BenchError(f"benchmark {name} failed with exit status {status} (its "
                                 f"output is above); {out} keeps its earlier {name}.json and "
                                 f"{name}.txt as they were")
            if not json_path.is_file():
                raise BenchError(f"benchmark {name} wrote no {name}.json; {out} keeps its "
                                 f"earlier files as they were")
        runs.append(BenchRun(name, stage.final(json_path.name), stage.final(table.name),
                             time.perf_counter() - start))
    return runs


def _run(command: list[str], folder: Path, table: TextIO) -> int:
    """Run one benchmark, its output both to the terminal and to ``table``; its exit status.

    It runs in a session of its own, so that a Ctrl-C reaches only hilt, which then stops
    it: the user sees one line about what was kept, not the script's traceback.
    """
    process = subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        for line in process.stdout:
            sys.stdout.write(line)
            table.write(line)
        return process.wait()
    except BaseException:
        process.terminate()
        process.wait()
        raise
