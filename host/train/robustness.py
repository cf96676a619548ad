"""How model-free Forward-Forward copes with physical layers that change under it.

A physical layer is not a fixed function: its parameters drift slowly while it is
used, and a bump of the setup can move them at once. Because MF-FF only ever uses
measurements of the system as it is now (and its standardisation statistics follow the
measurements), it should train through drift and recover from a bump by simply
training on. :func:`robustness_study` measures that in three steps:

1. train MF-FF against physical layers that drift during training (their URLs carry
   ``drift > 0``); report the test accuracy and how far each layer drifted;
2. bump every physical layer once (:meth:`PhysicalBackend.perturb`) and report the test
   accuracy of the trained network as it is, with no further training;
3. train on for a few epochs from the trained network, through the bumped layers, and
   report the test accuracy again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from hilt.host.backends.base import Backend
from hilt.host.backends.physical import PhysicalBackend
from hilt.host.train.checks import check_int
from hilt.host.train.mfff import MFFFConfig, evaluate, train_mfff
from hilt.host.train.seeding import data_tensors
from hilt.quant.datasets import Dataset


@dataclass
class RobustnessResult:
    """The numbers of one :func:`robustness_study`; accuracies are on the test set."""

    drift: list[float | None]
    """Each block's drift setting (relative random-walk step per measured batch), None
    for a block without a physical layer."""
    drift_change: list[float | None]
    """How far each physical layer's parameters moved during training, relative to their
    size before it (simulation ground truth, which a trainer never sees)."""
    trained_accuracy: float
    """After training through the drifting layers."""
    strength: float
    """Relative size of the bump applied to every physical layer after training."""
    perturbed_accuracy: float
    """The trained network right after the bump, no further training."""
    retrain_epochs: int
    retrained_accuracy: float
    """After ``retrain_epochs`` more epochs of MF-FF through the bumped layers."""
    retrain_queries: int
    """Physical queries of those epochs' training steps."""
    queries: int
    """Physical queries of the first training."""


def _parameters(backend: PhysicalBackend) -> np.ndarray:
    return np.concatenate([value.ravel() for _, value in
                           sorted(backend.system.parameters.items())])


def _relative_change(after: np.ndarray, before: np.ndarray) -> float:
    return float(np.linalg.norm(after - before) / np.linalg.norm(before))


def robustness_study(split: Dataset, physical: Sequence[Backend | None],
                     config: MFFFConfig | None = None, *, strength: float = 0.25,
                     retrain_epochs: int = 3, perturb_seed: int = 0,
                     progress: bool = True) -> RobustnessResult:
    """Train MF-FF through drifting layers, bump them, and train on (module docstring).

    Parameters
    ----------
    split
        The data set.
    physical
        One entry per block, as :func:`~hilt.host.train.mfff.train_mfff` takes them;
        every backend must be a :class:`PhysicalBackend` (something that can be bumped).
        Open them with ``drift`` in the URL (e.g. ``physical:optical?in=74&drift=0.001``)
        to train through drift.
    config
        The MF-FF run; the continued training uses the same settings for
        ``retrain_epochs`` epochs.
    strength
        Relative size of the bump (>= 0), see
        :meth:`~hilt.host.physical.system.PhysicalSystem.perturb`.
    retrain_epochs
        Epochs of continued training after the bump (>= 1).
    perturb_seed
        Seed of the bump's direction; block ``i`` uses ``perturb_seed + i``.
    progress
        Show the training runs' progress bars.
    """
    config = config or MFFFConfig()
    check_int("retrain_epochs", retrain_epochs, 1)
    check_int("perturb_seed", perturb_seed, 0)
    physical = list(physical)
    for i, backend in enumerate(physical):
        if backend is not None and not isinstance(backend, PhysicalBackend):
            raise ValueError(f"physical[{i}] = {backend!r}: a robustness study bumps its "
                             f"physical layers, so each must be a PhysicalBackend (open "
                             f"physical:optical or physical:acoustic) or None")
    layers = [(i, backend) for i, backend in enumerate(physical) if backend is not None]
    before = {i: _parameters(backend) for i, backend in layers}
    trained = train_mfff(split, physical, config, progress=progress)
    drift_change: list[float | None] = [None] * len(physical)
    for i, backend in layers:
        drift_change[i] = _relative_change(_parameters(backend), before[i])
    for i, backend in layers:
        backend.perturb(strength, seed=perturb_seed + i)
    _, _, x_test, y_test = data_tensors(split)
    perturbed = evaluate(trained.net, physical, x_test, y_test)
    retrained = train_mfff(split, physical, replace(config, epochs=retrain_epochs),
                           init=trained.net, progress=progress)
    return RobustnessResult(
        drift=[None if backend is None else backend.system.drift for backend in physical],
        drift_change=drift_change, trained_accuracy=trained.test_accuracy,
        strength=float(strength), perturbed_accuracy=perturbed,
        retrain_epochs=retrain_epochs, retrained_accuracy=retrained.test_accuracy,
        retrain_queries=retrained.queries, queries=trained.queries,
    )
