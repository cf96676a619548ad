"""The synapse crossbar as a reference-device target, on the integer golden model.

:class:`SynapseCrossbarTarget` puts a :class:`~hilt.quant.synapse_golden.SynapseCrossbarModel`
behind :class:`~hilt.host.protocol.reference.Target`, answering in the byte layout of
:mod:`hilt.host.protocol.synapse_layout`, exactly as the gateware target does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hilt.host.protocol import spec
from hilt.host.protocol.reference import TargetError
from hilt.host.protocol.synapse_layout import Slot, SynapseLayout, describe_crossbar
from hilt.quant.lfsr import lfsr_seed
from hilt.quant.synapse_golden import SynapseCrossbarModel


class SynapseCrossbarTarget:
    """A :class:`SynapseCrossbarModel` as a reference-device target (module docstring).

    Every refusal is decided before anything is applied.
    """

    def __init__(self, model: SynapseCrossbarModel, dw_min: float | None = None) -> None:
        if not isinstance(model, SynapseCrossbarModel):
            raise TypeError(f"model must be a SynapseCrossbarModel, got {model!r}")
        self.model = model
        self.dw_min = dw_min
        self.layout = SynapseLayout.of_model(model)

    def describe(self) -> dict[str, Any]:
        model = self.model
        return describe_crossbar(self.layout, model.tables, max_pulses=model.max_pulses,
                                 noise_bits=model.noise_bits, lfsr_bits=model.lfsr_bits,
                                 seed=model.seed, dw_min=self.dw_min)

    def _check_row(self, row: int) -> None:
        if row >= self.layout.rows:
            raise TargetError(spec.Status.BAD_ADDRESS,
                              f"row {row} is outside the {self.layout.rows}-row crossbar")

    def write(self, address: int, data: bytes) -> None:
        self._check_row(address)
        layout = self.layout
        if len(data) != layout.row_bytes:
            raise TargetError(spec.Status.BAD_PAYLOAD,
                              f"WRITE takes {layout.row_bytes} level bytes, got {len(data)}")
        if max(data) > layout.max_level:
            raise TargetError(spec.Status.BAD_PAYLOAD,
                              f"level {max(data)} is past {layout.max_level}")
        self.model.program_row(address, *layout.unpack_row(data))

    def read(self, address: int, count: int) -> bytes:
        self._check_row(address)
        if count != self.layout.row_bytes:
            raise TargetError(spec.Status.BAD_PAYLOAD,
                              f"READ answers {self.layout.row_bytes} bytes, {count} asked")
        return self.layout.pack_row(*self.model.row_state(address))

    def forward(self, payload: bytes) -> bytes:
        layout = self.layout
        if not payload or len(payload) % layout.cols:
            raise TargetError(spec.Status.BAD_PAYLOAD,
                              f"FORWARD takes vectors of {layout.cols} bytes, got {len(payload)}")
        inputs = layout.unpack_inputs(payload)
        if inputs.min() < layout.in_low or inputs.max() > layout.in_high:
            raise TargetError(spec.Status.BAD_PAYLOAD,
                              f"inputs must lie in {layout.in_low}..{layout.in_high}")
        return layout.pack_outputs(np.stack([self.model.read(x) for x in inputs]))

    def _slots(self, payload: bytes) -> list[Slot]:
        layout = self.layout
        size = layout.slot_bytes
        if not payload or len(payload) % size:
            raise TargetError(spec.Status.BAD_PAYLOAD,
                              f"PULSE takes slots of {size} bytes, got {len(payload)}")
        slots = []
        run = 0
        for offset in range(0, len(payload), size):
            slot, padding = layout.unpack_slot(payload[offset:offset + size])
            if padding:
                raise TargetError(spec.Status.BAD_PAYLOAD, f"slot at byte {offset} has padding set")
            run += 1
            if run > self.model.max_pulses:
                raise TargetError(spec.Status.BAD_PAYLOAD,
                                  f"an update is longer than max_pulses={self.model.max_pulses}")
            if slot.last:
                run = 0
            slots.append(slot)
        if not slots[-1].last:
            raise TargetError(spec.Status.BAD_PAYLOAD, "the final slot does not end an update")
        return slots

    def pulse(self, payload: bytes) -> None:
        rows, cols = self.layout.rows, self.layout.cols

        def bits(mask: int, width: int) -> list[bool]:
            return [bool(mask >> k & 1) for k in range(width)]

        for slot in self._slots(payload):
            self.model.slot(bits(slot.row_fire, rows), bits(slot.row_neg, rows),
                            bits(slot.col_fire, cols), bits(slot.col_neg, cols),
                            unidirectional=slot.unidirectional)

    def reset(self) -> None:
        model = self.model
        model.g_plus[:] = 0
        model.g_minus[:] = 0
        if model.lfsr is not None:
            seeds = [lfsr_seed(model.seed, index, model.lfsr_bits)
                     for index in range(model.rows * model.cols)]
            model.lfsr = np.array(seeds, dtype=np.int64).reshape(model.lfsr.shape)
