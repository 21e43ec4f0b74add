"""What a running supervisor reports: the state of every instance, as plain frozen values.

``procman ps`` shows a Snapshot (it travels over the control socket, see
control/protocol.py); anything else that shows the running app reads the same type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from procman.supervisor.process import State


@dataclass(frozen=True, slots=True)
class ProcessSnapshot:
    """One instance (``web.1``) at the moment of the snapshot."""

    name: str
    type: str
    pid: int | None
    """While it runs, else None."""
    state: State
    uptime: float | None
    """Seconds since this run started, while it runs, else None."""
    restarts: int
    """How many times it was started again since procman started."""
    last_exit: int | None
    """The status of its last run (minus the signal number if a signal ended it); None if it has
    not exited yet."""
    port: int
    command: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    processes: tuple[ProcessSnapshot, ...]
    """Every instance, in Procfile order."""
    formation: Mapping[str, int]
    """The count of every type."""
