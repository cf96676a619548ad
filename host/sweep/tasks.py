"""The two kinds of work a sweep hands out, as plain data that any executor can ship.

An accuracy task trains one network (one per distinct set of accuracy parameters); a
cost task synthesises one point. :func:`run_task` runs either in whichever process
gets it, a local worker or a Ray worker, and returns an :class:`Outcome` instead of
raising, so a failure reaches the user as the same one-line message on every executor.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

ACCURACY = "accuracy"
COST = "cost"


@dataclass(frozen=True)
class Task:
    """One unit of work.

    Attributes
    ----------
    kind : str
        :data:`ACCURACY` or :data:`COST`.
    element : str
        The config's element.
    params : dict
        The accuracy parameters (accuracy task) or the whole point, family included
        (cost task).
    seed, epochs : int
        The config's training seed and epochs (used by accuracy tasks).
    """

    kind: str
    element: str
    params: dict[str, Any]
    seed: int
    epochs: int


@dataclass(frozen=True)
class Outcome:
    """What a task produced: its ``value``, or the ``error`` it raised with ``details``."""

    value: dict[str, Any] | None = None
    error: str | None = None
    details: str | None = None


def run_task(task: Task) -> Outcome:
    """Run ``task`` here and now; any exception comes back as an :class:`Outcome`."""
    from . import accuracy, cost

    try:
        if task.kind == ACCURACY:
            value = accuracy.evaluate_accuracy(task.element, task.params, seed=task.seed,
                                               epochs=task.epochs)
        else:
            value = cost.evaluate_cost(task.element, task.params)
    except Exception as error:
        return Outcome(error=f"{type(error).__name__}: {error}",
                       details=traceback.format_exc())
    return Outcome(value=value)
