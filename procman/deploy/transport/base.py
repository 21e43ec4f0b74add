"""The interface every deploy step runs through, its result and its error family.

A transport runs one command given as an argv list (never a shell string built by the caller),
uploads and downloads whole files, and is closed once at the end; it is a context manager."""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from types import TracebackType
from typing import Protocol, Self

from procman.errors import ProcmanError

StrPath = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class Result:
    """What one command did: its exit status and everything it wrote."""

    exit_status: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


class TransportError(ProcmanError):
    """A step could not be carried out on a host: ``host: step: what happened``."""

    def __init__(self, host: str, step: str, problem: str, hint: str | None = None) -> None:
        super().__init__(f"{host}: {step}: {problem}", hint)
        self.host = host
        self.step = step
        self.problem = problem


class HostUnreachable(TransportError):
    """No TCP connection (refused, timed out, unknown name) or the SSH handshake failed."""


class AuthenticationFailed(TransportError):
    """The host refused every key offered (agent and identity file)."""


class HostKeyRejected(TransportError):
    """The host's key is not in any known_hosts file, or differs from the one recorded there."""


class CommandTimeout(TransportError):
    """A command (or a transfer) did not finish within its timeout; it was stopped."""


class ConnectionLost(TransportError):
    """The connection dropped, or the host stopped answering, while a command or transfer ran."""


def command_line(argv: Sequence[str]) -> str:
    """``argv`` as one shell-quoted line; a bare string is refused so it is never split by a
    shell."""
    if isinstance(argv, str):
        raise TypeError("a command is an argv list, not a string")
    if not argv:
        raise ValueError("a command needs at least one argument")
    return shlex.join(argv)


class Stream(Protocol):
    """A command that keeps running while its output is read as it comes (``Transport.stream``):
    its standard output and error, merged. Closing it ends the command: its standard input
    closes, which a command meant to be streamed watches for."""

    def fileno(self) -> int:
        """For ``select``: readable when output (or the end) has arrived."""
        ...

    def read(self) -> bytes:
        """What has arrived, without waiting; ``b""`` once the command has ended and everything
        was read (``ended`` is then true)."""
        ...

    @property
    def ended(self) -> bool: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Terminal:
    """The local terminal an interactive command gets a pseudo-terminal like."""

    term: str
    columns: int
    rows: int


class Transport(Protocol):
    """One host. Implementations connect lazily and reuse one connection for every call."""

    @property
    def host(self) -> str:
        """The host as the user wrote it, for messages."""
        ...

    def run(self, argv: Sequence[str], *, timeout: float, input: bytes | None = None) -> Result:
        """Run ``argv`` (quoted for the remote shell with ``shlex.join``), feeding it ``input``;
        raise ``CommandTimeout`` after ``timeout`` seconds. A non-zero exit is a result, not an
        error."""
        ...

    def stream(self, argv: Sequence[str], *, timeout: float) -> Stream:
        """Start ``argv`` (``timeout``: seconds for it to start) and return its output stream."""
        ...

    def interactive(
        self,
        argv: Sequence[str],
        *,
        terminal: Terminal | None,
        size: Callable[[], tuple[int, int]] | None = None,
        timeout: float,
    ) -> int:
        """Run ``argv`` with this process's standard input, output and error, until it exits;
        its exit status (128 + N when a signal N ended it). With ``terminal``, on a
        pseudo-terminal like it: the caller puts this terminal in raw mode, so that Ctrl-C
        travels as a byte to the command's terminal, and ``size`` (columns, rows), asked now and
        then, passes a resized window on. Without, standard input goes through a pipe and a
        Ctrl-C here (KeyboardInterrupt) sends the command SIGINT; a second one, SIGKILL.
        ``timeout``: seconds for it to start."""
        ...

    def put(self, local_path: StrPath, remote_path: str | PurePosixPath) -> None:
        """Upload to a temporary name next to ``remote_path``, then rename it into place."""
        ...

    def get(self, remote_path: str | PurePosixPath, local_path: StrPath) -> None:
        """Download to a temporary name next to ``local_path``, then rename it into place."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


class ClosesOnExit:
    """``with transport:`` closes it at the end, whatever happened inside."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
