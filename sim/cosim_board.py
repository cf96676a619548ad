"""The one entry point through which the host reaches a board without hardware.

A training backend names a board and its firmware parameters; this module turns the
name into what the host needs: the IDENTIFY record that board's firmware gives (from
which :func:`hilt.host.reference_board.reference_board` builds its golden twin), the
engines a co-simulated board runs on (:data:`ENGINES`, :func:`check_engine`), and a
co-simulated board running that firmware behind a socket URL. The host imports nothing
else from :mod:`hilt.sim` or :mod:`hilt.firmware`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amaranth.hdl import Elaboratable

from hilt.firmware.board_firmware import (
    board_targets,
    firmware_capability,
    firmware_params,
    firmware_top,
    pe_size,
)
from hilt.firmware.boards import get_board
from hilt.firmware.top import FirmwareTop
from hilt.sim.cosim import ENGINES, CosimBoard, check_engine, start_cosim

__all__ = ["COSIM_CLOCK_NS", "COSIM_DIVISOR", "ENGINES", "board_record", "check_engine",
           "cosim_top", "element_sizes", "start_board"]

COSIM_DIVISOR = 4
"""Clock cycles a bit on a co-simulated board's line: as fast as the UART allows."""
COSIM_CLOCK_NS = 10


def cosim_top(board: str, params: Mapping[str, Any] | None = None) -> FirmwareTop:
    """The firmware of ``board`` (a name such as ``icebreaker``) at the co-simulated line."""
    return firmware_top(get_board(board), params, divisor=COSIM_DIVISOR,
                        clock_hz=1e9 / COSIM_CLOCK_NS)


def element_sizes(board: str, pe: str | None = None) -> dict[str, int | float]:
    """The size keywords of element ``pe`` (the firmware's default one if None) on ``board``,
    at the board's own size: the names a ``pe_size`` parameter may override.

    Raises ValueError, naming what is accepted, for an unknown board or element.
    """
    params = firmware_params(None if pe is None else {"pe": pe})
    return pe_size(get_board(board), params["pe"])


def board_record(board: str, params: Mapping[str, Any] | None = None) -> bytes:
    """The IDENTIFY record the co-simulated ``board`` answers with."""
    config = get_board(board)
    params = firmware_params(params)
    targets = board_targets(config, params)
    for target in targets:
        # Described here, elaborated only in a build: so are the components they hold.
        for component in (target, *vars(target).values()):
            if isinstance(component, Elaboratable):
                component._MustUse__silence = True
    return firmware_capability(config, params, targets,
                               baud=round(1e9 / COSIM_CLOCK_NS / COSIM_DIVISOR))


def start_board(board: str, params: Mapping[str, Any] | None = None, *,
                sim: str = "verilator", engine: str | None = None,
                pty: bool = False) -> CosimBoard:
    """Start ``board``'s firmware under ``sim`` behind ``socket://127.0.0.1:PORT``, on
    ``engine`` (by default the native one under Verilator; see
    :func:`~hilt.sim.cosim.start_cosim`).

    The caller stops it (:meth:`~hilt.sim.cosim.CosimBoard.stop`, or a ``with`` block).
    """
    return start_cosim(cosim_top(board, params), sim=sim, engine=engine,
                       divisor=COSIM_DIVISOR, clock_ns=COSIM_CLOCK_NS, pty=pty)
