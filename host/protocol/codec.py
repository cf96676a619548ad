"""Frames to bytes and back: CRC-16/XMODEM, COBS stuffing and a streaming decoder.

:func:`encode_frame` and :func:`decode_body` are the two halves of one frame; a
:class:`FrameDecoder` cuts an arbitrary byte stream into frames, reports what it could
not decode as :class:`FrameError` values (it never raises on line noise) and holds at
most one maximal encoded frame in memory. :class:`Capabilities` is the IDENTIFY record.
"""

from __future__ import annotations

import binascii
import json
import struct
from dataclasses import dataclass, field
from typing import Any

from cobs import cobs

from . import spec

_HEADER = struct.Struct(spec.HEADER_FORMAT)
_CRC = struct.Struct(spec.CRC_FORMAT)


class FrameError(ValueError):
    """A body or wire run that is not a valid frame; ``status`` says which check failed.

    ``seq`` is the first byte of the body when there was one (unreliable: the frame was
    damaged), so that a device can echo it in its ERROR frame.
    """

    def __init__(self, status: spec.Status, message: str, seq: int | None = None) -> None:
        super().__init__(f"{status.name}: {message}")
        self.status = status
        self.seq = seq


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame; ``cmd`` is the raw byte (a response has ``RESPONSE_FLAG`` set)."""

    seq: int
    cmd: int
    status: int
    payload: bytes = b""

    @property
    def is_response(self) -> bool:
        return bool(self.cmd & spec.RESPONSE_FLAG)

    @property
    def command(self) -> int:
        """The command code without the response flag."""
        return self.cmd & ~spec.RESPONSE_FLAG


def crc16(data: bytes) -> int:
    """CRC-16/XMODEM of ``data`` (the protocol's checksum)."""
    return binascii.crc_hqx(data, spec.CRC_INITIAL)


def _check_byte(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise ValueError(f"{name} must be an int in 0..255, got {value!r}")
    return value


def max_body_size(max_payload: int = spec.MAX_PAYLOAD_CEILING) -> int:
    """The largest body a receiver with this ``max_payload`` accepts."""
    return spec.HEADER_SIZE + max_payload + spec.CRC_SIZE


def max_wire_size(max_payload: int = spec.MAX_PAYLOAD_CEILING) -> int:
    """The largest frame on the wire (COBS worst case plus the delimiter)."""
    return cobs.max_encoded_length(max_body_size(max_payload)) + len(spec.DELIMITER)


def check_max_payload(max_payload: object, name: str = "max_payload") -> int:
    """``max_payload`` if it is an int in 1..MAX_PAYLOAD_CEILING, else ValueError."""
    if (isinstance(max_payload, bool) or not isinstance(max_payload, int)
            or not 1 <= max_payload <= spec.MAX_PAYLOAD_CEILING):
        raise ValueError(f"{name} must be an int in 1..{spec.MAX_PAYLOAD_CEILING}, "
                         f"got {max_payload!r}")
    return max_payload


def encode_frame(seq: int, cmd: int, status: int = spec.Status.OK,
                 payload: bytes = b"") -> bytes:
    """The wire bytes of one frame: COBS(header | payload | CRC) and the delimiter."""
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise ValueError(f"payload must be bytes, got {type(payload).__name__}")
    if len(payload) > spec.MAX_PAYLOAD_CEILING:
        raise ValueError(f"payload is {len(payload)} bytes; the protocol's ceiling is "
                         f"{spec.MAX_PAYLOAD_CEILING}")
    body = _HEADER.pack(_check_byte("seq", seq), _check_byte("cmd", cmd),
                        _check_byte("status", status), len(payload)) + bytes(payload)
    return cobs.encode(body + _CRC.pack(crc16(body))) + spec.DELIMITER


def decode_body(body: bytes, max_payload: int = spec.MAX_PAYLOAD_CEILING) -> Frame:
    """The frame in a COBS-decoded ``body``; FrameError if any check of the spec fails."""
    seq = body[0] if body else None
    if len(body) < spec.MIN_BODY:
        raise FrameError(spec.Status.BAD_FRAME,
                         f"body is {len(body)} bytes, less than the {spec.MIN_BODY}-byte "
                         f"minimum (header and CRC)", seq)
    if len(body) > max_body_size(max_payload):
        raise FrameError(spec.Status.TOO_LONG,
                         f"body is {len(body)} bytes, more than the {max_body_size(max_payload)}"
                         f" a {max_payload}-byte payload allows", seq)
    content = body[:-spec.CRC_SIZE]
    (received,) = _CRC.unpack_from(body, len(content))
    computed = crc16(content)
    if received != computed:
        raise FrameError(spec.Status.BAD_CRC,
                         f"CRC is {received:#06x}, contents give {computed:#06x}", seq)
    seq, cmd, status, length = _HEADER.unpack_from(content)
    if length != len(content) - spec.HEADER_SIZE:
        raise FrameError(spec.Status.BAD_FRAME,
                         f"length field says {length} payload bytes, the body holds "
                         f"{len(content) - spec.HEADER_SIZE}", seq)
    return Frame(seq, cmd, status, bytes(content[spec.HEADER_SIZE:]))


def decode_frame(wire: bytes, max_payload: int = spec.MAX_PAYLOAD_CEILING) -> Frame:
    """The frame in one COBS-encoded run, with or without its trailing delimiter."""
    if wire.endswith(spec.DELIMITER):
        wire = wire[:-len(spec.DELIMITER)]
    try:
        body = cobs.decode(wire)
    except cobs.DecodeError as exc:
        raise FrameError(spec.Status.BAD_FRAME, f"COBS decoding failed: {exc}") from None
    return decode_body(body, max_payload)


class FrameDecoder:
    """Cuts a byte stream into frames; resynchronises on every delimiter.

    :meth:`feed` takes chunks of any size and returns, in order, the frames and the
    :class:`FrameError` values completed by that chunk. A run longer than the largest
    valid encoded frame is reported once as TOO_LONG and dropped up to the next
    delimiter, so the decoder never holds more than :attr:`limit` bytes.
    """

    def __init__(self, max_payload: int = spec.MAX_PAYLOAD_CEILING) -> None:
        self.max_payload = check_max_payload(max_payload)
        self.limit = max_wire_size(self.max_payload) - len(spec.DELIMITER)
        self._pending = bytearray()
        self._discarding = False

    @property
    def buffered(self) -> int:
        """Bytes held of a frame not yet complete."""
        return len(self._pending)

    def clear(self) -> None:
        """Forget any partial frame, as after a power cycle."""
        self._pending.clear()
        self._discarding = False

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        runs = data.split(spec.DELIMITER)
        out: list[Frame | FrameError] = []
        for run in runs[:-1]:
            self._complete(run, out)
        tail = runs[-1]
        if self._discarding:
            return out
        if len(self._pending) + len(tail) > self.limit:
            seq = _peek_seq(bytes(self._pending[:2]) + tail[:2])
            self._pending.clear()
            self._discarding = True
            out.append(FrameError(spec.Status.TOO_LONG,
                                  f"more than {self.limit} bytes without a delimiter", seq))
        else:
            self._pending += tail
        return out

    def _complete(self, run: bytes, out: list[Frame | FrameError]) -> None:
        if self._discarding:
            self._discarding = False
            return
        if self._pending:
            self._pending += run
            run = bytes(self._pending)
            self._pending.clear()
        if not run:
            return
        if len(run) > self.limit:
            out.append(FrameError(spec.Status.TOO_LONG,
                                  f"run of {len(run)} bytes, more than the {self.limit} "
                                  f"a frame can take", _peek_seq(run)))
            return
        try:
            out.append(decode_frame(run, self.max_payload))
        except FrameError as exc:
            out.append(exc)


def _peek_seq(run: bytes) -> int | None:
    """The first body byte of a COBS run that will not be decoded (for an ERROR frame)."""
    if len(run) < 2:
        return None
    return 0 if run[0] == 1 else run[1]


def _require(record: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"capability record: {key!r} must be "
                         f"{getattr(kind, '__name__', kind)}, got {value!r}")
    return value


@dataclass(frozen=True)
class Capabilities:
    """The IDENTIFY record: what the device is and what its targets take.

    ``record`` is the whole JSON object, including any field this host does not know.
    """

    protocol: int
    build: str
    board: str
    max_payload: int
    baud: int
    targets: tuple[dict[str, Any], ...]
    rx_buffer: int | None = None
    record: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_payload(cls, payload: bytes) -> Capabilities:
        """Parse and check an IDENTIFY response; ValueError naming what is wrong."""
        try:
            record = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"capability record is not UTF-8 JSON ({exc}): "
                             f"{payload[:64]!r}") from None
        except RecursionError:
            raise ValueError(f"capability record nests too deep to be read: "
                             f"{payload[:64]!r}") from None
        if not isinstance(record, dict):
            raise ValueError(f"capability record must be a JSON object, got {record!r:.64}")
        missing = [key for key in spec.CAPABILITY_FIELDS if key not in record]
        if missing:
            raise ValueError(f"capability record lacks {missing}: {payload[:200]!r}")
        targets = _require(record, "targets", list)
        if not all(isinstance(t, dict) and isinstance(t.get("id"), int) for t in targets):
            raise ValueError(f"capability record: every target must be an object with an "
                             f"int 'id', got {targets!r:.200}")
        max_payload = _require(record, "max_payload", int)
        try:
            check_max_payload(max_payload)
        except ValueError as exc:
            raise ValueError(f"capability record: {exc}") from None
        rx_buffer = record.get("rx_buffer")
        if rx_buffer is not None:
            _require(record, "rx_buffer", int)
        return cls(protocol=_require(record, "protocol", int),
                   build=_require(record, "build", str), board=_require(record, "board", str),
                   max_payload=max_payload, baud=_require(record, "baud", int),
                   targets=tuple(targets), rx_buffer=rx_buffer, record=record)

    def to_payload(self) -> bytes:
        """The record as the device sends it."""
        record = dict(self.record)
        record.update(protocol=self.protocol, build=self.build, board=self.board,
                      max_payload=self.max_payload, baud=self.baud,
                      targets=list(self.targets))
        if self.rx_buffer is not None:
            record["rx_buffer"] = self.rx_buffer
        return json.dumps(record, separators=(",", ":")).encode("utf-8")

    def target(self, target_id: int) -> dict[str, Any]:
        """The record of one target; ValueError listing the ids there are."""
        for entry in self.targets:
            if entry["id"] == target_id:
                return entry
        raise ValueError(f"target must be one of {[t['id'] for t in self.targets]}, "
                         f"got {target_id!r}")
