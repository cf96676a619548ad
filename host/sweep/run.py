"""Running a sweep: plan the tasks, run them on an executor, record, report.

Accuracy depends only on a point's accuracy parameters, so the sweep trains once per
distinct set of them and synthesises once per point; a point is finished, and appended
to the run folder, when both its halves are in. Accuracies already in the run folder are
reused, so a resumed sweep trains only what no finished point has measured.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import SweepConfig
from .errors import PointFailed, SweepError
from .executors import Executor, InlineExecutor, ProcessExecutor, default_workers
from .pareto import pareto_front
from .run_folder import RunFolder, point_key
from .tasks import ACCURACY, COST, Outcome, Task

logger = logging.getLogger(__name__)


@dataclass
class SweepResult:
    """Everything a sweep measured.

    Attributes
    ----------
    config : SweepConfig
        The sweep's config.
    points : list of dict
        One record per grid point, in grid order: ``params``, ``accuracy``, ``luts``,
        ``flip_flops``, ``dsps``, ``brams``, ``carries``, ``train_s`` (of the training
        the point shares with every point of its number format), ``synth_s`` and
        ``seconds`` (their sum).
    front : list of int
        Indices into ``points`` of the Pareto front of accuracy against LUTs, family by
        family, each by rising LUTs.
    evaluated, resumed : int
        Points evaluated by this run, and points found finished in the run folder.
    trainings : int
        Networks trained by this run.
    seconds : float
        Wall time of this run.
    executor : str
        Where the tasks ran.
    files : dict of str to Path
        What :func:`~hilt.host.sweep.report.write_report` wrote.
    """

    config: SweepConfig
    points: list[dict[str, Any]]
    front: list[int]
    evaluated: int
    resumed: int
    trainings: int
    seconds: float
    executor: str
    files: dict[str, Path] = field(default_factory=dict)


def run_sweep(config: SweepConfig, out_dir: str | Path, *, workers: int | None = None,
              ray_address: str | None = None, progress: bool = False,
              on_point: Callable[[dict[str, Any]], None] | None = None,
              force: bool = False) -> SweepResult:
    """Evaluate every point of ``config`` not yet in ``out_dir``, then write the report.

    Parameters
    ----------
    config
        The validated config (:func:`~hilt.host.sweep.config.load_config`).
    out_dir
        The run folder: ``points.jsonl`` as points finish, then ``results.md``,
        ``pareto.png`` and, last, ``results.json``. A folder of another config, of
        another kind of run, or one holding files that are no run is refused.
    workers
        Local processes (default: one per core; 1 runs in this process), or the CPUs
        of the instance ``ray_address="local"`` starts.
    ray_address
        Run on Ray instead: ``auto``, ``HOST:PORT``, ``ray://HOST:PORT`` or ``local``
        (see :mod:`~hilt.host.sweep.ray_cluster`).
    progress
        Show a progress bar over the points (on stderr).
    on_point
        Called with each point's record as it finishes.
    force
        Take a folder that holds another kind of run or files that are no run.

    Raises
    ------
    SweepError
        For a bad ``workers`` or Ray address, a run folder of another config, or a point
        whose training or synthesis failed (the points finished before it are kept).
    """
    from .report import write_report

    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise SweepError(f"workers must be an integer >= 1; got {workers!r}")
    if workers is not None and ray_address not in (None, "local"):
        raise SweepError(f"workers={workers} applies to local runs and to --ray local; the "
                         f"CPUs of the Ray cluster at {ray_address!r} decide its parallelism")
    started = time.perf_counter()
    folder = RunFolder(out_dir, config, force=force)
    points = config.points()
    todo = [p for p in points if point_key(p) not in folder.finished]
    pairing = _Pairing(config, list(folder.finished.values()), todo)
    tasks = [*pairing.trainings, *pairing.syntheses]
    description = "nothing to run"
    if tasks:
        from tqdm import tqdm

        with ExitStack() as stack:
            executor = _executor(stack, workers, ray_address, len(tasks))
            description = executor.description
            bar = stack.enter_context(tqdm(total=len(points), initial=len(points) - len(todo),
                                           unit="point", desc="sweep", disable=not progress))
            for task, outcome in stack.enter_context(closing(executor.run(tasks))):
                for record in pairing.add(task, _value(config, task, outcome)):
                    folder.append(record)
                    bar.update(1)
                    bar.set_postfix_str(f"{100 * record['accuracy']:.1f}% {record['luts']} LUTs")
                    if on_point is not None:
                        on_point(record)

    records = [_public(folder.finished[point_key(p)]) for p in points]
    result = SweepResult(
        config=config, points=records, front=_fronts(records), evaluated=len(todo),
        resumed=len(points) - len(todo), trainings=len(pairing.trainings),
        seconds=time.perf_counter() - started, executor=description)
    result.files = write_report(result, folder.path)
    return result


class _Pairing:
    """Pairs each point's cost with the accuracy of its number format.

    Plans one training per accuracy key that no finished point has measured, and one
    synthesis per point to do; :meth:`add` takes each result as it comes and returns the
    records of the points it completes.
    """

    def __init__(self, config: SweepConfig, finished: list[dict[str, Any]],
                 todo: list[dict[str, Any]]) -> None:
        self._accuracy_params = config.spec.accuracy_params
        self._accuracies = {self._key(r["params"]):
                            {"accuracy": r["accuracy"], "train_s": r["train_s"]}
                            for r in finished}
        self._waiting: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for point in todo:
            self._waiting[self._key(point)].append(point)
        self._costs: dict[str, dict[str, Any]] = {}
        self.trainings = [Task(ACCURACY, config.element, self._accuracy_params(group[0]),
                               config.seed, config.epochs)
                          for key, group in self._waiting.items() if key not in self._accuracies]
        self.syntheses = [Task(COST, config.element, point, config.seed, config.epochs)
                          for point in todo]

    def _key(self, point: dict[str, Any]) -> str:
        return point_key(self._accuracy_params(point))

    def add(self, task: Task, value: dict[str, Any]) -> list[dict[str, Any]]:
        """Take one task's result; the records of the points it completes."""
        if task.kind == ACCURACY:
            key = point_key(task.params)
            self._accuracies[key] = value
            ready = [p for p in self._waiting[key] if point_key(p) in self._costs]
        else:
            self._costs[point_key(task.params)] = value
            ready = [task.params] if self._key(task.params) in self._accuracies else []
        return [self._record(point) for point in ready]

    def _record(self, point: dict[str, Any]) -> dict[str, Any]:
        accuracy = self._accuracies[self._key(point)]
        cost = self._costs.pop(point_key(point))
        return {"params": point, **accuracy, **cost,
                "seconds": accuracy["train_s"] + cost["synth_s"]}


def _executor(stack: ExitStack, workers: int | None, ray_address: str | None,
              tasks: int) -> Executor:
    if ray_address is not None:
        from .ray_cluster import RayExecutor

        return stack.enter_context(RayExecutor(ray_address, workers))
    workers = min(workers or default_workers(), tasks)
    if workers == 1:
        return InlineExecutor()
    return stack.enter_context(ProcessExecutor(workers))


def _value(config: SweepConfig, task: Task, outcome: Outcome) -> dict[str, Any]:
    if outcome.error is None:
        return outcome.value
    logger.info("%s task failed:\n%s", task.kind, outcome.details)
    what = "training" if task.kind == ACCURACY else f"synthesis for {task.params['family']}"
    shown = ", ".join(f"{k}={v}" for k, v in task.params.items() if k != "family")
    raise PointFailed(f"{what} of {config.element} point {shown} failed: {outcome.error} "
                      f"(finished points are kept; rerun to resume, -v for the traceback)")


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "config_hash"}


def _fronts(records: list[dict[str, Any]]) -> list[int]:
    by_family: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        by_family[record["params"]["family"]].append(index)
    front = []
    for indices in by_family.values():
        chosen = pareto_front([records[i] for i in indices], gain=lambda r: r["accuracy"],
                              cost=lambda r: r["luts"])
        front += [indices[i] for i in chosen]
    return front
