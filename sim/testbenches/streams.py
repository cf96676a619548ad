"""Stream coroutines shared by the cocotb testbenches: ports, a driver, a monitor, a scoreboard.

An Amaranth ``stream.Signature`` member named ``name`` becomes the Verilog ports
``name__valid``, ``name__ready`` and ``name__payload``. :func:`drive` offers beats
on such a port with random gaps and :func:`monitor` takes beats under random
back-pressure while checking that an offered beat is never withdrawn; both follow
the ready/valid rules of :mod:`amaranth.lib.stream`. Payloads are plain integers,
packed and unpacked by the testbench with the component's own layouts.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import cocotb
from amaranth.lib import data
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ReadOnly, RisingEdge

from hilt.sim.testbenches.icarus import wake_comb_processes


@dataclass
class StreamPorts:
    """The ``<name>__payload/__valid/__ready`` ports of one Amaranth stream."""

    name: str
    valid: object
    ready: object
    payload: object
    width: int

    @classmethod
    def of(cls, dut, name: str, layout: data.Layout) -> StreamPorts:
        return cls(name=name, valid=getattr(dut, f"{name}__valid"),
                   ready=getattr(dut, f"{name}__ready"),
                   payload=getattr(dut, f"{name}__payload"), width=layout.size)


@dataclass
class Scoreboard:
    """Compares output beats with the expected ones; keeps the first mismatch and a count.

    ``unit`` names one element of a beat in the message (``"PE"``, ``"neuron"``).
    """

    unit: str
    compared: int = 0
    mismatches: int = 0
    first_mismatch: str | None = None
    job_mismatches: dict[str, int] = field(default_factory=dict)

    def check(self, job: str, index: int, got: list[int], expected: list[int]) -> None:
        self.compared += 1
        for element, (value, wanted) in enumerate(zip(got, expected, strict=True)):
            if value != wanted:
                self.mismatches += 1
                self.job_mismatches[job] = self.job_mismatches.get(job, 0) + 1
                if self.first_mismatch is None:
                    self.first_mismatch = (f"job {job!r}: vector {index}, {self.unit} {element}: "
                                           f"got {value}, expected {wanted}")


def sim_cycle(clock_ns: int) -> int:
    """The number of the current clock cycle, for timing beats against each other."""
    return int(get_sim_time(unit="ns")) // clock_ns


async def start_clock_and_reset(dut, clock_ns: int, sources: Iterable[StreamPorts],
                                sinks: Iterable[StreamPorts], cycles: int = 2) -> None:
    """Start ``dut.clk``, idle every stream and hold ``dut.rst`` for ``cycles`` edges.

    Under Icarus it first runs every ``always @*`` block once
    (:func:`~hilt.sim.testbenches.icarus.wake_comb_processes`): a block none of whose
    inputs changes before it is read would otherwise give X.
    """
    if cocotb.SIM_NAME.lower().startswith("icarus"):
        wake_comb_processes(dut)
    Clock(dut.clk, clock_ns, unit="ns").start()
    dut.rst.value = 1
    for port in sources:
        port.valid.value = 0
    for port in sinks:
        port.ready.value = 0
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


async def drive(clk, port: StreamPorts, beats: list[int], valid_prob: float,
                rng: random.Random, sent: Callable[[], None]) -> None:
    """Offer each beat in turn; valid rises at random and never waits for ready."""
    for bits in beats:
        while rng.random() >= valid_prob:
            port.valid.value = 0
            port.payload.value = rng.getrandbits(port.width)  # idle payload is junk
            await RisingEdge(clk)
        port.valid.value = 1
        port.payload.value = bits
        while True:
            await ReadOnly()
            accepted = port.ready.value == 1
            await RisingEdge(clk)
            if accepted:
                sent()
                break
    port.valid.value = 0


async def monitor(clk, port: StreamPorts, layout: data.Layout, count: int, ready_prob: float,
                  rng: random.Random, received: Callable[[data.Const], None]) -> tuple[int, int]:
    """Take ``count`` result beats under random back-pressure.

    Returns the cycles it took and the cycles a result waited for ready.

    Also checks the design's side of the stream rules: a beat offered while ready is low
    stays offered, unchanged, until it is taken.
    """
    cycles, stalls, taken, stalled = 0, 0, 0, None
    while taken < count:
        ready = rng.random() < ready_prob
        port.ready.value = int(ready)
        await ReadOnly()
        cycles += 1
        valid = port.valid.value == 1
        bits = port.payload.value.to_unsigned() if valid else None
        assert stalled is None or bits == stalled, (
            f"{port.name}: a beat offered while ready was low was withdrawn or changed "
            f"(cycle {cycles}: {stalled:#x} -> {bits if bits is None else hex(bits)})")
        if valid and ready:
            received(data.Const(layout, bits))
            taken += 1
        stalled = bits if valid and not ready else None
        stalls += stalled is not None
        await RisingEdge(clk)
    port.ready.value = 0
    return cycles, stalls
