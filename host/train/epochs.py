"""The epoch loop every trainer runs: an epoch of steps, then the accuracies on the whole
training and test sets, recorded as learning curves, under one progress bar over the
steps that shows the running loss and the last accuracies."""

from __future__ import annotations

import math
from collections.abc import Callable

from tqdm.auto import tqdm

from hilt.host.train.curves import TrainingCurves

StepReport = Callable[[float], None]
"""What an epoch calls after every step, with the epoch's running mean loss."""


def run_epochs(name: str, *, epochs: int, steps_per_epoch: int,
               train_epoch: Callable[[int, StepReport], tuple[float, ...]],
               evaluate: Callable[[], tuple[float, float]], progress: bool,
               curves: TrainingCurves | None = None, first_epoch: int = 0,
               first_step: int = 0, end_epoch: Callable[[int], None] | None = None,
               ) -> TrainingCurves:
    """Run epochs ``first_epoch..epochs-1`` and return the curves, ``curves`` extended.

    ``train_epoch(epoch, report)`` trains one epoch, calling ``report`` after each step,
    and returns its mean loss per trained part; ``evaluate()`` then gives the train and
    test accuracy, and ``end_epoch(epoch)`` (if given) runs once they are recorded. A
    resumed run starts its bar at ``first_step``.
    """
    curves = curves if curves is not None else TrainingCurves()
    with tqdm(total=epochs * steps_per_epoch, initial=first_step, desc=name,
              disable=not progress) as bar:
        def report(loss: float) -> None:
            bar.update()
            bar.set_postfix(_postfix(loss, curves))

        for epoch in range(first_epoch, epochs):
            losses = train_epoch(epoch, report)
            train_accuracy, test_accuracy = evaluate()
            curves.loss.append(tuple(losses))
            curves.train_accuracy.append(train_accuracy)
            curves.test_accuracy.append(test_accuracy)
            bar.set_postfix(_postfix(float(sum(losses)), curves))
            if end_epoch is not None:
                end_epoch(epoch)
    return curves


def _postfix(loss: float, curves: TrainingCurves) -> dict[str, str]:
    """The bar's running loss and the last epoch's accuracies (nan before the first)."""
    train = (curves.train_accuracy or [math.nan])[-1]
    test = (curves.test_accuracy or [math.nan])[-1]
    return {"loss": f"{loss:.3f}", "train": f"{train:.3f}", "test": f"{test:.3f}"}
