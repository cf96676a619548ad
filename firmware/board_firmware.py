"""The firmware image of a board: its targets, the firmware top, and the UART pins.

One function decides what a board carries (:func:`board_targets`), one assembles the
board-independent :class:`~hilt.firmware.top.FirmwareTop` from it at a given divisor
(:func:`firmware_top`, which the co-simulated board uses at a fast simulated line),
and :class:`BoardFirmware` puts that top on the board's UART pins for a bitstream
(:func:`hilt.firmware.build.build_board` takes :func:`board_firmware` as its factory).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io, wiring

from hilt.firmware.binary_target import BinaryLayerTarget
from hilt.firmware.boards import BoardConfig
from hilt.firmware.shift_target import ShiftArrayTarget
from hilt.firmware.synapse_target import SynapseCrossbarTarget
from hilt.firmware.targets import MemoryTarget
from hilt.firmware.top import RX_BUFFER_DEFAULT, FirmwareTop, capability_record
from hilt.firmware.uart import MIN_DIVISOR
from hilt.hdl.params import check_int
from hilt.quant.synapse_device import SoftBoundsDevice
from hilt.quant.synapse_golden import step_tables_from_device

FIRMWARE_PES = ("synapse", "shift", "binary")
"""The processing elements a board's firmware can carry beside its memory, one per build."""

DEFAULT_PARAMS: Mapping[str, Any] = MappingProxyType({
    "baud": 115200, "max_payload": 256, "memory_bytes": 1024, "pe": "synapse",
    "pe_size": MappingProxyType({})})
"""What a board build uses unless told otherwise.

``pe_size`` overrides keywords of the element's size on the board (for the synapse
crossbar ``rows``, ``cols``, ``state_bits``, ..., and ``dw_min``, the cells' step at the
far bound in units of their range; see :func:`pe_size`): a simulated board is not bound
by the device's LUTs, and a co-design study wants other sizes and cells.
"""

MAX_BAUD_ERROR = 0.02
"""The largest relative error between the asked baud rate and the one a divisor gives."""


def firmware_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """``params`` over :data:`DEFAULT_PARAMS`, refusing unknown names."""
    merged = dict(DEFAULT_PARAMS)
    for name, value in (params or {}).items():
        if name not in DEFAULT_PARAMS:
            raise ValueError(f"firmware parameter must be one of {', '.join(DEFAULT_PARAMS)}, "
                             f"got {name!r}")
        merged[name] = value
    check_int("baud", merged["baud"], 1)
    check_int("max_payload", merged["max_payload"], 1, 4096)
    check_int("memory_bytes", merged["memory_bytes"], 1, 1 << 16)
    if merged["pe"] not in FIRMWARE_PES:
        raise ValueError(f"pe must be one of {', '.join(FIRMWARE_PES)}, got {merged['pe']!r}")
    merged["pe_size"] = _size_overrides(merged["pe_size"])
    return merged


FLOAT_SIZES = ("dw_min",)
"""Size keywords that take a number, not an int."""


def _size_overrides(sizes: object) -> dict[str, int | float]:
    """``sizes`` as a plain dict of names to ints (numbers for :data:`FLOAT_SIZES`); the
    names are checked against the element in :func:`pe_size`, the values' ranges by the
    element's components."""
    if not isinstance(sizes, Mapping):
        raise ValueError(f"pe_size must map size names to ints, got {sizes!r}")
    for name, value in sizes.items():
        if not isinstance(name, str):
            raise ValueError(f"pe_size names must be strs, got {name!r}")
        if name in FLOAT_SIZES:
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not 0 < value <= 1:
                raise ValueError(f"pe_size {name} must be a number in (0, 1], a step in units "
                                 f"of the cell's range, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"pe_size {name} must be an int, got {value!r}")
    return dict(sizes)


def pe_size(config: BoardConfig, pe: str, overrides: Mapping[str, int | float] | None = None,
            ) -> dict[str, int | float]:
    """The size keywords of element ``pe`` on the board, ``overrides`` over them.

    Raises
    ------
    ValueError
        An override names a keyword the element does not take (the message lists those
        it does).
    """
    sizes = config.pe_params(pe)
    unknown = [name for name in overrides or {} if name not in sizes]
    if unknown:
        raise ValueError(f"size {', '.join(map(repr, unknown))} is not one of the {pe} "
                         f"element's; accepted: {', '.join(sizes)}")
    sizes.update(overrides or {})
    return sizes


def pe_target(config: BoardConfig, pe: str,
              overrides: Mapping[str, int | float] | None = None) -> wiring.Component:
    """The gateware target of processing element ``pe`` at the board's size for it, or at
    the size ``overrides`` change (see :func:`pe_size`).

    The synapse crossbar's cells follow a soft-bounds device of step ``dw_min``
    quantised to its state bits; the binary layer emits threshold bits, a hidden layer of
    a BNN.
    """
    sizes = pe_size(config, pe, overrides)
    if pe == "synapse":
        dw_min = float(sizes.pop("dw_min"))
        tables = step_tables_from_device(SoftBoundsDevice(dw_min=dw_min),
                                         sizes.pop("state_bits"))
        return SynapseCrossbarTarget(tables=tables, dw_min=dw_min, **sizes)
    if pe == "shift":
        return ShiftArrayTarget(**sizes)
    return BinaryLayerTarget(**sizes)


def board_targets(config: BoardConfig, params: Mapping[str, Any]) -> list[wiring.Component]:
    """The targets a board's firmware answers for, in id order.

    0 is a byte memory (a link check that needs no PE); 1 is the processing element the
    ``pe`` parameter names, at the board's size for it as ``pe_size`` changes it.
    """
    return [MemoryTarget(params["memory_bytes"]),
            pe_target(config, params["pe"], params["pe_size"])]


def design_id(config: BoardConfig, params: Mapping[str, Any]) -> str:
    """A short digest of what the firmware is built from: its board and parameters.

    An empty ``pe_size`` (the board's own size) is left out, so that the builds made
    before it existed keep their ids.
    """
    described = {name: dict(value) if isinstance(value, Mapping) else value
                 for name, value in params.items() if name != "pe_size" or value}
    text = json.dumps({"board": config.name, "params": described}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def firmware_capability(config: BoardConfig, params: Mapping[str, Any] | None,
                        targets: list[wiring.Component], *, baud: int) -> bytes:
    """The IDENTIFY record of the board's firmware, whose line runs at ``baud``."""
    params = firmware_params(params)
    return capability_record(targets, board=config.name, build=design_id(config, params),
                             max_payload=params["max_payload"], baud=baud,
                             rx_buffer=RX_BUFFER_DEFAULT)


def firmware_top(config: BoardConfig, params: Mapping[str, Any] | None, *, divisor: int,
                 clock_hz: float) -> FirmwareTop:
    """The board's firmware at ``divisor`` clock cycles per bit of a ``clock_hz`` clock."""
    params = firmware_params(params)
    check_int("divisor", divisor, MIN_DIVISOR)
    targets = board_targets(config, params)
    capability = firmware_capability(config, params, targets, baud=round(clock_hz / divisor))
    return FirmwareTop(targets, capability, divisor=divisor, max_payload=params["max_payload"],
                       rx_buffer=RX_BUFFER_DEFAULT)


def board_divisor(config: BoardConfig, baud: int) -> int:
    """The divisor that gives ``baud`` from the board's clock, within :data:`MAX_BAUD_ERROR`."""
    divisor = round(config.clock_hz / baud)
    if divisor < MIN_DIVISOR:
        raise ValueError(f"baud={baud} is too fast for {config.name}'s "
                         f"{config.clock_hz / 1e6:g} MHz clock: at most "
                         f"{int(config.clock_hz // MIN_DIVISOR)}")
    error = abs(config.clock_hz / divisor - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise ValueError(f"baud={baud} is {100 * error:.1f}% off the nearest rate "
                         f"{config.clock_hz / divisor:.0f} that {config.name}'s clock gives; "
                         f"pick one within {100 * MAX_BAUD_ERROR:g}%")
    return divisor


class BoardFirmware(Elaboratable):
    """The firmware top wired to the board's UART pins."""

    def __init__(self, config: BoardConfig, params: Mapping[str, Any] | None = None):
        self.config = config
        self.params = firmware_params(params)
        divisor = board_divisor(config, self.params["baud"])
        self.top = firmware_top(config, self.params, divisor=divisor, clock_hz=config.clock_hz)

    def elaborate(self, platform) -> Module:
        m = Module()
        uart = platform.request(*self.config.uart, dir="-")
        m.submodules.rx = rx = io.Buffer("i", uart.rx)
        m.submodules.tx = tx = io.Buffer("o", uart.tx)
        m.submodules.firmware = self.top
        m.d.comb += [self.top.rx.eq(rx.i), tx.o.eq(self.top.tx)]
        return m


def board_firmware(config: BoardConfig, params: Mapping[str, Any] | None) -> BoardFirmware:
    """The factory :func:`~hilt.firmware.build.build_board` takes."""
    return BoardFirmware(config, params)
