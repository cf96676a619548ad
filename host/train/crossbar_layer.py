"""One network layer held in a synapse crossbar backend: its weight and input scales,
programming, measuring, pulsing under a rule, refreshing, and the checks that a stack
of crossbars can hold a Forward-Forward net."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

import numpy as np
import torch

from hilt.host.backends.base import Backend, BackendError
from hilt.host.protocol.synapse_layout import Slot
from hilt.host.train.goodness import unit_rms
from hilt.host.train.pulse_trains import (
    bit_mask,
    cell_pulses,
    count_pulses,
    pair_updates,
    pulse_trains,
    remove_common,
    trains_to_slots,
)

INPUT_CLIP_RMS = 3.0
"""Between layers, a unit-RMS activity of this many RMS is quantised to ``in_high``."""

REFRESH_FRACTION = 0.75
"""The default refresh count is the nominal pulses that lift a cell from level 0 to this
fraction of its range."""

UPDATES = ("stochastic", "mixed", "readback")
"""How an update reaches the cells: each sample's as stochastic pulse trains; in mixed
precision, summed on the host per weight and sent as whole nominal steps; or summed, and
sent as the pulses each cell's step table gives from the level it is read back at."""

PULSE_OPERATIONS = ("forward", "load", "pulse", "read_state")
"""What every layer's backend must do."""


@dataclass
class PulseCost:
    """What the updates of a run cost, all layers together (docs/training.md)."""

    potentiation: int = 0
    depression: int = 0
    slots: int = 0
    updates: int = 0
    reads: int = 0
    """Rows read back (READ frames), by refreshes and by read-back updates."""
    writes: int = 0
    """Rows reprogrammed (WRITE frames) by refreshes; the initial programming not counted."""
    refreshes: int = 0
    """Read-backs of a whole crossbar; each is followed by a reprogramming when any pair
    had a common part."""

    @property
    def pulses(self) -> int:
        """Cell pulses, both kinds."""
        return self.potentiation + self.depression


class CrossbarLayer:
    """One network layer held in a synapse crossbar backend: its scales, its rule, its
    refresh bookkeeping. The backend is checked and opened by the caller."""

    def __init__(self, backend: Backend, *, unidirectional: bool, gain: float,
                 slots: int | None = None, refresh_pulses: int | None = None,
                 update: str = "stochastic") -> None:
        params = backend.describe()["target"]["params"]
        self.backend = backend
        self.rows, self.cols = backend.out_features, backend.in_features
        self.max_level = (1 << params["state_bits"]) - 1
        self.half = (self.max_level + 1) // 2
        up, down = params["up"], params["down"]
        self.reference = min(range(self.max_level + 1), key=lambda s: (
            abs(up[s] - down[s]), abs(2 * s - self.max_level), s))
        self.in_high = (1 << (params["in_bits"] - 1)) - 1
        self.slots = slots or params["max_pulses"]
        if self.slots > params["max_pulses"]:
            raise BackendError(f"{backend.url}: slots = {self.slots} is more than its "
                               f"max_pulses = {params['max_pulses']}; accepted 1.."
                               f"{params['max_pulses']}, or None")
        self.unidirectional = unidirectional
        step = (up[0] if self.unidirectional
                else (up[self.reference] + down[self.reference]) / 2)
        if step <= 0:
            raise BackendError(f"{backend.url}: its cells do not move at the rule's working "
                               f"level, so no pulse can train it")
        self.dw = step / self.half
        self.y_unit = self.half * self.in_high * math.sqrt(self.cols) / gain
        self.refresh_pulses = refresh_pulses or _pulses_to(up, REFRESH_FRACTION)
        self.since_refresh = np.zeros((2, self.rows, self.cols), dtype=np.int64)
        if update not in UPDATES:
            raise ValueError(f"update = {update!r}: accepted {UPDATES}")
        self.update_mode = update
        self.pending = np.zeros((self.rows, self.cols))
        """Mixed precision and read-back: each weight's update not yet sent, in weight
        units."""
        self.after_up = _paths(up, self.max_level, self.slots, +1)
        self.after_down = _paths(down, self.max_level, self.slots, -1)
        """The level after ``k`` up (down) pulses from level ``s``: ``[s, k]``, ``k`` up to
        :attr:`slots`, by the step tables."""

    def program(self, weights: np.ndarray) -> None:
        """Program the initial weights (in weight units) as the rule lays them out."""
        levels = np.rint(np.asarray(weights) * self.half).astype(np.int64)
        if self.unidirectional:
            plus = np.clip(levels, 0, self.max_level)
            minus = np.clip(-levels, 0, self.max_level)
        else:
            plus = np.clip(self.reference + levels, 0, self.max_level)
            minus = np.full_like(plus, self.reference)
        self.backend.load(plus=plus, minus=minus)

    def preactivations(self, x: np.ndarray) -> torch.Tensor:
        """``a`` (float64) of the integer inputs ``x``, measured in one FORWARD call."""
        y = self.backend.forward(np.asarray(x, dtype=np.int64))
        return torch.as_tensor(y, dtype=torch.float64) / self.y_unit

    def quantise(self, h: torch.Tensor) -> np.ndarray:
        """The next layer's integer inputs from this layer's activities (docs/training.md)."""
        u = unit_rms(h)
        step = INPUT_CLIP_RMS / self.in_high
        return np.clip(np.rint(u.numpy() / step), 0, self.in_high).astype(np.int64)

    def update(self, delta: np.ndarray, x: np.ndarray, lr: float,
               generator: np.random.Generator, cost: PulseCost) -> None:
        """Send one update ``-lr delta_k x_k^T`` per row ``k`` of ``delta`` ((N, rows)) and
        ``x`` (inputs in units of ``in_high``, (N, cols)), all in one PULSE call, counted
        into ``cost``."""
        expected = lr / self.dw
        slots: list[Slot] = []
        for d, u in zip(delta, x, strict=True):
            trains = pulse_trains(d, u, expected=expected, slots=self.slots,
                                  generator=generator)
            sent = trains_to_slots(trains, unidirectional=self.unidirectional)
            if not sent:
                continue
            potentiation, depression = count_pulses(trains, unidirectional=self.unidirectional)
            cost.potentiation += potentiation
            cost.depression += depression
            cost.updates += 1
            slots += sent
            if self.unidirectional:
                self.since_refresh += np.stack(cell_pulses(trains))
        if slots:
            self.backend.pulse(slots)
            cost.slots += len(slots)

    def update_pairs(self, delta: np.ndarray, x: np.ndarray, lr: float,
                     generator: np.random.Generator, cost: PulseCost) -> None:
        """Send the updates of ``N`` positive and ``N`` negative samples (``delta`` and
        the integer inputs ``x`` stacked positive first, (2N, rows) and (2N, cols)) as
        the two rank-one updates per pair of :func:`pair_updates`, or, in mixed
        precision, add them to :attr:`pending` and send what has reached a step."""
        if self.update_mode != "stochastic":
            self.pending -= lr * (np.asarray(delta, dtype=np.float64).T
                                  @ (np.asarray(x, dtype=np.float64) / self.in_high))
            self.send_pending(cost)
            return
        n = len(delta) // 2
        deltas, inputs = pair_updates(delta[:n], delta[n:], x[:n] / self.in_high,
                                      x[n:] / self.in_high)
        self.update(deltas, inputs, lr, generator, cost)

    def send_pending(self, cost: PulseCost) -> None:
        """Send what :attr:`pending` holds. Mixed precision: every cell gets one pulse per
        whole nominal step its pending update holds (at most :attr:`slots`), the rest
        stays pending. Read-back: the crossbar is read, and every cell gets the pulses
        that its own step table says bring it nearest to where its pending update asks,
        from the level it is at; what those pulses move stays off the pending update."""
        if self.update_mode == "readback":
            count, moved = self._counts_from_levels(cost)
        else:
            count = np.clip(np.trunc(self.pending / self.dw), -self.slots, self.slots)
            count = count.astype(np.int64)
            moved = count * self.dw
        if count.any():
            self.pending -= moved
            self._pulse_counts(count, cost)

    def _counts_from_levels(self, cost: PulseCost) -> tuple[np.ndarray, np.ndarray]:
        """Read-back: the signed pulse count of every cell and the change in weight units
        it makes, from the levels read back now and the cells' step tables."""
        state = self.backend.read_state()
        cost.reads += self.rows
        want = self.pending * self.half
        raise_ = want > 0
        if self.unidirectional:
            level = np.where(raise_, state["plus"], state["minus"])
            path = self.after_up[level]
        else:
            level = state["plus"]
            path = np.where(raise_[..., None], self.after_up[level], self.after_down[level])
        change = np.abs(path - level[..., None])
        pulses = np.argmin(np.abs(change - np.abs(want)[..., None]), axis=-1)
        sign = np.where(raise_, 1, -1)
        moved = np.take_along_axis(change, pulses[..., None], axis=-1)[..., 0]
        return sign * pulses, sign * moved / self.half

    def _pulse_counts(self, count: np.ndarray, cost: PulseCost) -> None:
        """Pulse cell ``(i, j)`` ``|count[i, j]|`` times, raising its weight where the
        count is positive: in rounds of one slot a row, that row firing with the columns
        to move, those to lower marked negative."""
        slots = []
        for round_ in range(1, int(np.abs(count).max()) + 1):
            for row in np.flatnonzero(np.any(np.abs(count) >= round_, axis=1)):
                moved = np.abs(count[row]) >= round_
                lowered = moved & (count[row] < 0)
                slots.append(Slot(1 << int(row), 0, bit_mask(moved), bit_mask(lowered),
                                  self.unidirectional, False))
        # The protocol caps an update at max_pulses slots: end one every self.slots.
        slots = [slot._replace(last=(i + 1) % self.slots == 0 or i + 1 == len(slots))
                 for i, slot in enumerate(slots)]
        self.backend.pulse(slots)
        raised, lowered = int(np.maximum(count, 0).sum()), int(np.maximum(-count, 0).sum())
        cost.potentiation += raised + (lowered if self.unidirectional else 0)
        cost.depression += 0 if self.unidirectional else lowered
        cost.updates += math.ceil(len(slots) / self.slots)
        cost.slots += len(slots)
        if self.unidirectional:
            self.since_refresh += np.stack([np.maximum(count, 0), np.maximum(-count, 0)])

    def refresh_if_due(self, cost: PulseCost) -> None:
        """Unidirectional rule: read back and remove the common parts once some cell has
        received :attr:`refresh_pulses` since the last refresh."""
        if not self.unidirectional or self.since_refresh.max() < self.refresh_pulses:
            return
        state = self.backend.read_state()
        cost.refreshes += 1
        cost.reads += self.rows
        self.since_refresh[:] = 0
        plus, minus = state["plus"], state["minus"]
        if np.minimum(plus, minus).any():
            plus, minus = remove_common(plus, minus)
            self.backend.load(plus=plus, minus=minus)
            cost.writes += self.rows


def _paths(steps: Sequence[int], max_level: int, pulses: int, sign: int) -> np.ndarray:
    """``[s, k]``: the level after ``k`` pulses (``0..pulses``) from level ``s`` of a cell
    whose step at each level is ``steps``, moving up (``sign`` +1) or down (-1)."""
    paths = np.zeros((max_level + 1, pulses + 1), dtype=np.int64)
    paths[:, 0] = np.arange(max_level + 1)
    for k in range(1, pulses + 1):
        level = paths[:, k - 1]
        paths[:, k] = np.clip(level + sign * np.asarray(steps)[level], 0, max_level)
    return paths


def _pulses_to(up: Sequence[int], fraction: float) -> int:
    """Nominal up pulses from level 0 to ``fraction`` of the range (at least 1)."""
    top, level, pulses = len(up) - 1, 0, 0
    while level < fraction * top and up[level] > 0:
        level, pulses = level + up[level], pulses + 1
    return max(pulses, 1)


def _suggest(url: str, cols: int) -> str:
    """How to open a crossbar like ``url`` but ``cols`` wide."""
    scheme, _, rest = url.partition(":")
    if scheme not in ("golden", "cosim") or rest.startswith("socket://"):
        return f"a synapse crossbar with cols={cols}"
    name, _, query = rest.partition("?")
    options = dict(parse_qsl(query))
    options["cols"] = str(cols)
    return f"cols={cols}, e.g. {scheme}:{name}?{urlencode(options)}"


def check_layers(layers: Sequence[Backend], features: int, classes: int) -> None:
    """Refuse layers that cannot hold a pulse-trained FF net on ``features`` features and
    ``classes`` classes.

    Raises
    ------
    ValueError
        No layers, or an entry that is not a Backend.
    BackendError
        A backend cannot forward, load, pulse and read back (it is not a synapse
        crossbar), or its input width is not what the layer below gives; the message
        names the layer, both widths and the URL option that would fit.
    """
    if not layers:
        raise ValueError("layers is empty: give one synapse crossbar backend per layer")
    for i, backend in enumerate(layers):
        if not isinstance(backend, Backend):
            raise ValueError(f"layers[{i}] = {backend!r}: accepted a Backend")
        backend.require(*PULSE_OPERATIONS,
                        why=f"layer {i} of pulse-trained Forward-Forward keeps its weights "
                            f"in it")
        width = features + classes if i == 0 else layers[i - 1].out_features
        if backend.in_features != width:
            what = (f"{features} features + {classes} label entries" if i == 0
                    else f"layer {i - 1}'s {width} rows")
            raise BackendError(f"layer {i}: {backend.url} takes {backend.in_features} inputs "
                               f"but its input has {width} ({what}); open it with "
                               f"{_suggest(backend.url, width)}")
