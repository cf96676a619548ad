"""The real firmware built for both boards from the command line, and flashed by dry run."""

from __future__ import annotations

import json

import pytest
from amaranth.hdl import Fragment

from hilt.firmware.board_firmware import board_divisor, firmware_params, firmware_top
from hilt.firmware.boards import BOARDS
from hilt.host.cli import main
from hilt.host.protocol.codec import Capabilities

BUILDS = {"icebreaker": ("icebreaker", "synapse"), "ulx3s": ("ulx3s", "synapse"),
          "icebreaker-shift": ("icebreaker", "shift"),
          "icebreaker-binary": ("icebreaker", "binary")}
"""Each board with its default element, and the smaller board with each other element."""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The builds through `hilt build`, once each, with a private bitstream cache."""
    root = tmp_path_factory.mktemp("boards")
    patch = pytest.MonkeyPatch()
    patch.setenv("HILT_CACHE", str(root / "cache"))
    try:
        for name, (board, pe) in BUILDS.items():
            assert main(["build", "--board", board, "--pe", pe, "--out", str(root / name)]) == 0
    finally:
        patch.undo()
    return root


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_hilt_build_writes_a_bitstream_and_a_report_that_meets_timing(name, built):
    board, pe = BUILDS[name]
    config = BOARDS[board]
    out = built / name
    report = json.loads((out / "top.report.json").read_text())
    assert report["board"] == board and report["params"]["pe"] == pe and report["timing_met"]
    assert 0 < report["luts"] < report["luts_available"]
    assert report["brams"] >= 5  # receive FIFO, request and result buffers, ROM, encoder
    assert (out / f"top{config.bitstream_suffix}").stat().st_size > 100_000
    manifest = json.loads((out / "top.manifest.json").read_text())
    assert manifest["board"] == board


def test_hilt_flash_dry_run_prints_the_programmer_command(built, capsys):
    bitstream = built / "icebreaker" / "top.bin"
    assert main(["flash", "--board", "icebreaker", "--bitstream", str(bitstream),
                 "--dry-run"]) == 0
    assert capsys.readouterr().out.strip() == f"would run: iceprog {bitstream}"
    assert main(["flash", "--board", "ulx3s", "--bitstream", str(bitstream), "--dry-run"]) == 2
    assert "the ulx3s takes ecp5 bitstreams" in capsys.readouterr().err


def test_hilt_flash_without_a_bitstream_says_how_to_get_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["flash", "--board", "icebreaker", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run `hilt build --board icebreaker` first" in err


def test_firmware_identifies_its_board_and_line():
    top = firmware_top(BOARDS["ulx3s"], {"max_payload": 64}, divisor=4, clock_hz=100e6)
    record = Capabilities.from_payload(top.device.dispatcher.capability)
    Fragment.get(top, None)  # it elaborates
    assert (record.board, record.max_payload, record.baud) == ("ulx3s", 64, 25_000_000)
    assert [target["kind"] for target in record.targets] == ["memory", "synapse_crossbar"]
    assert record.targets[1]["params"]["rows"] == 16


def test_bad_firmware_parameters_are_named():
    with pytest.raises(ValueError, match="firmware parameter must be one of baud, "):
        firmware_params({"bauds": 9600})
    with pytest.raises(ValueError, match=r"pe must be one of synapse, shift, binary, got 'conv'"):
        firmware_params({"pe": "conv"})
    with pytest.raises(ValueError, match=r"baud=5000000 is too fast for icebreaker's 12 MHz"):
        board_divisor(BOARDS["icebreaker"], 5_000_000)
    with pytest.raises(ValueError, match=r"baud=900000 is 2\.6% off the nearest rate 923077"):
        board_divisor(BOARDS["icebreaker"], 900_000)
    assert board_divisor(BOARDS["icebreaker"], 115200) == 104
