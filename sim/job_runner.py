"""Running golden-model jobs through a testbench and comparing what came back.

Both regressions (the vector arrays and the binary-layer array) hand a testbench a list
of jobs with their expected outputs; the testbench's scoreboard fails the cocotb test
on a mismatch but still writes every output. This module gets those outputs back either
way and compares them with the golden model, naming the first difference.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from amaranth.lib import wiring

from hilt.sim.runner import SimulationFailed, simulate


class GoldenJob(Protocol):
    """A job: its name, its testbench parameters, and the golden outputs (N, units)."""

    name: str

    def expected(self) -> np.ndarray: ...

    def as_params(self) -> dict: ...


@dataclass(frozen=True, kw_only=True)
class RunReport:
    """What one regression run compared, and how long the simulation took.

    Each regression adds the build parameters of the design it ran.
    """

    sim: str
    jobs: int
    vectors: int
    values: int
    mismatches: int
    first_mismatch: str | None
    cycles: int
    wall_s: float
    waves: str | None = None


@dataclass(frozen=True)
class JobResults:
    """The RTL outputs of each job, checked against the golden model."""

    outputs: list[np.ndarray]
    mismatches: int
    first_mismatch: str | None
    cycles: int
    wall_s: float
    waves: str | None


def compare_outputs(jobs: Sequence[GoldenJob], written: Sequence[Sequence[int]],
                    unit: str) -> tuple[list[np.ndarray], int, str | None]:
    """Each job's simulated outputs against its golden model, by exact equality.

    Returns the outputs (vectors x ``unit`` columns), how many values differ, and the
    first difference named by job, vector index, ``unit`` index and both values.
    """
    outputs, mismatches, first = [], 0, None
    for job, values in zip(jobs, written, strict=True):
        expected = job.expected()
        got = np.array(values, dtype=expected.dtype).reshape(-1, expected.shape[1])
        if got.shape != expected.shape:
            raise RuntimeError(f"job {job.name!r}: RTL returned {got.shape[0]} outputs for "
                               f"{expected.shape[0]} vectors")
        differ = np.argwhere(got != expected)
        mismatches += len(differ)
        if first is None and len(differ):
            vector, column = differ[0]
            first = (f"job {job.name!r} vector {vector} {unit} {column}: RTL "
                     f"{got[vector, column]} != golden {expected[vector, column]}")
        outputs.append(got)
    return outputs, mismatches, first


def run_golden_jobs(component: wiring.Component, testbench: str, jobs: Sequence[GoldenJob],
                    params: dict, *, sim: str, unit: str, waves: bool = False) -> JobResults:
    """Simulate ``jobs`` and compare every output; ``unit`` names an output column.

    A mismatch does not raise: it is counted, and the first is named by job, vector
    index, ``unit`` index and both values. A testbench that fails for any other reason
    (a hang, a protocol error, missing outputs) raises :class:`SimulationFailed`.
    """
    params = {**params, "jobs": [job.as_params() for job in jobs]}
    started = time.perf_counter()
    try:
        results = simulate(component, testbench, sim=sim, params=params, waves=waves)
    except SimulationFailed as failure:
        if not failure.results or len(failure.results.get("jobs", ())) != len(jobs):
            raise
        results = failure.results
    wall = time.perf_counter() - started
    outputs, mismatches, first = compare_outputs(
        jobs, [written["outputs"] for written in results["jobs"]], unit)
    return JobResults(outputs=outputs, mismatches=mismatches, first_mismatch=first,
                      cycles=sum(job["cycles"] for job in results["jobs"]), wall_s=wall,
                      waves=results.get("harness", {}).get("waves"))
