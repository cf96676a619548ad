"""A physical system as a reference-device target, so it is driven like a board.

:class:`PhysicalTarget` puts a :class:`~hilt.host.physical.system.PhysicalSystem` behind
:class:`~hilt.host.protocol.reference.Target`, answering in the byte layout of
:mod:`hilt.host.protocol.physical_layout` (FORWARD measures; WRITE, READ and PULSE are
refused; RESET changes nothing). Served by a
:class:`~hilt.host.protocol.reference.ReferenceDevice`, the simulated system sits behind
the same frames and serial URL as an instrument would.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hilt.host.protocol import spec
from hilt.host.protocol.physical_layout import PhysicalLayout, describe_physical
from hilt.host.protocol.reference import TargetError

from .system import PhysicalSystem


class PhysicalTarget:
    """A :class:`PhysicalSystem` as a reference-device target (see the layout).

    Every refusal is decided before the system is measured.

    Attributes
    ----------
    system : PhysicalSystem
    layout : PhysicalLayout
    resets : int
        RESETs (and board resets) received; each one changed nothing.
    """

    def __init__(self, system: PhysicalSystem) -> None:
        if not isinstance(system, PhysicalSystem):
            raise TypeError(f"system must be a PhysicalSystem, got {system!r}")
        self.system = system
        self.layout = PhysicalLayout(system.in_features, system.out_features)
        self.resets = 0

    def describe(self) -> dict[str, Any]:
        return describe_physical(self.layout, self.system.name)

    def write(self, address: int, data: bytes) -> None:
        raise TargetError(spec.Status.BAD_ADDRESS,
                          f"a physical system has no writable memory (address {address})")

    def read(self, address: int, count: int) -> bytes:
        raise TargetError(spec.Status.BAD_ADDRESS,
                          f"a physical system has no readable memory (address {address})")

    def forward(self, payload: bytes) -> bytes:
        layout = self.layout
        if not payload or len(payload) % layout.in_bytes:
            raise TargetError(spec.Status.BAD_PAYLOAD,
                              f"FORWARD takes vectors of {layout.in_bytes} bytes "
                              f"({layout.in_features} float32), got {len(payload)} bytes")
        inputs = layout.unpack_inputs(payload)
        if not np.isfinite(inputs).all():
            raise TargetError(spec.Status.BAD_PAYLOAD, "FORWARD inputs must be finite")
        return layout.pack_outputs(self.system.measure(inputs))

    def pulse(self, payload: bytes) -> None:
        raise TargetError(spec.Status.BAD_PAYLOAD, "a physical system takes no pulses")

    def reset(self) -> None:
        self.resets += 1
