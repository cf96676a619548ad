"""The board's protocol engine: UART, frame layer, dispatcher and targets in one design.

:class:`FrameDevice` is the device without its line: wire bytes in on a stream, wire
bytes out on a stream (:class:`~hilt.firmware.dispatcher.RequestReceiver`, then the
:class:`~hilt.firmware.dispatcher.Dispatcher` with its targets, then
:class:`~hilt.firmware.framing.FrameSender`), which simulates fast.
:class:`FirmwareTop` puts it behind the 8N1 UART pins, with a receive FIFO in front of
it: the UART cannot hold the line, so bytes that arrive while the dispatcher executes a
command or sends a response wait there. Its depth is the ``rx_buffer`` the capability
record announces, and a host keeps no more request bytes than that in flight.

:func:`capability_record` builds the IDENTIFY payload both take.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hilt.firmware.dispatcher import Dispatcher, RequestReceiver, capability_fields
from hilt.firmware.framing import FrameSender
from hilt.firmware.uart import MIN_DIVISOR, Uart
from hilt.hdl.params import check_int
from hilt.host.protocol import spec

RX_BUFFER_DEFAULT = 512
"""Bytes of receive FIFO: one iCE40 block RAM, about two full frames at max_payload 256."""


class Described(Protocol):
    """A target that can give its capability entry (without the id)."""

    def describe(self) -> dict[str, Any]: ...


def capability_record(targets: Mapping[int, Described] | Sequence[Described], *, board: str,
                      build: str, max_payload: int, baud: int,
                      rx_buffer: int | None = None) -> bytes:
    """The IDENTIFY payload: compact UTF-8 JSON with the protocol's required fields.

    ``build`` identifies the bitstream (a digest of its sources, say) and ``board`` the
    board; ``targets`` are numbered by id like the dispatcher's, each entry its
    ``describe()`` with the id first. The bytes equal those of the host's
    :class:`~hilt.host.protocol.codec.Capabilities` for the same record, so a reference
    device built with the same arguments identifies itself identically.
    """
    numbered = dict(targets) if isinstance(targets, Mapping) else dict(enumerate(targets))
    for name, value in (("board", board), ("build", build)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty str, got {value!r}")
    values = {
        "protocol": spec.PROTOCOL_VERSION,
        "build": build,
        "board": board,
        "max_payload": check_int("max_payload", max_payload, 1, spec.MAX_PAYLOAD_CEILING),
        "baud": check_int("baud", baud, 1),
        "targets": [{"id": i, **target.describe()} for i, target in sorted(numbered.items())],
    }
    record = {key: values[key] for key in spec.CAPABILITY_FIELDS}
    if rx_buffer is not None:
        record["rx_buffer"] = check_int("rx_buffer", rx_buffer, 1)
    payload = json.dumps(record, separators=(",", ":")).encode("utf-8")
    if len(payload) > spec.MAX_PAYLOAD_CEILING:
        raise ValueError(f"the capability record is {len(payload)} bytes, more than the "
                         f"protocol's {spec.MAX_PAYLOAD_CEILING}")
    return payload


class FrameDevice(wiring.Component):
    """The device from wire bytes to wire bytes, without the UART.

    Parameters
    ----------
    targets, capability, max_payload
        As :class:`~hilt.firmware.dispatcher.Dispatcher` takes them.

    Attributes
    ----------
    rx : In(stream.Signature(8))
        Bytes from the host (COBS frames and delimiters).
    tx : Out(stream.Signature(8))
        Bytes to the host: one response frame per request frame.
    """

    def __init__(self, targets: Mapping[int, wiring.Component] | Sequence[wiring.Component],
                 capability: bytes, *, max_payload: int):
        try:
            self.dispatcher = Dispatcher(targets, capability, max_payload)
        except (TypeError, ValueError):
            self._MustUse__silence = True
            raise
        self.max_payload = max_payload
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.receiver = receiver = RequestReceiver(self.max_payload)
        m.submodules.dispatcher = self.dispatcher
        m.submodules.sender = sender = FrameSender()
        wiring.connect(m, wiring.flipped(self.rx), receiver.encoded)
        wiring.connect(m, receiver.body, self.dispatcher.request)
        wiring.connect(m, self.dispatcher.response, sender.body)
        wiring.connect(m, sender.encoded, wiring.flipped(self.tx))
        return m


class FirmwareTop(wiring.Component):
    """The protocol engine on a board: UART pins, receive FIFO, :class:`FrameDevice`.

    Parameters
    ----------
    targets : mapping of int to component, or sequence of components
        The targets by id (see :class:`~hilt.firmware.dispatcher.Dispatcher`).
    capability : bytes
        The capability record (see :func:`capability_record`); its ``max_payload``,
        ``rx_buffer`` and target ids must be this design's.
    divisor : int
        Clock cycles per UART bit (see :class:`~hilt.firmware.uart.Uart`).
    max_payload : int
        The device's MAX_PAYLOAD, 1..MAX_PAYLOAD_CEILING.
    rx_buffer : int
        Depth of the receive FIFO in bytes, at least 1.

    Attributes
    ----------
    rx : In(1)
        Serial input from the host, idle high.
    tx : Out(1)
        Serial output to the host, idle high.
    framing_errors, overruns : Out(8)
        The UART receiver's saturating error counters; an overrun means the host had
        more than ``rx_buffer`` bytes in flight.
    """

    def __init__(self, targets: Mapping[int, wiring.Component] | Sequence[wiring.Component],
                 capability: bytes, *, divisor: int, max_payload: int,
                 rx_buffer: int = RX_BUFFER_DEFAULT):
        try:
            self.divisor = check_int("divisor", divisor, MIN_DIVISOR)
            self.rx_buffer = check_int("rx_buffer", rx_buffer, 1)
            if not isinstance(capability, bytes | bytearray):
                raise TypeError(f"capability must be bytes, got {type(capability).__name__}")
            announced = capability_fields(capability).get("rx_buffer")
            if announced != rx_buffer:
                raise ValueError(f"the capability record announces rx_buffer {announced!r}, "
                                 f"the receive FIFO holds {rx_buffer}")
            self.device = FrameDevice(targets, capability, max_payload=max_payload)
        except (TypeError, ValueError):
            self._MustUse__silence = True
            raise
        self.max_payload = max_payload
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "framing_errors": Out(8),
            "overruns": Out(8),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.uart = uart = Uart(self.divisor)
        m.submodules.rx_fifo = fifo = SyncFIFOBuffered(width=8, depth=self.rx_buffer)
        m.submodules.device = device = self.device
        m.d.comb += [
            uart.rx.eq(self.rx),
            self.tx.eq(uart.tx),
            self.framing_errors.eq(uart.framing_errors),
            self.overruns.eq(uart.overruns),
            fifo.w_data.eq(uart.rx_data.payload),
            fifo.w_en.eq(uart.rx_data.valid),
            uart.rx_data.ready.eq(fifo.w_rdy),
            device.rx.payload.eq(fifo.r_data),
            device.rx.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(device.rx.ready),
        ]
        wiring.connect(m, device.tx, uart.tx_data)
        return m
