"""Checkpoints of long training runs: written whole or not at all, and checked on load.

A checkpoint is one file holding a training loop's whole state (parameters, optimiser
state, random generators, the step it reached, a backend's state): enough that a run
killed mid-epoch and resumed reaches the same parameters as one that was not. The file
is written to a temporary name and renamed into place, so a crash while saving leaves
the previous checkpoint intact; it carries a format tag, the run's configuration and a
SHA-256 of its contents, so a truncated, corrupted or foreign file is refused with a
message that says which, rather than resumed from.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = "hilt-checkpoint"
VERSION = 1
_MAGIC = f"{FORMAT} v{VERSION}\n".encode()
_DIGEST_BYTES = 32


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message names the file and why."""


def rng_state() -> dict[str, Any]:
    """The state of Python's, NumPy's global and torch's CPU random generators."""
    return {"python": random.getstate(), "numpy": np.random.get_state(),
            "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save_checkpoint(path: str | Path, state: dict[str, Any], *,
                    config: dict[str, Any]) -> Path:
    """Write ``state`` (anything ``torch.save`` takes) for the run ``config`` describes.

    The previous file at ``path`` stays whole until the new one is complete.
    """
    path = Path(path)
    buffer = io.BytesIO()
    torch.save({"config": config, "state": state}, buffer)
    body = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as out:
        out.write(_MAGIC + hashlib.sha256(body).digest() + body)
        out.flush()
        os.fsync(out.fileno())
    partial.replace(path)
    return path


def load_checkpoint(path: str | Path, *, config: dict[str, Any]) -> dict[str, Any]:
    """The state saved at ``path``, refused unless it is whole and from a run of ``config``.

    Raises
    ------
    CheckpointError
        The file is missing, is not a checkpoint, is truncated or corrupted (its digest
        does not match), or was written by a run with another configuration (the
        differing fields are named).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CheckpointError(f"cannot read the checkpoint {path}: {error.strerror}") from None
    if not data.startswith(_MAGIC):
        raise CheckpointError(f"{path} is not a {FORMAT} v{VERSION} file")
    digest = data[len(_MAGIC):len(_MAGIC) + _DIGEST_BYTES]
    body = data[len(_MAGIC) + _DIGEST_BYTES:]
    if hashlib.sha256(body).digest() != digest:
        raise CheckpointError(f"{path} is truncated or corrupted (its SHA-256 does not "
                              f"match); delete it to start the run afresh")
    try:
        saved = torch.load(io.BytesIO(body), weights_only=False)
    except Exception as error:
        raise CheckpointError(f"{path} could not be read back: {error}") from None
    differing = sorted(key for key in set(config) | set(saved["config"])
                       if config.get(key) != saved["config"].get(key))
    if differing:
        detail = ", ".join(f"{key}: {saved['config'].get(key)!r} saved, {config.get(key)!r} now"
                           for key in differing)
        raise CheckpointError(f"{path} belongs to a run with another configuration "
                              f"({detail}); resume with the same settings or use another "
                              f"output folder")
    return saved["state"]
