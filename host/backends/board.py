"""A backend on a board's processing element, through any link a Device opens.

The same class drives a real board over a serial port, a co-simulated board over its
socket, and a board's golden twin in-process: the three differ only in the port under
the :class:`~hilt.host.transport.Device`, so a loop that works against one works against
the others frame for frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hilt.host.backends.base import Backend, BackendError
from hilt.host.backends.elements import ELEMENTS, Element, ElementError
from hilt.host.protocol import spec
from hilt.host.protocol.codec import Capabilities
from hilt.host.protocol.synapse_layout import Slot
from hilt.host.transport import Device, LinkError, Request


class BoardBackend(Backend):
    """The processing element ``target`` of the board behind ``device``.

    Parameters
    ----------
    device : Device
        An open session with the board; the backend closes it.
    url : str
        The backend URL, for messages.
    target : int, optional
        The target id; by default the first target whose kind a training loop can drive.
    on_close : callable, optional
        Called after the device is closed (stops a co-simulated board it started).
    """

    def __init__(self, device: Device, url: str, *, target: int | None = None,
                 on_close: Callable[[], Any] | None = None) -> None:
        super().__init__()
        self.url = url
        self.device = device
        self.capabilities = device.capabilities
        self._on_close = on_close
        try:
            self.element = board_element(self.capabilities, url, target)
        except BaseException:
            self.close()
            raise
        self.kind = self.element.kind
        self.in_features = self.element.in_features
        self.out_features = self.element.out_features
        operations = ["forward"]
        if self.element.entry.get("write"):
            operations.append("load")
        if "pulse" in self.element.entry:
            operations.append("pulse")
        if self.element.entry.get("read"):
            operations.append("read_state")
        self.operations = tuple(operations)

    def describe(self) -> dict[str, Any]:
        capabilities = self.capabilities
        return {"url": self.url, "kind": self.kind, "in_features": self.in_features,
                "out_features": self.out_features, "operations": list(self.operations),
                "board": capabilities.board, "build": capabilities.build,
                "target": self.element.entry}

    def _transact(self, requests: list[Request], what: str) -> list[bytes]:
        self.check_open()
        try:
            return self.device.transact(requests)
        except LinkError as error:
            raise BackendError(f"{self.url}: {what} failed: {error}") from error

    def _checked(self, build: Callable[[], Any]) -> Any:
        try:
            return build()
        except ElementError as error:
            raise BackendError(f"{self.url}: {error}") from None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.check_open()
        payloads = self._checked(lambda: self.element.forward_payloads(x))
        answers = self._transact([Request(spec.Command.FORWARD, p) for p in payloads],
                                 "forward")
        self.stats.forward_calls += 1
        self.stats.queries += len(x)
        return self.element.outputs(answers)

    def load(self, **arrays: Any) -> None:
        self.require("load")
        requests = self._checked(lambda: self.element.load_requests(**arrays))
        self._transact(requests, "load")
        self.stats.loads += 1

    def pulse(self, slots: Sequence[Slot]) -> None:
        self.require("pulse")
        payloads = self._checked(lambda: self.element.pulse_payloads(slots))
        self._transact([Request(spec.Command.PULSE, p) for p in payloads], "pulse")
        self.stats.pulse_slots += len(slots)

    def read_state(self) -> dict[str, np.ndarray]:
        self.require("read_state")
        answers = self._transact(self.element.read_requests(), "read-back")
        self.stats.reads += 1
        return self.element.state(answers)

    def close(self) -> None:
        self.closed = True
        device, self.device = getattr(self, "device", None), None
        if device is not None:
            device.close()
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()


def board_element(capabilities: Capabilities, url: str, target: int | None = None) -> Element:
    """The element of target ``target`` of the board ``capabilities`` describes (by default
    its first target a training loop can drive); BackendError naming ``url`` if there is
    none, or if it does not fit the board's frames."""
    entries = capabilities.targets
    if target is not None:
        chosen = [entry for entry in entries if entry["id"] == target]
        if not chosen:
            raise BackendError(f"{url}: no target {target}; the board has {_listing(entries)}")
        if chosen[0]["kind"] not in ELEMENTS:
            raise BackendError(f"{url}: target {target} is a {chosen[0]['kind']}, not an "
                               f"element a training loop drives ({', '.join(ELEMENTS)})")
    else:
        chosen = [entry for entry in entries if entry["kind"] in ELEMENTS]
        if not chosen:
            raise BackendError(f"{url}: the board has {_listing(entries)}, none of them a "
                               f"processing element ({', '.join(ELEMENTS)})")
    entry = chosen[0]
    try:
        return ELEMENTS[entry["kind"]](entry, capabilities.max_payload)
    except ElementError as error:
        raise BackendError(f"{url}: {error}") from None
    except (KeyError, TypeError, ValueError) as error:
        raise BackendError(f"{url}: target {entry['id']}'s capability entry is not usable: "
                           f"{error}") from None


def _listing(entries: Sequence[dict[str, Any]]) -> str:
    return ", ".join(f"target {entry['id']} ({entry['kind']})" for entry in entries) or "none"
