"""An 8N1 UART in plain Amaranth: a transmitter, a receiver and the pair.

Every bit lasts ``divisor`` clock cycles (baud = clock frequency / divisor), one start
bit (low), eight data bits least significant first, one stop bit (high); the line idles
high. Bytes move on :mod:`amaranth.lib.stream` ports of plain ``unsigned(8)`` payloads;
the line itself is a one-bit ``tx`` output or ``rx`` input, so a top level wires it
straight to a board pin.

The receiver passes ``rx`` through a two-flip-flop synchroniser, waits for the line to
go low, checks the start bit again half a bit later (a shorter glitch is ignored) and
samples every following bit in its middle. It looks for a new start bit right after
the middle of each stop bit, so every byte resynchronises it and a transmitter whose
clock runs a little fast is tolerated. A low stop bit is a framing error: the byte is
dropped, counted, and the receiver waits for the line to return high before it looks
for a start bit again, so a line held low (a break) counts one error and nothing else.
A byte completed while the previous one has not been taken is an overrun: the new byte
is dropped and counted. No line activity can stop the receiver: every state ends after
a fixed number of cycles or on the line going high.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from hilt.hdl.params import check_int

MIN_DIVISOR = 4
"""Fewest clock cycles per bit. The receiver samples each bit ``divisor // 2`` cycles
after it saw the start bit's edge, which it sees up to one cycle late, so at four
cycles a bit every sample stays at least one cycle clear of either edge of its bit."""

DATA_BITS = 8


def _check_divisor(divisor: int) -> int:
    return check_int("divisor", divisor, MIN_DIVISOR)


class UartTx(wiring.Component):
    """8N1 transmitter: takes bytes from ``data`` and shifts them out on ``tx``.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least :data:`MIN_DIVISOR`.

    Attributes
    ----------
    data : In(stream.Signature(8))
        The bytes to send. A byte is taken in the cycle the previous stop bit ends, so
        back-to-back bytes leave the line at exactly ``10 * divisor`` cycles each.
    tx : Out(1)
        The serial line, high when idle.
    """

    def __init__(self, divisor: int):
        try:
            self.divisor = _check_divisor(divisor)
        except (TypeError, ValueError):
            self._MustUse__silence = True
            raise
        super().__init__({
            "data": In(stream.Signature(8)),
            "tx": Out(1, init=1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        # The bits still to send after the one on the line (data then stop), how many
        # they are, and the cycles left of the bit on the line. The transmitter is idle
        # when the last bit (the stop bit, high) has run its full time.
        shift = Signal(DATA_BITS + 1)
        pending = Signal(range(DATA_BITS + 2))
        timer = Signal(range(self.divisor))
        bit_done = timer == 0
        idle = bit_done & (pending == 0)

        m.d.comb += self.data.ready.eq(idle)
        with m.If(~bit_done):
            m.d.sync += timer.eq(timer - 1)
        with m.Elif(pending != 0):
            m.d.sync += [
                self.tx.eq(shift[0]),
                shift.eq(shift >> 1),
                pending.eq(pending - 1),
                timer.eq(self.divisor - 1),
            ]
        with m.Elif(self.data.valid):
            m.d.sync += [
                self.tx.eq(0),
                shift.eq(Cat(self.data.payload, 1)),
                pending.eq(DATA_BITS + 1),
                timer.eq(self.divisor - 1),
            ]
        return m


class UartRx(wiring.Component):
    """8N1 receiver: samples ``rx`` and emits each correctly framed byte on ``data``.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least :data:`MIN_DIVISOR`.
    counter_width : int
        Width of the two error counters, 1..32; they saturate at ``2**counter_width - 1``.

    Attributes
    ----------
    rx : In(1)
        The serial line, idle high; synchronised inside, so it may come from a pin.
    data : Out(stream.Signature(8))
        Received bytes. One byte waits here while the next one arrives.
    framing_errors : Out(counter_width)
        Bytes dropped because their stop bit was low.
    overruns : Out(counter_width)
        Bytes dropped because the previous byte had not been taken from ``data``.
    """

    def __init__(self, divisor: int, counter_width: int = 8):
        try:
            self.divisor = _check_divisor(divisor)
            self.counter_width = check_int("counter_width", counter_width, 1, 32)
        except (TypeError, ValueError):
            self._MustUse__silence = True
            raise
        super().__init__({
            "rx": In(1, init=1),
            "data": Out(stream.Signature(8)),
            "framing_errors": Out(counter_width),
            "overruns": Out(counter_width),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        line = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, line, init=1)

        timer = Signal(range(self.divisor))
        bits = Signal(range(DATA_BITS))
        shift = Signal(DATA_BITS)
        sample = timer == 0

        def saturating_increment(counter: Signal) -> None:
            with m.If(counter != (1 << self.counter_width) - 1):
                m.d.sync += counter.eq(counter + 1)

        with m.If(self.data.ready):
            m.d.sync += self.data.valid.eq(0)
        with m.If(~sample):
            m.d.sync += timer.eq(timer - 1)

        with m.FSM():
            with m.State("idle"), m.If(~line):
                m.d.sync += timer.eq(self.divisor // 2 - 1)
                m.next = "start"
            with m.State("start"), m.If(sample):
                m.d.sync += [timer.eq(self.divisor - 1), bits.eq(0)]
                # A start bit that is high again by its middle was a glitch.
                with m.If(line):
                    m.next = "idle"
                with m.Else():
                    m.next = "data"
            with m.State("data"), m.If(sample):
                m.d.sync += [
                    shift.eq(Cat(shift[1:], line)),
                    bits.eq(bits + 1),
                    timer.eq(self.divisor - 1),
                ]
                with m.If(bits == DATA_BITS - 1):
                    m.next = "stop"
            with m.State("stop"), m.If(sample):
                with m.If(~line):
                    saturating_increment(self.framing_errors)
                    m.next = "break"
                with m.Else():
                    with m.If(self.data.valid & ~self.data.ready):
                        saturating_increment(self.overruns)
                    with m.Else():
                        m.d.sync += [self.data.payload.eq(shift),
                                     self.data.valid.eq(1)]
                    m.next = "idle"
            with m.State("break"), m.If(line):
                m.next = "idle"
        return m


class Uart(wiring.Component):
    """An 8N1 transmitter and receiver sharing one ``divisor``.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least :data:`MIN_DIVISOR`.
    counter_width : int
        Width of the receiver's error counters (see :class:`UartRx`).

    Attributes
    ----------
    tx_data : In(stream.Signature(8))
        Bytes to send on ``tx``.
    rx_data : Out(stream.Signature(8))
        Bytes received on ``rx``.
    tx : Out(1)
        Serial output, idle high.
    rx : In(1)
        Serial input, idle high.
    framing_errors, overruns : Out(counter_width)
        The receiver's saturating error counters.
    """

    def __init__(self, divisor: int, counter_width: int = 8):
        try:
            self.divisor = _check_divisor(divisor)
            self.counter_width = check_int("counter_width", counter_width, 1, 32)
        except (TypeError, ValueError):
            self._MustUse__silence = True
            raise
        super().__init__({
            "tx_data": In(stream.Signature(8)),
            "rx_data": Out(stream.Signature(8)),
            "tx": Out(1, init=1),
            "rx": In(1, init=1),
            "framing_errors": Out(counter_width),
            "overruns": Out(counter_width),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.transmitter = transmitter = UartTx(self.divisor)
        m.submodules.receiver = receiver = UartRx(self.divisor, self.counter_width)
        wiring.connect(m, wiring.flipped(self.tx_data), transmitter.data)
        wiring.connect(m, receiver.data, wiring.flipped(self.rx_data))
        m.d.comb += [
            self.tx.eq(transmitter.tx),
            receiver.rx.eq(self.rx),
            self.framing_errors.eq(receiver.framing_errors),
            self.overruns.eq(receiver.overruns),
        ]
        return m
