"""Out-of-context synthesis with YoWASP Yosys for iCE40: real resource counts, clear errors."""

from __future__ import annotations

import pytest

from hilt.firmware.synthesis import ToolchainNotFound, synthesize
from hilt.hdl.mul_array import MultiplierVectorArray
from hilt.hdl.shift_array import ShiftVectorArray

# Large enough (8 x 8 bits) that Yosys maps each product onto a DSP.
SMALL = {"lanes": 2, "pes": 1, "act_width": 8, "exp_bits": 3, "depth": 8}


def test_shift_array_uses_no_dsp_and_its_twin_does():
    shift = synthesize(ShiftVectorArray(**SMALL))
    multiplier = synthesize(MultiplierVectorArray(**SMALL))
    assert shift.family == "ice40"
    assert shift.dsps == 0
    assert shift.luts > 0 and shift.flip_flops > 0
    # One multiplier per lane, each mapped onto an SB_MAC16.
    assert multiplier.dsps == SMALL["lanes"] * SMALL["pes"]
    assert multiplier.cells["SB_MAC16"] == multiplier.dsps


def test_without_dsps_the_multipliers_cost_luts():
    with_dsp = synthesize(MultiplierVectorArray(**SMALL))
    without = synthesize(MultiplierVectorArray(**SMALL), use_dsp=False)
    assert without.dsps == 0
    assert without.luts > with_dsp.luts


def test_ecp5_maps_the_products_onto_its_multipliers_unless_told_not_to():
    with_dsp = synthesize(MultiplierVectorArray(**SMALL), "ecp5")
    without = synthesize(MultiplierVectorArray(**SMALL), "ecp5", use_dsp=False)
    shift = synthesize(ShiftVectorArray(**SMALL), "ecp5")
    assert with_dsp.family == "ecp5" and with_dsp.cells["MULT18X18D"] == with_dsp.dsps == 2
    assert without.dsps == 0 and without.luts > with_dsp.luts
    assert shift.dsps == 0 and shift.luts > 0 and shift.flip_flops > 0


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match=r"family must be one of ice40, ecp5, got 'virtex'"):
        synthesize(ShiftVectorArray(**SMALL), "virtex")


def test_missing_yosys_names_the_tool_and_the_fix(monkeypatch):
    monkeypatch.setenv("YOSYS", "no-such-yosys")
    with pytest.raises(ToolchainNotFound, match=r"'no-such-yosys'.*hilt\[toolchain\]"):
        synthesize(ShiftVectorArray(**SMALL))
