"""The frame layer in gateware: COBS decoding and encoding, frame checks, CRC-16.

On the wire a frame is ``COBS(body)`` then one delimiter byte, and a body is header,
payload and a big-endian CRC-16/XMODEM of the two. Everything protocol-specific here
(the delimiter, the header layout, the CRC algorithm, the size limits, the status codes
and the order of the checks) comes from :mod:`hilt.host.protocol.spec`, so the gateware
follows the protocol's one definition, and a receive path reaches the same verdict on
every run of bytes as the host's codec.

Receive path: bytes from the UART -> :class:`CobsDecoder` -> :class:`FrameChecker` ->
the command dispatcher. Send path: the dispatcher's response body (header and payload)
-> :class:`CrcAppender` -> :class:`CobsEncoder` -> the UART. :class:`FrameReceiver`
and :class:`FrameSender` are the two paths as single components.

Beats
-----
Body bytes travel one per beat, with ``last`` set on the final byte of a frame:

* :data:`BODY_BEAT` ``{"data": 8, "last": 1}``, what the send path takes.
* :data:`RECEIVED_BEAT` ``{"data": 8, "last": 1, "status": 8}``, what the receive path
  emits, CRC bytes included. ``status`` is a protocol status code, ``OK`` on every
  beat but possibly the last: a last beat with another status (``BAD_FRAME``,
  ``TOO_LONG``, ``BAD_CRC``) ends a bad frame, whose bytes the dispatcher must not act
  on; that beat's ``data`` is not part of the body.

Ports are plain ``unsigned`` of these layouts' sizes (as in
:class:`~hilt.hdl.threshold_array.BinaryLayerArray`), so the components connect to one
another directly; a design reads a beat with ``data.View(BODY_BEAT, port.payload)``.

No byte sequence stops any of them: every run of bytes between delimiters ends in
exactly one last beat, and a run too long for any frame is cut off and reported
without waiting for its delimiter.
"""

from __future__ import annotations

import struct

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import crc, data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hilt.hdl.params import check_int
from hilt.host.protocol import spec

DELIMITER = spec.DELIMITER[0]
OK = int(spec.Status.OK)
BAD_CRC = int(spec.Status.BAD_CRC)
BAD_FRAME = int(spec.Status.BAD_FRAME)
TOO_LONG = int(spec.Status.TOO_LONG)
MIN_BODY = spec.MIN_BODY
CRC_ALGORITHM = getattr(crc.catalog, spec.CRC_CATALOG_NAME)

# Where the header's little-endian payload length sits in a body, and its size.
_LENGTH_FIELD = spec.HEADER_FIELDS.index("length")
LENGTH_OFFSET = struct.calcsize(spec.HEADER_FORMAT[:1 + _LENGTH_FIELD])
LENGTH_SIZE = struct.calcsize(spec.HEADER_FORMAT[0] + spec.HEADER_FORMAT[1 + _LENGTH_FIELD])

COBS_BLOCK = 254
"""The most data bytes one COBS code byte can cover (code 0xFF)."""

BODY_BEAT = data.StructLayout({"data": 8, "last": 1})
RECEIVED_BEAT = data.StructLayout({"data": 8, "last": 1, "status": 8})


def max_body(max_payload: int) -> int:
    """The longest body a device with ``max_payload`` accepts: header, payload, CRC."""
    return spec.HEADER_SIZE + max_payload + spec.CRC_SIZE


def max_encoded(size: int) -> int:
    """The most bytes COBS turns ``size`` (at least 1) bytes into: one code byte per block."""
    return size + -(-size // COBS_BLOCK)


def _check_max_payload(max_payload: int) -> int:
    return check_int("max_payload", max_payload, 1, spec.MAX_PAYLOAD_CEILING)


class CobsDecoder(wiring.Component):
    """Decodes delimited COBS frames into body bytes, flagging bad and over-long frames.

    Each byte in yields at most one body byte; the decoder holds the latest one back
    until it knows whether the delimiter ends the frame there, so ``last`` rides on
    the body's final byte. A run of delimiters (no bytes between them) is idle line
    and yields nothing. Bad frames end in one beat with a status, decided as the host's
    codec decides them:

    * ``TOO_LONG`` as soon as a run of bytes without a delimiter grows longer than any
      COBS encoding of :attr:`max_body` bytes can be; the rest of the run is dropped.
    * ``BAD_FRAME``, at the delimiter, if the last COBS block is cut short by it.
    * ``TOO_LONG``, at the delimiter, if the run decodes to more than :attr:`max_body`
      bytes (the decoder stops passing bytes on at that point).
    * ``BAD_FRAME``, at the delimiter, if the run decodes to no bytes at all.

    Parameters
    ----------
    max_payload : int
        The device's MAX_PAYLOAD, 1..the protocol's ceiling; bodies up to
        :attr:`max_body` ``= header + max_payload + crc`` bytes pass.

    Attributes
    ----------
    encoded : In(stream.Signature(8))
        Bytes from the line, delimiters included.
    body : Out(stream.Signature(RECEIVED_BEAT.size))
        Decoded body bytes as :data:`RECEIVED_BEAT`.
    """

    def __init__(self, max_payload: int):
        try:
            self.max_payload = _check_max_payload(max_payload)
        except (TypeError, ValueError):
            self._MustUse__silence = True
            raise
        self.max_body = max_body(max_payload)
        self.max_run = max_encoded(self.max_body)
        super().__init__({
            "encoded": In(stream.Signature(8)),
            "body": Out(stream.Signature(RECEIVED_BEAT.size)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        byte = self.encoded.payload
        out = data.View(RECEIVED_BEAT, self.body.payload)

        held = Signal(8)                # the latest decoded byte, not yet emitted
        have = Signal()                 # whether `held` is one
        remaining = Signal(8)           # data bytes left in the current block
        zero_pending = Signal()         # the current block ends in an implied zero
        run = Signal(range(self.max_run + 1))         # bytes since the delimiter
        decoded = Signal(range(self.max_body + 2))    # saturates one past max_body
        discarding = Signal()           # the run was too long: drop it to the delimiter

        take = self.encoded.valid & self.encoded.ready
        m.d.comb += self.encoded.ready.eq(~self.body.valid | self.body.ready)
        with m.If(self.body.ready):
            m.d.sync += self.body.valid.eq(0)

        def emit(value, last, status) -> None:
            m.d.sync += [self.body.valid.eq(1), out.data.eq(value), out.last.eq(last),
                         out.status.eq(status)]

        with m.If(take & (byte == DELIMITER)):
            # After a run that was too long, or between two delimiters, nothing to end.
            with m.If(~discarding & (run != 0)):
                with m.If(remaining != 0):
                    emit(held, 1, BAD_FRAME)
                with m.Elif(decoded > self.max_body):
                    emit(held, 1, TOO_LONG)
                with m.Elif(~have):
                    emit(held, 1, BAD_FRAME)
                with m.Else():
                    emit(held, 1, OK)
            m.d.sync += [have.eq(0), remaining.eq(0), zero_pending.eq(0), run.eq(0),
                         decoded.eq(0), discarding.eq(0)]
        with m.Elif(take & ~discarding & (run == self.max_run)):
            emit(held, 1, TOO_LONG)
            m.d.sync += discarding.eq(1)
        with m.Elif(take & ~discarding):
            m.d.sync += run.eq(run + 1)
            # A code byte yields the previous block's implied zero; a data byte itself.
            is_code = remaining == 0
            with m.If(is_code):
                m.d.sync += [remaining.eq(byte - 1), zero_pending.eq(byte != 0xFF)]
            with m.Else():
                m.d.sync += remaining.eq(remaining - 1)
            with m.If(~is_code | zero_pending):
                with m.If(decoded == self.max_body):
                    m.d.sync += decoded.eq(self.max_body + 1)
                with m.Elif(decoded < self.max_body):
                    with m.If(have):
                        emit(held, 0, OK)
                    m.d.sync += [held.eq(Mux(is_code, 0, byte)), have.eq(1),
                                 decoded.eq(decoded + 1)]
        return m


class CobsEncoder(wiring.Component):
    """Stuffs body bytes into COBS and ends each frame with the delimiter.

    A COBS code byte gives the length of the block after it, so a block is gathered
    in a buffer of :data:`COBS_BLOCK` bytes (one block RAM on an FPGA) before its code
    byte can go out: the encoder takes a block's bytes one per cycle, then sends its
    code and bytes one per cycle. The output equals ``cobs.encode(body) + b"\\x00"``.

    Attributes
    ----------
    body : In(stream.Signature(BODY_BEAT.size))
        Body bytes as :data:`BODY_BEAT`, ``last`` on each frame's final byte.
    encoded : Out(stream.Signature(8))
        The stuffed bytes and delimiters, for the line.
    """

    def __init__(self):
        super().__init__({
            "body": In(stream.Signature(BODY_BEAT.size)),
            "encoded": Out(stream.Signature(8)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.buffer = buffer = Memory(shape=8, depth=COBS_BLOCK, init=[])
        write = buffer.write_port()
        read = buffer.read_port()
        beat = data.View(BODY_BEAT, self.body.payload)

        size = Signal(range(COBS_BLOCK + 1))   # bytes in the buffered block
        index = Signal(range(COBS_BLOCK))      # the buffered byte on the output
        ending = Signal()                      # the block ends the frame
        tail = Signal()                        # the body ended in a zero: add an empty block
        sent = self.encoded.valid & self.encoded.ready

        def after_block() -> None:
            m.d.sync += size.eq(0)
            with m.If(tail):
                m.next = "empty block"
            with m.Elif(ending):
                m.next = "delimiter"
            with m.Else():
                m.next = "fill"

        m.d.comb += [write.addr.eq(size), write.data.eq(beat.data)]
        with m.FSM():
            with m.State("fill"):
                m.d.comb += self.body.ready.eq(1)
                with m.If(self.body.valid):
                    with m.If(beat.data == 0):
                        m.d.sync += [ending.eq(beat.last), tail.eq(beat.last)]
                        m.next = "code"
                    with m.Else():
                        m.d.comb += write.en.eq(1)
                        m.d.sync += size.eq(size + 1)
                        with m.If(beat.last | (size == COBS_BLOCK - 1)):
                            m.d.sync += [ending.eq(beat.last), tail.eq(0)]
                            m.next = "code"
            with m.State("code"):
                # Fetch the block's first byte while its code byte goes out.
                m.d.comb += [self.encoded.valid.eq(1), self.encoded.payload.eq(size + 1),
                             read.addr.eq(0), read.en.eq(1)]
                with m.If(sent):
                    m.d.sync += index.eq(0)
                    with m.If(size == 0):
                        after_block()
                    with m.Else():
                        m.next = "data"
            with m.State("data"):
                more = index != size - 1
                m.d.comb += [self.encoded.valid.eq(1), self.encoded.payload.eq(read.data),
                             read.addr.eq(index + 1), read.en.eq(sent & more)]
                with m.If(sent):
                    m.d.sync += index.eq(index + 1)
                    with m.If(~more):
                        after_block()
            with m.State("empty block"):
                m.d.comb += [self.encoded.valid.eq(1), self.encoded.payload.eq(1)]
                with m.If(sent):
                    m.next = "delimiter"
            with m.State("delimiter"):
                m.d.comb += [self.encoded.valid.eq(1), self.encoded.payload.eq(DELIMITER)]
                with m.If(sent):
                    m.next = "fill"
        return m


def _crc_processor() -> crc.Processor:
    return CRC_ALGORITHM(data_width=8).create()


class FrameChecker(wiring.Component):
    """Checks each body's size, CRC-16 and length field, passing every beat through.

    Beats go through one register, CRC bytes included. The last beat of a frame that
    arrived with :data:`OK` leaves with the first failing check, in the protocol's
    order: ``BAD_FRAME`` if the body is shorter than :data:`MIN_BODY`; ``BAD_CRC`` if
    the CRC of the whole body, its own CRC included, is not the algorithm's residue;
    ``BAD_FRAME`` if the header's length field is not the payload's size. A last beat
    with another status (the decoder's verdict) keeps it.

    Attributes
    ----------
    body : In(stream.Signature(RECEIVED_BEAT.size))
        Body bytes from :class:`CobsDecoder`.
    checked : Out(stream.Signature(RECEIVED_BEAT.size))
        The same beats, the last one's status updated.
    """

    def __init__(self):
        super().__init__({
            "body": In(stream.Signature(RECEIVED_BEAT.size)),
            "checked": Out(stream.Signature(RECEIVED_BEAT.size)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.crc = checker = _crc_processor()
        beat = data.View(RECEIVED_BEAT, self.body.payload)
        out = data.View(RECEIVED_BEAT, self.checked.payload)

        longest = (1 << 8 * LENGTH_SIZE) - 1 + MIN_BODY  # what a length field can claim
        first = Signal(init=1)                  # the next beat starts a frame
        size = Signal(range(longest + 2))       # body bytes so far, saturating
        length = Signal(8 * LENGTH_SIZE)        # the header's length field
        held = Signal(RECEIVED_BEAT)
        take = self.body.valid & self.body.ready
        index = Mux(first, 0, size)             # the offset of the byte being taken

        m.d.comb += [
            self.body.ready.eq(~self.checked.valid | self.checked.ready),
            checker.data.eq(beat.data),
            checker.valid.eq(take),
            checker.start.eq(take & first),
        ]
        with m.If(self.checked.ready):
            m.d.sync += self.checked.valid.eq(0)
        with m.If(take):
            m.d.sync += [self.checked.valid.eq(1), held.eq(beat), first.eq(beat.last)]
            with m.If(index <= longest):
                m.d.sync += size.eq(index + 1)
            for k in range(LENGTH_SIZE):
                with m.If(index == LENGTH_OFFSET + k):
                    m.d.sync += length.word_select(k, 8).eq(beat.data)

        # The CRC register, the size and the length field already include the held beat.
        status = Mux(~held.last | (held.status != OK), held.status,
                     Mux(size < MIN_BODY, BAD_FRAME,
                         Mux(~checker.match_detected, BAD_CRC,
                             Mux(size != length + MIN_BODY, BAD_FRAME, OK))))
        m.d.comb += [out.data.eq(held.data), out.last.eq(held.last), out.status.eq(status)]
        return m


class CrcAppender(wiring.Component):
    """Appends the CRC-16 of each frame's bytes, big-endian, after its last byte.

    Bytes pass straight through (no register); after a frame's last byte the two CRC
    bytes follow, and ``last`` moves to the second of them.

    Attributes
    ----------
    body : In(stream.Signature(BODY_BEAT.size))
        Header and payload bytes, ``last`` on each frame's final byte.
    framed : Out(stream.Signature(BODY_BEAT.size))
        The same bytes, each frame followed by its CRC.
    """

    def __init__(self):
        super().__init__({
            "body": In(stream.Signature(BODY_BEAT.size)),
            "framed": Out(stream.Signature(BODY_BEAT.size)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.crc = generator = _crc_processor()
        beat = data.View(BODY_BEAT, self.body.payload)
        out = data.View(BODY_BEAT, self.framed.payload)
        first = Signal(init=1)
        take = self.body.valid & self.body.ready
        sent = self.framed.valid & self.framed.ready

        m.d.comb += [generator.data.eq(beat.data), generator.valid.eq(take),
                     generator.start.eq(take & first)]
        with m.FSM():
            with m.State("body"):
                m.d.comb += [
                    self.framed.valid.eq(self.body.valid),
                    self.body.ready.eq(self.framed.ready),
                    out.data.eq(beat.data),
                    out.last.eq(0),
                ]
                with m.If(take):
                    m.d.sync += first.eq(beat.last)
                    with m.If(beat.last):
                        m.next = "crc high"
            with m.State("crc high"):
                m.d.comb += [self.framed.valid.eq(1), out.data.eq(generator.crc[8:])]
                with m.If(sent):
                    m.next = "crc low"
            with m.State("crc low"):
                m.d.comb += [self.framed.valid.eq(1), out.data.eq(generator.crc[:8]),
                             out.last.eq(1)]
                with m.If(sent):
                    m.next = "body"
        return m


class FrameReceiver(wiring.Component):
    """The receive path: :class:`CobsDecoder` then :class:`FrameChecker`.

    Parameters
    ----------
    max_payload : int
        The device's MAX_PAYLOAD (see :class:`CobsDecoder`).

    Attributes
    ----------
    encoded : In(stream.Signature(8))
        Bytes from the line.
    body : Out(stream.Signature(RECEIVED_BEAT.size))
        Checked body bytes as :data:`RECEIVED_BEAT`, CRC bytes included.
    """

    def __init__(self, max_payload: int):
        try:
            self.max_payload = _check_max_payload(max_payload)
        except (TypeError, ValueError):
            self._MustUse__silence = True
            raise
        self.max_body = max_body(max_payload)
        super().__init__({
            "encoded": In(stream.Signature(8)),
            "body": Out(stream.Signature(RECEIVED_BEAT.size)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.decoder = decoder = CobsDecoder(self.max_payload)
        m.submodules.checker = checker = FrameChecker()
        wiring.connect(m, wiring.flipped(self.encoded), decoder.encoded)
        wiring.connect(m, decoder.body, checker.body)
        wiring.connect(m, checker.checked, wiring.flipped(self.body))
        return m


class FrameSender(wiring.Component):
    """The send path: :class:`CrcAppender` then :class:`CobsEncoder`.

    Attributes
    ----------
    body : In(stream.Signature(BODY_BEAT.size))
        Header and payload bytes, ``last`` on each frame's final byte.
    encoded : Out(stream.Signature(8))
        Stuffed frames with their delimiters, for the line.
    """

    def __init__(self):
        super().__init__({
            "body": In(stream.Signature(BODY_BEAT.size)),
            "encoded": Out(stream.Signature(8)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.appender = appender = CrcAppender()
        m.submodules.encoder = encoder = CobsEncoder()
        wiring.connect(m, wiring.flipped(self.body), appender.body)
        wiring.connect(m, appender.framed, encoder.body)
        wiring.connect(m, encoder.encoded, wiring.flipped(self.encoded))
        return m
