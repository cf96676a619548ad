"""Out-of-context placement: the harness keeps the component whole, and misfits are reported."""

from __future__ import annotations

import pytest
from amaranth.back import verilog

from hilt.firmware.placement import DEVICES, PinHarness, _misfit, place
from hilt.firmware.synthesis import synthesize
from hilt.sim.shift_regression import ArrayConfig


def small_array(kind: str = "shift", lanes: int = 2, pes: int = 1, act_width: int = 4):
    return ArrayConfig(kind=kind, lanes=lanes, pes=pes, act_width=act_width,
                       exp_bits=2 if act_width == 4 else 3, depth=8).build()


def test_harness_has_three_pins_and_drives_every_port():
    text = verilog.convert(PinHarness(small_array()), name="top")
    header = text[text.index("module top("):].splitlines()[0]
    assert sorted(header.removeprefix("module top(").removesuffix(");").split(", ")) == [
        "clk", "load", "rst", "si", "so"]
    # Every input of the array is driven from the chain, so none is left floating.
    assert "activations__payload" in text and "weights__payload" in text


@pytest.mark.parametrize("device", ["up5k", "ecp5-25k"])
def test_a_small_array_is_placed_whole(device):
    array_luts = synthesize(small_array(), "ice40" if device == "up5k" else "ecp5").luts
    placed = place(small_array(), device)
    assert placed.fits, placed.reason
    assert placed.fmax_mhz is not None and placed.fmax_mhz > 1
    # The harness adds registers around the array; it must not let the array be optimised
    # away, so the placed design holds at least the array's own LUTs.
    assert placed.luts >= array_luts > 0
    assert placed.luts_available > placed.luts


def test_more_multipliers_than_dsps_do_not_fit():
    # 8-bit activations by 9-bit weights are what Yosys maps to SB_MAC16s.
    placed = place(small_array("multiplier", lanes=4, pes=4, act_width=8), "up5k")
    assert not placed.fits
    assert placed.fmax_mhz is None
    assert placed.reason == "synthesis needs 16 DSPs (the part has 8)"


def test_an_unknown_device_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"device must be one of up5k, ecp5-25k, ecp5-85k, "
                                         r"got 'xc7a35t'"):
        place(small_array(), "xc7a35t")


def test_a_design_the_placer_cannot_fit_names_the_sites_it_lacked():
    # The lines nextpnr-ecp5 printed for a 24 x 16 shift array on the 25F.
    log = ("Info: Device utilisation:\n"
           "Info: \t          TRELLIS_FF:    9723/  24288    40%\n"
           "Info: \t        TRELLIS_COMB:   33012/  24288   135%\n"
           "ERROR: Unable to find legal placement for all cells, design is probably at "
           "utilisation limit.\n")
    placed = _misfit("ecp5-25k", DEVICES["ecp5-25k"], log, 9723, 1.0, "failed")
    assert not placed.fits
    assert placed.reason == "placement needs 33012 TRELLIS_COMB (the part has 24288)"


def test_any_other_placer_failure_is_raised_with_its_log():
    with pytest.raises(RuntimeError, match="nextpnr failed: ERROR: cell 'x' has no BEL"):
        _misfit("up5k", DEVICES["up5k"], "ERROR: cell 'x' has no BEL", 0, 1.0,
                "nextpnr failed: ERROR: cell 'x' has no BEL")
