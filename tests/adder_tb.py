"""A cocotb testbench for the registered adder of test_sim_runner.py; it exercises the harness.

Params: ``{"pairs": [[a, b], ...], "expected": [sum, ...]}``; results: ``{"sums": [...]}``.
"""

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from hilt.sim.runner import testbench_params, write_testbench_results


@cocotb.test()
async def adder_sums(dut):
    params = testbench_params()
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 0
    sums = []
    for a, b in params["pairs"]:
        dut.a.value = a
        dut.b.value = b
        await RisingEdge(dut.clk)
        await ReadOnly()
        sums.append(dut.s.value.to_unsigned())
        await RisingEdge(dut.clk)
    write_testbench_results(params, {"sums": sums})
    for i, ((a, b), got, expected) in enumerate(zip(params["pairs"], sums, params["expected"],
                                                     strict=True)):
        assert got == expected, f"pair {i}: {a}+{b} gave {got}, expected {expected}"
