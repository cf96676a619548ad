"""The shift-vector array target's byte layout on the wire, defined once for both faces.

The reference face (:mod:`hilt.host.shift_target`) and the gateware target
(:mod:`hilt.firmware.shift_target`) both import :class:`ShiftArrayLayout`, so the two
cannot drift apart; like the rest of the protocol it needs no torch.

The byte layout (``pes`` M, ``lanes`` L, ``depth`` K, ``beats = ceil(K / L)``)
------------------------------------------------------------------------------
A weight code is one byte: bits ``0..exp_bits-1`` the exponent code, bit ``exp_bits`` the
sign, every higher bit zero (see :class:`~hilt.quant.pow2_format.PowerOfTwoFormat`; the
all-ones exponent code is the zero weight). A beat is ``M * L`` codes: byte ``m * L + l``
is PE m's weight for input ``beat * L + l``; in the last beat the lanes past K hold codes
that are stored but never used.

WRITE, address = beat b, data = k >= 1 whole beats
    Programs beats ``b .. b + k - 1``. In this order: BAD_PAYLOAD if the length is not a
    positive multiple of ``M * L``; else BAD_ADDRESS if ``b + k > beats``; else
    BAD_PAYLOAD if any code has a bit set above its sign.
READ
    Always BAD_ADDRESS: the array's weight memory has no port to read it back by, so
    there is nothing to read (the capability entry lists no ``read``).
FORWARD, inputs = N >= 1 vectors of K bytes
    Each byte a two's-complement int8 that must lie in the signed ``act_width`` range.
    The result is N vectors of M values ``y_m = sum_k w_mk x_k`` (the integer weights of
    :func:`hilt.quant.shift_golden.shift_matmul`), each little-endian two's complement in
    ``ceil(acc_width / 8)`` bytes. BAD_PAYLOAD for no inputs, a length that is not a
    multiple of K, or an input out of range. No side effect.
PULSE
    Always BAD_PAYLOAD: the array takes no pulses.
RESET
    Every weight back to zero (the zero code, sign clear): the state after configuration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from hilt.quant.pow2_format import PowerOfTwoFormat
from hilt.quant.synapse_tables import check_int

MAX_TARGET_ACT_WIDTH = 8
"""Widest activation (``act_width``) one FORWARD input byte carries."""

MAX_BEATS = 0x10000
"""Most beats a WRITE's u16 address can reach."""


@dataclass(frozen=True)
class ShiftArrayLayout:
    """Byte sizes and pack/unpack helpers of the shift-vector array target (module docstring).

    Build it with :meth:`of`, which picks the array's default accumulator width. Raises
    TypeError or ValueError naming a parameter the layout cannot carry: ``act_width``
    past :data:`MAX_TARGET_ACT_WIDTH`, more than :data:`MAX_BEATS` beats, or an
    ``acc_width`` too narrow for a sum of ``depth`` terms.
    """

    lanes: int
    pes: int
    act_width: int
    exp_bits: int
    depth: int
    acc_width: int

    def __post_init__(self) -> None:
        check_int("lanes", self.lanes, 1)
        check_int("pes", self.pes, 1)
        check_int("act_width", self.act_width, 2, MAX_TARGET_ACT_WIDTH)
        fmt = self.fmt
        check_int("depth", self.depth, 1)
        if self.beats > MAX_BEATS:
            raise ValueError(f"depth={self.depth} with lanes={self.lanes} is {self.beats} "
                             f"beats; a WRITE address reaches at most {MAX_BEATS}")
        needed = fmt.accumulator_width(self.act_width, self.depth)
        if check_int("acc_width", self.acc_width, 1) < needed:
            raise ValueError(f"acc_width={self.acc_width} is too small: a sum of "
                             f"depth={self.depth} terms of {self.act_width}-bit activations "
                             f"and weights up to 2^{fmt.max_exp} needs at least {needed} bits")

    @classmethod
    def of(cls, *, lanes: int, pes: int, act_width: int, exp_bits: int, depth: int,
           acc_width: int | None = None) -> ShiftArrayLayout:
        """The layout of an array with these parameters; ``acc_width`` defaults as the
        array's does, to the narrowest that no sum can overflow."""
        if acc_width is None:
            fmt = PowerOfTwoFormat(exp_bits)
            act = check_int("act_width", act_width, 2, MAX_TARGET_ACT_WIDTH)
            acc_width = fmt.accumulator_width(act, check_int("depth", depth, 1))
        return cls(lanes, pes, act_width, exp_bits, depth, acc_width)

    @property
    def fmt(self) -> PowerOfTwoFormat:
        """The weight format (validates ``exp_bits``)."""
        return PowerOfTwoFormat(self.exp_bits)

    @property
    def beats(self) -> int:
        """Beats of one input vector, and of the weight memory: ``ceil(depth / lanes)``."""
        return -(-self.depth // self.lanes)

    @property
    def tail(self) -> int:
        """Lanes of the last beat that carry an input (``lanes`` when none is ragged)."""
        return self.depth - (self.beats - 1) * self.lanes

    @property
    def code_bits(self) -> int:
        """Bits of a code byte that may be set: the exponent code and the sign."""
        return self.exp_bits + 1

    @property
    def beat_bytes(self) -> int:
        """Bytes of one weight beat, ``pes * lanes``."""
        return self.pes * self.lanes

    @property
    def in_low(self) -> int:
        """The lowest FORWARD input, ``-2**(act_width - 1)``."""
        return -(1 << (self.act_width - 1))

    @property
    def in_high(self) -> int:
        """The highest FORWARD input, ``2**(act_width - 1) - 1``."""
        return (1 << (self.act_width - 1)) - 1

    @property
    def y_bytes(self) -> int:
        """Bytes of one result value."""
        return -(-self.acc_width // 8)

    @property
    def out_bytes(self) -> int:
        """Bytes of the result of one FORWARD input vector."""
        return self.pes * self.y_bytes

    def pack_codes(self, sign: ArrayLike, exp: ArrayLike) -> bytes:
        """WRITE data for sign bits and exponent codes of shape ``(pes, n)``.

        Column j is the input ``j`` inputs after the first one of the beat written first;
        the columns are padded up to whole beats with the zero weight, so the codes of a
        whole weight matrix ``(pes, depth)`` become the data of a WRITE at beat 0.
        """
        sign, exp = np.asarray(sign, dtype=np.int64), np.asarray(exp, dtype=np.int64)
        if sign.shape != exp.shape or sign.ndim != 2 or sign.shape[0] != self.pes:
            raise ValueError(f"sign and exp must both have shape ({self.pes}, n), "
                             f"got {sign.shape} and {exp.shape}")
        if ((sign < 0) | (sign > 1)).any() or ((exp < 0) | (exp > self.fmt.zero_code)).any():
            raise ValueError(f"signs must be 0 or 1 and exponent codes 0..{self.fmt.zero_code}")
        codes = exp | sign << self.exp_bits
        padding = -codes.shape[1] % self.lanes
        codes = np.pad(codes, ((0, 0), (0, padding)), constant_values=self.fmt.zero_code)
        beats = codes.reshape(self.pes, -1, self.lanes).transpose(1, 0, 2)
        return beats.astype(np.uint8).tobytes()

    def pack_int_weights(self, weights: ArrayLike) -> bytes:
        """WRITE data for integer weights ``0`` or ``+-2**(max_exp - e)`` of shape ``(pes, n)``.

        Raises ValueError for a weight the format cannot hold.
        """
        weights = np.asarray(weights, dtype=np.int64)
        magnitude = np.abs(weights)
        fmt = self.fmt
        exp = np.full(weights.shape, fmt.zero_code, dtype=np.int64)
        for code in range(fmt.max_exp + 1):
            exp[magnitude == 1 << (fmt.max_exp - code)] = code
        unheld = (exp == fmt.zero_code) & (magnitude != 0)
        if unheld.any():
            raise ValueError(f"weight {weights[unheld][0]} is not 0 or +-2**j with j in "
                             f"0..{fmt.max_exp}")
        return self.pack_codes((weights < 0).astype(np.int64), exp)

    def unpack_codes(self, data: bytes) -> tuple[np.ndarray, np.ndarray]:
        """``(sign, exp)`` of whole beats of WRITE data, each uint8 ``(pes, beats * lanes)``.

        Bits above the sign are dropped (a valid WRITE has none).
        """
        codes = np.frombuffer(data, dtype=np.uint8).reshape(-1, self.pes, self.lanes)
        codes = codes.transpose(1, 0, 2).reshape(self.pes, -1)
        exp = codes & ((1 << self.exp_bits) - 1)
        return (codes >> self.exp_bits & 1).astype(np.uint8), exp.astype(np.uint8)

    def padding_set(self, data: bytes) -> bool:
        """Whether any code byte of WRITE data has a bit set above its sign."""
        return any(byte >> self.code_bits for byte in data)

    def pack_inputs(self, vectors: Sequence[Sequence[int]] | np.ndarray) -> bytes:
        """FORWARD inputs: each value as one two's-complement byte."""
        return b"".join(bytes(int(v) & 0xFF for v in vector) for vector in vectors)

    def unpack_inputs(self, data: bytes) -> np.ndarray:
        """FORWARD inputs as an ``(N, depth)`` int64 array."""
        return np.frombuffer(data, dtype=np.int8).astype(np.int64).reshape(-1, self.depth)

    def pack_outputs(self, ys: ArrayLike) -> bytes:
        """FORWARD results: each value little-endian two's complement in ``y_bytes``."""
        return b"".join(int(v).to_bytes(self.y_bytes, "little", signed=True)
                        for v in np.asarray(ys).reshape(-1))

    def unpack_outputs(self, data: bytes) -> np.ndarray:
        """FORWARD results as an ``(N, pes)`` int64 array."""
        values = [int.from_bytes(data[k:k + self.y_bytes], "little", signed=True)
                  for k in range(0, len(data), self.y_bytes)]
        return np.array(values, dtype=np.int64).reshape(-1, self.pes)


def describe_shift_array(layout: ShiftArrayLayout) -> dict[str, Any]:
    """The capability entry (without the id) that both faces of the target give.

    It lists what the target supports: WRITE by beat and FORWARD; no READ (``None``),
    no PULSE.
    """
    return {
        "kind": "shift_array",
        "params": {"lanes": layout.lanes, "pes": layout.pes, "act_width": layout.act_width,
                   "exp_bits": layout.exp_bits, "depth": layout.depth,
                   "acc_width": layout.acc_width},
        "write": {"unit": "beat", "size": layout.beats, "bytes": layout.beat_bytes},
        "read": None,
        "forward": {"in_bytes": layout.depth, "out_bytes": layout.out_bytes,
                    "value_bytes": layout.y_bytes},
    }
