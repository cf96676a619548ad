"""Running a sweep's tasks on a Ray cluster (``--ray ADDRESS``).

Ray is an optional extra (``pip install -e ".[ray]"``): this module imports it only when
a sweep asks for it. ``ADDRESS`` is what ``ray.init(address=...)`` takes: ``auto`` (the
cluster named by ``RAY_ADDRESS`` or the latest one started on this machine with
``ray start``), ``HOST:PORT`` of a cluster's head, or ``ray://HOST:PORT`` (Ray Client);
and ``local`` starts a private Ray instance in this process, for trying the path without
a cluster. Every node needs hilt installed with its toolchain (``.[toolchain]``).

Ray waits minutes for a head that does not answer, so the head's port is tried first,
with a short timeout, and a dead address is reported at once.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from .errors import PointFailed, RayUnavailable
from .tasks import Outcome, Task, run_task

CONNECT_TIMEOUT_S = 5.0
"""How long the head's port may take to accept a connection."""

LOCAL = "local"


def _latest_cluster() -> str | None:
    """The address ``ray start`` last recorded on this machine, where Ray looks for it
    (``/tmp/ray/ray_current_cluster``, unless ``RAY_TMPDIR`` or, on Linux, ``TMPDIR``
    moves it)."""
    if "RAY_TMPDIR" in os.environ:
        temp = os.environ["RAY_TMPDIR"]
    elif sys.platform.startswith("linux") and "TMPDIR" in os.environ:
        temp = os.environ["TMPDIR"]
    elif sys.platform.startswith(("linux", "darwin")):
        temp = "/tmp"
    else:
        temp = tempfile.gettempdir()
    path = Path(temp) / "ray" / "ray_current_cluster"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def head_endpoint(address: str) -> tuple[str, int] | None:
    """The ``(host, port)`` that must answer for ``address``; ``None`` if none is known.

    Raises
    ------
    RayUnavailable
        If ``address`` is not ``auto``, ``local``, ``HOST:PORT`` or ``ray://HOST:PORT``.
    """
    if address == LOCAL:
        return None
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS") or _latest_cluster() or ""
        if address in ("", "auto", LOCAL):
            return None
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon or not host or not port.isdigit():
        raise RayUnavailable(f"--ray must be auto, local, HOST:PORT or ray://HOST:PORT; got "
                             f"{address!r}")
    return host.strip("[]"), int(port)


class RayExecutor(AbstractContextManager):
    """Runs the tasks as Ray tasks of one CPU each on the cluster at ``address``.

    Parameters
    ----------
    address
        See the module docstring.
    workers
        CPUs of the private instance that ``address="local"`` starts (default: all
        cores); a cluster's own CPUs decide its parallelism.

    Connects on construction and disconnects (shutting the instance down, if it
    started one) when the ``with`` block ends; a Ray session that the caller had
    already started is used and left running.
    """

    def __init__(self, address: str, workers: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise RayUnavailable(
                f"--ray {address} needs Ray, which is not installed; install the extra "
                f"with: pip install -e \".[ray]\"") from None
        self._ray = ray
        self._remote = ray.remote(num_cpus=1)(run_task)
        self.description = f"Ray ({address})"
        self._owned = not ray.is_initialized()
        if not self._owned:
            return
        endpoint = head_endpoint(address)
        if endpoint is not None:
            _check_answers(address, *endpoint)
        try:
            if address == LOCAL:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                         logging_level=logging.WARNING)
            else:
                ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as error:
            if address == "auto" and endpoint is None:
                raise RayUnavailable(
                    "--ray auto found no running Ray cluster (RAY_ADDRESS is not set and "
                    "`ray start` has recorded none on this machine); start one with "
                    "`ray start --head`, give its HOST:PORT, or use --ray local for a "
                    "private instance") from None
            raise RayUnavailable(f"cannot connect to the Ray cluster at {address!r}: "
                                 f"{error}") from None

    def run(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, Outcome]]:
        ray = self._ray
        pending = {self._remote.remote(task): task for task in tasks}
        try:
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                task = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as error:
                    lines = [line for line in str(error).splitlines() if line.strip()]
                    raise PointFailed(
                        f"a Ray worker failed on the {task.kind} task of {task.params}: "
                        f"{lines[-1].strip() if lines else type(error).__name__} (every node "
                        f"needs hilt installed with its toolchain)") from None
                yield task, outcome
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def __exit__(self, *exc_info: object) -> None:
        if self._owned:
            self._ray.shutdown()


def _check_answers(address: str, host: str, port: int) -> None:
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        shown = address if address.endswith(f"{host}:{port}") else f"{address} = {host}:{port}"
        raise RayUnavailable(
            f"no Ray cluster answers at {shown} ({reason}, waited up to "
            f"{CONNECT_TIMEOUT_S:g} s); start one with `ray start --head`, or check the "
            f"address") from None
