"""The supervisor's answers on the control socket: each parsed request becomes one call of the
supervisor's typed methods, and its result becomes the reply docs/control.md shows.

It runs inside the supervisor's loop (the server calls it for every complete request line), so
nothing here may block. A ProcmanError raised by the supervisor (an unknown process, procman is
stopping) goes back to the server, which sends it as an error reply and keeps the connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from procman.supervisor.control.protocol import (
    ProtocolError,
    Request,
    entry_message,
    logs_reply,
    ps_reply,
    restart_reply,
    scale_reply,
    stop_reply,
)
from procman.supervisor.control.server import Connection
from procman.supervisor.logbook import Entry
from procman.supervisor.snapshot import Snapshot
from procman.supervisor.supervisor import LogTail, Restarted, Scaled, Stopped


class Supervised(Protocol):
    """What the handler asks of the supervisor (procman.supervisor.supervisor.Supervisor)."""

    def snapshot(self) -> Snapshot: ...

    def scale(self, specs: Iterable[str]) -> Scaled: ...

    def restart(self, targets: Iterable[str]) -> Restarted: ...

    def stop(self, targets: Iterable[str]) -> Stopped: ...

    def log_tail(self, targets: Iterable[str], lines: int) -> LogTail: ...

    def follow_logs(
        self, targets: Iterable[str], deliver: Callable[[Entry], None]
    ) -> Callable[[], None]: ...


class RequestHandler:
    """The control server's handler: ``handler(request, connection)`` returns the one reply to
    send, or None when it has sent its replies itself (``logs``)."""

    def __init__(self, supervisor: Supervised) -> None:
        self._supervisor = supervisor

    def __call__(self, request: Request, connection: Connection) -> dict[str, Any] | None:
        supervisor = self._supervisor
        if request.verb == "ps":
            return ps_reply(supervisor.snapshot())
        if request.verb == "scale":
            return scale_reply(supervisor.scale(request.changes))
        if request.verb == "restart":
            return restart_reply(supervisor.restart(request.targets))
        if request.verb == "stop":
            return stop_reply(supervisor.stop(request.targets))
        if request.verb == "logs":
            self._logs(request, connection)
            return None
        raise ProtocolError(f"unknown verb {request.verb!r}")  # parse_request lets none through

    def _logs(self, request: Request, connection: Connection) -> None:
        """The header, the recent lines, then (with follow) new output until the peer leaves."""
        tail = self._supervisor.log_tail(request.targets, request.lines)
        connection.send(logs_reply(tail))
        for entry in tail.entries:
            connection.send(entry_message(entry))
        if not request.follow:
            connection.finish()
        elif not connection.closed:  # a peer dropped while taking the tail is not followed
            unfollow = self._supervisor.follow_logs(
                request.targets, lambda entry: connection.send(entry_message(entry))
            )
            connection.on_close = lambda _: unfollow()
