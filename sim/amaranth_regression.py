"""The vector-array regression under Amaranth's own Python simulator, without Verilog.

:func:`run_jobs_amaranth` takes the same jobs as :func:`hilt.sim.shift_regression.run_jobs`
and returns the same report and outputs, so a regression can be checked, and timed,
under ``amaranth.sim`` beside Icarus and Verilator. It needs neither a Verilog
simulator nor a build: the component is elaborated and simulated in-process.

The stimulus is the cocotb testbench's (:mod:`hilt.sim.testbenches.vector_array`), cycle
for cycle: the same payloads (its own packing functions, junk lanes included), the same
random valid gaps and back-pressure drawn from identically seeded generators, the same
hang budget and the same check that a stalled result beat is never withdrawn. With
the same seed a regression therefore takes the same number of cycles here as under
Icarus and Verilator.
"""

from __future__ import annotations

import logging
import random
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from amaranth.hdl import Value
from amaranth.lib import data
from amaranth.sim import Simulator, SimulatorContext

from hilt.hdl.vector_array import VectorArray
from hilt.sim.errors import SimulationFailed
from hilt.sim.job_runner import compare_outputs
from hilt.sim.shift_regression import ArrayConfig, Job, RegressionReport
from hilt.sim.testbenches.vector_array import (
    CLOCK_NS,
    Progress,
    activation_beats,
    check_job,
    job_budget,
    weight_beats,
)

logger = logging.getLogger(__name__)

Testbench = Callable[[SimulatorContext], Coroutine[Any, Any, None]]

SIM = "amaranth"
"""The name this simulator goes by in reports, the CLI and the benchmark."""


@dataclass
class _Run:
    """What the two testbenches share: each job's outputs and counters, and how far they are."""

    outputs: list[list[list[int]]] = field(default_factory=list)
    cycles: int = 0
    finished: int = 0
    progress: Progress = field(default_factory=Progress)


def _failure(message: str, run_dir: Path | None) -> SimulationFailed:
    return SimulationFailed(f"vector array under {SIM} failed:\n{message}", failures=[message],
                            results=None, run_dir=run_dir)


def _testbenches(array: VectorArray, jobs: list[dict], run: _Run, *, seed: int,
                 valid_prob: float, ready_prob: float,
                 run_dir: Path | None) -> tuple[Testbench, Testbench]:
    """The results monitor and the stream driver, as Amaranth async testbenches.

    They mirror :func:`~hilt.sim.testbenches.streams.monitor` and
    :func:`~hilt.sim.testbenches.streams.drive`: a value set after a clock edge holds
    until the next one, and what cocotb reads in its ``ReadOnly`` phase is sampled here
    at the next edge (``ctx.tick().sample``), which sees the same settled values.
    """
    # One generator per side, seeded as the cocotb testbench seeds its own.
    rng = {side: random.Random(f"{seed}:{side}") for side in ("drive", "ready")}
    weights, activations, results = array.weights, array.activations, array.results
    budgets = [job_budget(array, job, valid_prob, ready_prob) for job in jobs]

    async def monitor(ctx) -> None:
        for index, job in enumerate(jobs):
            run.progress = Progress()
            outputs, cycles, stalled = [], 0, None
            while len(outputs) < len(job["activations"]):
                if cycles == budgets[index]:
                    progress = run.progress
                    raise _failure(
                        f"job {job['name']!r} hung: no progress after {cycles} cycles; weights "
                        f"{progress.weights}/{array.beats}, activation beats "
                        f"{progress.activations}/{len(job['activations']) * array.beats}, "
                        f"results {progress.results}/{len(job['activations'])}", run_dir)
                ready = rng["ready"].random() < ready_prob
                ctx.set(results.ready, int(ready))
                _, _, valid, bits = await ctx.tick().sample(results.valid,
                                                            Value.cast(results.payload))
                cycles += 1
                bits = bits if valid else None
                if stalled is not None and bits != stalled:
                    raise _failure(
                        f"results: a beat offered while ready was low was withdrawn or changed "
                        f"(job {job['name']!r}, cycle {cycles}: {stalled:#x} -> "
                        f"{bits if bits is None else hex(bits)})", run_dir)
                if valid and ready:
                    result = data.Const(array.result_layout, bits)
                    outputs.append([result[pe] for pe in range(array.pes)])
                    run.progress.results += 1
                stalled = bits if valid and not ready else None
            ctx.set(results.ready, 0)
            run.outputs.append(outputs)
            run.cycles += cycles
            # Added first, the monitor runs first after each edge, so the driver starts
            # the next job on the very edge that took this job's last result, as in cocotb.
            # (A job of no vectors ends here at once, where cocotb waits for its weights to
            # load: its results are the same, the cycles that follow it may not be.)
            run.finished += 1

    def weight_sent() -> None:
        run.progress.weights += 1

    def activation_sent() -> None:
        run.progress.activations += 1

    async def drive(ctx, port, beats: list[int], sent: Callable[[], None]) -> None:
        width = Value.cast(port.payload).shape().width
        for bits in beats:
            while rng["drive"].random() >= valid_prob:
                ctx.set(port.valid, 0)
                ctx.set(Value.cast(port.payload), rng["drive"].getrandbits(width))
                await ctx.tick()
            ctx.set(port.valid, 1)
            ctx.set(Value.cast(port.payload), bits)
            accepted = False
            while not accepted:
                _, _, accepted = await ctx.tick().sample(port.ready)
            sent()
        ctx.set(port.valid, 0)

    async def driver(ctx) -> None:
        for index, job in enumerate(jobs):
            while run.finished < index:
                await ctx.tick()
            await drive(ctx, weights, weight_beats(array, job, rng["drive"]), weight_sent)
            beats = [bits for vector in job["activations"]
                     for bits in activation_beats(array, vector, rng["drive"])]
            await drive(ctx, activations, beats, activation_sent)

    return monitor, driver


def run_jobs_amaranth(config: ArrayConfig, jobs: Sequence[Job], *, seed: int = 0,
                      valid_prob: float = 0.7, ready_prob: float = 0.7,
                      waves: bool = False) -> tuple[RegressionReport, list[np.ndarray]]:
    """Stream ``jobs`` through the Amaranth component in ``amaranth.sim`` and compare.

    The arguments and the result are those of :func:`hilt.sim.shift_regression.run_jobs`
    (without ``sim``; the report's ``sim`` is ``"amaranth"``): the report and, per job,
    the outputs (N x pes). A mismatch does not raise: the report counts every differing
    value and names the first by job, vector index, PE and both values. ``wall_s``
    covers elaborating the design and simulating it; there is no build to cache.

    Raises
    ------
    ValueError
        A probability outside (0, 1] or a job whose shapes do not fit the array.
    SimulationFailed
        A job hung past the cocotb testbench's budget, or the array withdrew a stalled
        result beat. Its ``run_dir`` is the waveform's folder, or None without ``waves``.
    """
    for name, prob in (("valid_prob", valid_prob), ("ready_prob", ready_prob)):
        if not 0 < prob <= 1:
            raise ValueError(f"{name} must be in (0, 1], got {prob}")
    started = time.perf_counter()
    array = config.build()
    params = [job.as_params() for job in jobs]
    for job in params:
        check_job(array, job)
    run_dir = Path(tempfile.mkdtemp(prefix=f"hilt-{SIM}-")) if waves else None
    run = _Run()
    monitor, driver = _testbenches(array, params, run, seed=seed, valid_prob=valid_prob,
                                   ready_prob=ready_prob, run_dir=run_dir)
    sim = Simulator(array)
    sim.add_clock(CLOCK_NS * 1e-9)
    sim.add_testbench(monitor)
    sim.add_testbench(driver)
    if run_dir is None:
        sim.run()
    else:
        with sim.write_vcd(str(run_dir / "dump.vcd")):
            sim.run()
    wall = time.perf_counter() - started

    outputs, mismatches, first = compare_outputs(jobs, run.outputs, "PE")
    report = RegressionReport(
        sim=SIM, config=config, jobs=len(jobs),
        vectors=sum(len(job.activations) for job in jobs),
        values=sum(job.activations.shape[0] * config.pes for job in jobs),
        mismatches=mismatches, first_mismatch=first, cycles=run.cycles, wall_s=wall,
        waves=None if run_dir is None else str(run_dir / "dump.vcd"),
    )
    logger.info("regression: %s %s: %d values, %d mismatches, %.1f s", SIM, config.kind,
                report.values, report.mismatches, wall)
    return report, outputs
