"""The errors a sweep reports to its user.

Each is a ``ValueError``, so that the command line reports it the way it reports any
bad parameter: one line naming what was wrong and what would be accepted, exit status
2, no traceback.
"""

from __future__ import annotations


class SweepError(ValueError):
    """A sweep cannot start or cannot go on; the message says why and what to do."""


class SweepConfigError(SweepError):
    """The sweep's config file is unreadable or names something hilt does not accept."""


class RunFolderError(SweepError):
    """The output folder holds another config's sweep, or a points file it cannot read."""


class RayUnavailable(SweepError):
    """Ray is not installed, or the cluster at the given address does not answer."""


class PointFailed(SweepError):
    """Evaluating one point (training or synthesis) raised; the message names the point."""
