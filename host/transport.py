"""The host end of the wire protocol over any pyserial port: a pipelined, exactly-once link.

:class:`Device` opens a port (a path, ``socket://host:port``, ``loop://``, a pty, or a
serial-like object such as :class:`hilt.host.recording.ReplaySerial`), starts a session
(SYNC) and reads the capability record (IDENTIFY). Every sequenced call goes through
:meth:`Device.transact`, which keeps up to ``window`` frames in flight and recovers
from loss go-back-N style: on a timeout, an ERROR frame, an OUT_OF_SEQUENCE answer, a
damaged response or a response that shows an earlier one was lost, it resends every
unacknowledged frame in order. The device never applies a state-changing frame twice,
and the host never puts one behind an unacknowledged READ or FORWARD (the read
barrier), so a retried read cannot see a later write.

The retry budget is per frame: a resend of the window is charged to the oldest frame
still unanswered, the one whose answer the link is waiting for, and the frames behind it
travel along free. So a wide window on a noisy line gives up no sooner than a narrow
one: only a frame that itself went unanswered ``retries + 1`` times ends the session.

Failures are :class:`LinkError` subclasses that name the command, the seq and what
happened. After a timeout or a board reset the session is over until :meth:`Device.sync`.
A Device is not thread-safe.
"""

from __future__ import annotations

import logging
import struct
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Protocol

import serial

from hilt.host.protocol import spec
from hilt.host.protocol.codec import (
    Capabilities,
    Frame,
    FrameDecoder,
    FrameError,
    encode_frame,
    max_wire_size,
)

logger = logging.getLogger(__name__)

_READ_CHUNK = 1 << 16
_WRITE = struct.Struct(spec.WRITE_FORMAT)
_READ = struct.Struct(spec.READ_FORMAT)
_TARGET = struct.Struct(spec.TARGET_FORMAT)


class SerialPort(Protocol):
    """What :class:`Device` needs of a port: pyserial's read, write, close and timeout."""

    timeout: float | None

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...

    def close(self) -> None: ...


class LinkError(Exception):
    """The link to the device failed; the message says how."""


class LinkTimeoutError(LinkError):
    """A frame got no usable answer after all its retries."""


class BoardResetError(LinkError):
    """The device answered NOT_SYNCED mid-session: it was reset and lost its state."""


class LinkClosedError(LinkError):
    """The port closed or failed (cable pulled, socket dropped, Device closed)."""


class ProtocolError(LinkError):
    """The device answered something the protocol does not allow."""


class DeviceError(LinkError):
    """The device refused a command; it applied nothing."""

    def __init__(self, command: spec.Command, seq: int, status: int, detail: str = "") -> None:
        try:
            name, message = spec.Status(status).name, spec.Status(status).message
        except ValueError:
            name, message = f"status {status}", "a status code this host does not know"
        super().__init__(f"{command.name} seq {seq}: device answered {name}: {message}"
                         + (f" ({detail})" if detail else ""))
        self.command = command
        self.seq = seq
        self.status = status


@dataclass(frozen=True)
class Request:
    """One command for :meth:`Device.transact`: a code and its payload."""

    command: spec.Command
    payload: bytes = b""

    def __post_init__(self) -> None:
        if self.command not in spec.HOST_COMMANDS:
            raise ValueError(f"command must be one of "
                             f"{sorted(c.name for c in spec.HOST_COMMANDS)}, got {self.command!r}")
        if not isinstance(self.payload, bytes):
            raise ValueError(f"payload must be bytes, got {type(self.payload).__name__}")
        object.__setattr__(self, "command", spec.Command(self.command))


@dataclass
class LinkStats:
    """Counters since the Device was opened."""

    frames_sent: int = 0
    retransmissions: int = 0
    timeouts: int = 0
    frames_received: int = 0
    damaged_frames: int = 0
    ignored_frames: int = 0
    """Stale duplicates, echoes of the host's own frames."""
    bytes_sent: int = 0
    bytes_received: int = 0
    peak_in_flight_bytes: int = 0
    most_resends: int = 0
    """The most times one frame was sent again."""
    most_retries: int = 0
    """The most resends charged to one frame: how much of its retry budget a frame spent."""


def _check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low \
            or (high is not None and value > high):
        accepted = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an int {accepted}, got {value!r}")
    return value


def _check_bytes(name: str, value: object) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise ValueError(f"{name} must be bytes, got {type(value).__name__}")
    return bytes(value)


def _open_port(port: str | SerialPort, baudrate: int) -> SerialPort:
    if isinstance(port, str):
        try:
            return serial.serial_for_url(port, baudrate=baudrate, timeout=0)
        except ValueError as exc:
            raise ValueError(f"port {port!r} is not usable ({exc}); give a device path such "
                             f"as /dev/ttyUSB1 or a pyserial URL such as "
                             f"socket://127.0.0.1:5555 or loop://") from None
        except OSError as exc:
            raise LinkError(f"could not open {port!r}: {exc}") from exc
    if all(callable(getattr(port, name, None)) for name in ("read", "write", "close")):
        return port
    raise ValueError(f"port must be a path, a pyserial URL or a serial-like object with "
                     f"read, write and close, got {port!r}")


class Device:
    """A session with one board (or a co-simulated or reference device) over a serial link.

    Parameters
    ----------
    port
        A device path, any pyserial URL, or an open serial-like object.
    baudrate
        Line rate for real ports; also sizes the timeouts by the time bytes take to cross.
    timeout
        Seconds to wait for a response, beyond the line time of what is in flight, before
        resending every unacknowledged frame.
    window
        Frames in flight, 1..64.
    retries
        Retransmissions allowed per frame before :class:`LinkTimeoutError`; a resend of
        the window counts against its oldest unanswered frame only.
    record
        A path: write every frame each way to this JSON-lines file
        (:mod:`hilt.host.recording`); it must not exist yet.
    """

    def __init__(self, port: str | SerialPort, *, baudrate: int = spec.DEFAULT_BAUD,
                 timeout: float = 0.5, window: int = spec.WINDOW_DEFAULT,
                 retries: int = spec.RETRIES_DEFAULT, record: str | Path | None = None) -> None:
        self.baudrate = _check_int("baudrate", baudrate, spec.MIN_BAUD, spec.MAX_BAUD)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) \
                or not 0 < timeout <= spec.TIMEOUT_MAX_S:
            raise ValueError(f"timeout must be a number of seconds above 0 and at most "
                             f"{spec.TIMEOUT_MAX_S:g}, got {timeout!r}")
        self.timeout = float(timeout)
        self.window = _check_int("window", window, 1, spec.WINDOW_MAX)
        self.retries = _check_int("retries", retries, 0, spec.RETRIES_MAX)
        self.name = port if isinstance(port, str) else type(port).__name__
        self._port = _open_port(port, baudrate)
        if record is not None:
            from hilt.host.recording import RecordingSerial

            try:
                self._port = RecordingSerial(self._port, record)
            except BaseException:
                self._port.close()
                raise
        self.stats = LinkStats()
        self.capabilities: Capabilities | None = None
        self._decoder = FrameDecoder()
        self._backlog: deque[Frame | FrameError] = deque()
        self._next_seq = 0
        self._no_session: str | None = "no SYNC yet"
        self._closed = False
        self._tx_clear = 0.0
        self._last_rx = 0.0
        self._frame_time = self._line_time(max_wire_size())
        try:
            self.sync()
            self.identify()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"Device({self.name!r}, window={self.window}, retries={self.retries})"

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the port; further calls raise :class:`LinkClosedError`."""
        if self._closed:
            return
        self._closed = True
        try:
            self._port.close()
        except OSError as exc:
            logger.warning("LINK: closing %s failed: %s", self.name, exc)

    @property
    def max_payload(self) -> int:
        """The device's max_payload (the protocol's ceiling before IDENTIFY)."""
        return self.capabilities.max_payload if self.capabilities else spec.MAX_PAYLOAD_CEILING

    # -- commands ---------------------------------------------------------------------------

    def sync(self) -> None:
        """Start a new session (SYNC at seq 0): the device's sequence state is reset."""
        self._exchange(Request(spec.Command.SYNC))

    def identify(self) -> Capabilities:
        """Read and check the capability record; it also sets :attr:`capabilities`."""
        payload = self._exchange(Request(spec.Command.IDENTIFY))
        try:
            capabilities = Capabilities.from_payload(payload)
        except ValueError as exc:
            raise ProtocolError(f"IDENTIFY: {exc}") from None
        if capabilities.protocol != spec.PROTOCOL_VERSION:
            raise ProtocolError(f"IDENTIFY: the device speaks protocol {capabilities.protocol}, "
                                f"this host speaks {spec.PROTOCOL_VERSION}")
        self.capabilities = capabilities
        return capabilities

    def write(self, target: int, address: int, data: bytes) -> None:
        """Write ``data`` at ``address`` of ``target`` (one WRITE frame)."""
        data = _check_bytes("data", data)
        room = self.max_payload - _WRITE.size
        if not 1 <= len(data) <= room:
            raise ValueError(f"data is {len(data)} bytes; one WRITE carries 1..{room} on this "
                             f"device (max_payload {self.max_payload}): split the write")
        payload = _WRITE.pack(_check_int("target", target, 0, 0xFF),
                              _check_int("address", address, 0, 0xFFFF)) + data
        self.transact([Request(spec.Command.WRITE, payload)])

    def read(self, target: int, address: int, count: int) -> bytes:
        """``count`` bytes from ``address`` of ``target`` (one READ frame)."""
        payload = _READ.pack(_check_int("target", target, 0, 0xFF),
                             _check_int("address", address, 0, 0xFFFF),
                             _check_int("count", count, 1, self.max_payload))
        (data,) = self.transact([Request(spec.Command.READ, payload)])
        if len(data) != count:
            raise ProtocolError(f"READ of {count} bytes answered with {len(data)}")
        return data

    def forward(self, target: int, payloads: Sequence[bytes]) -> list[bytes]:
        """Run a batch through ``target``: one FORWARD frame per payload, pipelined."""
        prefix = _TARGET.pack(_check_int("target", target, 0, 0xFF))
        room = self.max_payload - _TARGET.size
        requests = []
        for index, payload in enumerate(payloads):
            payload = _check_bytes(f"payloads[{index}]", payload)
            if len(payload) > room:
                raise ValueError(f"payloads[{index}] is {len(payload)} bytes; one FORWARD "
                                 f"carries at most {room} on this device (max_payload "
                                 f"{self.max_payload}): split it")
            requests.append(Request(spec.Command.FORWARD, prefix + payload))
        return self.transact(requests)

    def pulse(self, target: int, payload: bytes) -> None:
        """Apply one PULSE frame of update slots, packed as the target says."""
        payload = _check_bytes("payload", payload)
        room = self.max_payload - _TARGET.size
        if len(payload) > room:
            raise ValueError(f"payload is {len(payload)} bytes; one PULSE carries at most "
                             f"{room} on this device: split it")
        self.transact([Request(spec.Command.PULSE,
                               _TARGET.pack(_check_int("target", target, 0, 0xFF)) + payload)])

    def reset(self) -> None:
        """Clear every target's state (RESET; the session goes on)."""
        self.transact([Request(spec.Command.RESET)])

    def transact(self, requests: Iterable[Request]) -> list[bytes]:
        """Send ``requests`` in order, pipelined; the response payloads, in the same order.

        IDENTIFY and SYNC are sent alone once everything before them is acknowledged.
        A refused command raises :class:`DeviceError` once the frames before it are
        acknowledged; nothing after it was applied.
        """
        requests = list(requests)
        for index, request in enumerate(requests):
            if not isinstance(request, Request):
                raise ValueError(f"requests[{index}] must be a Request, got {request!r}")
            if len(request.payload) > self.max_payload:
                raise ValueError(f"requests[{index}]: {request.command.name} payload is "
                                 f"{len(request.payload)} bytes; this device accepts at most "
                                 f"{self.max_payload} (max_payload): split it")
        results: list[bytes] = []
        run: list[Request] = []
        for request in requests:
            if request.command in spec.SEQUENCE_EXEMPT:
                results += _Pipeline(self, run).run()
                run = []
                results.append(self._exchange(request))
            else:
                run.append(request)
        results += _Pipeline(self, run).run()
        return results

    # -- the link ---------------------------------------------------------------------------

    def _line_time(self, nbytes: int) -> float:
        return nbytes * 10 / self.baudrate

    def _deadline(self) -> float:
        return max(self._tx_clear, self._last_rx) + self.timeout + self._frame_time

    def _require_open(self) -> None:
        if self._closed:
            raise LinkClosedError(f"{self.name}: the Device is closed")

    def _require_session(self) -> None:
        self._require_open()
        if self._no_session is not None:
            raise LinkError(f"{self.name}: no session with the device ({self._no_session}); "
                            f"call sync() to start one")

    def _end_session(self, reason: str) -> None:
        self._no_session = reason

    def _link_failed(self, action: str, exc: Exception) -> LinkClosedError:
        self._end_session(f"the link failed while {action}")
        return LinkClosedError(f"{self.name}: the link failed while {action}: {exc}")

    def _transmit(self, data: bytes, frames: int, retransmissions: int = 0) -> None:
        self._require_open()
        try:
            self._port.write(data)
        except OSError as exc:
            raise self._link_failed("sending", exc) from exc
        self.stats.frames_sent += frames
        self.stats.retransmissions += retransmissions
        self.stats.bytes_sent += len(data)
        self._tx_clear = max(time.monotonic(), self._tx_clear) + self._line_time(len(data))

    def _read(self, deadline: float) -> bytes:
        # Past the deadline, still take what is already there: a host that was descheduled
        # must not call a timeout on answers sitting in its buffer.
        wait = max(0.0, deadline - time.monotonic())
        try:
            self._port.timeout = wait
            first = self._port.read(1)
            if not first:
                return b""
            self._port.timeout = 0
            return first + self._port.read(_READ_CHUNK)
        except OSError as exc:
            raise self._link_failed("receiving", exc) from exc

    def _receive(self, deadline: float) -> list[Frame | FrameError]:
        """What arrives by ``deadline`` (possibly nothing: then the deadline has passed or
        only part of a frame came)."""
        if self._backlog:
            items = list(self._backlog)
            self._backlog.clear()
            return items
        self._require_open()
        data = self._read(deadline)
        if not data:
            return []
        self.stats.bytes_received += len(data)
        items = self._decoder.feed(data)
        for item in items:
            if isinstance(item, FrameError):
                self.stats.damaged_frames += 1
                logger.debug("LINK: damaged frame received: %s", item)
            else:
                self.stats.frames_received += 1
                self._last_rx = time.monotonic()
        return items

    def _exchange(self, request: Request) -> bytes:
        """Stop-and-wait for IDENTIFY and SYNC, which the device runs whatever their seq."""
        self._require_open()
        command = request.command
        seq = 0 if command is spec.Command.SYNC else self._next_seq
        wire = encode_frame(seq, command, spec.Status.OK, request.payload)
        if command is spec.Command.SYNC:
            # Flushes whatever partial frame the device holds, so SYNC is not merged with it.
            wire = spec.DELIMITER + wire
        reason = "nothing was sent"
        for attempt in range(self.retries + 1):
            self._transmit(wire, 1, retransmissions=1 if attempt else 0)
            while True:
                deadline = self._deadline()
                items = self._receive(deadline)
                if not items and time.monotonic() >= deadline:
                    self.stats.timeouts += 1
                    reason = f"no response within {self.timeout:g} s"
                    break
                for index, item in enumerate(items):
                    if (isinstance(item, Frame) and item.is_response and item.seq == seq
                            and item.command == command):
                        self._backlog.extend(items[index + 1:])
                        return self._exchanged(command, seq, item)
                    if isinstance(item, Frame):
                        self.stats.ignored_frames += 1
        if command is spec.Command.SYNC:
            self._end_session("SYNC failed")
        raise LinkTimeoutError(f"{self.name}: {command.name} seq {seq}: no answer after "
                               f"{self.retries} retries ({reason})")

    def _exchanged(self, command: spec.Command, seq: int, response: Frame) -> bytes:
        if response.status != spec.Status.OK:
            raise DeviceError(command, seq, response.status)
        if command is spec.Command.SYNC:
            self._next_seq = (seq + 1) % spec.SEQ_MODULUS
            self._no_session = None
            logger.debug("LINK: %s: session started", self.name)
        return response.payload


@dataclass(eq=False)
class _InFlight:
    index: int
    request: Request
    seq: int
    wire: bytes
    retries: int = 0
    """Resends charged to this frame: those made while it was the oldest unanswered."""
    resends: int = 0
    done: bool = False


class _Pipeline:
    """One run of sequenced requests through the window (see the module's docstring)."""

    def __init__(self, device: Device, requests: list[Request]) -> None:
        self.device = device
        self.requests = requests
        self.results: list[bytes] = [b""] * len(requests)
        self.window: deque[_InFlight] = deque()
        self.by_seq: dict[int, _InFlight] = {}
        self.queued = 0
        self.unacked_reads = 0
        self.unacked_bytes = 0
        self.rewound = False
        self.failure: tuple[int, DeviceError] | None = None
        self.staged: _InFlight | None = None

    def run(self) -> list[bytes]:
        if not self.requests:
            return []
        device = self.device
        device._require_session()
        while True:
            if not self.window:
                if self.failure is not None:
                    seq, error = self.failure
                    device._next_seq = seq
                    raise error
                if self.queued == len(self.requests):
                    return self.results
            self._send_new()
            deadline = device._deadline()
            items = device._receive(deadline)
            for item in items:
                self._handle(item)
            if not items and time.monotonic() >= deadline:
                device.stats.timeouts += 1
                self._rewind(f"no response within {device.timeout:g} s")

    # -- sending ----------------------------------------------------------------------------

    def _stage(self) -> _InFlight:
        if self.staged is None:
            request = self.requests[self.queued]
            seq = self.device._next_seq
            self.staged = _InFlight(self.queued, request, seq,
                                    encode_frame(seq, request.command, spec.Status.OK,
                                                 request.payload))
        return self.staged

    def _may_send(self, frame: _InFlight) -> bool:
        if not self.window:
            return True
        if len(self.window) >= self.device.window:
            return False
        if frame.request.command in spec.STATE_CHANGING and self.unacked_reads:
            return False
        limit = self.device.capabilities.rx_buffer if self.device.capabilities else None
        return limit is None or self.unacked_bytes + len(frame.wire) <= limit

    def _send_new(self) -> None:
        if self.failure is not None:
            return
        burst = []
        while self.queued < len(self.requests) and self._may_send(frame := self._stage()):
            self.staged = None
            self.queued += 1
            self.device._next_seq = (frame.seq + 1) % spec.SEQ_MODULUS
            self.window.append(frame)
            self.by_seq[frame.seq] = frame
            self.unacked_bytes += len(frame.wire)
            if frame.request.command not in spec.STATE_CHANGING:
                self.unacked_reads += 1
            burst.append(frame)
        if burst:
            stats = self.device.stats
            stats.peak_in_flight_bytes = max(stats.peak_in_flight_bytes, self.unacked_bytes)
            self.device._transmit(b"".join(frame.wire for frame in burst), len(burst))

    def _rewind(self, reason: str) -> None:
        """Resend every unacknowledged frame, in order, charging the resend to the oldest
        of them; it ends the session if that frame's budget is spent."""
        device = self.device
        unacked = [frame for frame in self.window if not frame.done]
        charged = unacked[0]
        if charged.retries >= device.retries:
            device._end_session(f"{charged.request.command.name} seq {charged.seq} timed out")
            raise LinkTimeoutError(
                f"{device.name}: {charged.request.command.name} seq {charged.seq}: no answer "
                f"after {device.retries} retries (last: {reason})")
        charged.retries += 1
        stats = device.stats
        stats.most_retries = max(stats.most_retries, charged.retries)
        for frame in unacked:
            frame.resends += 1
        stats.most_resends = max(stats.most_resends, max(frame.resends for frame in unacked))
        logger.info("LINK: %s: resending %d frame(s) from seq %d (its retry %d): %s",
                    device.name, len(unacked), charged.seq, charged.retries, reason)
        self.rewound = True
        device._transmit(b"".join(frame.wire for frame in unacked), len(unacked),
                         retransmissions=len(unacked))

    def _trigger(self, reason: str) -> None:
        """Rewind for ``reason`` unless a rewind since the base last moved covers it: the
        answers still arriving to frames sent before it are stale."""
        if not self.rewound and self.window:
            self._rewind(reason)

    # -- receiving --------------------------------------------------------------------------

    def _acknowledge(self, frame: _InFlight, payload: bytes) -> None:
        frame.done = True
        self.results[frame.index] = payload
        self.unacked_bytes -= len(frame.wire)
        if frame.request.command not in spec.STATE_CHANGING:
            self.unacked_reads -= 1

    def _retire(self) -> None:
        while self.window and self.window[0].done:
            del self.by_seq[self.window.popleft().seq]
            self.rewound = False

    def _settle_before(self, position: int) -> bool:
        """The device executed every frame before ``position``: acknowledge the
        state-changing ones (their answer is empty); True if a read among them still
        needs its answer."""
        missing = False
        for frame in list(islice(self.window, position)):
            if frame.done:
                continue
            if frame.request.command in spec.STATE_CHANGING:
                self._acknowledge(frame, b"")
            else:
                missing = True
        return missing

    def _handle(self, item: Frame | FrameError) -> None:
        device = self.device
        if isinstance(item, FrameError):
            self._trigger(f"a response arrived damaged ({item})")
            return
        if not item.is_response:
            device.stats.ignored_frames += 1
            logger.debug("LINK: ignoring a request frame (an echo?): seq %d cmd %#x",
                         item.seq, item.cmd)
            return
        if item.command == spec.Command.ERROR:
            self._trigger(f"the device received a damaged frame "
                          f"({_status_name(item.status)})")
            return
        frame = self.by_seq.get(item.seq)
        if frame is None or frame.done or item.command != frame.request.command:
            device.stats.ignored_frames += 1
            return
        position = (frame.seq - self.window[0].seq) % spec.SEQ_MODULUS
        if item.status == spec.Status.OK:
            missing = self._settle_before(position)
            self._acknowledge(frame, item.payload)
            self._retire()
            if missing:
                self._trigger(f"a response before seq {frame.seq} was lost")
        elif item.status == spec.Status.OUT_OF_SEQUENCE:
            self._out_of_sequence(frame, item.payload)
        elif item.status == spec.Status.NOT_SYNCED:
            device._end_session("the board was reset")
            raise BoardResetError(
                f"{device.name}: {frame.request.command.name} seq {frame.seq}: the board "
                f"was reset (it answered NOT_SYNCED) and lost its state; frames in flight "
                f"may or may not have been applied. Call sync() and load it again")
        else:
            self._refused(frame, position, item.status)

    def _out_of_sequence(self, frame: _InFlight, payload: bytes) -> None:
        device = self.device
        if len(payload) != 1:
            raise ProtocolError(f"{device.name}: OUT_OF_SEQUENCE carried {len(payload)} bytes, "
                                f"not the 1-byte expected seq")
        expected = payload[0]
        base = self.window[0].seq
        position = (expected - base) % spec.SEQ_MODULUS
        if position > (device._next_seq - base) % spec.SEQ_MODULUS:
            device._end_session("the device's sequence state is not this host's")
            raise ProtocolError(
                f"{device.name}: {frame.request.command.name} seq {frame.seq}: the device "
                f"expects seq {expected}, outside this host's frames {base}.."
                f"{(device._next_seq - 1) % spec.SEQ_MODULUS}; is another host on the link?")
        self._settle_before(position)
        self._retire()
        self._trigger(f"the device expected seq {expected}")

    def _refused(self, frame: _InFlight, position: int, status: int) -> None:
        """A command failed: the device applied nothing and stays at its seq. Frames
        before it still need answers; frames after it were not applied and are dropped."""
        missing = self._settle_before(position)
        if self.failure is None:
            self.failure = (frame.seq, DeviceError(frame.request.command, frame.seq, status))
        self._acknowledge(frame, b"")
        while self.window[-1] is not frame:
            dropped = self.window.pop()
            del self.by_seq[dropped.seq]
            if not dropped.done:
                self._acknowledge(dropped, b"")
        self._retire()
        if missing:
            self._trigger(f"a response before seq {frame.seq} was lost")


def _status_name(status: int) -> str:
    try:
        return spec.Status(status).name
    except ValueError:
        return f"status {status}"
