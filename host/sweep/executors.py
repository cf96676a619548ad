"""Where a sweep's tasks run: in this process, or in a pool of local processes.

An executor runs a batch of :class:`~hilt.host.sweep.tasks.Task` and yields each with
its :class:`~hilt.host.sweep.tasks.Outcome` as it finishes, in whatever order they
finish; the sweep keys results by task, never by order, so every executor gives the
same results. The Ray executor (:mod:`.ray_cluster`) has the same shape and is imported
only when asked for, so a local sweep never imports Ray.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractContextManager
from multiprocessing import get_context
from typing import Protocol

from .errors import PointFailed
from .tasks import Outcome, Task, run_task


class Executor(Protocol):
    """Runs tasks and yields ``(task, outcome)`` as each one finishes."""

    description: str

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, Outcome]]: ...


class InlineExecutor:
    """Runs the tasks one after the other in this process (``--workers 1``)."""

    description = "this process"

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, Outcome]]:
        for task in tasks:
            yield task, run_task(task)


class ProcessExecutor(AbstractContextManager):
    """Runs the tasks on ``workers`` local processes.

    The processes are spawned, not forked: a fork after torch has started its thread
    pool can hang. Leaving the ``with`` block, normally or on an error or Ctrl-C,
    cancels the tasks not yet started; a worker whose sweep was killed exits by itself.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.description = f"{workers} local processes"
        self._pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                                         initializer=_exit_with_parent,
                                         initargs=(os.getpid(),))

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, Outcome]]:
        pending = {self._pool.submit(run_task, task): task for task in tasks}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    task = pending.pop(future)
                    try:
                        outcome = future.result()
                    except BrokenProcessPool:
                        raise PointFailed(
                            f"a local worker process died during the {task.kind} task of "
                            f"{task.params} (out of memory, or killed?); finished points are "
                            f"kept, rerun to resume") from None
                    yield task, outcome
        finally:
            for future in pending:
                future.cancel()

    def __exit__(self, *exc_info: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _exit_with_parent(parent: int) -> None:
    """Make this worker exit when the sweep's process is gone (killed, say), instead of
    waiting for work forever."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def default_workers() -> int:
    """The number of local worker processes when none is given: one per core."""
    return os.cpu_count() or 1
