"""``hilt report RUN_DIR``: the report's command-line face.

:func:`add_arguments` declares the arguments on the ``report`` subparser;
:func:`report_command` writes the page and says where. Both import nothing heavy, so
building the command line stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .render import PAGE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the report's arguments to ``parser`` (the ``report`` subparser)."""
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR",
                        help="a folder of hilt train, hilt sweep or hilt bench")
    parser.add_argument("--out", type=Path, default=None, metavar="PATH",
                        help=f"the HTML page to write (default RUN_DIR/{PAGE}); its PNG plots "
                             "go beside it")
    parser.add_argument("--force", action="store_true",
                        help="replace files at the page's or the plots' paths that no "
                             "report wrote")


def report_command(run_dir: str | Path, out: str | Path | None = None, *,
                   force: bool = False) -> int:
    """Write the report of ``run_dir`` and print where; the exit status (0).

    A folder that is not a finished run, or a page that cannot be written, raises
    :class:`~hilt.host.report.errors.ReportError`, a ``ValueError`` with a one-line
    message.
    """
    from .render import write_report

    page, plots = write_report(run_dir, out, force=force)
    print(f"hilt report: wrote {page} ({len(plots)} plot{'s' if len(plots) != 1 else ''} "
          f"beside it, also embedded in the page)")
    return 0
