"""The device side of the protocol in plain Python: the executable specification.

:class:`ReferenceDevice` takes wire bytes in and gives wire bytes out, exactly as the
gateware's frame codec and dispatcher must: session state (``synced``, ``expected``),
the duplicate window, the error frames and the capability record. WRITE, READ, FORWARD,
PULSE and RESET go to :class:`Target` objects. :class:`MemoryTarget` is a small one for
tests that counts every write and pulse it applies, so exactly-once can be checked.
:func:`serve_tcp` puts a device behind ``socket://127.0.0.1:PORT`` in background threads;
:class:`InProcessPort` wires one straight to a host in the same process.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from . import spec
from .codec import Capabilities, Frame, FrameDecoder, FrameError, check_max_payload, encode_frame

logger = logging.getLogger(__name__)

_WRITE = struct.Struct(spec.WRITE_FORMAT)
_READ = struct.Struct(spec.READ_FORMAT)
_TARGET = struct.Struct(spec.TARGET_FORMAT)
_ADDRESS = struct.Struct("<H")


class TargetError(Exception):
    """Raised by a target to refuse a command; the device answers with ``status``.

    A target raises it before it changes anything: an error response applies nothing.
    """

    def __init__(self, status: spec.Status, message: str) -> None:
        super().__init__(message)
        self.status = status


class Target(Protocol):
    """What the device dispatches to. FORWARD and READ must not change the target."""

    def describe(self) -> dict[str, Any]:
        """The target's entry of the capability record, without its ``id``."""
        ...

    def write(self, address: int, data: bytes) -> None: ...

    def read(self, address: int, count: int) -> bytes: ...

    def forward(self, payload: bytes) -> bytes: ...

    def pulse(self, payload: bytes) -> None: ...

    def reset(self) -> None: ...


class MemoryTarget:
    """A byte memory that counts what it applies.

    - WRITE stores bytes at a byte address; READ returns them.
    - FORWARD maps each input byte ``b`` to ``(b + 1 + memory[b % size]) % 256``: a
      function of the input and of what was written, with no side effect.
    - PULSE takes u16 little-endian addresses and adds one to each byte addressed.
    - RESET zeroes the memory.

    ``writes`` counts each applied write by (address, data); ``pulses`` counts applied
    pulses per address; ``resets`` counts resets.
    """

    def __init__(self, size: int = 1024) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 0x10000:
            raise ValueError(f"size must be an int in 1..65536, got {size!r}")
        self.size = size
        self.memory = bytearray(size)
        self.writes: Counter[tuple[int, bytes]] = Counter()
        self.pulses: Counter[int] = Counter()
        self.resets = 0
        self._table: bytes | None = None

    def describe(self) -> dict[str, Any]:
        return {"kind": "memory", "params": {"size": self.size},
                "write": {"unit": "byte", "size": self.size},
                "forward": {"in_bytes": None, "out_bytes": None}}

    def forward_table(self) -> bytes:
        """The 256-entry map FORWARD applies now."""
        if self._table is None:
            self._table = bytes((b + 1 + self.memory[b % self.size]) & 0xFF for b in range(256))
        return self._table

    def _check_range(self, address: int, count: int) -> None:
        if address + count > self.size:
            raise TargetError(spec.Status.BAD_ADDRESS,
                              f"bytes {address}..{address + count - 1} are outside the "
                              f"{self.size}-byte memory")

    def write(self, address: int, data: bytes) -> None:
        self._check_range(address, len(data))
        self.memory[address:address + len(data)] = data
        self.writes[address, bytes(data)] += 1
        self._table = None

    def read(self, address: int, count: int) -> bytes:
        self._check_range(address, count)
        return bytes(self.memory[address:address + count])

    def forward(self, payload: bytes) -> bytes:
        if not payload:
            raise TargetError(spec.Status.BAD_PAYLOAD, "FORWARD needs at least one input byte")
        return payload.translate(self.forward_table())

    def pulse(self, payload: bytes) -> None:
        if not payload or len(payload) % _ADDRESS.size:
            raise TargetError(spec.Status.BAD_PAYLOAD,
                              f"PULSE takes u16 addresses, got {len(payload)} bytes")
        addresses = [a for (a,) in _ADDRESS.iter_unpack(payload)]
        if max(addresses) >= self.size:
            raise TargetError(spec.Status.BAD_ADDRESS,
                              f"address {max(addresses)} is outside the {self.size}-byte memory")
        for address in addresses:
            self.memory[address] = (self.memory[address] + 1) & 0xFF
        self.pulses.update(addresses)
        self._table = None

    def reset(self) -> None:
        self.memory[:] = bytes(self.size)
        self.resets += 1
        self._table = None


class ReferenceDevice:
    """The device end of the protocol; thread-safe (one lock around all state).

    Parameters
    ----------
    targets
        Target objects by id (0..255), or a sequence numbered from 0.
    max_payload
        The largest payload the device accepts (and a READ may ask for).
    rx_buffer
        Announced in the capability record when given (see :data:`spec.CAPABILITY_FIELDS`).
    """

    def __init__(self, targets: Mapping[int, Target] | Sequence[Target], *,
                 max_payload: int = 256, board: str = "reference",
                 build: str = "python-reference", baud: int = spec.DEFAULT_BAUD,
                 rx_buffer: int | None = None) -> None:
        self.targets = dict(targets) if isinstance(targets, Mapping) else dict(enumerate(targets))
        bad = [t for t in self.targets if isinstance(t, bool) or not isinstance(t, int)
               or not 0 <= t <= 0xFF]
        if bad:
            raise ValueError(f"targets: ids must be ints in 0..255, got {bad!r}")
        self.max_payload = check_max_payload(max_payload)
        self.capabilities = Capabilities(
            protocol=spec.PROTOCOL_VERSION, build=build, board=board,
            max_payload=self.max_payload, baud=baud, rx_buffer=rx_buffer,
            targets=tuple({"id": i, **t.describe()} for i, t in sorted(self.targets.items())))
        self._identity = self.capabilities.to_payload()
        self._decoder = FrameDecoder(self.max_payload)
        self._lock = threading.RLock()
        self._reset_in: int | None = None
        self.synced = False
        self.expected = 0

    def board_reset(self) -> None:
        """Power-on state: no session, targets reset, any partial frame forgotten."""
        with self._lock:
            self.synced = False
            self.expected = 0
            self._decoder.clear()
            for target in self.targets.values():
                target.reset()
            logger.info("REFERENCE: board reset")

    def schedule_board_reset(self, after_frames: int) -> None:
        """Reset the board once it has answered ``after_frames`` more frames."""
        if isinstance(after_frames, bool) or not isinstance(after_frames, int) \
                or after_frames < 0:
            raise ValueError(f"after_frames must be an int >= 0, got {after_frames!r}")
        with self._lock:
            self._reset_in = after_frames
            if after_frames == 0:
                self._reset_in = None
                self.board_reset()

    def receive(self, data: bytes) -> bytes:
        """Feed wire bytes from the host; the wire bytes the device sends back."""
        with self._lock:
            out = []
            for item in self._decoder.feed(data):
                if isinstance(item, FrameError):
                    out.append(encode_frame(item.seq or 0, spec.Command.ERROR | spec.RESPONSE_FLAG,
                                            item.status))
                else:
                    out.append(self._encode(self.respond(item)))
                self._count_frame()
            return b"".join(out)

    def _count_frame(self) -> None:
        if self._reset_in is not None:
            self._reset_in -= 1
            if self._reset_in <= 0:
                self._reset_in = None
                self.board_reset()

    @staticmethod
    def _encode(frame: Frame) -> bytes:
        return encode_frame(frame.seq, frame.cmd, frame.status, frame.payload)

    def respond(self, request: Frame) -> Frame:
        """The response to one decoded request, with its effects applied."""
        with self._lock:
            status, payload = self._respond(request)
            return Frame(request.seq, request.cmd | spec.RESPONSE_FLAG, status, payload)

    def _respond(self, request: Frame) -> tuple[spec.Status, bytes]:
        if request.cmd not in spec.HOST_COMMANDS:
            return spec.Status.UNKNOWN_COMMAND, b""
        if request.status != spec.Status.OK:
            return spec.Status.BAD_FRAME, b""
        command = spec.Command(request.cmd)
        if command is spec.Command.IDENTIFY:
            if request.payload:
                return spec.Status.BAD_PAYLOAD, b""
            return spec.Status.OK, self._identity
        if command is spec.Command.SYNC:
            if request.payload:
                return spec.Status.BAD_PAYLOAD, b""
            self.synced = True
            self.expected = (request.seq + 1) % spec.SEQ_MODULUS
            return spec.Status.OK, b""
        if not self.synced:
            return spec.Status.NOT_SYNCED, b""
        behind = (self.expected - request.seq) % spec.SEQ_MODULUS
        if behind == 0:
            status, payload = self._execute(command, request.payload)
            if status == spec.Status.OK:
                self.expected = (self.expected + 1) % spec.SEQ_MODULUS
            return status, payload
        if behind <= spec.DUPLICATE_WINDOW:
            if command in spec.STATE_CHANGING:
                return spec.Status.OK, b""
            return self._execute(command, request.payload)
        return spec.Status.OUT_OF_SEQUENCE, struct.pack(spec.OUT_OF_SEQUENCE_FORMAT,
                                                         self.expected)

    def _target(self, target_id: int) -> Target:
        target = self.targets.get(target_id)
        if target is None:
            raise TargetError(spec.Status.BAD_TARGET, f"no target {target_id}")
        return target

    def _execute(self, command: spec.Command, payload: bytes) -> tuple[spec.Status, bytes]:
        try:
            return spec.Status.OK, self._dispatch(command, payload)
        except TargetError as exc:
            logger.debug("REFERENCE: %s refused: %s (%s)", command.name, exc, exc.status.name)
            return exc.status, b""

    def _dispatch(self, command: spec.Command, payload: bytes) -> bytes:
        if command is spec.Command.RESET:
            if payload:
                raise TargetError(spec.Status.BAD_PAYLOAD, "RESET takes no payload")
            for target in self.targets.values():
                target.reset()
            return b""
        if command is spec.Command.WRITE:
            if len(payload) <= _WRITE.size:
                raise TargetError(spec.Status.BAD_PAYLOAD, "WRITE needs target, address, data")
            target_id, address = _WRITE.unpack_from(payload)
            self._target(target_id).write(address, payload[_WRITE.size:])
            return b""
        if command is spec.Command.READ:
            if len(payload) != _READ.size:
                raise TargetError(spec.Status.BAD_PAYLOAD, "READ takes target, address, count")
            target_id, address, count = _READ.unpack(payload)
            if not 1 <= count <= self.max_payload:
                raise TargetError(spec.Status.BAD_PAYLOAD,
                                  f"READ count {count} is not in 1..{self.max_payload}")
            return self._target(target_id).read(address, count)
        if not payload:
            raise TargetError(spec.Status.BAD_PAYLOAD, f"{command.name} needs a target id")
        (target_id,) = _TARGET.unpack_from(payload)
        target = self._target(target_id)
        if command is spec.Command.PULSE:
            target.pulse(payload[_TARGET.size:])
            return b""
        result = target.forward(payload[_TARGET.size:])
        if len(result) > self.max_payload:
            raise TargetError(spec.Status.BAD_PAYLOAD,
                              f"FORWARD result of {len(result)} bytes exceeds max_payload")
        return result


class InProcessPort:
    """A serial-like port wired straight to a :class:`ReferenceDevice` in this process.

    What the host writes is answered at once; a read with nothing to give waits
    ``timeout`` seconds, as a silent board would. It lets a
    :class:`~hilt.host.transport.Device` drive a golden model with no socket or thread,
    through exactly the frames it would send a board.
    """

    def __init__(self, device: ReferenceDevice) -> None:
        self.device = device
        self.name = f"in-process {device.capabilities.board}"
        self.timeout: float | None = None
        self._answers = bytearray()

    def write(self, data: bytes) -> int:
        self._answers += self.device.receive(bytes(data))
        return len(data)

    def read(self, size: int = 1) -> bytes:
        if not self._answers:
            if self.timeout:
                time.sleep(self.timeout)
            return b""
        data = bytes(self._answers[:size])
        del self._answers[:size]
        return data

    def close(self) -> None:
        self._answers.clear()


class ReferenceServer:
    """Serves a :class:`ReferenceDevice` to one TCP client at a time, like a board's UART.

    The device keeps its state across connections. A writer thread per connection sends
    the responses, so the device keeps reading however much the client pipelines.
    """

    def __init__(self, device: ReferenceDevice, host: str = "127.0.0.1", port: int = 0) -> None:
        self.device = device
        self._listener = socket.create_server((host, port))
        self.host, self.port = self._listener.getsockname()[:2]
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._connection: socket.socket | None = None
        self._thread = threading.Thread(target=self._accept_loop, name="reference-server",
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"socket://{self.host}:{self.port}"

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._stopping.is_set():
                    connection.close()
                    return
                self._connection = connection
            self._serve(connection)
            with self._lock:
                self._connection = None

    def _serve(self, connection: socket.socket) -> None:
        outgoing: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        writer = threading.Thread(target=_send_all, args=(connection, outgoing),
                                  name="reference-writer", daemon=True)
        writer.start()
        try:
            while data := connection.recv(65536):
                if reply := self.device.receive(data):
                    outgoing.put(reply)
        except OSError:
            pass
        finally:
            outgoing.put(None)
            writer.join()
            connection.close()

    def disconnect(self) -> None:
        """Drop the current client, as if its cable were pulled."""
        with self._lock:
            if self._connection is not None:
                _shutdown(self._connection)

    def stop(self) -> None:
        """Stop serving and wait for the threads; the device object stays usable."""
        with self._lock:
            self._stopping.set()
        _shutdown(self._listener)
        self._listener.close()
        self.disconnect()
        self._thread.join()

    def __enter__(self) -> ReferenceServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _send_all(connection: socket.socket, outgoing: queue.SimpleQueue[bytes | None]) -> None:
    try:
        while (chunk := outgoing.get()) is not None:
            connection.sendall(chunk)
    except OSError:
        _shutdown(connection)


def serve_tcp(device: ReferenceDevice, host: str = "127.0.0.1", port: int = 0) -> ReferenceServer:
    """Serve ``device`` on ``socket://host:port`` (port 0: any free one; see ``.url``)."""
    return ReferenceServer(device, host, port)
