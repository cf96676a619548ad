"""cocotb testbench for the weight-stationary vector arrays (shift and multiplier twins).

Run through :func:`hilt.sim.runner.simulate`. Parameters (JSON)::

    {"component": {"kind": "shift" | "multiplier", "lanes", "pes", "act_width",
                   "exp_bits", "depth"},
     "seed": int, "valid_prob": float, "ready_prob": float,
     "timeout_cycles": int (optional, per job),
     "jobs": [{"name", "sign": [[int] * depth] * pes, "exp": [[int] * depth] * pes,
               "activations": [[int] * depth] * N, "expected": [[int] * pes] * N}]}

For each job the weights are loaded, then the N vectors streamed while ``results``
sees random back-pressure; a scoreboard compares every result beat with ``expected``.
Payloads are packed and unpacked with the array's own Amaranth layouts, so the
testbench holds no bit positions of its own. Results::

    {"jobs": [{"name", "outputs", "compared", "mismatches", "cycles", "stalls"}],
     "mismatches": int, "first_mismatch": str | None}
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import cocotb
from amaranth.lib import data
from cocotb.triggers import SimTimeoutError, with_timeout

from hilt.hdl.mul_array import MultiplierVectorArray
from hilt.hdl.shift_array import ShiftVectorArray
from hilt.sim.runner import testbench_params, write_testbench_results
from hilt.sim.testbenches.streams import (
    Scoreboard,
    StreamPorts,
    drive,
    monitor,
    start_clock_and_reset,
)

ARRAYS = {"shift": ShiftVectorArray, "multiplier": MultiplierVectorArray}
CLOCK_NS = 10


def build_array(config: dict):
    """The array that the simulated Verilog was generated from, for its layouts."""
    kind = config["kind"]
    if kind not in ARRAYS:
        raise ValueError(f"component kind must be one of {', '.join(ARRAYS)}, got {kind!r}")
    return ARRAYS[kind](**{key: value for key, value in config.items() if key != "kind"})


@dataclass
class Progress:
    """What a job got through, for the message when it hangs."""

    weights: int = 0
    activations: int = 0
    results: int = 0


def weight_beats(array, job: dict, rng: random.Random) -> list[int]:
    """The weight tile as payloads; codes past ``depth`` are junk the array must ignore."""
    beats = []
    for beat in range(array.beats):
        codes = []
        for pe in range(array.pes):
            row = []
            for lane in range(array.lanes):
                k = beat * array.lanes + lane
                if k < array.depth:
                    row.append({"exp": job["exp"][pe][k], "sign": job["sign"][pe][k]})
                else:
                    row.append({"exp": rng.getrandbits(array.fmt.exp_bits),
                                "sign": rng.getrandbits(1)})
            codes.append(row)
        beats.append(array.weight_layout.const({"beat": beat, "codes": codes}).as_bits())
    return beats


def activation_beats(array, vector: list[int], rng: random.Random) -> list[int]:
    """One input vector as payloads; lanes past ``depth`` carry junk the array must ignore."""
    low, high = -(1 << (array.act_width - 1)), (1 << (array.act_width - 1)) - 1
    beats = []
    for beat in range(array.beats):
        lanes = []
        for lane in range(array.lanes):
            k = beat * array.lanes + lane
            lanes.append(vector[k] if k < array.depth else rng.randint(low, high))
        beats.append(array.activation_layout.const(lanes).as_bits())
    return beats


def job_budget(array, job: dict, valid_prob: float, ready_prob: float) -> int:
    """Cycles after which a job counts as hung: ten times a generous estimate."""
    vectors = len(job["activations"])
    expected = (array.beats + vectors * array.beats) / valid_prob + vectors / ready_prob
    return 100 + 10 * int(expected)


async def run_job(dut, array, job: dict, ports: dict, scoreboard: Scoreboard,
                  rngs: dict[str, random.Random], params: dict, progress: Progress) -> dict:
    outputs = []

    def received(result: data.Const) -> None:
        index = len(outputs)
        outputs.append([result[pe] for pe in range(array.pes)])
        progress.results += 1
        scoreboard.check(job["name"], index, outputs[-1], job["expected"][index])

    def weight_sent() -> None:
        progress.weights += 1

    def activation_sent() -> None:
        progress.activations += 1

    vectors = len(job["activations"])
    collecting = cocotb.start_soon(monitor(
        dut.clk, ports["results"], array.result_layout, vectors, params["ready_prob"],
        rngs["ready"], received))
    rng = rngs["drive"]
    await drive(dut.clk, ports["weights"], weight_beats(array, job, rng), params["valid_prob"],
                rng, weight_sent)
    activations = [bits for vector in job["activations"]
                   for bits in activation_beats(array, vector, rng)]
    await drive(dut.clk, ports["activations"], activations, params["valid_prob"], rng,
                activation_sent)
    cycles, stalls = await collecting
    return {"name": job["name"], "outputs": outputs, "compared": vectors,
            "mismatches": scoreboard.job_mismatches.get(job["name"], 0), "cycles": cycles,
            "stalls": stalls}


def check_job(array, job: dict) -> None:
    vectors = len(job["activations"])
    shapes = {
        "sign": (len(job["sign"]), {len(row) for row in job["sign"]}),
        "exp": (len(job["exp"]), {len(row) for row in job["exp"]}),
        "activations": (vectors, {len(row) for row in job["activations"]}),
        "expected": (len(job["expected"]), {len(row) for row in job["expected"]}),
    }
    wanted = {"sign": (array.pes, {array.depth}), "exp": (array.pes, {array.depth}),
              "activations": (vectors, {array.depth} if vectors else set()),
              "expected": (vectors, {array.pes} if vectors else set())}
    for key, shape in shapes.items():
        if shape != wanted[key]:
            raise ValueError(f"job {job['name']!r}: {key} has {shape[0]} rows of lengths "
                             f"{sorted(shape[1])}, expected {wanted[key][0]} rows of "
                             f"{sorted(wanted[key][1])}")


@cocotb.test()
async def vector_array_jobs(dut):
    params = testbench_params()
    array = build_array(params["component"])
    for prob in ("valid_prob", "ready_prob"):
        if not 0 < params[prob] <= 1:
            raise ValueError(f"{prob} must be in (0, 1], got {params[prob]}")
    for job in params["jobs"]:
        check_job(array, job)
    # One generator per side, so the stimulus does not depend on how the simulator
    # orders the driver and the monitor within a time step.
    rngs = {side: random.Random(f"{params['seed']}:{side}") for side in ("drive", "ready")}
    ports = {
        "weights": StreamPorts.of(dut, "weights", array.weight_layout),
        "activations": StreamPorts.of(dut, "activations", array.activation_layout),
        "results": StreamPorts.of(dut, "results", array.result_layout),
    }

    await start_clock_and_reset(dut, CLOCK_NS, sources=[ports["weights"], ports["activations"]],
                                sinks=[ports["results"]])

    scoreboard = Scoreboard(unit="PE")
    reports = []
    try:
        for job in params["jobs"]:
            budget = params.get("timeout_cycles") or job_budget(
                array, job, params["valid_prob"], params["ready_prob"])
            progress = Progress()
            try:
                reports.append(await with_timeout(
                    run_job(dut, array, job, ports, scoreboard, rngs, params, progress),
                    budget * CLOCK_NS, "ns"))
            except SimTimeoutError:
                raise AssertionError(
                    f"job {job['name']!r} hung: no progress after {budget} cycles; weights "
                    f"{progress.weights}/{array.beats}, activation beats "
                    f"{progress.activations}/{len(job['activations']) * array.beats}, results "
                    f"{progress.results}/{len(job['activations'])}") from None
    finally:
        write_testbench_results(params, {"jobs": reports, "mismatches": scoreboard.mismatches,
                                         "first_mismatch": scoreboard.first_mismatch})
    if scoreboard.first_mismatch is not None:
        raise AssertionError(f"{scoreboard.first_mismatch} ({scoreboard.mismatches} mismatching "
                             f"values in {scoreboard.compared} result beats)")
