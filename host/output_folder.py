"""Output folders of hilt's commands: checked before any work, claimed by kind, written whole.

Every command that writes a run folder (``train`` and ``demo``, ``sweep``, ``bench``,
``proof``, ``synapse-sweep``, ``build``) calls :func:`claim` before it starts working:
the folder must be new, empty, or one of the same kind (marked by :data:`MARKER`, or
recognised by the files an earlier hilt left there); any other is refused unless the user
said ``--force``, and a folder that cannot be created or written is refused at once, not
after the work. The results are written into a :class:`Staging` folder inside it and moved
into place only when the run has finished, so a run that fails or is interrupted leaves
what an earlier run wrote exactly as it was.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

logger = logging.getLogger(__name__)

MARKER = ".hilt-run.json"
"""The file that says which kind of run a folder holds: ``{"kind": KIND}``."""

KINDS = {
    "train": "a training run (hilt train or hilt demo)",
    "sweep": "a design-space sweep (hilt sweep)",
    "bench": "benchmark results (hilt bench)",
    "proof": "an end-to-end proof (hilt proof)",
    "synapse-sweep": "a synapse device sweep (hilt synapse-sweep)",
    "build": "a board build (hilt build)",
}
"""The kinds of run folder, as the messages describe them."""

STAGING_PREFIX = ".hilt-partial-"


class OutputError(ValueError):
    """An output folder or file hilt refuses to write; the message names the path, why,
    and what would be accepted."""


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write ``path`` so that it holds either its old content or all of ``data``."""
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json(path: Path) -> object:
    try:
        return json.loads(path.read_text(errors="replace"))
    except (OSError, ValueError, RecursionError):
        return None


def _has_keys(path: Path, *keys: str) -> bool:
    data = _json(path)
    return isinstance(data, dict) and all(key in data for key in keys)


def _legacy_kind(folder: Path) -> str | None:
    """The kind of a folder an earlier hilt wrote without a marker, from its files."""
    if _has_keys(folder / "config.json", "config_hash") \
            or _has_keys(folder / "results.json", "pareto_front"):
        return "sweep"
    if _has_keys(folder / "results.json", "algorithm") or (folder / "checkpoints").is_dir():
        return "train"
    if _has_keys(folder / "summary.json", "verdict"):
        return "proof"
    if (folder / "sweep.json").is_file() and (folder / "sweep.md").is_file():
        return "synapse-sweep"
    if any(folder.glob("*.report.json")) and any(folder.glob("*.nextpnr.log")):
        return "build"
    if any(path.with_suffix(".txt").is_file() for path in folder.glob("*.json")):
        return "bench"
    return None


def _contents(folder: Path) -> list[str]:
    """What a folder holds, leaving out the staging folders of hilt's own runs."""
    return sorted(path.name for path in folder.iterdir()
                  if not path.name.startswith(STAGING_PREFIX))


def recognise(folder: str | Path) -> str | None:
    """The kind of run ``folder`` holds; None if it is missing or empty; ``""`` if it holds
    files but no run hilt wrote."""
    folder = Path(folder)
    if not folder.is_dir() or not _contents(folder):
        return None
    marker = _json(folder / MARKER)
    if isinstance(marker, dict) and marker.get("kind") in KINDS:
        return marker["kind"]
    return _legacy_kind(folder) or ""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_staging(folder: Path) -> None:
    """Remove the staging folders of hilt runs that were killed (their process is gone)."""
    for path in folder.glob(f"{STAGING_PREFIX}*"):
        pid = path.name[len(STAGING_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            logger.info("%s: removing the unfinished files of a run that was killed", path)
            shutil.rmtree(path, ignore_errors=True)


def claim(folder: str | Path, kind: str, *, force: bool = False,
          option: str = "--out") -> Path:
    """Check that ``folder`` may receive a ``kind`` run, create it and mark it; the folder.

    Call it after the arguments are checked and before any work. ``force`` lets a run
    write into a folder of another kind, or a non-empty folder that holds no run; what
    is there is still only replaced file by file as the run finishes.

    Raises
    ------
    OutputError
        ``folder`` is a file, holds another kind of run or files that are no run (without
        ``force``), or cannot be created or written.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{option} {folder} is a file, not a folder; give a folder path")
    try:
        found = recognise(folder)
    except OSError as error:
        raise OutputError(f"cannot read {option} {folder}: {error.strerror}") from None
    if found not in (None, kind) and not force:
        if found:
            held = f"holds {KINDS[found]}"
        else:
            names = _contents(folder)
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            held = f"is not empty and holds no hilt run ({shown})"
        raise OutputError(f"{option} {folder} {held}; give another {option} for "
                          f"{KINDS[kind]}, or add --force to write into it anyway (only the "
                          f"files this run writes are replaced)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".hilt-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise OutputError(f"cannot write into {option} {folder}: {error.strerror}; give a "
                          f"folder you can write to") from None
    _remove_stale_staging(folder)
    if found != kind:
        write_atomic(folder / MARKER, json.dumps({"kind": kind}) + "\n")
    return folder


def _merge(source: Path, target: Path, last: Sequence[str]) -> None:
    """Move everything under ``source`` into ``target``, file by file, names in ``last``
    after the rest."""
    entries = sorted(source.iterdir(), key=lambda path: path.name in last)
    for entry in entries:
        destination = target / entry.name
        if entry.is_dir() and not entry.is_symlink():
            destination.mkdir(exist_ok=True)
            _merge(entry, destination, last)
        else:
            os.replace(entry, destination)


class Staging:
    """The files of one run, written into a hidden folder inside its output folder and
    moved into place when the run has finished.

    Use it as a context manager: a normal exit moves every staged file into the folder
    (those named in ``last``, such as the results file that marks a finished run, after
    the others); an exception discards them, leaving the folder as it was.

    Attributes
    ----------
    folder : Path
        The output folder.
    path : Path
        Where to write the run's files; the same names land in ``folder``.
    """

    def __init__(self, folder: str | Path, last: Sequence[str] = ("results.json",)) -> None:
        self.folder = Path(folder)
        self.last = tuple(last)
        self.path = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-",
                                          dir=self.folder))

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()

    def final(self, name: str) -> Path:
        """Where the staged file ``name`` will be once the run has finished."""
        return self.folder / name

    def commit(self) -> None:
        """Move the staged files into the folder."""
        _merge(self.path, self.folder, self.last)
        shutil.rmtree(self.path, ignore_errors=True)

    def discard(self) -> None:
        """Remove the staged files; the folder keeps what it held."""
        shutil.rmtree(self.path, ignore_errors=True)

    def keep_as(self, name: str) -> Path:
        """Keep the staged files of a failed run for inspection, as ``folder/name``."""
        kept = self.folder / name
        os.replace(self.path, kept)
        return kept
