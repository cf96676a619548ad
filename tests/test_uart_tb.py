"""The UART's Verilog under Icarus and Verilator against cocotbext-uart's line models.

Random bytes both ways at once, at a few baud rates, each the clock over the divisor.
"""

import random

import pytest

from hilt.firmware.uart import MIN_DIVISOR, Uart
from hilt.sim.runner import SimulationFailed, simulate

TESTBENCH = "hilt.sim.testbenches.uart"
CLOCK_NS = 10


def params(divisor: int, count: int, seed: int, **extra) -> dict:
    rng = random.Random(seed)
    return {"component": {"divisor": divisor}, "clock_ns": CLOCK_NS, "seed": seed,
            "valid_prob": 0.5, "ready_prob": 0.5,
            "to_host": [rng.randrange(256) for _ in range(count)] + [0x00, 0xFF],
            "to_device": [rng.randrange(256) for _ in range(count)] + [0xFF, 0x00],
            **extra}


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
@pytest.mark.parametrize("divisor", [MIN_DIVISOR, 25])
def test_uart_matches_cocotbext(divisor, sim):
    """25 Mbaud and 4 Mbaud from a 100 MHz clock: the shortest bit, and an odd divisor."""
    config = params(divisor, count=48, seed=divisor)
    result = simulate(Uart(divisor), TESTBENCH, sim=sim, params=config)
    assert result["mismatches"] == 0, result["first_mismatch"]
    assert result["received"] == {"to_host": config["to_host"],
                                  "to_device": config["to_device"]}
    assert (result["framing_errors"], result["overruns"]) == (0, 0)
    # Each direction carries 50 frames of 10 bits, and they overlap.
    frames = len(config["to_host"])
    assert frames * 10 * divisor <= result["cycles"] < 3 * frames * 10 * divisor


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_uart_mismatch_names_byte_and_values(sim, tmp_path):
    config = params(MIN_DIVISOR, count=6, seed=1)
    wanted = list(config["to_device"])
    wanted[3] ^= 0x10
    config["expect_to_device"] = wanted
    with pytest.raises(SimulationFailed) as failure:
        simulate(Uart(MIN_DIVISOR), TESTBENCH, sim=sim, params=config, run_dir=tmp_path)
    sent = config["to_device"][3]
    assert (f"host->device byte 3: got {sent:#04x}, expected {sent ^ 0x10:#04x}"
            in str(failure.value))
    assert failure.value.results["mismatches"] == 1
