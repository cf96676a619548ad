"""The Backend: the one seam between a training loop and what it trains against.

A training loop sees one layer of computation it can query but never differentiate: a
processing element on a board (real, co-simulated, or its in-process golden twin) or a
physical system. Every backend answers the same small interface: :meth:`describe`
itself, :meth:`load` parameters, :meth:`forward` a batch, :meth:`pulse` updates into it,
:meth:`read_state` back; and counts what it was asked, since physical queries are the
cost a backprop-free algorithm is judged by.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any

import numpy as np

from hilt.host.protocol.synapse_layout import Slot

OPERATIONS = ("forward", "load", "pulse", "read_state")
"""What a training algorithm may require of a backend (see :meth:`Backend.require`)."""


NEEDS = {"pulse": "synapse_crossbar", "read_state": "synapse_crossbar"}
"""The element kind that offers an operation not every element has."""


class BackendError(Exception):
    """A backend that cannot be opened or cannot do what it was asked; the message names
    the backend, what was wrong and what would work."""


@dataclass
class BackendStats:
    """What a backend was asked since it was opened."""

    queries: int = 0
    """Input vectors forwarded (each one a measurement of a physical system)."""
    forward_calls: int = 0
    loads: int = 0
    pulse_slots: int = 0
    reads: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Backend(ABC):
    """One queryable layer (see the module docstring); close it, or use ``with``.

    Attributes
    ----------
    url : str
        What it was opened from (see :func:`hilt.host.backends.open_backend`).
    kind : str
        The element's kind: ``shift_array``, ``binary_layer``, ``synapse_crossbar`` or
        ``physical``.
    in_features, out_features : int
        Width of one input vector and of one result vector.
    """

    url: str
    kind: str
    in_features: int
    out_features: int
    operations: tuple[str, ...]
    """The operations of :data:`OPERATIONS` this backend supports."""

    def __init__(self) -> None:
        self.stats = BackendStats()
        self.closed = False

    def check_open(self) -> None:
        """Refuse to use a backend after :meth:`close`, naming it."""
        if self.closed:
            raise BackendError(f"{self.url}: this backend was closed; open the URL again to "
                               f"use it")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, {self.kind} {self.in_features} -> " \
               f"{self.out_features})"

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def require(self, *operations: str, why: str = "") -> None:
        """Refuse, naming what is missing and what the backend does offer, unless it
        supports every one of ``operations``."""
        unknown = [op for op in operations if op not in OPERATIONS]
        if unknown:
            raise ValueError(f"operations must be among {', '.join(OPERATIONS)}, got {unknown}")
        missing = [op for op in operations if op not in self.operations]
        if missing:
            reason = f" ({why})" if why else ""
            kinds = sorted({NEEDS[op] for op in missing if op in NEEDS})
            hint = (f"; use a board whose firmware carries a {' or '.join(kinds)} (e.g. "
                    f"golden:icebreaker?pe=synapse)") if kinds else ""
            raise BackendError(f"{self.url}: its {self.kind} cannot {', '.join(missing)}"
                               f"{reason}; it offers {', '.join(self.operations)}{hint}")

    def check_width(self, features: int, what: str = "the data set") -> None:
        """Refuse inputs of ``features`` columns unless they fit ``in_features``."""
        if features != self.in_features:
            raise BackendError(f"{self.url}: {what} has {features} features per sample but "
                               f"its {self.kind} takes {self.in_features}; pick a board or "
                               f"element whose input width is {features}, or project the "
                               f"data to {self.in_features} features first")

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What the backend is: its url, kind, widths and the element's parameters."""

    @abstractmethod
    def forward(self, x: np.ndarray) -> np.ndarray:
        """The result vectors of the batch ``x`` (N, in_features), in order."""

    def load(self, **arrays: Any) -> None:
        """Load the element's parameters (named arrays, as its kind takes them)."""
        self.require("load")

    def pulse(self, slots: Sequence[Slot]) -> None:
        """Apply conductance-update slots (synapse crossbars)."""
        self.require("pulse")

    def read_state(self) -> dict[str, np.ndarray]:
        """The element's state read back (synapse crossbars: conductance levels)."""
        self.require("read_state")
        return {}

    @abstractmethod
    def close(self) -> None:
        """Release the link and anything the backend started; it can then not be used."""
