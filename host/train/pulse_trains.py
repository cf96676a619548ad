"""How a layer's weight change becomes pulses: stochastic coincident pulse trains (a
cell pulses when its row and its column both fire in a slot), the slots the wire
protocol carries, and what they cost."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from hilt.host.protocol.synapse_layout import Slot


class PulseTrains(NamedTuple):
    """One update as pulse trains: which rows and columns fire in each of ``T`` slots,
    and which are negative (the same in every slot)."""

    row_fire: np.ndarray
    """(T, rows) bool."""
    row_neg: np.ndarray
    """(rows,) bool: the row's weights should fall (``delta_i > 0``)."""
    col_fire: np.ndarray
    """(T, cols) bool."""
    col_neg: np.ndarray
    """(cols,) bool: the input is negative."""


def pulse_trains(delta: np.ndarray, x: np.ndarray, *, expected: float, slots: int,
                 generator: np.random.Generator) -> PulseTrains:
    """Stochastic pulse trains for the change ``-expected * delta x^T`` in pulses.

    Cell ``(i, j)`` gets ``expected * |delta_i| * |x_j|`` coincidences on average over the
    ``slots`` slots (fewer where a firing probability is capped at 1), lowering the weight
    where ``delta_i * x_j > 0`` (docs/training.md).
    """
    delta, x = np.asarray(delta, dtype=np.float64), np.asarray(x, dtype=np.float64)
    top_d, top_x = float(np.abs(delta).max(initial=0)), float(np.abs(x).max(initial=0))
    row_draws = generator.random((slots, len(delta)))
    col_draws = generator.random((slots, len(x)))
    if top_d == 0 or top_x == 0:
        p, q = np.zeros(len(delta)), np.zeros(len(x))
    else:
        m = math.sqrt(expected * top_d * top_x / slots)
        p = np.minimum(1.0, np.abs(delta) * (m / top_d))
        q = np.minimum(1.0, np.abs(x) * (m / top_x))
    return PulseTrains(row_draws < p, delta > 0, col_draws < q, x < 0)


def bit_mask(bits: np.ndarray) -> int:
    """Bit i of the result is ``bits[i]``."""
    return int.from_bytes(np.packbits(bits, bitorder="little").tobytes(), "little")


def trains_to_slots(trains: PulseTrains, *, unidirectional: bool) -> list[Slot]:
    """The update's slots, without those in which no cell is pulsed; the last has
    ``last=True``. Empty if no cell is pulsed at all."""
    row_neg, col_neg = bit_mask(trains.row_neg), bit_mask(trains.col_neg)
    slots = [Slot(bit_mask(rows), row_neg & bit_mask(rows), bit_mask(cols),
                  col_neg & bit_mask(cols), unidirectional, False)
             for rows, cols in zip(trains.row_fire, trains.col_fire, strict=True)
             if rows.any() and cols.any()]
    if slots:
        slots[-1] = slots[-1]._replace(last=True)
    return slots


def count_pulses(trains: PulseTrains, *, unidirectional: bool) -> tuple[int, int]:
    """``(potentiation, depression)`` cell pulses of an update: per slot,
    ``popcount(row_fire) * popcount(col_fire)`` coincidences; bidirectionally those with
    exactly one negative side depress, unidirectionally every one potentiates a cell."""
    rows, cols = trains.row_fire, trains.col_fire
    total = int((rows.sum(axis=1) * cols.sum(axis=1)).sum())
    if unidirectional:
        return total, 0
    down = ((rows & trains.row_neg).sum(axis=1) * (cols & ~trains.col_neg).sum(axis=1)
            + (rows & ~trains.row_neg).sum(axis=1) * (cols & trains.col_neg).sum(axis=1))
    depression = int(down.sum())
    return total - depression, depression


def cell_pulses(trains: PulseTrains) -> tuple[np.ndarray, np.ndarray]:
    """Coincidences per cell that raise and that lower its weight, each (rows, cols)."""
    counts = trains.row_fire.T.astype(np.int64) @ trains.col_fire.astype(np.int64)
    lower = np.logical_xor.outer(trains.row_neg, trains.col_neg)
    return np.where(lower, 0, counts), np.where(lower, counts, 0)


def pair_updates(delta_pos: np.ndarray, delta_neg: np.ndarray, x_pos: np.ndarray,
                 x_neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The positive and negative updates of each sample as two rank-one updates whose
    sum is the same, ``d_p x_p^T + d_n x_n^T = s S^T + t T^T`` with ``s = d_p + d_n``,
    ``S = (x_p + x_n) / 2``, ``t = d_p - d_n``, ``T = (x_p - x_n) / 2``.

    Where the two inputs agree (the pixels of layer 0), their opposite changes cancel
    here rather than as up and down pulses on the same cells, which on a soft-bounds
    cell would pull the weight towards its symmetric point; ``T`` holds only what
    differs (the two label entries of layer 0). Returns ``(deltas, inputs)`` with the
    sum updates first, ``(2N, rows)`` and ``(2N, cols)``.
    """
    deltas = np.concatenate([delta_pos + delta_neg, delta_pos - delta_neg])
    inputs = np.concatenate([(x_pos + x_neg) / 2, (x_pos - x_neg) / 2])
    return deltas, inputs


def remove_common(plus: np.ndarray, minus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(G+, G-)`` with their common part ``min(G+, G-)`` removed: ``G+ - G-`` is kept and
    the lower cell of every pair goes to 0."""
    common = np.minimum(plus, minus)
    return plus - common, minus - common
