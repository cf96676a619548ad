"""The synapse cell and its LFSR in Amaranth's simulator, exhaustively, against the golden model.

Every level, both directions and every noise value a cell can see are pulsed once and
compared with :func:`hilt.quant.synapse_golden.next_state`; the LFSR is compared with
:func:`hilt.quant.lfsr.lfsr_advance` at every width with known taps.
"""

from __future__ import annotations

import itertools
import random
from types import SimpleNamespace

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hilt.hdl.synapse_cell import Lfsr, SynapseCell, lfsr_noise
from hilt.quant.lfsr import LFSR_TAPS, lfsr_advance, lfsr_seed
from hilt.quant.synapse_device import ExponentialDevice
from hilt.quant.synapse_golden import (
    StepTables,
    next_state,
    noise_from_lfsr,
    step_tables_from_device,
)


def nonlinear_tables(state_bits: int) -> StepTables:
    """Asymmetric, state-dependent steps with zero and full-range entries, to hit both bounds."""
    top = (1 << state_bits) - 1
    up = [max(0, (top - s) // 2) for s in range(top + 1)]
    down = [(s * s) % (top + 1) for s in range(top + 1)]
    up[1], down[top - 1] = top, top
    return StepTables(state_bits, tuple(up), tuple(down))


TABLES = {
    "nonlinear3": nonlinear_tables(3),
    "nonlinear4": nonlinear_tables(4),
    "exponential4": step_tables_from_device(ExponentialDevice(3.0, 1.5, up_down=0.2), 4),
}


def assert_same(got: list[int], expected: list[int], cases: list[object]) -> None:
    """Bit-exact equality, naming the first case that differs and both values."""
    assert len(got) == len(expected), f"{len(got)} results for {len(expected)} cases"
    for index, (rtl, golden, case) in enumerate(zip(got, expected, cases, strict=True)):
        assert rtl == golden, f"case {index} {case}: rtl {rtl}, golden {golden}"


def run_cell(cell: SynapseCell, steps: list[dict]) -> list[int]:
    """Drive each step's inputs for one cycle; returns the state after each clock edge."""
    states = []

    async def bench(ctx):
        for step in steps:
            for name in ("pulse", "down", "load", "load_value", "noise"):
                if name in step:
                    ctx.set(getattr(cell, name), step[name])
            await ctx.tick()
            states.append(ctx.get(cell.state))

    sim = Simulator(cell)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return states


@pytest.mark.parametrize("noise_bits", [0, 1, 2])
@pytest.mark.parametrize("name", list(TABLES))
def test_every_state_direction_and_noise_matches_the_golden_step(name, noise_bits):
    tables = TABLES[name]
    top = tables.max_state
    cell = SynapseCell(tables, noise_bits=noise_bits)
    reach = (1 << noise_bits) - 1
    cases = list(itertools.product(range(top + 1), (0, 1), range(-reach, reach + 1)))
    steps = []
    for state, down, noise in cases:
        # Load the level (the pulse inputs meanwhile are junk that load overrides), then pulse.
        steps.append({"load": 1, "load_value": state, "pulse": 1, "down": 1 - down,
                      **({"noise": -noise} if noise_bits else {})})
        steps.append({"load": 0, "pulse": 1, "down": down,
                      **({"noise": noise} if noise_bits else {})})
    got = run_cell(cell, steps)
    states, downs, noises = (np.array(column) for column in zip(*cases, strict=True))
    names = [f"(state {s}, {'down' if d else 'up'}, noise {n})" for s, d, n in cases]
    assert_same(got[0::2], states.tolist(), names)
    assert_same(got[1::2], next_state(states, downs.astype(bool), noises, tables).tolist(),
                names)
    # Both bounds are reached, so the saturation is exercised.
    assert {0, top} <= set(got[1::2])


def test_a_cell_holds_without_pulse_or_load_and_starts_at_zero():
    tables = TABLES["nonlinear4"]
    cell = SynapseCell(tables, noise_bits=1)
    rng = random.Random(1)
    steps = [{"pulse": 0, "load": 0, "down": rng.randint(0, 1), "noise": rng.randint(-1, 1),
              "load_value": rng.randint(0, 15)} for _ in range(5)]
    steps += [{"load": 1, "load_value": 9}, {"load": 0}]
    steps += [{"pulse": 0, "down": rng.randint(0, 1), "noise": rng.randint(-1, 1),
               "load_value": rng.randint(0, 15)} for _ in range(5)]
    assert run_cell(cell, steps) == [0] * 5 + [9] * 7


def test_load_has_priority_over_a_pulse():
    tables = TABLES["nonlinear3"]
    cell = SynapseCell(tables)
    steps = [{"load": 1, "pulse": 1, "down": down, "load_value": value}
             for value in range(8) for down in (0, 1)]
    expected = [value for value in range(8) for _ in (0, 1)]
    got = run_cell(cell, steps)
    assert_same(got, expected, [f"load {value} with a pulse" for value in expected])


def test_a_run_of_pulses_follows_the_golden_model():
    """Pulses back to back, each from the state the last one left, with random noise."""
    tables = TABLES["exponential4"]
    cell = SynapseCell(tables, noise_bits=2)
    rng = np.random.default_rng(2)
    downs = rng.integers(0, 2, 400)
    noises = rng.integers(-3, 4, 400)
    pulses = rng.integers(0, 2, 400)
    expected, state = [], 0
    for down, noise, pulse in zip(downs, noises, pulses, strict=True):
        if pulse:
            state = int(next_state([state], [bool(down)], [noise], tables)[0])
        expected.append(state)
    steps = [{"pulse": int(p), "down": int(d), "noise": int(n)}
             for d, n, p in zip(downs, noises, pulses, strict=True)]
    assert_same(run_cell(cell, steps), expected, list(range(400)))


@pytest.mark.parametrize("width", sorted(LFSR_TAPS))
@pytest.mark.parametrize("steps", [1, 2, 3, 8])
def test_lfsr_sequence_matches_lfsr_advance(width, steps):
    seed = lfsr_seed(5, width, width)
    lfsr = Lfsr(width, seed, steps)
    rng = random.Random(width * 100 + steps)
    got, expected = [], []

    async def bench(ctx):
        state = seed
        for _ in range(300):
            advance = rng.random() < 0.8
            ctx.set(lfsr.advance, advance)
            after = lfsr_advance(state, width, steps)
            got.append((ctx.get(lfsr.value), ctx.get(lfsr.next)))
            expected.append((state, after))
            await ctx.tick()
            state = after if advance else state

    sim = Simulator(lfsr)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert_same(got, expected, [f"cycle {cycle}" for cycle in range(300)])


@pytest.mark.parametrize("noise_bits", [1, 2, 3])
def test_lfsr_noise_matches_the_golden_fields(noise_bits):
    """Every value of the two fields, with junk above them, gives the golden ``a - c``."""
    advanced = Signal(2 * noise_bits + 3)
    noise = Signal.like(lfsr_noise(advanced, noise_bits))
    m = Module()
    m.d.comb += noise.eq(lfsr_noise(advanced, noise_bits))
    values = [fields | junk << (2 * noise_bits)
              for fields in range(1 << (2 * noise_bits)) for junk in (0, 5)]
    got = []

    async def bench(ctx):
        for value in values:
            ctx.set(advanced, value)
            got.append(ctx.get(noise))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    expected = noise_from_lfsr(np.array(values), noise_bits).tolist()
    assert_same(got, expected, [f"lfsr {value:#x}" for value in values])
    assert noise.shape().signed and noise.shape().width == noise_bits + 1
    assert min(got) == -max(got) == -((1 << noise_bits) - 1)


@pytest.mark.parametrize(("tables", "noise_bits", "error", "message"), [
    (SimpleNamespace(state_bits=3, up=[0] * 8, down=[0] * 8), 0, TypeError,
     r"tables must be hilt\.quant\.synapse_tables\.StepTables, got namespace"),
    ((0,) * 8, 0, TypeError, r"tables must be hilt\.quant\.synapse_tables\.StepTables, got \(0"),
    (TABLES["nonlinear3"], 4, ValueError,
     r"noise_bits \(state_bits=3\) must be 0\.\.3, got 4"),
    (TABLES["nonlinear3"], -1, ValueError,
     r"noise_bits \(state_bits=3\) must be 0\.\.3, got -1"),
])
def test_bad_cell_parameters_are_refused(tables, noise_bits, error, message):
    with pytest.raises(error, match=message):
        SynapseCell(tables, noise_bits=noise_bits)


@pytest.mark.parametrize(("params", "error", "message"), [
    ({"width": 10}, ValueError,
     r"width must be one of \[8, 12, 16, 20, 24, 32\] \(widths with known maximal-length "
     r"taps\), got 10"),
    ({"width": 16.0}, TypeError, r"width must be an int, got 16\.0"),
    ({"seed": 0}, ValueError, r"seed \(width=8\) must be 1\.\.255, got 0"),
    ({"seed": 256}, ValueError, r"seed \(width=8\) must be 1\.\.255, got 256"),
    ({"steps": 0}, ValueError, r"steps must be at least 1, got 0"),
])
def test_bad_lfsr_parameters_are_refused(params, error, message):
    with pytest.raises(error, match=message):
        Lfsr(**{"width": 8, "seed": 1, "steps": 2, **params})
