"""Measured pulse-response curves: reading them from CSV and fitting the exponential model.

A user brings a device's measured pulse number against conductance; these turn it into
the parameters of :class:`~hilt.quant.synapse_device.ExponentialDevice` or the table of
:class:`~hilt.quant.synapse_device.TableDevice`.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from numpy.typing import ArrayLike

__all__ = ["ExponentialFit", "fit_exponential", "load_response_csv"]


class ExponentialFit(NamedTuple):
    """G(p) = g0 + b (1 - exp(-p / a)); b < 0 for a depression curve."""

    a: float
    b: float
    g0: float

    def __call__(self, pulses: ArrayLike) -> np.ndarray:
        """The fitted conductance at ``pulses``."""
        return self.g0 - self.b * np.expm1(-np.asarray(pulses, dtype=np.float64) / self.a)


def _linear_part(p: np.ndarray, g: np.ndarray, a: np.ndarray):
    """For each trial ``a``, the least-squares b and g0 and the residual sum of squares."""
    f = -np.expm1(-p[None, :] / a[:, None])
    fc = f - f.mean(axis=1, keepdims=True)
    gc = g - g.mean()
    b = (fc @ gc) / np.maximum((fc * fc).sum(axis=1), np.finfo(np.float64).tiny)
    g0 = g.mean() - b * f.mean(axis=1)
    sse = ((g0[:, None] + b[:, None] * f - g[None, :]) ** 2).sum(axis=1)
    return b, g0, sse


def fit_exponential(pulses: ArrayLike, conductance: ArrayLike) -> ExponentialFit:
    """Least-squares fit of G(p) = g0 + b (1 - exp(-p / a)) to a measured monotone curve.

    For a fixed ``a`` the model is linear in ``b`` and ``g0``, which are solved exactly; ``a``
    is found by a log-spaced scan followed by a golden-section refinement. A
    potentiation curve from Gmin gives ``a = A``, ``b = B``, ``g0 = Gmin`` of
    :class:`ExponentialDevice`; a depression curve from Gmax gives ``b = -B_down``,
    ``g0 = Gmax``.

    Raises
    ------
    ValueError
        For fewer than 3 points, unequal lengths, non-finite values, pulse numbers that
        are negative or not strictly increasing, or a conductance that is not monotone
        (or is constant).
    """
    p = np.asarray(pulses, dtype=np.float64)
    g = np.asarray(conductance, dtype=np.float64)
    if p.ndim != 1 or p.shape != g.shape or p.size < 3:
        raise ValueError(
            "fit_exponential needs pulses and conductance as 1-D sequences of equal length "
            f">= 3, got shapes {p.shape} and {g.shape}"
        )
    if not (np.isfinite(p).all() and np.isfinite(g).all()):
        raise ValueError("pulses and conductance must hold only finite numbers")
    if (p < 0).any() or not (np.diff(p) > 0).all():
        raise ValueError("pulses must be >= 0 and strictly increasing")
    steps = np.diff(g)
    if not ((steps >= 0).all() or (steps <= 0).all()) or not steps.any():
        raise ValueError(
            "conductance must be monotone in the pulse number (non-decreasing for "
            "potentiation, non-increasing for depression) and not constant"
        )
    spacing = float(np.diff(p).min())
    log_a = np.linspace(math.log(spacing / 100), math.log((p[-1] - p[0]) * 100), 801)
    sse = _linear_part(p, g, np.exp(log_a))[2]
    best = int(np.argmin(sse))
    lo, hi = log_a[max(best - 1, 0)], log_a[min(best + 1, len(log_a) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(100):
        left, right = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        pair = _linear_part(p, g, np.exp(np.array([left, right])))[2]
        if pair[0] <= pair[1]:
            hi = right
        else:
            lo = left
    a = math.exp((lo + hi) / 2)
    b, g0, _ = _linear_part(p, g, np.array([a]))
    return ExponentialFit(a=a, b=float(b[0]), g0=float(g0[0]))


def load_response_csv(path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read a measured response curve: two columns, pulse number and conductance.

    Blank lines and lines starting with ``#`` are skipped, and so is a first row that
    is not numeric (a header). Returns float64 tensors (pulses, conductance), ready for
    :class:`TableDevice` or :func:`fit_exponential`, which check monotonicity.

    Raises
    ------
    ValueError
        Naming the file and line, for a row that does not have exactly two columns or
        holds a value that is not a number, or for a file with no data rows.
    """
    path = Path(path)
    rows: list[tuple[float, float]] = []
    header_allowed = True
    with path.open(newline="") as handle:
        for lineno, row in enumerate(csv.reader(handle), start=1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if len(row) != 2:
                raise ValueError(
                    f"{path}:{lineno}: expected 2 columns (pulse number, conductance), "
                    f"got {len(row)}"
                )
            try:
                rows.append((float(row[0]), float(row[1])))
            except ValueError:
                if not header_allowed:
                    raise ValueError(f"{path}:{lineno}: {row!r} is not a pair of numbers") from None
            header_allowed = False
    if not rows:
        raise ValueError(f"{path}: no data rows (pulse number, conductance)")
    data = torch.tensor(rows, dtype=torch.float64)
    return data[:, 0].contiguous(), data[:, 1].contiguous()
