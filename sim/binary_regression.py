"""The bit-exact regression of the folded binary-layer array against the integer golden model.

Jobs are a layer (weight bits, count thresholds, optional magnitudes) and the input
vectors to stream through it: random layers whose thresholds include the extremes 0
and S + 1, and the exported layers of a trained binarized network. Each expected output
is :func:`hilt.quant.binary_golden.threshold_layer`; the testbench compares every bit
under random valid gaps and back-pressure, and this module counts and names mismatches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from hilt.hdl.threshold_array import BinaryLayerArray, LayerFolding
from hilt.quant.binary_export import BinaryLayerSpec
from hilt.quant.binary_golden import magnitude_sums, threshold_layer
from hilt.sim.runner import SimulationFailed, simulate

logger = logging.getLogger(__name__)

TESTBENCH = "hilt.sim.testbenches.binary_layer"


@dataclass(frozen=True)
class LayerJob:
    """One layer's parameters and the input bit vectors streamed through it."""

    name: str
    weights: np.ndarray
    thresholds: np.ndarray
    inputs: np.ndarray
    magnitudes: np.ndarray | None = None

    def expected(self) -> np.ndarray:
        return threshold_layer(self.inputs, self.weights, self.thresholds, self.magnitudes,
                               name=f"{self.name} thresholds")

    def as_params(self) -> dict:
        params = {
            "name": self.name,
            "weights": np.asarray(self.weights).tolist(),
            "thresholds": np.asarray(self.thresholds).tolist(),
            "inputs": np.asarray(self.inputs).tolist(),
            "expected": self.expected().tolist(),
        }
        if self.magnitudes is not None:
            params["magnitudes"] = np.asarray(self.magnitudes).tolist()
        return params


@dataclass(frozen=True)
class BinaryRegressionReport:
    """What one run compared, and how long the simulation took."""

    sim: str
    folding: LayerFolding
    jobs: int
    vectors: int
    bits: int
    mismatches: int
    first_mismatch: str | None
    cycles: int
    wall_s: float


def spec_job(spec: BinaryLayerSpec, inputs: np.ndarray) -> LayerJob:
    """A hidden layer of an exported network as a job; the last layer has no thresholds."""
    if spec.thresholds is None:
        raise ValueError(f"{spec.name} has no thresholds (it is a logits layer); the binary "
                         "layer array runs thresholded layers only")
    return LayerJob(spec.name, spec.weight_bits, spec.thresholds, np.asarray(inputs),
                    spec.magnitudes)


def random_layer_jobs(folding: LayerFolding, rng: np.random.Generator, jobs: int = 2,
                      vectors: int = 32) -> list[LayerJob]:
    """Random layers whose thresholds cover 0 (always fires) to S + 1 (never fires)."""
    shape = (folding.out_features, folding.in_features)
    result = []
    for index in range(jobs):
        weights = rng.integers(0, 2, shape)
        magnitudes = (rng.integers(0, folding.max_weight + 1, shape)
                      if folding.max_weight > 1 else None)
        sums = magnitude_sums(weights, magnitudes)
        thresholds = rng.integers(0, sums + 2)
        thresholds[0], thresholds[-1] = 0, sums[-1] + 1
        inputs = rng.integers(0, 2, (vectors, folding.in_features))
        result.append(LayerJob(f"random {index}", weights, thresholds, inputs, magnitudes))
    return result


def run_layer_jobs(folding: LayerFolding, jobs: Sequence[LayerJob], *, sim: str,
                   seed: int = 0, valid_prob: float = 0.7,
                   ready_prob: float = 0.7) -> tuple[BinaryRegressionReport, list[np.ndarray]]:
    """Stream ``jobs`` through the RTL and compare every output bit with the golden model.

    A mismatch does not raise: the report counts it and names the first one. A testbench
    that fails for another reason raises :class:`SimulationFailed`.
    """
    component = asdict(folding)
    array = BinaryLayerArray(**component)
    params = {"component": component, "seed": seed, "valid_prob": valid_prob,
              "ready_prob": ready_prob, "jobs": [job.as_params() for job in jobs]}
    started = time.perf_counter()
    try:
        results = simulate(array, TESTBENCH, sim=sim, params=params)
    except SimulationFailed as failure:
        # The scoreboard fails the test on a mismatch after writing every output.
        if not failure.results or len(failure.results.get("jobs", ())) != len(jobs):
            raise
        results = failure.results
    wall = time.perf_counter() - started
    outputs = [np.array(job["outputs"], dtype=np.uint8).reshape(-1, folding.out_features)
               for job in results["jobs"]]
    mismatches, first = 0, None
    for job, got in zip(jobs, outputs, strict=True):
        expected = job.expected()
        if got.shape != expected.shape:
            raise RuntimeError(f"job {job.name!r}: RTL returned {got.shape[0]} outputs for "
                               f"{expected.shape[0]} vectors")
        differ = np.argwhere(got != expected)
        mismatches += len(differ)
        if first is None and len(differ):
            vector, neuron = differ[0]
            first = (f"job {job.name!r} vector {vector} neuron {neuron}: RTL "
                     f"{got[vector, neuron]} != golden {expected[vector, neuron]}")
    vectors = sum(len(job.inputs) for job in jobs)
    report = BinaryRegressionReport(
        sim=sim, folding=folding, jobs=len(jobs), vectors=vectors,
        bits=vectors * folding.out_features, mismatches=mismatches, first_mismatch=first,
        cycles=sum(job["cycles"] for job in results["jobs"]), wall_s=wall)
    logger.info("binary regression: %s: %d bits, %d mismatches, %.1f s", sim, report.bits,
                report.mismatches, wall)
    return report, outputs
