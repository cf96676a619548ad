"""A three-layer perceptron on the digits whose weights live on synapse device pairs.

"Three-layer" is read as the seed paper's input-hidden-output perceptron: 64 input
pixels, one hidden layer of tanh units (32 by default, enough for about 97% in float),
10 outputs, so two weight matrices. Each layer has a bias, held as one more weight
column fed by a constant 1, so every parameter sits on the devices. The loss is
softmax cross-entropy.

The host does the arithmetic of backpropagation in float on the weights it reads from
the devices, and hands each layer's change ``-lr * grad`` to a
:class:`~hilt.quant.synapse_rules.SynapseRule`, which turns it into pulses: the forward
pass always sees what the devices hold. With no device, the same loop keeps the weights
as float tensors and adds the change exactly (plain SGD), which is the float baseline:
same initial weights, data order, learning rate, batch size and epochs.

Every random choice comes from ``torch.Generator`` objects seeded from ``seed``
(initial weights, data order, and per layer the device spread and the rule's rounding),
so a run is reproducible and the global RNG is left alone.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from numpy.typing import ArrayLike

from .datasets import DIGITS_PIXEL_MAX, Dataset
from .synapse_device import SynapseDevice
from .synapse_rules import SynapseRule, UpdateStats

__all__ = ["MLPConfig", "TrainResult", "digits_inputs", "train_mlp"]


@dataclass(frozen=True)
class MLPConfig:
    """Network shape and training schedule, shared by the float baseline and device runs.

    The defaults are the seed paper's setting: per-sample updates (a crossbar applies one
    rank-one update per example), about 97% on the digits in float after 10 epochs.

    Attributes
    ----------
    hidden : int
        Hidden tanh units.
    epochs, batch_size : int
        Passes over the training split, and images per update.
    lr : float
        Learning rate of the gradient step ``-lr * grad``.
    weight_range : float
        The devices hold weights in ``±weight_range`` (the float baseline is unbounded).
    """

    hidden: int = 32
    epochs: int = 10
    batch_size: int = 1
    lr: float = 0.03
    weight_range: float = 1.0

    def __post_init__(self) -> None:
        for name in ("hidden", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("lr", "weight_range"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


@dataclass
class TrainResult:
    """The outcome of one training run.

    Attributes
    ----------
    accuracy : float
        Test accuracy after the last epoch, in [0, 1].
    curve : list of float
        Test accuracy after each epoch.
    losses : list of float
        Mean training loss of each epoch.
    stats : UpdateStats
        Pulses, resets and reads the updates spent (initial programming excluded; all
        zero for the float baseline).
    seconds : float
        Wall time of the run.
    """

    accuracy: float
    curve: list[float]
    losses: list[float]
    stats: UpdateStats = field(default_factory=UpdateStats)
    seconds: float = 0.0


def digits_inputs(pixels: ArrayLike) -> torch.Tensor:
    """Digits pixels (0..16) as float64 inputs in [0, 1], shape (N, 64)."""
    x = np.asarray(pixels)
    if x.ndim != 2 or x.shape[1] != 64:
        raise ValueError(f"pixels must have shape (N, 64), got {x.shape}")
    return torch.from_numpy(x.astype(np.float64) / DIGITS_PIXEL_MAX)


def _with_bias(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)


def _logits(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    return _with_bias(torch.tanh(_with_bias(x) @ w1.T)) @ w2.T


def _generator(seed: int, stream: int) -> torch.Generator:
    # Distinct streams of one seed never share a generator seed with another seed's.
    return torch.Generator().manual_seed(seed * 16 + stream)


class _FloatLayer:
    """A weight matrix held as a float tensor, updated by exact addition."""

    def __init__(self, weight: torch.Tensor) -> None:
        self.weight = weight.clone()

    def apply(self, delta: torch.Tensor) -> UpdateStats:
        self.weight = self.weight + delta
        return UpdateStats()


class _DeviceLayer:
    """A weight matrix held by a synapse pair and updated through a rule."""

    def __init__(self, rule: SynapseRule, device: SynapseDevice, weight: torch.Tensor,
                 weight_range: float, generator: torch.Generator) -> None:
        self.rule = rule
        self.pair = rule.new_pair(device, tuple(weight.shape), weight_range=weight_range,
                                  generator=generator, weights=weight)

    @property
    def weight(self) -> torch.Tensor:
        return self.pair.weight

    def apply(self, delta: torch.Tensor) -> UpdateStats:
        return self.rule.apply(self.pair, delta)


def train_mlp(
    split: Dataset,
    *,
    device: SynapseDevice | None = None,
    rule: SynapseRule | None = None,
    config: MLPConfig | None = None,
    seed: int = 0,
) -> TrainResult:
    """Train the perceptron on ``split``; on ``device`` through ``rule``, or in float.

    Give both ``device`` and ``rule`` for a device run, neither for the float baseline.
    Initial weights are uniform in ``±1 / sqrt(fan_in)`` (fan_in counting the bias).
    Runs on one thread and restores the thread count after.
    """
    if (device is None) != (rule is None):
        raise ValueError(
            f"device and rule must be given together (a device run) or both left out (the "
            f"float baseline), got device={device!r}, rule={rule!r}"
        )
    if device is not None and not isinstance(device, SynapseDevice):
        raise TypeError(f"device must be a SynapseDevice, got {device!r}")
    if rule is not None and not isinstance(rule, SynapseRule):
        raise TypeError(f"rule must be a SynapseRule, got {rule!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    config = MLPConfig() if config is None else config
    if not isinstance(config, MLPConfig):
        raise TypeError(f"config must be an MLPConfig, got {config!r}")

    started = time.perf_counter()
    x_train, x_test = digits_inputs(split.x_train), digits_inputs(split.x_test)
    y_train = torch.as_tensor(np.asarray(split.y_train), dtype=torch.int64)
    y_test = torch.as_tensor(np.asarray(split.y_test), dtype=torch.int64)
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise ValueError("split must hold as many labels as images in each part")

    init = _generator(seed, 0)
    shapes = [(config.hidden, 64 + 1), (10, config.hidden + 1)]
    initial = [(torch.rand(shape, generator=init, dtype=torch.float64) * 2 - 1)
               / math.sqrt(shape[1]) for shape in shapes]
    if device is None:
        layers = [_FloatLayer(w) for w in initial]
    else:
        layers = [_DeviceLayer(rule, device, w, config.weight_range, _generator(seed, 2 + i))
                  for i, w in enumerate(initial)]

    order_generator = _generator(seed, 1)
    stats = UpdateStats()
    curve: list[float] = []
    losses: list[float] = []
    threads = torch.get_num_threads()
    # The matrices are tiny: a second thread never pays (see training.fit_classifier).
    torch.set_num_threads(1)
    try:
        for _ in range(config.epochs):
            order = torch.randperm(len(x_train), generator=order_generator)
            total = 0.0
            for start in range(0, len(order), config.batch_size):
                batch = order[start : start + config.batch_size]
                weights = [layer.weight.clone().requires_grad_() for layer in layers]
                loss = torch.nn.functional.cross_entropy(
                    _logits(x_train[batch], *weights), y_train[batch]
                )
                loss.backward()
                for layer, w in zip(layers, weights, strict=True):
                    stats = stats + layer.apply(-config.lr * w.grad)
                total += loss.item() * len(batch)
            losses.append(total / len(x_train))
            with torch.no_grad():
                predicted = _logits(x_test, *(layer.weight for layer in layers)).argmax(1)
            curve.append(float((predicted == y_test).double().mean()))
    finally:
        torch.set_num_threads(threads)
    return TrainResult(curve[-1], curve, losses, stats, time.perf_counter() - started)
