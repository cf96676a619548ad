"""Forward-Forward with every weight in a synapse crossbar, trained by conductance pulses:
the host programs the crossbars once, then only measures them and sends each sample's
local update as stochastic coincident pulse trains. Scales, rules and costs are
explained in docs/training.md."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hilt.host.backends.base import Backend
from hilt.host.train.checks import (
    check_choice,
    check_indices,
    check_int,
    check_number,
    check_seed,
)
from hilt.host.train.crossbar_layer import UPDATES, CrossbarLayer, PulseCost, check_layers
from hilt.host.train.curves import TrainingCurves
from hilt.host.train.epochs import StepReport, run_epochs
from hilt.host.train.goodness import (
    GOODNESS_MODES,
    LOSSES,
    NEGATIVES,
    goodness,
    hard_negative_labels,
    local_loss,
    negative_labels,
    unit_rms,
)
from hilt.host.train.readout import Readout
from hilt.host.train.seeding import seeded
from hilt.quant.datasets import Dataset

RULES = ("bidirectional", "unidirectional")

"""How a weight change becomes pulses: G+ both ways against a fixed G-, or potentiation
of G+ or G- with refresh."""

STOCHASTIC_LR = {"bidirectional": 0.03, "unidirectional": 0.1}
"""The learning rate of stochastic pulse trains under each rule, picked as the defaults
were (by training accuracy at 64 x 74 on the board's cells); summed updates take
:attr:`PulseFFConfig.lr`'s default."""

CLASSIFIERS = ("goodness", "softmax")
"""How a trained net is read out: best label by goodness, or a digital softmax head."""



@dataclass(frozen=True)
class PulseFFConfig:
    """Everything a pulse-trained Forward-Forward run depends on.

    The defaults were picked on the iCEBreaker's crossbar cells (soft-bounds, 4-bit
    states) at 64 x 74, one layer, by training accuracy (the test split chose nothing):
    gains 2..16, learning rates 0.01..1 and final learning rates of a tenth or a
    thirtieth of them over 10 to 20 epochs; then the read-back update, which learns best
    on those cells (96.0% after 20 epochs, against 94.9% for mixed precision and 81.6%
    for stochastic pulses, unidirectional), and 100 epochs, as long as float
    Forward-Forward trains (98.9% after 100, 98.3% after 60).

    Attributes
    ----------
    rule
        "unidirectional" (the default: it learns best on the board's cells) or
        "bidirectional" (docs/training.md).
    update
        "stochastic" (each sample's update as coincident pulse trains), "mixed" (mixed
        precision: the host sums each weight's updates and pulses a cell once per whole
        nominal step the sum holds, keeping the remainder) or "readback" (the default:
        summed too, the crossbar read back every batch, and each cell sent the pulses
        its step table gives from the level it is at).
    epochs, batch_size, seed
        Passes over the training set, samples measured together, and the seed of the
        initial levels, shuffles, negative labels and pulse trains.
    lr
        Learning rate in weight units (docs/training.md) at the first epoch.
    lr_end
        Learning rate at the last epoch, reached geometrically; None: :attr:`lr`
        throughout.
    slots
        Slots per update ``T``; None: each crossbar's ``max_pulses``.
    gain
        Scale of the pre-activations (docs/training.md).
    label_value
        The label's one-hot entry as a fraction of ``in_high``, in (0, 1].
    init_std
        Standard deviation of the initial weights in weight units (normal, rounded to
        levels and clipped to the cells' range).
    goodness
        "mean" or "sum" of the squared activities of a layer.
    loss
        "symmetric" (on the positive/negative goodness gap) or "ff" (threshold loss).
    threshold
        Threshold of the "ff" loss; None: 1 for "mean", the width for "sum".
    alpha
        Sharpness of the "symmetric" loss; None: 4 for "mean", 4 / width for "sum".
    predict_layers
        Layers whose goodness is summed (or whose activities the head reads); None: all.
    classifier
        "goodness" or "softmax" (docs/training.md).
    head_lr
        Adam learning rate of the softmax head.
    negatives
        "random" (a uniform wrong label every batch) or "hard" (once per epoch, each
        training sample's wrong label drawn by how much the crossbars' goodness believes
        it, as :attr:`FFConfig.negatives <hilt.host.train.ff.FFConfig.negatives>`: one
        FORWARD pass per label over the training set, and no pulse).
    refresh_pulses
        Unidirectional rule: pulses a cell may receive before the crossbar is read back
        and refreshed; None: from its step tables
        (:data:`~hilt.host.train.crossbar_layer.REFRESH_FRACTION`).
    """

    rule: str = "unidirectional"
    update: str = "readback"
    epochs: int = 100
    batch_size: int = 32
    seed: int = 0
    lr: float = 0.3
    lr_end: float | None = 0.003
    slots: int | None = None
    gain: float = 8.0
    label_value: float = 1.0
    init_std: float = 0.5
    goodness: str = "mean"
    loss: str = "symmetric"
    threshold: float | None = None
    alpha: float | None = None
    predict_layers: tuple[int, ...] | None = None
    classifier: str = "goodness"
    head_lr: float = 0.01
    negatives: str = "random"
    refresh_pulses: int | None = None

    def __post_init__(self) -> None:
        check_choice("rule", self.rule, RULES)
        check_choice("update", self.update, UPDATES)
        check_int("epochs", self.epochs, 1)
        check_int("batch_size", self.batch_size, 1)
        check_seed(self.seed)
        check_number("lr", self.lr)
        check_number("lr_end", self.lr_end, allow_none=True)
        if self.slots is not None:
            check_int("slots", self.slots, 1)
        check_number("gain", self.gain)
        check_number("label_value", self.label_value, at_most=1.0)
        check_number("init_std", self.init_std)
        check_choice("goodness", self.goodness, GOODNESS_MODES)
        check_choice("loss", self.loss, tuple(LOSSES))
        check_number("threshold", self.threshold, allow_none=True)
        check_number("alpha", self.alpha, allow_none=True)
        object.__setattr__(self, "predict_layers",
                           check_indices("predict_layers", self.predict_layers, None))
        check_choice("classifier", self.classifier, CLASSIFIERS)
        check_number("head_lr", self.head_lr)
        check_choice("negatives", self.negatives, NEGATIVES)
        if self.refresh_pulses is not None:
            check_int("refresh_pulses", self.refresh_pulses, 1)

    def epoch_lr(self, epoch: int) -> float:
        """The learning rate of ``epoch`` (0-based): :attr:`lr` moving geometrically to
        :attr:`lr_end` at the last epoch, or :attr:`lr` throughout."""
        if self.lr_end is None or self.epochs == 1:
            return self.lr
        return self.lr * (self.lr_end / self.lr) ** (epoch / (self.epochs - 1))

    def layer_threshold(self, width: int) -> float:
        """The "ff" threshold of a layer ``width`` wide (see :attr:`threshold`)."""
        if self.threshold is not None:
            return float(self.threshold)
        return float(width) if self.goodness == "sum" else 1.0

    def layer_alpha(self, width: int) -> float:
        """The "symmetric" sharpness of a layer ``width`` wide (see :attr:`alpha`)."""
        if self.alpha is not None:
            return float(self.alpha)
        return 4.0 / (width if self.goodness == "sum" else 1)


def embed(features: np.ndarray, labels: np.ndarray | None, in_high: int, classes: int,
          label_value: float = 1.0) -> np.ndarray:
    """Layer 0's integer inputs: features in [0, 1] quantised to ``0..in_high`` and the
    label one-hot at ``round(label_value * in_high)``, or the neutral label (``1 / C`` of
    that, rounded, everywhere) where ``labels`` is None."""
    x = np.rint(np.asarray(features, dtype=np.float64) * in_high).astype(np.int64)
    level = label_value * in_high
    if labels is None:
        label = np.full((len(x), classes), round(level / classes), dtype=np.int64)
    else:
        label = np.eye(classes, dtype=np.int64)[np.asarray(labels)] * round(level)
    return np.concatenate([x, label], axis=1)


def _readout(config: PulseFFConfig, layers: int) -> tuple[int, ...]:
    chosen = config.predict_layers or tuple(range(layers))
    if max(chosen) >= layers:
        raise ValueError(f"predict_layers = {chosen!r}: the net has layers 0..{layers - 1}")
    return chosen


def as_readout(net: Sequence[CrossbarLayer], config: PulseFFConfig, classes: int,
               head: nn.Linear | None = None) -> Readout:
    """The crossbars as prediction reads them: one FORWARD call per layer for all the
    inputs, the read-out layers' goodness summed, or the head."""
    readout = _readout(config, len(net))

    def place(features: np.ndarray, labels: torch.Tensor | None) -> np.ndarray:
        chosen = None if labels is None else labels.numpy()
        return embed(features, chosen, net[0].in_high, classes, config.label_value)

    def read(x: np.ndarray) -> list[torch.Tensor]:
        acts = []
        for i, layer in enumerate(net):
            h = F.relu(layer.preactivations(x))
            if i in readout:
                acts.append(h)
            if i + 1 < len(net):
                x = net[i + 1].quantise(h)
        return acts

    return Readout(classes, place, read, config.goodness, head)


def predict(net: Sequence[CrossbarLayer], config: PulseFFConfig, features: np.ndarray,
            classes: int, head: nn.Linear | None = None) -> np.ndarray:
    """Predicted labels of ``features`` (N, F) in [0, 1]: by the head where given, else
    by goodness. Only measures: no pulse, no refresh."""
    return as_readout(net, config, classes, head).predict(features).numpy()


@dataclass
class PulseFFResult:
    """A finished pulse-trained Forward-Forward run and what it cost."""

    config: PulseFFConfig
    curves: TrainingCurves
    """``loss[e]``: the mean local loss of every layer, then the head's cross-entropy."""
    test_accuracy: float
    """After the last epoch (never the best one: the test set picks nothing)."""
    test_predictions: np.ndarray
    """The predicted labels of the test split after the last epoch."""
    cost: PulseCost
    samples_per_second: float
    """Training samples (each a positive and a negative input) per second of training,
    the per-epoch evaluation excluded."""
    seconds: float
    """Wall time of the whole run, programming and evaluations included."""
    head: nn.Linear | None = None
    layers: list[dict[str, Any]] = field(default_factory=list)
    """What each layer's backend is (its ``describe()``)."""

    @property
    def pulses(self) -> int:
        """Cell pulses of the whole run, both kinds (:attr:`cost` splits them)."""
        return self.cost.pulses


def _batch(net: Sequence[CrossbarLayer], config: PulseFFConfig, lr: float,
           pixels: np.ndarray, labels: np.ndarray, wrong: np.ndarray, classes: int,
           head: nn.Linear | None, optimizer: torch.optim.Optimizer | None,
           generator: np.random.Generator, cost: PulseCost) -> list[float]:
    """One batch of features ``pixels`` in [0, 1]: measure every layer once, send every
    sample's update, refresh where due, and step the head; returns the layers' (and
    head's) mean losses."""
    n = len(pixels)
    in_high, value = net[0].in_high, config.label_value
    x = np.concatenate([embed(pixels, labels, in_high, classes, value),
                        embed(pixels, wrong, in_high, classes, value)])
    neutral = embed(pixels, None, in_high, classes, value) if head is not None else None
    readout = _readout(config, len(net))
    losses, features, updates = [], [], []
    for i, layer in enumerate(net):
        parts = [x] if neutral is None else [x, neutral]
        a = layer.preactivations(np.concatenate(parts)).requires_grad_(True)
        g = goodness(F.relu(a[:2 * n]), config.goodness)
        loss = local_loss(config.loss, g[:n], g[n:], threshold=config.layer_threshold(layer.rows),
                          alpha=config.layer_alpha(layer.rows))
        (loss * n).backward()
        losses.append(float(loss.detach()))
        delta = a.grad[:2 * n].numpy() * (config.gain / math.sqrt(layer.cols))
        updates.append((layer, delta, x))
        h = F.relu(a.detach())
        if neutral is not None and i in readout:
            features.append(unit_rms(h[2 * n:]))
        if i + 1 < len(net):
            x = net[i + 1].quantise(h[:2 * n])
            if neutral is not None:
                neutral = net[i + 1].quantise(h[2 * n:])
    for layer, delta, inputs in updates:
        layer.update_pairs(delta, inputs, lr, generator, cost)
        layer.refresh_if_due(cost)
    if head is not None and optimizer is not None:
        head_loss = F.cross_entropy(head(torch.cat(features, dim=1).float()),
                                    torch.as_tensor(labels))
        optimizer.zero_grad(set_to_none=True)
        head_loss.backward()
        optimizer.step()
        losses.append(float(head_loss.detach()))
    return losses


@dataclass
class _Run:
    """A run's net and generators, and what it has measured and spent so far."""

    net: Sequence[CrossbarLayer]
    config: PulseFFConfig
    classes: int
    head: nn.Linear | None
    optimizer: torch.optim.Optimizer | None
    generator: np.random.Generator
    torch_generator: torch.Generator
    cost: PulseCost = field(default_factory=PulseCost)
    curves: TrainingCurves = field(default_factory=TrainingCurves)

    def epoch(self, epoch: int, x: np.ndarray, y: np.ndarray, batches: int,
              report: StepReport) -> tuple[float, ...]:
        """One pass over the shuffled training set; the mean loss of every layer (and
        of the head)."""
        hard = None
        if self.config.negatives == "hard":
            scores = as_readout(self.net, self.config, self.classes).label_goodness(x)
            hard = hard_negative_labels(scores, torch.as_tensor(y), self.torch_generator)
        order = torch.randperm(len(x), generator=self.torch_generator).numpy()
        totals = np.zeros(len(self.net) + (self.head is not None))
        for done, index in enumerate(np.array_split(order, batches), start=1):
            wrong = (negative_labels(torch.as_tensor(y[index]), self.classes,
                                     self.torch_generator) if hard is None else hard[index]).numpy()
            totals += _batch(self.net, self.config, self.config.epoch_lr(epoch), x[index],
                             y[index], wrong, self.classes, self.head, self.optimizer,
                             self.generator, self.cost)
            report(float(totals.sum()) / done)
        return tuple((totals / batches).tolist())


def train_pulse_ff(split: Dataset, layers: Sequence[Backend],
                   config: PulseFFConfig | None = None, *, progress: bool = True,
                   ) -> PulseFFResult:
    """Train a Forward-Forward net held in the synapse crossbars ``layers`` by pulses.

    Parameters
    ----------
    split
        The data set; its features are scaled to [0, 1] and quantised to the crossbar's
        inputs.
    layers
        One synapse crossbar backend per layer, input to output: layer 0 ``cols`` = the
        features and the classes,
        layer ``k`` ``cols`` = layer ``k - 1``'s ``rows`` (:func:`check_layers`). Their
        levels are programmed at the start and changed only by pulses (and refreshes).
    config
        The run's settings (:class:`PulseFFConfig`); deterministic for its seed.
    progress
        Show a tqdm bar over the batches with the running loss and accuracy.

    Raises
    ------
    BackendError
        A layer is not a synapse crossbar, or the widths do not chain.
    """
    config = config or PulseFFConfig()
    layers = list(layers)
    check_layers(layers, split.features, split.classes)
    classes = split.classes
    x_train, y_train = split.scaled("train"), np.asarray(split.y_train)
    x_test, y_test = split.scaled("test"), np.asarray(split.y_test)
    start = time.perf_counter()
    training = 0.0
    with seeded(config.seed) as torch_generator:
        generator = np.random.default_rng(config.seed)
        net = [CrossbarLayer(backend, unidirectional=config.rule == "unidirectional",
                             gain=config.gain, slots=config.slots,
                             refresh_pulses=config.refresh_pulses,
                             update=config.update) for backend in layers]
        readout = _readout(config, len(net))
        for layer in net:
            layer.program(generator.normal(0.0, config.init_std, (layer.rows, layer.cols)))
        head, optimizer = None, None
        if config.classifier == "softmax":
            head = nn.Linear(sum(net[i].rows for i in readout), classes)
            optimizer = torch.optim.Adam(head.parameters(), lr=config.head_lr)
        run = _Run(net, config, classes, head, optimizer, generator, torch_generator)
        batches = math.ceil(len(x_train) / config.batch_size)
        predictions = np.empty(0, dtype=np.int64)

        def train_epoch(epoch: int, report: StepReport) -> tuple[float, ...]:
            nonlocal training
            began = time.perf_counter()
            losses = run.epoch(epoch, x_train, y_train, batches, report)
            training += time.perf_counter() - began
            return losses

        def evaluate() -> tuple[float, float]:
            nonlocal predictions
            predictions = predict(net, config, x_test, classes, head)
            return (float(np.mean(predict(net, config, x_train, classes, head) == y_train)),
                    float(np.mean(predictions == y_test)))

        run_epochs("pulse-ff", epochs=config.epochs, steps_per_epoch=batches,
                   train_epoch=train_epoch, evaluate=evaluate, progress=progress,
                   curves=run.curves)
    curves = run.curves
    return PulseFFResult(
        config=config, curves=curves, test_accuracy=curves.test_accuracy[-1],
        test_predictions=predictions, cost=run.cost,
        samples_per_second=len(x_train) * config.epochs / training,
        seconds=time.perf_counter() - start, head=head,
        layers=[backend.describe() for backend in layers])
