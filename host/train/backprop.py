"""The backpropagation baseline Forward-Forward is judged against.

The same hidden layers as :class:`hilt.host.train.ff.FFNet` (widths, Linear+ReLU), plus
the linear output layer backprop needs, trained end to end with cross-entropy and Adam
on the same features scaled to [0, 1]. Its result has the same learning curves as a
Forward-Forward run, so the two can be plotted and compared side by side.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hilt.host.train.checks import check_int, check_number, check_seed, check_widths
from hilt.host.train.curves import TrainingCurves, accuracy
from hilt.host.train.epochs import StepReport, run_epochs
from hilt.host.train.seeding import batches, data_tensors, seeded
from hilt.quant.datasets import Dataset

DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    name: {"hidden": (500, 500)} for name in ("mnist", "mnist-t10k")}
"""Defaults that differ by data set, chosen on the training part alone: on MNIST-format
data (the t10k split's 8,000 training images: 6,000 to train, 2,000 to validate) 2 x 500
reaches 96.6% against 96.0% for 2 x 256, as it does for Forward-Forward
(:data:`hilt.host.train.ff.DATASET_DEFAULTS`), so both keep the same size."""


@dataclass(frozen=True)
class BackpropConfig:
    """Everything a backprop run depends on; the defaults are the tuned ones.

    The defaults were picked once, by 5-fold cross-validation on the training split (the
    test split chose nothing), among learning rates 1e-4..3e-3, batches of 16..128,
    30..200 epochs, weight decay 0..1e-3, PyTorch's default or He initialisation (He is
    better by about half a percent) and averaging the weights (which does not help it);
    every run fits its training set exactly.

    Attributes
    ----------
    hidden
        Widths of the hidden Linear+ReLU layers (a linear output layer follows).
    lr, weight_decay
        Adam's learning rate and L2 penalty.
    epochs, batch_size, seed
        Passes over the training set, images per update, and the seed of the
        initialisation and the shuffles.
    """

    hidden: tuple[int, ...] = (256, 256)
    lr: float = 3e-4
    weight_decay: float = 1e-4
    epochs: int = 100
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", check_widths("hidden", self.hidden))
        check_number("lr", self.lr)
        check_number("weight_decay", self.weight_decay, minimum=0.0, inclusive=True)
        check_int("epochs", self.epochs, 1)
        check_int("batch_size", self.batch_size, 1)
        check_seed(self.seed)


def mlp(in_features: int, hidden: tuple[int, ...], num_classes: int) -> nn.Sequential:
    """Linear+ReLU for every hidden width, then a linear layer to the class logits.

    Weights start as in :class:`~hilt.host.train.ff.FFNet` (He initialisation, zero
    bias), which also serves backprop better than PyTorch's default here.
    """
    modules: list[nn.Module] = []
    for width in hidden:
        modules += [nn.Linear(in_features, width), nn.ReLU()]
        in_features = width
    modules.append(nn.Linear(in_features, num_classes))
    for module in modules:
        if isinstance(module, nn.Linear):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)
    return nn.Sequential(*modules)


@dataclass
class BackpropResult:
    """A finished backprop run; ``curves.loss[e]`` holds the one cross-entropy of epoch ``e``."""

    config: BackpropConfig
    net: nn.Sequential
    curves: TrainingCurves
    test_accuracy: float
    """Test accuracy after the last epoch (never the best epoch: the test set picks nothing)."""
    seconds: float
    """Wall time of the training, evaluation after each epoch included."""


def train_backprop(split: Dataset, config: BackpropConfig | None = None, *,
                   progress: bool = True) -> BackpropResult:
    """Train :func:`mlp` end to end on ``split`` and evaluate it every epoch.

    Deterministic for ``config.seed``; ``progress`` shows a tqdm bar over the steps with
    the running loss and accuracy.
    """
    config = config or BackpropConfig()
    x_train, y_train, x_test, y_test = data_tensors(split)
    start = time.perf_counter()
    with seeded(config.seed) as generator:
        net = mlp(x_train.shape[1], config.hidden, split.classes)
        optimizer = torch.optim.Adam(net.parameters(), lr=config.lr,
                                     weight_decay=config.weight_decay)

        def train_epoch(_: int, report: StepReport) -> tuple[float, ...]:
            total = 0.0
            order = batches(len(x_train), config.batch_size, generator)
            for done, index in enumerate(order, start=1):
                loss = F.cross_entropy(net(x_train[index]), y_train[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach())
                report(total / done)
            return (total / len(order),)

        @torch.no_grad()
        def evaluate() -> tuple[float, float]:
            return (accuracy(net(x_train).argmax(dim=1), y_train),
                    accuracy(net(x_test).argmax(dim=1), y_test))

        curves = run_epochs("backprop", epochs=config.epochs,
                            steps_per_epoch=math.ceil(len(x_train) / config.batch_size),
                            train_epoch=train_epoch, evaluate=evaluate, progress=progress)
    return BackpropResult(config, net, curves, curves.test_accuracy[-1],
                          time.perf_counter() - start)
