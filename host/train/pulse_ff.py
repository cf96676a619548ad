"""Forward-Forward with every weight in a synapse crossbar, trained by conductance pulses.

Each layer of the network is one synapse crossbar backend (``golden:``, ``cosim:`` or a
real board, ``pe=synapse``): its weights are the level differences ``G+ - G-`` of the
crossbar's cells. The host programs them once, then only measures (FORWARD) and pulses
(PULSE): it computes each layer's Forward-Forward update from the integer results it
reads and sends it as stochastic coincident pulse trains, as an analog array is trained
in place. Layer 0 takes the ``F`` features and the ``C`` label entries (``cols = F + C``);
layer ``k > 0`` the activities of layer ``k - 1`` (``cols`` = its ``rows``).

Inputs
    A crossbar reads signed ``in_bits`` integers up to ``in_high = 2**(in_bits-1) - 1``.
    Features scaled to [0, 1] become ``round(feature * in_high)`` and the label's one-hot
    entry ``round(label_value * in_high)`` (the neutral label, for the softmax head,
    ``1 / C`` of that everywhere). Between layers the activities are length-normalised to unit
    root mean square, as :mod:`hilt.host.train.ff` does (their length is the goodness
    the layer below already judged), and quantised with ``in_high`` at
    :data:`INPUT_CLIP_RMS` times the RMS: the bulk keeps its resolution, the rare larger
    values clip. Activities are non-negative, so the negative half of the range is unused.

Weights and activities
    A weight is counted in half ranges, ``w = (G+ - G-) / 2**(state_bits-1)`` (so about
    -1..1 at any state width), an input in units of ``in_high`` (``x~ = x / in_high``),
    and the pre-activation of row ``i`` is the fixed scale
    ``a_i = gain * y_i / (2**(state_bits-1) * in_high * sqrt(cols))`` of its integer
    result: the dot product of ``w`` and ``x~`` over the square root of the fan-in, as in
    He initialisation, times :attr:`PulseFFConfig.gain`. Activities are ``h = relu(a)``.

Goodness and loss
    ``"mean"`` goodness (the mean square over a layer), so one sharpness fits every
    width, and by default the symmetric loss of :mod:`~hilt.host.train.goodness` (as
    model-free FF uses it): it pushes positive and negative goodness apart without a
    threshold, which suits weights that the cells bound. The threshold loss ``"ff"``
    (threshold 1) is there too.

Update
    Per sample the gradient of a layer's local loss is rank one, ``dL/dw = delta x~^T``
    with ``delta = dL/da * gain / sqrt(cols)``. The host wants ``Delta w = -lr delta
    x~^T``: ``n_ij = lr |delta_i| |x~_j| / dw`` pulses on pair ``(i, j)``, ``dw`` being
    one pulse's nominal step in weight units, from the crossbar's step tables (the mean
    of the up and down step at the reference for the bidirectional rule, the up step at
    level 0 for the unidirectional one). It sends ``T`` slots
    (:attr:`PulseFFConfig.slots`, at most ``max_pulses``) in which row ``i`` fires with
    probability ``p_i = A |delta_i|`` and column ``j`` with ``q_j = B |x~_j|``, so that
    ``T p_i q_j = n_ij`` on average (Gokmen and Vlasov, 2016); ``A`` and ``B`` make the
    largest ``p`` equal the largest ``q`` (update management), and both are capped at 1
    (a very large update saturates at ``T`` pulses a cell). Rows with ``delta_i > 0`` are
    negative (``row_neg``), as are negative inputs (``col_neg``): a coincidence lowers
    the weight when exactly one side is. Slots in which no row or no column fires change
    nothing and are not sent. The draws come from one numpy generator seeded by the
    run's seed, so a run is reproducible and sends the same bytes to ``golden:`` and
    ``cosim:``. The learning rate may fall geometrically over the epochs
    (:attr:`PulseFFConfig.lr_end`): a pulse is a coarse step, and fewer of them late
    in the run leave the weights where the run took them.

    A batch is measured once per layer, all its positive and negative inputs in one
    FORWARD call, with the weights as they were at its start; then each sample is sent
    as its own updates, all of a layer's in one PULSE call. A sample's positive and
    negative updates go as their sum and difference (:func:`pair_updates`), two
    rank-one updates with the same total: the pixels, which both inputs share, get the
    net change only, instead of up and down pulses that cancel on average but, on the
    board's soft-bounds cells, pull every weight towards the cells' symmetric point.

Rules (:attr:`PulseFFConfig.rule`)
    ``"bidirectional"``: ``G-`` is programmed once to a reference level and never
    touched again; ``G+`` moves up and down (``unidirectional=False`` slots). The
    reference is the cells' symmetric point, the level whose up and down steps are the
    closest (nearest the middle): under pulses that balance, a soft-bounds ``G+`` drifts
    there, and a reference elsewhere would drift every weight to a common offset, which
    the all-positive inputs turn into a shift of every pre-activation.
    ``"unidirectional"``: potentiation only, ``G+`` to raise a weight and ``G-`` to lower
    it (``unidirectional=True`` slots), so the down step never matters, but both cells
    climb. The host counts the pulses each cell received since the last refresh; after
    a batch in which one reached :attr:`PulseFFConfig.refresh_pulses` (by default the
    nominal pulses from level 0 to :data:`REFRESH_FRACTION` of the range), it reads the
    crossbar back (READ, one a row) and, where a pair has a common part
    ``min(G+, G-) > 0``, reprograms the crossbar (WRITE, one a row) with ``G+ - G-``
    kept and the common part removed (:func:`remove_common`).

Classifier (:attr:`PulseFFConfig.classifier`)
    ``"goodness"`` (the default): the label whose embedding gives the highest goodness
    summed over the read-out layers, all ten labels' inputs in one FORWARD call per
    layer. It is the default because then every trained parameter is in the crossbars.
    ``"softmax"``: a digital linear softmax head (Adam, cross-entropy) on the read-out
    layers' unit-RMS activities for the neutral label, trained alongside without
    touching the crossbars; one more measurement per sample and layer.

Cost
    Cell pulses are counted per slot as ``popcount(row_fire) * popcount(col_fire)``,
    split into potentiation and depression (bidirectional: depression is the
    coincidences with exactly one negative side; unidirectional: every pulse potentiates
    one cell of its pair), with the slots and updates sent, and the rows read and
    written by refreshes (the initial programming is not counted).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hilt.host.backends.base import Backend, BackendError
from hilt.host.protocol.synapse_layout import Slot
from hilt.host.train.checks import (
    check_choice,
    check_indices,
    check_int,
    check_number,
    check_seed,
)
from hilt.host.train.curves import TrainingCurves
from hilt.host.train.epochs import StepReport, run_epochs
from hilt.host.train.goodness import (
    GOODNESS_MODES,
    LOSSES,
    goodness,
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

CLASSIFIERS = ("goodness", "softmax")
"""How a trained net is read out: best label by goodness, or a digital softmax head."""

INPUT_CLIP_RMS = 3.0
"""Between layers, a unit-RMS activity of this many RMS is quantised to ``in_high``."""

REFRESH_FRACTION = 0.75
"""The default refresh count is the nominal pulses that lift a cell from level 0 to this
fraction of its range."""

PULSE_OPERATIONS = ("forward", "load", "pulse", "read_state")
"""What every layer's backend must do."""


@dataclass(frozen=True)
class PulseFFConfig:
    """Everything a pulse-trained Forward-Forward run depends on.

    The defaults were picked on the iCEBreaker's crossbar cells (soft-bounds, 4-bit
    states) at 64 x 74, one layer, by the training accuracy of the last five of 10 to 20
    epochs (the test split chose nothing), among gains 2..16, learning rates 0.01..1
    and final learning rates of a tenth or a thirtieth of them.

    Attributes
    ----------
    rule
        "unidirectional" (the default: it learns best on the board's cells) or
        "bidirectional" (module docstring).
    epochs, batch_size, seed
        Passes over the training set, samples measured together, and the seed of the
        initial levels, shuffles, negative labels and pulse trains.
    lr
        Learning rate in weight units (module docstring) at the first epoch.
    lr_end
        Learning rate at the last epoch, reached geometrically; None: :attr:`lr`
        throughout.
    slots
        Slots per update ``T``; None: each crossbar's ``max_pulses``.
    gain
        Scale of the pre-activations (module docstring).
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
        "goodness" or "softmax" (module docstring).
    head_lr
        Adam learning rate of the softmax head.
    refresh_pulses
        Unidirectional rule: pulses a cell may receive before the crossbar is read back
        and refreshed; None: from its step tables (:data:`REFRESH_FRACTION`).
    """

    rule: str = "unidirectional"
    epochs: int = 20
    batch_size: int = 32
    seed: int = 0
    lr: float = 0.1
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
    refresh_pulses: int | None = None

    def __post_init__(self) -> None:
        check_choice("rule", self.rule, RULES)
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
    where ``delta_i * x_j > 0`` (module docstring).
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


def _mask(bits: np.ndarray) -> int:
    """Bit i of the result is ``bits[i]``."""
    return int.from_bytes(np.packbits(bits, bitorder="little").tobytes(), "little")


def trains_to_slots(trains: PulseTrains, *, unidirectional: bool) -> list[Slot]:
    """The update's slots, without those in which no cell is pulsed; the last has
    ``last=True``. Empty if no cell is pulsed at all."""
    row_neg, col_neg = _mask(trains.row_neg), _mask(trains.col_neg)
    slots = [Slot(_mask(rows), row_neg & _mask(rows), _mask(cols), col_neg & _mask(cols),
                  unidirectional, False)
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


@dataclass
class PulseCost:
    """What the updates of a run cost, all layers together (module docstring)."""

    potentiation: int = 0
    depression: int = 0
    slots: int = 0
    updates: int = 0
    reads: int = 0
    """Rows read back (READ frames) by refreshes."""
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

    def __init__(self, backend: Backend, config: PulseFFConfig) -> None:
        params = backend.describe()["target"]["params"]
        self.backend = backend
        self.rows, self.cols = backend.out_features, backend.in_features
        self.max_level = (1 << params["state_bits"]) - 1
        self.half = (self.max_level + 1) // 2
        up, down = params["up"], params["down"]
        self.reference = min(range(self.max_level + 1), key=lambda s: (
            abs(up[s] - down[s]), abs(2 * s - self.max_level), s))
        self.in_high = (1 << (params["in_bits"] - 1)) - 1
        self.slots = config.slots or params["max_pulses"]
        if self.slots > params["max_pulses"]:
            raise BackendError(f"{backend.url}: slots = {self.slots} is more than its "
                               f"max_pulses = {params['max_pulses']}; accepted 1.."
                               f"{params['max_pulses']}, or None")
        self.unidirectional = config.rule == "unidirectional"
        step = (up[0] if self.unidirectional
                else (up[self.reference] + down[self.reference]) / 2)
        if step <= 0:
            raise BackendError(f"{backend.url}: its cells do not move at the rule's working "
                               f"level, so no pulse can train it")
        self.dw = step / self.half
        self.y_unit = self.half * self.in_high * math.sqrt(self.cols) / config.gain
        self.refresh_pulses = config.refresh_pulses or _pulses_to(up, REFRESH_FRACTION)
        self.since_refresh = np.zeros((2, self.rows, self.cols), dtype=np.int64)

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
        """The next layer's integer inputs from this layer's activities (module docstring)."""
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
        the two rank-one updates per pair of :func:`pair_updates`."""
        n = len(delta) // 2
        deltas, inputs = pair_updates(delta[:n], delta[n:], x[:n] / self.in_high,
                                      x[n:] / self.in_high)
        self.update(deltas, inputs, lr, generator, cost)

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
        order = torch.randperm(len(x), generator=self.torch_generator).numpy()
        totals = np.zeros(len(self.net) + (self.head is not None))
        for done, index in enumerate(np.array_split(order, batches), start=1):
            labels = torch.as_tensor(y[index])
            wrong = negative_labels(labels, self.classes, self.torch_generator).numpy()
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
        net = [CrossbarLayer(backend, config) for backend in layers]
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
