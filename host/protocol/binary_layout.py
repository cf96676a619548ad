"""The binary (threshold-logic) layer target's byte layout on the wire, defined once.

The reference face (:mod:`hilt.host.binary_target`) and the gateware target
(:mod:`hilt.firmware.binary_target`) both import :class:`BinaryLayerLayout`, so the two
cannot drift apart; like the rest of the protocol it needs no torch.

The target is one binarized fully connected layer of ``K = in_features`` inputs and
``M = out_features`` neurons with one-bit weights (``max_weight`` 1): neuron ``n``
counts the inputs that agree with its weights, ``p = sum_i XNOR(x_i, w_ni)``, and emits
``[p >= T_n]`` (``emit="bits"``) or ``p`` itself (``emit="counts"``).

The byte layout
---------------
A *row* is ``K`` bits in ``row_bytes = ceil(K / 8)`` bytes, bit ``i`` in bit ``i % 8``
of byte ``i // 8`` (LSB first), 1 meaning +1; the padding bits past ``K`` must be 0.

WRITE, address = ``n`` (``0 <= n < M``), data = ``k >= 1`` rows
    The weights of neurons ``n .. n + k - 1``, one row each.
WRITE, address = ``THRESHOLD_BASE + n`` (``0 <= n < M``), data = ``k >= 1`` thresholds
    The thresholds of neurons ``n .. n + k - 1``, each little-endian unsigned in
    ``threshold_bytes = ceil(threshold_width / 8)`` bytes and each in ``0 .. K + 1``
    (0 always fires, ``K + 1`` never does). With ``emit="counts"`` they are accepted
    and checked all the same, so one loader serves both kinds of layer, and have no
    effect on FORWARD.
    WRITE is refused, nothing applied, with the first that applies of: BAD_ADDRESS for
    an address in neither range; BAD_PAYLOAD for data that is not whole rows
    (thresholds); BAD_ADDRESS for ``n + k > M``; BAD_PAYLOAD for a padding bit set or a
    threshold past ``K + 1``.
READ
    Always BAD_ADDRESS: the layer's memories have no read port to spare (the capability
    entry's ``read`` is null).
FORWARD, inputs = N >= 1 rows
    One input vector per row. The result is N vectors: for ``emit="bits"`` each is
    ``ceil(M / 8)`` bytes, bit ``n`` = neuron ``n``'s output, packed like a row; for
    ``emit="counts"`` each is ``M`` counts, each little-endian unsigned in
    ``count_bytes = ceil(count_width / 8)`` bytes. BAD_PAYLOAD for no inputs, a length
    that is not a multiple of ``row_bytes`` or a padding bit set. No side effect.
PULSE
    Always BAD_PAYLOAD: nothing on this element takes pulses.
RESET
    Every weight bit 0 (-1) and every threshold 0: the state the gateware holds after
    configuration, where every memory is zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from hilt.quant.synapse_tables import check_int

THRESHOLD_BASE = 0x8000
"""WRITE address of neuron 0's threshold; the weights of neuron ``n`` are at ``n``. It is
bit 15 of the u16 address alone, so the two ranges never meet while ``M <= 0x8000``."""

EMITS = ("bits", "counts")
"""What the layer can answer per neuron: its threshold bit, or its count."""


def _bits_for(value: int) -> int:
    """Bits of an unsigned field that holds ``0 .. value`` (at least one)."""
    return max(1, value.bit_length())


def _bytes_for(bits: int) -> int:
    return -(-bits // 8)


@dataclass(frozen=True)
class BinaryLayerLayout:
    """Parameters, byte sizes and pack/unpack helpers of the binary layer target.

    ``pe`` and ``simd`` fold the layer onto the gateware and change no byte; they are
    here so that both faces validate and describe the same target.

    Raises TypeError or ValueError, naming the parameter, its value and what is
    accepted: ``in_features`` at least 1, ``out_features`` in ``1..THRESHOLD_BASE``,
    ``pe`` in ``1..out_features``, ``simd`` in ``1..in_features``, ``max_weight`` 1
    (one bit per weight on the wire) and ``emit`` one of :data:`EMITS`.
    """

    in_features: int
    out_features: int
    pe: int
    simd: int
    max_weight: int = 1
    emit: Literal["bits", "counts"] = "bits"

    def __post_init__(self) -> None:
        check_int("in_features", self.in_features, 1)
        check_int("out_features", self.out_features, 1, THRESHOLD_BASE)
        check_int("pe", self.pe, 1, self.out_features)
        check_int("simd", self.simd, 1, self.in_features)
        if check_int("max_weight", self.max_weight, 1) != 1:
            raise ValueError(f"max_weight must be 1 (the binary layer target carries one "
                             f"bit per weight), got {self.max_weight}")
        if not isinstance(self.emit, str) or self.emit not in EMITS:
            raise ValueError(f"emit must be one of {', '.join(map(repr, EMITS))}, "
                             f"got {self.emit!r}")

    @property
    def count_width(self) -> int:
        """Bits of a count, ``0 .. in_features``."""
        return _bits_for(self.in_features)

    @property
    def threshold_width(self) -> int:
        """Bits of a threshold, ``0 .. in_features + 1``."""
        return _bits_for(self.in_features + 1)

    @property
    def max_threshold(self) -> int:
        """The highest threshold, ``in_features + 1`` (never fires)."""
        return self.in_features + 1

    @property
    def row_bytes(self) -> int:
        """Bytes of a weight row and of a FORWARD input vector."""
        return _bytes_for(self.in_features)

    @property
    def threshold_bytes(self) -> int:
        """Bytes of one threshold in WRITE data."""
        return _bytes_for(self.threshold_width)

    @property
    def count_bytes(self) -> int:
        """Bytes of one count in a FORWARD result (``emit="counts"``)."""
        return _bytes_for(self.count_width)

    @property
    def out_bytes(self) -> int:
        """Bytes of the result of one FORWARD input vector."""
        if self.emit == "bits":
            return _bytes_for(self.out_features)
        return self.out_features * self.count_bytes

    def _pack_rows(self, bits: ArrayLike, name: str) -> bytes:
        array = np.asarray(bits)
        if array.ndim != 2 or array.shape[1] != self.in_features:
            raise ValueError(f"{name} must have shape (N, {self.in_features}), "
                             f"got {array.shape}")
        if ((array != 0) & (array != 1)).any():
            raise ValueError(f"{name} must hold bits 0 (-1) and 1 (+1) only")
        return np.packbits(array.astype(np.uint8), axis=1, bitorder="little").tobytes()

    def pack_weights(self, w_bits: ArrayLike) -> bytes:
        """WRITE data for ``k`` neurons' weights, from a ``(k, in_features)`` bit matrix."""
        return self._pack_rows(w_bits, "w_bits")

    def pack_inputs(self, x_bits: ArrayLike) -> bytes:
        """FORWARD inputs, from an ``(N, in_features)`` bit matrix."""
        return self._pack_rows(x_bits, "x_bits")

    def unpack_rows(self, data: bytes) -> np.ndarray:
        """Weight rows or input vectors as an ``(N, in_features)`` uint8 bit matrix.

        ``data`` must be whole rows; padding bits are dropped (see :meth:`padding_set`).
        """
        rows = np.frombuffer(data, dtype=np.uint8).reshape(-1, self.row_bytes)
        return np.unpackbits(rows, axis=1, bitorder="little")[:, :self.in_features]

    def padding_set(self, data: bytes) -> bool:
        """Whether any padding bit past ``in_features`` is set in whole rows ``data``."""
        spare = 8 * self.row_bytes - self.in_features
        if not spare:
            return False
        last = np.frombuffer(data, dtype=np.uint8)[self.row_bytes - 1::self.row_bytes]
        return bool((last >> (8 - spare)).any())

    def pack_thresholds(self, thresholds: ArrayLike) -> bytes:
        """WRITE data for ``k`` neurons' thresholds, each in ``threshold_bytes``."""
        return b"".join(int(t).to_bytes(self.threshold_bytes, "little")
                        for t in np.asarray(thresholds).reshape(-1))

    def unpack_thresholds(self, data: bytes) -> np.ndarray:
        """Threshold WRITE data (whole thresholds) as an int64 array, unchecked."""
        size = self.threshold_bytes
        return np.array([int.from_bytes(data[k:k + size], "little")
                         for k in range(0, len(data), size)], dtype=np.int64)

    def pack_outputs(self, outputs: ArrayLike) -> bytes:
        """FORWARD results from an ``(N, out_features)`` array of bits or counts."""
        array = np.asarray(outputs).reshape(-1, self.out_features)
        if self.emit == "bits":
            return np.packbits(array.astype(np.uint8), axis=1, bitorder="little").tobytes()
        return b"".join(int(v).to_bytes(self.count_bytes, "little") for v in array.reshape(-1))

    def unpack_outputs(self, data: bytes) -> np.ndarray:
        """FORWARD results as an ``(N, out_features)`` int64 array of bits or counts."""
        if self.emit == "bits":
            vectors = np.frombuffer(data, dtype=np.uint8).reshape(-1, self.out_bytes)
            bits = np.unpackbits(vectors, axis=1, bitorder="little")[:, :self.out_features]
            return bits.astype(np.int64)
        size = self.count_bytes
        values = [int.from_bytes(data[k:k + size], "little") for k in range(0, len(data), size)]
        return np.array(values, dtype=np.int64).reshape(-1, self.out_features)


def describe_binary_layer(layout: BinaryLayerLayout) -> dict[str, Any]:
    """The capability entry (without the id) that both faces of the target give."""
    return {
        "kind": "binary_layer",
        "params": {"in_features": layout.in_features, "out_features": layout.out_features,
                   "pe": layout.pe, "simd": layout.simd, "max_weight": layout.max_weight,
                   "emit": layout.emit},
        "write": {"unit": "neuron", "size": layout.out_features, "bytes": layout.row_bytes,
                  "threshold_base": THRESHOLD_BASE,
                  "threshold_bytes": layout.threshold_bytes},
        "read": None,
        "forward": {"in_bytes": layout.row_bytes, "out_bytes": layout.out_bytes,
                    "value_bytes": layout.count_bytes if layout.emit == "counts" else None},
    }
