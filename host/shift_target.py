"""The shift-vector PE array as a reference-device target, on the integer golden model.

:class:`ShiftArrayTarget` holds the weight codes a
:class:`~hilt.hdl.shift_array.ShiftVectorArray` would hold and answers in the byte layout
of :mod:`hilt.host.protocol.shift_layout`, exactly as the gateware target
(:mod:`hilt.firmware.shift_target`) does; FORWARD is
:func:`~hilt.quant.shift_golden.shift_matmul`, the arithmetic the RTL matches bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hilt.host.protocol import spec
from hilt.host.protocol.reference import TargetError
from hilt.host.protocol.shift_layout import ShiftArrayLayout, describe_shift_array
from hilt.quant.pow2_export import PowerOfTwoWeights
from hilt.quant.shift_golden import shift_matmul


class ShiftArrayTarget:
    """A shift-vector array's weights and arithmetic as a reference-device target.

    Parameters are those of :class:`~hilt.hdl.shift_array.ShiftVectorArray`; the
    one-byte layout further requires ``act_width <= 8``. Every refusal is decided before
    anything is applied.

    Attributes
    ----------
    layout : ShiftArrayLayout
        The byte layout, shared with the gateware.
    sign, exp : np.ndarray
        uint8 ``(pes, beats * lanes)``: the stored codes, the last beat's lanes past
        ``depth`` included (they are stored, never used).
    """

    def __init__(self, *, lanes: int, pes: int, act_width: int, exp_bits: int, depth: int,
                 acc_width: int | None = None) -> None:
        self.layout = ShiftArrayLayout.of(lanes=lanes, pes=pes, act_width=act_width,
                                          exp_bits=exp_bits, depth=depth, acc_width=acc_width)
        shape = (pes, self.layout.beats * lanes)
        self.sign = np.zeros(shape, dtype=np.uint8)
        self.exp = np.zeros(shape, dtype=np.uint8)
        self.reset()

    def describe(self) -> dict[str, Any]:
        return describe_shift_array(self.layout)

    def weights(self) -> PowerOfTwoWeights:
        """The weights the array computes with now, ``(pes, depth)``."""
        depth = self.layout.depth
        return PowerOfTwoWeights.from_codes(self.layout.fmt, self.sign[:, :depth],
                                            self.exp[:, :depth])

    def write(self, address: int, data: bytes) -> None:
        layout = self.layout
        size = layout.beat_bytes
        if not data or len(data) % size:
            raise TargetError(spec.Status.BAD_PAYLOAD,
                              f"WRITE takes whole beats of {size} bytes, got {len(data)}")
        beats = len(data) // size
        if address + beats > layout.beats:
            raise TargetError(spec.Status.BAD_ADDRESS,
                              f"beats {address}..{address + beats - 1} are outside the "
                              f"{layout.beats}-beat weight memory")
        if layout.padding_set(data):
            raise TargetError(spec.Status.BAD_PAYLOAD,
                              f"a weight code has a bit set above bit {layout.exp_bits}")
        sign, exp = layout.unpack_codes(data)
        columns = slice(address * layout.lanes, (address + beats) * layout.lanes)
        self.sign[:, columns] = sign
        self.exp[:, columns] = exp

    def read(self, address: int, count: int) -> bytes:
        raise TargetError(spec.Status.BAD_ADDRESS,
                          "the weight memory has no read port: nothing to read")

    def forward(self, payload: bytes) -> bytes:
        layout = self.layout
        if not payload or len(payload) % layout.depth:
            raise TargetError(spec.Status.BAD_PAYLOAD,
                              f"FORWARD takes vectors of {layout.depth} bytes, "
                              f"got {len(payload)}")
        inputs = layout.unpack_inputs(payload)
        if inputs.min() < layout.in_low or inputs.max() > layout.in_high:
            raise TargetError(spec.Status.BAD_PAYLOAD,
                              f"inputs must lie in {layout.in_low}..{layout.in_high}")
        return layout.pack_outputs(shift_matmul(self.weights(), inputs))

    def pulse(self, payload: bytes) -> None:
        raise TargetError(spec.Status.BAD_PAYLOAD, "the shift-vector array takes no pulses")

    def reset(self) -> None:
        """Every weight zero, as after configuration."""
        self.sign[:] = 0
        self.exp[:] = self.layout.fmt.zero_code
