"""The shift-vector array and its twin against the integer golden model, under both simulators.

Corners of the format, random codes and the exported codes of a trained Brevitas layer
go through the generated Verilog with random valid gaps and back-pressure; every output
must equal :func:`hilt.quant.shift_golden.shift_matmul` exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hilt.quant.datasets import load_digits
from hilt.quant.pow2_mlp import Pow2MLP, export_pow2_mlp, fit
from hilt.sim.shift_regression import (
    CORNER_EVERY,
    ArrayConfig,
    Job,
    corner_jobs,
    corner_tiles,
    layer_jobs,
    random_jobs,
    run_jobs,
    stream_jobs,
)

SIMS = ["icarus", "verilator"]


@pytest.fixture(scope="module")
def trained_first_layer():
    """The first layer of a power-of-two MLP trained on the digits, and the test pixels."""
    split = load_digits(seed=0)
    torch.manual_seed(0)
    model = Pow2MLP(hidden=(32,), exp_bits=3)
    fit(model, split.x_train, split.y_train, epochs=10, seed=0)
    return export_pow2_mlp(model)[0].weights, split.x_test


@pytest.mark.parametrize("kind", ["shift", "multiplier"])
@pytest.mark.parametrize("sim", SIMS)
def test_corners_random_and_trained_layer(sim, kind, trained_first_layer):
    config = ArrayConfig(kind=kind, lanes=8, pes=8, act_width=8, exp_bits=3, depth=64)
    rng = np.random.default_rng(1)
    weights, pixels = trained_first_layer
    jobs = (corner_jobs(config, rng) + random_jobs(config, rng, vectors=48)
            + layer_jobs(config, "digits layer 0", weights, pixels))
    report, outputs = run_jobs(config, jobs, sim=sim, seed=3)
    assert report.first_mismatch is None
    assert report.mismatches == 0
    assert report.vectors == sum(len(job.activations) for job in jobs)
    assert report.values == report.vectors * config.pes
    for job, got in zip(jobs, outputs, strict=True):
        np.testing.assert_array_equal(got, job.expected(), err_msg=job.name)
    # The trained layer is not trivial: its outputs are not all zero.
    assert np.any(outputs[-1])


@pytest.mark.parametrize("sim", SIMS)
def test_depth_not_a_multiple_of_lanes_with_narrow_formats(sim):
    config = ArrayConfig(kind="shift", lanes=4, pes=3, act_width=5, exp_bits=2, depth=13)
    rng = np.random.default_rng(2)
    jobs = corner_jobs(config, rng) + random_jobs(config, rng, vectors=40)
    report, _ = run_jobs(config, jobs, sim=sim, valid_prob=0.5, ready_prob=0.4)
    assert (report.mismatches, report.first_mismatch) == (0, None)
    assert report.values == report.vectors * 3


@pytest.mark.parametrize("sim", [*SIMS, "amaranth"])
def test_a_mismatch_is_reported_with_its_index_and_both_values(sim, monkeypatch):
    config = ArrayConfig(kind="shift", lanes=4, pes=3, act_width=5, exp_bits=2, depth=13)
    jobs = random_jobs(config, np.random.default_rng(2), jobs=1, vectors=6)
    true_expected = Job.expected

    def off_by_one(job):
        expected = true_expected(job).copy()
        expected[4, 1] += 1
        return expected

    monkeypatch.setattr(Job, "expected", off_by_one)
    report, outputs = run_jobs(config, jobs, sim=sim)
    rtl = outputs[0][4, 1]
    assert report.mismatches == 1
    assert report.first_mismatch == (
        f"job 'random 0' vector 4 PE 1: RTL {rtl} != golden {rtl + 1}")


def test_a_layer_that_does_not_fit_is_refused_with_what_would():
    config = ArrayConfig(kind="shift", lanes=4, pes=2, act_width=5, exp_bits=3, depth=16)
    weights = random_jobs(config, np.random.default_rng(0), jobs=1)[0].weights
    with pytest.raises(ValueError, match=r"-16..15: raise act_width"):
        layer_jobs(config, "wide", weights, np.full((2, 16), 40))
    narrow = ArrayConfig(kind="shift", lanes=4, pes=2, act_width=5, exp_bits=3, depth=12)
    with pytest.raises(ValueError, match=r"16 inputs; the array's depth is 12"):
        layer_jobs(narrow, "deep", weights, np.zeros((2, 16), dtype=np.int64))


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match=r"kind must be one of shift, multiplier, got 'adder'"):
        ArrayConfig(kind="adder")


def test_a_stream_reaches_every_corner_tile_and_mixes_corners_into_random_vectors():
    config = ArrayConfig(kind="shift", lanes=4, pes=3, act_width=5, exp_bits=2, depth=13)
    names = [name for name, _ in corner_tiles(config, np.random.default_rng(0))]
    small = stream_jobs(config, np.random.default_rng(0), 7)
    assert [job.name for job in small] == names[:4] and sum(map(len, (
        job.activations for job in small))) == 7
    long = stream_jobs(config, np.random.default_rng(0), 2500, per_job=100)
    assert [job.name for job in long[:5]] == names and len(long) == 25
    assert sum(len(job.activations) for job in long) == 2500
    for job in long:
        corners = job.activations[::CORNER_EVERY]
        assert np.all((corners == -16) | (corners == 15) | np.isin(corners, [-15, -1, 0, 1]))
    random_rows = np.concatenate([np.delete(job.activations, np.s_[::CORNER_EVERY], axis=0)
                                  for job in long])
    assert random_rows.min() == -16 and random_rows.max() == 15
    assert len(np.unique(random_rows)) == 32


@pytest.mark.parametrize("sim", SIMS)
def test_a_long_stream_over_many_tiles_is_bit_exact(sim):
    config = ArrayConfig(kind="shift", lanes=4, pes=3, act_width=5, exp_bits=2, depth=13)
    jobs = stream_jobs(config, np.random.default_rng(4), 1200, per_job=100)
    report, _ = run_jobs(config, jobs, sim=sim, seed=4)
    assert (report.vectors, report.jobs) == (1200, 12)
    assert (report.mismatches, report.first_mismatch) == (0, None)
