"""cocotb testbench for the UART (:class:`~hilt.firmware.uart.Uart`) against cocotbext-uart.

cocotbext-uart's ``UartSource`` and ``UartSink`` are an independent model of the line:
the source drives ``rx`` from simulation time alone and the sink samples ``tx`` the same
way, so a wrong bit time, bit order or framing in the gateware shows as a wrong byte.

Run through :func:`hilt.sim.runner.simulate`. Parameters (JSON)::

    {"component": {"divisor": int},
     "clock_ns": int, "seed": int, "valid_prob": float, "ready_prob": float,
     "to_host": [byte, ...],     # the device sends these on tx (UartSink receives them)
     "to_device": [byte, ...],   # UartSource sends these on rx (the device receives them)
     "expect_to_host": [byte, ...] (optional, default to_host),
     "expect_to_device": [byte, ...] (optional, default to_device)}

The line runs at ``baud = 1e9 / (clock_ns * divisor)``, which must be a bit time of a
whole number of nanoseconds that cocotbext-uart's timers reproduce exactly. Both
directions run at once: the device's ``tx_data`` is fed with random gaps and its
``rx_data`` is taken under random back-pressure (no slower than a byte time, so there
is no overrun). Results::

    {"received": {"to_host": [byte, ...], "to_device": [byte, ...]},
     "mismatches": int, "first_mismatch": str | None,
     "framing_errors": int, "overruns": int, "cycles": int}
"""

from __future__ import annotations

import logging
import random
import warnings

import cocotb
from amaranth.hdl import unsigned
from amaranth.lib import data
from cocotb.triggers import ReadOnly, RisingEdge, SimTimeoutError, with_timeout
from cocotbext.uart import UartSink, UartSource

from hilt.firmware.uart import MIN_DIVISOR
from hilt.hdl.params import check_int
from hilt.sim.runner import testbench_params, write_testbench_results
from hilt.sim.testbenches.streams import (
    StreamPorts,
    drive,
    monitor,
    sim_cycle,
    start_clock_and_reset,
)

BYTE = data.StructLayout({"byte": unsigned(8)})
"""A byte beat, for the stream helpers (the ports are plain 8-bit payloads)."""


def line_baud(clock_ns: int, divisor: int) -> float:
    """The baud rate for ``divisor`` cycles of ``clock_ns`` a bit.

    cocotbext-uart times a bit as ``Timer(int(1e9 / baud), "ns")``, so the bit time must
    be a whole number of nanoseconds that survives the round trip through ``baud``.
    """
    bit_ns = clock_ns * divisor
    baud = 1e9 / bit_ns
    if int(1e9 / baud) != bit_ns:
        raise ValueError(f"a bit of {divisor} cycles of {clock_ns} ns ({bit_ns} ns) is not a "
                         f"bit time cocotbext-uart can reproduce; pick a clock_ns and divisor "
                         f"whose product divides 1e9")
    return baud


def compare(direction: str, got: list[int], expected: list[int]) -> list[str]:
    """One message per mismatching, missing or extra byte, naming its index."""
    messages = []
    for index in range(max(len(got), len(expected))):
        value = f"{got[index]:#04x}" if index < len(got) else "nothing"
        wanted = f"{expected[index]:#04x}" if index < len(expected) else "nothing"
        if value != wanted:
            messages.append(f"{direction} byte {index}: got {value}, expected {wanted}")
    return messages


@cocotb.test()
async def uart_against_cocotbext(dut):
    params = testbench_params()
    divisor = params["component"]["divisor"]
    check_int("divisor", divisor, MIN_DIVISOR)
    clock_ns = params["clock_ns"]
    baud = line_baud(clock_ns, divisor)
    for prob in ("valid_prob", "ready_prob"):
        if not 0 < params[prob] <= 1:
            raise ValueError(f"{prob} must be in (0, 1], got {params[prob]}")
    to_host, to_device = params["to_host"], params["to_device"]
    expected = {"to_host": params.get("expect_to_host", to_host),
                "to_device": params.get("expect_to_device", to_device)}

    tx_data = StreamPorts.of(dut, "tx_data", BYTE)
    rx_data = StreamPorts.of(dut, "rx_data", BYTE)
    dut.rx.value = 1
    await start_clock_and_reset(dut, clock_ns, sources=[tx_data], sinks=[rx_data])
    started = sim_cycle(clock_ns)

    with warnings.catch_warnings():
        # cocotbext-uart 0.1.4 idles the line with setimmediatevalue, deprecated in cocotb
        # 2.0; the line is already high, so the call changes nothing here.
        warnings.filterwarnings("ignore", message="Use `handle.set", category=DeprecationWarning)
        source = UartSource(dut.rx, baud=baud, bits=8, stop_bits=1)
    sink = UartSink(dut.tx, baud=baud, bits=8, stop_bits=1)
    for model in (source, sink):
        model.log.setLevel(logging.WARNING)  # not a line per byte

    received: list[int] = []
    rng = random.Random(params["seed"])
    sending = cocotb.start_soon(drive(dut.clk, tx_data, list(to_host), params["valid_prob"],
                                      random.Random(rng.random()), lambda: None))
    taking = cocotb.start_soon(monitor(dut.clk, rx_data, BYTE, len(expected["to_device"]),
                                       params["ready_prob"], random.Random(rng.random()),
                                       lambda beat: received.append(beat.as_bits())))
    await source.write(bytes(to_device))

    # Both directions need about one frame time a byte; allow three, plus a margin.
    budget_ns = 3 * (max(len(to_host), len(to_device)) + 4) * 10 * divisor * clock_ns
    messages: list[str] = []
    try:
        await with_timeout(source.wait(), budget_ns, "ns")
        await with_timeout(sending, budget_ns, "ns")
        await with_timeout(taking, budget_ns, "ns")
        while sink.count() < len(expected["to_host"]):
            await with_timeout(sink.wait(), budget_ns, "ns")
    except SimTimeoutError:
        messages.append(f"timed out after {budget_ns} ns with {len(received)} of "
                        f"{len(expected['to_device'])} bytes received by the device and "
                        f"{sink.count()} of {len(expected['to_host'])} by the host")
    # Let a stray byte (one too many) show up before the count is final.
    for _ in range(12 * divisor):
        await RisingEdge(dut.clk)
    await ReadOnly()
    heard = list(sink.read_nowait())
    messages += compare("device->host", heard, expected["to_host"])
    messages += compare("host->device", received, expected["to_device"])
    framing_errors = int(dut.framing_errors.value)
    overruns = int(dut.overruns.value)
    if framing_errors or overruns:
        messages.append(f"the device counted {framing_errors} framing errors and {overruns} "
                        f"overruns")
    write_testbench_results(params, {
        "received": {"to_host": heard, "to_device": received},
        "mismatches": len(messages), "first_mismatch": messages[0] if messages else None,
        "framing_errors": framing_errors, "overruns": overruns,
        "cycles": sim_cycle(clock_ns) - started,
    })
    if messages:
        raise AssertionError(f"{messages[0]} ({len(messages)} mismatches at {baud:.0f} baud, "
                             f"divisor {divisor})")
