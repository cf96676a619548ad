"""The simulation harness's errors, one class per thing a user can act on."""

from __future__ import annotations

from pathlib import Path


class SimulationError(RuntimeError):
    """Base class of the harness's errors."""


class SimulatorNotFound(SimulationError):
    """A simulator, or a tool that it needs, is not installed."""


class BuildFailed(SimulationError):
    """The simulator rejected the generated Verilog or its C++ did not compile."""


class SimulationFailed(SimulationError):
    """The testbench failed, or the simulator stopped before it finished.

    Attributes
    ----------
    failures : list of str
        One ``"<test name>: <message>"`` per failed cocotb test, as the results XML has it.
    results : dict or None
        What the testbench wrote before it failed, if anything.
    run_dir : Path or None
        The kept run directory, with ``sim.log``, ``results.xml`` and any waveform; None
        for a run in Amaranth's simulator that recorded no waveform (it keeps no files).
    """

    def __init__(self, message: str, *, failures: list[str], results: dict | None,
                 run_dir: Path | None):
        super().__init__(message)
        self.failures = failures
        self.results = results
        self.run_dir = run_dir

