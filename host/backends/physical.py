"""A backend on a simulated physical system, measured in-process.

``physical:optical`` and ``physical:acoustic`` stand in for the wave-based layers of
backpropagation-free training: the trainer sends inputs and reads measurements, never
gradients. The same systems can sit behind the wire protocol
(:class:`~hilt.host.physical.target.PhysicalTarget`), where a ``serial:`` URL drives
them, or a real instrument, through the same interface.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hilt.host.backends.base import Backend, BackendError
from hilt.host.backends.elements import ElementError, check_batch
from hilt.host.physical.system import PhysicalSystem


class PhysicalBackend(Backend):
    """``system`` as a backend: :meth:`forward` is one measurement of each input."""

    kind = "physical"
    operations = ("forward",)

    def __init__(self, system: PhysicalSystem, url: str) -> None:
        super().__init__()
        self.system = system
        self.url = url
        self.in_features = system.in_features
        self.out_features = system.out_features

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "kind": self.kind, "in_features": self.in_features,
                "out_features": self.out_features, "operations": list(self.operations),
                "system": self.system.config()}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.check_open()
        try:
            x = check_batch("inputs", x, self.in_features, -np.inf, np.inf,
                            f"the {self.system.name} layer {self.in_features} -> "
                            f"{self.out_features}")
        except ElementError as error:
            raise BackendError(f"{self.url}: {error}") from None
        self.stats.forward_calls += 1
        self.stats.queries += len(x)
        return self.system.measure(x)

    def perturb(self, strength: float, seed: int | None = None) -> None:
        """Bump the system once (see :meth:`PhysicalSystem.perturb`)."""
        self.system.perturb(strength, seed)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume the system exactly, for a checkpoint."""
        return self.system.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.system.load_state_dict(state)

    def close(self) -> None:
        """Nothing to release (the system lives in this process), but it is not measured
        after this."""
        self.closed = True
