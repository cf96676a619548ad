"""The training loop the golden models' example networks share.

Each element's example MLP (:mod:`.pow2_mlp`, :mod:`.binary_mlp`) turns integer pixels
into its own float input and hands the rest to :func:`fit_classifier`.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn


def fit_classifier(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: ArrayLike,
    epochs: int,
    seed: int,
    lr: float,
    batch_size: int,
) -> list[float]:
    """Train any classifier in place with Adam and cross-entropy on float ``inputs``.

    Deterministic for a
    given seed and initial model: the seed drives the shuffle through its own generator,
    so the global torch RNG is left alone. Runs on one thread. Leaves the model in eval
    mode and returns the mean loss of each epoch.
    """
    targets = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    if len(inputs) != len(targets):
        raise ValueError(f"{len(inputs)} images but {len(targets)} labels")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    history = []
    # The matrices are tiny: a second thread never pays, and on a busy machine OpenMP's
    # waiting threads made training some 30 times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(epochs):
            order = torch.randperm(len(inputs), generator=generator)
            total = 0.0
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                optimizer.zero_grad()
                loss = loss_fn(model(inputs[batch]), targets[batch])
                loss.backward()
                optimizer.step()
                total += loss.item() * len(batch)
            history.append(total / len(inputs))
    finally:
        torch.set_num_threads(threads)
    model.eval()
    return history
