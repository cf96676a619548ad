"""Design-space sweeps: accuracy and FPGA cost over a grid of element parameters.

``hilt sweep CONFIG`` trains each number format's network on the digits (integer golden
model, no RTL), synthesises each point's hardware with Yosys, runs the points on local
processes or a Ray cluster, resumes an interrupted run, and reports the Pareto front of
accuracy against LUTs. See ``docs/sweep.md``.

Importing this package is cheap: torch, Amaranth, matplotlib and Ray load only when a
sweep needs them.
"""

from __future__ import annotations

from .command import add_arguments, sweep_command
from .config import SweepConfig, load_config, parse_config
from .errors import (
    PointFailed,
    RayUnavailable,
    RunFolderError,
    SweepConfigError,
    SweepError,
)
from .pareto import pareto_front
from .run import SweepResult, run_sweep

__all__ = [
    "PointFailed",
    "RayUnavailable",
    "RunFolderError",
    "SweepConfig",
    "SweepConfigError",
    "SweepError",
    "SweepResult",
    "add_arguments",
    "load_config",
    "pareto_front",
    "parse_config",
    "run_sweep",
    "sweep_command",
]
