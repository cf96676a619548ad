"""cocotb testbench for the folded binary-layer array (:class:`BinaryLayerArray`).

Run through :func:`hilt.sim.runner.simulate`. Parameters (JSON)::

    {"component": {"in_features", "out_features", "pe", "simd", "max_weight",
                   "emit" (optional, "bits" or "counts")},
     "seed": int, "valid_prob": float, "ready_prob": float,
     "timeout_cycles": int (optional, per job),
     "jobs": [{"name",
               "weights": [[bit] * in_features] * out_features,   # 1 means +1
               "magnitudes": [[int] * in_features] * out_features, # only if max_weight > 1
               "thresholds": [int] * out_features,  # optional with emit="counts"
               "inputs": [[bit] * in_features] * N,
               "expected": [[bit or count] * out_features] * N,
               "full_rate": bool (optional)}]}

For each job the weights and thresholds are loaded, in a shuffled order and on both
streams at once, with junk in the lanes past the layer's edges; then the N input
vectors are streamed while ``outputs`` sees random back-pressure, and a scoreboard
compares every output value (a neuron's bit, or with ``emit="counts"`` its count) with
``expected``. An ``emit="counts"`` job without thresholds loads none; one with
thresholds loads them too, and the array must drop them. The next job's load is
offered as soon as the previous job's inputs are all taken, while they are still being
computed. A ``full_rate`` job waits for the previous job's outputs, then offers every
beat at once and never stalls the output, and measures the array's timing. Payloads
are packed with the array's own Amaranth layouts. Results::

    {"jobs": [{"name", "outputs", "compared", "mismatches", "cycles", "stalls",
               "loaded": {"weights", "thresholds"}, "timing": None | {...}}],
     "mismatches": int, "first_mismatch": str | None}

``timing`` (full-rate jobs only) is ``{"vectors", "cycles_per_vector",
"fastest_vector", "latency"}``: the largest and smallest number of cycles between two
consecutive output beats, which are both ``neuron_folds * synapse_folds`` for the
array, and the cycles from the clock edge that takes the first input to the first
cycle its output is offered, ``neuron_folds * synapse_folds + 1``.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import cocotb
from amaranth.lib import data
from cocotb.task import Task
from cocotb.triggers import SimTimeoutError, with_timeout

from hilt.hdl.threshold_array import BinaryLayerArray
from hilt.sim.runner import testbench_params, write_testbench_results
from hilt.sim.testbenches.streams import (
    Scoreboard,
    StreamPorts,
    drive,
    monitor,
    sim_cycle,
    start_clock_and_reset,
)

CLOCK_NS = 10
SIDES = ("weights", "thresholds", "inputs", "ready")


@dataclass
class Progress:
    """What a job got through, for the message when it hangs."""

    weights: int = 0
    thresholds: int = 0
    inputs: int = 0
    outputs: int = 0


def check_job(array: BinaryLayerArray, job: dict) -> None:
    vectors = len(job["inputs"])
    shapes = {key: (len(job[key]), {len(row) for row in job[key]})
              for key in ("weights", "inputs", "expected")}
    wanted = {"weights": (array.out_features, {array.in_features}),
              "inputs": (vectors, {array.in_features} if vectors else set()),
              "expected": (vectors, {array.out_features} if vectors else set())}
    if array.max_weight > 1 or "magnitudes" in job:
        shapes["magnitudes"] = (len(job.get("magnitudes", ())),
                                {len(row) for row in job.get("magnitudes", ())})
        wanted["magnitudes"] = (array.out_features, {array.in_features})
    for key, shape in shapes.items():
        if shape != wanted[key]:
            raise ValueError(f"job {job['name']!r}: {key} has {shape[0]} rows of lengths "
                             f"{sorted(shape[1])}, expected {wanted[key][0]} rows of "
                             f"{sorted(wanted[key][1])}")
    thresholds = job.get("thresholds")
    if thresholds is None:
        if array.folding.thresholded:
            raise ValueError(f"job {job['name']!r}: no thresholds, which only an "
                             f"emit='counts' array can do without")
    elif len(thresholds) != array.out_features:
        raise ValueError(f"job {job['name']!r}: thresholds has {len(thresholds)} "
                         f"entries, expected {array.out_features}")


def job_budget(array: BinaryLayerArray, job: dict, valid_prob: float, ready_prob: float) -> int:
    """Cycles after which a job counts as hung: ten times a generous estimate."""
    folding = array.folding
    loads = folding.neuron_folds * folding.pe * (folding.synapse_folds + 1)
    vectors = len(job["inputs"])
    expected = (loads + vectors) / valid_prob + vectors * folding.cycles_per_vector \
        + vectors / ready_prob
    return 100 + 10 * int(expected)


def timing(inputs_at: list[int], outputs_at: list[int]) -> dict | None:
    """Cycles per vector between consecutive outputs, and the first vector's latency."""
    if not outputs_at:
        return None
    intervals = [b - a for a, b in itertools.pairwise(outputs_at)]
    return {"vectors": len(outputs_at),
            "cycles_per_vector": max(intervals, default=None),
            "fastest_vector": min(intervals, default=None),
            "latency": outputs_at[0] - inputs_at[0]}


@dataclass
class Feed:
    """A job whose loads and inputs are all taken; its outputs may still be on the way."""

    job: dict
    progress: Progress
    collecting: Task
    full_rate: bool
    inputs_at: list[int]
    outputs_at: list[int]
    outputs: list[list[int]]


async def feed_job(dut, array: BinaryLayerArray, job: dict, ports: dict[str, StreamPorts],
                   scoreboard: Scoreboard, rngs: dict[str, random.Random], params: dict,
                   progress: Progress, after: Task | None) -> Feed:
    """Load a job's layer and stream its inputs; collect its outputs after ``after``'s.

    The load is offered as soon as the previous job's inputs are all taken, while its
    vectors may still be in the array, which must hold the load off until they are done.
    """
    folding = array.folding
    full_rate = bool(job.get("full_rate"))
    valid_prob = 1.0 if full_rate else params["valid_prob"]
    ready_prob = 1.0 if full_rate else params["ready_prob"]
    feed = Feed(job=job, progress=progress, collecting=None, full_rate=full_rate,
                inputs_at=[], outputs_at=[], outputs=[])

    def received(beat: data.Const) -> None:
        # Called in the cycle the beat is offered and taken.
        feed.outputs_at.append(sim_cycle(CLOCK_NS))
        index = len(feed.outputs)
        feed.outputs.append([beat[n] for n in range(array.out_features)])
        progress.outputs += 1
        scoreboard.check(job["name"], index, feed.outputs[-1], job["expected"][index])

    def counter(name: str):
        def sent() -> None:
            setattr(progress, name, getattr(progress, name) + 1)
            if name == "inputs":
                # Called just after the clock edge that took the beat.
                feed.inputs_at.append(sim_cycle(CLOCK_NS))
        return sent

    async def collect() -> tuple[int, int]:
        if after is not None:
            await after
        return await monitor(dut.clk, ports["outputs"], array.output_layout,
                             len(job["inputs"]), ready_prob, rngs["ready"], received)

    feed.collecting = cocotb.start_soon(collect())
    if full_rate and after is not None:
        await after  # nothing else in flight, so the timing is the array's alone
    weights = folding.weight_beats(job["weights"], job.get("magnitudes"), rng=rngs["weights"])
    thresholds = ([] if job.get("thresholds") is None
                  else folding.threshold_beats(job["thresholds"], rng=rngs["thresholds"]))
    rngs["weights"].shuffle(weights)
    rngs["thresholds"].shuffle(thresholds)
    loads = {
        "weights": [array.weight_layout.const(beat).as_bits() for beat in weights],
        "thresholds": [array.threshold_layout.const(beat).as_bits() for beat in thresholds],
    }
    loading = [cocotb.start_soon(drive(dut.clk, ports[name], beats, valid_prob, rngs[name],
                                       counter(name)))
               for name, beats in loads.items()]
    for task in loading:
        await task
    beats = [array.input_layout.const(vector).as_bits() for vector in job["inputs"]]
    await drive(dut.clk, ports["inputs"], beats, valid_prob, rngs["inputs"], counter("inputs"))
    return feed


def report(feed: Feed, cycles: int, stalls: int, scoreboard: Scoreboard) -> dict:
    name = feed.job["name"]
    return {"name": name, "outputs": feed.outputs, "compared": len(feed.outputs),
            "mismatches": scoreboard.job_mismatches.get(name, 0), "cycles": cycles,
            "stalls": stalls,
            "loaded": {"weights": feed.progress.weights,
                       "thresholds": feed.progress.thresholds},
            "timing": timing(feed.inputs_at, feed.outputs_at) if feed.full_rate else None}


def hung(array: BinaryLayerArray, job: dict, progress: Progress, budget: int) -> AssertionError:
    folding = array.folding
    lanes = folding.neuron_folds * folding.pe
    thresholds = 0 if job.get("thresholds") is None else lanes
    return AssertionError(
        f"job {job['name']!r} hung: no progress after {budget} cycles; weights "
        f"{progress.weights}/{lanes * folding.synapse_folds}, thresholds "
        f"{progress.thresholds}/{thresholds}, inputs {progress.inputs}/{len(job['inputs'])}, "
        f"outputs {progress.outputs}/{len(job['inputs'])}")


@cocotb.test()
async def binary_layer_jobs(dut):
    params = testbench_params()
    array = BinaryLayerArray(**params["component"])
    for prob in ("valid_prob", "ready_prob"):
        if not 0 < params[prob] <= 1:
            raise ValueError(f"{prob} must be in (0, 1], got {params[prob]}")
    for job in params["jobs"]:
        check_job(array, job)
    # One generator per stream, so the stimulus does not depend on how the simulator
    # orders the coroutines within a time step.
    rngs = {side: random.Random(f"{params['seed']}:{side}") for side in SIDES}
    ports = {
        "weights": StreamPorts.of(dut, "weights", array.weight_layout),
        "thresholds": StreamPorts.of(dut, "thresholds", array.threshold_layout),
        "inputs": StreamPorts.of(dut, "inputs", array.input_layout),
        "outputs": StreamPorts.of(dut, "outputs", array.output_layout),
    }
    await start_clock_and_reset(
        dut, CLOCK_NS, sources=[ports[name] for name in ("weights", "thresholds", "inputs")],
        sinks=[ports["outputs"]])

    scoreboard = Scoreboard(unit="neuron")
    feeds: list[Feed] = []
    reports = []

    def budget(job: dict) -> int:
        return params.get("timeout_cycles") or job_budget(
            array, job, params["valid_prob"], params["ready_prob"])

    try:
        for job in params["jobs"]:
            progress = Progress()
            after = feeds[-1].collecting if feeds else None
            try:
                feeds.append(await with_timeout(
                    feed_job(dut, array, job, ports, scoreboard, rngs, params, progress, after),
                    budget(job) * CLOCK_NS, "ns"))
            except SimTimeoutError:
                # A load waits for the previous job's vectors, so blame the first job that
                # has not finished.
                stuck = next((feed for feed in feeds if not feed.collecting.done()), None)
                if stuck is None:
                    raise hung(array, job, progress, budget(job)) from None
                raise hung(array, stuck.job, stuck.progress, budget(job)) from None
        for feed in feeds:
            try:
                cycles, stalls = await with_timeout(feed.collecting,
                                                    budget(feed.job) * CLOCK_NS, "ns")
            except SimTimeoutError:
                raise hung(array, feed.job, feed.progress, budget(feed.job)) from None
            reports.append(report(feed, cycles, stalls, scoreboard))
    finally:
        write_testbench_results(params, {"jobs": reports, "mismatches": scoreboard.mismatches,
                                         "first_mismatch": scoreboard.first_mismatch})
    if scoreboard.first_mismatch is not None:
        raise AssertionError(f"{scoreboard.first_mismatch} ({scoreboard.mismatches} mismatching "
                             f"{array.emit} in {scoreboard.compared} output vectors)")
