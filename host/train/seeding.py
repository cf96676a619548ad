"""A seeded run: every trainer's data, random generators and shuffles come from one seed,
so that the same seed gives the same run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from hilt.quant.datasets import Dataset


def data_tensors(data: Dataset) -> tuple[torch.Tensor, ...]:
    """``(x_train, y_train, x_test, y_test)`` as torch tensors, features scaled to [0, 1]
    by the data set's range."""
    return (
        torch.from_numpy(data.scaled("train")),
        torch.as_tensor(data.y_train, dtype=torch.long),
        torch.from_numpy(data.scaled("test")),
        torch.as_tensor(data.y_test, dtype=torch.long),
    )


@contextmanager
def seeded(seed: int) -> Iterator[torch.Generator]:
    """Run a block deterministically: one CPU thread and torch's RNG seeded, both restored after.

    Yields a generator, seeded from ``seed`` too, for shuffles and negative labels, so
    that the global RNG only serves parameter initialisation.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield torch.Generator().manual_seed(seed + 1)
    finally:
        torch.set_num_threads(threads)


def batches(n: int, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Indices 0..n-1 in a fresh random order, cut into batches of ``batch_size``
    (the last may be short)."""
    return torch.randperm(n, generator=generator).split(batch_size)
