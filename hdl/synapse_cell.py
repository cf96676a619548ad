"""The conductance-update synapse cell and the LFSR that gives it cycle-to-cycle noise.

A cell holds a level ``s`` in ``0..S``, ``S = 2**state_bits - 1``. A pulse moves it by a
step that depends on ``s`` itself, read from the device's step tables (the nonlinear,
possibly asymmetric response curve), plus a signed noise ``d``, saturating at both
bounds::

    up pulse:    s' = clamp(s + up[s] + d, 0, S)
    down pulse:  s' = clamp(s - down[s] + d, 0, S)

The tables are constants of the build, so each cell looks its step up in a small ROM
of LUTs. The noise is ``d = a - c`` of two ``noise_bits``-bit fields of a Fibonacci
LFSR advanced ``2 * noise_bits`` shifts per pulse (:func:`lfsr_noise`). The golden
model the RTL matches bit for bit is :mod:`hilt.quant.synapse_golden`; the LFSR's taps
and seeds are shared with it through :mod:`hilt.quant.lfsr`.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hilt.hdl.params import check_int
from hilt.quant.lfsr import LFSR_TAPS
from hilt.quant.synapse_tables import StepTables


def check_tables(tables: StepTables) -> StepTables:
    """Refuse anything but :class:`~hilt.quant.synapse_tables.StepTables`.

    StepTables checks at construction that its tables fit their state width; the RTL
    sizes its ROMs and adders from that width, so it takes nothing less checked.
    """
    if not isinstance(tables, StepTables):
        raise TypeError(f"tables must be hilt.quant.synapse_tables.StepTables, got {tables!r}")
    return tables


def check_noise_bits(noise_bits: int, state_bits: int, lfsr_bits: int) -> int:
    """Refuse a noise width the state or the LFSR cannot hold: 0..min(b, lfsr_bits // 2)."""
    check_lfsr_width("lfsr_bits", lfsr_bits)
    return check_int(f"noise_bits (state_bits={state_bits}, lfsr_bits={lfsr_bits})",
                     noise_bits, 0, min(state_bits, lfsr_bits // 2))


def check_lfsr_width(name: str, width: int) -> int:
    """Refuse an LFSR width without known maximal-length taps."""
    if isinstance(width, bool) or not isinstance(width, int):
        raise TypeError(f"{name} must be an int, got {width!r}")
    if width not in LFSR_TAPS:
        raise ValueError(f"{name} must be one of {sorted(LFSR_TAPS)} (widths with known "
                         f"maximal-length taps), got {width}")
    return width


def pulse_step(state: Value, down: Value, noise: Value | None, tables: StepTables) -> Value:
    """The level after one pulse on a cell at ``state``, combinational, ``state_bits`` wide.

    One ROM indexed by ``{down, state}`` holds the unsaturated target ``s + up[s]`` or
    ``s - down[s]``; the noise is added to it and the sum saturated to ``0..S``. Without
    noise (``noise`` None) the ROM holds the saturated level itself and nothing is added.
    """
    b, top = tables.state_bits, tables.max_state
    targets = ([s + step for s, step in enumerate(tables.up)]
               + [s - step for s, step in enumerate(tables.down)])
    index = Cat(state, down)
    if noise is None:
        return Array(Const(min(max(t, 0), top), b) for t in targets)[index]
    # Targets span -S..2S.
    target = Array(Const(t, signed(b + 2)) for t in targets)[index]
    moved = target + noise
    return Mux(moved < 0, 0, Mux(moved > top, top, moved))[:b]


def lfsr_noise(advanced: Value, noise_bits: int) -> Value:
    """The noise ``a - c`` of the two low ``noise_bits``-bit fields of an advanced LFSR.

    Symmetric with zero mean over a full period, in ``-(2**m - 1)..2**m - 1``, and
    ``signed(noise_bits + 1)`` wide.
    """
    check_int("noise_bits", noise_bits, 1)
    return advanced[:noise_bits] - advanced[noise_bits:2 * noise_bits]


class SynapseCell(wiring.Component):
    """One finite-level conductance cell: a state register moved by pulses.

    Parameters
    ----------
    tables : StepTables
        ``state_bits`` (b, 2..12) and the ``up``/``down`` step tables, ``2**b`` entries
        in ``0..2**b - 1`` each.
    noise_bits : int
        Width m of each noise field, ``0..b``; 0 builds no ``noise`` port.

    Ports
    -----
    pulse : In(1)
        Move the state by one pulse on this clock edge.
    down : In(1)
        The pulse is a depression (down) pulse; otherwise a potentiation (up) pulse.
    noise : In(signed(noise_bits + 1))
        The pulse's noise ``d``, in ``-(2**m - 1)..2**m - 1`` (only with ``noise_bits > 0``).
    load : In(1)
        Set the state to ``load_value`` on this clock edge; takes priority over ``pulse``.
    load_value : In(b)
        A level in ``0..2**b - 1``.
    state : Out(b)
        The level, 0 after reset.

    Latency: the state moves on the clock edge of its pulse or load, one per cycle.
    """

    def __init__(self, tables: StepTables, noise_bits: int = 0):
        try:
            self.tables = check_tables(tables)
            self.noise_bits = check_int(
                f"noise_bits (state_bits={self.tables.state_bits})", noise_bits, 0,
                self.tables.state_bits)
        except (TypeError, ValueError):
            # A component refused at construction was never meant to be elaborated.
            self._MustUse__silence = True
            raise
        self.state_bits = self.tables.state_bits
        ports = {
            "pulse": In(1),
            "down": In(1),
            "load": In(1),
            "load_value": In(self.state_bits),
            "state": Out(self.state_bits),
        }
        if self.noise_bits:
            ports["noise"] = In(signed(self.noise_bits + 1))
        super().__init__(ports)

    def elaborate(self, platform) -> Module:
        m = Module()
        noise = self.noise if self.noise_bits else None
        with m.If(self.load):
            m.d.sync += self.state.eq(self.load_value)
        with m.Elif(self.pulse):
            m.d.sync += self.state.eq(pulse_step(self.state, self.down, noise, self.tables))
        return m


class Lfsr(wiring.Component):
    """A Fibonacci LFSR that advances ``steps`` shifts per enabled cycle, unrolled.

    One shift feeds the XOR of the tap bits (:data:`hilt.quant.lfsr.LFSR_TAPS`, 1-indexed
    from the least significant bit) into bit 0 of the register shifted left, exactly as
    :func:`hilt.quant.lfsr.lfsr_advance`.

    Parameters
    ----------
    width : int
        Register width, one of the keys of ``LFSR_TAPS``.
    seed : int
        The state after reset, ``1..2**width - 1`` (an LFSR never holds 0).
    steps : int
        Shifts per advance, at least 1.

    Ports
    -----
    advance : In(1)
        Take ``next`` on this clock edge.
    value : Out(width)
        The register.
    next : Out(width)
        Combinationally, the register ``steps`` shifts on: what an advance stores, so a
        consumer can use the advanced state in the cycle that advances it.
    """

    def __init__(self, width: int, seed: int, steps: int):
        try:
            self.width = check_lfsr_width("width", width)
            self.seed = check_int(f"seed (width={width})", seed, 1, (1 << width) - 1)
            self.steps = check_int("steps", steps, 1)
        except (TypeError, ValueError):
            self._MustUse__silence = True
            raise
        super().__init__({
            "advance": In(1),
            "value": Out(width, init=seed),
            "next": Out(width),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        # A signal per shift keeps the simulator's expressions linear in `steps`.
        state = self.value
        for step in range(self.steps):
            feedback = 0
            for tap in LFSR_TAPS[self.width]:
                feedback ^= state[tap - 1]
            shifted = Signal(self.width, name=f"shift{step + 1}")
            m.d.comb += shifted.eq(Cat(feedback, state[:-1]))
            state = shifted
        m.d.comb += self.next.eq(state)
        with m.If(self.advance):
            m.d.sync += self.value.eq(self.next)
        return m
