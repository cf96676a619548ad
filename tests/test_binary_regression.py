"""The folded binary-layer array against the integer golden model, under both simulators.

The hidden layer of a binarized digits network, exported with its BatchNorm folded into
count thresholds, runs over the whole test split in RTL; its output bits feed the
network's last layer, and the predictions must equal the Brevitas model's. The last
layer, which has no thresholds, is a counts job for an array built with
``emit="counts"``; sim/bnn_digits_proof.py runs the whole network that way.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hilt.hdl.threshold_array import LayerFolding
from hilt.quant.binary_golden import popcount_matches
from hilt.quant.binary_mlp import (
    BinaryMLP,
    binarize_pixels,
    export_binary_mlp,
    fit,
    integer_forward,
    pixels_to_input,
)
from hilt.quant.datasets import load_digits
from hilt.sim.binary_regression import (
    CORNER_EVERY,
    LayerJob,
    random_layer_jobs,
    run_layer_jobs,
    spec_job,
    stream_layer_jobs,
)

SIMS = ["icarus", "verilator"]


@pytest.fixture(scope="module")
def digits_network():
    split = load_digits(seed=0)
    torch.manual_seed(0)
    model = BinaryMLP(hidden=(64,))
    fit(model, split.x_train, split.y_train, epochs=15, seed=0)
    with torch.no_grad():
        brevitas = model(pixels_to_input(split.x_test)).argmax(dim=1).numpy()
    return export_binary_mlp(model), split, brevitas


@pytest.mark.parametrize("sim", SIMS)
def test_digits_hidden_layer_in_rtl_gives_brevitas_predictions(sim, digits_network):
    spec, split, brevitas = digits_network
    hidden, last = spec
    folding = LayerFolding(in_features=64, out_features=64, pe=8, simd=16)
    job = spec_job(hidden, binarize_pixels(split.x_test))
    report, (bits,) = run_layer_jobs(folding, [job], sim=sim, seed=1)
    assert (report.mismatches, report.first_mismatch) == (0, None)
    assert report.vectors == len(split.x_test)
    assert report.values == len(split.x_test) * 64
    np.testing.assert_array_equal(bits, job.expected())
    predictions = last.forward(bits).argmax(axis=1)
    np.testing.assert_array_equal(predictions, integer_forward(spec, split.x_test).argmax(axis=1))
    np.testing.assert_array_equal(predictions, brevitas)
    assert np.mean(predictions == split.y_test) > 0.85


@pytest.mark.parametrize("max_weight", [1, 3])
@pytest.mark.parametrize("sim", SIMS)
def test_random_layers_with_extreme_thresholds(sim, max_weight):
    folding = LayerFolding(in_features=13, out_features=7, pe=3, simd=4, max_weight=max_weight)
    jobs = random_layer_jobs(folding, np.random.default_rng(max_weight), vectors=40)
    report, _ = run_layer_jobs(folding, jobs, sim=sim, valid_prob=0.5, ready_prob=0.5)
    assert (report.mismatches, report.first_mismatch) == (0, None)
    assert report.values == 80 * 7


@pytest.mark.parametrize("sim", SIMS)
def test_random_counts_layers(sim):
    folding = LayerFolding(in_features=13, out_features=7, pe=3, simd=4, max_weight=3,
                           emit="counts")
    jobs = random_layer_jobs(folding, np.random.default_rng(7), vectors=40)
    assert all(job.thresholds is None for job in jobs)
    report, outputs = run_layer_jobs(folding, jobs, sim=sim, valid_prob=0.5, ready_prob=0.5)
    assert (report.mismatches, report.first_mismatch) == (0, None)
    assert report.values == 80 * 7
    for job, got in zip(jobs, outputs, strict=True):
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, popcount_matches(job.inputs, job.weights,
                                                            job.magnitudes))
        # The first neuron's count reaches its S on vector 0 and 0 on vector 1.
        assert (got[0, 0], got[1, 0]) == (job.magnitudes[0].sum(), 0)


@pytest.mark.parametrize("sim", SIMS)
def test_a_mismatch_names_vector_neuron_and_both_values(sim, monkeypatch):
    folding = LayerFolding(in_features=13, out_features=7, pe=3, simd=4)
    jobs = random_layer_jobs(folding, np.random.default_rng(5), jobs=1, vectors=6)
    true_expected = LayerJob.expected

    def flipped(job):
        expected = true_expected(job).copy()
        expected[2, 5] ^= 1
        return expected

    monkeypatch.setattr(LayerJob, "expected", flipped)
    report, outputs = run_layer_jobs(folding, jobs, sim=sim)
    rtl = outputs[0][2, 5]
    assert report.mismatches == 1
    assert report.first_mismatch == (
        f"job 'random 0' vector 2 neuron 5: RTL {rtl} != golden {rtl ^ 1}")


def test_a_logits_layer_is_a_counts_job_whose_counts_give_the_logits(digits_network):
    spec, split, _ = digits_network
    hidden, last = spec
    bits = hidden.forward(binarize_pixels(split.x_test[:50]))
    job = spec_job(last, bits)
    assert (job.emit, job.thresholds) == ("counts", None)
    assert spec_job(hidden, binarize_pixels(split.x_test[:50])).emit == "bits"
    counts = job.expected()
    assert counts.shape == (50, 10) and counts.dtype == np.int64
    np.testing.assert_array_equal(2 * counts - last.sums, last.forward(bits))
    params = job.as_params()
    assert "thresholds" not in params
    assert params["expected"] == counts.tolist()


def test_a_job_the_array_cannot_run_is_refused(digits_network):
    spec, split, _ = digits_network
    bits = binarize_pixels(split.x_test[:2])
    counts_job = spec_job(spec[-1], spec[0].forward(bits))
    with pytest.raises(ValueError, match=r"job 'layers.3' expects counts \(no thresholds\) "
                                         r"but the folding emits bits; build it with "
                                         r"emit='counts'"):
        run_layer_jobs(LayerFolding(in_features=64, out_features=10, pe=5, simd=16),
                       [counts_job], sim="icarus")
    with pytest.raises(ValueError, match=r"expects bits \(thresholds\) but the folding "
                                         r"emits counts"):
        run_layer_jobs(LayerFolding(in_features=64, out_features=64, pe=8, simd=16,
                                    emit="counts"), [spec_job(spec[0], bits)], sim="icarus")


@pytest.mark.parametrize("emit", ["bits", "counts"])
@pytest.mark.parametrize("sim", SIMS)
def test_a_long_stream_of_layers_with_corner_inputs_is_bit_exact(sim, emit):
    folding = LayerFolding(in_features=13, out_features=7, pe=3, simd=4, emit=emit)
    jobs = stream_layer_jobs(folding, np.random.default_rng(6), 1000, per_job=100)
    assert len(jobs) == 10 and sum(len(job.inputs) for job in jobs) == 1000
    for job in jobs:
        corners = np.asarray(job.inputs)[::CORNER_EVERY]
        weights = np.asarray(job.weights)[0]
        assert [list(row) for row in corners[:4]] == [[0] * 13, [1] * 13, list(weights),
                                                       list(1 - weights)]
    report, _ = run_layer_jobs(folding, jobs, sim=sim, seed=6)
    assert report.vectors == 1000 and report.values == 7000
    assert (report.mismatches, report.first_mismatch) == (0, None)
