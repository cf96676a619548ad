"""The binary (threshold-logic) layer as a reference-device target, on the golden model.

:class:`BinaryLayerTarget` holds a layer's weight bits and thresholds and answers in the
byte layout of :mod:`hilt.host.protocol.binary_layout`, computing FORWARD with
:mod:`hilt.quant.binary_golden` (bit-exact with the RTL), exactly as the gateware target
:class:`hilt.firmware.binary_target.BinaryLayerTarget` does.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from hilt.host.protocol import spec
from hilt.host.protocol.binary_layout import (
    THRESHOLD_BASE,
    BinaryLayerLayout,
    describe_binary_layer,
)
from hilt.host.protocol.reference import TargetError
from hilt.quant.binary_golden import check_thresholds, popcount_matches, threshold_layer


class BinaryLayerTarget:
    """A binarized fully connected layer as a reference-device target (see the layout).

    Parameters are those of the gateware target and of
    :class:`~hilt.host.protocol.binary_layout.BinaryLayerLayout`. Every refusal is
    decided before anything is applied.

    Attributes
    ----------
    layout : BinaryLayerLayout
    weights : np.ndarray
        uint8 ``(out_features, in_features)`` weight bits, 1 meaning +1.
    thresholds : np.ndarray
        int64 ``(out_features,)`` thresholds (unused by FORWARD with ``emit="counts"``).
    """

    def __init__(self, in_features: int, out_features: int, *, pe: int, simd: int,
                 max_weight: int = 1, emit: Literal["bits", "counts"] = "bits") -> None:
        self.layout = BinaryLayerLayout(in_features, out_features, pe, simd, max_weight, emit)
        self.weights = np.zeros((out_features, in_features), dtype=np.uint8)
        self.thresholds = np.zeros(out_features, dtype=np.int64)

    def describe(self) -> dict[str, Any]:
        return describe_binary_layer(self.layout)

    def write(self, address: int, data: bytes) -> None:
        layout = self.layout
        size = layout.out_features
        thresholds = address >= THRESHOLD_BASE
        first = address - THRESHOLD_BASE if thresholds else address
        if first >= size:
            raise TargetError(spec.Status.BAD_ADDRESS,
                              f"address {address:#06x} is neither a neuron's weights "
                              f"(0..{size - 1}) nor its threshold ({THRESHOLD_BASE:#06x}+)")
        unit = layout.threshold_bytes if thresholds else layout.row_bytes
        if len(data) % unit:
            raise TargetError(spec.Status.BAD_PAYLOAD,
                              f"WRITE takes whole units of {unit} bytes, got {len(data)}")
        count = len(data) // unit
        if first + count > size:
            raise TargetError(spec.Status.BAD_ADDRESS,
                              f"neurons {first}..{first + count - 1} reach past {size - 1}")
        if thresholds:
            values = layout.unpack_thresholds(data)
            try:
                check_thresholds(values, np.full(count, layout.in_features))
            except ValueError as error:
                raise TargetError(spec.Status.BAD_PAYLOAD, str(error)) from None
            self.thresholds[first:first + count] = values
        else:
            if layout.padding_set(data):
                raise TargetError(spec.Status.BAD_PAYLOAD, "a weight row has padding set")
            self.weights[first:first + count] = layout.unpack_rows(data)

    def read(self, address: int, count: int) -> bytes:
        raise TargetError(spec.Status.BAD_ADDRESS, "the binary layer cannot be read back")

    def forward(self, payload: bytes) -> bytes:
        layout = self.layout
        if not payload or len(payload) % layout.row_bytes:
            raise TargetError(spec.Status.BAD_PAYLOAD, f"FORWARD takes vectors of "
                              f"{layout.row_bytes} bytes, got {len(payload)}")
        if layout.padding_set(payload):
            raise TargetError(spec.Status.BAD_PAYLOAD, "an input vector has padding set")
        inputs = layout.unpack_rows(payload)
        if layout.emit == "bits":
            return layout.pack_outputs(threshold_layer(inputs, self.weights, self.thresholds))
        return layout.pack_outputs(popcount_matches(inputs, self.weights))

    def pulse(self, payload: bytes) -> None:
        raise TargetError(spec.Status.BAD_PAYLOAD, "the binary layer takes no pulses")

    def reset(self) -> None:
        self.weights[:] = 0
        self.thresholds[:] = 0
