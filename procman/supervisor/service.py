"""Services: helpers the app needs running around its formation, such as the private Redis of
``procman start``. A service starts before the formation, which waits until it is ready; it stops
only after every process of the formation (and anything they left behind) has exited, so workers
finishing their jobs during a warm shutdown still have it. It is not part of the formation: no
port, no scaling, not in ``procman ps``; its output is in the log stream under its name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    command: str
    """For ``sh -c``, like a Procfile command."""
    env: Mapping[str, str] = field(repr=False)
    ready: Callable[[], bool]
    """Cheap and quick: called every few milliseconds until it returns True."""
    ready_timeout: float = 30.0
    about: str = ""
    """Shown after 'NAME started (pid N)', e.g. its URL and data directory."""
