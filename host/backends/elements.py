"""Arrays in, frames out: each processing element's parameters and vectors on the wire.

A training loop speaks numpy arrays (weight matrices, input batches, conductance
levels); a board speaks the byte layouts of :mod:`hilt.host.protocol`. An
:class:`Element` holds one target's layout, built from its capability entry, and turns
the one into the other: parameters into WRITE requests, a batch into FORWARD payloads
that fit the board's frames and back, pulse updates into PULSE payloads. It checks every
array against what the element takes, so a dataset that does not fit the board is
refused with both shapes named before a byte is sent.
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

from hilt.host.protocol import spec
from hilt.host.protocol.binary_layout import THRESHOLD_BASE, BinaryLayerLayout
from hilt.host.protocol.physical_layout import PhysicalLayout
from hilt.host.protocol.shift_layout import ShiftArrayLayout
from hilt.host.protocol.synapse_layout import Slot, SynapseLayout
from hilt.host.reference_board import reference_target
from hilt.host.transport import Request

_WRITE_HEADER = struct.calcsize(spec.WRITE_FORMAT)
_TARGET_HEADER = struct.calcsize(spec.TARGET_FORMAT)


class ElementError(ValueError):
    """An array that does not fit the element, or an operation it does not have."""


def check_batch(name: str, x: Any, width: int, low: float, high: float,
                what: str) -> np.ndarray:
    """``x`` as a 2-D array of ``width`` columns with values in ``low..high``, or an
    :class:`ElementError` naming the shape or value and what would fit."""
    array = np.asarray(x)
    if array.ndim != 2 or array.shape[1] != width or array.shape[0] == 0:
        raise ElementError(f"{name} must have shape (N >= 1, {width}) for {what}, "
                           f"got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ElementError(f"{name} must be finite numbers")
    if array.size and (array.min() < low or array.max() > high):
        raise ElementError(f"{name} must lie in {low}..{high} for {what}, got values in "
                           f"{array.min()}..{array.max()}")
    return array


class Element(ABC):
    """One target's arrays <-> frames (see the module docstring).

    Attributes
    ----------
    target : int
        The target's id on its board.
    entry : dict
        Its capability entry.
    in_features, out_features : int
        Width of one input vector and of one result vector.
    """

    kind: str = ""

    def __init__(self, entry: Mapping[str, Any], max_payload: int) -> None:
        self.target = entry["id"]
        self.entry = dict(entry)
        self.max_payload = max_payload
        self.layout = self.make_layout(entry)
        self.check_frames()

    def check_frames(self) -> None:
        """Refuse an element one of whose vectors does not fit the board's frames."""
        room = self.max_payload - _TARGET_HEADER
        if self.in_bytes > room or self.out_bytes > self.max_payload:
            raise ElementError(
                f"{self.what} does not fit the board's {self.max_payload}-byte frames: one "
                f"vector is {self.in_bytes} bytes in and {self.out_bytes} out, a FORWARD "
                f"carries at most {room} in and {self.max_payload} out; make the element "
                f"smaller or the frames larger (max_payload, at most "
                f"{spec.MAX_PAYLOAD_CEILING})")

    @staticmethod
    def make_layout(entry: Mapping[str, Any]) -> Any:
        """The target's byte layout; the reference face checks the entry and holds the
        layout both faces share."""
        return reference_target(entry).layout

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(target {self.target}, {self.in_features} -> "
                f"{self.out_features})")

    @property
    @abstractmethod
    def in_features(self) -> int: ...

    @property
    @abstractmethod
    def out_features(self) -> int: ...

    @property
    def what(self) -> str:
        """How the element is named in messages."""
        return f"the {self.kind} (target {self.target}) {self.in_features} -> {self.out_features}"

    @abstractmethod
    def pack_inputs(self, x: np.ndarray) -> bytes:
        """A checked batch's FORWARD bytes."""

    @abstractmethod
    def unpack_outputs(self, data: bytes) -> np.ndarray:
        """The result vectors of FORWARD answers."""

    @property
    @abstractmethod
    def in_bytes(self) -> int: ...

    @property
    @abstractmethod
    def out_bytes(self) -> int: ...

    def check_inputs(self, x: Any) -> np.ndarray:
        """``x`` if it is a batch this element takes (override to check values)."""
        return check_batch("inputs", x, self.in_features, -np.inf, np.inf, self.what)

    def _integers(self, x: Any, low: int, high: int) -> np.ndarray:
        """``x`` if it is a batch of integers in ``low..high``."""
        array = check_batch("inputs", x, self.in_features, low, high, self.what)
        if not np.issubdtype(array.dtype, np.integer):
            raise ElementError(f"inputs must be integers for {self.what}, got {array.dtype}")
        return array

    def forward_payloads(self, x: Any) -> list[bytes]:
        """FORWARD payloads (target id first) of the batch, as many vectors a frame as fit."""
        x = self.check_inputs(x)
        per_frame = min((self.max_payload - _TARGET_HEADER) // self.in_bytes,
                        self.max_payload // self.out_bytes)
        prefix = struct.pack(spec.TARGET_FORMAT, self.target)
        return [prefix + self.pack_inputs(x[start:start + per_frame])
                for start in range(0, len(x), per_frame)]

    def outputs(self, answers: Sequence[bytes]) -> np.ndarray:
        """The result vectors of a batch's FORWARD answers, in order."""
        return self.unpack_outputs(b"".join(answers))

    def load_requests(self, **arrays: Any) -> list[Request]:
        """The WRITE requests that load the element's parameters."""
        raise ElementError(f"{self.what} has no parameters to load")

    def read_requests(self) -> list[Request]:
        """The READ requests that read the element's state back."""
        raise ElementError(f"{self.what} has no state to read back")

    def state(self, answers: Sequence[bytes]) -> dict[str, np.ndarray]:
        raise ElementError(f"{self.what} has no state to read back")

    def pulse_payloads(self, slots: Sequence[Slot]) -> list[bytes]:
        """PULSE payloads of whole updates, as many a frame as fit."""
        raise ElementError(f"{self.what} takes no pulses: pulse updates need a "
                           f"synapse_crossbar target (build the firmware with --pe synapse)")

    def _writes(self, address: int, data: bytes, unit: int, *,
                most: int | None = None) -> list[Request]:
        """WRITE requests of ``data`` from ``address``, whole ``unit``-byte units a frame
        (at most ``most``); each unit is one address further."""
        per_frame = (self.max_payload - _WRITE_HEADER) // unit
        if most is not None:
            per_frame = min(per_frame, most)
        if per_frame < 1:
            raise ElementError(f"one {unit}-byte unit of {self.what} does not fit a "
                               f"{self.max_payload}-byte frame")
        requests = []
        for first in range(0, len(data) // unit, per_frame):
            chunk = data[first * unit:(first + per_frame) * unit]
            requests.append(Request(spec.Command.WRITE, struct.pack(
                spec.WRITE_FORMAT, self.target, address + first) + chunk))
        return requests


class ShiftArrayElement(Element):
    """A shift-vector array: power-of-two weights in, signed integer dot products out."""

    kind = "shift_array"

    layout: ShiftArrayLayout

    in_features = property(lambda self: self.layout.depth)
    out_features = property(lambda self: self.layout.pes)
    in_bytes = property(lambda self: self.layout.depth)
    out_bytes = property(lambda self: self.layout.out_bytes)

    def check_inputs(self, x: Any) -> np.ndarray:
        return self._integers(x, self.layout.in_low, self.layout.in_high)

    def pack_inputs(self, x: np.ndarray) -> bytes:
        return self.layout.pack_inputs(x)

    def unpack_outputs(self, data: bytes) -> np.ndarray:
        return self.layout.unpack_outputs(data)

    def load_requests(self, *, weights: Any) -> list[Request]:
        """``weights``: integers 0 or +-2^j, shape (pes, depth)."""
        lay = self.layout
        weights = np.asarray(weights)
        if weights.shape != (lay.pes, lay.depth):
            raise ElementError(f"weights must have shape ({lay.pes}, {lay.depth}) for "
                               f"{self.what}, got {weights.shape}")
        try:
            data = lay.pack_int_weights(weights)
        except ValueError as error:
            raise ElementError(f"weights do not fit {self.what}: {error}") from None
        return self._writes(0, data, lay.beat_bytes)


class BinaryLayerElement(Element):
    """A binarized layer: weight bits and thresholds in, threshold bits or counts out."""

    kind = "binary_layer"

    layout: BinaryLayerLayout

    in_features = property(lambda self: self.layout.in_features)
    out_features = property(lambda self: self.layout.out_features)
    in_bytes = property(lambda self: self.layout.row_bytes)
    out_bytes = property(lambda self: self.layout.out_bytes)

    def check_inputs(self, x: Any) -> np.ndarray:
        array = check_batch("inputs", x, self.in_features, 0, 1, self.what)
        if not np.all(array == np.round(array)):
            raise ElementError(f"inputs must be bits (0 or 1) for {self.what}")
        return array.astype(np.uint8)

    def pack_inputs(self, x: np.ndarray) -> bytes:
        return self.layout.pack_inputs(x)

    def unpack_outputs(self, data: bytes) -> np.ndarray:
        return self.layout.unpack_outputs(data)

    def load_requests(self, *, weights: Any, thresholds: Any = None) -> list[Request]:
        """``weights``: bits (out_features, in_features), 1 meaning +1; ``thresholds``:
        integers 0..in_features + 1, one per neuron (for ``emit="bits"``)."""
        lay = self.layout
        weights = check_batch("weights", weights, lay.in_features, 0, 1, self.what)
        if len(weights) != lay.out_features:
            raise ElementError(f"weights must have shape ({lay.out_features}, "
                               f"{lay.in_features}) for {self.what}, got {weights.shape}")
        requests = self._writes(0, lay.pack_weights(weights.astype(np.uint8)), lay.row_bytes)
        if thresholds is not None:
            values = np.asarray(thresholds)
            if values.shape != (lay.out_features,) or values.min() < 0 \
                    or values.max() > lay.max_threshold:
                raise ElementError(f"thresholds must be {lay.out_features} integers in "
                                   f"0..{lay.max_threshold} for {self.what}")
            requests += self._writes(THRESHOLD_BASE, lay.pack_thresholds(values),
                                     lay.threshold_bytes)
        return requests


class SynapseCrossbarElement(Element):
    """A synapse crossbar: conductance levels in and out, signed sums, pulse updates."""

    kind = "synapse_crossbar"

    layout: SynapseLayout

    def __init__(self, entry: Mapping[str, Any], max_payload: int) -> None:
        super().__init__(entry, max_payload)
        self.max_pulses = entry["params"]["max_pulses"]

    def check_frames(self) -> None:
        super().check_frames()
        lay = self.layout
        room = self.max_payload - max(_WRITE_HEADER, _TARGET_HEADER)
        if max(lay.row_bytes, lay.slot_bytes) > room:
            raise ElementError(
                f"{self.what} does not fit the board's {self.max_payload}-byte frames: a "
                f"row is {lay.row_bytes} bytes and a pulse slot {lay.slot_bytes}, a frame "
                f"carries {room}; make the crossbar smaller or the frames larger "
                f"(max_payload, at most {spec.MAX_PAYLOAD_CEILING})")

    in_features = property(lambda self: self.layout.cols)
    out_features = property(lambda self: self.layout.rows)
    in_bytes = property(lambda self: self.layout.cols)
    out_bytes = property(lambda self: self.layout.out_bytes)

    def check_inputs(self, x: Any) -> np.ndarray:
        return self._integers(x, self.layout.in_low, self.layout.in_high)

    def pack_inputs(self, x: np.ndarray) -> bytes:
        return self.layout.pack_inputs(x.tolist())

    def unpack_outputs(self, data: bytes) -> np.ndarray:
        return self.layout.unpack_outputs(data)

    def load_requests(self, *, plus: Any, minus: Any) -> list[Request]:
        """``plus``, ``minus``: levels 0..2**state_bits - 1, shape (rows, cols)."""
        lay = self.layout
        levels = []
        for name, value in (("plus", plus), ("minus", minus)):
            array = check_batch(name, value, lay.cols, 0, lay.max_level, self.what)
            if len(array) != lay.rows:
                raise ElementError(f"{name} must have shape ({lay.rows}, {lay.cols}) for "
                                   f"{self.what}, got {array.shape}")
            levels.append(array.astype(np.int64))
        data = b"".join(lay.pack_row(levels[0][row].tolist(), levels[1][row].tolist())
                        for row in range(lay.rows))
        # The crossbar programs one row per WRITE.
        return self._writes(0, data, lay.row_bytes, most=1)

    def read_requests(self) -> list[Request]:
        lay = self.layout
        return [Request(spec.Command.READ, struct.pack(spec.READ_FORMAT, self.target, row,
                                                       lay.row_bytes))
                for row in range(lay.rows)]

    def state(self, answers: Sequence[bytes]) -> dict[str, np.ndarray]:
        rows = [self.layout.unpack_row(answer) for answer in answers]
        return {"plus": np.array([plus for plus, _ in rows], dtype=np.int64),
                "minus": np.array([minus for _, minus in rows], dtype=np.int64)}

    def pulse_payloads(self, slots: Sequence[Slot]) -> list[bytes]:
        """PULSE payloads of ``slots``, never splitting an update across frames."""
        lay = self.layout
        if not slots or not slots[-1].last:
            raise ElementError("slots must end an update: the final slot needs last=True")
        updates, current = [], []
        for slot in slots:
            current.append(lay.pack_slot(slot))
            if slot.last:
                if len(current) > self.max_pulses:
                    raise ElementError(f"an update of {len(current)} slots is longer than "
                                       f"max_pulses={self.max_pulses} of {self.what}")
                updates.append(b"".join(current))
                current = []
        prefix = struct.pack(spec.TARGET_FORMAT, self.target)
        payloads, frame = [], b""
        for update in updates:
            if frame and len(prefix) + len(frame) + len(update) > self.max_payload:
                payloads.append(prefix + frame)
                frame = b""
            frame += update
        payloads.append(prefix + frame)
        return payloads


class PhysicalElement(Element):
    """A physical system behind the protocol (an instrument): float32 vectors in and out."""

    kind = "physical"
    layout: PhysicalLayout

    @staticmethod
    def make_layout(entry: Mapping[str, Any]) -> PhysicalLayout:
        # A physical system has no twin to build: its entry gives only the widths.
        params = entry["params"]
        return PhysicalLayout(params["in_features"], params["out_features"])

    in_features = property(lambda self: self.layout.in_features)
    out_features = property(lambda self: self.layout.out_features)
    in_bytes = property(lambda self: self.layout.in_bytes)
    out_bytes = property(lambda self: self.layout.out_bytes)

    def pack_inputs(self, x: np.ndarray) -> bytes:
        return self.layout.pack_inputs(x)

    def unpack_outputs(self, data: bytes) -> np.ndarray:
        return self.layout.unpack_outputs(data).astype(np.float64)


ELEMENTS: Mapping[str, Callable[[Mapping[str, Any], int], Element]] = MappingProxyType({
    "shift_array": ShiftArrayElement,
    "binary_layer": BinaryLayerElement,
    "synapse_crossbar": SynapseCrossbarElement,
    "physical": PhysicalElement,
})
"""The element of each target kind a training loop can drive."""
