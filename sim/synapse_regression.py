"""The bit-exact regression of the synapse crossbar against the integer golden model.

A job is a sequence of operations on a freshly reset crossbar: row programs, pulse
updates (both rules, some longer than ``max_pulses`` to provoke the overrun flag),
reads and row readbacks, ending with a readback of every row so that every cell's
state is compared. :class:`CrossbarJob` replays the operations on
:class:`~hilt.quant.synapse_golden.SynapseCrossbarModel` for the expected outputs; the
testbench runs them on the RTL under random gaps and back-pressure; this module counts
and names mismatches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hilt.hdl.synapse_crossbar import SynapseCrossbar
from hilt.quant.synapse_golden import StepTables, SynapseCrossbarModel
from hilt.sim.job_runner import RunReport
from hilt.sim.runner import SimulationFailed, simulate

logger = logging.getLogger(__name__)

TESTBENCH = "hilt.sim.testbenches.synapse_crossbar"


@dataclass(frozen=True)
class CrossbarConfig:
    """The build parameters of one crossbar, shared by the RTL and the golden model."""

    rows: int
    cols: int
    tables: StepTables
    in_bits: int
    max_pulses: int
    noise_bits: int = 0
    lfsr_bits: int = 16
    seed: int = 0

    def model(self) -> SynapseCrossbarModel:
        """A golden model in the state the RTL has after reset."""
        return SynapseCrossbarModel(self.rows, self.cols, self.tables, in_bits=self.in_bits,
                                    max_pulses=self.max_pulses, noise_bits=self.noise_bits,
                                    lfsr_bits=self.lfsr_bits, seed=self.seed)

    def build(self) -> SynapseCrossbar:
        """The Amaranth crossbar."""
        return SynapseCrossbar(self.rows, self.cols, self.tables, in_bits=self.in_bits,
                               max_pulses=self.max_pulses, noise_bits=self.noise_bits,
                               lfsr_bits=self.lfsr_bits, seed=self.seed)

    def as_params(self) -> dict:
        """The parameters as JSON for the testbench, which rebuilds the component from them."""
        return {"rows": self.rows, "cols": self.cols, "state_bits": self.tables.state_bits,
                "up": list(self.tables.up), "down": list(self.tables.down),
                "in_bits": self.in_bits, "max_pulses": self.max_pulses,
                "noise_bits": self.noise_bits, "lfsr_bits": self.lfsr_bits, "seed": self.seed}


@dataclass(frozen=True)
class Expected:
    """What the golden model says a job returns."""

    reads: np.ndarray
    readbacks: np.ndarray
    overrun: bool


@dataclass(frozen=True)
class CrossbarJob:
    """A named sequence of operations, each a JSON-ready dict with an ``"op"`` key.

    ``{"op": "program", "row", "plus", "minus"}``, ``{"op": "update", "rows", "cols",
    "unidirectional"}`` (trains of -1/0/+1 per slot), ``{"op": "read", "x"}`` and
    ``{"op": "readback", "row"}``.
    """

    name: str
    ops: tuple[dict, ...]

    def expected(self, config: CrossbarConfig) -> Expected:
        """Replay the operations on the golden model.

        An update longer than ``max_pulses`` applies its first ``max_pulses`` slots and
        sets the overrun flag, which is what the RTL does with it.
        """
        model = config.model()
        reads, readbacks, overrun = [], [], False
        for op in self.ops:
            kind = op["op"]
            if kind == "program":
                model.program_row(op["row"], op["plus"], op["minus"])
            elif kind == "update":
                slots = config.max_pulses
                overrun |= len(op["rows"]) > slots
                model.update(np.asarray(op["rows"])[:slots], np.asarray(op["cols"])[:slots],
                             unidirectional=op["unidirectional"])
            elif kind == "read":
                reads.append(model.read(op["x"]))
            elif kind == "readback":
                readbacks.append(np.concatenate(model.row_state(op["row"])))
            else:
                raise ValueError(f"job {self.name!r}: unknown operation {kind!r}")
        return Expected(np.array(reads, dtype=np.int64).reshape(-1, config.rows),
                        np.array(readbacks, dtype=np.int64).reshape(-1, 2 * config.cols),
                        overrun)

    def as_params(self, config: CrossbarConfig) -> dict:
        expected = self.expected(config)
        return {"name": self.name, "ops": list(self.ops),
                "expected": {"reads": expected.reads.tolist(),
                             "readbacks": expected.readbacks.tolist(),
                             "overrun": expected.overrun}}


def _trains(rng: np.random.Generator, slots: int, width: int, fire: float) -> list[list[int]]:
    firing = rng.random((slots, width)) < fire
    signs = np.where(rng.random((slots, width)) < 0.5, -1, 1)
    return (firing * signs).tolist()


def random_job(config: CrossbarConfig, rng: np.random.Generator, name: str,
               ops: int = 40) -> CrossbarJob:
    """Random programs, updates (both rules), reads and readbacks, then every row read back.

    Every row is programmed first, so reads start from non-trivial weights; some reads
    use the extreme inputs; one update in about twenty overruns ``max_pulses``.
    """
    levels = config.tables.levels
    low, high = -(1 << (config.in_bits - 1)), (1 << (config.in_bits - 1)) - 1

    def program(row: int) -> dict:
        return {"op": "program", "row": row, "plus": rng.integers(0, levels, config.cols).tolist(),
                "minus": rng.integers(0, levels, config.cols).tolist()}

    sequence = [program(row) for row in range(config.rows)]
    for _ in range(ops):
        pick = rng.random()
        if pick < 0.45:
            slots = int(rng.integers(1, config.max_pulses + 1))
            if rng.random() < 0.05:
                slots = config.max_pulses + int(rng.integers(1, 4))
            fire = float(rng.choice([0.3, 0.7, 1.0]))
            sequence.append({"op": "update", "rows": _trains(rng, slots, config.rows, fire),
                             "cols": _trains(rng, slots, config.cols, fire),
                             "unidirectional": bool(rng.random() < 0.5)})
        elif pick < 0.75:
            x = rng.integers(low, high + 1, config.cols)
            if rng.random() < 0.2:
                x = rng.choice([low, high], config.cols)
            sequence.append({"op": "read", "x": x.tolist()})
        elif pick < 0.9:
            sequence.append({"op": "readback", "row": int(rng.integers(0, config.rows))})
        else:
            sequence.append(program(int(rng.integers(0, config.rows))))
    sequence += [{"op": "readback", "row": row} for row in range(config.rows)]
    return CrossbarJob(name, tuple(sequence))


def saturation_job(config: CrossbarConfig) -> CrossbarJob:
    """Every pair driven to both bounds by full-rate updates of both rules, with reads between.

    Corners: all rows and columns fire for whole updates, up then down, so every cell
    meets its saturation, and the extreme inputs read the extreme sums.
    """
    slots = config.max_pulses
    low, high = -(1 << (config.in_bits - 1)), (1 << (config.in_bits - 1)) - 1
    updates = max(1, -(-config.tables.levels // slots))
    ops: list[dict] = []
    for unidirectional, sign in ((True, 1), (True, -1), (False, 1), (False, -1)):
        for _ in range(updates):
            ops.append({"op": "update", "rows": [[sign] * config.rows] * slots,
                        "cols": [[1] * config.cols] * slots, "unidirectional": unidirectional})
        ops += [{"op": "read", "x": [low] * config.cols}, {"op": "read", "x": [high] * config.cols}]
        ops += [{"op": "readback", "row": row} for row in range(config.rows)]
    return CrossbarJob("saturation", tuple(ops))


PER_JOB = 1024
"""Reads and readbacks a random job of a stream holds, about, before the crossbar is
reset for the next."""
_VECTORS_PER_OP = 0.45
"""Reads and readbacks per operation of :func:`random_job`, on average."""


def _vectors(job: CrossbarJob) -> int:
    return sum(op["op"] in ("read", "readback") for op in job.ops)


def stream_jobs(config: CrossbarConfig, rng: np.random.Generator, vectors: int,
                per_job: int = PER_JOB) -> list[CrossbarJob]:
    """Jobs whose reads and readbacks add up to at least ``vectors``: the corners of
    :func:`saturation_job` first, then :func:`random_job` jobs of about ``per_job`` each
    (extreme inputs and overrunning updates among them)."""
    jobs = [saturation_job(config)]
    total = _vectors(jobs[0])
    while total < vectors:
        wanted = min(per_job, vectors - total)
        jobs.append(random_job(config, rng, f"random {len(jobs) - 1}",
                               max(1, round(wanted / _VECTORS_PER_OP))))
        total += _vectors(jobs[-1])
    return jobs


@dataclass(frozen=True, kw_only=True)
class CrossbarReport(RunReport):
    """What one run compared: ``vectors`` reads and readbacks, ``values`` numbers in them.

    ``cells`` counts the cell states compared (two per pair per readback).
    """

    config: CrossbarConfig
    cells: int


def _first_difference(job: str, what: str, got: np.ndarray, wanted: np.ndarray,
                      column: str) -> tuple[int, str | None]:
    if got.shape != wanted.shape:
        raise RuntimeError(f"job {job!r}: RTL returned {got.shape[0]} {what}s for "
                           f"{wanted.shape[0]} expected")
    differ = np.argwhere(got != wanted)
    if not len(differ):
        return 0, None
    index, element = differ[0]
    return len(differ), (f"job {job!r} {what} {index} {column} {element}: RTL "
                         f"{got[index, element]} != golden {wanted[index, element]}")


def run_crossbar_jobs(config: CrossbarConfig, jobs: Sequence[CrossbarJob], *, sim: str,
                      seed: int = 0, valid_prob: float = 0.7, ready_prob: float = 0.7,
                      waves: bool = False) -> CrossbarReport:
    """Run ``jobs`` on the RTL and compare every read, readback and overrun flag.

    A mismatch does not raise: the report counts it and names the first one (job, read
    or readback index, output row or state column, both values). A testbench that fails
    for any other reason raises :class:`SimulationFailed`.
    """
    params = {"component": config.as_params(), "seed": seed, "valid_prob": valid_prob,
              "ready_prob": ready_prob, "jobs": [job.as_params(config) for job in jobs]}
    started = time.perf_counter()
    try:
        results = simulate(config.build(), TESTBENCH, sim=sim, params=params, waves=waves)
    except SimulationFailed as failure:
        if not failure.results or len(failure.results.get("jobs", ())) != len(jobs):
            raise
        results = failure.results
    wall = time.perf_counter() - started
    mismatches, first, vectors, values, cells = 0, None, 0, 0, 0
    for job, written in zip(jobs, results["jobs"], strict=True):
        expected = job.expected(config)
        reads = np.array(written["reads"], dtype=np.int64).reshape(-1, config.rows)
        readbacks = np.array(written["readbacks"], dtype=np.int64).reshape(-1, 2 * config.cols)
        checks = [_first_difference(job.name, "read", reads, expected.reads, "row"),
                  _first_difference(job.name, "readback", readbacks, expected.readbacks,
                                    "state column")]
        if bool(written["overrun"]) != expected.overrun:
            checks.append((1, f"job {job.name!r}: RTL overrun {bool(written['overrun'])} != "
                              f"golden {expected.overrun}"))
        for count, message in checks:
            mismatches += count
            first = first or message
        vectors += len(reads) + len(readbacks)
        values += reads.size + readbacks.size + 1
        cells += readbacks.size
    report = CrossbarReport(sim=sim, config=config, jobs=len(jobs), vectors=vectors,
                            values=values, cells=cells, mismatches=mismatches,
                            first_mismatch=first,
                            cycles=sum(job["cycles"] for job in results["jobs"]), wall_s=wall,
                            waves=results.get("harness", {}).get("waves"))
    logger.info("crossbar regression: %s: %d values, %d mismatches, %.1f s", sim, values,
                mismatches, wall)
    return report
