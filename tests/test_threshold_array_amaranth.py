"""The folded binary-layer array in Amaranth's simulator: many small shapes, against numpy.

The expected outputs are a direct XNOR-popcount(-compare) in numpy, written here, so that
the array is checked independently of the golden model in hilt.quant, in both of its
modes: threshold bits and plain counts. The cocotb testbench (test_binary_layer_tb.py)
checks the generated Verilog of a few of these shapes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.lib import data
from amaranth.sim import Simulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hilt.hdl.threshold_array import BinaryLayerArray, LayerFolding


def counts(weights, magnitudes, x) -> np.ndarray:
    """p[v, n] = sum_i m[n, i] * XNOR(x[v, i], w[n, i]), from scratch."""
    weights, x = np.asarray(weights), np.asarray(x)
    m = np.ones_like(weights) if magnitudes is None else np.asarray(magnitudes)
    matches = x[:, None, :] == weights[None, :, :]
    return (matches * m[None]).sum(axis=-1)


def reference(weights, magnitudes, thresholds, x) -> np.ndarray:
    """y[v, n] = [p[v, n] >= T[n]]."""
    return (counts(weights, magnitudes, x) >= np.asarray(thresholds)[None]).astype(int)


@dataclass
class Layer:
    """A layer's parameters; ``thresholds`` None loads none (an ``emit="counts"`` layer)."""

    weights: np.ndarray
    thresholds: np.ndarray | None
    magnitudes: np.ndarray | None = None
    emit: str = "bits"

    def expected(self, x: np.ndarray) -> np.ndarray:
        if self.emit == "counts":
            return counts(self.weights, self.magnitudes, x)
        return reference(self.weights, self.magnitudes, self.thresholds, x)


def random_layer(folding: LayerFolding, rng: np.random.Generator) -> Layer:
    """Random weights and magnitudes; thresholds over 0..sum+1, both ends included."""
    shape = (folding.out_features, folding.in_features)
    weights = rng.integers(0, 2, shape)
    magnitudes = None
    if folding.max_weight > 1:
        magnitudes = rng.integers(0, folding.max_weight + 1, shape)
    sums = magnitudes.sum(axis=1) if magnitudes is not None else np.full(shape[0], shape[1])
    thresholds = rng.integers(0, sums + 2)
    thresholds[0] = 0
    thresholds[-1] = sums[-1] + 1
    return Layer(weights, thresholds, magnitudes, folding.emit)


@dataclass
class Trace:
    """What a run saw: outputs, and the clock edge that took every input and output beat."""

    outputs: list[list[int]] = field(default_factory=list)
    inputs_at: list[int] = field(default_factory=list)
    outputs_at: list[int] = field(default_factory=list)


def run(array: BinaryLayerArray, layers: list[tuple[Layer, np.ndarray]], *, seed: int = 0,
        valid_prob: float = 1.0, ready_prob: float = 1.0, extra_weight_beats=(),
        wait_for_load: bool = True) -> Trace:
    """Load each layer and stream its vectors under random valid gaps and back-pressure.

    Weights and thresholds go in a shuffled order, with junk in the lanes past the
    layer's edges, on both load streams at once; each layer's load is offered as soon as
    the previous layer's vectors are all taken, while they are still being computed.
    Stray ``extra_weight_beats`` follow each layer's weights. Without ``wait_for_load``
    the vectors are offered together with the load instead of after it.
    """
    folding = array.folding
    rng = random.Random(seed)
    trace = Trace()
    total = sum(len(x) for _, x in layers)
    loaded = {"weights": -1, "thresholds": -1}
    streamed = -1  # the last layer whose vectors were all taken

    def weight_beats(layer):
        magnitudes = None if layer.magnitudes is None else layer.magnitudes.tolist()
        return folding.weight_beats(layer.weights.tolist(), magnitudes, rng=rng)

    def threshold_beats(layer):
        if layer.thresholds is None:
            return []
        return folding.threshold_beats(layer.thresholds.tolist(), rng=rng)

    async def send(ctx, port, beats):
        for beat in beats:
            while rng.random() >= valid_prob:
                ctx.set(port.valid, 0)
                await ctx.tick()
            ctx.set(port.payload, beat)
            ctx.set(port.valid, 1)
            await ctx.tick().until(port.ready)
        ctx.set(port.valid, 0)

    def loader(name, beats_of):
        async def load(ctx):
            for index, (layer, _) in enumerate(layers):
                while streamed < index - 1:
                    await ctx.tick()
                beats = beats_of(layer)
                rng.shuffle(beats)
                if name == "weights":
                    beats += list(extra_weight_beats)
                await send(ctx, getattr(array, name), beats)
                loaded[name] = index
        return load

    async def drive(ctx):
        nonlocal streamed
        for index, (_, x) in enumerate(layers):
            while wait_for_load and min(loaded.values()) < index:
                await ctx.tick()
            beats = [array.input_layout.const([int(bit) for bit in vector]).as_bits()
                     for vector in x]
            await send(ctx, array.inputs, beats)
            streamed = index

    async def watch_inputs(ctx):
        edge = 0
        async for _, _, valid, ready in ctx.tick().sample(array.inputs.valid,
                                                          array.inputs.ready):
            if valid and ready:
                trace.inputs_at.append(edge)
            edge += 1

    # Ten times a generous estimate of the whole run, so that a hang fails instead.
    loads = sum(len(weight_beats(layer)) + folding.out_features for layer, _ in layers)
    budget = 100 + 10 * int((loads + total * folding.cycles_per_vector) / valid_prob
                            + total / ready_prob)

    async def collect(ctx):
        held = None
        ready_rng = random.Random(seed + 1)
        edge = 0
        while len(trace.outputs) < total:
            assert edge < budget, (f"hung: {len(trace.outputs)} of {total} outputs after "
                                   f"{edge} cycles")
            ready = ready_rng.random() < ready_prob
            ctx.set(array.outputs.ready, int(ready))
            _, _, valid, payload = await ctx.tick().sample(array.outputs.valid,
                                                           array.outputs.payload)
            bits = None
            if valid:
                beat = data.Const(array.output_layout, payload)
                bits = [beat[n] for n in range(array.out_features)]
            assert held is None or bits == held, "a stalled output beat changed or vanished"
            if valid and ready:
                trace.outputs.append(bits)
                trace.outputs_at.append(edge)
            held = bits if valid and not ready else None
            edge += 1

    sim = Simulator(array)
    sim.add_clock(1e-8)
    sim.add_testbench(loader("weights", weight_beats), background=True)
    sim.add_testbench(loader("thresholds", threshold_beats), background=True)
    sim.add_testbench(drive, background=True)
    sim.add_testbench(watch_inputs, background=True)
    sim.add_testbench(collect)
    sim.run()
    return trace


def check_outputs(trace: Trace, layers: list[tuple[Layer, np.ndarray]]) -> None:
    expected = np.concatenate([layer.expected(x) for layer, x in layers])
    np.testing.assert_array_equal(np.array(trace.outputs), expected)


@st.composite
def foldings(draw):
    in_features = draw(st.integers(1, 12))
    out_features = draw(st.integers(1, 7))
    return LayerFolding(
        in_features=in_features, out_features=out_features,
        pe=draw(st.integers(1, out_features)), simd=draw(st.integers(1, in_features)),
        max_weight=draw(st.sampled_from([1, 1, 2, 3, 5])))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(folding=foldings(), seed=st.integers(0, 2**16))
def test_matches_numpy_over_small_shapes(folding, seed):
    array = BinaryLayerArray(in_features=folding.in_features,
                             out_features=folding.out_features, pe=folding.pe,
                             simd=folding.simd, max_weight=folding.max_weight)
    rng = np.random.default_rng(seed)
    # Two layers, so the second load waits for the first layer's vectors to finish.
    layers = [(random_layer(folding, rng), rng.integers(0, 2, (4, folding.in_features)))
              for _ in range(2)]
    trace = run(array, layers, seed=seed, valid_prob=0.6, ready_prob=0.5)
    check_outputs(trace, layers)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(folding=foldings(), seed=st.integers(0, 2**16), thresholds=st.booleans())
def test_counts_match_numpy_over_small_shapes(folding, seed, thresholds):
    """``emit="counts"``: every neuron's count, whether or not thresholds are loaded too."""
    array = BinaryLayerArray(in_features=folding.in_features,
                             out_features=folding.out_features, pe=folding.pe,
                             simd=folding.simd, max_weight=folding.max_weight, emit="counts")
    rng = np.random.default_rng(seed)
    layers = []
    for _ in range(2):
        layer = random_layer(array.folding, rng)
        if not thresholds:
            layer.thresholds = None
        layers.append((layer, rng.integers(0, 2, (4, folding.in_features))))
    trace = run(array, layers, seed=seed, valid_prob=0.6, ready_prob=0.5)
    check_outputs(trace, layers)


@pytest.mark.parametrize("emit", ["bits", "counts"])
@pytest.mark.parametrize(("in_features", "out_features", "pe", "simd"), [
    (13, 7, 3, 4),   # both tails: 4 slices, 3 neuron folds
    (8, 8, 8, 8),    # one cycle per vector
    (5, 1, 1, 1),    # one neuron, one input per cycle
    (16, 6, 2, 16),  # one slice, three neuron folds
])
def test_full_throughput_takes_the_folded_cycle_count(in_features, out_features, pe, simd,
                                                       emit):
    array = BinaryLayerArray(in_features=in_features, out_features=out_features, pe=pe,
                             simd=simd, emit=emit)
    rng = np.random.default_rng(4)
    layer = random_layer(array.folding, rng)
    x = rng.integers(0, 2, (12, in_features))
    trace = run(array, [(layer, x)])
    check_outputs(trace, [(layer, x)])
    cycles = array.folding.cycles_per_vector
    assert cycles == -(-out_features // pe) * -(-in_features // simd)
    assert np.diff(trace.inputs_at).tolist() == [cycles] * 11
    assert np.diff(trace.outputs_at).tolist() == [cycles] * 11
    # Valid N + 1 cycles after the edge that took the input; taken on the edge after that.
    assert trace.outputs_at[0] - trace.inputs_at[0] == cycles + 2


def test_counts_ignore_thresholds_and_fill_the_count_width():
    """A count spans 0..S, all of its bits; the thresholds loaded with it change nothing."""
    array = BinaryLayerArray(in_features=5, out_features=3, pe=2, simd=2, max_weight=3,
                             emit="counts")
    assert array.folding.count_width == 4
    assert array.outputs.payload.shape().width == 3 * 4
    weights = np.array([[1, 0, 1, 1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]])
    magnitudes = np.array([[3] * 5, [1, 2, 3, 0, 1], [2, 3, 3, 3, 3]])
    x = np.array([weights[0], 1 - weights[0], weights[2], weights[1]])
    layers = [(Layer(weights, thresholds, magnitudes, "counts"), x)
              for thresholds in (np.array([0, 0, 0]), np.array([16, 8, 15]), None)]
    trace = run(array, layers, valid_prob=0.7, ready_prob=0.7)
    check_outputs(trace, layers)
    # Every neuron reaches 0 and its S = 15, 7, 14; 15 sets all four bits.
    assert trace.outputs[:4] == [[15, 3, 8], [0, 4, 6], [9, 0, 14], [6, 7, 0]]
    assert trace.outputs[4:8] == trace.outputs[:4] == trace.outputs[8:]


@pytest.mark.parametrize(("emit", "memory"), [("bits", True), ("counts", False)])
def test_only_a_thresholded_array_builds_a_threshold_memory(emit, memory):
    array = BinaryLayerArray(in_features=13, out_features=7, pe=3, simd=4, emit=emit)
    assert ("threshold_memory" in verilog.convert(array, name="top")) == memory


def test_thresholds_make_and_or_majority_from_one_layer():
    """Three neurons with all-ones weights and only T differing: AND, OR and MAJ of 5 inputs."""
    array = BinaryLayerArray(in_features=5, out_features=3, pe=2, simd=2)
    layer = Layer(weights=np.ones((3, 5), dtype=int), thresholds=np.array([5, 1, 3]))
    x = np.array([[(v >> i) & 1 for i in range(5)] for v in range(32)])
    trace = run(array, [(layer, x)], valid_prob=0.8, ready_prob=0.7)
    got = np.array(trace.outputs)
    assert got[:, 0].tolist() == [int(row.all()) for row in x]
    assert got[:, 1].tolist() == [int(row.any()) for row in x]
    assert got[:, 2].tolist() == [int(row.sum() >= 3) for row in x]


def test_out_of_range_addresses_are_dropped():
    """Fold fields past their range would alias real words; those beats must change nothing."""
    array = BinaryLayerArray(in_features=9, out_features=5, pe=2, simd=3)  # 3 x 3 folds
    rng = np.random.default_rng(5)
    layer = random_layer(array.folding, rng)
    layer.thresholds[3] = 5
    # Word 0 * 3 + 3 is neuron fold 1, slice 0, where lane 1 is neuron 3: complement its
    # first three weights there, which moves its count on every vector.
    flipped = sum((1 - int(bit)) << i for i, bit in enumerate(layer.weights[3, :3]))
    stray = [{"neuron_fold": 0, "synapse_fold": 3, "pe": 1, "w": flipped},
             {"neuron_fold": 3, "synapse_fold": 0, "pe": 0, "w": 0b101}]
    x = np.array([[(v >> i) & 1 for i in range(9)] for v in range(0, 512, 7)])
    trace = run(array, [(layer, x)], extra_weight_beats=stray)
    check_outputs(trace, [(layer, x)])


def test_a_load_offered_with_vectors_goes_first():
    """At an idle array, vectors offered with a load wait for it and so see the new layer."""
    array = BinaryLayerArray(in_features=6, out_features=4, pe=2, simd=4)
    rng = np.random.default_rng(6)
    layers = [(random_layer(array.folding, rng), rng.integers(0, 2, (5, 6)))]
    trace = run(array, layers, wait_for_load=False)
    check_outputs(trace, layers)
    # The first vector went in only after all 2 * 2 * 2 weight beats.
    assert trace.inputs_at[0] >= 8


def test_magnitudes_above_max_weight_count_as_max_weight():
    array = BinaryLayerArray(in_features=4, out_features=2, pe=2, simd=4, max_weight=2)
    weights = np.ones((2, 4), dtype=int)
    # The 2-bit field can hold 3; it must count as 2.
    layer = Layer(weights, np.array([8, 9]), magnitudes=np.array([[2, 2, 2, 2], [2, 2, 2, 2]]))
    stored = Layer(weights, layer.thresholds, magnitudes=np.array([[3, 3, 3, 3], [3, 3, 2, 3]]))
    x = np.array([[1, 1, 1, 1], [1, 1, 1, 0]])
    trace = run(array, [(stored, x)])
    np.testing.assert_array_equal(np.array(trace.outputs), layer.expected(x))
    assert trace.outputs == [[1, 0], [0, 0]]


@pytest.mark.parametrize(("params", "message"), [
    ({"in_features": 0}, r"in_features must be at least 1, got 0"),
    ({"out_features": -1}, r"out_features must be at least 1, got -1"),
    ({"pe": 0}, r"pe must be 1\.\.7, got 0"),
    ({"pe": 8}, r"pe must be 1\.\.7, got 8"),
    ({"simd": 14}, r"simd must be 1\.\.13, got 14"),
    ({"max_weight": 0}, r"max_weight must be at least 1, got 0"),
    ({"emit": "count"}, r"emit must be one of 'bits', 'counts', got 'count'"),
])
def test_bad_sizes_are_refused_at_construction(params, message):
    good = {"in_features": 13, "out_features": 7, "pe": 3, "simd": 4}
    with pytest.raises(ValueError, match=message):
        BinaryLayerArray(**{**good, **params})


@pytest.mark.parametrize("value", [4.0, True, "4", None])
def test_non_integer_sizes_are_refused(value):
    with pytest.raises(TypeError, match="simd must be an int"):
        BinaryLayerArray(in_features=13, out_features=7, pe=3, simd=value)


@pytest.mark.parametrize("value", [None, 1, ["counts"]])
def test_a_non_string_emit_is_refused(value):
    with pytest.raises(TypeError, match=r"emit must be a str, one of 'bits', 'counts'; got"):
        LayerFolding(in_features=13, out_features=7, pe=3, simd=4, emit=value)


def test_layer_matrices_of_the_wrong_shape_are_refused():
    folding = LayerFolding(in_features=4, out_features=2, pe=1, simd=2)
    with pytest.raises(ValueError, match=r"weights has 2 rows of lengths \[3\], expected 2 "
                                         r"rows of 4"):
        folding.weight_beats([[0, 1, 0], [1, 1, 1]])
    with pytest.raises(ValueError, match=r"thresholds has 3 entries, expected out_features=2"):
        folding.threshold_beats([1, 2, 3])
    with pytest.raises(ValueError, match=r"magnitudes must be given exactly when max_weight > 1"):
        folding.weight_beats([[0] * 4] * 2, [[1] * 4] * 2)


@pytest.mark.parametrize("value", [-1, 15])
def test_a_threshold_outside_the_count_range_is_refused(value):
    folding = LayerFolding(in_features=13, out_features=3, pe=3, simd=4)
    with pytest.raises(ValueError, match=rf"threshold of neuron 1 is {value}: thresholds "
                                         r"must be in 0\.\.14"):
        folding.threshold_beats([0, value, 14])
