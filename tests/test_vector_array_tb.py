# amaranth: UnusedElaboratable=no
# (StuckArray borrows an array only for its signature)

"""The vector-array testbench against both arrays under both simulators, on one small job.

The expected values come from a direct numpy sum of sign/shift products, independent
of the golden model, so this checks the testbench's packing and handshakes as much as
the arrays.
"""

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring

from hilt.hdl.mul_array import MultiplierVectorArray
from hilt.hdl.shift_array import ShiftVectorArray
from hilt.sim.runner import SimulationFailed, simulate

TESTBENCH = "hilt.sim.testbenches.vector_array"
# depth is not a multiple of lanes, so the last beat carries ignored junk lanes.
CONFIG = {"lanes": 4, "pes": 3, "act_width": 6, "exp_bits": 3, "depth": 10}
ARRAYS = {"shift": ShiftVectorArray, "multiplier": MultiplierVectorArray}


def random_job(rng: np.random.Generator, vectors: int, name: str = "random") -> dict:
    pes, depth, exp_bits, act_width = (CONFIG[k] for k in ("pes", "depth", "exp_bits",
                                                           "act_width"))
    zero_code = (1 << exp_bits) - 1
    max_exp = zero_code - 1
    sign = rng.integers(0, 2, size=(pes, depth))
    exp = rng.integers(0, zero_code + 1, size=(pes, depth))  # includes the zero code
    # Extremes of the activation range are where sign and width errors show.
    low, high = -(1 << (act_width - 1)), (1 << (act_width - 1)) - 1
    activations = rng.integers(low, high + 1, size=(vectors, depth))
    activations[0, :] = low
    activations[1, :] = high
    weight = np.where(exp == zero_code, 0,
                      np.where(sign == 1, -1, 1) * (1 << (max_exp - exp)))
    expected = activations @ weight.T
    return {"name": name, "sign": sign.tolist(), "exp": exp.tolist(),
            "activations": activations.tolist(), "expected": expected.tolist()}


def params(*jobs: dict) -> dict:
    return {"seed": 7, "valid_prob": 0.7, "ready_prob": 0.6, "jobs": list(jobs)}


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
@pytest.mark.parametrize("kind", ["shift", "multiplier"])
def test_vector_array_matches_numpy(kind, sim):
    rng = np.random.default_rng(1)
    # Two jobs, so the second reloads the weights after the first job's vectors.
    jobs = [random_job(rng, vectors=8, name="first"), random_job(rng, vectors=5, name="second")]
    array = ARRAYS[kind](**CONFIG)
    result = simulate(array, TESTBENCH, sim=sim,
                      params={"component": {"kind": kind, **CONFIG}, **params(*jobs)})
    assert [report["name"] for report in result["jobs"]] == ["first", "second"]
    for job, report in zip(jobs, result["jobs"], strict=True):
        assert report["outputs"] == job["expected"]
        assert report["compared"] == len(job["expected"])
        assert report["mismatches"] == 0
        # 3 weight beats and 3 activation beats per vector, offered with gaps.
        assert report["cycles"] > 3 + 3 * len(job["expected"])
        assert report["stalls"] > 0  # the results port did see back-pressure
    assert result["mismatches"] == 0


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_vector_array_names_first_mismatch(sim, tmp_path):
    job = random_job(np.random.default_rng(2), vectors=3)
    job["expected"][1][2] += 1
    job["expected"][2][0] -= 5
    array = ShiftVectorArray(**CONFIG)
    with pytest.raises(SimulationFailed) as failure:
        simulate(array, TESTBENCH, sim=sim, run_dir=tmp_path,
                 params={"component": {"kind": "shift", **CONFIG}, **params(job)})
    wanted = job["expected"][1][2]
    assert f"job 'random': vector 1, PE 2: got {wanted - 1}, expected {wanted}" in str(
        failure.value)
    assert "2 mismatching values in 3 result beats" in str(failure.value)
    assert failure.value.results["mismatches"] == 2


class StuckArray(wiring.Component):
    """The array's ports with nothing behind them: never ready, never a result."""

    def __init__(self):
        super().__init__(ShiftVectorArray(**CONFIG).signature)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.results.valid.eq(0)  # a clock domain, so the ports include clk
        return m


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_vector_array_hang_fails_with_progress(sim, tmp_path):
    job = random_job(np.random.default_rng(3), vectors=2)
    with pytest.raises(SimulationFailed, match=r"job 'random' hung: no progress after \d+ "
                                               r"cycles; weights 0/3, activation beats 0/6"):
        simulate(StuckArray(), TESTBENCH, sim=sim, run_dir=tmp_path,
                 params={"component": {"kind": "shift", **CONFIG}, **params(job)})
