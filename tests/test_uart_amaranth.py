"""The UART in Amaranth's own simulator: loopback, exact line timing, errors and line abuse.

The receiver tests drive ``rx`` from a waveform built here cycle by cycle, so each
case (a low stop bit, a break, glitches, noise, a transmitter a few percent off the
baud rate) is exactly the line it names.
"""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from hilt.firmware.synthesis import synthesize
from hilt.firmware.uart import MIN_DIVISOR, Uart, UartRx, UartTx


def frame_levels(byte: int, stop: int = 1) -> list[int]:
    """The 10 bit levels of one 8N1 frame: start, data LSB first, stop."""
    return [0, *((byte >> k) & 1 for k in range(8)), stop]


def waveform(bits: list[int], bit_cycles: float, offset: float = 0.0) -> list[int]:
    """Bit levels as a per-cycle line, each bit ``bit_cycles`` long (may be fractional)."""
    cycles = round(len(bits) * bit_cycles + offset)
    return [bits[min(int((t - offset) / bit_cycles), len(bits) - 1)] if t >= offset else 1
            for t in range(cycles)]


def serial(data: bytes, bit_cycles: float, gap_bits: int = 0) -> list[int]:
    """A line carrying ``data`` with ``gap_bits`` idle bits after each frame."""
    bits: list[int] = []
    for byte in data:
        bits += frame_levels(byte) + [1] * gap_bits
    return waveform(bits, bit_cycles)


def receive(divisor: int, line: list[int], *, ready: bool = True,
            tail_cycles: int | None = None) -> tuple[list[int], int, int]:
    """Drive ``line`` into a receiver, one level per cycle, then idle a little.

    Returns the bytes taken (every cycle when ``ready``) and the two error counters.
    """
    dut = UartRx(divisor)
    got: list[int] = []
    counters = {}
    tail = 12 * divisor if tail_cycles is None else tail_cycles

    async def bench(ctx):
        ctx.set(dut.data.ready, int(ready))
        for level in [*line, *([1] * tail)]:
            ctx.set(dut.rx, level)
            _, _, valid, payload = await ctx.tick().sample(dut.data.valid, dut.data.payload)
            if valid and ready:
                got.append(payload)
        counters["framing"] = ctx.get(dut.framing_errors)
        counters["overruns"] = ctx.get(dut.overruns)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got, counters["framing"], counters["overruns"]


class Loopback(Elaboratable):
    """A :class:`Uart` whose ``tx`` is wired back to its ``rx``."""

    def __init__(self, divisor: int):
        self.uart = Uart(divisor)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.uart = self.uart
        m.d.comb += self.uart.rx.eq(self.uart.tx)
        return m


@pytest.mark.parametrize("divisor", [MIN_DIVISOR, 5, 7, 16])
def test_loopback_random_bytes(divisor):
    rng = random.Random(divisor)
    data = [rng.randrange(256) for _ in range(40)] + [0x00, 0xFF, 0x55, 0xAA]
    top = Loopback(divisor)
    uart = top.uart
    got: list[int] = []
    budget = (len(data) + 2) * 14 * divisor

    async def send(ctx):
        for byte in data:
            for _ in range(rng.choice([0, 0, 0, rng.randrange(3 * divisor)])):
                await ctx.tick()
            ctx.set(uart.tx_data.payload, byte)
            ctx.set(uart.tx_data.valid, 1)
            await ctx.tick().until(uart.tx_data.ready)
            ctx.set(uart.tx_data.valid, 0)

    async def collect(ctx):
        cycles = 0
        while len(got) < len(data):
            # Back-pressure is fine as long as a byte is taken before the next arrives.
            ctx.set(uart.rx_data.ready, int(rng.random() < 0.3))
            _, _, valid, ready, payload = await ctx.tick().sample(
                uart.rx_data.valid, uart.rx_data.ready, uart.rx_data.payload)
            if valid and ready:
                got.append(payload)
            cycles += 1
            assert cycles < budget, f"received only {len(got)} of {len(data)} bytes"
        assert ctx.get(uart.framing_errors) == 0
        assert ctx.get(uart.overruns) == 0

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(send, background=True)
    sim.add_testbench(collect)
    sim.run()
    assert got == data


@pytest.mark.parametrize("divisor", [MIN_DIVISOR, 9])
def test_tx_line_is_exact(divisor):
    """Back-to-back bytes leave the line at exactly 10 bits of ``divisor`` cycles each."""
    data = [0xA5, 0x00, 0xFF, 0x3C, 0x80]
    dut = UartTx(divisor)
    line: list[int] = []

    async def bench(ctx):
        index = 0
        ctx.set(dut.data.valid, 1)
        ctx.set(dut.data.payload, data[0])
        for _ in range((len(data) * 10 + 3) * divisor):
            line.append(ctx.get(dut.tx))
            _, _, ready = await ctx.tick().sample(dut.data.ready)
            if index < len(data) and ready:
                index += 1
                ctx.set(dut.data.valid, int(index < len(data)))
                ctx.set(dut.data.payload, data[index % len(data)])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    # Idle for the cycle that takes the first byte, then the frames with no gap.
    assert line == [1] + serial(data, divisor) + [1] * (3 * divisor - 1)


def test_tx_idles_high_and_waits():
    dut = UartTx(MIN_DIVISOR)

    async def bench(ctx):
        for _ in range(50):
            assert ctx.get(dut.tx) == 1
            assert ctx.get(dut.data.ready) == 1
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("divisor", [MIN_DIVISOR, 6, 16])
def test_rx_back_to_back(divisor):
    data = bytes(random.Random(divisor).randrange(256) for _ in range(30))
    got, framing, overruns = receive(divisor, serial(data, divisor))
    assert bytes(got) == data
    assert (framing, overruns) == (0, 0)


@pytest.mark.parametrize("error", [-0.03, 0.03])
def test_rx_tolerates_baud_error(error):
    """A transmitter 3% off: every start bit resynchronises the receiver."""
    divisor = 16
    data = bytes(random.Random(3).randrange(256) for _ in range(20))
    got, framing, _ = receive(divisor, serial(data, divisor * (1 + error)))
    assert bytes(got) == data
    assert framing == 0


def test_rx_framing_error_drops_byte_and_counts():
    divisor = 8
    bits = frame_levels(0x41) + frame_levels(0x42, stop=0) + [1] * 3 + frame_levels(0x43)
    got, framing, overruns = receive(divisor, waveform(bits, divisor))
    assert got == [0x41, 0x43]
    assert (framing, overruns) == (1, 0)


def test_rx_break_counts_one_error_and_recovers():
    divisor = 6
    line = serial(b"\x10", divisor) + [0] * (50 * 10 * divisor) + [1] * divisor
    line += serial(b"\x20\x30", divisor)
    got, framing, overruns = receive(divisor, line)
    assert got == [0x10, 0x20, 0x30]
    assert (framing, overruns) == (1, 0)


def test_rx_ignores_glitches():
    """Low pulses shorter than half a bit on an idle line are not start bits."""
    divisor = 16
    line: list[int] = []
    for width in range(1, divisor // 2 - 2):
        line += [0] * width + [1] * (2 * divisor)
    line += serial(b"\x5a\xa5", divisor)
    got, framing, overruns = receive(divisor, line)
    assert got == [0x5A, 0xA5]
    assert (framing, overruns) == (0, 0)


def test_rx_overrun_keeps_first_byte():
    divisor = 5
    got, framing, overruns = receive(divisor, serial(b"\x01\x02\x03", divisor), ready=False)
    assert got == []
    assert (framing, overruns) == (0, 2)

    dut = UartRx(divisor)

    async def bench(ctx):
        for level in serial(b"\x01\x02", divisor) + [1] * 20:
            ctx.set(dut.rx, level)
            await ctx.tick()
        assert ctx.get(dut.data.valid) == 1
        assert ctx.get(dut.data.payload) == 0x01
        assert ctx.get(dut.overruns) == 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_error_counters_saturate():
    divisor = MIN_DIVISOR
    dut = UartRx(divisor, counter_width=2)
    line = []
    for _ in range(6):
        line += waveform(frame_levels(0x00, stop=0), divisor) + [1] * divisor

    async def bench(ctx):
        for level in line:
            ctx.set(dut.rx, level)
            await ctx.tick()
        assert ctx.get(dut.framing_errors) == 3

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(1, 40)), max_size=30),
       st.binary(min_size=1, max_size=4))
def test_rx_recovers_from_any_noise(noise, data):
    """Whatever came before, a line idle for one frame time then carries bytes intact."""
    divisor = MIN_DIVISOR
    line = [level for level, cycles in noise for _ in range(cycles)]
    line += [1] * (10 * divisor) + serial(data, divisor)
    got, _, overruns = receive(divisor, line)
    assert overruns == 0
    assert bytes(got[-len(data):]) == data
    # Noise can make bytes of its own, but no more than its length allows.
    assert len(got) - len(data) <= len(line) // (10 * divisor) + 1


@pytest.mark.parametrize("cls", [UartTx, UartRx, Uart])
def test_divisor_is_validated(cls):
    with pytest.raises(ValueError, match=r"divisor must be at least 4, got 3"):
        cls(3)
    with pytest.raises(TypeError, match=r"divisor must be an int, got 4.0"):
        cls(4.0)


@pytest.mark.parametrize("cls", [UartRx, Uart])
def test_counter_width_is_validated(cls):
    with pytest.raises(ValueError, match=r"counter_width must be 1..32, got 0"):
        cls(8, counter_width=0)


def test_uart_synthesizes_small_for_ice40():
    """115200 baud from 12 MHz: a few dozen LUTs and flip-flops, no RAM, no DSP."""
    report = synthesize(Uart(104), "ice40")
    assert (report.brams, report.dsps) == (0, 0)
    assert 0 < report.luts < 150
    assert 0 < report.flip_flops < 120
