"""An acoustic/microwave-like physical layer: a few resonant modes, then a saturating amplifier.

The model of a driven cavity (a plate, a room, a microwave resonator) at one drive
frequency, with ``in_features`` transducers exciting it and ``out_features`` sensors
listening:

1. Linear propagation. ``z = W x`` with ``W = sum_m s_m u_m v_m^T``, a sum over
   ``modes`` resonant modes: ``v_m`` (``in_features`` entries, normal with variance
   ``1 / in_features``) is how strongly each transducer excites mode ``m``, ``u_m``
   (``out_features`` standard normal entries) how strongly each sensor picks it up, and
   ``s_m`` its strength, decaying as ``exp(-spectrum_decay * m / modes)`` (0: a flat
   spectrum) and normalized so ``sum s_m^2 = 1``. So each ``z_k`` has variance
   ``mean(x^2)``: O(1) inputs give O(1) signals, and ``W`` has rank at most ``modes``,
   its singular values decaying like the spectrum.
2. Saturation. ``y = saturation * tanh(gain * z / saturation)``: a small-signal gain
   ``gain`` and readings bounded by ``saturation`` in magnitude (before noise).

Noise, drift and perturbations (of ``W``, as a whole matrix) are those of
:class:`~hilt.host.physical.system.PhysicalSystem`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .system import PhysicalSystem, check_features, check_level


class AcousticLayer(PhysicalSystem):
    """A random few-mode linear medium followed by a tanh amplifier (module docstring).

    Parameters
    ----------
    in_features, out_features, seed, noise, drift
        As for :class:`~hilt.host.physical.system.PhysicalSystem`.
    modes
        Number of resonant modes (int >= 1); None for ``min(in_features, out_features)``.
    spectrum_decay
        How fast the mode strengths fall off (>= 0).
    gain
        Small-signal gain of the output amplifier (> 0).
    saturation
        Bound of the readings' magnitude (> 0).
    """

    name = "acoustic"

    def __init__(self, in_features: int, out_features: int, *, modes: int | None = None,
                 spectrum_decay: float = 3.0, gain: float = 1.0, saturation: float = 1.0,
                 seed: int = 0, noise: float = 0.0, drift: float = 0.0) -> None:
        super().__init__(in_features, out_features, seed=seed, noise=noise, drift=drift)
        self.modes = (min(self.in_features, self.out_features) if modes is None
                      else check_features("modes", modes))
        self.spectrum_decay = check_level("spectrum_decay", spectrum_decay,
                                          "how fast the mode strengths decay")
        self.gain = check_level("gain", gain, "the amplifier's small-signal gain")
        self.saturation = check_level("saturation", saturation, "the readings' bound")
        for name in ("gain", "saturation"):
            if getattr(self, name) == 0:
                raise ValueError(f"{name} must be > 0, got 0")
        rng = self._construction
        excite = rng.standard_normal((self.modes, self.in_features)) / np.sqrt(self.in_features)
        pick_up = rng.standard_normal((self.out_features, self.modes))
        strengths = np.exp(-self.spectrum_decay * np.arange(self.modes) / self.modes)
        strengths /= np.sqrt(np.sum(strengths ** 2))
        self._install({"coupling": (pick_up * strengths) @ excite})

    def _settings(self) -> dict[str, Any]:
        return {"modes": self.modes, "spectrum_decay": self.spectrum_decay, "gain": self.gain,
                "saturation": self.saturation}

    def _transfer(self, x: np.ndarray) -> np.ndarray:
        z = x @ self._params["coupling"].T
        return self.saturation * np.tanh(self.gain * z / self.saturation)
