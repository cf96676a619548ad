"""End to end: a trained binarized MLP through the threshold-neuron RTL, every layer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hilt.sim import bnn_digits_proof
from hilt.sim.binary_regression import BinaryRegressionReport
from hilt.sim.bnn_digits_proof import run_bnn_digits_proof


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_rtl_logits_equal_golden_and_accuracy_equals_brevitas(sim, tmp_path):
    summary = run_bnn_digits_proof(sim=sim, out_dir=tmp_path, seed=0)
    assert summary.golden_equals_brevitas
    assert summary.float32_safe
    assert summary.mismatches == 0
    assert summary.bit_exact
    assert summary.accuracy_rtl == summary.accuracy_brevitas == summary.accuracy_golden
    assert summary.accuracy_rtl > 0.85
    # Every test image went through both layers: 64 -> 64 in bits, 64 -> 10 in counts.
    assert [(layer["emit"], layer["out_features"], layer["cycles_per_vector"])
            for layer in summary.layers] == [("bits", 64, 32), ("counts", 10, 8)]
    assert all(layer["matches_golden"] for layer in summary.layers)
    assert summary.values_compared == summary.test_images * (64 + 10)
    for layer in summary.layers:
        assert layer["vectors"] == summary.test_images
        assert layer["cycles"] >= summary.test_images * layer["cycles_per_vector"]
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["bit_exact"] is True
    assert written["accuracy_rtl"] == summary.accuracy_rtl
    assert written["accuracy_matches"] is True
    assert written["layers"][1]["emit"] == "counts"


def test_a_wrong_count_from_the_rtl_breaks_bit_exactness(monkeypatch, tmp_path):
    """The host's logits come from the RTL's counts: one count off must show, even unseen
    by the testbench's scoreboard. The RTL here is a stand-in that returns the golden
    outputs, with one count of the last layer raised by one."""

    def stand_in(folding, jobs, *, sim, seed=0):
        (job,) = jobs
        outputs = job.expected().copy()
        if not folding.thresholded:
            outputs[3, 7] += 1
        report = BinaryRegressionReport(
            sim=sim, folding=folding, jobs=1, vectors=len(outputs), values=outputs.size,
            mismatches=0, first_mismatch=None, cycles=0, wall_s=0.0)
        return report, [outputs]

    monkeypatch.setattr(bnn_digits_proof, "run_layer_jobs", stand_in)
    summary = run_bnn_digits_proof(sim="icarus", out_dir=tmp_path, seed=0, epochs=2)
    assert summary.mismatches == 0
    assert not summary.bit_exact
    assert [layer["matches_golden"] for layer in summary.layers] == [True, False]
    assert "DIFFER FROM" in summary.verdict


def test_each_layer_is_folded_by_its_kind():
    spec = bnn_digits_proof.export_binary_mlp(bnn_digits_proof.BinaryMLP(hidden=(6,)))
    hidden, last = spec
    folding = bnn_digits_proof.layer_folding(hidden, pe=8, simd=16)
    assert (folding.in_features, folding.out_features) == (64, 6)
    assert (folding.pe, folding.simd, folding.emit) == (6, 16, "bits")
    folding = bnn_digits_proof.layer_folding(last, pe=5, simd=100)
    assert (folding.pe, folding.simd, folding.emit) == (5, 6, "counts")
    assert folding.count_width == 3
    np.testing.assert_array_equal(last.sums, np.full(10, 6))
