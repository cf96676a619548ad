"""The bit-exact regression of the folded binary-layer array against the integer golden model.

Jobs are a layer (weight bits, count thresholds, optional magnitudes) and the input
vectors to stream through it: random layers whose thresholds include the extremes 0
and S + 1, and the exported layers of a trained binarized network. A job without
thresholds (a network's last layer, whose logits are 2p - S) runs on an array built with
``emit="counts"`` and expects the counts p of
:func:`hilt.quant.binary_golden.popcount_matches`; a job with thresholds expects the bits
of :func:`hilt.quant.binary_golden.threshold_layer`. The testbench compares every value
under random valid gaps and back-pressure, and this module counts and names mismatches.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from hilt.hdl.threshold_array import BinaryLayerArray, LayerFolding
from hilt.quant.binary_export import BinaryLayerSpec
from hilt.quant.binary_golden import magnitude_sums, popcount_matches, threshold_layer
from hilt.sim.job_runner import RunReport, run_golden_jobs

logger = logging.getLogger(__name__)

TESTBENCH = "hilt.sim.testbenches.binary_layer"


@dataclass(frozen=True)
class LayerJob:
    """One layer's parameters and the input bit vectors streamed through it.

    ``thresholds`` None makes it a counts job, for an array with ``emit="counts"``.
    """

    name: str
    weights: np.ndarray
    thresholds: np.ndarray | None
    inputs: np.ndarray
    magnitudes: np.ndarray | None = None

    @property
    def emit(self) -> str:
        """What the array must emit for this job: ``"bits"``, or ``"counts"``."""
        return "counts" if self.thresholds is None else "bits"

    def expected(self) -> np.ndarray:
        """The golden outputs: uint8 bits, or int64 counts p for a counts job."""
        if self.thresholds is None:
            return popcount_matches(self.inputs, self.weights, self.magnitudes)
        return threshold_layer(self.inputs, self.weights, self.thresholds, self.magnitudes,
                               name=f"{self.name} thresholds")

    def as_params(self) -> dict:
        params = {
            "name": self.name,
            "weights": np.asarray(self.weights).tolist(),
            "inputs": np.asarray(self.inputs).tolist(),
            "expected": self.expected().tolist(),
        }
        if self.thresholds is not None:
            params["thresholds"] = np.asarray(self.thresholds).tolist()
        if self.magnitudes is not None:
            params["magnitudes"] = np.asarray(self.magnitudes).tolist()
        return params


@dataclass(frozen=True, kw_only=True)
class BinaryRegressionReport(RunReport):
    """What one run compared, and how long the simulation took.

    ``values`` is the number of output values compared: bits, or counts when the
    folding emits counts.
    """

    folding: LayerFolding


def spec_job(spec: BinaryLayerSpec, inputs: np.ndarray) -> LayerJob:
    """A layer of an exported network as a job.

    A hidden layer is a bits job; the last layer, which has no thresholds, a counts job,
    from whose counts p the host forms the integer logits 2p - ``spec.sums``.
    """
    return LayerJob(spec.name, spec.weight_bits, spec.thresholds, np.asarray(inputs),
                    spec.magnitudes)


def random_layer_jobs(folding: LayerFolding, rng: np.random.Generator, jobs: int = 2,
                      vectors: int = 32) -> list[LayerJob]:
    """Random layers whose thresholds cover 0 (always fires) to S + 1 (never fires).

    For a folding that emits counts, random layers without thresholds, whose inputs
    begin with the first neuron's weights and their complement, so that its count
    reaches both S and 0.
    """
    shape = (folding.out_features, folding.in_features)
    result = []
    for index in range(jobs):
        weights = rng.integers(0, 2, shape)
        magnitudes = (rng.integers(0, folding.max_weight + 1, shape)
                      if folding.max_weight > 1 else None)
        inputs = rng.integers(0, 2, (vectors, folding.in_features))
        if folding.thresholded:
            sums = magnitude_sums(weights, magnitudes)
            thresholds = rng.integers(0, sums + 2)
            thresholds[0], thresholds[-1] = 0, sums[-1] + 1
        else:
            thresholds = None
            inputs[:2] = np.stack([weights[0], 1 - weights[0]])[:vectors]
        result.append(LayerJob(f"random {index}", weights, thresholds, inputs, magnitudes))
    return result


CORNER_EVERY = 4
"""In a stream, one input vector in this many is a corner: all zeros, all ones, the first
neuron's weights or their complement (its largest and smallest count)."""
PER_JOB = 1024
"""Input vectors a layer of a stream carries before the next random layer is loaded."""


def stream_layer_jobs(folding: LayerFolding, rng: np.random.Generator, vectors: int,
                      per_job: int = PER_JOB) -> list[LayerJob]:
    """``vectors`` input vectors in all, as one stream of corners and random bits.

    A new random layer every ``per_job`` vectors, as :func:`random_layer_jobs` draws
    them (thresholds from 0, always firing, to S + 1, never firing; or no thresholds
    for a folding that emits counts); within each layer one vector in
    :data:`CORNER_EVERY` is a corner, cycling through all zeros, all ones, the first
    neuron's weights and their complement, the rest uniform.
    """
    jobs = []
    for start in range(0, vectors, per_job):
        count = min(per_job, vectors - start)
        (job,) = random_layer_jobs(folding, rng, jobs=1, vectors=count)
        weights = np.asarray(job.weights)
        patterns = [np.zeros(folding.in_features, dtype=np.int64),
                    np.ones(folding.in_features, dtype=np.int64), weights[0], 1 - weights[0]]
        inputs = np.array(job.inputs)
        for position, row in enumerate(range(0, count, CORNER_EVERY)):
            inputs[row] = patterns[position % len(patterns)]
        jobs.append(LayerJob(f"layer {len(jobs)}", job.weights, job.thresholds, inputs,
                             job.magnitudes))
    return jobs


def run_layer_jobs(folding: LayerFolding, jobs: Sequence[LayerJob], *, sim: str,
                   seed: int = 0, valid_prob: float = 0.7,
                   ready_prob: float = 0.7) -> tuple[BinaryRegressionReport, list[np.ndarray]]:
    """Stream ``jobs`` through the RTL and compare every output value with the golden model.

    Returns the report and, per job, the RTL's outputs: uint8 bits (vectors, out), or
    int64 counts when ``folding.emit`` is ``"counts"``.

    A mismatch does not raise: the report counts it and names the first one. A testbench
    that fails for another reason raises :class:`SimulationFailed`.

    Raises
    ------
    ValueError
        For a job that the array cannot run as built: a counts job (no thresholds) on
        an array that emits bits, or a job with thresholds on one that emits counts.
    """
    for job in jobs:
        if job.emit != folding.emit:
            raise ValueError(f"job {job.name!r} expects {job.emit} ("
                             f"{'no thresholds' if job.thresholds is None else 'thresholds'})"
                             f" but the folding emits {folding.emit}; build it with "
                             f"emit={job.emit!r}")
    component = asdict(folding)
    array = BinaryLayerArray(**component)
    params = {"component": component, "seed": seed, "valid_prob": valid_prob,
              "ready_prob": ready_prob}
    run = run_golden_jobs(array, TESTBENCH, jobs, params, sim=sim, unit="neuron")
    vectors = sum(len(job.inputs) for job in jobs)
    report = BinaryRegressionReport(
        sim=sim, folding=folding, jobs=len(jobs), vectors=vectors,
        values=vectors * folding.out_features, mismatches=run.mismatches,
        first_mismatch=run.first_mismatch, cycles=run.cycles, wall_s=run.wall_s)
    logger.info("binary regression: %s: %d %s, %d mismatches, %.1f s", sim, report.values,
                folding.emit, report.mismatches, run.wall_s)
    return report, run.outputs
