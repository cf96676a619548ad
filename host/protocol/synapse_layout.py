"""The synapse crossbar target's byte layout on the wire, defined once for both faces.

The reference face (:mod:`hilt.host.synapse_target`) and the gateware target
(:mod:`hilt.firmware.synapse_target`) both import :class:`SynapseLayout`, so the two
cannot drift apart; like the rest of the protocol it needs no torch.

The byte layout (``rows x cols`` crossbar, ``b = state_bits <= 8``, ``in_bits <= 8``)
-------------------------------------------------------------------------------------
WRITE, address = row, data = ``2 * cols`` bytes
    ``plus[0..cols)`` then ``minus[0..cols)``, one level per byte (``0..2**b - 1``):
    programs the row. BAD_ADDRESS for ``row >= rows``; otherwise BAD_PAYLOAD for any
    other data length or a level past ``2**b - 1``.
READ, address = row, count = ``2 * cols``
    The row's levels in the WRITE layout. BAD_ADDRESS for ``row >= rows``; otherwise
    BAD_PAYLOAD for any other count. No side effect.
FORWARD, inputs = N >= 1 vectors of ``cols`` bytes
    Each byte a two's-complement int8 that must lie in the signed ``in_bits`` range.
    The result is N vectors of ``rows`` values ``y_i = sum_j (G+ - G-)_ij x_j``, each
    little-endian two's complement in ``ceil(acc_width / 8)`` bytes. BAD_PAYLOAD for no
    inputs, a length that is not a multiple of ``cols``, or an input out of range. No
    side effect.
PULSE, slots = N >= 1 slots of ``slot_bytes = ceil((2 * rows + 2 * cols + 2) / 8)`` bytes
    Each slot is one little-endian integer whose bits, from bit 0, are ``row_fire``
    (``rows`` bits, bit i = row i), ``row_neg`` (``rows``), ``col_fire`` (``cols``, bit
    j = column j), ``col_neg`` (``cols``), ``unidirectional`` (1), ``last`` (1), then
    zero padding up to the whole byte. An update is the slots up to and including one
    with ``last`` set. BAD_PAYLOAD, with nothing applied, for no slots, a length that is
    not a multiple of ``slot_bytes``, padding that is not zero, a final slot without
    ``last``, or an update of more than ``max_pulses`` slots.
RESET
    Every level 0 and every pair's LFSR back to its seed: the state a hardware reset
    gives. (The model's pulse counters are statistics, not state, and are kept.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from hilt.quant.synapse_tables import StepTables

if TYPE_CHECKING:
    from hilt.quant.synapse_golden import SynapseCrossbarModel

MAX_TARGET_BITS = 8
"""Widest level (``state_bits``) and read input (``in_bits``) the one-byte layout carries."""


class Slot(NamedTuple):
    """One update slot; the fire and negative masks hold bit i for row (column) i."""

    row_fire: int
    row_neg: int
    col_fire: int
    col_neg: int
    unidirectional: bool
    last: bool


@dataclass(frozen=True)
class SynapseLayout:
    """Byte sizes and pack/unpack helpers of the synapse crossbar target (module docstring).

    Raises ValueError for ``state_bits`` or ``in_bits`` past :data:`MAX_TARGET_BITS`,
    which one byte a level or an input cannot carry.
    """

    rows: int
    cols: int
    state_bits: int
    in_bits: int
    acc_width: int

    def __post_init__(self) -> None:
        for name in ("state_bits", "in_bits"):
            value = getattr(self, name)
            if value > MAX_TARGET_BITS:
                raise ValueError(f"the synapse target carries one byte per value, so "
                                 f"{name} must be at most {MAX_TARGET_BITS}, got {value}")

    @classmethod
    def of_model(cls, model: SynapseCrossbarModel) -> SynapseLayout:
        """The layout of ``model``'s crossbar."""
        return cls(model.rows, model.cols, model.tables.state_bits, model.in_bits,
                   model.acc_width)

    @property
    def max_level(self) -> int:
        """The highest level, ``2**state_bits - 1``."""
        return (1 << self.state_bits) - 1

    @property
    def row_bytes(self) -> int:
        """Bytes of a WRITE's data and of a READ's answer."""
        return 2 * self.cols

    @property
    def in_low(self) -> int:
        """The lowest FORWARD input, ``-2**(in_bits - 1)``."""
        return -(1 << (self.in_bits - 1))

    @property
    def in_high(self) -> int:
        """The highest FORWARD input, ``2**(in_bits - 1) - 1``."""
        return (1 << (self.in_bits - 1)) - 1

    @property
    def y_bytes(self) -> int:
        """Bytes of one read result value."""
        return -(-self.acc_width // 8)

    @property
    def out_bytes(self) -> int:
        """Bytes of the result of one FORWARD input vector."""
        return self.rows * self.y_bytes

    @property
    def slot_bits(self) -> int:
        """Bits of a slot before padding; ``last`` is the top one."""
        return 2 * self.rows + 2 * self.cols + 2

    @property
    def slot_bytes(self) -> int:
        """Bytes of one PULSE slot, padding included."""
        return -(-self.slot_bits // 8)

    def pack_row(self, plus: Sequence[int], minus: Sequence[int]) -> bytes:
        """A row's levels as WRITE data or a READ answer."""
        return bytes(int(v) for v in plus) + bytes(int(v) for v in minus)

    def unpack_row(self, data: bytes) -> tuple[list[int], list[int]]:
        """``(plus, minus)`` of WRITE data or a READ answer."""
        return list(data[:self.cols]), list(data[self.cols:])

    def pack_inputs(self, vectors: Sequence[Sequence[int]]) -> bytes:
        """FORWARD inputs: each value as one two's-complement byte."""
        return b"".join(bytes(int(v) & 0xFF for v in vector) for vector in vectors)

    def unpack_inputs(self, data: bytes) -> np.ndarray:
        """FORWARD inputs as an ``(N, cols)`` int64 array."""
        return np.frombuffer(data, dtype=np.int8).astype(np.int64).reshape(-1, self.cols)

    def pack_outputs(self, ys: np.ndarray) -> bytes:
        """FORWARD results: each value little-endian two's complement in ``y_bytes``."""
        return b"".join(int(v).to_bytes(self.y_bytes, "little", signed=True)
                        for v in np.asarray(ys).reshape(-1))

    def unpack_outputs(self, data: bytes) -> np.ndarray:
        """FORWARD results as an ``(N, rows)`` int64 array."""
        values = [int.from_bytes(data[k:k + self.y_bytes], "little", signed=True)
                  for k in range(0, len(data), self.y_bytes)]
        return np.array(values, dtype=np.int64).reshape(-1, self.rows)

    def pack_slot(self, slot: Slot) -> bytes:
        """One PULSE slot."""
        rows, cols = self.rows, self.cols
        value = (slot.row_fire | slot.row_neg << rows | slot.col_fire << 2 * rows
                 | slot.col_neg << (2 * rows + cols)
                 | int(slot.unidirectional) << (2 * rows + 2 * cols)
                 | int(slot.last) << (2 * rows + 2 * cols + 1))
        return value.to_bytes(self.slot_bytes, "little")

    def unpack_slot(self, data: bytes) -> tuple[Slot, int]:
        """One PULSE slot, and its padding bits (zero in a valid slot)."""
        value = int.from_bytes(data, "little")
        rows, cols = self.rows, self.cols

        def field(offset: int, width: int) -> int:
            return (value >> offset) & ((1 << width) - 1)

        slot = Slot(field(0, rows), field(rows, rows), field(2 * rows, cols),
                    field(2 * rows + cols, cols), bool(field(2 * rows + 2 * cols, 1)),
                    bool(field(2 * rows + 2 * cols + 1, 1)))
        return slot, value >> self.slot_bits


def describe_crossbar(layout: SynapseLayout, tables: StepTables, *, max_pulses: int,
                      noise_bits: int, lfsr_bits: int, seed: int,
                      dw_min: float | None = None) -> dict[str, Any]:
    """The capability entry (without the id) that both faces of the target give; a
    crossbar built from a device's step ``dw_min`` records it beside its step tables."""
    cell = {} if dw_min is None else {"dw_min": dw_min}
    return {
        "kind": "synapse_crossbar",
        "params": {"rows": layout.rows, "cols": layout.cols, "state_bits": layout.state_bits,
                   "in_bits": layout.in_bits, "max_pulses": max_pulses,
                   "noise_bits": noise_bits, "lfsr_bits": lfsr_bits, "seed": seed,
                   "up": list(tables.up), "down": list(tables.down), **cell},
        "write": {"unit": "row", "size": layout.rows, "bytes": layout.row_bytes},
        "read": {"unit": "row", "size": layout.rows, "bytes": layout.row_bytes},
        "forward": {"in_bytes": layout.cols, "out_bytes": layout.out_bytes,
                    "value_bytes": layout.y_bytes},
        "pulse": {"slot_bytes": layout.slot_bytes},
    }
