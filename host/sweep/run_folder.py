"""The run folder of a sweep: its config, and one line per finished point.

``points.jsonl`` gets one JSON object per finished point, appended, flushed and fsynced
before the next, with the point's parameters and the config's hash. So a sweep that is
stopped, or killed, loses at most the points in flight: a rerun with the same config
skips the finished ones. A kill in the middle of a write can leave a torn last line
(no newline); it is cut off on the next start. ``config.json`` holds the normalised
config the folder belongs to; a different config is refused rather than mixed in.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from hilt.host.output_folder import OutputError, claim, write_atomic

from .config import SweepConfig
from .cost import RESOURCES
from .errors import RunFolderError

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
POINTS_FILE = "points.jsonl"
POINT_NUMBERS = ("accuracy", "train_s", "synth_s", "seconds", *RESOURCES)
"""The numbers every finished point's record holds."""


def point_key(params: dict[str, Any]) -> str:
    """A point's identity: its parameters as canonical JSON."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


class RunFolder:
    """A sweep's output folder, opened for one config.

    Parameters
    ----------
    path
        The folder; created if missing.
    config
        The sweep's config. A folder that holds another config's sweep is refused.
    force
        Take a folder that holds another kind of run, or files that are no run (see
        :func:`~hilt.host.output_folder.claim`).

    Attributes
    ----------
    finished : dict of str to dict
        The records of the points already finished, by :func:`point_key`.
    repaired : bool
        Whether opening cut off a torn last line.
    """

    def __init__(self, path: str | Path, config: SweepConfig, *, force: bool = False) -> None:
        self.path = Path(path)
        self.config = config
        try:
            claim(self.path, "sweep", force=force)
        except OutputError as error:
            raise RunFolderError(str(error)) from None
        self._claim()
        self.repaired = False
        self.finished = self._load()

    @property
    def points_file(self) -> Path:
        return self.path / POINTS_FILE

    def _refuse(self, what: str) -> RunFolderError:
        return RunFolderError(
            f"run folder {str(self.path)!r} {what}; this config's hash is "
            f"{self.config.hash}. Give a fresh output folder (--out), or delete this one "
            f"to start over")

    def _claim(self) -> None:
        config_file = self.path / CONFIG_FILE
        record = {"config_hash": self.config.hash, "config": self.config.as_json()}
        if not config_file.exists():
            write_atomic(config_file, json.dumps(record, indent=2) + "\n")
            return
        try:
            held = json.loads(config_file.read_text())["config_hash"]
        except (OSError, ValueError, KeyError, TypeError):
            raise self._refuse(f"has a {CONFIG_FILE} that is not a sweep's") from None
        if held != self.config.hash:
            raise self._refuse(f"holds the sweep of another config (hash {held}, see its "
                               f"{CONFIG_FILE})")

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            raw = self.points_file.read_bytes()
        except FileNotFoundError:
            return {}
        complete = raw.rfind(b"\n") + 1
        lines = raw[:complete].decode(errors="replace").split("\n")[:-1]
        torn = complete < len(raw)
        if lines and not torn and not _parses(lines[-1]):
            # A last line cut short by a crash may still have got its newline.
            complete = raw.rfind(b"\n", 0, complete - 1) + 1
            lines.pop()
            torn = True
        if torn:
            logger.warning("%s: cut off a torn last line (%d bytes) left by an interrupted "
                           "run", self.points_file, len(raw) - complete)
            os.truncate(self.points_file, complete)
            self.repaired = True
        known = {point_key(p) for p in self.config.points()}
        finished = {}
        for number, line in enumerate(lines, 1):
            where = f"{self.points_file}, line {number}"
            try:
                record = json.loads(line)
                held, params = record["config_hash"], record["params"]
            except (ValueError, KeyError, TypeError, RecursionError):
                raise RunFolderError(f"{where} is not a point record; delete the line or "
                                     f"give a fresh output folder (--out)") from None
            lacking = [name for name in POINT_NUMBERS if not _number(record.get(name))]
            if not isinstance(params, dict) or lacking:
                what = (f"lacks {', '.join(lacking)} (each a finite number)"
                        if isinstance(params, dict) else "has params that are not an object")
                raise RunFolderError(f"{where} {what}; delete the line to measure the point "
                                     f"again, or give a fresh output folder (--out)")
            if held != self.config.hash:
                raise self._refuse(f"has a point of another config ({where}: hash {held})")
            key = point_key(params)
            if key not in known:
                raise self._refuse(f"has a point that is not on this config's grid ({where})")
            finished[key] = record
        return finished

    def append(self, record: dict[str, Any]) -> None:
        """Add one finished point's record, durably, before returning."""
        record = {"config_hash": self.config.hash, **record}
        with open(self.points_file, "a") as out:
            out.write(json.dumps(record) + "\n")
            out.flush()
            os.fsync(out.fileno())
        self.finished[point_key(record["params"])] = record


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except (ValueError, RecursionError):
        return False
    return True


def _number(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))
