"""``hilt sweep CONFIG``: the design-space sweep's command-line face.

:func:`add_arguments` declares the options on the ``sweep`` subparser;
:func:`sweep_command` runs a sweep and prints its Pareto front. Both import nothing
heavy, so building the command line stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hilt.host.arguments import INTERRUPTED, WORKERS

from .run_folder import POINTS_FILE

DEFAULT_OUT = Path("runs/sweep")

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the sweep's arguments to ``parser`` (the ``sweep`` subparser)."""
    parser.add_argument("config", type=Path,
                        help="sweep config, .toml or .json (see docs/sweep.md)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"run folder (default {DEFAULT_OUT}/CONFIG-NAME); a rerun with "
                             "the same config resumes it")
    parser.add_argument("--workers", type=WORKERS, default=None,
                        help="local worker processes (default: one per core), or the CPUs "
                             "of --ray local")
    parser.add_argument("--ray", default=None, metavar="ADDRESS",
                        help="run on Ray: auto, HOST:PORT, ray://HOST:PORT, or local (a "
                             "private instance); needs pip install -e \".[ray]\"")
    parser.add_argument("--force", action="store_true",
                        help="write into a folder that holds another kind of run or files "
                             "that are no run")


def sweep_command(config_path: str | Path, out: str | Path | None = None,
                  workers: int | None = None, ray_address: str | None = None,
                  progress: bool = True, force: bool = False) -> int:
    """Run the sweep of ``config_path`` into ``out`` and print its Pareto front.

    Returns the exit status: 0, or :data:`INTERRUPTED` after Ctrl-C (the points finished
    so far are kept, and a rerun resumes). A user error (bad config, run folder of another config,
    Ray missing or not answering, a point that failed) raises
    :class:`~hilt.host.sweep.errors.SweepError`, a ``ValueError`` with a one-line message.
    """
    from .config import load_config
    from .report import front_table
    from .run import run_sweep

    config = load_config(config_path)
    out = Path(out) if out is not None else DEFAULT_OUT / Path(config_path).stem
    points = len(config.points())
    print(f"hilt sweep: {config.element} on {', '.join(config.families)}, "
          f"{points} point{'s' if points != 1 else ''}, "
          f"{config.epochs} epochs, seed {config.seed}, into {out}")
    try:
        result = run_sweep(config, out, workers=workers, ray_address=ray_address,
                           progress=progress, force=force)
    except KeyboardInterrupt:
        done = _lines(out / POINTS_FILE)
        print(f"hilt sweep: interrupted; {done} of {points} points are in "
              f"{out / POINTS_FILE}: run the same command again to resume", file=sys.stderr)
        return INTERRUPTED
    trained = f"{result.trainings} trainings" if result.trainings != 1 else "1 training"
    print(f"  {result.evaluated} points evaluated ({trained}), {result.resumed} found done, "
          f"on {result.executor}, {result.seconds:.1f} s")
    print(f"  Pareto front, accuracy against LUTs ({len(result.front)} of "
          f"{len(result.points)} points):")
    print("\n".join(f"    {line}" for line in front_table(result).splitlines()))
    for name in ("json", "markdown", "plot"):
        print(f"  {name + ':':10s}{result.files[name]}")
    return 0


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except OSError:
        return 0
