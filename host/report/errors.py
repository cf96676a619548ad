"""The error a report gives its user.

A ``ValueError``, so that the command line reports it as it reports any bad parameter:
one line naming the path and what was expected, exit status 2, no traceback.
"""

from __future__ import annotations


class ReportError(ValueError):
    """A run folder hilt cannot report on, or a report it cannot write; the message says
    which path and what it expected there."""
