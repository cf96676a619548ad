"""End to end: a trained power-of-two MLP through the shift-vector RTL, layer by layer."""

from __future__ import annotations

import json

import pytest

from hilt.sim.digits_proof import run_digits_proof


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_rtl_logits_equal_golden_and_accuracy_equals_brevitas(sim, tmp_path):
    summary = run_digits_proof(sim=sim, out_dir=tmp_path, seed=0, epochs=15)
    assert summary.golden_equals_brevitas
    assert summary.mismatches == 0
    assert summary.bit_exact
    assert summary.accuracy_rtl == summary.accuracy_brevitas == summary.accuracy_golden
    assert summary.accuracy_rtl > 0.9
    # Every test image went through both layers: 64 -> 32 in 4 tiles, 32 -> 10 in 2.
    assert [layer["jobs"] for layer in summary.layers] == [4, 2]
    assert summary.values_compared == summary.test_images * 8 * (4 + 2)
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["bit_exact"] is True
    assert written["accuracy_rtl"] == summary.accuracy_rtl
    assert written["accuracy_matches"] is True
