"""Writing a run folder's report: the page and its plots, whole or not at all.

Everything is rendered in memory first; only then are the plots written beside the page
and, last, the page itself, each to a temporary file in its folder renamed into place.
So a report that fails to render leaves no page behind, and a page from an earlier
report is removed rather than left to pass for this one.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path

from hilt.host.sweep.run_folder import write_atomic

from . import html
from .errors import ReportError
from .folder import load_run
from .header import TIME_FORMAT, header
from .sections import build_sections

PAGE = Path("report") / "index.html"
"""Where the page goes inside the run folder unless told otherwise."""


def default_out(run_dir: str | Path) -> Path:
    """The page's default path for the run folder ``run_dir``."""
    return Path(run_dir) / PAGE


def render(run_dir: str | Path) -> tuple[str, list[html.Image]]:
    """The page of the run folder ``run_dir`` and the plots it embeds, in memory."""
    run = load_run(run_dir)
    try:
        title, items = header(run)
        sections, images = build_sections(run)
    except (KeyError, IndexError, TypeError) as error:
        raise ReportError(f"the results in {run.path} are not shaped as hilt writes them "
                          f"({type(error).__name__}: {error}); expected a {run.kind} "
                          f"folder's files as `hilt` leaves them") from None
    footer = (f"Written by hilt report at {datetime.now().astimezone():{TIME_FORMAT}} "
              f"from {run.path.resolve()}.")
    return html.page(title, html.meta_table(items), sections, footer), images


def write_report(run_dir: str | Path, out: str | Path | None = None) -> tuple[Path, list[Path]]:
    """Render the report of ``run_dir`` to ``out`` (default ``RUN_DIR/report/index.html``),
    its plots beside it as PNG files; the page's path and the plots' paths.

    Raises
    ------
    ReportError
        The folder is not a finished run (see :func:`~.folder.load_run`), or the report
        cannot be written; no page is left at ``out`` then.
    """
    out = Path(out) if out is not None else default_out(run_dir)
    try:
        page, images = render(run_dir)
        plots = _write(out, page, images)
    except BaseException:
        with contextlib.suppress(OSError):
            out.unlink(missing_ok=True)
        raise
    return out, plots


def _write(out: Path, page: str, images: list[html.Image]) -> list[Path]:
    """Write the plots beside ``out``, then the page; the plots' paths."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        plots = []
        for image in images:
            write_atomic(out.parent / image.name, image.data)
            plots.append(out.parent / image.name)
        write_atomic(out, page)
    except OSError as error:
        raise ReportError(f"cannot write the report to {out}: "
                          f"{error.strerror or error}") from None
    return plots
