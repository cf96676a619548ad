"""Flashing: the exact programmer command, refusals of foreign bitstreams, clear failures.

No board is attached here, so the programmer is either absent (PATH is an empty
folder) or a fake script on PATH that answers as iceprog does.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from hilt.firmware.boards import BOARDS
from hilt.firmware.build import Manifest, sha256_file
from hilt.firmware.flash import (
    BitstreamRefused,
    FlashError,
    ProgrammerNotFound,
    flash,
    programmer_command,
)
from hilt.firmware.synthesis import ToolchainNotFound

# How the packers start a bitstream: icepack's comment header and sync word, ecppack's
# header naming the part, then the ECP5 preamble.
ICE40_HEAD = b"\xff\x00\x00\xff\x7e\xaa\x99\x7e"
ECP5_HEAD = b"\xff\x00Part: LFE5U-85F-6CABGA381\x00\xff\xff\xff\xbd\xb3"


def bitstream(folder: Path, board: str, *, manifest_board: str | None = None,
              head: bytes | None = None) -> Path:
    """A bitstream file for ``board``, with a manifest naming ``manifest_board`` if given."""
    config = BOARDS[board]
    path = folder / f"top{config.bitstream_suffix}"
    if head is None:
        head = ICE40_HEAD if config.family == "ice40" else ECP5_HEAD
    path.write_bytes(head + bytes(256))
    if manifest_board is not None:
        Manifest(board=manifest_board, device=BOARDS[manifest_board].device, design="top",
                 digest="0" * 64, bitstream_sha256=sha256_file(path), params={},
                 toolchain={}, timing_met=True).write(path)
    return path


@pytest.fixture
def empty_path(tmp_path, monkeypatch) -> Path:
    """PATH holds one empty folder: no programmer is installed."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    for var in ("ICEPROG", "OPENFPGALOADER"):
        monkeypatch.delenv(var, raising=False)
    return folder


def fake_programmer(folder: Path, name: str, *, status: int, message: str) -> Path:
    """A programmer on PATH that records its arguments, prints ``message`` and exits."""
    script = folder / name
    script.write_text(f'#!/bin/sh\necho "$@" > "{folder}/args"\necho "{message}" >&2\n'
                      f"exit {status}\n")
    script.chmod(0o755)
    return script


def test_dry_run_returns_the_exact_command_without_a_programmer(tmp_path, empty_path):
    ice = bitstream(tmp_path, "icebreaker", manifest_board="icebreaker")
    assert flash("icebreaker", ice, dry_run=True) == ["iceprog", str(ice.resolve())]
    ecp = bitstream(tmp_path, "ulx3s", manifest_board="ulx3s")
    assert flash("ulx3s", ecp, dry_run=True) == [
        "openFPGALoader", "-b", "ulx3s", "-m", str(ecp.resolve())]


def test_the_programmer_variable_replaces_its_name(tmp_path, monkeypatch):
    monkeypatch.setenv("ICEPROG", "/opt/icestorm/bin/iceprog")
    ice = bitstream(tmp_path, "icebreaker")
    assert programmer_command("icebreaker", ice) == [
        "/opt/icestorm/bin/iceprog", str(ice.resolve())]


def test_a_bitstream_built_for_another_board_is_refused(tmp_path, empty_path):
    ice = bitstream(tmp_path, "icebreaker", manifest_board="icebreaker")
    other_ice40 = replace(BOARDS["icebreaker"], name="icebreaker-bitsy")
    with pytest.raises(BitstreamRefused, match=r"was built for the icebreaker, not the "
                                               r"icebreaker-bitsy"):
        flash(other_ice40, ice, dry_run=True)
    with pytest.raises(BitstreamRefused, match=r"top\.bin is not an ecp5 bitstream"):
        flash("ulx3s", ice, dry_run=True)
    ecp = bitstream(tmp_path, "ulx3s", manifest_board="ulx3s")
    with pytest.raises(BitstreamRefused, match=r"top\.bit is not an ice40 bitstream"):
        flash("icebreaker", ecp, dry_run=True)


def test_an_ecp5_bitstream_for_another_part_is_refused(tmp_path, empty_path):
    small = bitstream(tmp_path, "ulx3s", head=ECP5_HEAD.replace(b"85F", b"25F"))
    with pytest.raises(BitstreamRefused, match=r"is for part LFE5U-25F-6CABGA381, but the "
                                               r"ulx3s has an LFE5U-85F"):
        flash("ulx3s", small, dry_run=True, require_manifest=False)


def test_a_bitstream_changed_since_its_build_is_refused(tmp_path, empty_path):
    ice = bitstream(tmp_path, "icebreaker", manifest_board="icebreaker")
    ice.write_bytes(ice.read_bytes() + b"\x00")
    with pytest.raises(BitstreamRefused, match=r"has changed since it was built"):
        flash("icebreaker", ice, dry_run=True)


def test_a_bitstream_without_manifest_needs_the_check_waived(tmp_path, empty_path):
    ice = bitstream(tmp_path, "icebreaker")
    with pytest.raises(BitstreamRefused, match=r"has no manifest \(top\.manifest\.json\)"):
        flash("icebreaker", ice, dry_run=True)
    assert flash("icebreaker", ice, dry_run=True, require_manifest=False)[0] == "iceprog"


def test_a_missing_bitstream_or_board_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"bitstream must be a file, got '.*nothing\.bin'"):
        flash("icebreaker", tmp_path / "nothing.bin", dry_run=True)
    with pytest.raises(ValueError, match=r"board must be one of icebreaker, ulx3s, got 'x'"):
        flash("x", tmp_path / "nothing.bin", dry_run=True)


@pytest.mark.parametrize("board, programmer, install", [
    ("icebreaker", "iceprog", "fpga-icestorm"),
    ("ulx3s", "openFPGALoader", "openfpgaloader"),
])
def test_a_missing_programmer_is_named_with_how_to_install_it(tmp_path, empty_path, board,
                                                               programmer, install):
    path = bitstream(tmp_path, board, manifest_board=board)
    with pytest.raises(ProgrammerNotFound, match=rf"{programmer} not found on PATH.*{install}"):
        flash(board, path)
    assert issubclass(ProgrammerNotFound, ToolchainNotFound)


def test_no_board_found_gives_the_programmer_status_and_output(tmp_path, empty_path):
    ice = bitstream(tmp_path, "icebreaker", manifest_board="icebreaker")
    fake_programmer(empty_path, "iceprog", status=2, message="Can't find iCE FTDI USB device "
                    "(vendor_id 0x0403, device_id 0x6010 or 0x6014).")
    with pytest.raises(FlashError, match=r"(?s)iceprog found no 1BitSquared iCEBreaker "
                                         r"\(iCE40 UP5K\) \(exit status 2\).*udev.*"
                                         r"Can't find iCE FTDI USB device"):
        flash("icebreaker", ice)


def test_another_programmer_failure_gives_its_status_and_output(tmp_path, empty_path):
    ecp = bitstream(tmp_path, "ulx3s", manifest_board="ulx3s")
    fake_programmer(empty_path, "openFPGALoader", status=1, message="Error: wrong idcode")
    with pytest.raises(FlashError, match=r"openFPGALoader failed with exit status 1:\n"
                                         r"Error: wrong idcode"):
        flash("ulx3s", ecp)


def test_a_working_programmer_gets_the_command(tmp_path, empty_path):
    ecp = bitstream(tmp_path, "ulx3s", manifest_board="ulx3s")
    fake_programmer(empty_path, "openFPGALoader", status=0, message="Done")
    command = flash("ulx3s", ecp)
    assert command == ["openFPGALoader", "-b", "ulx3s", "-m", str(ecp.resolve())]
    assert (empty_path / "args").read_text().split() == command[1:]
