"""The physical-system target's byte layout on the wire, defined once.

A physical system (:mod:`hilt.host.physical`: an optical or acoustic layer, simulated or
a real instrument behind a serial link) is a protocol target of kind ``"physical"``. The
reference face (:class:`hilt.host.physical.target.PhysicalTarget`) and any host code
that drives one import :class:`PhysicalLayout`, so both read the bytes the same way; like
the rest of the protocol it needs no torch.

The byte layout (``in_features`` inputs, ``out_features`` outputs)
------------------------------------------------------------------
FORWARD, inputs = N >= 1 vectors of ``4 * in_features`` bytes
    Each value a little-endian IEEE-754 float32, vector after vector. The answer is N
    vectors of ``out_features`` little-endian float32: one measurement of each input, in
    order. BAD_PAYLOAD for no inputs, a length that is not a multiple of
    ``4 * in_features``, or a NaN or infinite input. A FORWARD is a measurement: with
    measurement noise two FORWARDs of the same input answer differently, and with drift
    each one moves the system a step (as the instrument itself drifts; the host changes
    nothing). A FORWARD retransmitted within the duplicate window is measured again.
    The answer must fit the device's ``max_payload``: send at most
    ``max_payload // (4 * out_features)`` vectors per FORWARD (the device refuses a
    longer answer only after the measurement).
WRITE, any address
    BAD_ADDRESS: the system has no programmable memory (its parameters are physics).
READ, any address
    BAD_ADDRESS: there is no state to read back; only measurements.
PULSE
    BAD_PAYLOAD: a physical system takes no update pulses, so no payload is valid.
RESET
    Answered OK and changes nothing: a command cannot undo drift or a bump, and the
    query count is a statistic, not state. (A board reset does the same.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import spec

KIND = "physical"
"""The capability record's ``kind`` of a physical target."""

VALUE_DTYPE = np.dtype("<f4")
"""Every input and output value on the wire: little-endian float32."""

VALUE_BYTES = VALUE_DTYPE.itemsize

_TARGET_BYTES = 1
"""The target id byte that precedes FORWARD's inputs."""


@dataclass(frozen=True)
class PhysicalLayout:
    """Byte sizes and pack/unpack helpers of the physical target (module docstring).

    Raises ValueError unless both widths are ints >= 1 small enough that one input vector
    (after the target id byte) and one output vector fit in the largest frame,
    :data:`~hilt.host.protocol.spec.MAX_PAYLOAD_CEILING` bytes.
    """

    in_features: int
    out_features: int

    def __post_init__(self) -> None:
        limits = {"in_features": (spec.MAX_PAYLOAD_CEILING - _TARGET_BYTES) // VALUE_BYTES,
                  "out_features": spec.MAX_PAYLOAD_CEILING // VALUE_BYTES}
        for name, limit in limits.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
                raise ValueError(f"{name} must be an int in 1..{limit} (one float32 vector "
                                 f"per {spec.MAX_PAYLOAD_CEILING}-byte frame), got {value!r}")

    @property
    def in_bytes(self) -> int:
        """Bytes of one FORWARD input vector."""
        return VALUE_BYTES * self.in_features

    @property
    def out_bytes(self) -> int:
        """Bytes of the answer to one FORWARD input vector."""
        return VALUE_BYTES * self.out_features

    @staticmethod
    def _pack(values: Any, width: int, name: str) -> bytes:
        array = np.asarray(values, dtype=np.float64)
        if array.ndim not in (1, 2) or array.shape[-1] != width:
            raise ValueError(f"{name} must have shape (N, {width}) or ({width},), "
                             f"got {array.shape}")
        return array.astype(VALUE_DTYPE).tobytes()

    @staticmethod
    def _unpack(data: bytes, width: int, name: str) -> np.ndarray:
        if len(data) % (VALUE_BYTES * width):
            raise ValueError(f"{name} must be a whole number of {VALUE_BYTES * width}-byte "
                             f"vectors, got {len(data)} bytes")
        return np.frombuffer(data, dtype=VALUE_DTYPE).astype(np.float32).reshape(-1, width)

    def pack_inputs(self, x: Any) -> bytes:
        """FORWARD inputs: ``(N, in_features)`` (or one vector) as float32 bytes."""
        return self._pack(x, self.in_features, "inputs")

    def unpack_inputs(self, data: bytes) -> np.ndarray:
        """FORWARD inputs as an ``(N, in_features)`` float32 array."""
        return self._unpack(data, self.in_features, "inputs")

    def pack_outputs(self, y: Any) -> bytes:
        """FORWARD answers: ``(N, out_features)`` (or one vector) as float32 bytes."""
        return self._pack(y, self.out_features, "outputs")

    def unpack_outputs(self, data: bytes) -> np.ndarray:
        """FORWARD answers as an ``(N, out_features)`` float32 array."""
        return self._unpack(data, self.out_features, "outputs")


def describe_physical(layout: PhysicalLayout, system: str) -> dict[str, Any]:
    """The capability entry (without the id) of a physical target; ``system`` names its kind.

    ``system`` is the kind of physical system, such as ``"optical"`` or ``"acoustic"``.
    """
    if not isinstance(system, str) or not system:
        raise ValueError(f"system must be a non-empty str, got {system!r}")
    return {
        "kind": KIND,
        "params": {"system": system, "in_features": layout.in_features,
                   "out_features": layout.out_features},
        "forward": {"in_bytes": layout.in_bytes, "out_bytes": layout.out_bytes,
                    "value_bytes": VALUE_BYTES, "dtype": "float32"},
        "read": None,
    }
