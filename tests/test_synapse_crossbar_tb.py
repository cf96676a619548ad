"""The synapse crossbar in RTL against the integer golden model, under both simulators.

Every read and every cell's state after random pulse sequences (both rules, with and
without LFSR noise, with overlong updates) must equal the golden model's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from hilt.host.cli import main
from hilt.quant.synapse_device import LinearDevice, SoftBoundsDevice
from hilt.quant.synapse_golden import step_tables_from_device
from hilt.sim.synapse_regression import (
    CrossbarConfig,
    CrossbarJob,
    Expected,
    random_job,
    run_crossbar_jobs,
    saturation_job,
    stream_jobs,
)

SIMS = ["icarus", "verilator"]

NOISY = CrossbarConfig(rows=3, cols=4, tables=step_tables_from_device(SoftBoundsDevice(0.3), 4),
                       in_bits=4, max_pulses=5, noise_bits=1, seed=7)
QUIET = CrossbarConfig(rows=2, cols=5,
                       tables=step_tables_from_device(LinearDevice(2 / 31, up_down=0.4), 5),
                       in_bits=3, max_pulses=3)


@pytest.mark.parametrize("sim", SIMS)
@pytest.mark.parametrize("config", [NOISY, QUIET], ids=["noisy", "quiet"])
def test_crossbar_matches_golden_model(sim, config):
    rng = np.random.default_rng(3)
    jobs = [saturation_job(config)] + [random_job(config, rng, f"random {n}", 50)
                                       for n in range(2)]
    report = run_crossbar_jobs(config, jobs, sim=sim, seed=5)
    assert (report.mismatches, report.first_mismatch) == (0, None)
    expected = [job.expected(config) for job in jobs]
    reads = sum(len(e.reads) for e in expected)
    readbacks = sum(len(e.readbacks) for e in expected)
    assert report.vectors == reads + readbacks
    assert report.cells == readbacks * 2 * config.cols
    assert report.values == reads * config.rows + report.cells + len(jobs)


@dataclass(frozen=True)
class WrongReadJob(CrossbarJob):
    """A job whose expected second read is off by one in row 1: the harness must say so."""

    def expected(self, config):
        expected = super().expected(config)
        reads = expected.reads.copy()
        reads[1, 1] += 1
        return Expected(reads, expected.readbacks, expected.overrun)


def test_a_wrong_expected_value_is_named():
    config = QUIET
    job = random_job(config, np.random.default_rng(0), "base", 30)
    wrong = WrongReadJob("wrong", job.ops)
    golden = job.expected(config).reads[1, 1]
    report = run_crossbar_jobs(config, [wrong], sim="verilator")
    assert report.mismatches == 1
    assert report.first_mismatch == (f"job 'wrong' read 1 row 1: RTL {golden} != golden "
                                     f"{golden + 1}")


def test_cli_runs_the_regression(capsys):
    assert main(["sim-synapse", "--sim", "verilator", "--rows", "2", "--cols", "3",
                 "--vectors", "30"]) == 0
    out = capsys.readouterr().out
    assert "0 mismatches" in out and "under verilator" in out


def test_cli_refuses_a_bad_size(capsys):
    assert main(["sim-synapse", "--state-bits", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --state-bits: 0 is out of range: accepted an " \
        "integer from 2 to 12" in err


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_a_stream_of_jobs_reaches_its_vectors_and_is_bit_exact(sim):
    config = CrossbarConfig(rows=2, cols=3, tables=step_tables_from_device(
        SoftBoundsDevice(0.3), 3), in_bits=3, max_pulses=3, noise_bits=1, seed=2)
    jobs = stream_jobs(config, np.random.default_rng(8), 400, per_job=100)
    assert jobs[0].name == "saturation" and len(jobs) >= 5
    report = run_crossbar_jobs(config, jobs, sim=sim, seed=8)
    assert report.vectors >= 400
    assert (report.mismatches, report.first_mismatch) == (0, None)
