"""cocotb testbenches; each module is run inside the simulator by hilt.sim.runner."""
