"""The client side of the control socket: what ``procman scale/ps/restart/stop/logs`` use."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from procman.errors import ProcmanError, flag_of
from procman.exitcodes import ExitStatus
from procman.supervisor.control.protocol import MAX_REQUEST_BYTES, decode, encode

REPLY_TIMEOUT = 15.0


class NotRunning(ProcmanError):
    pass


class Gone(ProcmanError):
    """The supervisor went away in the middle of a request (it was exiting)."""


class ControlClient:
    def __init__(self, socket_path: Path, root: Path) -> None:
        self.socket_path = socket_path
        self.root = root

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one request and return its reply; an error reply is raised as ProcmanError."""
        with self._connect() as sock:
            try:
                sock.sendall(encode(message))
                reader = sock.makefile("rb")
                return _checked(self._read_reply(reader))
            except (ConnectionError, BrokenPipeError) as error:
                raise Gone(
                    f"procman in {self.root} closed the connection ({error.strerror or error}); "
                    "it is probably exiting"
                ) from None

    def stream(self, message: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Send one request; yield its reply, then every further message until disconnected."""
        with self._connect() as sock:
            sock.sendall(encode(message))
            reader = sock.makefile("rb")
            yield _checked(self._read_reply(reader))
            sock.settimeout(None)
            for line in reader:
                yield decode(line)

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(REPLY_TIMEOUT)
        try:
            sock.connect(str(self.socket_path))
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            raise NotRunning(
                f"no procman is running in {self.root}",
                f"start the app with 'procman start', or pass its directory with {flag_of('root')}",
            ) from None
        except OSError as error:
            sock.close()
            raise ProcmanError(
                f"cannot reach procman at {self.socket_path}: {error.strerror or error}"
            ) from None
        return sock

    def _read_reply(self, reader: Any) -> dict[str, Any]:
        try:
            line = reader.readline(MAX_REQUEST_BYTES * 64)
        except TimeoutError:
            raise ProcmanError(
                f"procman in {self.root} did not answer within {REPLY_TIMEOUT:.0f}s",
                "it waits while its output cannot be written: a terminal paused with Ctrl-S "
                "(press Ctrl-Q), or a pipe nobody reads; if it is stuck, kill the procman "
                "whose pid is in .procman/procman.pid",
            ) from None
        if not line:
            raise Gone(f"procman in {self.root} closed the connection without answering")
        return decode(line)


def _checked(reply: dict[str, Any]) -> dict[str, Any]:
    if not reply.get("ok"):
        error = ProcmanError(str(reply.get("error", "request failed")), reply.get("hint"))
        status = reply.get("exit_status")
        if isinstance(status, int):
            known = {int(member) for member in ExitStatus}
            error.exit_status = ExitStatus(status) if status in known else ExitStatus.ERROR
        raise error
    return reply
