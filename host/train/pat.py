"""Physics-aware training, MF-FF's comparison: the same blocks trained end to end by
backprop, with the physical layers' real measurements forward and the gradients of
learned digital twins backward (docs/training.md)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hilt.host.backends.base import Backend
from hilt.host.train.blocks import (
    MAX_BLOCKS,
    build_blocks,
    check_physical,
    measure,
    physical_queries,
)
from hilt.host.train.checks import (
    MAX_WIDTH,
    check_choice,
    check_flag,
    check_int,
    check_number,
    check_seed,
)
from hilt.host.train.curves import TrainingCurves, accuracy
from hilt.host.train.epochs import StepReport, run_epochs
from hilt.host.train.goodness import LABEL_PLACES, LabelLayout, embed_neutral, unit_rms
from hilt.host.train.seeding import data_tensors, seeded
from hilt.quant.datasets import Dataset

HELD_OUT = 0.1
"""Share of a twin's measured pairs kept out of its fit to report its error."""


@dataclass(frozen=True)
class PATConfig:
    """Everything a PAT run depends on.

    The defaults were set once, not tuned: the architecture of
    :class:`~hilt.host.train.mfff.MFFFConfig`, Adam's usual 1e-3 (as the backprop
    baseline uses), and a twin twice as wide as a block.

    Attributes
    ----------
    blocks, hidden, skip
        The architecture, as in :class:`~hilt.host.train.mfff.MFFFConfig`.
    lr, epochs, batch_size, seed
        Adam learning rate, epochs, samples per step, and the seed of the
        initialisation, the shuffles and the twins' random inputs.
    label_value
        Amplitude of the neutral label (each of the 10 entries is ``label_value / 10``).
    label
        Where it goes, as :attr:`~hilt.host.train.mfff.MFFFConfig.label` says.
    stats_momentum
        Weight of a new batch in the running measurement statistics, in (0, 1].
    twin_hidden, twin_epochs, twin_lr
        Width of each twin's hidden layer, its training epochs and Adam learning rate.
    twin_random
        Random inputs measured for each twin, on top of the training set's.
    """

    blocks: int = 2
    hidden: int = 256
    skip: bool = False
    lr: float = 1e-3
    epochs: int = 20
    batch_size: int = 64
    seed: int = 0
    label_value: float = 1.0
    label: str = "append"
    stats_momentum: float = 0.1
    twin_hidden: int = 512
    twin_epochs: int = 40
    twin_lr: float = 1e-3
    twin_random: int = 2000

    def __post_init__(self) -> None:
        check_int("blocks", self.blocks, 1, MAX_BLOCKS)
        check_int("hidden", self.hidden, 1, MAX_WIDTH)
        check_flag("skip", self.skip)
        check_number("lr", self.lr)
        check_int("epochs", self.epochs, 1)
        check_int("batch_size", self.batch_size, 1)
        check_seed(self.seed)
        check_number("label_value", self.label_value)
        check_choice("label", self.label, LABEL_PLACES)
        check_number("stats_momentum", self.stats_momentum, at_most=1.0)
        check_int("twin_hidden", self.twin_hidden, 1, MAX_WIDTH)
        check_int("twin_epochs", self.twin_epochs, 1)
        check_number("twin_lr", self.twin_lr)
        check_int("twin_random", self.twin_random, 0)

    def label_route(self) -> str:
        """Where block 0's label goes: always through its physical layer, whose twin
        models what that layer measures."""
        return "physical"


def _mlp_macs(layers: Sequence[nn.Linear]) -> int:
    return sum(layer.in_features * layer.out_features for layer in layers)


class Twin(nn.Module):
    """A digital twin of one physical layer: Linear + ReLU + Linear, fitted to measurements."""

    def __init__(self, in_features: int, hidden: int, out_features: int) -> None:
        super().__init__()
        self.first = nn.Linear(in_features, hidden)
        self.second = nn.Linear(hidden, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(F.relu(self.first(x)))

    def macs(self) -> int:
        """Multiply-accumulates of one forward pass of one sample."""
        return _mlp_macs([self.first, self.second])


class PATNet(nn.Module):
    """The digital part of a PAT network: blocks, twins (block index -> twin) and the head."""

    def __init__(self, config: PATConfig, physical: Sequence[Backend | None],
                 layout: LabelLayout) -> None:
        super().__init__()
        self.config = config
        self.layout = layout
        self.blocks = build_blocks(config, physical, layout)
        self.twins = nn.ModuleDict({
            str(i): Twin(block.in_features, config.twin_hidden, backend.out_features)
            for i, (block, backend) in enumerate(zip(self.blocks, physical, strict=True))
            if i > 0 and backend is not None})
        self.head = nn.Linear(config.hidden, layout.classes)

    def inference_macs(self) -> int:
        """Digital MACs to classify one sample: blocks and head, no twin."""
        return sum(block.macs() for block in self.blocks) + _mlp_macs([self.head])

    def step_macs(self) -> int:
        """Digital MACs of one training sample in one step (docs/training.md)."""
        blocks = sum((2 if i == 0 else 3) * block.macs() for i, block in enumerate(self.blocks))
        twins = sum(2 * twin.macs() for twin in self.twins.values())
        return blocks + twins + 3 * _mlp_macs([self.head])


def _logits(net: PATNet, physical: Sequence[Backend | None], x: torch.Tensor, *,
            train: bool) -> torch.Tensor:
    """Class logits of features ``x``: the real measurements forward, the twins' gradients
    back.

    ``train`` updates the standardisation statistics with the measurements.
    """
    u = embed_neutral(x, net.layout.classes, net.config.label_value, net.layout.into)
    for i, (block, backend) in enumerate(zip(net.blocks, physical, strict=True)):
        m = measure(backend, u)
        if train:
            block.standardize.update(block.reads(m, u).detach())
        if backend is not None and str(i) in net.twins and u.requires_grad:
            twin = net.twins[str(i)](u)
            m = m + twin - twin.detach()
        u = unit_rms(block(m, u))
    return net.head(u)


@torch.no_grad()
def predict(net: PATNet, physical: Sequence[Backend | None], x: torch.Tensor) -> torch.Tensor:
    """Predicted labels (N,) for features ``x`` (N, F) in [0, 1], measured through
    ``physical``."""
    if x.dim() != 2 or x.shape[1] != net.layout.features:
        raise ValueError(f"x must be (N, {net.layout.features}), the features the net was "
                         f"built for, got {tuple(x.shape)}")
    check_physical(physical, net.config.blocks, net.config.hidden, net.layout)
    return _logits(net, physical, x, train=False).argmax(dim=1)


def evaluate(net: PATNet, physical: Sequence[Backend | None], x: torch.Tensor,
             y: torch.Tensor) -> float:
    """Accuracy of ``net`` on features ``x`` and labels ``y`` with the physical layers as
    they are."""
    return accuracy(predict(net, physical, x), y)


def _random_inputs(n: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` rectified Gaussian vectors at unit root mean square, like a block's inputs."""
    return unit_rms(F.relu(torch.randn(n, width, generator=generator)))


def _fit_twin(net: PATNet, physical: Sequence[Backend | None], index: int, x: torch.Tensor,
              generator: torch.Generator) -> tuple[float, int]:
    """Measure block ``index``'s physical layer and fit its twin; the twin's held-out
    relative error (RMS error over the outputs' RMS deviation) and the MACs it took."""
    config = net.config
    macs = 0
    with torch.no_grad():
        u = embed_neutral(x, net.layout.classes, config.label_value, net.layout.into)
        for block, backend in zip(net.blocks[:index], physical[:index], strict=True):
            m = measure(backend, u)
            block.standardize.update(block.reads(m, u))
            u = unit_rms(block(m, u))
            macs += len(x) * block.macs()
        inputs = torch.cat([u, _random_inputs(config.twin_random, u.shape[1], generator)])
        targets = measure(physical[index], inputs)
    order = torch.randperm(len(inputs), generator=generator)
    held = order[:max(1, int(HELD_OUT * len(inputs)))]
    fit = order[len(held):]
    twin = net.twins[str(index)]
    optimizer = torch.optim.Adam(twin.parameters(), lr=config.twin_lr)
    for _ in range(config.twin_epochs):
        for batch in fit[torch.randperm(len(fit), generator=generator)].split(config.batch_size):
            loss = F.mse_loss(twin(inputs[batch]), targets[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    macs += config.twin_epochs * len(fit) * (2 * twin.macs() + _mlp_macs([twin.second]))
    twin.requires_grad_(False)
    with torch.no_grad():
        error = twin(inputs[held]) - targets[held]
        spread = targets[held] - targets[held].mean(dim=0)
    macs += len(held) * twin.macs()
    return float(error.norm() / spread.norm()), macs


@dataclass
class PATResult:
    """A finished PAT run and what it cost, in the same terms as
    :class:`~hilt.host.train.mfff.MFFFResult`; per-sample figures divide by the training
    samples and the epochs."""

    config: PATConfig
    net: PATNet
    curves: TrainingCurves
    """``loss[e]``: the mean cross-entropy of epoch ``e``, alone in its tuple."""
    test_accuracy: float
    """After the last epoch (never the best epoch)."""
    queries: int
    """Physical queries of the twin fits and the training steps."""
    twin_queries: int
    """The part of :attr:`queries` that fitted the twins."""
    queries_per_sample: float
    """:attr:`queries` per training sample per epoch."""
    eval_queries: int
    """Physical queries of the per-epoch train and test accuracy measurements."""
    train_macs: int
    """Digital MACs of the twin fits and the training steps."""
    twin_macs: int
    """The part of :attr:`train_macs` that fitted the twins."""
    train_macs_per_sample: float
    """:attr:`train_macs` per training sample per epoch."""
    inference_macs: int
    """Digital MACs to classify one sample."""
    inference_queries: int
    """Physical queries to classify one sample."""
    twin_errors: dict[int, float]
    """Held-out relative error of each block's twin, by block index."""
    steps: int
    """Optimiser steps taken."""
    seconds: float
    """Wall time of the twin fits, the training and the per-epoch evaluations."""


def train_pat(split: Dataset, physical: Sequence[Backend | None],
              config: PATConfig | None = None, *, progress: bool = True) -> PATResult:
    """Fit the twins, then train a :class:`PATNet` end to end through ``physical``.

    ``physical`` holds one backend (or None) per block, as for
    :func:`~hilt.host.train.mfff.train_mfff`. Deterministic for ``config.seed``, given
    backends in the same state. ``progress`` shows a tqdm bar over the optimiser steps
    with the running loss and accuracy.
    """
    config = config or PATConfig()
    physical = list(physical)
    x_train, y_train, x_test, y_test = data_tensors(split)
    start = time.perf_counter()
    with seeded(config.seed) as generator:
        net = PATNet(config, physical, LabelLayout.of(split, config.label))
        before = physical_queries(physical)
        twin_errors, twin_macs = {}, 0
        for key in net.twins:
            twin_errors[int(key)], macs = _fit_twin(net, physical, int(key), x_train, generator)
            twin_macs += macs
        twin_queries = physical_queries(physical) - before
        parts = [*net.blocks, net.head]
        optimizer = torch.optim.Adam([p for part in parts for p in part.parameters()],
                                     lr=config.lr)
        queries = eval_queries = steps = 0

        def train_epoch(_: int, report: StepReport) -> tuple[float, ...]:
            nonlocal queries, steps
            total = 0.0
            order = torch.randperm(len(x_train), generator=generator).split(config.batch_size)
            for done, index in enumerate(order, start=1):
                before = physical_queries(physical)
                loss = F.cross_entropy(_logits(net, physical, x_train[index], train=True),
                                       y_train[index])
                queries += physical_queries(physical) - before
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach())
                steps += 1
                report(total / done)
            return (total / len(order),)

        def evaluate_epoch() -> tuple[float, float]:
            nonlocal eval_queries
            before = physical_queries(physical)
            measured = (evaluate(net, physical, x_train, y_train),
                        evaluate(net, physical, x_test, y_test))
            eval_queries += physical_queries(physical) - before
            return measured

        curves = run_epochs("pat", epochs=config.epochs,
                            steps_per_epoch=math.ceil(len(x_train) / config.batch_size),
                            train_epoch=train_epoch, evaluate=evaluate_epoch,
                            progress=progress)
    samples_epochs = len(x_train) * config.epochs
    train_macs = twin_macs + samples_epochs * net.step_macs()
    return PATResult(
        config=config, net=net, curves=curves, test_accuracy=curves.test_accuracy[-1],
        queries=twin_queries + queries, twin_queries=twin_queries,
        queries_per_sample=(twin_queries + queries) / samples_epochs,
        eval_queries=eval_queries, train_macs=train_macs, twin_macs=twin_macs,
        train_macs_per_sample=train_macs / samples_epochs,
        inference_macs=net.inference_macs(),
        inference_queries=sum(backend is not None for backend in physical),
        twin_errors=twin_errors, steps=steps, seconds=time.perf_counter() - start,
    )
