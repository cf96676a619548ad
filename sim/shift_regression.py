"""The bit-exact regression of the vector arrays against the integer golden model.

It builds jobs (a weight tile and the input vectors to stream through it): every
corner the number format has, random codes, and the exported codes of a real trained
layer; computes each expected output with :func:`hilt.quant.shift_golden.shift_matmul`;
runs them through the RTL under a cocotb simulator with random valid gaps and
back-pressure; and reports how many values were compared and how many differed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from hilt.hdl.mul_array import MultiplierVectorArray
from hilt.hdl.shift_array import ShiftVectorArray
from hilt.hdl.vector_array import VectorArray, check_array_params
from hilt.quant.pow2_export import PowerOfTwoWeights
from hilt.quant.pow2_format import PowerOfTwoFormat
from hilt.quant.shift_golden import shift_matmul
from hilt.sim.job_runner import RunReport, run_golden_jobs

logger = logging.getLogger(__name__)

TESTBENCH = "hilt.sim.testbenches.vector_array"
ARRAYS: dict[str, type[VectorArray]] = {
    "shift": ShiftVectorArray,
    "multiplier": MultiplierVectorArray,
}


@dataclass(frozen=True)
class ArrayConfig:
    """Which array to simulate and its build parameters."""

    kind: str = "shift"
    lanes: int = 8
    pes: int = 8
    act_width: int = 8
    exp_bits: int = 3
    depth: int = 64

    def __post_init__(self) -> None:
        if self.kind not in ARRAYS:
            raise ValueError(f"kind must be one of {', '.join(ARRAYS)}, got {self.kind!r}")
        check_array_params(**self._array_params())

    def _array_params(self) -> dict:
        return {key: value for key, value in asdict(self).items() if key != "kind"}

    @property
    def fmt(self) -> PowerOfTwoFormat:
        return PowerOfTwoFormat(self.exp_bits)

    def build(self) -> VectorArray:
        """The Amaranth component; validates every parameter."""
        return ARRAYS[self.kind](**self._array_params())


@dataclass(frozen=True)
class Job:
    """One weight tile (``pes`` x ``depth`` codes) and the vectors streamed through it."""

    name: str
    weights: PowerOfTwoWeights
    activations: np.ndarray

    def expected(self) -> np.ndarray:
        return shift_matmul(self.weights, self.activations)

    def as_params(self) -> dict:
        return {
            "name": self.name,
            "sign": self.weights.sign.tolist(),
            "exp": self.weights.exp.tolist(),
            "activations": self.activations.tolist(),
            "expected": self.expected().tolist(),
        }


@dataclass(frozen=True, kw_only=True)
class RegressionReport(RunReport):
    """What one regression run of a vector array compared, and how long it took."""

    config: ArrayConfig


def _activation_range(config: ArrayConfig) -> tuple[int, int]:
    return -(1 << (config.act_width - 1)), (1 << (config.act_width - 1)) - 1


def random_codes(fmt: PowerOfTwoFormat, shape: tuple[int, ...],
                 rng: np.random.Generator) -> PowerOfTwoWeights:
    """Uniformly random signs and exponent codes, the zero code included."""
    return PowerOfTwoWeights.from_codes(fmt, rng.integers(0, 2, shape),
                                        rng.integers(0, fmt.zero_code + 1, shape))


CORNER_EVERY = 4
"""In a stream, one input vector in this many is a corner of the activation range."""
PER_JOB = 1024
"""Input vectors a weight tile of a stream carries before the next tile is loaded."""


def _extreme_vectors(config: ArrayConfig, rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` vectors at the edges of the activation range, cycling through all lowest,
    all highest, and a mix of lowest, lowest + 1, -1, 0, 1 and highest."""
    low, high = _activation_range(config)
    patterns = [np.full(config.depth, low), np.full(config.depth, high)]
    rows = [patterns[index % 3] if index % 3 < 2 else
            rng.choice([low, low + 1, -1, 0, 1, high], size=config.depth)
            for index in range(count)]
    return np.array(rows, dtype=np.int64).reshape(count, config.depth)


def corner_tiles(config: ArrayConfig,
                 rng: np.random.Generator) -> list[tuple[str, PowerOfTwoWeights]]:
    """Weight tiles at every edge of the format: all zero, the largest magnitude of each
    sign, the smallest with random signs, and random codes."""
    fmt = config.fmt
    shape = (config.pes, config.depth)
    negative, positive = np.ones(shape), np.zeros(shape)
    codes = PowerOfTwoWeights.from_codes
    return [
        ("all-zero weights", codes(fmt, positive, np.full(shape, fmt.zero_code))),
        ("largest weights, negative", codes(fmt, negative, np.zeros(shape))),
        ("largest weights, positive", codes(fmt, positive, np.zeros(shape))),
        ("smallest weights, random signs",
         codes(fmt, rng.integers(0, 2, shape), np.full(shape, fmt.max_exp))),
        ("random codes", random_codes(fmt, shape, rng)),
    ]


def corner_jobs(config: ArrayConfig, rng: np.random.Generator, vectors: int = 8) -> list[Job]:
    """Jobs at every edge of the format: :func:`corner_tiles`, each streaming ``vectors``
    all-lowest, ``vectors`` all-highest and ``vectors`` mixed extreme activations."""
    low, high = _activation_range(config)
    most_negative = np.full((vectors, config.depth), low, dtype=np.int64)
    most_positive = np.full((vectors, config.depth), high, dtype=np.int64)
    extremes = rng.choice([low, low + 1, -1, 0, 1, high], size=(vectors, config.depth))
    everything = np.concatenate([most_negative, most_positive, extremes])
    return [Job(name, weights, everything) for name, weights in corner_tiles(config, rng)]


def stream_jobs(config: ArrayConfig, rng: np.random.Generator, vectors: int,
                per_job: int = PER_JOB) -> list[Job]:
    """``vectors`` input vectors in all, as one stream of corners and random values.

    The weight tiles begin with every :func:`corner_tiles` tile and go on with random
    codes, a new tile every ``per_job`` vectors (fewer when ``vectors`` is small, so
    that every corner tile is reached); within each tile one vector in
    :data:`CORNER_EVERY` is an extreme of the activation range, the rest are uniform.
    """
    corners = corner_tiles(config, rng)
    per_job = max(1, min(per_job, -(-vectors // len(corners))))
    low, high = _activation_range(config)
    jobs = []
    for start in range(0, vectors, per_job):
        count = min(per_job, vectors - start)
        index = len(jobs)
        name, weights = (corners[index] if index < len(corners) else
                         (f"random codes {index}", random_codes(config.fmt, (config.pes,
                                                                               config.depth),
                                                                  rng)))
        activations = rng.integers(low, high + 1, size=(count, config.depth))
        extreme = np.arange(count) % CORNER_EVERY == 0
        activations[extreme] = _extreme_vectors(config, rng, int(extreme.sum()))
        jobs.append(Job(name, weights, activations))
    return jobs


def random_jobs(config: ArrayConfig, rng: np.random.Generator, jobs: int = 2,
                vectors: int = 32) -> list[Job]:
    """Jobs of uniformly random codes (zero included) and activations over the full range."""
    shape = (config.pes, config.depth)
    low, high = _activation_range(config)
    return [
        Job(f"random {index}", random_codes(config.fmt, shape, rng),
            rng.integers(low, high + 1, size=(vectors, config.depth)))
        for index in range(jobs)
    ]


def layer_jobs(config: ArrayConfig, name: str, weights: PowerOfTwoWeights,
               activations: np.ndarray) -> list[Job]:
    """A whole layer (out x in) as jobs of ``pes`` rows each; the last tile is zero-padded."""
    matrix = weights.matrix()
    outputs, inputs = matrix.shape
    if matrix.fmt != config.fmt:
        raise ValueError(f"layer {name!r} has exp_bits={matrix.fmt.exp_bits}, the array "
                         f"{config.exp_bits}")
    if inputs != config.depth:
        raise ValueError(f"layer {name!r} has {inputs} inputs; the array's depth is "
                         f"{config.depth}: build the array with depth={inputs}")
    low, high = _activation_range(config)
    activations = np.asarray(activations, dtype=np.int64)
    if activations.size and (activations.min() < low or activations.max() > high):
        raise ValueError(
            f"layer {name!r} activations span {activations.min()}..{activations.max()}, "
            f"outside the {config.act_width}-bit signed range {low}..{high}: raise act_width")
    jobs = []
    for start in range(0, outputs, config.pes):
        rows = slice(start, start + config.pes)
        pad = config.pes - len(range(outputs)[rows])
        sign = np.pad(matrix.sign[rows], ((0, pad), (0, 0)))
        exp = np.pad(matrix.exp[rows], ((0, pad), (0, 0)), constant_values=config.fmt.zero_code)
        jobs.append(Job(f"{name} rows {start}..{start + config.pes - pad - 1}",
                        PowerOfTwoWeights.from_codes(config.fmt, sign, exp), activations))
    return jobs


def run_jobs(config: ArrayConfig, jobs: Sequence[Job], *, sim: str, seed: int = 0,
             valid_prob: float = 0.7, ready_prob: float = 0.7,
             waves: bool = False) -> tuple[RegressionReport, list[np.ndarray]]:
    """Stream ``jobs`` through the RTL and compare with the golden model.

    ``sim`` is a cocotb simulator (``icarus``, ``verilator``) or ``amaranth``, Amaranth's
    own simulator driving the same protocol (:mod:`hilt.sim.amaranth_regression`).
    Returns the report and, per job, the RTL outputs (N x pes). A mismatch does not
    raise here: the report counts it and names the first one. A testbench that fails
    for any other reason (a hang, a protocol error) raises :class:`SimulationFailed`.
    """
    if sim == "amaranth":
        from hilt.sim.amaranth_regression import run_jobs_amaranth

        return run_jobs_amaranth(config, jobs, seed=seed, valid_prob=valid_prob,
                                 ready_prob=ready_prob, waves=waves)
    array = config.build()
    params = {
        "component": asdict(config),
        "seed": seed,
        "valid_prob": valid_prob,
        "ready_prob": ready_prob,
    }
    run = run_golden_jobs(array, TESTBENCH, jobs, params, sim=sim, unit="PE", waves=waves)
    report = RegressionReport(
        sim=sim, config=config, jobs=len(jobs),
        vectors=sum(len(job.activations) for job in jobs),
        values=sum(job.activations.shape[0] * config.pes for job in jobs),
        mismatches=run.mismatches, first_mismatch=run.first_mismatch,
        cycles=run.cycles, wall_s=run.wall_s, waves=run.waves,
    )
    logger.info("regression: %s %s: %d values, %d mismatches, %.1f s", sim, config.kind,
                report.values, report.mismatches, run.wall_s)
    return report, run.outputs
