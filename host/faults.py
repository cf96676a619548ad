"""A TCP proxy that damages protocol frames on their way, to test the link's recovery.

Put a :class:`FaultProxy` between a :class:`~hilt.host.transport.Device` and a device
served on TCP (:func:`hilt.host.protocol.reference.serve_tcp`, or a co-simulated board):
it cuts each direction into frames at the delimiter (a bare delimiter, idle line, passes
untouched and uncounted) and, with the probabilities of a
:class:`Faults`, drops a byte, flips a byte, drops the whole frame or sends it twice;
``close_after`` cuts the connection once that many frames have gone to the device.
Each direction draws from its own seeded generator, a fixed number of draws per frame,
so a seed gives the same decisions for the same frames.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import threading
from collections import Counter
from dataclasses import dataclass, fields
from urllib.parse import urlsplit

from hilt.host.protocol import spec

logger = logging.getLogger(__name__)

TO_DEVICE = "to_device"
TO_HOST = "to_host"


@dataclass(frozen=True)
class Faults:
    """Per-frame probabilities of each kind of damage, independently drawn.

    ``frames``, when given, limits the damage to the frames with those indices (counted
    from 0 in each direction over the proxy's life): ``Faults(drop_frame=1,
    frames=range(2, 3))`` drops exactly the third frame.
    """

    drop_byte: float = 0.0
    flip_byte: float = 0.0
    drop_frame: float = 0.0
    duplicate: float = 0.0
    frames: range | None = None

    def __post_init__(self) -> None:
        if self.frames is not None and not isinstance(self.frames, range):
            raise ValueError(f"frames must be None or a range of frame indices, "
                             f"got {self.frames!r}")
        for item in fields(self):
            if item.name == "frames":
                continue
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not 0.0 <= value <= 1.0:
                raise ValueError(f"{item.name} must be a probability in [0, 1], got {value!r}")

    def apply(self, frame: bytes, rng: random.Random, counts: Counter[str]) -> list[bytes]:
        """What goes on the wire instead of ``frame`` (delimiter included)."""
        drop, cut, flip, twice = (rng.random() for _ in range(4))
        where, mask = rng.randrange(len(frame)), rng.randrange(1, 256)
        index = counts["frames"]
        counts["frames"] += 1
        if self.frames is not None and index not in self.frames:
            return [frame]
        if drop < self.drop_frame:
            counts["drop_frame"] += 1
            return []
        damaged = bytearray(frame)
        if cut < self.drop_byte:
            counts["drop_byte"] += 1
            del damaged[where]
        if flip < self.flip_byte and damaged:
            counts["flip_byte"] += 1
            damaged[where % len(damaged)] ^= mask
        if twice < self.duplicate:
            counts["duplicate"] += 1
            return [bytes(damaged)] * 2
        return [bytes(damaged)]


def _address(upstream: str | tuple[str, int]) -> tuple[str, int]:
    if isinstance(upstream, tuple):
        return upstream
    parts = urlsplit(upstream)
    if parts.scheme != "socket" or not parts.hostname or parts.port is None:
        raise ValueError(f"upstream must be socket://HOST:PORT or (host, port), got {upstream!r}")
    return parts.hostname, parts.port


class FaultProxy:
    """Listens on ``socket://127.0.0.1:PORT`` (:attr:`url`) and relays to ``upstream``.

    One client at a time, like a serial cable; :attr:`counts` says how many frames went
    each way and what was done to them, so a test can check the faults really happened.
    """

    def __init__(self, upstream: str | tuple[str, int], *, to_device: Faults = Faults(),
                 to_host: Faults = Faults(), seed: int = 0,
                 close_after: int | None = None) -> None:
        self._upstream = _address(upstream)
        if close_after is not None and (isinstance(close_after, bool)
                                        or not isinstance(close_after, int) or close_after < 1):
            raise ValueError(f"close_after must be None or an int >= 1, got {close_after!r}")
        self._faults = {TO_DEVICE: to_device, TO_HOST: to_host}
        self._rngs = {TO_DEVICE: random.Random(f"{seed}:{TO_DEVICE}"),
                      TO_HOST: random.Random(f"{seed}:{TO_HOST}")}
        self.counts: dict[str, Counter[str]] = {TO_DEVICE: Counter(), TO_HOST: Counter()}
        self._close_after = close_after
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._accept_loop, name="fault-proxy",
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def _accept_loop(self) -> None:
        while True:
            try:
                host_side, _ = self._listener.accept()
                device_side = socket.create_connection(self._upstream)
            except OSError:
                return
            pair = [host_side, device_side]
            with self._lock:
                if self._stopping:
                    for sock in pair:
                        sock.close()
                    return
                self._sockets = pair
            for sock in pair:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pumps = [threading.Thread(target=self._pump, args=(host_side, device_side, TO_DEVICE),
                                      daemon=True),
                     threading.Thread(target=self._pump, args=(device_side, host_side, TO_HOST),
                                      daemon=True)]
            for pump in pumps:
                pump.start()
            for pump in pumps:
                pump.join()
            for sock in pair:
                sock.close()

    def _pump(self, source: socket.socket, sink: socket.socket, direction: str) -> None:
        faults, rng, counts = self._faults[direction], self._rngs[direction], self.counts[direction]
        partial = b""
        try:
            while data := source.recv(65536):
                runs = (partial + data).split(spec.DELIMITER)
                partial = runs.pop()
                out = []
                for run in runs:
                    if not run:
                        out.append(spec.DELIMITER)
                        continue
                    out += faults.apply(run + spec.DELIMITER, rng, counts)
                    if direction == TO_DEVICE and self._cut_now(counts["frames"]):
                        sink.sendall(b"".join(out))
                        self.cut()
                        return
                sink.sendall(b"".join(out))
        except OSError:
            pass
        finally:
            self._shutdown_pair()

    def _cut_now(self, frames: int) -> bool:
        if self._close_after is None or frames < self._close_after:
            return False
        self._close_after = None
        counts = self.counts[TO_DEVICE]
        counts["cut"] += 1
        logger.info("FAULTS: closing the link after %d frames to the device", frames)
        return True

    def _shutdown_pair(self) -> None:
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Close the current connection both ways, as if the cable were pulled."""
        self._shutdown_pair()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self.cut()
        self._thread.join()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
