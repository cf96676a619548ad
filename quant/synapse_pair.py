"""A differential pair of conductance devices per weight, w = (G+ - G-) / scale.

One device alone can only hold a non-negative conductance and, on many technologies,
moves reliably in one direction only. A pair holds a signed weight as the difference
of two cells; the *unidirectional* update only ever potentiates, G+ for a positive
change and G- for a negative one, and when the cells approach saturation a
:meth:`SynapsePair.refresh` resets both to Gmin and reprograms the difference onto one
of them. A crossbar of pairs then reads sum_j (G+ - G-)_j x_j.

The pair counts every pulse it spends, per weight, as a proxy for write energy and
device wear: a training rule that needs fewer pulses for the same accuracy is cheaper
on real hardware.
"""

from __future__ import annotations

import math

import torch

from .synapse_device import SynapseDevice

__all__ = ["SynapsePair"]


class SynapsePair:
    """A matrix of weights, each held by a pair of devices of one model.

    Parameters
    ----------
    device : SynapseDevice
        The response curve and variations of every cell.
    shape : tuple of int
        Shape of the weight matrix.
    scale : float or None
        Conductance per unit weight, > 0; None (default) means ``w_max - w_min``, so
        weights lie in [-1, 1].
    generator : torch.Generator or None
        The only source of randomness: the device-to-device spread is drawn from it
        once, here, and the cycle-to-cycle noise on every update. Required when the
        device has a non-zero variation.
    dtype : torch.dtype
        Floating-point type of the states (default float64).

    Attributes
    ----------
    g_plus, g_minus : torch.Tensor
        The two conductance states, shaped like the weights, starting at Gmin.
    potentiation_pulses, depression_pulses, resets : torch.Tensor
        Per weight (int64, both cells together), the pulses spent in each direction and
        the reset operations done by :meth:`refresh`.
    """

    def __init__(
        self,
        device: SynapseDevice,
        shape: tuple[int, ...],
        *,
        scale: float | None = None,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        if not isinstance(device, SynapseDevice):
            raise TypeError(f"device must be a SynapseDevice, got {device!r}")
        if scale is None:
            scale = device.conductance_range
        scale = float(scale)
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(
                f"scale must be a finite number > 0 (conductance per unit weight), got {scale}"
            )
        self.device = device
        self.scale = scale
        self.generator = generator
        self.shape = tuple(shape)
        self.g_plus = device.initial_state(self.shape, dtype=dtype)
        self.g_minus = device.initial_state(self.shape, dtype=dtype)
        self.dtod_plus = device.sample_dtod(self.shape, generator, dtype=dtype)
        self.dtod_minus = device.sample_dtod(self.shape, generator, dtype=dtype)
        self.potentiation_pulses = torch.zeros(self.shape, dtype=torch.int64)
        self.depression_pulses = torch.zeros(self.shape, dtype=torch.int64)
        self.resets = torch.zeros(self.shape, dtype=torch.int64)

    @property
    def weight(self) -> torch.Tensor:
        """(G+ - G-) / scale."""
        return (self.g_plus - self.g_minus) / self.scale

    def pulses_spent(self) -> tuple[int, int]:
        """Total (potentiation, depression) pulses over all weights so far."""
        return int(self.potentiation_pulses.sum()), int(self.depression_pulses.sum())

    def _signed_pulses(self, name: str, pulses: int | torch.Tensor) -> torch.Tensor:
        n = torch.as_tensor(pulses)
        if n.is_floating_point() or n.dtype == torch.bool or n.is_complex():
            raise ValueError(
                f"{name} must be an integer tensor of pulse counts, got dtype {n.dtype}"
            )
        try:
            return torch.broadcast_to(n.to(torch.int64), self.shape)
        except RuntimeError:
            raise ValueError(
                f"{name} of shape {tuple(n.shape)} do not broadcast to the weights' shape "
                f"{self.shape}"
            ) from None

    def update(self, pulses: int | torch.Tensor) -> None:
        """The unidirectional update: ``pulses`` > 0 potentiates G+, < 0 potentiates G-."""
        n = self._signed_pulses("pulses", pulses)
        self.pulse(plus=n.clamp_min(0), minus=(-n).clamp_min(0))

    def pulse(self, *, plus: int | torch.Tensor = 0, minus: int | torch.Tensor = 0) -> None:
        """Pulse each cell directly: a positive count potentiates it, a negative one depresses.

        This is the bidirectional face, for rules that also depress; :meth:`update` is the
        unidirectional one.
        """
        plus = self._signed_pulses("plus", plus)
        minus = self._signed_pulses("minus", minus)
        self.g_plus = self._move(self.g_plus, plus, self.dtod_plus)
        self.g_minus = self._move(self.g_minus, minus, self.dtod_minus)

    def _move(self, G: torch.Tensor, n: torch.Tensor, dtod: torch.Tensor) -> torch.Tensor:
        up, down = n.clamp_min(0), (-n).clamp_min(0)
        device, generator = self.device, self.generator
        # A direction that no cell pulses is skipped, so it draws nothing from the generator.
        if bool(up.any()):
            G = device.potentiate(G, up, dtod=dtod, generator=generator)
        if bool(down.any()):
            G = device.depress(G, down, dtod=dtod, generator=generator)
        self.potentiation_pulses += up
        self.depression_pulses += down
        return G

    def reset(self, mask: torch.Tensor | None = None) -> None:
        """Reset both cells to Gmin where ``mask`` is true (default: all), two resets each.

        The weight is lost; :meth:`refresh` keeps it. A rule that reprograms the weight
        itself (program and verify) resets first.
        """
        mask = self._mask(mask)
        self.resets += 2 * mask.to(torch.int64)
        g_min = self.device.w_min
        self.g_plus = torch.where(mask, g_min, self.g_plus)
        self.g_minus = torch.where(mask, g_min, self.g_minus)

    def refresh(self, mask: torch.Tensor | None = None) -> None:
        """Reset both cells to Gmin and reprogram the difference onto one of them.

        The number of potentiation pulses is the nominal count whose conductance lands
        nearest the old difference (:meth:`SynapseDevice.pulses_to_reach`), so without
        variation the weight changes by at most half a step, and not at all for a
        linear device whose states lie on its step grid. Only cells where ``mask`` is
        true are refreshed (default: all). Each refreshed weight counts two resets.
        """
        mask = self._mask(mask)
        difference = torch.where(mask, self.g_plus - self.g_minus, 0)
        count = self.device.pulses_to_reach(difference.abs())
        self.reset(mask)
        self.update(torch.where(difference > 0, count, -count))

    def _mask(self, mask: torch.Tensor | None) -> torch.Tensor:
        if mask is None:
            mask = torch.ones(self.shape, dtype=torch.bool)
        mask = torch.as_tensor(mask)
        if mask.dtype != torch.bool:
            raise ValueError(f"mask must be a bool tensor, got dtype {mask.dtype}")
        try:
            mask = torch.broadcast_to(mask, self.shape)
        except RuntimeError:
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not broadcast to the weights' shape "
                f"{self.shape}"
            ) from None
        return mask
