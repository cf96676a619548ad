"""The board registry: platforms, clocks, UARTs, programmers, and PE sizes that fit."""

from __future__ import annotations

from dataclasses import replace

import pytest
from amaranth.hdl import Fragment
from amaranth.vendor import LatticeECP5Platform, LatticeICE40Platform

from hilt.firmware.boards import BOARDS, PE_KINDS, BoardConfig, get_board
from hilt.firmware.synthesis import synthesize
from hilt.hdl.mul_array import MultiplierVectorArray
from hilt.hdl.shift_array import ShiftVectorArray
from hilt.hdl.synapse_crossbar import SynapseCrossbar
from hilt.hdl.threshold_array import BinaryLayerArray
from hilt.quant.synapse_device import SoftBoundsDevice
from hilt.quant.synapse_golden import step_tables_from_device

# The UP5K's resources, and the share of its LUTs one PE array may take: the rest is
# for the UART, frame codec and dispatcher.
UP5K = {"luts": 5280, "dsps": 8, "brams": 30}
PE_SHARE = 2 / 3


def pe_component(kind: str, params: dict[str, int]):
    """The Amaranth component of PE array ``kind`` at the size ``params``."""
    if kind == "shift":
        return ShiftVectorArray(**params)
    if kind == "multiplier":
        return MultiplierVectorArray(**params)
    if kind == "binary":
        return BinaryLayerArray(**params)
    sizes = dict(params)
    tables = step_tables_from_device(SoftBoundsDevice(sizes.pop("dw_min")),
                                     sizes.pop("state_bits"))
    return SynapseCrossbar(sizes.pop("rows"), sizes.pop("cols"), tables, **sizes)


def test_the_two_boards_and_their_platforms():
    assert list(BOARDS) == ["icebreaker", "ulx3s"]
    icebreaker, ulx3s = BOARDS["icebreaker"], BOARDS["ulx3s"]
    assert issubclass(icebreaker.platform, LatticeICE40Platform)
    assert (icebreaker.family, icebreaker.device, icebreaker.package) == (
        "ice40", "iCE40UP5K", "SG48")
    assert issubclass(ulx3s.platform, LatticeECP5Platform)
    assert (ulx3s.family, ulx3s.device, ulx3s.package) == ("ecp5", "LFE5U-85F", "BG381")
    assert (icebreaker.clock, icebreaker.clock_hz) == ("clk12", 12e6)
    assert (ulx3s.clock, ulx3s.clock_hz) == ("clk25", 25e6)
    assert (icebreaker.bitstream_suffix, ulx3s.bitstream_suffix) == (".bin", ".bit")
    assert (icebreaker.programmer, ulx3s.programmer) == ("iceprog", "openFPGALoader")
    assert ulx3s.programmer_args == ("-b", "ulx3s", "-m")


@pytest.mark.parametrize("name", list(BOARDS))
def test_the_uart_resource_has_rx_and_tx_pins(name):
    config = BOARDS[name]
    resource = config.new_platform().lookup(*config.uart)
    assert {subsignal.name for subsignal in resource.ios} >= {"rx", "tx"}


def test_an_unknown_board_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match=r"board must be one of icebreaker, ulx3s, got 'arty'"):
        get_board("arty")
    with pytest.raises(ValueError, match=r"board must be one of icebreaker, ulx3s, got 3"):
        get_board(3)
    assert get_board("ulx3s") is BOARDS["ulx3s"]
    assert get_board(BOARDS["ulx3s"]) is BOARDS["ulx3s"]


def test_pe_params_are_a_copy_and_an_unknown_kind_is_refused():
    config = BOARDS["icebreaker"]
    params = config.pe_params("shift")
    params["lanes"] = 99
    assert config.pe_params("shift")["lanes"] == 8
    with pytest.raises(TypeError):
        config.pe_sizes["shift"]["lanes"] = 99
    with pytest.raises(ValueError, match=r"kind must be one of shift, multiplier, binary, "
                                         r"synapse, got 'conv'"):
        config.pe_params("conv")


def test_a_board_config_refuses_an_unknown_family_or_missing_sizes():
    config = BOARDS["icebreaker"]
    with pytest.raises(ValueError, match=r"family must be one of ice40, ecp5, got 'xc7'"):
        replace(config, family="xc7")
    with pytest.raises(ValueError, match=r"pe_sizes of board 'icebreaker' lacks binary"):
        replace(config, pe_sizes={kind: config.pe_sizes[kind] for kind in PE_KINDS
                                  if kind != "binary"})
    assert isinstance(config, BoardConfig)


@pytest.mark.parametrize("name", list(BOARDS))
@pytest.mark.parametrize("kind", PE_KINDS)
def test_every_size_elaborates(name, kind):
    fragment = Fragment.get(pe_component(kind, BOARDS[name].pe_params(kind)), None)
    assert fragment.subfragments or fragment.statements


@pytest.mark.parametrize("kind", PE_KINDS)
def test_icebreaker_sizes_fit_the_up5k_beside_the_firmware(kind):
    report = synthesize(pe_component(kind, BOARDS["icebreaker"].pe_params(kind)), "ice40")
    assert 0 < report.luts <= PE_SHARE * UP5K["luts"]
    assert report.dsps <= UP5K["dsps"]
    assert report.brams <= UP5K["brams"]
    if kind == "multiplier":
        assert report.dsps == UP5K["dsps"]
