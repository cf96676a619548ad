"""An optical-like physical layer: encode on a field, scatter, detect intensity.

The model of a multimode fibre or a scattering medium read by a camera, the optical
layer of Momeni et al.'s backpropagation-free physical networks:

1. Encoding. ``encoding="amplitude"``: the field is ``e = x`` (a real amplitude,
   negative values meaning a pi phase shift). ``encoding="phase"``: ``e = exp(i*pi*x)``,
   a spatial light modulator's phase, so only ``x`` modulo 2 matters.
2. Scattering. ``E = T e`` with ``T`` a fixed ``(out_features, in_features)`` complex
   Gaussian transmission matrix, entries ``(a + i b) / sqrt(2 * in_features)`` with
   ``a, b`` standard normal, so ``E|T_ij|^2 = 1 / in_features``.
3. Detection. The camera sees the intensity ``I = |E|^2``, the layer's nonlinearity (it
   is quadratic in ``e``), with an optional soft saturation
   ``I -> saturation * tanh(I / saturation)`` (unit slope at 0) and a dark offset added.

Scale: each intensity has mean ``mean(|e|^2)`` over the input vector, so O(1) inputs
give O(1) readings (exactly 1 on average for phase encoding). Noise, drift and
perturbations (of ``T``) are those of :class:`~hilt.host.physical.system.PhysicalSystem`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from .system import PhysicalSystem, check_level

ENCODINGS = ("amplitude", "phase")


class OpticalLayer(PhysicalSystem):
    """A random scattering medium between an input modulator and an intensity detector.

    Parameters
    ----------
    in_features, out_features, seed, noise, drift
        As for :class:`~hilt.host.physical.system.PhysicalSystem`.
    encoding
        ``"amplitude"`` (field = x) or ``"phase"`` (field = exp(i*pi*x)).
    saturation
        None for a linear detector, else the level (> 0) the intensity saturates at.
    offset
        Dark level (>= 0) added to every noiseless reading.
    """

    name = "optical"

    def __init__(self, in_features: int, out_features: int, *,
                 encoding: Literal["amplitude", "phase"] = "amplitude",
                 saturation: float | None = None, offset: float = 0.0, seed: int = 0,
                 noise: float = 0.0, drift: float = 0.0) -> None:
        super().__init__(in_features, out_features, seed=seed, noise=noise, drift=drift)
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        self.encoding = encoding
        if saturation is not None:
            saturation = check_level("saturation", saturation,
                                     "the detector's saturation level, or None")
            if saturation == 0:
                raise ValueError("saturation must be > 0 (or None for no saturation), got 0")
        self.saturation = saturation
        self.offset = check_level("offset", offset, "the detector's dark level")
        rng = self._construction
        shape = (self.out_features, self.in_features)
        transmission = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) \
            / math.sqrt(2.0 * self.in_features)
        self._install({"transmission": transmission})

    def _settings(self) -> dict[str, Any]:
        return {"encoding": self.encoding, "saturation": self.saturation, "offset": self.offset}

    def _transfer(self, x: np.ndarray) -> np.ndarray:
        field = np.exp(1j * np.pi * x) if self.encoding == "phase" else x
        intensity = np.abs(field @ self._params["transmission"].T) ** 2
        if self.saturation is not None:
            intensity = self.saturation * np.tanh(intensity / self.saturation)
        return intensity + self.offset
