"""Device response curves, derived from what a training run recorded about its backends.

Nothing here is measured again or made up: a synapse crossbar's record carries its
integer step tables (``state_bits``, ``up``, ``down``), which the golden model
(:func:`hilt.quant.synapse_golden.next_state`) steps through pulse by pulse; a simulated
physical layer's record carries its whole construction (system, sizes, seed, settings),
from which :mod:`hilt.host.physical` rebuilds the very system the run trained against
and reads its noiseless response. A backend with neither (a binary or shift-array board
used as a fixed layer, a real instrument) gets a note saying why it has no curve.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

CHANNELS = 4
"""Outputs of a physical layer drawn against its input."""
DRIVE_POINTS = 201
DRIVE_RANGE = (-1.0, 1.0)
"""The swept input of a physical layer's response."""


@dataclass(frozen=True)
class SynapseResponse:
    """A cell's level after each pulse: ``potentiation`` up pulses from level 0, then as
    many down pulses, with no cycle-to-cycle noise (the tables' nominal curve)."""

    label: str
    state_bits: int
    up: tuple[int, ...]
    down: tuple[int, ...]
    noise_bits: int
    potentiation: int
    levels: tuple[int, ...]


@dataclass(frozen=True)
class PhysicalResponse:
    """Outputs ``0..CHANNELS-1`` of a physical layer as input 0 sweeps ``drive``, every
    other input held at 0, noiseless; ``noise`` is the run's relative reading noise."""

    label: str
    system: dict[str, Any]
    drive: tuple[float, ...]
    outputs: tuple[tuple[float, ...], ...]
    noise: float


def _find_tables(record: Any) -> dict[str, Any] | None:
    """The first mapping inside ``record`` that holds step tables."""
    if isinstance(record, dict):
        if {"state_bits", "up", "down"} <= record.keys():
            return record
        children: Sequence[Any] = list(record.values())
    elif isinstance(record, list):
        children = record
    else:
        return None
    for child in children:
        found = _find_tables(child)
        if found is not None:
            return found
    return None


def synapse_response(label: str, params: dict[str, Any]) -> SynapseResponse:
    """The nominal pulse response of the cell ``params`` (a crossbar's recorded params)."""
    import numpy as np

    from hilt.quant.synapse_golden import next_state
    from hilt.quant.synapse_tables import StepTables

    tables = StepTables(int(params["state_bits"]), tuple(params["up"]), tuple(params["down"]))
    pulses = tables.levels + tables.levels // 2
    levels = [0]
    state = np.zeros(1, dtype=np.int64)
    for down in [False] * pulses + [True] * pulses:
        state = next_state(state, [down], [0], tables)
        levels.append(int(state[0]))
    return SynapseResponse(label, tables.state_bits, tables.up, tables.down,
                           int(params.get("noise_bits", 0)), pulses, tuple(levels))


def physical_response(label: str, system: dict[str, Any]) -> PhysicalResponse:
    """The noiseless response of the simulated system ``system`` (its recorded config)."""
    import numpy as np

    from hilt.host.physical.acoustic import AcousticLayer
    from hilt.host.physical.optical import OpticalLayer

    kinds = {"optical": OpticalLayer, "acoustic": AcousticLayer}
    settings = {key: value for key, value in system.items() if key != "system"}
    layer = kinds[system["system"]](**settings)
    drive = np.linspace(*DRIVE_RANGE, DRIVE_POINTS)
    x = np.zeros((DRIVE_POINTS, layer.in_features))
    x[:, 0] = drive
    y = layer.response(x)[:, :CHANNELS]
    return PhysicalResponse(label, system, tuple(drive.tolist()),
                            tuple(tuple(column.tolist()) for column in y.T),
                            float(system.get("noise", 0.0)))


def _distinct(backends: Sequence[Any]) -> Iterator[tuple[list[int], dict[str, Any]]]:
    """Each distinct backend record once, with the blocks or layers that used it."""
    seen: dict[str, tuple[list[int], dict[str, Any]]] = {}
    for index, record in enumerate(backends):
        if isinstance(record, dict):
            key = json.dumps(record, sort_keys=True, default=str)
            seen.setdefault(key, ([], record))[0].append(index)
    yield from seen.values()


def device_responses(backends: Sequence[Any], unit: str = "block"
                     ) -> tuple[list[SynapseResponse | PhysicalResponse], list[str]]:
    """The response of every backend a run recorded that has one, and a note for each
    that has none or whose record does not rebuild; ``unit`` names what a backend serves
    (a ``block`` of MF-FF, a ``layer`` of pulse-trained FF) in the labels."""
    responses: list[SynapseResponse | PhysicalResponse] = []
    notes = []
    for used_by, record in _distinct(backends):
        where = f"{unit}{'s' if len(used_by) > 1 else ''} {', '.join(map(str, used_by))}"
        label = f"{record.get('url', record.get('kind', 'backend'))} ({where})"
        tables = _find_tables(record)
        system = record.get("system")
        try:
            if tables is not None:
                responses.append(synapse_response(label, tables))
            elif isinstance(system, dict) and system.get("system") in ("optical", "acoustic"):
                responses.append(physical_response(label, system))
            else:
                layer = record.get("board_layer")
                kind = layer.get("element") if isinstance(layer, dict) else None
                notes.append(f"{label}: a {kind or record.get('kind', 'backend')} whose "
                             f"record holds no device model (no step tables, no simulated "
                             f"system to rebuild), so no response curve is drawn for it")
        except (KeyError, TypeError, ValueError) as error:
            notes.append(f"{label}: its recorded device does not rebuild ({error}), so no "
                         f"response curve is drawn for it")
    return responses, notes
