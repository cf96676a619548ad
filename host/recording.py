"""Record a link session to JSON lines, and replay it as a fake board with no device.

:class:`RecordingSerial` wraps an open serial port and writes one line per frame each
way (time, direction, the wire bytes in hex and the decoded header) as the
:class:`~hilt.host.transport.Device` uses it (``Device(url, record=path)``).
:class:`ReplaySerial` reads such a file and plays the board: every frame the host sends
must be the next one recorded from the host, and it releases the frames the board sent
after it. Anything else raises :class:`ReplayError` naming the line of the recording.

Frames are compared, not write and read calls, so a replay does not depend on how the
bytes were chunked when they were recorded.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hilt.host.protocol import spec
from hilt.host.protocol.codec import FrameError, decode_frame
from hilt.host.transport import LinkError, SerialPort

FORMAT = "hilt-link-recording"
VERSION = 1
TO_DEVICE = "host->device"
FROM_DEVICE = "device->host"


class ReplayError(LinkError):
    """The host did something the recording does not have, or the file is not one."""


def _describe(wire: bytes) -> dict[str, Any]:
    try:
        frame = decode_frame(wire)
    except FrameError as exc:
        return {"damaged": str(exc)}
    try:
        command = spec.Command(frame.command).name
    except ValueError:
        command = frame.command
    try:
        status = spec.Status(frame.status).name
    except ValueError:
        status = frame.status
    return {"seq": frame.seq, "cmd": command, "response": frame.is_response,
            "status": status, "length": len(frame.payload)}


class _Runs:
    """Cuts a byte stream into frames as they were on the wire, delimiter included; a bare
    delimiter is idle line, not a frame, and is left out."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> list[bytes]:
        runs = (self._partial + data).split(spec.DELIMITER)
        self._partial = runs.pop()
        return [run + spec.DELIMITER for run in runs if run]


class RecordingSerial:
    """A serial port that logs every frame each way to ``path`` (JSON lines)."""

    def __init__(self, port: SerialPort, path: str | Path) -> None:
        self._port = port
        # Open for the whole session, so that every frame is on disk as it happens; never
        # over an earlier recording.
        try:
            self._file = Path(path).open("x", encoding="utf-8")  # noqa: SIM115
        except FileExistsError:
            raise ValueError(f"record={str(path)!r} exists; a recording is never written over "
                             f"another, give a new path") from None
        except OSError as error:
            raise ValueError(f"record={str(path)!r} cannot be written: {error.strerror}; give "
                             f"a path in a folder you can write to") from None
        self._started = time.monotonic()
        self._runs = {TO_DEVICE: _Runs(), FROM_DEVICE: _Runs()}
        self._log({"format": FORMAT, "version": VERSION, "protocol": spec.PROTOCOL_VERSION,
                   "port": getattr(port, "name", None) or getattr(port, "port", None)
                   or type(port).__name__,
                   "started": datetime.now(UTC).isoformat(timespec="seconds")})

    def _log(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")

    def _record(self, direction: str, data: bytes) -> None:
        runs = self._runs[direction].feed(data)
        if not runs:
            return
        stamp = round(time.monotonic() - self._started, 6)
        for wire in runs:
            self._log({"t": stamp, "dir": direction, "wire": wire.hex(), **_describe(wire)})
        self._file.flush()

    @property
    def timeout(self) -> float | None:
        return self._port.timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self._port.timeout = value

    def write(self, data: bytes) -> int | None:
        self._record(TO_DEVICE, bytes(data))
        return self._port.write(data)

    def read(self, size: int = 1) -> bytes:
        data = self._port.read(size)
        if data:
            self._record(FROM_DEVICE, data)
        return data

    def close(self) -> None:
        try:
            self._port.close()
        finally:
            self._file.close()


class ReplaySerial:
    """A fake board that answers from a recording made by :class:`RecordingSerial`.

    A read with nothing released waits ``timeout`` seconds, as a silent board would, so
    a session that timed out when it was recorded replays the same way.
    """

    def __init__(self, path: str | Path) -> None:
        self.name = str(path)
        self.timeout: float | None = None
        self._events: list[tuple[int, str, bytes]] = []
        self._load(Path(path))
        self._next = 0
        self._runs = _Runs()
        self._released = bytearray()
        self._release()

    def _load(self, path: Path) -> None:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ReplayError(f"cannot read the recording {str(path)!r}: {exc}") from None
        except UnicodeDecodeError:
            raise ReplayError(f"{str(path)!r} is not a recording: it is not UTF-8 text (a "
                              f"{FORMAT} file is JSON lines)") from None
        try:
            header = json.loads(lines[0]) if lines else {}
            if header.get("format") != FORMAT or header.get("version") != VERSION:
                raise ValueError(f"the first line is not a {FORMAT} v{VERSION} header")
            for number, line in enumerate(lines[1:], start=2):
                record = json.loads(line)
                if record.get("dir") not in (TO_DEVICE, FROM_DEVICE):
                    raise ValueError(f"line {number}: 'dir' must be {TO_DEVICE!r} or "
                                     f"{FROM_DEVICE!r}, got {record.get('dir')!r}")
                self._events.append((number, record["dir"], bytes.fromhex(record["wire"])))
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise ReplayError(f"{str(path)!r} is not a usable recording: {exc}") from None

    @property
    def unplayed(self) -> int:
        """Recorded frames the replay has not reached yet."""
        return len(self._events) - self._next

    def _release(self) -> None:
        while self._next < len(self._events) and self._events[self._next][1] == FROM_DEVICE:
            self._released += self._events[self._next][2]
            self._next += 1

    def write(self, data: bytes) -> int:
        for wire in self._runs.feed(bytes(data)):
            if self._next >= len(self._events):
                raise ReplayError(f"{self.name}: the host sent {wire.hex()} "
                                  f"({_describe(wire)}) after the end of the recording")
            number, _, expected = self._events[self._next]
            if wire != expected:
                raise ReplayError(f"{self.name} line {number}: the host sent {wire.hex()} "
                                  f"({_describe(wire)}) but the recording has "
                                  f"{expected.hex()} ({_describe(expected)})")
            self._next += 1
            self._release()
        return len(data)

    def read(self, size: int = 1) -> bytes:
        if not self._released:
            if self.timeout is None:
                raise ReplayError(f"{self.name}: the host waits with no timeout for a "
                                  f"response the recording does not have")
            time.sleep(self.timeout)
            return b""
        data = bytes(self._released[:size])
        del self._released[:size]
        return data

    def close(self) -> None:
        self._released.clear()
