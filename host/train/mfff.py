"""Model-free Forward-Forward (after Momeni et al., Science 2023): blocks of a physical
layer and a small digital layer, each digital layer trained by its own Forward-Forward
loss, while the physical layers are only ever run forward. Data flow, queries, MACs and
checkpoints are explained in docs/training.md."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hilt.host.backends.base import Backend
from hilt.host.train.blocks import (
    LABEL_PATHS,
    MAX_BLOCKS,
    build_blocks,
    check_physical,
    features_alone,
    measure,
    measure_block,
    physical_queries,
)
from hilt.host.train.checkpoint import restore_training, save_training
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
from hilt.host.train.goodness import (
    GOODNESS_MODES,
    LABEL_PLACES,
    LOSSES,
    LabelLayout,
    embed_label,
    embed_neutral,
    goodness,
    local_loss,
    negative_labels,
    unit_rms,
)
from hilt.host.train.readout import Readout
from hilt.host.train.seeding import data_tensors, seeded
from hilt.quant.datasets import Dataset

SCHEDULES = ("joint", "greedy")
"""How blocks take turns: all on every batch, or one after the other."""

CLASSIFIERS = ("softmax", "goodness")
"""How a trained net is read out: a softmax head on neutral-label activities, or goodness."""

MEAN_THRESHOLD = 1.0
"""Default "ff" threshold for "mean" goodness ("sum" uses the block width, as Hinton does)."""

SYMMETRIC_ALPHA = 4.0
"""Default sharpness of the symmetric loss per unit of mean goodness (/ width for "sum")."""

CHECKPOINT_NAME = "mfff.pt"
"""The one checkpoint file a run keeps in its ``checkpoint_dir`` (overwritten each time)."""


@dataclass(frozen=True)
class MFFFConfig:
    """Everything an MF-FF run depends on; the defaults are the tuned ones (``skip``, the
    label around block 0's layer, digital layers 128 wide and 70 epochs chosen on folds
    of the digits' training part, docs/training.md).

    Attributes
    ----------
    blocks
        Number of (physical layer, digital layer) blocks.
    hidden
        Width of every digital layer's output.
    skip
        The digital layer also sees the block input, next to the measurement.
    loss
        Local loss: "symmetric" (on the positive/negative goodness gap) or "ff"
        (Hinton's threshold loss).
    goodness
        "sum" or "mean" of the squared activities.
    threshold
        Threshold of the "ff" loss; None: the width for "sum", 1 for "mean".
    alpha
        Sharpness of the "symmetric" loss; None: 4 for "mean", 4 / width for "sum".
    schedule
        "joint" (every block on every batch) or "greedy" (one block after the other,
        each for ``epochs`` epochs).
    lr
        Adam learning rate of the digital layers and of the head (picked from 1e-3, 3e-3
        and 1e-2 on a validation split of the training set, optical layers, 20 epochs).
    epochs, batch_size, seed
        Epochs (per block with "greedy"), samples per step, and the seed of the
        initialisation, the shuffles and the negative labels.
    label_value
        Amplitude of the one-hot label (features are scaled to [0, 1]).
    label
        "append" (``F + C`` inputs to block 0) or "blank" (written into the ``C``
        features that vary least, ``F``).
    label_path
        "physical": block 0's physical layer measures the label with the features;
        "skip": it measures the ``F`` features alone, once a sample, and the label
        reaches its digital layer beside the measurement (needs ``skip`` and "append").
        None: "skip" where it can be, else "physical".
    classifier
        "softmax" (a head on the neutral-label activities) or "goodness" (best label).
    stats_momentum
        Weight of a new batch in the running measurement statistics, in (0, 1].
    """

    blocks: int = 2
    hidden: int = 128
    skip: bool = True
    loss: str = "symmetric"
    goodness: str = "mean"
    threshold: float | None = None
    alpha: float | None = None
    schedule: str = "joint"
    lr: float = 3e-3
    epochs: int = 70
    batch_size: int = 64
    seed: int = 0
    label_value: float = 1.0
    label: str = "append"
    label_path: str | None = None
    classifier: str = "softmax"
    stats_momentum: float = 0.1

    def __post_init__(self) -> None:
        check_int("blocks", self.blocks, 1, MAX_BLOCKS)
        check_int("hidden", self.hidden, 1, MAX_WIDTH)
        check_flag("skip", self.skip)
        check_choice("loss", self.loss, tuple(LOSSES))
        check_choice("goodness", self.goodness, GOODNESS_MODES)
        check_number("threshold", self.threshold, allow_none=True)
        check_number("alpha", self.alpha, allow_none=True)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_number("lr", self.lr)
        check_int("epochs", self.epochs, 1)
        check_int("batch_size", self.batch_size, 1)
        check_seed(self.seed)
        check_number("label_value", self.label_value)
        check_choice("label", self.label, LABEL_PLACES)
        if self.label_path is not None:
            check_choice("label_path", self.label_path, LABEL_PATHS)
        if self.label_path == "skip" and not (self.skip and self.label == "append"):
            raise ValueError(f"label_path = 'skip' takes the label around block 0's physical "
                             f"layer to its digital layer, so it needs skip = true and label "
                             f"= 'append' (got skip = {self.skip}, label = {self.label!r})")
        check_choice("classifier", self.classifier, CLASSIFIERS)
        check_number("stats_momentum", self.stats_momentum, at_most=1.0)

    def label_route(self) -> str:
        """Where block 0's label goes, "physical" or "skip" (:attr:`label_path`)."""
        if self.label_path is not None:
            return self.label_path
        return "skip" if self.skip and self.label == "append" else "physical"

    def block_threshold(self) -> float:
        """The "ff" loss threshold of every block (see :attr:`threshold`)."""
        if self.threshold is not None:
            return float(self.threshold)
        return float(self.hidden) if self.goodness == "sum" else MEAN_THRESHOLD

    def block_alpha(self) -> float:
        """The "symmetric" loss sharpness of every block (see :attr:`alpha`)."""
        if self.alpha is not None:
            return float(self.alpha)
        return SYMMETRIC_ALPHA / (self.hidden if self.goodness == "sum" else 1)

    def total_epochs(self) -> int:
        """Passes over the training set in the whole run (``blocks * epochs`` for "greedy")."""
        return self.epochs * (self.blocks if self.schedule == "greedy" else 1)

    def trained_blocks(self, epoch: int) -> tuple[int, ...]:
        """The blocks that take optimiser steps in ``epoch`` (0-based, of :meth:`total_epochs`)."""
        if self.schedule == "greedy":
            return (epoch // self.epochs,)
        return tuple(range(self.blocks))


class MFFFNet(nn.Module):
    """The trainable, digital part of an MF-FF network: one :class:`Block` per physical layer,
    and the softmax head if the config has one.

    The physical layers are not part of the module (they are not parameters and cannot be
    saved as such); every function that runs the net takes them as ``physical``, one
    entry per block, as :func:`check_physical` accepts.
    """

    def __init__(self, config: MFFFConfig, physical: Sequence[Backend | None],
                 layout: LabelLayout) -> None:
        super().__init__()
        self.config = config
        self.layout = layout
        self.blocks = build_blocks(config, physical, layout, config.label_route())
        self.head: nn.Linear | None = None
        if config.classifier == "softmax":
            self.head = nn.Linear(config.blocks * config.hidden, layout.classes)

    def inference_macs(self) -> int:
        """Digital MACs to classify one sample (docs/training.md)."""
        blocks = sum(block.macs() for block in self.blocks)
        if self.head is None:
            return self.layout.classes * blocks
        return blocks + self.head.in_features * self.head.out_features


def as_readout(net: MFFFNet, physical: Sequence[Backend | None]) -> Readout:
    """The net as prediction reads it, measuring through ``physical``: every block's
    goodness summed, or the softmax head on every block's activities."""
    layout, value, path = net.layout, net.config.label_value, net.config.label_route()

    def embed(x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if labels is None:
            return embed_neutral(x, layout.classes, value, layout.into)
        return embed_label(x, labels, layout.classes, value, layout.into)

    def read(u: torch.Tensor) -> list[torch.Tensor]:
        acts = []
        for i, (block, backend) in enumerate(zip(net.blocks, physical, strict=True)):
            h = block(measure_block(i, backend, u, layout, path), u)
            acts.append(h)
            u = unit_rms(h)
        return acts

    return Readout(layout.classes, embed, read, net.config.goodness, net.head)


@torch.no_grad()
def predict(net: MFFFNet, physical: Sequence[Backend | None], x: torch.Tensor) -> torch.Tensor:
    """Predicted labels (N,) for features ``x`` (N, F) in [0, 1], measured through ``physical``.

    The standardisation statistics stay as they are: predicting learns nothing.
    """
    if x.dim() != 2 or x.shape[1] != net.layout.features:
        raise ValueError(f"x must be (N, {net.layout.features}), the features the net was "
                         f"built for, got {tuple(x.shape)}")
    check_physical(physical, net.config.blocks, net.config.hidden, net.layout,
                   net.config.label_route())
    return as_readout(net, physical).predict(x)


def evaluate(net: MFFFNet, physical: Sequence[Backend | None], x: torch.Tensor,
             y: torch.Tensor) -> float:
    """Accuracy of ``net`` on features ``x`` (in [0, 1]) and labels ``y`` with the physical
    layers as they are now (drifted, perturbed), with no training."""
    return accuracy(predict(net, physical, x), y)


@dataclass
class MFFFResult:
    """A finished MF-FF run and what it cost.

    Per-sample figures divide by the training samples and, for training, the epochs
    (:meth:`MFFFConfig.total_epochs`).
    """

    config: MFFFConfig
    net: MFFFNet
    curves: TrainingCurves
    """``loss[e]``: one mean local loss per block (NaN while a "greedy" block is not
    trained), then the head's cross-entropy if there is one."""
    test_accuracy: float
    """After the last epoch (never the best epoch: the test set picks nothing)."""
    queries: int
    """Physical queries of the training steps, all backends together."""
    queries_per_sample: float
    """:attr:`queries` per training sample per epoch."""
    eval_queries: int
    """Physical queries of the per-epoch train and test accuracy measurements."""
    train_macs: int
    """Digital MACs of the training steps (docs/training.md)."""
    train_macs_per_sample: float
    """:attr:`train_macs` per training sample per epoch."""
    inference_macs: int
    """Digital MACs to classify one sample."""
    inference_queries: int
    """Physical queries to classify one sample."""
    steps: int
    """Optimiser steps taken (each one batch)."""
    seconds: float
    """Wall time of the training and the per-epoch evaluations, summed over resumptions."""
    train_seconds: float
    """Wall time of the optimiser steps alone (measuring, computing, updating), summed
    over resumptions."""
    samples_trained: int
    """Training samples the steps went through, epochs together."""

    @property
    def samples_per_second(self) -> float:
        """Training samples per second of :attr:`train_seconds`."""
        return self.samples_trained / self.train_seconds if self.train_seconds else math.nan


def _train_step(net: MFFFNet, physical: Sequence[Backend | None], x: torch.Tensor,
                y: torch.Tensor, trained: tuple[int, ...],
                generator: torch.Generator) -> tuple[list[torch.Tensor | None], int]:
    """The losses of one batch (per block, None for an untrained one, then the head's)
    and the digital MACs it took; updates the standardisation statistics, no optimiser step."""
    config = net.config
    n, value, c, into = len(x), config.label_value, net.layout.classes, net.layout.into
    wrong = negative_labels(y, c, generator)
    signed = torch.cat([embed_label(x, y, c, value, into), embed_label(x, wrong, c, value, into)])
    neutral = embed_neutral(x, c, value, into) if net.head is not None else None
    last_signed = max(trained)
    losses: list[torch.Tensor | None] = [None] * len(net.blocks)
    features = []
    macs = 0
    for i, (block, backend) in enumerate(zip(net.blocks, physical, strict=True)):
        parts = ([signed] if i <= last_signed else []) + ([neutral] if neutral is not None else [])
        if not parts:
            break
        inputs = torch.cat(parts)
        if backend is not None and features_alone(i, config.label_route()):
            # Every part is x with some label: the layer measures x once.
            m = measure(backend, x).repeat(len(inputs) // n, 1)
        else:
            m = measure(backend, inputs)
        block.standardize.update(block.reads(m, inputs))
        if i <= last_signed:
            if i in trained:
                h = block(m[:2 * n], signed)
                g = goodness(h, config.goodness)
                losses[i] = local_loss(config.loss, g[:n], g[n:],
                                       threshold=config.block_threshold(),
                                       alpha=config.block_alpha())
                macs += 2 * (2 * n) * block.macs()
            else:
                with torch.no_grad():
                    h = block(m[:2 * n], signed)
                macs += 2 * n * block.macs()
            signed = unit_rms(h).detach()
        if neutral is not None:
            with torch.no_grad():
                neutral = unit_rms(block(m[-n:], neutral))
            features.append(neutral)
            macs += n * block.macs()
    if net.head is not None:
        losses.append(F.cross_entropy(net.head(torch.cat(features, dim=1)), y))
        macs += 2 * n * net.head.in_features * net.head.out_features
    return losses, macs


@dataclass
class _Run:
    """Where a run is and what it has counted: everything but the modules that a
    checkpoint must bring back."""

    step: int = 0
    epoch: int = 0
    batch: int = 0
    order: torch.Tensor | None = None
    totals: list[float] | None = None
    queries: int = 0
    eval_queries: int = 0
    train_macs: int = 0
    seconds: float = 0.0
    train_seconds: float = 0.0
    curves: TrainingCurves | None = None

    def state(self) -> dict[str, Any]:
        state = {key: getattr(self, key) for key in ("step", "epoch", "batch", "order",
                                                     "totals", "queries", "eval_queries",
                                                     "train_macs", "seconds",
                                                     "train_seconds")}
        state["curves"] = asdict(self.curves)
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _Run:
        return cls(**{**state, "curves": TrainingCurves(**state["curves"])})


def _optimise(net: MFFFNet, physical: Sequence[Backend | None],
              optimizers: Sequence[torch.optim.Optimizer], x: torch.Tensor, y: torch.Tensor,
              trained: tuple[int, ...], generator: torch.Generator, run: _Run) -> None:
    """One optimiser step of the trained blocks and the head on a batch, counted in ``run``."""
    before = physical_queries(physical)
    losses, macs = _train_step(net, physical, x, y, trained, generator)
    run.queries += physical_queries(physical) - before
    run.train_macs += macs
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    torch.stack([loss for loss in losses if loss is not None]).sum().backward()
    for optimizer, loss in zip(optimizers, losses, strict=True):
        if loss is not None:
            optimizer.step()
    run.totals = [total + (math.nan if loss is None else float(loss.detach()))
                  for total, loss in zip(run.totals, losses, strict=True)]
    run.batch += 1
    run.step += 1


def _checkpoint_config(config: MFFFConfig, physical: Sequence[Backend | None],
                       data: Dataset) -> dict[str, Any]:
    return {"algorithm": "mf-ff", **asdict(config), "dataset": data.name,
            "train_samples": len(data.y_train), "features": data.features,
            "classes": data.classes,
            "physical": [None if backend is None else backend.url for backend in physical]}


def _check_run_options(checkpoint_dir: object, checkpoint_every: object, resume: object) -> None:
    if checkpoint_every is not None:
        check_int("checkpoint_every", checkpoint_every, 1)
    check_flag("resume", resume)
    if (checkpoint_every is not None or resume) and checkpoint_dir is None:
        raise ValueError("checkpoint_every and resume need a checkpoint_dir to write to or "
                         "resume from")


def train_mfff(split: Dataset, physical: Sequence[Backend | None],
               config: MFFFConfig | None = None, *, progress: bool = True,
               checkpoint_dir: str | Path | None = None, checkpoint_every: int | None = None,
               resume: bool = False, init: MFFFNet | None = None,
               on_step: Callable[[int], None] | None = None) -> MFFFResult:
    """Train an :class:`MFFFNet` by model-free Forward-Forward through ``physical``.

    Parameters
    ----------
    split
        The data set; features are scaled to [0, 1] by its range.
    physical
        One entry per block: a backend whose input width is the block's (the features
        and the label for block 0, :class:`~hilt.host.train.goodness.LabelLayout`;
        ``hidden`` after), or None for a block without a physical layer.
    config
        The run's settings (:class:`MFFFConfig`); deterministic for its seed, given
        backends in the same state.
    progress
        Show a tqdm bar over the optimiser steps with the running loss and accuracy.
    checkpoint_dir, checkpoint_every
        Write the run state to ``checkpoint_dir/mfff.pt`` every ``checkpoint_every``
        optimiser steps (docs/training.md).
    resume
        Continue from the checkpoint in ``checkpoint_dir`` if there is one (else start
        afresh); the backends must be those of the checkpointed run (same URLs).
    init
        Start from these digital parameters and statistics (continued training, e.g.
        after the physical layers changed), with fresh optimisers; it is not modified.
    on_step
        Called with the step number after every optimiser step (and its checkpoint).

    Raises
    ------
    CheckpointError
        ``resume`` found a checkpoint that is damaged or from another run.
    """
    config = config or MFFFConfig()
    physical = list(physical)
    _check_run_options(checkpoint_dir, checkpoint_every, resume)
    x_train, y_train, x_test, y_test = data_tensors(split)
    ckpt_config = _checkpoint_config(config, physical, split)
    path = None if checkpoint_dir is None else Path(checkpoint_dir) / CHECKPOINT_NAME
    start = time.perf_counter()
    with seeded(config.seed) as generator:
        net = MFFFNet(config, physical, LabelLayout.of(split, config.label))
        if init is not None:
            try:
                net.load_state_dict(copy.deepcopy(init.state_dict()))
            except RuntimeError as error:
                raise ValueError(f"init does not fit the config (blocks, hidden, skip, "
                                 f"classifier and widths must match): {error}") from None
        parts = [*net.blocks, *([net.head] if net.head is not None else [])]
        optimizers = [torch.optim.Adam(part.parameters(), lr=config.lr) for part in parts]
        run = _Run(curves=TrainingCurves())
        if resume and path.exists():
            run = restore_training(path, ckpt_config, net=net, optimizers=optimizers,
                                   generator=generator, backends=physical,
                                   run_from=_Run.from_state)
        steps_per_epoch = math.ceil(len(x_train) / config.batch_size)

        def train_epoch(epoch: int, report: StepReport) -> tuple[float, ...]:
            nonlocal start
            if run.order is None:
                run.order = torch.randperm(len(x_train), generator=generator)
                run.batch, run.totals = 0, [0.0] * len(optimizers)
            trained = config.trained_blocks(epoch)
            order = run.order.split(config.batch_size)
            while run.batch < len(order):
                index = order[run.batch]
                step_start = time.perf_counter()
                _optimise(net, physical, optimizers, x_train[index], y_train[index],
                          trained, generator, run)
                run.train_seconds += time.perf_counter() - step_start
                report(float(np.nansum(run.totals)) / run.batch)
                if checkpoint_every is not None and run.step % checkpoint_every == 0:
                    run.seconds += time.perf_counter() - start
                    start = time.perf_counter()
                    save_training(path, ckpt_config, step=run.step, net=net,
                                  optimizers=optimizers, generator=generator,
                                  backends=physical, run=run.state())
                if on_step is not None:
                    on_step(run.step)
            return tuple(total / len(order) for total in run.totals)

        def evaluate_epoch() -> tuple[float, float]:
            before = physical_queries(physical)
            measured = (evaluate(net, physical, x_train, y_train),
                        evaluate(net, physical, x_test, y_test))
            run.eval_queries += physical_queries(physical) - before
            return measured

        def end_epoch(epoch: int) -> None:
            run.epoch, run.order = epoch + 1, None

        run_epochs("mf-ff", epochs=config.total_epochs(), steps_per_epoch=steps_per_epoch,
                   train_epoch=train_epoch, evaluate=evaluate_epoch, progress=progress,
                   curves=run.curves, first_epoch=run.epoch, first_step=run.step,
                   end_epoch=end_epoch)
    run.seconds += time.perf_counter() - start
    samples_epochs = len(x_train) * config.total_epochs()
    physical_blocks = sum(backend is not None for backend in physical)
    return MFFFResult(
        config=config, net=net, curves=run.curves,
        test_accuracy=run.curves.test_accuracy[-1],
        queries=run.queries, queries_per_sample=run.queries / samples_epochs,
        eval_queries=run.eval_queries,
        train_macs=run.train_macs, train_macs_per_sample=run.train_macs / samples_epochs,
        inference_macs=net.inference_macs(),
        inference_queries=physical_blocks * (1 if net.head is not None else split.classes),
        steps=run.step, seconds=run.seconds, train_seconds=run.train_seconds,
        samples_trained=samples_epochs,
    )
