"""cocotb testbench for the synapse crossbar (:class:`~hilt.hdl.synapse_crossbar.SynapseCrossbar`).

Run through :func:`hilt.sim.runner.simulate`. Parameters (JSON)::

    {"component": {"rows", "cols", "state_bits", "up", "down", "in_bits", "max_pulses",
                   "noise_bits", "lfsr_bits", "seed"},
     "seed": int, "valid_prob": float, "ready_prob": float,
     "jobs": [{"name", "ops": [...], "expected": {"reads", "readbacks", "overrun"}}]}

with the operations of :class:`hilt.sim.synapse_regression.CrossbarJob`. Each job
starts from a reset. Its operations are offered one after the other, each as soon as
the one before was taken (so a program or update arrives while a read is still being
computed, and the crossbar must hold it off), with random gaps on the inputs; the
``y`` and ``state`` results are taken under random back-pressure and compared with the
expected ones by a scoreboard. An update is one beat per slot, the last one marked.
Results::

    {"jobs": [{"name", "reads", "readbacks", "overrun", "cycles"}],
     "mismatches": int, "first_mismatch": str | None}
"""

from __future__ import annotations

import random

import cocotb
from amaranth.lib import data
from cocotb.triggers import ReadOnly, RisingEdge, SimTimeoutError, with_timeout

from hilt.hdl.synapse_crossbar import SynapseCrossbar
from hilt.quant.synapse_golden import StepTables
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
SOURCES = ("program", "readback", "update", "x")
SINKS = ("y", "state")


def build(component: dict) -> SynapseCrossbar:
    tables = StepTables(component["state_bits"], tuple(component["up"]),
                        tuple(component["down"]))
    return SynapseCrossbar(component["rows"], component["cols"], tables,
                           in_bits=component["in_bits"], max_pulses=component["max_pulses"],
                           noise_bits=component["noise_bits"],
                           lfsr_bits=component["lfsr_bits"], seed=component["seed"])


def bits(row: list[int]) -> int:
    """Pack 0/1 flags, element 0 in the least significant bit."""
    return sum(1 << index for index, flag in enumerate(row) if flag)


def beats(crossbar: SynapseCrossbar, op: dict) -> tuple[str, list[int]]:
    """The stream an operation goes to and its beats, packed with the crossbar's layouts."""
    kind = op["op"]
    if kind == "program":
        beat = {"row": op["row"], "plus": op["plus"], "minus": op["minus"]}
        return "program", [crossbar.program_layout.const(beat).as_bits()]
    if kind == "readback":
        return "readback", [op["row"]]
    if kind == "read":
        return "x", [crossbar.x_layout.const(op["x"]).as_bits()]
    slots = []
    for index, (rows, cols) in enumerate(zip(op["rows"], op["cols"], strict=True)):
        slot = {"row_fire": bits([r != 0 for r in rows]), "row_neg": bits([r < 0 for r in rows]),
                "col_fire": bits([c != 0 for c in cols]), "col_neg": bits([c < 0 for c in cols]),
                "unidirectional": int(op["unidirectional"]),
                "last": int(index == len(op["rows"]) - 1)}
        slots.append(crossbar.update_layout.const(slot).as_bits())
    return "update", slots


def budget(crossbar: SynapseCrossbar, job: dict, valid_prob: float, ready_prob: float) -> int:
    """Cycles after which a job counts as hung: ten times a generous estimate.

    Every operation (each update slot too) sweeps the columns, ``cols + 1`` cycles.
    """
    per_beat = crossbar.cols + 1 + 1 / valid_prob + 1 / ready_prob
    beats = sum(len(op["rows"]) if op["op"] == "update" else 1 for op in job["ops"])
    return 100 + 10 * int(beats * per_beat)


async def run_job(dut, crossbar: SynapseCrossbar, job: dict, ports: dict[str, StreamPorts],
                  scoreboard: Scoreboard, rngs: dict[str, random.Random], params: dict) -> dict:
    """Reset, run one job's operations in order, and collect its results."""
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    started = sim_cycle(CLOCK_NS)
    expected = job["expected"]
    reads: list[list[int]] = []
    readbacks: list[list[int]] = []

    def got_read(beat: data.Const) -> None:
        reads.append([beat[n] for n in range(crossbar.rows)])
        index = len(reads) - 1
        scoreboard.check(f"{job['name']} read", index, reads[-1], expected["reads"][index])

    def got_state(beat: data.Const) -> None:
        readbacks.append([beat.plus[n] for n in range(crossbar.cols)]
                         + [beat.minus[n] for n in range(crossbar.cols)])
        index = len(readbacks) - 1
        scoreboard.check(f"{job['name']} readback", index, readbacks[-1],
                         expected["readbacks"][index])

    ready_prob = params["ready_prob"]
    collecting = [
        cocotb.start_soon(monitor(dut.clk, ports["y"], crossbar.y_layout,
                                  len(expected["reads"]), ready_prob, rngs["y"], got_read)),
        cocotb.start_soon(monitor(dut.clk, ports["state"], crossbar.state_layout,
                                  len(expected["readbacks"]), ready_prob, rngs["state"],
                                  got_state)),
    ]
    for op in job["ops"]:
        stream, payloads = beats(crossbar, op)
        await drive(dut.clk, ports[stream], payloads, params["valid_prob"], rngs[stream],
                    lambda: None)
    for task in collecting:
        await task
    await ReadOnly()
    overrun = int(dut.overrun.value)
    await RisingEdge(dut.clk)
    return {"name": job["name"], "reads": reads, "readbacks": readbacks, "overrun": overrun,
            "cycles": sim_cycle(CLOCK_NS) - started}


@cocotb.test()
async def crossbar_jobs(dut):
    params = testbench_params()
    crossbar = build(params["component"])
    for prob in ("valid_prob", "ready_prob"):
        if not 0 < params[prob] <= 1:
            raise ValueError(f"{prob} must be in (0, 1], got {params[prob]}")
    # One generator per stream, so the stimulus does not depend on coroutine order.
    rngs = {name: random.Random(f"{params['seed']}:{name}") for name in SOURCES + SINKS}
    layouts = {"program": crossbar.program_layout, "update": crossbar.update_layout,
               "x": crossbar.x_layout, "y": crossbar.y_layout, "state": crossbar.state_layout}
    ports = {name: StreamPorts.of(dut, name, layout) for name, layout in layouts.items()}
    ports["readback"] = StreamPorts(
        name="readback", valid=dut.readback__valid, ready=dut.readback__ready,
        payload=dut.readback__payload, width=crossbar.row_shape.width)
    await start_clock_and_reset(dut, CLOCK_NS, sources=[ports[name] for name in SOURCES],
                                sinks=[ports[name] for name in SINKS])
    scoreboard = Scoreboard(unit="element")
    reports = []
    try:
        for job in params["jobs"]:
            cycles = budget(crossbar, job, params["valid_prob"], params["ready_prob"])
            try:
                reports.append(await with_timeout(
                    run_job(dut, crossbar, job, ports, scoreboard, rngs, params),
                    cycles * CLOCK_NS, "ns"))
            except SimTimeoutError:
                raise AssertionError(f"job {job['name']!r} hung: not done after {cycles} "
                                     f"cycles") from None
            if bool(reports[-1]["overrun"]) != job["expected"]["overrun"]:
                scoreboard.mismatches += 1
                scoreboard.first_mismatch = scoreboard.first_mismatch or (
                    f"job {job['name']!r}: overrun {reports[-1]['overrun']}, expected "
                    f"{int(job['expected']['overrun'])}")
    finally:
        write_testbench_results(params, {"jobs": reports, "mismatches": scoreboard.mismatches,
                                         "first_mismatch": scoreboard.first_mismatch})
    if scoreboard.first_mismatch is not None:
        raise AssertionError(f"{scoreboard.first_mismatch} ({scoreboard.mismatches} mismatching "
                             f"values in {scoreboard.compared} reads and readbacks)")
