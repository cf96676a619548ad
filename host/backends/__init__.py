"""Backends: the one seam between training loops and the hardware or physical system they run on.

Open one by URL with :func:`open_backend` (see :mod:`hilt.host.backends.urls`).
"""

from hilt.host.backends.base import Backend, BackendError, BackendStats
from hilt.host.backends.urls import check_backend, open_backend

__all__ = ["Backend", "BackendError", "BackendStats", "check_backend", "open_backend"]
