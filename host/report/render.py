"""Writing a run folder's report: the page and its plots, whole or not at all.

The page must be an ``.html`` file, and every file the report would replace (the page,
its plots) must be one an earlier report wrote, known by the generator they name
(:data:`~.html.GENERATOR`), unless the user said ``--force``: a report never overwrites a
run's results or anything else. Everything is rendered in memory first; only then are
the plots written beside the page and, last, the page itself, each to a temporary file in
its folder renamed into place. So a report that fails leaves whatever was there before
as it was.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from hilt.host.output_folder import write_atomic

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
    except ReportError:
        raise
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as error:
        raise ReportError(f"the results in {run.path} are not shaped as hilt writes them "
                          f"({type(error).__name__}: {error}); expected a {run.kind} "
                          f"folder's files as `hilt` leaves them") from None
    footer = (f"Written by hilt report at {datetime.now().astimezone():{TIME_FORMAT}} "
              f"from {run.path.resolve()}.")
    return html.page(title, html.meta_table(items), sections, footer), images


def write_report(run_dir: str | Path, out: str | Path | None = None, *,
                 force: bool = False) -> tuple[Path, list[Path]]:
    """Render the report of ``run_dir`` to ``out`` (default ``RUN_DIR/report/index.html``),
    its plots beside it as PNG files; the page's path and the plots' paths.

    Raises
    ------
    ReportError
        ``out`` is not an ``.html`` path, or would replace a file no report wrote (unless
        ``force``); the folder is not a finished run (see :func:`~.folder.load_run`); or
        the report cannot be written. Whatever was at ``out`` is left as it was then.
    """
    out = Path(out) if out is not None else default_out(run_dir)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ReportError(f"--out {out}: the report is an HTML page; give a path ending in "
                          f".html (default {default_out(run_dir)})")
    if out.is_dir():
        raise ReportError(f"--out {out} is a folder; give the page's path, e.g. "
                          f"{out / 'index.html'}")
    page, images = render(run_dir)
    if not force:
        for path in [out, *(out.parent / image.name for image in images)]:
            _check_replaceable(path)
    return out, _write(out, page, images)


def _check_replaceable(path: Path) -> None:
    """Refuse to replace ``path`` unless it is missing or an earlier report wrote it."""
    if not path.exists():
        return
    try:
        with open(path, "rb") as existing:
            head = existing.read(1 << 16)
    except OSError as error:
        raise ReportError(f"cannot read {path}, which the report would replace: "
                          f"{error.strerror}") from None
    if path.is_file() and html.GENERATOR.encode() in head:
        return
    raise ReportError(f"{path} exists and is not a page or plot of hilt report; the "
                      f"report would replace it. Give another --out, or add --force to "
                      f"replace it")


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
