"""The binary-layer testbench against the folded array under both simulators.

Expected outputs come from a direct numpy XNOR-popcount-compare written here, so this
checks the generated Verilog, the testbench's packing and its handshakes, independently
of the golden model in hilt.quant.
"""

from __future__ import annotations

import numpy as np
import pytest

from hilt.hdl.threshold_array import BinaryLayerArray
from hilt.sim.runner import SimulationFailed, simulate

TESTBENCH = "hilt.sim.testbenches.binary_layer"
SIMS = ["icarus", "verilator"]
# Neither size is a multiple of its fold: 4 slices with a tail of 1, 3 neuron folds of
# which the last has one neuron.
LAYER = {"in_features": 13, "out_features": 7, "pe": 3, "simd": 4, "max_weight": 1}
# Fan-in 10 for all 1024 input vectors, with magnitudes: 3 slices (tail 2), 2 neuron folds.
EXHAUSTIVE = {"in_features": 10, "out_features": 4, "pe": 2, "simd": 4, "max_weight": 3}


def expected_outputs(weights, magnitudes, thresholds, inputs) -> np.ndarray:
    """y[v, n] = [sum_i m[n, i] * XNOR(x[v, i], w[n, i]) >= T[n]]."""
    matches = np.asarray(inputs)[:, None, :] == np.asarray(weights)[None, :, :]
    counts = (matches * np.asarray(magnitudes)[None]).sum(axis=-1)
    return (counts >= np.asarray(thresholds)[None]).astype(int)


def random_job(config: dict, rng: np.random.Generator, inputs: np.ndarray, name: str,
               **extra) -> dict:
    """Random weights, magnitudes and thresholds over 0..sum+1, both ends always present."""
    shape = (config["out_features"], config["in_features"])
    weights = rng.integers(0, 2, shape)
    magnitudes = rng.integers(0, config["max_weight"] + 1, shape)
    if config["max_weight"] == 1:
        magnitudes = np.ones(shape, dtype=int)
    sums = magnitudes.sum(axis=1)
    thresholds = rng.integers(0, sums + 2)
    thresholds[0], thresholds[-1] = 0, sums[-1] + 1
    job = {"name": name, "weights": weights.tolist(), "thresholds": thresholds.tolist(),
           "inputs": inputs.tolist(),
           "expected": expected_outputs(weights, magnitudes, thresholds, inputs).tolist(),
           **extra}
    if config["max_weight"] > 1:
        job["magnitudes"] = magnitudes.tolist()
    return job


def run(config: dict, jobs: list[dict], sim: str, **kwargs) -> dict:
    array = BinaryLayerArray(**config)
    params = {"component": config, "seed": 11, "valid_prob": 0.7, "ready_prob": 0.6,
              "jobs": jobs}
    return simulate(array, TESTBENCH, sim=sim, params=params, **kwargs)


@pytest.mark.parametrize("sim", SIMS)
def test_random_layer_and_full_rate_timing(sim):
    rng = np.random.default_rng(1)
    jobs = [
        random_job(LAYER, rng, rng.integers(0, 2, (24, 13)), "first"),
        # A second layer, so the weights are reloaded after the first one's vectors.
        random_job(LAYER, rng, rng.integers(0, 2, (16, 13)), "second"),
        random_job(LAYER, rng, rng.integers(0, 2, (16, 13)), "full rate", full_rate=True),
    ]
    result = run(LAYER, jobs, sim)
    assert [report["name"] for report in result["jobs"]] == ["first", "second", "full rate"]
    for job, report in zip(jobs, result["jobs"], strict=True):
        assert report["outputs"] == job["expected"]
        assert report["compared"] == len(job["expected"])
        assert report["mismatches"] == 0
        # Every lane is written: 3 folds x 3 lanes, 4 slices of weights each.
        assert report["loaded"] == {"weights": 36, "thresholds": 9}
    assert result["mismatches"] == 0
    assert all(report["stalls"] > 0 for report in result["jobs"][:2])
    # The outputs are not trivial: both values occur at every neuron.
    outputs = np.array(result["jobs"][0]["outputs"])
    assert 0 < outputs[:, 1:-1].mean() < 1

    folded = -(-7 // 3) * -(-13 // 4)
    assert result["jobs"][2]["stalls"] == 0
    assert result["jobs"][2]["timing"] == {
        "vectors": 16, "cycles_per_vector": folded, "fastest_vector": folded,
        "latency": folded + 1}


@pytest.mark.parametrize("sim", SIMS)
def test_every_input_of_a_fan_in_of_ten(sim):
    rng = np.random.default_rng(2)
    inputs = (np.arange(1024)[:, None] >> np.arange(10)[None, :]) & 1
    job = random_job(EXHAUSTIVE, rng, inputs, "all 1024 vectors")
    result = run(EXHAUSTIVE, [job], sim)
    report = result["jobs"][0]
    assert report["outputs"] == job["expected"]
    assert report["compared"] == 1024
    assert report["mismatches"] == 0
    assert report["cycles"] >= 1024 * 3 * 2


@pytest.mark.parametrize("sim", SIMS)
def test_first_mismatch_names_job_vector_and_neuron(sim, tmp_path):
    rng = np.random.default_rng(3)
    job = random_job(LAYER, rng, rng.integers(0, 2, (3, 13)), "random")
    got = job["expected"][1][2]
    job["expected"][1][2] = 1 - got
    job["expected"][2][5] = 1 - job["expected"][2][5]
    with pytest.raises(SimulationFailed) as failure:
        run(LAYER, [job], sim, run_dir=tmp_path)
    message = str(failure.value)
    assert f"job 'random': vector 1, neuron 2: got {got}, expected {1 - got}" in message
    assert "2 mismatching bits in 3 output vectors" in message
    results = failure.value.results
    assert results["mismatches"] == 2
    assert results["first_mismatch"].startswith("job 'random': vector 1, neuron 2")
