"""Integer-exact golden model of the synapse cell and crossbar that the RTL must match bit for bit.

The float devices of :mod:`.synapse_device` become integers here: a cell holds a
level ``s`` in ``0..2**state_bits - 1``, and a pulse moves it by a step read from a
table indexed by the level itself (the nonlinear response curve, quantised), plus a
cycle-to-cycle noise drawn from an LFSR (:mod:`.lfsr`), saturating at both bounds::

    up pulse:    s' = clamp(s + up[s] + d, 0, S)
    down pulse:  s' = clamp(s - down[s] + d, 0, S)

The noise ``d = a - c`` is the difference of two ``noise_bits``-bit fields of the
cell pair's LFSR after it advanced ``2 * noise_bits`` shifts, so it is symmetric and
has zero mean. A crossbar holds ``rows x cols`` pairs (G+, G-); a read returns
``y_i = sum_j (G+_ij - G-_ij) x_j`` exactly, and an update is a burst of at most
``max_pulses`` slots in which pair (i, j) receives a pulse when both its row and its
column fire, towards a lower weight when exactly one of them is negative (the
outer-product scheme of stochastic pulse-train updates).
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike

from .lfsr import LFSR_TAPS, lfsr_seed
from .synapse_device import SynapseDevice
from .synapse_tables import MAX_STATE_BITS, StepTables, check_int

__all__ = [
    "MAX_IN_BITS",
    "MAX_STATE_BITS",
    "StepTables",
    "SynapseCrossbarModel",
    "next_state",
    "noise_from_lfsr",
    "step_tables_from_device",
]

MAX_IN_BITS = 16


def step_tables_from_device(device: SynapseDevice, state_bits: int) -> StepTables:
    """Quantise a float device's nominal response curve to integer step tables.

    Level ``s`` stands for the conductance ``w_min + s * (w_max - w_min) / S``; its up
    (down) entry is the nominal one-pulse change there, in levels, rounded to nearest.
    Variations are left out (``up_down`` is kept: it is part of the curve): the
    cycle-to-cycle noise of the integer cell comes from its LFSR instead. A device whose
    step is under half a level somewhere gets zero steps there, so pick ``state_bits``
    so that ``dw_min`` spans at least one level.
    """
    if not isinstance(device, SynapseDevice):
        raise TypeError(f"device must be a SynapseDevice, got {device!r}")
    levels = 1 << check_int("state_bits", state_bits, 2, MAX_STATE_BITS)
    lsb = device.conductance_range / (levels - 1)
    conductance = device.w_min + lsb * torch.arange(levels, dtype=torch.float64)
    up = (device.nominal_potentiate(conductance, 1) - conductance) / lsb
    down = (conductance - device.nominal_depress(conductance, 1)) / lsb
    top = levels - 1

    def table(steps: torch.Tensor) -> tuple[int, ...]:
        return tuple(int(v) for v in steps.round().clamp(0, top).to(torch.int64))

    return StepTables(state_bits, table(up), table(down))


def next_state(
    states: ArrayLike, down: ArrayLike, noise: ArrayLike, tables: StepTables
) -> np.ndarray:
    """Every cell after one pulse (down where ``down`` is true), with its ``noise`` added."""
    s = np.asarray(states, dtype=np.int64)
    if s.size and (s.min() < 0 or s.max() > tables.max_state):
        raise ValueError(
            f"states must be levels in 0..{tables.max_state}, got {s.min()}..{s.max()}"
        )
    up_steps = np.asarray(tables.up, dtype=np.int64)[s]
    down_steps = np.asarray(tables.down, dtype=np.int64)[s]
    moved = np.where(np.asarray(down, dtype=bool), s - down_steps, s + up_steps)
    return np.clip(moved + np.asarray(noise, dtype=np.int64), 0, tables.max_state)


def noise_from_lfsr(lfsr_state: ArrayLike, noise_bits: int) -> np.ndarray:
    """The noise ``a - c`` of the two low ``noise_bits`` fields of an advanced LFSR."""
    state = np.asarray(lfsr_state, dtype=np.int64)
    field = (1 << noise_bits) - 1
    return (state & field) - ((state >> noise_bits) & field)


def _advance(states: np.ndarray, width: int, steps: int) -> np.ndarray:
    """:func:`.lfsr.lfsr_advance` on an array of registers at once."""
    mask = (1 << width) - 1
    for _ in range(steps):
        feedback = np.zeros_like(states)
        for tap in LFSR_TAPS[width]:
            feedback ^= (states >> (tap - 1)) & 1
        states = ((states << 1) | feedback) & mask
    return states


def _bits(name: str, value: ArrayLike, length: int) -> np.ndarray:
    bits = np.asarray(value)
    if bits.shape != (length,):
        raise ValueError(f"{name} must have {length} entries, got shape {bits.shape}")
    if bits.dtype != bool and not np.isin(bits, (0, 1)).all():
        raise ValueError(f"{name} must hold 0/1 or bools, got {bits.tolist()}")
    return bits.astype(bool)


class SynapseCrossbarModel:
    """A ``rows x cols`` crossbar of integer synapse pairs, read and pulsed as the RTL does.

    Parameters
    ----------
    rows, cols : int
        Outputs and inputs; weight (i, j) is the pair ``(g_plus[i, j], g_minus[i, j])``.
    tables : StepTables
        The step tables every cell shares; they fix ``state_bits``.
    in_bits : int
        Width of the signed read inputs, 2..16.
    max_pulses : int
        Slots per update, >= 1: no cell receives more pulses than that in one update.
    noise_bits : int
        Width of each field of the cycle-to-cycle noise, 0 (default, no noise) up to
        ``state_bits`` and ``lfsr_bits // 2``.
    lfsr_bits : int
        Width of each pair's noise LFSR, one of :data:`.lfsr.LFSR_TAPS` (default 16).
    seed : int
        Seeds the pairs' LFSRs (:func:`.lfsr.lfsr_seed` of ``row * cols + col``).

    Attributes
    ----------
    g_plus, g_minus : np.ndarray
        int64 levels, all 0 after construction, as the RTL after reset.
    lfsr : np.ndarray or None
        Each pair's LFSR state, None without noise.
    potentiation_pulses, depression_pulses : np.ndarray
        Pulses each pair has received, both cells together.
    """

    def __init__(
        self,
        rows: int,
        cols: int,
        tables: StepTables,
        *,
        in_bits: int,
        max_pulses: int,
        noise_bits: int = 0,
        lfsr_bits: int = 16,
        seed: int = 0,
    ) -> None:
        self.rows = check_int("rows", rows, 1)
        self.cols = check_int("cols", cols, 1)
        if not isinstance(tables, StepTables):
            raise TypeError(f"tables must be StepTables, got {tables!r}")
        self.tables = tables
        self.in_bits = check_int("in_bits", in_bits, 2, MAX_IN_BITS)
        self.max_pulses = check_int("max_pulses", max_pulses, 1)
        if lfsr_bits not in LFSR_TAPS:
            raise ValueError(
                f"lfsr_bits must be one of {sorted(LFSR_TAPS)} (widths with known "
                f"maximal-length taps), got {lfsr_bits!r}"
            )
        self.lfsr_bits = lfsr_bits
        self.noise_bits = check_int(
            "noise_bits", noise_bits, 0, min(tables.state_bits, lfsr_bits // 2)
        )
        self.seed = check_int("seed", seed, 0)
        shape = (self.rows, self.cols)
        self.g_plus = np.zeros(shape, dtype=np.int64)
        self.g_minus = np.zeros(shape, dtype=np.int64)
        self.lfsr = None
        if self.noise_bits:
            seeds = [lfsr_seed(seed, index, lfsr_bits) for index in range(self.rows * self.cols)]
            self.lfsr = np.array(seeds, dtype=np.int64).reshape(shape)
        self.potentiation_pulses = np.zeros(shape, dtype=np.int64)
        self.depression_pulses = np.zeros(shape, dtype=np.int64)

    @property
    def acc_width(self) -> int:
        """Signed width that holds every read result exactly."""
        bound = self.tables.max_state * (1 << (self.in_bits - 1)) * self.cols
        return bound.bit_length() + 1

    def read(self, x: ArrayLike) -> np.ndarray:
        """``y_i = sum_j (G+_ij - G-_ij) x_j`` for one input vector of ``cols`` values."""
        x = np.asarray(x, dtype=np.int64)
        if x.shape != (self.cols,):
            raise ValueError(f"x must have cols={self.cols} entries, got shape {x.shape}")
        low, high = -(1 << (self.in_bits - 1)), (1 << (self.in_bits - 1)) - 1
        if x.min() < low or x.max() > high:
            raise ValueError(
                f"x must hold signed in_bits={self.in_bits} values in {low}..{high}, got "
                f"{x.min()}..{x.max()}"
            )
        return (self.g_plus - self.g_minus) @ x

    def _check_row(self, row: int) -> int:
        return check_int("row", row, 0, self.rows - 1)

    def program_row(self, row: int, plus: ArrayLike, minus: ArrayLike) -> None:
        """Set the levels of one row directly, as a reset or a refresh reprograms it."""
        row = self._check_row(row)
        for name, levels in (("plus", plus), ("minus", minus)):
            levels = np.asarray(levels, dtype=np.int64)
            if levels.shape != (self.cols,):
                raise ValueError(
                    f"{name} must have cols={self.cols} entries, got shape {levels.shape}"
                )
            if levels.min() < 0 or levels.max() > self.tables.max_state:
                raise ValueError(
                    f"{name} must hold levels in 0..{self.tables.max_state}, got "
                    f"{levels.min()}..{levels.max()}"
                )
        self.g_plus[row] = plus
        self.g_minus[row] = minus

    def row_state(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """Copies of one row's (G+, G-) levels, as a readback returns them."""
        row = self._check_row(row)
        return self.g_plus[row].copy(), self.g_minus[row].copy()

    def slot(
        self,
        row_fire: ArrayLike,
        row_neg: ArrayLike,
        col_fire: ArrayLike,
        col_neg: ArrayLike,
        *,
        unidirectional: bool,
    ) -> None:
        """One update slot: every pair whose row and column both fire receives one pulse.

        The pulse lowers the weight when exactly one of the row and column is negative.
        Bidirectionally it moves G+ up or down; unidirectionally it potentiates G+ to
        raise the weight and G- to lower it.
        """
        fire = np.outer(_bits("row_fire", row_fire, self.rows),
                        _bits("col_fire", col_fire, self.cols))
        lower = np.logical_xor.outer(_bits("row_neg", row_neg, self.rows),
                                     _bits("col_neg", col_neg, self.cols))
        noise = np.zeros(fire.shape, dtype=np.int64)
        if self.lfsr is not None:
            advanced = _advance(self.lfsr, self.lfsr_bits, 2 * self.noise_bits)
            self.lfsr = np.where(fire, advanced, self.lfsr)
            noise = noise_from_lfsr(self.lfsr, self.noise_bits)
        if unidirectional:
            plus_moves, minus_moves = fire & ~lower, fire & lower
            up = np.zeros(fire.shape, dtype=bool)
            self.g_plus = np.where(plus_moves, next_state(self.g_plus, up, noise, self.tables),
                                   self.g_plus)
            self.g_minus = np.where(minus_moves,
                                    next_state(self.g_minus, up, noise, self.tables),
                                    self.g_minus)
            self.potentiation_pulses += fire
        else:
            self.g_plus = np.where(fire, next_state(self.g_plus, lower, noise, self.tables),
                                   self.g_plus)
            self.potentiation_pulses += fire & ~lower
            self.depression_pulses += fire & lower

    def update(
        self, row_trains: ArrayLike, col_trains: ArrayLike, *, unidirectional: bool
    ) -> None:
        """One update: slot ``t`` fires row i when ``row_trains[t, i]`` is non-zero.

        Trains hold -1, 0 or +1 (fire negative, idle, fire positive), shaped
        ``(T, rows)`` and ``(T, cols)`` with ``T <= max_pulses``.
        """
        rows = np.asarray(row_trains, dtype=np.int64)
        cols = np.asarray(col_trains, dtype=np.int64)
        if rows.ndim != 2 or rows.shape[1] != self.rows:
            raise ValueError(f"row_trains must be shaped (T, rows={self.rows}), got {rows.shape}")
        if cols.ndim != 2 or cols.shape[1] != self.cols:
            raise ValueError(f"col_trains must be shaped (T, cols={self.cols}), got {cols.shape}")
        if rows.shape[0] != cols.shape[0]:
            raise ValueError(
                f"row_trains and col_trains must have the same number of slots, got "
                f"{rows.shape[0]} and {cols.shape[0]}"
            )
        if rows.shape[0] > self.max_pulses:
            raise ValueError(
                f"an update of {rows.shape[0]} slots exceeds max_pulses={self.max_pulses} "
                f"(split it into updates of at most {self.max_pulses} slots)"
            )
        for name, trains in (("row_trains", rows), ("col_trains", cols)):
            if not np.isin(trains, (-1, 0, 1)).all():
                raise ValueError(f"{name} must hold -1, 0 or +1, got {np.unique(trains).tolist()}")
        for row, col in zip(rows, cols, strict=True):
            self.slot(row != 0, row < 0, col != 0, col < 0, unidirectional=unidirectional)
