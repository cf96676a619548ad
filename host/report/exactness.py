"""Bit-exactness comparisons, found wherever a run recorded them.

hilt's regressions and proofs record a comparison of RTL (or a co-simulated board)
against the golden model as a record with a ``mismatches`` count beside what was
compared (``vectors``, ``values``, ``cells``); a run against a golden twin and a
co-simulated board records an ``identical`` (or ``same_result``, ``bit_exact``) verdict
beside its ``samples``. This module finds every such record in a JSON document, so the
report states exactly what was compared and with what result, and nothing when nothing
was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

COUNTS = ("vectors", "values", "cells", "samples")
"""Keys that say how much a comparison compared."""
VERDICTS = ("identical", "same_result", "bit_exact")
"""Keys of a yes/no verdict of two runs that must agree."""
NAMES = ("name", "simulator", "sim", "rule")
"""Keys whose text names a record better than its place in a list does."""


@dataclass(frozen=True)
class Comparison:
    """One recorded comparison: where it is, what it compared, and its result.

    ``mismatches`` is None for a yes/no verdict; ``exact`` is whether it found no
    difference.
    """

    where: str
    compared: str
    mismatches: int | None
    exact: bool


def _compared(record: dict[str, Any]) -> str:
    counts = [f"{record[key]} {key}" for key in COUNTS
              if isinstance(record.get(key), int) and not isinstance(record[key], bool)]
    return ", ".join(counts) or "not recorded"


def find_comparisons(data: Any, where: str = "") -> list[Comparison]:
    """Every comparison recorded in ``data``, ``where`` naming the document."""
    found = []
    if isinstance(data, dict):
        name = next((data[key] for key in NAMES if isinstance(data.get(key), str)), None)
        if name is not None:
            where = f"{where} {name}"
        mismatches = data.get("mismatches")
        if isinstance(mismatches, int) and not isinstance(mismatches, bool):
            found.append(Comparison(where, _compared(data), mismatches, mismatches == 0))
        for key in VERDICTS:
            if isinstance(data.get(key), bool):
                found.append(Comparison(f"{where} ({key})", _compared(data), None, data[key]))
        for key, value in data.items():
            found += find_comparisons(value, f"{where}.{key}" if where else str(key))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            found += find_comparisons(item, f"{where}[{index}]")
    return found
