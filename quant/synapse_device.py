"""Float device models of the conductance-update synapse: how pulses move a conductance.

A device holds one conductance state G per cell, in ``[w_min, w_max]``. A potentiation
pulse raises it and a depression pulse lowers it by a step that may depend on G itself,
which is what makes real resistive and phase-change synapses hard to train. Every model
here answers the same two calls, vectorised over whole weight matrices::

    G = device.potentiate(G, pulses)    # pulses: int or integer tensor, >= 0
    G = device.depress(G, pulses)

and differs only in its response curve:

- :class:`LinearDevice`, a constant step ``dw_min`` (the ideal device);
- :class:`SoftBoundsDevice`, a step proportional to the distance from the bound ahead;
- :class:`ExponentialDevice`, the saturating curve G(p) = B (1 - exp(-p / A)) + Gmin
  with its own A and B for potentiation and depression (fit measured curves with
  :func:`hilt.quant.synapse_fit.fit_exponential`);
- :class:`TableDevice`, a measured table of pulse number against conductance (read one
  with :func:`hilt.quant.synapse_fit.load_response_csv`), interpolated linearly.

Parameter names follow the analog-hardware simulators (aihwkit's pulsed devices) where
one exists. The non-idealities shared by all models, and all off by default, are:

- ``up_down``: systematic asymmetry, up steps are scaled by ``1 + up_down`` and down
  steps by ``1 - up_down``;
- ``dw_min_dtod``: device-to-device spread, each cell's steps scaled by a factor
  ``1 + dw_min_dtod * N(0, 1)`` (floored at 0, a stuck cell) drawn once per cell by
  :meth:`SynapseDevice.sample_dtod` and passed back in as ``dtod``;
- ``write_noise_std``: cycle-to-cycle noise, in conductance units per pulse; ``n``
  pulses add one Gaussian of standard deviation ``write_noise_std * sqrt(n)``.

A step scale s (from ``up_down`` and ``dtod``) multiplies the step exactly for the
linear and soft-bounds devices; for the exponential and table devices it advances the
cell s pulses along its curve per pulse, the same to first order. Randomness comes only
from a ``torch.Generator`` passed in; a model with a non-zero variation refuses to run
without one, so a simulation is reproducible by construction.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np
import torch
from numpy.typing import ArrayLike

__all__ = [
    "ExponentialDevice",
    "LinearDevice",
    "SoftBoundsDevice",
    "SynapseDevice",
    "TableDevice",
]


def _finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return value


def _non_negative(name: str, value: float) -> float:
    value = _finite(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0 (0 turns the variation off), got {value}")
    return value


class SynapseDevice(ABC):
    """The shared interface and non-idealities of a pulsed conductance device.

    Parameters
    ----------
    w_min, w_max : float
        Conductance bounds Gmin < Gmax; every state is clipped into them.
    up_down : float
        Systematic up/down asymmetry in (-1, 1): up steps scale by ``1 + up_down``,
        down steps by ``1 - up_down``. Default 0 (symmetric).
    dw_min_dtod : float
        Relative device-to-device spread of the step, >= 0. Default 0 (identical cells).
    write_noise_std : float
        Cycle-to-cycle noise per pulse, in conductance units, >= 0. Default 0
        (deterministic).
    """

    def __init__(
        self,
        *,
        w_min: float,
        w_max: float,
        up_down: float = 0.0,
        dw_min_dtod: float = 0.0,
        write_noise_std: float = 0.0,
    ) -> None:
        self.w_min = _finite("w_min", w_min)
        self.w_max = _finite("w_max", w_max)
        if not self.w_min < self.w_max:
            raise ValueError(
                f"w_min must be below w_max (Gmin < Gmax), got w_min={self.w_min}, "
                f"w_max={self.w_max}"
            )
        self.up_down = _finite("up_down", up_down)
        if not -1 < self.up_down < 1:
            raise ValueError(
                f"up_down must be in (-1, 1) (steps scale by 1 +- up_down), got {self.up_down}"
            )
        self.dw_min_dtod = _non_negative("dw_min_dtod", dw_min_dtod)
        self.write_noise_std = _non_negative("write_noise_std", write_noise_std)

    @property
    def conductance_range(self) -> float:
        """Gmax - Gmin."""
        return self.w_max - self.w_min

    def initial_state(
        self, shape: tuple[int, ...], *, dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        """A fresh array of cells, all at Gmin."""
        return torch.full(shape, self.w_min, dtype=dtype)

    def sample_dtod(
        self,
        shape: tuple[int, ...],
        generator: torch.Generator | None = None,
        *,
        dtype: torch.dtype = torch.float64,
    ) -> torch.Tensor:
        """Each cell's step factor ``max(0, 1 + dw_min_dtod * N(0, 1))``; all ones at 0.

        Draw it once per array and pass it as ``dtod`` to every call on that array.
        """
        if self.dw_min_dtod == 0:
            return torch.ones(shape, dtype=dtype)
        if generator is None:
            raise ValueError(
                f"generator is required when dw_min_dtod > 0 (got {self.dw_min_dtod}): "
                "randomness comes only from a torch.Generator passed in"
            )
        spread = torch.randn(shape, generator=generator, dtype=dtype)
        return (1 + self.dw_min_dtod * spread).clamp_min(0)

    def potentiate(
        self,
        G: torch.Tensor,
        pulses: int | torch.Tensor,
        *,
        dtod: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The states after ``pulses`` potentiation pulses (per cell, broadcast to G)."""
        return self._apply(G, pulses, dtod, generator, up=True)

    def depress(
        self,
        G: torch.Tensor,
        pulses: int | torch.Tensor,
        *,
        dtod: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The states after ``pulses`` depression pulses (per cell, broadcast to G)."""
        return self._apply(G, pulses, dtod, generator, up=False)

    def nominal_potentiate(self, G: torch.Tensor, pulses: int | torch.Tensor) -> torch.Tensor:
        """:meth:`potentiate` of the nominal cell: no spread, no noise (``up_down`` kept).

        This is what a controller that knows only the data sheet expects to happen.
        """
        return self._nominal(G, pulses, up=True)

    def nominal_depress(self, G: torch.Tensor, pulses: int | torch.Tensor) -> torch.Tensor:
        """:meth:`depress` of the nominal cell: no spread, no noise (``up_down`` kept)."""
        return self._nominal(G, pulses, up=False)

    def _nominal(self, G: torch.Tensor, pulses: int | torch.Tensor, *, up: bool) -> torch.Tensor:
        G = self._check_state(G)
        n = self._check_pulses(pulses, G)
        scale = torch.full_like(G, 1 + self.up_down if up else 1 - self.up_down)
        moved = self._up(G, n, scale) if up else self._down(G, n, scale)
        return moved.clamp(self.w_min, self.w_max)

    def pulses_to_reach(self, delta: torch.Tensor, *, max_pulses: int = 1 << 20) -> torch.Tensor:
        """Nominal potentiation pulses from Gmin that land nearest Gmin + ``delta``.

        Returns an int64 tensor shaped like ``delta``, each count in ``0 .. max_pulses``;
        ties go to the smaller count. A delta beyond what ``max_pulses`` reach gets
        ``max_pulses``.
        """
        if not isinstance(delta, torch.Tensor) or not delta.is_floating_point():
            raise TypeError(f"delta must be a floating-point tensor, got {delta!r}")
        if (delta < 0).any():
            raise ValueError(
                f"delta must be >= 0 (a rise above Gmin), got minimum {delta.min().item()}"
            )
        if max_pulses < 1:
            raise ValueError(f"max_pulses must be at least 1, got {max_pulses}")
        target = self.w_min + delta
        start = torch.full_like(delta, self.w_min)
        lo = torch.zeros(delta.shape, dtype=torch.int64)
        hi = torch.full(delta.shape, max_pulses, dtype=torch.int64)
        # The nominal curve is monotone in the count, so bisect for the first count that
        # reaches the target; the nearest count is that one or the one before.
        while bool((lo < hi).any()):
            mid = (lo + hi) // 2
            reached = self.nominal_potentiate(start, mid) >= target
            hi = torch.where(reached, mid, hi)
            lo = torch.where(reached, lo, mid + 1)
        before = (lo - 1).clamp_min(0)
        above = self.nominal_potentiate(start, lo) - target
        below = target - self.nominal_potentiate(start, before)
        return torch.where(below <= above, before, lo)

    def _check_state(self, G: torch.Tensor) -> torch.Tensor:
        if not isinstance(G, torch.Tensor) or not G.is_floating_point():
            raise TypeError(f"G must be a floating-point tensor of conductances, got {G!r}")
        if G.numel() and (G.min() < self.w_min or G.max() > self.w_max):
            raise ValueError(
                f"G must lie within [w_min, w_max] = [{self.w_min}, {self.w_max}], "
                f"got values from {G.min().item()} to {G.max().item()}"
            )
        return G

    def _check_pulses(self, pulses: int | torch.Tensor, G: torch.Tensor) -> torch.Tensor:
        n = torch.as_tensor(pulses)
        if n.is_floating_point():
            if not torch.isfinite(n).all() or (n != n.round()).any():
                raise ValueError("pulses must be whole numbers of pulses")
        elif n.dtype == torch.bool or n.is_complex():
            raise ValueError(f"pulses must be integers, got dtype {n.dtype}")
        if n.numel() and (n < 0).any():
            raise ValueError(
                f"pulses must be >= 0 (potentiate and depress are separate calls), "
                f"got minimum {n.min().item()}"
            )
        try:
            return torch.broadcast_to(n.to(G.dtype), G.shape)
        except RuntimeError:
            raise ValueError(
                f"pulses of shape {tuple(n.shape)} do not broadcast to G of shape {tuple(G.shape)}"
            ) from None

    def _apply(
        self,
        G: torch.Tensor,
        pulses: int | torch.Tensor,
        dtod: torch.Tensor | None,
        generator: torch.Generator | None,
        *,
        up: bool,
    ) -> torch.Tensor:
        G = self._check_state(G)
        n = self._check_pulses(pulses, G)
        if self.write_noise_std > 0 and generator is None:
            raise ValueError(
                f"generator is required when write_noise_std > 0 (got {self.write_noise_std}): "
                "randomness comes only from a torch.Generator passed in"
            )
        scale = torch.full_like(G, 1 + self.up_down if up else 1 - self.up_down)
        if dtod is not None:
            if (dtod < 0).any():
                raise ValueError(
                    f"dtod must be >= 0 (a factor on the step), got minimum {dtod.min().item()}"
                )
            scale = scale * dtod.to(G.dtype)
        moved = self._up(G, n, scale) if up else self._down(G, n, scale)
        if self.write_noise_std > 0:
            noise = torch.randn(G.shape, generator=generator, dtype=G.dtype, device=G.device)
            moved = moved + self.write_noise_std * n.sqrt() * noise
        return moved.clamp(self.w_min, self.w_max)

    @abstractmethod
    def _up(self, G: torch.Tensor, n: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """G after n up pulses of step factor ``scale``, before noise and clipping."""

    @abstractmethod
    def _down(self, G: torch.Tensor, n: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """G after n down pulses of step factor ``scale``, before noise and clipping."""


def _positive(name: str, value: float) -> float:
    value = _finite(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


class LinearDevice(SynapseDevice):
    """A constant step ``dw_min`` per pulse, clipped at the bounds (aihwkit's constant step).

    Parameters
    ----------
    dw_min : float
        The step, in conductance units, > 0.
    w_min, w_max, up_down, dw_min_dtod, write_noise_std
        As in :class:`SynapseDevice`; every variation defaults to 0.
    """

    def __init__(self, dw_min: float, *, w_min: float = 0.0, w_max: float = 1.0, **variation):
        super().__init__(w_min=w_min, w_max=w_max, **variation)
        self.dw_min = _positive("dw_min", dw_min)

    def _up(self, G, n, scale):
        return G + n * (scale * self.dw_min)

    def _down(self, G, n, scale):
        return G - n * (scale * self.dw_min)


class SoftBoundsDevice(SynapseDevice):
    """A step proportional to the distance from the bound it moves towards.

    An up pulse adds ``dw_min * (w_max - G) / (w_max - w_min)``, a down pulse subtracts
    ``dw_min * (G - w_min) / (w_max - w_min)``: the full step ``dw_min`` at the far bound,
    vanishing at the near one, so n pulses shrink the remaining distance by
    ``(1 - dw_min / (w_max - w_min))^n``.

    Parameters
    ----------
    dw_min : float
        The step at the far bound, in (0, w_max - w_min).
    w_min, w_max, up_down, dw_min_dtod, write_noise_std
        As in :class:`SynapseDevice`; every variation defaults to 0.
    """

    def __init__(self, dw_min: float, *, w_min: float = 0.0, w_max: float = 1.0, **variation):
        super().__init__(w_min=w_min, w_max=w_max, **variation)
        self.dw_min = _positive("dw_min", dw_min)
        if self.dw_min >= self.conductance_range:
            raise ValueError(
                f"dw_min must be in (0, w_max - w_min) = (0, {self.conductance_range}) "
                f"so that a pulse cannot overshoot the bound, got {self.dw_min}"
            )

    def _shrink(self, n, scale):
        # A scaled step past the whole range (a large dtod factor) empties the distance.
        keep = (1 - scale * (self.dw_min / self.conductance_range)).clamp_min(0)
        return keep**n

    def _up(self, G, n, scale):
        # Written as G plus a share of the gap, so that zero pulses leave G bit for bit.
        return G + (self.w_max - G) * (1 - self._shrink(n, scale))

    def _down(self, G, n, scale):
        return G - (G - self.w_min) * (1 - self._shrink(n, scale))


class ExponentialDevice(SynapseDevice):
    """Saturating exponential response curves, one for each direction.

    Potentiation from Gmin follows G(p) = b_up (1 - exp(-p / a_up)) + w_min and depression
    from Gmax follows G(q) = w_max - b_down (1 - exp(-q / a_down)). A cell in state G sits
    at the point of the curve where it has that conductance, so the step is
    state-dependent: (w_min + b_up - G)(1 - exp(-1 / a_up)) up, largest at Gmin.

    Parameters
    ----------
    a_up, a_down : float
        Pulses per e-fold of the approach (the nonlinearity; large is nearly linear), > 0.
    b_up, b_down : float or None
        Amplitude of each curve, > 0; None means ``w_max - w_min``, a curve that tends to
        the far bound. A larger B reaches the bound and is clipped there.
    w_min, w_max, up_down, dw_min_dtod, write_noise_std
        As in :class:`SynapseDevice`; every variation defaults to 0.
    """

    def __init__(
        self,
        a_up: float,
        a_down: float,
        *,
        b_up: float | None = None,
        b_down: float | None = None,
        w_min: float = 0.0,
        w_max: float = 1.0,
        **variation,
    ):
        super().__init__(w_min=w_min, w_max=w_max, **variation)
        self.a_up = _positive("a_up", a_up)
        self.a_down = _positive("a_down", a_down)
        self.b_up = self.conductance_range if b_up is None else _positive("b_up", b_up)
        self.b_down = self.conductance_range if b_down is None else _positive("b_down", b_down)

    def _up(self, G, n, scale):
        room = (self.w_min + self.b_up - G).clamp_min(0)
        return G + room * -torch.expm1(-n * scale / self.a_up)

    def _down(self, G, n, scale):
        room = (G - (self.w_max - self.b_down)).clamp_min(0)
        return G - room * -torch.expm1(-n * scale / self.a_down)


def _strictly_monotone_table(
    name: str, pulses: ArrayLike, conductance: ArrayLike, *, increasing: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    p = torch.as_tensor(np.asarray(pulses, dtype=np.float64))
    g = torch.as_tensor(np.asarray(conductance, dtype=np.float64))
    if p.ndim != 1 or p.shape != g.shape or p.numel() < 2:
        raise ValueError(
            f"{name} needs two 1-D sequences of equal length >= 2 (pulse number, "
            f"conductance), got shapes {tuple(p.shape)} and {tuple(g.shape)}"
        )
    if not (torch.isfinite(p).all() and torch.isfinite(g).all()):
        raise ValueError(f"{name} must hold only finite numbers")
    if (p < 0).any() or not (p.diff() > 0).all():
        raise ValueError(f"{name} pulse numbers must be >= 0 and strictly increasing")
    steps = g.diff()
    if not ((steps > 0) if increasing else (steps < 0)).all():
        direction = "increasing" if increasing else "decreasing"
        raise ValueError(
            f"{name} conductance must be strictly {direction} in the pulse number (a "
            f"monotone curve, so that a state maps back to one pulse position)"
        )
    return p, g


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Linear interpolation over increasing ``xp``, held at the ends; monotone in x."""
    xp, fp = xp.to(x), fp.to(x)
    x = x.clamp(xp[0], xp[-1])
    right = torch.searchsorted(xp, x.contiguous(), right=True).clamp(1, len(xp) - 1)
    x0, x1, y0, y1 = xp[right - 1], xp[right], fp[right - 1], fp[right]
    y = y0 + (x - x0) / (x1 - x0) * (y1 - y0)
    # Rounding could otherwise overshoot the segment's end and break monotonicity.
    return torch.minimum(torch.maximum(y, torch.minimum(y0, y1)), torch.maximum(y0, y1))


class TableDevice(SynapseDevice):
    """A response curve measured as a table of pulse number against conductance.

    A cell in state G is placed at the (fractional) pulse position where the table has
    that conductance; n pulses move it n positions along the table and read the
    conductance there, linearly interpolated and held at the table's ends. The bounds
    are the potentiation table's first and last conductance.

    Parameters
    ----------
    pulses, conductance : array_like
        The potentiation curve: pulse numbers >= 0, strictly increasing, and
        conductances strictly increasing with them.
    down_pulses, down_conductance : array_like or None
        The depression curve, conductance strictly decreasing; None (default) runs
        depression back down the potentiation curve.
    up_down, dw_min_dtod, write_noise_std
        As in :class:`SynapseDevice`; every variation defaults to 0.
    """

    def __init__(
        self,
        pulses: ArrayLike,
        conductance: ArrayLike,
        *,
        down_pulses: ArrayLike | None = None,
        down_conductance: ArrayLike | None = None,
        **variation,
    ):
        self.pulses, self.conductance = _strictly_monotone_table(
            "potentiation table", pulses, conductance, increasing=True
        )
        if (down_pulses is None) != (down_conductance is None):
            raise ValueError("down_pulses and down_conductance must be given together")
        self.down_pulses = self.down_conductance = None
        if down_pulses is not None:
            self.down_pulses, self.down_conductance = _strictly_monotone_table(
                "depression table", down_pulses, down_conductance, increasing=False
            )
        super().__init__(
            w_min=float(self.conductance[0]), w_max=float(self.conductance[-1]), **variation
        )

    # The round trip conductance -> position -> conductance is exact only up to rounding,
    # so a cell that gets no pulses keeps G bit for bit and no pulse moves it backwards.

    def _up(self, G, n, scale):
        position = _interp(G, self.conductance, self.pulses)
        moved = _interp(position + n * scale, self.pulses, self.conductance)
        return torch.where(n * scale > 0, torch.maximum(moved, G), G)

    def _down(self, G, n, scale):
        if self.down_pulses is None:
            position = _interp(G, self.conductance, self.pulses)
            moved = _interp(position - n * scale, self.pulses, self.conductance)
        else:
            # Decreasing conductance: invert on the reversed (increasing) table.
            position = _interp(G, self.down_conductance.flip(0), self.down_pulses.flip(0))
            moved = _interp(position + n * scale, self.down_pulses, self.down_conductance)
        return torch.where(n * scale > 0, torch.minimum(moved, G), G)
