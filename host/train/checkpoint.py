"""Checkpoints of long training runs: written whole or not at all, checked before use.

A checkpoint is one file holding a training loop's whole state (parameters, optimiser
state, random generators, the step it reached, a backend's state): enough that a run
killed mid-epoch and resumed reaches the same parameters as one that was not. The file
is written to a temporary name and renamed into place, so a crash while saving leaves
the previous checkpoint intact.

The file is a format tag, a SHA-256 of the rest, the run's configuration as JSON, and
the state as a torch file of tensors and plain data only. A load checks the tag, the
digest and the configuration first, and only then reads the state, with
``torch.load(weights_only=True)``: a file that was tampered with can hold wrong numbers,
never code that runs. NumPy arrays in the state are stored as tagged byte tensors and
come back as arrays.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import struct
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

FORMAT = "hilt-checkpoint"
VERSION = 3
_MAGIC = f"{FORMAT} v{VERSION}\n".encode()
_DIGEST_BYTES = 32
_LENGTH = struct.Struct(">I")
_ARRAY_TAG = "__ndarray__"

Run = TypeVar("Run")


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


def _encode(value: Any) -> Any:
    """``value`` with NumPy arrays and scalars turned into what a weights-only load reads."""
    if isinstance(value, np.ndarray):
        data = torch.frombuffer(bytearray(np.ascontiguousarray(value).tobytes()) or
                                bytearray(1), dtype=torch.uint8)
        return {_ARRAY_TAG: value.dtype.str, "shape": list(value.shape), "data": data}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_encode(item) for item in value)
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if _ARRAY_TAG in value:
            dtype = np.dtype(value[_ARRAY_TAG])
            count = int(np.prod(value["shape"], dtype=np.int64))
            raw = value["data"].numpy().tobytes()[:count * dtype.itemsize]
            return np.frombuffer(raw, dtype=dtype).reshape(value["shape"]).copy()
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_decode(item) for item in value)
    return value


def _canonical(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(config, sort_keys=True))


def save_checkpoint(path: str | Path, state: dict[str, Any], *, config: dict[str, Any],
                    step: int | None = None) -> Path:
    """Write ``state`` (tensors, NumPy arrays and plain data) for the run ``config``
    (JSON data) describes, at optimiser step ``step`` (read back by :func:`checkpoint_step`).

    The previous file at ``path`` stays whole until the new one is complete.
    """
    path = Path(path)
    header = json.dumps({"config": _canonical(config), "step": step}, sort_keys=True).encode()
    buffer = io.BytesIO()
    torch.save(_encode(state), buffer)
    rest = _LENGTH.pack(len(header)) + header + buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as out:
        out.write(_MAGIC + hashlib.sha256(rest).digest() + rest)
        out.flush()
        os.fsync(out.fileno())
    partial.replace(path)
    return path


def _read(path: Path) -> tuple[dict[str, Any], bytes]:
    """The checked header and the state's bytes of the checkpoint at ``path``."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CheckpointError(f"cannot read the checkpoint {path}: {error.strerror}") from None
    if not data.startswith(_MAGIC):
        older = data.startswith(f"{FORMAT} v".encode())
        raise CheckpointError(
            f"{path} is {'a checkpoint of an older hilt' if older else 'not a checkpoint'} "
            f"(expected a {FORMAT} v{VERSION} file); start the run afresh with --force")
    digest = data[len(_MAGIC):len(_MAGIC) + _DIGEST_BYTES]
    rest = data[len(_MAGIC) + _DIGEST_BYTES:]
    if hashlib.sha256(rest).digest() != digest:
        raise CheckpointError(f"{path} is truncated or corrupted (its SHA-256 does not "
                              f"match); start the run afresh with --force")
    try:
        (length,) = _LENGTH.unpack_from(rest)
        header = json.loads(rest[_LENGTH.size:_LENGTH.size + length])
        saved_config = header["config"]
        if not isinstance(saved_config, dict):
            raise TypeError("config is not an object")
    except (TypeError, ValueError, KeyError, RecursionError, struct.error) as error:
        raise CheckpointError(f"{path} has no readable configuration ({error}); start the "
                              f"run afresh with --force") from None
    return header, rest[_LENGTH.size + length:]


def checkpoint_step(path: str | Path) -> int | None:
    """The step a readable checkpoint at ``path`` reached, by its header; else None."""
    try:
        header, _ = _read(Path(path))
    except CheckpointError:
        return None
    step = header.get("step")
    return step if isinstance(step, int) else None


def load_checkpoint(path: str | Path, *, config: dict[str, Any]) -> dict[str, Any]:
    """The state saved at ``path``, refused unless it is whole and from a run of ``config``.

    The configuration is compared before the state is read; the state is read with
    ``weights_only=True``.

    Raises
    ------
    CheckpointError
        The file is missing, is not a checkpoint of this version, is truncated or
        corrupted (its digest does not match), was written by a run with another
        configuration (the differing fields are named), or holds something other than
        tensors and plain data.
    """
    path = Path(path)
    header, body = _read(path)
    saved, current = header["config"], _canonical(config)
    differing = sorted(key for key in set(current) | set(saved)
                       if current.get(key) != saved.get(key))
    if differing:
        detail = ", ".join(f"{key}: {saved.get(key)!r} saved, {current.get(key)!r} now"
                           for key in differing)
        raise CheckpointError(f"{path} belongs to a run with another configuration "
                              f"({detail}); resume with the same settings or use another "
                              f"output folder")
    try:
        state = torch.load(io.BytesIO(body), weights_only=True)
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{path} holds something other than tensors and plain data, "
                              f"so it is not read ({reason}); start the run afresh with "
                              f"--force") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a training "
                              f"state; start the run afresh with --force")
    return _decode(state)


def check_tensors(path: str | Path, what: str, expected: Mapping[str, torch.Tensor],
                  saved: object) -> None:
    """Refuse ``saved`` unless it has exactly the tensors of ``expected``, name for name,
    in the same shapes; the message names the file and the first difference."""
    if not isinstance(saved, Mapping):
        raise CheckpointError(f"{path}: its {what} is a {type(saved).__name__}, not a "
                              f"mapping of tensors; it is not from this run")
    missing = sorted(set(expected) - set(saved))
    extra = sorted(set(saved) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{path}: its {what} lacks {missing or 'nothing'} and has "
                              f"{extra or 'nothing'} more than this run's; it is not from "
                              f"this run")
    for name, tensor in expected.items():
        other = saved[name]
        if not isinstance(other, torch.Tensor) or other.shape != tensor.shape \
                or other.dtype != tensor.dtype:
            shape = tuple(other.shape) if isinstance(other, torch.Tensor) else type(other)
            raise CheckpointError(f"{path}: its {what} {name} is {shape}, this run's is "
                                  f"{tuple(tensor.shape)} {tensor.dtype}; it is not from "
                                  f"this run")


def save_training(path: str | Path, config: dict[str, Any], *, step: int, net: nn.Module,
                  optimizers: Sequence[torch.optim.Optimizer], generator: torch.Generator,
                  backends: Sequence[Any], run: dict[str, Any]) -> None:
    """Checkpoint a training loop: the net, its optimisers, the loop's generator and the
    global ones, the state of every backend that has a ``state_dict`` (None for the rest),
    and the loop's own ``run`` counters."""
    states = [getattr(backend, "state_dict", None) for backend in backends]
    save_checkpoint(path, {
        "net": net.state_dict(),
        "optimizers": [optimizer.state_dict() for optimizer in optimizers],
        "generator": generator.get_state(),
        "rng": rng_state(),
        "backends": [None if state is None else state() for state in states],
        "run": run,
    }, config=config, step=step)


def restore_training(path: str | Path, config: dict[str, Any], *, net: nn.Module,
                     optimizers: Sequence[torch.optim.Optimizer], generator: torch.Generator,
                     backends: Sequence[Any], run_from: Callable[[dict[str, Any]], Run]) -> Run:
    """Bring back what :func:`save_training` wrote into the live objects; the loop's
    counters as ``run_from`` rebuilds them. A state that does not fit raises
    :class:`CheckpointError` naming the file."""
    state = load_checkpoint(path, config=config)
    check_tensors(path, "network", net.state_dict(), state.get("net"))
    try:
        run = run_from(state["run"])
        net.load_state_dict(state["net"])
        for optimizer, saved in zip(optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(saved)
        generator.set_state(state["generator"])
        set_rng_state(state["rng"])
        for backend, saved in zip(backends, state["backends"], strict=True):
            if saved is not None:
                backend.load_state_dict(saved)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as error:
        reason = " ".join(str(error).split())
        raise CheckpointError(f"{path}: its state does not fit this run "
                              f"({type(error).__name__}: {reason}); start the run afresh "
                              f"with --force") from None
    return run
