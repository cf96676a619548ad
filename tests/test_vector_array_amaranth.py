"""The vector arrays in Amaranth's own simulator: fast, property-based, against the golden model.

The cocotb regressions (test_shift_regression.py) check the generated Verilog under
Icarus and Verilator; these check the same components over many more shapes.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hilt.hdl.mul_array import MultiplierVectorArray
from hilt.hdl.shift_array import ShiftVectorArray
from hilt.hdl.vector_array import VectorArray
from hilt.quant.pow2_export import PowerOfTwoWeights
from hilt.quant.pow2_format import PowerOfTwoFormat
from hilt.quant.shift_golden import shift_matmul
from hilt.sim.shift_regression import random_codes

ARRAYS = [ShiftVectorArray, MultiplierVectorArray]


def simulate(array: VectorArray, sign: np.ndarray, exp: np.ndarray, x: np.ndarray,
             *, seed: int = 0, valid_prob: float = 1.0,
             ready_prob: float = 1.0) -> tuple[np.ndarray, int]:
    """Load one tile, stream ``x`` through and return the results and the cycles taken."""
    rng = np.random.default_rng(seed)
    lanes, beats = array.lanes, array.beats
    padded = beats * lanes - array.depth
    results: list[list[int]] = []
    cycles = 0

    async def drive(ctx):
        for beat in range(beats):
            columns = range(beat * lanes, min((beat + 1) * lanes, array.depth))
            codes = [[{"exp": int(exp[m, k]), "sign": int(sign[m, k])} for k in columns]
                     + [{"exp": 0, "sign": 0}] * (lanes - len(columns))
                     for m in range(array.pes)]
            ctx.set(array.weights.payload, {"beat": beat, "codes": codes})
            ctx.set(array.weights.valid, 1)
            await ctx.tick().until(array.weights.ready)
        ctx.set(array.weights.valid, 0)
        low, high = -(1 << (array.act_width - 1)), (1 << (array.act_width - 1)) - 1
        for vector in x:
            # Lanes past depth carry junk that the array must ignore.
            junk = rng.integers(low, high + 1, padded)
            row = np.concatenate([vector, junk]).reshape(beats, lanes)
            for beat in row:
                while rng.random() >= valid_prob:
                    await ctx.tick()
                ctx.set(array.activations.payload, [int(v) for v in beat])
                ctx.set(array.activations.valid, 1)
                await ctx.tick().until(array.activations.ready)
                ctx.set(array.activations.valid, 0)

    async def collect(ctx):
        nonlocal cycles
        while len(results) < len(x):
            ctx.set(array.results.ready, int(rng.random() < ready_prob))
            _, _, valid, ready, payload = await ctx.tick().sample(
                array.results.valid, array.results.ready, array.results.payload)
            cycles += 1
            if valid and ready:
                results.append([int(payload[m]) for m in range(array.pes)])

    sim = Simulator(array)
    sim.add_clock(1e-8)
    sim.add_testbench(drive, background=True)
    sim.add_testbench(collect)
    sim.run()
    return np.array(results, dtype=np.int64).reshape(len(x), array.pes), cycles


@st.composite
def configs(draw):
    return {
        "lanes": draw(st.integers(1, 6)),
        "pes": draw(st.integers(1, 3)),
        "act_width": draw(st.integers(2, 9)),
        "exp_bits": draw(st.integers(1, 4)),
        "depth": draw(st.integers(1, 14)),
    }


@pytest.mark.parametrize("cls", ARRAYS, ids=lambda cls: cls.__name__)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=configs(), seed=st.integers(0, 2**16))
def test_matches_golden_model(cls, params, seed):
    array = cls(**params)
    fmt = PowerOfTwoFormat(params["exp_bits"])
    rng = np.random.default_rng(seed)
    shape = (array.pes, array.depth)
    weights = random_codes(fmt, shape, rng)
    low, high = -(1 << (array.act_width - 1)), (1 << (array.act_width - 1)) - 1
    x = rng.choice([low, high, rng.integers(low, high + 1)], size=(6, array.depth))
    got, _ = simulate(array, weights.sign, weights.exp, x, seed=seed, valid_prob=0.6,
                      ready_prob=0.5)
    np.testing.assert_array_equal(got, shift_matmul(weights, x))


@pytest.mark.parametrize("cls", ARRAYS, ids=lambda cls: cls.__name__)
def test_extreme_sums_fit_the_accumulator(cls):
    """Most negative activations times the largest negative weights: the largest sum."""
    array = cls(lanes=4, pes=2, act_width=8, exp_bits=3, depth=10)
    fmt = array.fmt
    sign = np.array([[1] * 10, [0] * 10])
    exp = np.zeros((2, 10), dtype=np.uint8)
    x = np.full((2, 10), -128)
    got, _ = simulate(array, sign, exp, x)
    bound = 10 * fmt.term_bound(8)
    assert got.tolist() == [[bound, -bound], [bound, -bound]]
    assert bound <= (1 << (array.acc_width - 1)) - 1


@pytest.mark.parametrize("cls", ARRAYS, ids=lambda cls: cls.__name__)
def test_full_throughput_is_one_beat_per_cycle(cls):
    """With valid and ready always high the array never stalls the activation stream."""
    array = cls(lanes=2, pes=2, act_width=6, exp_bits=2, depth=2)  # one beat per vector
    weights = PowerOfTwoWeights.from_codes(array.fmt, np.zeros((2, 2)), np.ones((2, 2)))
    x = np.arange(40).reshape(20, 2) % 32
    got, cycles = simulate(array, weights.sign, weights.exp, x)
    np.testing.assert_array_equal(got, shift_matmul(weights, x))
    # 20 vectors, one result per cycle after a pipeline fill of a few cycles.
    assert cycles <= 20 + 4


@pytest.mark.parametrize("cls", ARRAYS, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize(("params", "message"), [
    ({"lanes": 0}, r"lanes must be at least 1, got 0"),
    ({"pes": -2}, r"pes must be at least 1, got -2"),
    ({"act_width": 1}, r"act_width must be 2\.\.32, got 1"),
    ({"act_width": 33}, r"act_width must be 2\.\.32, got 33"),
    ({"exp_bits": 0}, r"exp_bits must be in 1\.\.6"),
    ({"exp_bits": 7}, r"exp_bits must be in 1\.\.6"),
    ({"depth": 0}, r"depth must be at least 1, got 0"),
    ({"acc_width": 12}, r"acc_width=12 is too small: .* needs at least 19 bits"),
])
def test_bad_parameters_are_refused_at_construction(cls, params, message):
    good = {"lanes": 4, "pes": 2, "act_width": 8, "exp_bits": 3, "depth": 16}
    with pytest.raises(ValueError, match=message):
        cls(**{**good, **params})


@pytest.mark.parametrize("value", [2.0, True, "4"])
def test_non_integer_parameters_are_refused(value):
    with pytest.raises(TypeError, match="lanes must be an int"):
        ShiftVectorArray(lanes=value, pes=1, act_width=8, exp_bits=3, depth=4)
