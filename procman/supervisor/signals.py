"""Signals as events: a socket the event loop reads, and process-group helpers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class SignalPipe:
    """While open, SIGCHLD and the stop signals arrive as bytes (one per signal number) on
    ``reader`` instead of interrupting whatever Python code is running."""

    def __init__(self) -> None:
        self.reader, self._writer = socket.socketpair()
        self.reader.setblocking(False)
        self._writer.setblocking(False)
        self._previous: dict[int, signal._HANDLER] = {}

    def open(self) -> None:
        for signum in (signal.SIGCHLD, *STOP_SIGNALS):
            self._previous[signum] = signal.signal(signum, _ignore_in_python)
        signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)

    def received(self) -> list[int]:
        """The signals that arrived since the last call, in order, each once."""
        try:
            data = self.reader.recv(4096)
        except BlockingIOError:
            return []
        return list(dict.fromkeys(data))

    def close(self) -> None:
        signal.set_wakeup_fd(-1)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self.reader.close()
        self._writer.close()


def _ignore_in_python(signum: int, frame: object) -> None:
    """The byte written to the wakeup fd is all the loop needs."""


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def become_subreaper() -> None:
    """Orphaned grandchildren come to us instead of init, so we can reap and stop them."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_child_subreaper = 36
        libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: process groups still cover every child that stays in its group
