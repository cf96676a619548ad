"""A board's golden twin, built from nothing but its capability record.

Every target a board announces in its IDENTIFY record (its kind and all its parameters)
has a reference face in :mod:`hilt.host`, so :func:`reference_board` turns a record into
a :class:`~hilt.host.protocol.reference.ReferenceDevice` that answers every frame as the
board's gateware must: the same IDENTIFY bytes, the same results, the same refusals.
Tests compare a co-simulated board with its twin frame for frame, and a training loop
can run against the twin in-process where no board is at hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from hilt.host.binary_target import BinaryLayerTarget
from hilt.host.protocol import reference
from hilt.host.protocol.codec import Capabilities
from hilt.host.shift_target import ShiftArrayTarget
from hilt.host.synapse_target import SynapseCrossbarTarget
from hilt.quant.synapse_golden import SynapseCrossbarModel
from hilt.quant.synapse_tables import StepTables


def _memory(params: Mapping[str, Any]) -> reference.Target:
    return reference.MemoryTarget(params["size"])


def _synapse_crossbar(params: Mapping[str, Any]) -> reference.Target:
    tables = StepTables(params["state_bits"], tuple(params["up"]), tuple(params["down"]))
    model = SynapseCrossbarModel(params["rows"], params["cols"], tables,
                                 in_bits=params["in_bits"], max_pulses=params["max_pulses"],
                                 noise_bits=params["noise_bits"],
                                 lfsr_bits=params["lfsr_bits"], seed=params["seed"])
    return SynapseCrossbarTarget(model, params.get("dw_min"))


def _shift_array(params: Mapping[str, Any]) -> reference.Target:
    return ShiftArrayTarget(lanes=params["lanes"], pes=params["pes"],
                            act_width=params["act_width"], exp_bits=params["exp_bits"],
                            depth=params["depth"], acc_width=params["acc_width"])


def _binary_layer(params: Mapping[str, Any]) -> reference.Target:
    return BinaryLayerTarget(params["in_features"], params["out_features"], pe=params["pe"],
                             simd=params["simd"], max_weight=params["max_weight"],
                             emit=params["emit"])


BUILDERS: Mapping[str, Callable[[Mapping[str, Any]], reference.Target]] = MappingProxyType({
    "memory": _memory,
    "synapse_crossbar": _synapse_crossbar,
    "shift_array": _shift_array,
    "binary_layer": _binary_layer,
})
"""The reference face of each target kind, from the ``params`` of its capability entry."""


def reference_target(entry: Mapping[str, Any]) -> reference.Target:
    """The reference face of one capability entry; it describes itself as ``entry`` does.

    Raises
    ------
    ValueError
        The kind is not one hilt knows, or its parameters do not make a target (the
        message names the target and what was wrong).
    """
    kind = entry.get("kind")
    name = f"target {entry.get('id', '?')} ({kind!r})"
    if kind not in BUILDERS:
        raise ValueError(f"{name}: kind must be one of {', '.join(BUILDERS)}")
    params = entry.get("params")
    if not isinstance(params, Mapping):
        raise ValueError(f"{name}: params must be an object, got {params!r}")
    try:
        target = BUILDERS[kind](params)
    except KeyError as missing:
        raise ValueError(f"{name}: params lack {missing}") from None
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: {error}") from None
    described = {"id": entry.get("id"), **target.describe()}
    if described != dict(entry):
        raise ValueError(f"{name}: its reference face describes itself as {described}, "
                         f"not as the record's {dict(entry)}")
    return target


def reference_board(capabilities: Capabilities) -> reference.ReferenceDevice:
    """A reference device that identifies and answers as the board of ``capabilities``."""
    targets = {entry["id"]: reference_target(entry) for entry in capabilities.targets}
    return reference.ReferenceDevice(targets, max_payload=capabilities.max_payload,
                                     board=capabilities.board, build=capabilities.build,
                                     baud=capabilities.baud, rx_buffer=capabilities.rx_buffer)
