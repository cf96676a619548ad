# amaranth: UnusedElaboratable=no
# (some tests only read a neuron's layouts)

"""The threshold-logic neuron in Amaranth's simulator: one cell, many gates, by its threshold.

Every expected value is computed here from the definition (1 means +1, 0 means -1,
p = sum m_i * XNOR(x_i, w_i), y = [p >= T]), so the cell is checked independently of
the golden model in hilt.quant.
"""

from __future__ import annotations

import itertools
import random

import pytest
from amaranth.sim import Simulator
from amaranth.utils import bits_for

from hilt.hdl.threshold_neuron import ThresholdNeuron


def evaluate(neuron: ThresholdNeuron, schedule: list[tuple[str, object]]) -> list[tuple[int, int]]:
    """Run ``("threshold", T)`` writes and ``("input", payload)`` beats back to back.

    Returns ``(y, count)`` for every input, in order; ``result`` is always ready.
    """
    results = []
    junk = random.Random(0)

    async def bench(ctx):
        ctx.set(neuron.result.ready, 1)
        for kind, value in [*schedule, ("idle", None)]:
            ctx.set(neuron.threshold.valid, kind == "threshold")
            ctx.set(neuron.inputs.valid, kind == "input")
            # A threshold payload without valid is junk that must not be written.
            ctx.set(neuron.threshold.payload, value if kind == "threshold"
                    else junk.getrandbits(neuron.threshold_width))
            if kind == "input":
                ctx.set(neuron.inputs.payload, value)
            _, _, valid, payload = await ctx.tick().sample(neuron.result.valid,
                                                           neuron.result.payload)
            if valid:
                results.append((payload.y, payload.count))

    sim = Simulator(neuron)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


def bits(value: int, width: int) -> list[int]:
    return [(value >> i) & 1 for i in range(width)]


def count(x: int, w: int, magnitudes: list[int]) -> int:
    return sum(m for m, a, b in zip(magnitudes, bits(x, len(magnitudes)),
                                    bits(w, len(magnitudes)), strict=True) if a == b)


@pytest.mark.parametrize("fan_in", range(1, 7))
def test_one_cell_is_and_or_majority_by_its_threshold_alone(fan_in):
    neuron = ThresholdNeuron(fan_in=fan_in)
    ones = (1 << fan_in) - 1
    inputs = [("input", {"x": x, "w": ones}) for x in range(1 << fan_in)]
    gates = {"AND": fan_in, "OR": 1, "MAJ": fan_in // 2 + 1}
    schedule = [step for t in gates.values() for step in [("threshold", t), *inputs]]
    got = [y for y, _ in evaluate(neuron, schedule)]
    truth = {
        "AND": [int(x == ones) for x in range(1 << fan_in)],
        "OR": [int(x != 0) for x in range(1 << fan_in)],
        # More than half the inputs; ceil(N / 2) for odd N.
        "MAJ": [int(2 * bin(x).count("1") > fan_in) for x in range(1 << fan_in)],
    }
    for index, gate in enumerate(gates):
        assert got[index << fan_in:(index + 1) << fan_in] == truth[gate], gate
    if fan_in % 2:
        assert gates["MAJ"] == -(-fan_in // 2)


@pytest.mark.parametrize("fan_in", range(1, 6))
def test_every_threshold_over_every_input_and_weight(fan_in):
    """Exhaustive over x, w and T = 0 .. N + 1: T = 0 always fires, T = N + 1 never."""
    neuron = ThresholdNeuron(fan_in=fan_in)
    pairs = list(itertools.product(range(1 << fan_in), repeat=2))
    thresholds = range(fan_in + 2)
    schedule = [step for t in thresholds
                for step in [("threshold", t), *[("input", {"x": x, "w": w}) for x, w in pairs]]]
    got = evaluate(neuron, schedule)
    expected = [(int(count(x, w, [1] * fan_in) >= t), count(x, w, [1] * fan_in))
                for t in thresholds for x, w in pairs]
    assert got == expected
    per_threshold = [got[i * len(pairs):(i + 1) * len(pairs)] for i in thresholds]
    assert all(y == 1 for y, _ in per_threshold[0])
    assert all(y == 0 for y, _ in per_threshold[-1])


def test_weighted_threshold_gate():
    """Magnitudes 2, 1, 1 and T = 2 give x0 OR (x1 AND x2): a gate no plain majority is."""
    neuron = ThresholdNeuron(fan_in=3, max_weight=2)
    schedule = [("threshold", 2), *[("input", {"x": x, "w": 0b111, "magnitudes": [2, 1, 1]})
                                    for x in range(8)]]
    got = [y for y, _ in evaluate(neuron, schedule)]
    assert got == [int(bool(x & 1) or (x & 0b110) == 0b110) for x in range(8)]


@pytest.mark.parametrize("max_weight", [2, 3, 5])
def test_weighted_neuron_over_every_input_weight_and_threshold(max_weight):
    fan_in = 3
    neuron = ThresholdNeuron(fan_in=fan_in, max_weight=max_weight)
    rng = random.Random(max_weight)
    field_max = (1 << bits_for(max_weight)) - 1
    # The extremes, and random magnitudes; a field above max_weight counts as max_weight.
    magnitude_sets = [[max_weight] * fan_in, [0] * fan_in, [field_max, 0, 1],
                      *[[rng.randint(0, field_max) for _ in range(fan_in)] for _ in range(3)]]
    schedule, expected = [], []
    for magnitudes in magnitude_sets:
        effective = [min(m, max_weight) for m in magnitudes]
        total = sum(effective)
        for t in range(total + 2):
            schedule.append(("threshold", t))
            for x, w in itertools.product(range(1 << fan_in), repeat=2):
                schedule.append(("input", {"x": x, "w": w, "magnitudes": magnitudes}))
                p = count(x, w, effective)
                expected.append((int(p >= t), p))
            if t == 0:
                assert all(y for y, _ in expected[-(1 << 2 * fan_in):])
            if t == total + 1:
                assert not any(y for y, _ in expected[-(1 << 2 * fan_in):])
    assert evaluate(neuron, schedule) == expected


def test_largest_threshold_and_count_fit():
    """fan_in * max_weight = 12 needs 4 count bits; T = 13 (never) needs 4 as well, 16 5."""
    neuron = ThresholdNeuron(fan_in=4, max_weight=3)
    assert (neuron.count_width, neuron.threshold_width) == (4, 4)
    neuron = ThresholdNeuron(fan_in=5, max_weight=3)  # 15, and 16 for "never"
    assert (neuron.count_width, neuron.threshold_width) == (4, 5)
    everything = {"x": 0b11111, "w": 0b11111, "magnitudes": [3] * 5}
    got = evaluate(neuron, [("threshold", 15), ("input", everything),
                            ("threshold", 16), ("input", everything),
                            ("threshold", 31), ("input", everything)])
    assert got == [(1, 15), (0, 15), (0, 15)]


def test_threshold_is_zero_after_reset_and_applies_from_the_next_input():
    neuron = ThresholdNeuron(fan_in=2)
    results = []

    async def bench(ctx):
        ctx.set(neuron.result.ready, 1)
        ctx.set(neuron.inputs.payload, {"x": 0b00, "w": 0b11})  # no matches
        ctx.set(neuron.inputs.valid, 1)
        await ctx.tick()  # T = 0 from reset: fires
        ctx.set(neuron.threshold.payload, 1)
        ctx.set(neuron.threshold.valid, 1)
        results.append(ctx.get(neuron.result.payload.y))
        await ctx.tick()  # taken with the threshold write: still T = 0
        ctx.set(neuron.threshold.valid, 0)
        results.append(ctx.get(neuron.result.payload.y))
        await ctx.tick()  # T = 1 now
        results.append(ctx.get(neuron.result.payload.y))
        assert ctx.get(neuron.threshold.ready) == 1

    sim = Simulator(neuron)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert results == [1, 1, 0]


def test_back_pressure_holds_the_result_and_stalls_the_input():
    neuron = ThresholdNeuron(fan_in=3)
    rng = random.Random(3)
    xs = [rng.randrange(8) for _ in range(40)]
    got = []

    async def drive(ctx):
        ctx.set(neuron.threshold.payload, 2)
        ctx.set(neuron.threshold.valid, 1)
        await ctx.tick()
        ctx.set(neuron.threshold.valid, 0)
        for x in xs:
            ctx.set(neuron.inputs.payload, {"x": x, "w": 0b101})
            ctx.set(neuron.inputs.valid, 1)
            await ctx.tick().until(neuron.inputs.ready)
        ctx.set(neuron.inputs.valid, 0)

    async def collect(ctx):
        held = None
        while len(got) < len(xs):
            ready = rng.random() < 0.4
            ctx.set(neuron.result.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(neuron.result.valid,
                                                           neuron.result.payload)
            value = (payload.y, payload.count) if valid else None
            assert held is None or value == held, "a stalled result changed or vanished"
            if valid and ready:
                got.append(value)
            held = value if valid and not ready else None

    sim = Simulator(neuron)
    sim.add_clock(1e-8)
    sim.add_testbench(drive, background=True)
    sim.add_testbench(collect)
    sim.run()
    assert got == [(int(count(x, 0b101, [1] * 3) >= 2), count(x, 0b101, [1] * 3)) for x in xs]


def test_ports_follow_max_weight():
    assert set(ThresholdNeuron(fan_in=4).input_layout.members) == {"x", "w"}
    assert set(ThresholdNeuron(fan_in=4, max_weight=3).input_layout.members) == {
        "x", "w", "magnitudes"}


@pytest.mark.parametrize(("params", "error", "message"), [
    ({"fan_in": 0}, ValueError, r"fan_in must be at least 1, got 0"),
    ({"fan_in": 4, "max_weight": 0}, ValueError, r"max_weight must be at least 1, got 0"),
    ({"fan_in": 8, "count_width": 3}, ValueError,
     r"count_width=3 is too small: fan_in=8 inputs of magnitude up to max_weight=1 sum to "
     r"8, which needs at least 4 bits"),
    ({"fan_in": 10, "max_weight": 3, "count_width": 4}, ValueError,
     r"count_width=4 is too small: fan_in=10 .* max_weight=3 sum to 30, .* at least 5 bits"),
    ({"fan_in": 4, "count_width": 0}, ValueError, r"count_width must be at least 1, got 0"),
    ({"fan_in": 4.0}, TypeError, r"fan_in must be an int, got 4\.0"),
    ({"fan_in": True}, TypeError, r"fan_in must be an int, got True"),
    ({"fan_in": 4, "max_weight": "2"}, TypeError, r"max_weight must be an int, got '2'"),
])
def test_bad_parameters_are_refused(params, error, message):
    with pytest.raises(error, match=message):
        ThresholdNeuron(**params)


def test_a_wider_count_is_accepted():
    neuron = ThresholdNeuron(fan_in=3, count_width=8)
    assert neuron.count_width == 8
    got = evaluate(neuron, [("threshold", 3), ("input", {"x": 0b111, "w": 0b111})])
    assert got == [(1, 3)]
