"""The binary-layer testbench against the folded array under both simulators.

Expected outputs come from a direct numpy XNOR-popcount(-compare) written here, so this
checks the generated Verilog, the testbench's packing and its handshakes, in both of the
array's modes (threshold bits and plain counts), independently of the golden model in
hilt.quant.
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
COUNTS = {**LAYER, "emit": "counts"}
# Fan-in 12 for all 4096 input vectors, with magnitudes: 3 slices (tail 2), 2 neuron folds
# of which the last has one neuron.
EXHAUSTIVE = {"in_features": 12, "out_features": 3, "pe": 2, "simd": 5, "max_weight": 3}


def match_counts(weights, magnitudes, inputs) -> np.ndarray:
    """p[v, n] = sum_i m[n, i] * XNOR(x[v, i], w[n, i])."""
    matches = np.asarray(inputs)[:, None, :] == np.asarray(weights)[None, :, :]
    return (matches * np.asarray(magnitudes)[None]).sum(axis=-1)


def expected_outputs(weights, magnitudes, thresholds, inputs) -> np.ndarray:
    """y[v, n] = [p[v, n] >= T[n]]."""
    counts = match_counts(weights, magnitudes, inputs)
    return (counts >= np.asarray(thresholds)[None]).astype(int)


def random_job(config: dict, rng: np.random.Generator, inputs: np.ndarray, name: str,
               thresholds: bool = True, **extra) -> dict:
    """Random weights, magnitudes and thresholds over 0..sum+1, both ends always present.

    The expected outputs are counts for an ``emit="counts"`` config, which may go
    without ``thresholds``.
    """
    shape = (config["out_features"], config["in_features"])
    weights = rng.integers(0, 2, shape)
    magnitudes = rng.integers(0, config["max_weight"] + 1, shape)
    if config["max_weight"] == 1:
        magnitudes = np.ones(shape, dtype=int)
    sums = magnitudes.sum(axis=1)
    limits = rng.integers(0, sums + 2)
    limits[0], limits[-1] = 0, sums[-1] + 1
    if config.get("emit") == "counts":
        expected = match_counts(weights, magnitudes, inputs)
    else:
        expected = expected_outputs(weights, magnitudes, limits, inputs)
    job = {"name": name, "weights": weights.tolist(), "inputs": inputs.tolist(),
           "expected": expected.tolist(), **extra}
    if thresholds:
        job["thresholds"] = limits.tolist()
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
def test_counts_mode_drops_thresholds_and_keeps_the_timing(sim):
    rng = np.random.default_rng(4)
    jobs = [
        random_job(COUNTS, rng, rng.integers(0, 2, (24, 13)), "with thresholds"),
        random_job(COUNTS, rng, rng.integers(0, 2, (16, 13)), "without", thresholds=False),
        random_job(COUNTS, rng, rng.integers(0, 2, (16, 13)), "full rate", thresholds=False,
                   full_rate=True),
    ]
    # Every neuron of the second layer reaches its largest count, 13 (0b1101).
    jobs[1]["inputs"][:7] = jobs[1]["weights"]
    jobs[1]["expected"] = match_counts(jobs[1]["weights"], np.ones((7, 13)),
                                       jobs[1]["inputs"]).tolist()
    result = run(COUNTS, jobs, sim)
    for job, report in zip(jobs, result["jobs"], strict=True):
        assert report["outputs"] == job["expected"]
        assert report["mismatches"] == 0
    assert result["mismatches"] == 0
    assert [report["loaded"] for report in result["jobs"]] == [
        {"weights": 36, "thresholds": 9}, {"weights": 36, "thresholds": 0},
        {"weights": 36, "thresholds": 0}]
    assert np.diag(result["jobs"][1]["outputs"][:7]).tolist() == [13] * 7
    # Thresholds 0 and S + 1 on the first and last neuron did not pin their outputs.
    first = np.array(result["jobs"][0]["outputs"])
    assert len(set(first[:, 0])) > 1 and len(set(first[:, -1])) > 1
    folded = -(-7 // 3) * -(-13 // 4)
    assert result["jobs"][2]["timing"] == {
        "vectors": 16, "cycles_per_vector": folded, "fastest_vector": folded,
        "latency": folded + 1}


@pytest.mark.parametrize("emit", ["bits", "counts"])
@pytest.mark.parametrize("sim", SIMS)
def test_every_input_of_a_fan_in_of_twelve(sim, emit):
    config = {**EXHAUSTIVE, "emit": emit}
    rng = np.random.default_rng(2)
    inputs = (np.arange(4096)[:, None] >> np.arange(12)[None, :]) & 1
    job = random_job(config, rng, inputs, "all 4096 vectors")
    result = run(config, [job], sim)
    report = result["jobs"][0]
    assert report["outputs"] == job["expected"]
    assert report["compared"] == 4096
    assert report["mismatches"] == 0
    assert report["cycles"] >= 4096 * 3 * 2


@pytest.mark.parametrize("config", [LAYER, COUNTS], ids=["bits", "counts"])
@pytest.mark.parametrize("sim", SIMS)
def test_first_mismatch_names_job_vector_and_neuron(sim, config, tmp_path):
    rng = np.random.default_rng(3)
    job = random_job(config, rng, rng.integers(0, 2, (3, 13)), "random")
    got = job["expected"][1][2]
    wrong = 1 - got if config is LAYER else got + 1
    job["expected"][1][2] = wrong
    job["expected"][2][5] = 1 - job["expected"][2][5]
    with pytest.raises(SimulationFailed) as failure:
        run(config, [job], sim, run_dir=tmp_path)
    message = str(failure.value)
    assert f"job 'random': vector 1, neuron 2: got {got}, expected {wrong}" in message
    kind = "bits" if config is LAYER else "counts"
    assert f"2 mismatching {kind} in 3 output vectors" in message
    results = failure.value.results
    assert results["mismatches"] == 2
    assert results["first_mismatch"].startswith("job 'random': vector 1, neuron 2")
