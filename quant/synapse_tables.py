"""Step tables: a synapse device's response curve quantised to integer levels.

They are the number format that the integer golden model (:mod:`.synapse_golden`) and
the RTL cell (:mod:`hilt.hdl.synapse_cell`) share, so they live apart from both and
need nothing beyond the standard library and numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MAX_STATE_BITS", "StepTables", "check_int"]

MAX_STATE_BITS = 12


def check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    """Refuse a parameter that is not an int in ``low..high``, naming it and its value."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < low or (high is not None and value > high):
        accepted = f"{low}..{high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {accepted}, got {value}")
    return int(value)


@dataclass(frozen=True)
class StepTables:
    """The per-level step of an up and of a down pulse, for a cell of ``state_bits`` bits.

    Each table has one entry per level, and every entry must itself be a level count in
    ``0..2**state_bits - 1``: that is what makes the table fit the state width.
    """

    state_bits: int
    up: tuple[int, ...]
    down: tuple[int, ...]

    def __post_init__(self) -> None:
        check_int("state_bits", self.state_bits, 2, MAX_STATE_BITS)
        for name in ("up", "down"):
            table = getattr(self, name)
            entries = tuple(table)
            if len(entries) != self.levels:
                raise ValueError(
                    f"{name} table must have one entry per level, 2**state_bits = "
                    f"{self.levels}, got {len(entries)}"
                )
            for level, step in enumerate(entries):
                if isinstance(step, bool) or not isinstance(step, int | np.integer):
                    raise TypeError(f"{name}[{level}] must be an int, got {step!r}")
                if not 0 <= step <= self.max_state:
                    raise ValueError(
                        f"{name}[{level}] = {step} does not fit state_bits={self.state_bits}: "
                        f"a step must be in 0..{self.max_state}"
                    )
            object.__setattr__(self, name, tuple(int(step) for step in entries))

    @property
    def levels(self) -> int:
        """Number of states, ``2**state_bits``."""
        return 1 << self.state_bits

    @property
    def max_state(self) -> int:
        """The upper bound S; the lower one is 0."""
        return self.levels - 1
