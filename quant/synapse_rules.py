"""Learning rules: how a desired weight change becomes pulses on a :class:`SynapsePair`.

A trainer computes a float weight change ΔW (a gradient step, say) and a rule turns it
into pulse counts on the devices, which is where a real synapse array departs from SGD:
a pulse moves a conductance by a step that may depend on the state, differ between up
and down, and vary from cell to cell. Three rules are compared on the same devices:

- :class:`StochasticPulseSGD`, the literature's baseline: a single device per weight,
  moved both ways, against a fixed reference cell (G- programmed to mid-range once);
  ``|ΔW| * scale / step`` pulses with stochastic rounding, where ``step`` is the
  nominal step at the reference. It trusts the step to be constant and symmetric.
- :class:`UnidirectionalRule`: only ever potentiates, G+ for ΔW > 0 and G- for ΔW < 0,
  so up/down asymmetry no longer matters; when the part of the two conductances that
  cancels (the lower cell) passes a fraction of the range, the pair is refreshed
  (:meth:`SynapsePair.refresh`, open loop). Pulses use the nominal step at Gmin.
- :class:`ReadBackRule`: unidirectional, but the host, which is in the loop, reads the
  states back: the pulse count comes from the cell's actual state on the device's
  nominal curve (so a soft-bounds cell's shrinking step is compensated), each cell's
  step factor is estimated from what earlier pulses did (so device-to-device variation
  is compensated), and refresh reprograms by program-and-verify.

Every rule answers ``rule.new_pair(device, shape)`` (a pair laid out for the rule),
``rule.program(pair, weights)`` (initial weights, by program-and-verify for all rules
alike, so that the rules differ only in their updates) and ``rule.apply(pair, ΔW)``,
which returns the :class:`UpdateStats` spent. A rule clips each cell's pulse count to
``max_pulses`` per update by design (a large gradient saturates rather than slamming
a cell through its range); :meth:`SynapseRule.send` takes explicit counts and refuses
any beyond ``max_pulses``.

Stochastic rounding draws from the pair's ``generator``, so every pair a rule updates
needs one; nothing else is random, and a run is reproducible from its seeds.
"""

from __future__ import annotations

import math
import weakref
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch

from .synapse_device import SynapseDevice
from .synapse_pair import SynapsePair

__all__ = [
    "NominalCurve",
    "ReadBackRule",
    "StochasticPulseSGD",
    "SynapseRule",
    "UnidirectionalRule",
    "UpdateStats",
    "nominal_curve",
    "program_and_verify",
]

PROGRAM_MAX_PULSES = 1 << 12
"""Most pulses one program-and-verify round may send to a cell (a whole range and more)."""


@dataclass(frozen=True)
class UpdateStats:
    """What one or more updates cost: pulses each way, cell resets and array reads."""

    potentiation: int = 0
    depression: int = 0
    resets: int = 0
    reads: int = 0

    @property
    def pulses(self) -> int:
        """Potentiation and depression pulses together."""
        return self.potentiation + self.depression

    def __add__(self, other: UpdateStats) -> UpdateStats:
        return UpdateStats(
            self.potentiation + other.potentiation,
            self.depression + other.depression,
            self.resets + other.resets,
            self.reads + other.reads,
        )


class NominalCurve:
    """A device's nominal potentiation curve from Gmin, tabulated at whole pulse counts.

    Every hilt device is state-determined (the next pulse's effect depends only on the
    current conductance), so the pulses that lift G to G' are the difference of their
    positions on the curve from Gmin. Positions between whole counts are interpolated
    linearly, which makes a fractional count's stochastic rounding unbiased to first
    order. The table stops where the curve stops rising (the bound, or float saturation),
    or at ``max_pulses``.
    """

    def __init__(self, device: SynapseDevice, max_pulses: int = PROGRAM_MAX_PULSES) -> None:
        start = torch.full((max_pulses + 1,), device.w_min, dtype=torch.float64)
        table = device.nominal_potentiate(start, torch.arange(max_pulses + 1))
        flat = (table[1:] <= table[:-1]).nonzero()
        self.table = table[: int(flat[0]) + 1] if len(flat) else table
        if len(self.table) < 2:
            raise ValueError(f"the nominal curve of {device!r} does not rise with a pulse")
        self._bottom, self.top = float(self.table[0]), float(self.table[-1])
        self._widths = self.table.diff()

    def position(self, G: torch.Tensor) -> torch.Tensor:
        """Fractional nominal pulses from Gmin to each state (held at the table's ends)."""
        table, widths = self.table, self._widths
        if G.dtype != table.dtype:
            table, widths = table.to(G.dtype), widths.to(G.dtype)
        G = G.clamp(self._bottom, self.top).contiguous()
        # The segment [table[i], table[i + 1]] holding G; the top itself ends the last one.
        i = (torch.searchsorted(table, G, right=True) - 1).clamp_(0, len(widths) - 1)
        return i.to(G.dtype) + (G - table[i]) / widths[i]

    def pulses(self, G: torch.Tensor, rise: torch.Tensor) -> torch.Tensor:
        """Fractional nominal pulses that lift each state G by ``rise`` (0 where rise <= 0).

        A target above the curve's top is taken as the top.
        """
        start, end = self.position(torch.stack((G, G + rise.clamp_min(0)))).unbind(0)
        count = end - start
        return torch.where(rise > 0, count.clamp_min(0), 0.0)


_curves: weakref.WeakKeyDictionary[SynapseDevice, NominalCurve] = weakref.WeakKeyDictionary()


def nominal_curve(device: SynapseDevice) -> NominalCurve:
    """The device's :class:`NominalCurve`, built once per device object."""
    if device not in _curves:
        _curves[device] = NominalCurve(device)
    return _curves[device]


def _number(name: str, value: float) -> float:
    """``value`` as a float, or a TypeError naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    return float(value)


def _stochastic_round(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """floor(x) plus one with probability frac(x): unbiased whole counts, int64."""
    floor = x.floor()
    draw = torch.rand(x.shape, generator=generator, dtype=x.dtype)
    return (floor + (draw < x - floor).to(x.dtype)).to(torch.int64)


def program_and_verify(
    pair: SynapsePair,
    target_plus: torch.Tensor,
    target_minus: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    gain_plus: torch.Tensor | None = None,
    gain_minus: torch.Tensor | None = None,
) -> int:
    """Potentiate each cell towards its target conductance, reading back after each round.

    The first round sends half the pulses the nominal curve says are missing, divided
    by the cell's prior step factor ``gain_*`` (default 1); from then on the factor is
    what the read-backs show (progress along the nominal curve per pulse sent), and each
    round sends the whole count still missing at that factor, rounded down, and the last
    pulse only if it lands nearer the target than where the cell is. So a cell whose step
    differs from nominal lands within its own step of the target in a few rounds, and
    overshoots by less than that. A cell that did not move at all is stuck and is left
    alone; so are cells at or above their target (this only potentiates) and cells
    where ``mask`` is false (default: all are programmed). Returns the array reads taken.
    """
    device = pair.device
    curve = nominal_curve(device)
    chosen = torch.ones(pair.shape, dtype=torch.bool) if mask is None else mask
    where = chosen.reshape(-1).nonzero().squeeze(1)
    ones = torch.ones(pair.shape, dtype=pair.g_plus.dtype)
    sides = []
    for target, prior in ((target_plus, gain_plus), (target_minus, gain_minus)):
        prior = ones if prior is None else prior
        sides.append({
            "target": target.clamp(device.w_min, device.w_max).reshape(-1)[where],
            "prior": prior.clamp_min(1e-3).reshape(-1)[where],
            "sent": torch.zeros(len(where), dtype=pair.g_plus.dtype),
            "advanced": torch.zeros(len(where), dtype=pair.g_plus.dtype),
        })
    reads = 0
    for _ in range(2 * PROGRAM_MAX_PULSES.bit_length() + 4):
        reads += 1
        states = [G.reshape(-1)[where] for G in (pair.g_plus, pair.g_minus)]
        counts = []
        for G, side in zip(states, sides, strict=True):
            measured = side["sent"] > 0
            seen_gain = side["advanced"] / side["sent"].clamp_min(1)
            gain = torch.where(measured, seen_gain, side["prior"])
            x = curve.pulses(G, side["target"] - G) / gain.clamp_min(1e-3)
            first = torch.where(x >= 2, (x / 2).floor(), x.round())
            later = torch.where(x >= 1, x.floor(), x.round())
            n = torch.where(measured, later, first).clamp_max(PROGRAM_MAX_PULSES)
            n = torch.where(measured & (side["advanced"] == 0), 0, n).to(torch.int64)
            counts.append(n)
        if not any(bool(n.any()) for n in counts):
            break
        pair.pulse(plus=_scatter(pair, where, counts[0]), minus=_scatter(pair, where, counts[1]))
        after = [G.reshape(-1)[where] for G in (pair.g_plus, pair.g_minus)]
        for old, new, n, side in zip(states, after, counts, sides, strict=True):
            # A cell pinned at the top of the curve says nothing about its step.
            seen = (n > 0) & (new < curve.top)
            side["sent"] += torch.where(seen, n.to(new.dtype), 0)
            side["advanced"] += torch.where(seen, curve.position(new) - curve.position(old), 0)
    return reads


def _scatter(pair: SynapsePair, where: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Counts for the cells at flat indices ``where``, zero elsewhere, in the pair's shape."""
    flat = torch.zeros(math.prod(pair.shape), dtype=values.dtype)
    return flat.index_copy(0, where, values).reshape(pair.shape)


class SynapseRule(ABC):
    """A translation from weight changes to pulses; configuration only, per-pair state aside.

    Parameters
    ----------
    max_pulses : int
        Most pulses one update sends to one cell, >= 1; larger counts are clipped to it.
    """

    # Array reads every update costs; the rules that read the states back set it.
    _reads_per_update = 0

    def __init__(self, *, max_pulses: int = 32) -> None:
        if isinstance(max_pulses, bool) or not isinstance(max_pulses, int) or max_pulses < 1:
            raise ValueError(f"max_pulses must be an integer >= 1, got {max_pulses!r}")
        self.max_pulses = max_pulses

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_pulses={self.max_pulses})"

    @abstractmethod
    def scale_for(self, device: SynapseDevice, weight_range: float) -> float:
        """Conductance per unit weight that makes this rule's weights span ``±weight_range``."""

    @abstractmethod
    def targets(
        self, device: SynapseDevice, scale: float, weights: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The (G+, G-) conductances that hold ``weights`` in this rule's layout."""

    @abstractmethod
    def pulses_for(self, pair: SynapsePair, delta_w: torch.Tensor) -> torch.Tensor:
        """Signed pulse counts (int64, clipped to ``±max_pulses``) for the change ``delta_w``."""

    @abstractmethod
    def _send(self, pair: SynapsePair, pulses: torch.Tensor) -> None:
        """Apply checked signed counts the way this rule does."""

    def _maintain(self, pair: SynapsePair) -> int:
        """Housekeeping after an update (refresh); returns the array reads it took."""
        return 0

    def new_pair(
        self,
        device: SynapseDevice,
        shape: tuple[int, ...],
        *,
        weight_range: float = 1.0,
        generator: torch.Generator | None = None,
        weights: torch.Tensor | None = None,
    ) -> SynapsePair:
        """A pair of ``shape`` whose weights span ``±weight_range`` in this rule's layout.

        The weights start at ``weights`` (default 0), programmed by :meth:`program`;
        ``generator`` becomes the pair's (device spread, noise, stochastic rounding).
        """
        weight_range = _number("weight_range", weight_range)
        if not (math.isfinite(weight_range) and weight_range > 0):
            raise ValueError(f"weight_range must be a finite number > 0, got {weight_range}")
        pair = SynapsePair(
            device, shape, scale=self.scale_for(device, weight_range), generator=generator
        )
        if weights is None:
            weights = torch.zeros(pair.shape, dtype=pair.g_plus.dtype)
        self.program(pair, weights)
        return pair

    def program(self, pair: SynapsePair, weights: torch.Tensor) -> UpdateStats:
        """Reset the pair and program ``weights`` (clipped to what it holds) by program-and-verify.

        Every rule starts this way, so a comparison of rules is one of their updates.
        Only weights with a cell above Gmin need (and count) a reset.
        """
        weights = self._check_tensor(pair, "weights", weights)
        before = _counters(pair)
        g_min = pair.device.w_min
        pair.reset((pair.g_plus > g_min) | (pair.g_minus > g_min))
        plus, minus = self.targets(pair.device, pair.scale, weights)
        reads = program_and_verify(pair, plus, minus)
        return _spent(pair, before, reads)

    def apply(self, pair: SynapsePair, delta_w: torch.Tensor) -> UpdateStats:
        """Move the weights by about ``delta_w``; returns the pulses, resets and reads spent."""
        delta_w = self._check_tensor(pair, "delta_w", delta_w)
        before = _counters(pair)
        self._send(pair, self.pulses_for(pair, delta_w))
        reads = self._reads_per_update + self._maintain(pair)
        return _spent(pair, before, reads)

    def send(self, pair: SynapsePair, pulses: int | torch.Tensor) -> UpdateStats:
        """Apply explicit signed pulse counts (> 0 raises the weight, < 0 lowers it).

        A count beyond ``±max_pulses`` is an error here: clipping is what :meth:`apply`
        does to counts it computes, never to counts a caller asked for. No refresh check
        follows; that is part of :meth:`apply`.
        """
        n = torch.as_tensor(pulses)
        if n.is_floating_point() or n.is_complex() or n.dtype == torch.bool:
            raise TypeError(f"pulses must be an integer tensor of counts, got dtype {n.dtype}")
        if n.numel() and int(n.abs().max()) > self.max_pulses:
            raise ValueError(
                f"pulses must lie within ±max_pulses = ±{self.max_pulses}, got a count of "
                f"{int(n.abs().max())}"
            )
        before = _counters(pair)
        self._send(pair, n.to(torch.int64))
        return _spent(pair, before, 0)

    def _check_tensor(self, pair: SynapsePair, name: str, value: torch.Tensor) -> torch.Tensor:
        if not isinstance(pair, SynapsePair):
            raise TypeError(f"pair must be a SynapsePair, got {pair!r}")
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {value!r}")
        if tuple(value.shape) != pair.shape:
            raise ValueError(
                f"{name} must have the pair's shape {pair.shape}, got {tuple(value.shape)}"
            )
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name} must be finite, got a NaN or infinity")
        return value.to(pair.g_plus.dtype)

    def _generator(self, pair: SynapsePair) -> torch.Generator:
        if pair.generator is None:
            raise ValueError(
                f"pair.generator is required by {type(self).__name__} for stochastic rounding "
                "(create the pair with generator=torch.Generator().manual_seed(...))"
            )
        return pair.generator

    def _round(self, pair: SynapsePair, x: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
        n = _stochastic_round(x.clamp(0, self.max_pulses), self._generator(pair))
        return torch.where(sign > 0, n, -n)


def _counters(pair: SynapsePair) -> tuple[int, int, int]:
    potentiation, depression = pair.pulses_spent()
    return potentiation, depression, int(pair.resets.sum())


def _spent(pair: SynapsePair, before: tuple[int, int, int], reads: int) -> UpdateStats:
    after = _counters(pair)
    return UpdateStats(after[0] - before[0], after[1] - before[1], after[2] - before[2], reads)


def _step_up(device: SynapseDevice, G: float) -> float:
    at = torch.tensor([G], dtype=torch.float64)
    return float(device.nominal_potentiate(at, 1) - at)


class StochasticPulseSGD(SynapseRule):
    """Plain stochastic-pulse SGD on one device per weight, both directions.

    G- is a reference cell programmed once to ``reference`` (a fraction of the range,
    default mid-range) and never pulsed again; the weight is (G+ - reference) / scale.
    Each update sends ``|ΔW| * scale / step`` pulses to G+, stochastically rounded, up
    for ΔW > 0 and down for ΔW < 0, where ``step`` is the mean of the nominal up and
    down steps at the reference (the device's calibrated step at weight 0, aihwkit's
    ``dw_min``). The weights span ``±weight_range`` with the nearer bound at its end.
    """

    def __init__(self, *, max_pulses: int = 32, reference: float = 0.5) -> None:
        super().__init__(max_pulses=max_pulses)
        reference = _number("reference", reference)
        if not 0 < reference < 1:
            raise ValueError(
                f"reference must be a fraction of the range in (0, 1), got {reference}"
            )
        self.reference = reference

    def _reference_g(self, device: SynapseDevice) -> float:
        return device.w_min + self.reference * device.conductance_range

    def scale_for(self, device, weight_range):
        reach = min(self.reference, 1 - self.reference) * device.conductance_range
        return reach / weight_range

    def targets(self, device, scale, weights):
        reference = torch.full_like(weights, self._reference_g(device))
        return reference + weights * scale, reference

    def step(self, device: SynapseDevice) -> float:
        """The mean of the nominal up and down steps at the reference conductance."""
        ref = torch.tensor([self._reference_g(device)], dtype=torch.float64)
        down = float(ref - device.nominal_depress(ref, 1))
        return (_step_up(device, float(ref)) + down) / 2

    def pulses_for(self, pair, delta_w):
        x = delta_w.abs() * pair.scale / self.step(pair.device)
        return self._round(pair, x, delta_w)

    def _send(self, pair, pulses):
        pair.pulse(plus=pulses)


class UnidirectionalRule(SynapseRule):
    """Potentiation only: ΔW > 0 potentiates G+, ΔW < 0 potentiates G-, with refresh.

    ``|ΔW| * scale / step`` pulses, stochastically rounded, with ``step`` the nominal
    step at Gmin (where refresh keeps the cells). Every ``check_every`` updates the
    pair's lower cells are compared with ``Gmin + refresh_threshold * range`` and the
    weights whose lower cell passed it are refreshed: the lower cell holds conductance
    that cancels out and only eats range (and, on a soft-bounds device, step size).
    A threshold of 0 refreshes every weight at every check, a purely periodic refresh.

    Parameters
    ----------
    max_pulses : int
        Most pulses per cell per update (clipped to it).
    refresh_threshold : float
        Fraction of the range in [0, 1) the lower cell may reach before a refresh.
    check_every : int
        Updates between refresh checks, >= 1.
    """

    # The refresh check compares each lower cell with the threshold: one read of the array.
    _check_reads = 1

    def __init__(
        self, *, max_pulses: int = 32, refresh_threshold: float = 0.25, check_every: int = 1
    ) -> None:
        super().__init__(max_pulses=max_pulses)
        refresh_threshold = _number("refresh_threshold", refresh_threshold)
        if not 0 <= refresh_threshold < 1:
            raise ValueError(
                f"refresh_threshold must be a fraction of the range in [0, 1), "
                f"got {refresh_threshold}"
            )
        if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1:
            raise ValueError(f"check_every must be an integer >= 1, got {check_every!r}")
        self.refresh_threshold = refresh_threshold
        self.check_every = check_every
        self._updates: weakref.WeakKeyDictionary[SynapsePair, int] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(max_pulses={self.max_pulses}, "
                f"refresh_threshold={self.refresh_threshold}, check_every={self.check_every})")

    def scale_for(self, device, weight_range):
        return device.conductance_range / weight_range

    def targets(self, device, scale, weights):
        return (device.w_min + (weights * scale).clamp_min(0),
                device.w_min + (-weights * scale).clamp_min(0))

    def pulses_for(self, pair, delta_w):
        x = delta_w.abs() * pair.scale / _step_up(pair.device, pair.device.w_min)
        return self._round(pair, x, delta_w)

    def _send(self, pair, pulses):
        pair.update(pulses)

    def _maintain(self, pair):
        count = self._updates.get(pair, 0) + 1
        self._updates[pair] = count
        if count % self.check_every:
            return 0
        device = pair.device
        limit = device.w_min + self.refresh_threshold * device.conductance_range
        due = torch.minimum(pair.g_plus, pair.g_minus) > limit
        if self.refresh_threshold == 0:
            due = torch.ones(pair.shape, dtype=torch.bool)
        reads = self._check_reads
        if bool(due.any()):
            reads += self._refresh(pair, due)
        return reads

    def _refresh(self, pair: SynapsePair, due: torch.Tensor) -> int:
        """Refresh the due weights; returns the array reads it took (none, open loop)."""
        pair.refresh(due)
        return 0


class ReadBackRule(UnidirectionalRule):
    """Unidirectional with refresh, the host reading the states back (it is in the loop).

    Each update reads G+ and G- and sends the pulses that the device's nominal curve
    says lift the cell by ``|ΔW| * scale`` from where it actually is (fractional counts,
    stochastically rounded), divided by the cell's estimated step factor. The estimate
    starts at 1 and is learnt from read-backs: after each update the host measures how
    far along the nominal curve each cell actually moved for the pulses it sent, and
    keeps the ratio of the running sums (a stuck cell's is 0, and it gets no more
    pulses). Refresh resets a due weight and reprograms it by :func:`program_and_verify`.
    Parameters as :class:`UnidirectionalRule`.
    """

    # Read before the pulses (to count them) and after (to learn the step factors); the
    # refresh check reuses the second read.
    _reads_per_update = 2
    _check_reads = 0

    def __init__(
        self, *, max_pulses: int = 32, refresh_threshold: float = 0.25, check_every: int = 1
    ) -> None:
        super().__init__(
            max_pulses=max_pulses, refresh_threshold=refresh_threshold, check_every=check_every
        )
        self._gains: weakref.WeakKeyDictionary[SynapsePair, list[torch.Tensor]] = (
            weakref.WeakKeyDictionary()
        )

    def gains(self, pair: SynapsePair) -> tuple[torch.Tensor, torch.Tensor]:
        """The estimated step factors of G+ and G- (curve progress per pulse; 1 if unseen)."""
        actual_p, nominal_p, actual_m, nominal_m = self._sums(pair)
        return _ratio(actual_p, nominal_p), _ratio(actual_m, nominal_m)

    def _sums(self, pair: SynapsePair) -> list[torch.Tensor]:
        if pair not in self._gains:
            self._gains[pair] = [torch.zeros(pair.shape, dtype=pair.g_plus.dtype)
                                 for _ in range(4)]
        return self._gains[pair]

    def pulses_for(self, pair, delta_w):
        gain_plus, gain_minus = self.gains(pair)
        rise = delta_w.abs() * pair.scale
        positive = delta_w > 0
        G = torch.where(positive, pair.g_plus, pair.g_minus)
        gain = torch.where(positive, gain_plus, gain_minus)
        x = nominal_curve(pair.device).pulses(G, rise) / gain.clamp_min(1e-3)
        # A cell that has never moved under pulses is stuck: sending more is a waste.
        x = torch.where(gain > 0, x, 0.0)
        return self._round(pair, x, delta_w)

    def _send(self, pair, pulses):
        curve = nominal_curve(pair.device)
        before = torch.stack((pair.g_plus, pair.g_minus))
        pair.update(pulses)
        after = torch.stack((pair.g_plus, pair.g_minus))
        sent = torch.stack((pulses.clamp_min(0), (-pulses).clamp_min(0))).to(after.dtype)
        # Progress along the nominal curve per pulse sent is the cell's step factor; a cell
        # pinned at the top says nothing about it and is left out. One lookup for all four.
        seen = (sent > 0) & (after < curve.top)
        old, new = curve.position(torch.stack((before, after))).unbind(0)
        sums = self._sums(pair)
        for side in (0, 1):
            sums[2 * side] += torch.where(seen[side], new[side] - old[side], 0)
            sums[2 * side + 1] += torch.where(seen[side], sent[side], 0)

    def _refresh(self, pair, due):
        difference = pair.g_plus - pair.g_minus
        weights = torch.where(due, difference / pair.scale, 0)
        plus, minus = self.targets(pair.device, pair.scale, weights)
        pair.reset(due)
        gain_plus, gain_minus = self.gains(pair)
        return program_and_verify(
            pair, plus, minus, mask=due, gain_plus=gain_plus, gain_minus=gain_minus
        )


def _ratio(actual: torch.Tensor, nominal: torch.Tensor) -> torch.Tensor:
    """actual / nominal where something was seen, else 1."""
    return torch.where(nominal > 0, actual / nominal.clamp_min(1e-300), 1.0)
