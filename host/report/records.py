"""Tables from JSON: a benchmark's rows, and the resource columns of any rows.

Benchmarks write their numbers as JSON of their own shape. A list of records is a table
when each record is flat once its nested mappings are spelt out as dotted columns
(``cells.SB_LUT4``), every value then a number, a string, a flag or a short list of
them; a mapping is shown as a table of its plain values, a table of its records by name
when it holds nothing else, and the tables of whatever it nests. Cells are formatted the
same way everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

RESOURCES = (("luts", "LUTs"), ("flip_flops", "FFs"), ("dsps", "DSPs"), ("brams", "BRAMs"),
             ("fmax_mhz", "Fmax (MHz)"))
"""Resource keys as hilt's synthesis and build reports name them, with their headers."""
LONG_LIST = 12
"""A list longer than this is shown as its length, not its items."""


@dataclass(frozen=True)
class RecordTable:
    """A table found in JSON: where it was (a dotted path, empty at the top), its
    columns, its rows as text, and the (flattened) records it was made of."""

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    records: tuple[dict[str, Any], ...] = ()


def cell(value: Any) -> str:
    """One value as table text: floats to 6 significant digits, lists joined."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return (", ".join(cell(v) for v in value) if len(value) <= LONG_LIST
                else f"{len(value)} values")
    return str(value)


def _plain(value: Any) -> bool:
    if isinstance(value, list):
        return all(v is None or isinstance(v, str | int | float) for v in value)
    return value is None or isinstance(value, str | int | float)


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any] | None:
    """``record`` with nested mappings spelt out as dotted keys, or None if anything in
    it is not plain (a list of mappings, say)."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            inner = flatten(value, f"{name}.")
            if inner is None:
                return None
            flat.update(inner)
        elif _plain(value):
            flat[name] = value
        else:
            return None
    return flat


def _records(items: Sequence[Any]) -> list[dict[str, Any]] | None:
    """``items`` flattened, if they are all records that flatten."""
    if not items or not all(isinstance(item, dict) and item for item in items):
        return None
    flat = [flatten(item) for item in items]
    return [f for f in flat if f is not None] if all(f is not None for f in flat) else None


def _columns(records: Sequence[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(key for record in records for key in record))


def _table(title: str, records: list[dict[str, Any]]) -> RecordTable:
    keys = _columns(records)
    rows = tuple(tuple(cell(r.get(k)) for k in keys) for r in records)
    return RecordTable(title, tuple(keys), rows, tuple(records))


def record_tables(data: Any, title: str = "") -> list[RecordTable]:
    """Every table in ``data``, titled by its path inside it."""
    if isinstance(data, list):
        records = _records(data)
        if records is not None:
            return [_table(title, records)]
        return [t for i, item in enumerate(data) for t in record_tables(item, f"{title}[{i}]")]
    if not isinstance(data, dict):
        return []
    tables = []
    plain = {key: value for key, value in data.items() if _plain(value)}
    if plain:
        tables.append(RecordTable(title, ("name", "value"),
                                  tuple((key, cell(value)) for key, value in plain.items())))
    nested = {key: value for key, value in data.items() if not _plain(value)}
    by_name = _records(list(nested.values())) if len(nested) > 1 else None
    if by_name is not None:
        return [*tables, _table(title, [{"name": key, **record}
                                        for key, record in zip(nested, by_name, strict=True)])]
    for key, value in nested.items():
        tables += record_tables(value, f"{title}.{key}" if title else key)
    return tables


def resource_table(records: Sequence[dict[str, Any]], keys: Sequence[str] | None = None,
                   headers: Sequence[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """The columns ``keys`` (as ``headers``; default: every top-level key of the records
    that is not a resource) of ``records``, then each resource column any record has;
    the headers and the rows as text."""
    names = dict(RESOURCES)
    if keys is None:
        keys = [key for key in _columns(records) if key not in names and "." not in key]
    present = [(key, header) for key, header in RESOURCES if any(key in r for r in records)]
    head = [*(keys if headers is None else headers), *(header for _, header in present)]
    rows = [[cell(r.get(k)) for k in keys] + [cell(r.get(k)) for k, _ in present]
            for r in records]
    return head, rows


def with_resources(records: Sequence[dict[str, Any]]) -> bool:
    """Whether any of ``records`` holds a resource count (it has LUTs)."""
    return any("luts" in record for record in records)
