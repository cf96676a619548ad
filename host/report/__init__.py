"""Reports of run folders: one self-contained HTML page per training run, sweep or
benchmark folder.

``hilt report RUN_DIR`` recognises what the folder holds (:mod:`.folder`), draws its
plots from the recorded numbers (:mod:`.plots`, device curves derived by
:mod:`.devices`), finds its resource counts and bit-exactness comparisons
(:mod:`.records`, :mod:`.exactness`), lays out the page (:mod:`.sections`,
:mod:`.html`) and writes it with its PNGs beside it, atomically (:mod:`.render`).

Importing this package is cheap: matplotlib, numpy, torch and the golden models load
only when a report is rendered.
"""

from __future__ import annotations

from .command import add_arguments, report_command
from .errors import ReportError
from .folder import Run, load_run
from .render import write_report

__all__ = ["ReportError", "Run", "add_arguments", "load_run", "report_command",
           "write_report"]
