"""Exit statuses of the ``procman`` command."""

from __future__ import annotations

import enum
import signal


class ExitStatus(enum.IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    SIGHUP = 128 + signal.SIGHUP
    SIGINT = 128 + signal.SIGINT
    SIGTERM = 128 + signal.SIGTERM


def status_for_signal(signum: int) -> int:
    """The shell convention: a process ended by signal N reports 128 + N."""
    return 128 + signum
