"""hilt wire protocol v1 as data: the one definition the host and the gateware both import.

Nothing here computes anything on the wire; :mod:`.codec` does that on the host, and the
firmware builds its frame decoder and dispatcher from these constants. This module
imports only the standard library so that gateware can import it cheaply.

Framing
    A frame on the wire is COBS(body) followed by :data:`DELIMITER`. An empty run
    between two delimiters is idle line, not a frame: a sender may put a delimiter first
    to flush whatever partial frame the receiver holds (the host does before SYNC).

Body
    header (:data:`HEADER_FORMAT`: seq u8, cmd u8, status u8, length u16 LE) | payload |
    CRC (:data:`CRC_FORMAT`, big-endian) over header + payload. A receiver checks, in
    this order: the body is at least :data:`MIN_BODY` bytes (BAD_FRAME), at most the
    header, its max payload and the CRC (TOO_LONG), the CRC (BAD_CRC), then that the
    length field equals the payload's size (BAD_FRAME).

Direction
    Requests carry a command code below :data:`RESPONSE_FLAG`; every frame the device
    sends has :data:`RESPONSE_FLAG` set in ``cmd`` (a response echoes the request's seq
    and its cmd with the flag; an error frame is ``Command.ERROR | RESPONSE_FLAG``), so
    a host on a link that echoes (a loopback, a half-duplex adapter, a terminal in echo
    mode) never takes its own request for an answer.

Sequencing
    See :data:`SEQUENCE_EXEMPT`, :data:`STATE_CHANGING` and :data:`DUPLICATE_WINDOW`. A
    command that ends with any status other than OK applied nothing and does not advance
    the device's expected seq, so a retry of it fails the same way, and the frames the
    host pipelined behind it are answered OUT_OF_SEQUENCE and applied neither.

The device's order of decisions for a run ending in a delimiter
    1. An empty run: nothing. A run it cannot decode (COBS, the body checks above, a
       body longer than its max payload allows, which it may report before the
       delimiter arrives): an error frame with that status, empty payload, seq = the
       first body byte as received (0 if none).
    2. ``cmd`` not in :data:`HOST_COMMANDS` (a response flag set, ERROR, an unknown
       code): UNKNOWN_COMMAND. ``status`` not 0: BAD_FRAME. Both whatever the session.
    3. IDENTIFY: answer the capability record (BAD_PAYLOAD if the request has a payload).
       SYNC: BAD_PAYLOAD if it has a payload, else synced, expected = seq + 1, OK.
    4. Not synced: NOT_SYNCED.
    5. seq == expected: execute; OK advances expected. seq in the DUPLICATE_WINDOW
       values before expected: a state-changing command is answered OK, empty, and not
       applied; any other is executed again. Otherwise OUT_OF_SEQUENCE with expected.
    6. Executing: BAD_PAYLOAD for a payload of the wrong shape (READ count outside
       1..max_payload included), BAD_TARGET, then whatever the target refuses
       (BAD_ADDRESS, BAD_PAYLOAD).
"""

from __future__ import annotations

import struct
from enum import IntEnum

PROTOCOL_VERSION = 1
"""The ``protocol`` field of the capability record."""

DELIMITER = b"\x00"
"""Ends every COBS-encoded frame on the wire."""

HEADER_FORMAT = "<BBBH"
"""seq, cmd, status, payload length (little-endian u16)."""
HEADER_FIELDS = ("seq", "cmd", "status", "length")
HEADER_SIZE = struct.calcsize(HEADER_FORMAT)

CRC_FORMAT = ">H"
"""The CRC follows the payload, most significant byte first."""
CRC_SIZE = struct.calcsize(CRC_FORMAT)

# CRC-16/XMODEM. The name is the attribute of amaranth.lib.crc.catalog that gateware uses;
# the parameters are spelled out so that anything else can check itself against them.
CRC_CATALOG_NAME = "CRC16_XMODEM"
CRC_WIDTH = 16
CRC_POLYNOMIAL = 0x1021
CRC_INITIAL = 0x0000
CRC_REFLECT_INPUT = False
CRC_REFLECT_OUTPUT = False
CRC_XOR_OUTPUT = 0x0000
CRC_CHECK = 0x31C3
"""The CRC of the ASCII bytes ``123456789``, the catalogue's check value."""

MAX_PAYLOAD_CEILING = 4096
"""No device may announce a larger ``max_payload``; no frame may carry more."""
MIN_BODY = HEADER_SIZE + CRC_SIZE
MAX_BODY = HEADER_SIZE + MAX_PAYLOAD_CEILING + CRC_SIZE

SEQ_MODULUS = 256
DUPLICATE_WINDOW = 128
"""A seq in the this many values before the device's expected one is a retry."""
WINDOW_DEFAULT = 8
WINDOW_MAX = 64
"""Frames a host may have in flight: well inside the duplicate window, so any frame the
host retries is recognised as one."""
RETRIES_DEFAULT = 5
RETRIES_MAX = 1000
"""Retransmissions a host may allow one frame; more only hides a dead link."""
TIMEOUT_MAX_S = 3600.0
"""The longest wait for an answer a host may ask for, in seconds."""

DEFAULT_BAUD = 3_000_000
"""The line rate boards use unless their capability record says otherwise (8N1)."""
MIN_BAUD = 300
MAX_BAUD = 100_000_000
"""The line rates a host accepts: below 300 baud one largest frame takes minutes."""

RESPONSE_FLAG = 0x80
"""Set in ``cmd`` of every frame the device sends."""


class Command(IntEnum):
    """Command codes (the ``cmd`` byte of a request)."""

    IDENTIFY = 0x01
    WRITE = 0x02
    READ = 0x03
    FORWARD = 0x04
    PULSE = 0x05
    RESET = 0x06
    SYNC = 0x07
    ERROR = 0x7F
    """Device to host only: a frame the device could not attribute (bad CRC, framing)."""


class Status(IntEnum):
    """Status codes (the ``status`` byte: 0 in requests, the outcome in responses)."""

    message: str

    def __new__(cls, value: int, message: str) -> Status:
        member = int.__new__(cls, value)
        member._value_ = value
        member.message = message
        return member

    OK = 0, "ok"
    BAD_CRC = 1, "the frame's CRC did not match its contents"
    BAD_FRAME = 2, "the frame was malformed (COBS, size or length field)"
    TOO_LONG = 3, "the frame was longer than the receiver accepts"
    UNKNOWN_COMMAND = 4, "the command code is not one the device knows"
    BAD_TARGET = 5, "no target has that id"
    BAD_ADDRESS = 6, "the address range is outside the target"
    BAD_PAYLOAD = 7, "the payload has the wrong size or contents for the command"
    OUT_OF_SEQUENCE = 8, "the sequence number was not the one the device expected"
    NOT_SYNCED = 9, "the device has no session (reset since the last SYNC)"


STATE_CHANGING = frozenset({Command.WRITE, Command.PULSE, Command.RESET})
"""Never applied twice: a retry of one already executed is answered OK, empty."""
SEQUENCE_EXEMPT = frozenset({Command.IDENTIFY, Command.SYNC})
"""Executed whatever their seq; IDENTIFY does not touch the sequence state."""
SIDE_EFFECT_FREE = frozenset({Command.IDENTIFY, Command.READ, Command.FORWARD})
"""Executed again when retried; a host sends nothing state-changing behind an
unacknowledged one (the read barrier)."""
HOST_COMMANDS = frozenset(Command) - {Command.ERROR}
"""The commands a host may send."""

# Request payload layouts (after which come the data bytes, update slots or inputs).
TARGET_FORMAT = "<B"
"""FORWARD and PULSE: the target id, then what the target defines."""
WRITE_FORMAT = "<BH"
"""WRITE: target id, address; then one or more data bytes."""
READ_FORMAT = "<BHH"
"""READ: target id, address, count; the response is ``count`` bytes."""
OUT_OF_SEQUENCE_FORMAT = "<B"
"""The payload of an OUT_OF_SEQUENCE response: the seq the device expects next."""

CAPABILITY_FIELDS = ("protocol", "build", "board", "max_payload", "baud", "targets")
"""Required keys of the IDENTIFY response (UTF-8 JSON). Optional: ``rx_buffer``, the
bytes of request frames the device can hold while it is busy; a host keeps no more
than that in flight. ``max_payload`` bounds request payloads and READ counts; the
IDENTIFY response itself may be up to :data:`MAX_PAYLOAD_CEILING`."""
