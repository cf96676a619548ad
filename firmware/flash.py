"""Programming a board with a bitstream that hilt built for it.

:func:`flash` runs the board's programmer (iceprog for the iCEBreaker, openFPGALoader for
the ULX3S) after checking that the bitstream is one for this board: its manifest must
name the board and still match the file, and the file must start as the family's
bitstreams do. A dry run returns the command without running it.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

from hilt.firmware.boards import BoardConfig, get_board
from hilt.firmware.build import Manifest, sha256_file
from hilt.firmware.synthesis import ToolchainNotFound

logger = logging.getLogger(__name__)

# What each family's bitstream starts with, within its first bytes: the iCE40 sync word
# (after icepack's comment header) and the ECP5 preamble (after ecppack's).
_PREAMBLE = {"ice40": b"\x7e\xaa\x99\x7e", "ecp5": b"\xff\xff\xbd\xb3"}
_HEADER_BYTES = 4096

# How iceprog and openFPGALoader say that no board answered.
_NO_BOARD = re.compile(r"can't find|cannot find|no device|device not found|unable to open|"
                       r"no cable|not connected", re.IGNORECASE)


class ProgrammerNotFound(ToolchainNotFound):
    """The board's programmer is not installed."""


class FlashError(RuntimeError):
    """The programmer ran and failed, for instance because no board is connected."""


class BitstreamRefused(ValueError):
    """The bitstream is not one for this board, so it is not programmed."""


def programmer_command(board: str | BoardConfig, bitstream: Path | str) -> list[str]:
    """The command that programs ``bitstream`` into ``board``, without any check."""
    config = get_board(board)
    programmer = os.environ.get(config.programmer_env) or config.programmer
    return [programmer, *config.programmer_args, str(Path(bitstream).resolve())]


def _check_content(config: BoardConfig, bitstream: Path) -> None:
    head = bitstream.read_bytes()[:_HEADER_BYTES]
    if _PREAMBLE[config.family] not in head:
        raise BitstreamRefused(f"{bitstream} is not an {config.family} bitstream (no "
                               f"{config.family} preamble in its header); the "
                               f"{config.name} takes {config.family} bitstreams")
    # ecppack names the part in its header ("Part: LFE5U-85F-6CABGA381").
    part = re.search(rb"Part: ([\w-]+)", head)
    if part and not part.group(1).decode().startswith(config.device):
        raise BitstreamRefused(f"{bitstream} is for part {part.group(1).decode()}, but the "
                               f"{config.name} has an {config.device}")


def _check_manifest(config: BoardConfig, bitstream: Path, require_manifest: bool) -> None:
    manifest = Manifest.read(bitstream)
    if manifest is None:
        if require_manifest:
            raise BitstreamRefused(
                f"{bitstream} has no manifest ({Manifest.path_for(bitstream).name}), so "
                f"nothing says it was built for the {config.name}; build it with hilt, or "
                "flash it without the manifest check")
        return
    if manifest.board != config.name:
        raise BitstreamRefused(f"{bitstream} was built for the {manifest.board}, not the "
                               f"{config.name}; build it for the {config.name}")
    if manifest.bitstream_sha256 != sha256_file(bitstream):
        raise BitstreamRefused(f"{bitstream} has changed since it was built: its SHA-256 "
                               f"differs from the one in {Manifest.path_for(bitstream).name}")


def flash(board: str | BoardConfig, bitstream: Path | str, *, dry_run: bool = False,
          require_manifest: bool = True) -> list[str]:
    """Program ``bitstream`` into ``board``; returns the exact command, run or not.

    Refuses (:class:`BitstreamRefused`) a bitstream whose manifest names another board
    or another file, one that is not of the board's FPGA family, and, unless
    ``require_manifest`` is false, one without a manifest. With ``dry_run`` the checks
    run but the programmer does not. Raises :class:`ProgrammerNotFound` naming the
    programmer and how to install it, and :class:`FlashError` with the programmer's exit
    status and output when it fails (no board found, for one).
    """
    config = get_board(board)
    bitstream = Path(bitstream)
    if not bitstream.is_file():
        raise ValueError(f"bitstream must be a file, got {str(bitstream)!r}, which does not "
                         "exist")
    _check_content(config, bitstream)
    _check_manifest(config, bitstream, require_manifest)
    command = programmer_command(config, bitstream)
    if dry_run:
        logger.info("dry run: %s", " ".join(command))
        return command
    if shutil.which(command[0]) is None:
        raise ProgrammerNotFound(
            f"{command[0]} not found on PATH; it programs the {config.description}. "
            f"Install it with: {config.programmer_install} (or set {config.programmer_env} "
            "to its path)")
    logger.info("programming the %s: %s", config.name, " ".join(command))
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    output = "\n".join((done.stdout + done.stderr).strip().splitlines()[-10:])
    logger.info("%s", output)
    if done.returncode != 0:
        if _NO_BOARD.search(output):
            raise FlashError(
                f"{command[0]} found no {config.description} (exit status {done.returncode}); "
                "check that it is plugged in by USB and that your user may open it (udev "
                f"rules):\n{output}")
        raise FlashError(f"{command[0]} failed with exit status {done.returncode}:\n{output}")
    return command
