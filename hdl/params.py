"""Validation of hardware parameters, so that every component refuses bad sizes the same way."""

from __future__ import annotations


def check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    """Refuse a parameter that is not an int in ``low..high``, naming it and its value."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < low or (high is not None and value > high):
        accepted = f"{low}..{high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {accepted}, got {value}")
    return value
