"""The checks every trainer's config runs on its fields: each refuses a value by naming
the field, the value and what would be accepted, in one line."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from hilt.host.arguments import SEED_MAX

MAX_WIDTH = 8192
"""The widest layer a config takes: 8192 x 8192 weights and their Adam state are 1 GiB."""
MAX_COUNT = 1_000_000
"""The most epochs, batch size or other count a config takes."""


def is_int(value: object) -> bool:
    """Whether ``value`` is an integer (Python or numpy), not a bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def check_int(name: str, value: object, minimum: int, maximum: int = MAX_COUNT) -> None:
    """Refuse ``value`` unless it is an int in ``minimum..maximum``."""
    if not is_int(value) or not minimum <= value <= maximum:
        raise ValueError(f"{name} = {value!r}: accepted an int from {minimum} to {maximum}")


def check_seed(value: object) -> None:
    """Refuse ``value`` unless it is a seed every generator takes."""
    check_int("seed", value, 0, SEED_MAX)


def check_number(name: str, value: object, *, allow_none: bool = False,
                 at_most: float | None = None, below: float | None = None,
                 minimum: float = 0.0, inclusive: bool = False) -> None:
    """Refuse ``value`` unless it is a finite number above ``minimum`` (or equal to it
    where ``inclusive``), at most ``at_most``, below ``below``, or an allowed None."""
    if value is None and allow_none:
        return
    number = isinstance(value, int | float | np.number) and not isinstance(value, bool)
    ok = (number and math.isfinite(value)
          and (value >= minimum if inclusive else value > minimum)
          and (at_most is None or value <= at_most) and (below is None or value < below))
    if not ok:
        accepted = f"a finite number {'>=' if inclusive else '>'} {minimum:g}"
        accepted += f" and <= {at_most:g}" if at_most is not None else ""
        accepted += f" and < {below:g}" if below is not None else ""
        accepted += " or None" if allow_none else ""
        raise ValueError(f"{name} = {value!r}: accepted {accepted}")


def check_choice(name: str, value: object, accepted: Sequence[str]) -> None:
    """Refuse ``value`` unless it is one of ``accepted``."""
    if not isinstance(value, str) or value not in accepted:
        raise ValueError(f"{name} = {value!r}: accepted {tuple(accepted)}")


def check_flag(name: str, value: object) -> None:
    """Refuse ``value`` unless it is a bool."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} = {value!r}: accepted True or False")


def check_widths(name: str, widths: Sequence[int]) -> tuple[int, ...]:
    """``widths`` as a tuple, refused unless it is one or more ints from 1 to
    :data:`MAX_WIDTH`."""
    try:
        values = tuple(widths)
    except TypeError:
        values = ()
    if not values or any(not is_int(width) or not 1 <= width <= MAX_WIDTH
                         for width in values):
        raise ValueError(f"{name} = {widths!r}: accepted one or more layer widths, ints "
                         f"from 1 to {MAX_WIDTH}")
    return values


def check_indices(name: str, value: object, layers: int | None) -> tuple[int, ...] | None:
    """``value`` as a tuple of distinct layer indices (in ``0..layers-1`` where the count
    is known), or None."""
    if value is None:
        return None
    try:
        chosen = tuple(value)
    except TypeError:
        chosen = ()
    top = math.inf if layers is None else layers
    if not chosen or len(set(chosen)) != len(chosen) or \
            any(not is_int(i) or not 0 <= i < top for i in chosen):
        within = ">= 0" if layers is None else f"in 0..{layers - 1}"
        raise ValueError(f"{name} = {value!r}: accepted distinct layer indices {within}, "
                         f"or None")
    return chosen
