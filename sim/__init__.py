"""Simulation: Amaranth to Verilog to cocotb under Icarus or Verilator, and the regressions."""
