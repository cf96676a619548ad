"""The synapse crossbar in Amaranth's simulator, against the golden model, beat for beat.

Programs, update slots (both rules, with and without noise), readbacks and reads go in
on their four streams at once, with random gaps and back-pressure on ``y`` and
``state``. A monitor records the order in which the crossbar takes them, and
:class:`hilt.quant.synapse_golden.SynapseCrossbarModel` replays that order: every
``y`` beat and every readback must equal the golden model's, bit for bit. The golden
model raises on an update longer than ``max_pulses`` where the RTL ignores the extra
slots and sets ``overrun``; the replay applies that rule of the spec itself.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pytest
from amaranth.lib import data
from amaranth.sim import Simulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hilt.firmware.synthesis import synthesize
from hilt.hdl.synapse_crossbar import OPERATIONS, SynapseCrossbar
from hilt.quant.synapse_golden import StepTables, SynapseCrossbarModel


def random_tables(state_bits: int, rng: np.random.Generator) -> StepTables:
    """Asymmetric, state-dependent steps: mostly small, some up to the full range."""
    top = (1 << state_bits) - 1

    def table() -> tuple[int, ...]:
        small = rng.integers(0, max(2, top // 3) + 1, top + 1)
        large = rng.integers(0, top + 1, top + 1)
        return tuple(int(v) for v in np.where(rng.random(top + 1) < 0.2, large, small))

    return StepTables(state_bits, table(), table())


@dataclass(frozen=True)
class Slot:
    """One update slot; bit lists are indexed by row or column."""

    row_fire: tuple[int, ...]
    row_neg: tuple[int, ...]
    col_fire: tuple[int, ...]
    col_neg: tuple[int, ...]
    unidirectional: bool
    last: bool

    def beat(self) -> dict[str, int]:
        def pack(bits: tuple[int, ...]) -> int:
            return sum(int(bit) << i for i, bit in enumerate(bits))

        return {"row_fire": pack(self.row_fire), "row_neg": pack(self.row_neg),
                "col_fire": pack(self.col_fire), "col_neg": pack(self.col_neg),
                "unidirectional": int(self.unidirectional), "last": int(self.last)}


@dataclass
class Trace:
    """What a run saw, in the order the crossbar took or gave each beat."""

    order: list[str] = field(default_factory=list)
    taken_at: list[int] = field(default_factory=list)
    overrun_at_take: list[int] = field(default_factory=list)
    y: list[list[int]] = field(default_factory=list)
    y_at: list[int] = field(default_factory=list)
    state: list[tuple[list[int], list[int]]] = field(default_factory=list)
    state_at: list[int] = field(default_factory=list)
    overrun: int = 0


def simulate(xbar: SynapseCrossbar, beats: dict[str, list], *, seed: int = 0,
             gap: int = 0, ready_prob: float = 1.0) -> Trace:
    """Offer every stream's beats at once, then read back every row once the rest is taken.

    ``beats`` maps a stream name to its beats: program dicts, :class:`Slot` objects,
    row indices, x vectors. Each stream idles 0..``gap`` cycles before each beat, so
    that streams take turns; ``y`` and ``state`` are ready with ``ready_prob``.
    """
    rng = random.Random(seed)
    trace = Trace()
    final = list(range(xbar.rows))
    pending = {name: len(beats.get(name, [])) for name in OPERATIONS}
    ops = sum(pending.values()) + len(final)
    budget = 100 + int(10 * ops * (xbar.cols + 1 + gap) / ready_prob)

    async def send(ctx, name, beat):
        port = getattr(xbar, name)
        ctx.set(port.valid, 0)
        for _ in range(rng.randint(0, gap)):
            await ctx.tick()
        ctx.set(port.payload, beat.beat() if isinstance(beat, Slot) else beat)
        ctx.set(port.valid, 1)
        await ctx.tick().until(port.ready)
        pending[name] -= 1
        ctx.set(port.valid, 0)

    def driver(name):
        async def drive(ctx):
            for beat in beats.get(name, []):
                await send(ctx, name, beat)
            if name == "readback":
                while any(pending.values()):
                    await ctx.tick()
                for row in final:
                    await send(ctx, name, row)
        return drive

    async def monitor(ctx):
        edge = 0
        ports = [getattr(xbar, name) for name in OPERATIONS]
        signals = [signal for port in ports for signal in (port.valid, port.ready)]
        async for _, _, overrun, *handshakes in ctx.tick().sample(xbar.overrun, *signals):
            taken = [name for name, valid, ready
                     in zip(OPERATIONS, handshakes[0::2], handshakes[1::2], strict=True)
                     if valid and ready]
            assert len(taken) <= 1, f"edge {edge}: several operations taken at once: {taken}"
            if taken:
                trace.order.append(taken[0])
                trace.taken_at.append(edge)
                trace.overrun_at_take.append(overrun)
            trace.overrun = overrun
            edge += 1

    def collector(port, count, record):
        async def collect(ctx):
            ready_rng = random.Random(seed + count)
            held, edge, taken = None, 0, 0
            while taken < count:
                assert edge < budget, f"hung: {taken} of {count} beats after {edge} cycles"
                ready = ready_rng.random() < ready_prob
                ctx.set(port.ready, ready)
                _, _, valid, payload = await ctx.tick().sample(port.valid, port.payload)
                beat = payload if valid else None
                assert held is None or beat == held, (
                    f"beat {taken}: a stalled beat changed or vanished: {held:#x} then {beat}")
                if valid and ready:
                    record(payload, edge)
                    taken += 1
                held = beat if valid and not ready else None
                edge += 1
        return collect

    def record_y(payload, edge):
        beat = data.Const(xbar.y_layout, payload)
        trace.y.append([beat[i] for i in range(xbar.rows)])
        trace.y_at.append(edge)

    def record_state(payload, edge):
        beat = data.Const(xbar.state_layout, payload)
        trace.state.append((list(beat.plus), list(beat.minus)))
        trace.state_at.append(edge)

    sim = Simulator(xbar)
    sim.add_clock(1e-8)
    for name in OPERATIONS:
        sim.add_testbench(driver(name), background=True)
    sim.add_testbench(monitor, background=True)
    sim.add_testbench(collector(xbar.y, len(beats.get("x", [])), record_y))
    sim.add_testbench(collector(xbar.state, len(beats.get("readback", [])) + len(final),
                                record_state))
    sim.run()
    return trace


@dataclass
class Expected:
    """The golden model's answers to a trace's operations, in the order they were taken."""

    y: list[list[int]] = field(default_factory=list)
    state: list[tuple[list[int], list[int]]] = field(default_factory=list)
    overrun_at_take: list[int] = field(default_factory=list)
    overrun: int = 0
    model: SynapseCrossbarModel | None = None


def replay(xbar: SynapseCrossbar, tables: StepTables, beats: dict[str, list],
           order: list[str], *, noise_bits: int | None = None) -> Expected:
    """Run the golden model through the operations in ``order``, each stream's beats in turn.

    The model has the crossbar's parameters, or ``noise_bits`` instead of its own. A
    program or readback of a row past ``rows`` changes nothing and reads zeros; slots
    past ``max_pulses`` in one update are skipped and set ``overrun`` (the spec's rule
    for the RTL, where the golden model refuses such an update whole).
    """
    model = SynapseCrossbarModel(xbar.rows, xbar.cols, tables, in_bits=xbar.in_bits,
                                 max_pulses=xbar.max_pulses,
                                 noise_bits=xbar.noise_bits if noise_bits is None else noise_bits,
                                 lfsr_bits=xbar.lfsr_bits, seed=xbar.seed)
    expected = Expected(model=model)
    queues = {name: list(beats.get(name, [])) for name in OPERATIONS}
    queues["readback"] += list(range(xbar.rows))
    count = 0
    zeros = [0] * xbar.cols
    for name in order:
        expected.overrun_at_take.append(expected.overrun)
        beat = queues[name].pop(0)
        if name == "program" and beat["row"] < xbar.rows:
            model.program_row(beat["row"], beat["plus"], beat["minus"])
        elif name == "update":
            if count < xbar.max_pulses:
                model.slot(beat.row_fire, beat.row_neg, beat.col_fire, beat.col_neg,
                           unidirectional=beat.unidirectional)
            else:
                expected.overrun = 1
            count = 0 if beat.last else min(count + 1, xbar.max_pulses)
        elif name == "readback":
            plus, minus = model.row_state(beat) if beat < xbar.rows else (zeros, zeros)
            expected.state.append(([int(v) for v in plus], [int(v) for v in minus]))
        elif name == "x":
            expected.y.append([int(v) for v in model.read(beat)])
    assert not any(queues.values()), f"beats never taken: {queues}"
    return expected


def check(trace: Trace, expected: Expected) -> None:
    """Every beat bit for bit; a mismatch names the beat, the element and both values."""
    assert len(trace.y) == len(expected.y)
    for k, (got, want) in enumerate(zip(trace.y, expected.y, strict=True)):
        for i, (rtl, golden) in enumerate(zip(got, want, strict=True)):
            assert rtl == golden, f"y beat {k}, row {i}: rtl {rtl}, golden {golden}"
    assert len(trace.state) == len(expected.state)
    for k, (got, want) in enumerate(zip(trace.state, expected.state, strict=True)):
        for half, rtl_levels, golden_levels in zip(("plus", "minus"), got, want, strict=True):
            for j, (rtl, golden) in enumerate(zip(rtl_levels, golden_levels, strict=True)):
                assert rtl == golden, (f"readback {k}, {half}[{j}]: rtl {rtl}, "
                                       f"golden {golden}")
    for k, (rtl, golden) in enumerate(zip(trace.overrun_at_take, expected.overrun_at_take,
                                          strict=True)):
        assert rtl == golden, (f"overrun when operation {k} ({trace.order[k]}) was taken: "
                               f"rtl {rtl}, golden {golden}")
    assert trace.overrun == expected.overrun


def random_beats(xbar: SynapseCrossbar, rng: np.random.Generator, *, programs: int = 4,
                 updates: int = 6, readbacks: int = 6, reads: int = 6,
                 overlong: bool = False) -> dict[str, list]:
    """Random beats for every stream; rows past ``rows`` too where the row field holds them.

    Updates have 1..max_pulses slots, or up to two more with ``overlong``; each slot
    fires about half the rows and columns, with a random sign and rule.
    """
    rows, cols, top = xbar.rows, xbar.cols, xbar.tables.max_state
    row_values = 1 << xbar.row_shape.width
    low, high = -(1 << (xbar.in_bits - 1)), (1 << (xbar.in_bits - 1)) - 1

    def levels() -> list[int]:
        if rng.random() < 0.2:
            return rng.choice([0, top], cols).tolist()
        return rng.integers(0, top + 1, cols).tolist()

    def bits(n: int, p: float) -> tuple[int, ...]:
        return tuple(int(v) for v in rng.random(n) < p)

    slots = []
    for _ in range(updates):
        length = int(rng.integers(1, xbar.max_pulses + (3 if overlong else 1)))
        uni = bool(rng.integers(0, 2))
        for t in range(length):
            slots.append(Slot(bits(rows, 0.6), bits(rows, 0.5), bits(cols, 0.6),
                              bits(cols, 0.5), uni if rng.random() < 0.8 else not uni,
                              t == length - 1))
    return {
        "program": [{"row": int(rng.integers(0, row_values)), "plus": levels(),
                     "minus": levels()} for _ in range(programs)],
        "update": slots,
        "readback": rng.integers(0, row_values, readbacks).tolist(),
        "x": [rng.integers(low, high + 1, cols).tolist() if rng.random() < 0.8
              else [low] * cols for _ in range(reads)],
    }


def run_and_check(xbar: SynapseCrossbar, tables: StepTables, beats: dict[str, list], *,
                  seed: int = 0, gap: int | None = None, ready_prob: float = 0.5
                  ) -> tuple[Trace, Expected]:
    """Simulate, replay and check; by default each stream idles up to four operations."""
    if gap is None:
        gap = 4 * (xbar.cols + 1)
    trace = simulate(xbar, beats, seed=seed, gap=gap, ready_prob=ready_prob)
    expected = replay(xbar, tables, beats, trace.order)
    check(trace, expected)
    return trace, expected


@pytest.mark.parametrize(("rows", "cols", "state_bits", "in_bits"), [
    (3, 4, 3, 4), (2, 5, 4, 3), (1, 1, 2, 2)])
@pytest.mark.parametrize("noise_bits", [0, 1, 2])
def test_matches_the_golden_model_operation_by_operation(rows, cols, state_bits, in_bits,
                                                          noise_bits):
    rng = np.random.default_rng(rows * 100 + cols * 10 + noise_bits)
    tables = random_tables(state_bits, rng)
    xbar = SynapseCrossbar(rows, cols, tables, in_bits=in_bits, max_pulses=3,
                           noise_bits=noise_bits, lfsr_bits=8, seed=rows + noise_bits)
    beats = random_beats(xbar, rng, programs=3, updates=8, readbacks=6, reads=8)
    trace, expected = run_and_check(xbar, tables, beats, seed=cols)
    # The run moved cells both ways and interleaved the operations.
    assert expected.model.potentiation_pulses.sum() > 0
    assert expected.model.depression_pulses.sum() > 0
    switches = sum(a != b for a, b in zip(trace.order, trace.order[1:], strict=False))
    assert switches >= 8, trace.order


@st.composite
def crossbar_params(draw):
    state_bits = draw(st.integers(2, 5))
    return {
        "rows": draw(st.integers(1, 4)),
        "cols": draw(st.integers(1, 4)),
        "state_bits": state_bits,
        "in_bits": draw(st.integers(2, 6)),
        "max_pulses": draw(st.integers(1, 3)),
        "noise_bits": draw(st.integers(0, min(state_bits, 2))),
        "lfsr_bits": draw(st.sampled_from([8, 12, 16])),
        "seed": draw(st.integers(0, 1000)),
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=crossbar_params(), overlong=st.booleans())
def test_matches_the_golden_model_over_small_shapes(params, overlong):
    rng = np.random.default_rng(params["seed"])
    tables = random_tables(params.pop("state_bits"), rng)
    rows, cols = params.pop("rows"), params.pop("cols")
    xbar = SynapseCrossbar(rows, cols, tables, **params)
    beats = random_beats(xbar, rng, programs=2, updates=4, readbacks=3, reads=4,
                         overlong=overlong)
    run_and_check(xbar, tables, beats, seed=params["seed"], ready_prob=0.4)


def test_heavy_back_pressure_holds_every_result():
    rng = np.random.default_rng(11)
    tables = random_tables(4, rng)
    xbar = SynapseCrossbar(3, 3, tables, in_bits=4, max_pulses=2, noise_bits=1)
    beats = random_beats(xbar, rng, programs=2, updates=4, readbacks=6, reads=6)
    trace, _ = run_and_check(xbar, tables, beats, gap=2, ready_prob=0.1)
    # Results waited: some were taken long after they were ready.
    waits = np.diff([0, *trace.y_at])
    assert waits.max() > 3 * (xbar.cols + 1)


def test_full_rate_takes_one_operation_per_cols_plus_one_cycles_in_priority_order():
    rng = np.random.default_rng(12)
    tables = random_tables(4, rng)
    xbar = SynapseCrossbar(2, 3, tables, in_bits=4, max_pulses=1, noise_bits=1)
    beats = random_beats(xbar, rng, programs=3, updates=3, readbacks=3, reads=3)
    trace, _ = run_and_check(xbar, tables, beats, gap=0, ready_prob=1.0)
    period = xbar.cols + 1
    # All four streams were valid from the start: programs win, then updates, readbacks, x.
    assert trace.order[:12] == ["program"] * 3 + ["update"] * 3 + ["readback"] * 3 + ["x"] * 3
    assert np.diff(trace.taken_at[:12]).tolist() == [period] * 11
    readbacks = [at for name, at in zip(trace.order, trace.taken_at, strict=True)
                 if name == "readback"]
    reads = [at for name, at in zip(trace.order, trace.taken_at, strict=True) if name == "x"]
    # A result is valid `cols` edges after its operation is taken, and taken on the next.
    assert (np.array(trace.state_at) - readbacks).tolist() == [period] * len(readbacks)
    assert (np.array(trace.y_at) - reads).tolist() == [period] * len(reads)


def overrun_slots(rng: np.random.Generator, rows: int, cols: int, length: int,
                  uni: bool) -> list[Slot]:
    """An update of ``length`` slots that fire every pair, with random signs."""
    return [Slot((1,) * rows, tuple(rng.integers(0, 2, rows).tolist()), (1,) * cols,
                 tuple(rng.integers(0, 2, cols).tolist()), uni, t == length - 1)
            for t in range(length)]


def trains(slots: list[Slot]) -> tuple[np.ndarray, np.ndarray]:
    """The golden model's -1/0/+1 trains of a list of slots."""
    def train(fire, neg):
        return np.array([[0 if not f else (-1 if n else 1) for f, n in zip(a, b, strict=True)]
                         for a, b in zip(fire, neg, strict=True)])
    return (train([s.row_fire for s in slots], [s.row_neg for s in slots]),
            train([s.col_fire for s in slots], [s.col_neg for s in slots]))


@pytest.mark.parametrize("uni", [False, True])
def test_slots_past_max_pulses_move_nothing_and_set_overrun(uni):
    rng = np.random.default_rng(13)
    tables = random_tables(4, rng)
    rows, cols, max_pulses = 2, 3, 3
    xbar = SynapseCrossbar(rows, cols, tables, in_bits=4, max_pulses=max_pulses, noise_bits=1)
    fitting = overrun_slots(rng, rows, cols, max_pulses, uni)
    overlong = overrun_slots(rng, rows, cols, max_pulses + 2, uni)
    after = overrun_slots(rng, rows, cols, 2, uni)
    beats = {"update": fitting + overlong + after}
    trace, _ = run_and_check(xbar, tables, beats, ready_prob=0.7)
    # Clear through a full-length update; set by the first slot past max_pulses, and sticky.
    first = 2 * max_pulses
    assert trace.overrun_at_take == [0] * (first + 1) + [1] * (len(trace.order) - first - 1)
    # The golden model refuses the long update; cut to max_pulses it gives the same levels,
    # so the extra slots neither moved a cell nor advanced an LFSR.
    model = SynapseCrossbarModel(rows, cols, tables, in_bits=4, max_pulses=max_pulses,
                                 noise_bits=1)
    with pytest.raises(ValueError, match="exceeds max_pulses=3"):
        model.update(*trains(overlong), unidirectional=uni)
    for update in (fitting, overlong[:max_pulses], after):
        model.update(*trains(update), unidirectional=uni)
    got = [list(map(list, state)) for state in trace.state]
    want = [[model.g_plus[row].tolist(), model.g_minus[row].tolist()] for row in range(rows)]
    assert got == want


def test_reads_reach_both_ends_of_the_accumulator():
    tables = random_tables(4, np.random.default_rng(14))
    xbar = SynapseCrossbar(2, 3, tables, in_bits=3, max_pulses=1)
    assert xbar.acc_width == 9  # 15 * 4 * 3 = 180 needs 8 bits and a sign
    beats = {"program": [{"row": 0, "plus": [15] * 3, "minus": [0] * 3},
                         {"row": 1, "plus": [0] * 3, "minus": [15] * 3}],
             "x": [[-4] * 3, [3] * 3, [-4, 3, 0]]}
    trace, _ = run_and_check(xbar, tables, beats)
    assert trace.y == [[-180, 180], [135, -135], [-15, 15]]


def test_rows_past_the_array_are_dropped_and_read_back_as_zero():
    tables = random_tables(3, np.random.default_rng(15))
    xbar = SynapseCrossbar(3, 2, tables, in_bits=2, max_pulses=1)
    assert xbar.row_shape.width == 2
    beats = {"program": [{"row": 0, "plus": [1, 2], "minus": [3, 4]},
                         {"row": 3, "plus": [5, 6], "minus": [7, 7]},
                         {"row": 2, "plus": [7, 0], "minus": [0, 7]}],
             "readback": [3, 0]}
    # Back to back, so the readbacks come after every program (rows 0 and 2 non-zero).
    trace, _ = run_and_check(xbar, tables, beats, gap=0)
    assert trace.state == [([0, 0], [0, 0]), ([1, 2], [3, 4]),
                           ([1, 2], [3, 4]), ([0, 0], [0, 0]), ([7, 0], [0, 7])]


def test_noise_changes_the_levels_and_the_rtl_follows_it():
    """The same pulses with and without noise end elsewhere: the noise path is exercised."""
    rng = np.random.default_rng(16)
    tables = random_tables(4, rng)
    xbar = SynapseCrossbar(2, 3, tables, in_bits=4, max_pulses=4, noise_bits=2, seed=3)
    beats = random_beats(xbar, rng, programs=2, updates=6, readbacks=0, reads=2)
    trace, expected = run_and_check(xbar, tables, beats)
    assert replay(xbar, tables, beats, trace.order, noise_bits=0).state != expected.state


TABLES4 = StepTables(4, tuple(range(16)), tuple(range(16)))
TABLES6 = StepTables(6, (1,) * 64, (1,) * 64)


@pytest.mark.parametrize(("params", "error", "message"), [
    ({"tables": SimpleNamespace(state_bits=3, up=[0] * 8, down=[0] * 8)}, TypeError,
     r"tables must be hilt\.quant\.synapse_tables\.StepTables"),
    ({"noise_bits": 5}, ValueError,
     r"noise_bits \(state_bits=4, lfsr_bits=16\) must be 0\.\.4, got 5"),
    ({"tables": TABLES6, "noise_bits": 5, "lfsr_bits": 8}, ValueError,
     r"noise_bits \(state_bits=6, lfsr_bits=8\) must be 0\.\.4, got 5"),
    ({"lfsr_bits": 10}, ValueError,
     r"lfsr_bits must be one of \[8, 12, 16, 20, 24, 32\] \(widths with known "
     r"maximal-length taps\), got 10"),
    ({"rows": 0}, ValueError, r"rows must be at least 1, got 0"),
    ({"cols": 0}, ValueError, r"cols must be at least 1, got 0"),
    ({"cols": 2.0}, TypeError, r"cols must be an int, got 2\.0"),
    ({"in_bits": 1}, ValueError, r"in_bits must be 2\.\.16, got 1"),
    ({"in_bits": 17}, ValueError, r"in_bits must be 2\.\.16, got 17"),
    ({"max_pulses": 0}, ValueError, r"max_pulses must be at least 1, got 0"),
    ({"seed": -1}, ValueError, r"seed must be at least 0, got -1"),
])
def test_bad_parameters_are_refused_at_construction(params, error, message):
    good = {"rows": 2, "cols": 3, "tables": TABLES4, "in_bits": 4, "max_pulses": 2}
    with pytest.raises(error, match=message):
        SynapseCrossbar(**{**good, **params})


def test_an_8x8_crossbar_with_noise_fits_an_ice40_up5k():
    """The shared row datapaths keep a noisy 8 x 8 crossbar of 4-bit cells in an UP5K."""
    tables = random_tables(4, np.random.default_rng(17))
    report = synthesize(SynapseCrossbar(8, 8, tables, in_bits=4, max_pulses=15, noise_bits=1))
    assert report.luts <= 5280 and report.flip_flops <= 5280, report
    # Every level and every pair's 16-bit LFSR is a flip-flop.
    assert report.flip_flops >= 2 * 64 * 4 + 64 * 16
