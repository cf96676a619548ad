"""The vector-array regression under Amaranth's simulator: bit-exact, and cocotb's protocol.

:func:`run_jobs_amaranth` must report what :func:`run_jobs` reports for the same jobs:
every output equal to the golden model, a mismatch named by vector index and both
values, a hang as :class:`SimulationFailed`, and, because the stimulus is the cocotb
testbench's cycle for cycle, the same number of cycles as under Icarus.
"""

from __future__ import annotations

import numpy as np
import pytest

import hilt.sim.amaranth_regression as amaranth_regression
from hilt.host.cli import main
from hilt.sim.amaranth_regression import run_jobs_amaranth
from hilt.sim.errors import SimulationFailed
from hilt.sim.shift_regression import ArrayConfig, corner_jobs, random_jobs, run_jobs


def small(kind: str = "shift") -> ArrayConfig:
    """Depth not a multiple of lanes, so the junk lanes of the last beat are exercised."""
    return ArrayConfig(kind=kind, lanes=4, pes=3, act_width=5, exp_bits=2, depth=13)


@pytest.mark.parametrize("kind", ["shift", "multiplier"])
def test_corners_and_random_codes_match_the_golden_model(kind):
    config = small(kind)
    rng = np.random.default_rng(2)
    jobs = corner_jobs(config, rng, vectors=4) + random_jobs(config, rng, vectors=16)
    report, outputs = run_jobs_amaranth(config, jobs, seed=1, valid_prob=0.5, ready_prob=0.4)
    assert (report.sim, report.mismatches, report.first_mismatch) == ("amaranth", 0, None)
    assert report.vectors == sum(len(job.activations) for job in jobs)
    assert report.values == report.vectors * config.pes
    assert report.cycles > report.vectors * -(-config.depth // config.lanes)
    for job, got in zip(jobs, outputs, strict=True):
        np.testing.assert_array_equal(got, job.expected(), err_msg=job.name)


@pytest.mark.parametrize("sim", ["icarus"])
def test_same_outputs_and_cycles_as_the_cocotb_run(sim):
    config = small()
    jobs = random_jobs(config, np.random.default_rng(5), jobs=2, vectors=12)
    ours, our_outputs = run_jobs_amaranth(config, jobs, seed=7)
    theirs, their_outputs = run_jobs(config, jobs, sim=sim, seed=7)
    assert ours.cycles == theirs.cycles
    for mine, other in zip(our_outputs, their_outputs, strict=True):
        np.testing.assert_array_equal(mine, other)


def test_a_hang_fails_with_what_got_through(monkeypatch):
    config = small()
    jobs = random_jobs(config, np.random.default_rng(2), jobs=1, vectors=6)
    monkeypatch.setattr(amaranth_regression, "job_budget", lambda *args: 3)
    with pytest.raises(SimulationFailed, match=r"job 'random 0' hung: no progress after 3 "
                                               r"cycles; weights \d/4, activation beats 0/24"):
        run_jobs_amaranth(config, jobs, valid_prob=1)


def test_a_probability_outside_0_1_is_refused():
    config = small()
    jobs = random_jobs(config, np.random.default_rng(2), jobs=1, vectors=1)
    with pytest.raises(ValueError, match=r"ready_prob must be in \(0, 1\], got 0"):
        run_jobs_amaranth(config, jobs, ready_prob=0)


def test_the_cli_runs_the_regression_under_amaranth(capsys):
    argv = ["sim", "mul-array", "--sim", "amaranth", "--lanes", "4", "--pes", "3",
            "--act-width", "5", "--exp-bits", "2", "--depth", "13", "--vectors", "40"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "mul-array under amaranth: 40 vectors, 120 values compared, 0 mismatches" in out
