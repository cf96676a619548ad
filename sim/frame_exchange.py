"""Byte-level exchanges with a frame device in Amaranth's simulator, without the UART.

Gateware targets are checked against the reference device by sending both the same
request bytes and comparing the answers; this is the gateware side of that exchange.
"""

from __future__ import annotations

import random

from amaranth.sim import Simulator

from hilt.firmware.top import FrameDevice


def exchange(dut: FrameDevice, line: bytes, answer_size: int, *, seed: int = 0,
             valid_prob: float = 0.8, ready_prob: float = 0.8,
             quiet_cycles: int = 200, cycles_per_byte: int = 60) -> bytes:
    """Feed ``line`` to ``dut`` and take ``answer_size`` bytes back, then check quiet.

    Both sides move under random gaps and back-pressure. The device must then stay
    quiet for ``quiet_cycles``: a byte more than expected comes back too, and a device
    that hangs ends the run on a budget of ``cycles_per_byte`` per byte each way.
    """
    rng = random.Random(seed)
    got: list[int] = []
    fed: list[bool] = []
    budget = cycles_per_byte * (len(line) + answer_size) + 5000

    async def drive(ctx):
        for byte in line:
            while rng.random() >= valid_prob:
                ctx.set(dut.rx.valid, 0)
                await ctx.tick()
            ctx.set(dut.rx.payload, byte)
            ctx.set(dut.rx.valid, 1)
            await ctx.tick().until(dut.rx.ready)
        ctx.set(dut.rx.valid, 0)
        fed.append(True)

    async def collect(ctx):
        cycles = quiet = 0
        while (len(got) < answer_size or quiet < quiet_cycles) and cycles < budget:
            ctx.set(dut.tx.ready, int(len(got) >= answer_size or rng.random() < ready_prob))
            _, _, valid, ready, byte = await ctx.tick().sample(dut.tx.valid, dut.tx.ready,
                                                               dut.tx.payload)
            if valid and ready:
                got.append(byte)
            quiet = quiet + 1 if fed and len(got) >= answer_size else 0
            cycles += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(drive, background=True)
    sim.add_testbench(collect)
    sim.run()
    return bytes(got)
