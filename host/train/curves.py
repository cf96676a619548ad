"""Learning curves, the same shape for every trainer: what a run records each epoch,
how accuracy is counted, and the plot ``hilt train`` writes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch


@dataclass
class TrainingCurves:
    """Per-epoch learning curves, the same shape for every trainer in this package.

    ``loss[e]`` holds one mean loss per trained part at epoch ``e`` (per hidden layer for
    Forward-Forward, then the softmax head if there is one; a single entry for
    backprop). The accuracies are measured after each epoch, on the whole train and
    test sets.
    """

    loss: list[tuple[float, ...]] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)


def accuracy(predicted: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of ``predicted`` equal to ``labels``."""
    return float((predicted == labels).float().mean())


def plot_curves(curves: TrainingCurves, title: str, path: Path) -> Path:
    """Accuracy and loss per epoch, side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = range(1, len(curves.test_accuracy) + 1)
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, curves.train_accuracy, label="train")
    left.plot(epochs, curves.test_accuracy, label="test")
    left.set(xlabel="epoch", ylabel="accuracy", title=title)
    left.legend()
    for part in range(len(curves.loss[0]) if curves.loss else 0):
        values = [losses[part] for losses in curves.loss]
        if not all(math.isnan(v) for v in values):
            right.plot(epochs, values, label=f"part {part}")
    right.set(xlabel="epoch", ylabel="loss", title="local losses")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
