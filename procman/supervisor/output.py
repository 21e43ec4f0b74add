"""The multiplexed log stream: splitting child output into lines and prefixing each one.

Everything here is pure byte handling, so the hot path (one ``bytes.replace`` per read, not a Python
loop per line) can be tested without processes.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable
from dataclasses import dataclass

SYSTEM = "system"
RESET = b"\x1b[0m"
# Foreman's order: a type keeps its colour as long as its place in the Procfile does.
PALETTE = (
    b"\x1b[36m",
    b"\x1b[33m",
    b"\x1b[32m",
    b"\x1b[35m",
    b"\x1b[34m",
    b"\x1b[31m",
    b"\x1b[96m",
    b"\x1b[93m",
    b"\x1b[92m",
    b"\x1b[95m",
    b"\x1b[94m",
    b"\x1b[91m",
)
SYSTEM_COLOR = b"\x1b[1m"
MAX_PENDING = 4 * 1024 * 1024
"""A line longer than this is cut and printed in pieces, so one child cannot exhaust memory."""


@dataclass(frozen=True, slots=True)
class StreamStyle:
    color: bool = False
    timestamp: bool = True
    prefix: bool = True


def to_text(data: bytes) -> bytes:
    """Replace invalid UTF-8 so the stream stays valid UTF-8 whatever a child writes."""
    if data.isascii():
        return data
    return data.decode("utf-8", "replace").encode("utf-8")


class Prefixer:
    """Renders complete lines with ``HH:MM:SS name | `` in front, caching the prefix per second."""

    def __init__(self, style: StreamStyle, clock: Callable[[], float] = time.time) -> None:
        self.style = style
        self.clock = clock
        self.width = len(SYSTEM)
        self._colors: dict[str, bytes] = {}
        self._cache: dict[str, bytes] = {}
        self._cache_second = -1

    def set_names(self, names: list[str], type_order: list[str]) -> None:
        """Pad to the longest of ``names``; colour each type by its place in ``type_order``."""
        self.width = max([len(SYSTEM), *map(len, names)])
        self._colors = {
            name: PALETTE[position % len(PALETTE)] for position, name in enumerate(type_order)
        }
        self._cache.clear()

    def prefix(self, name: str, type_name: str, at: float | None = None) -> bytes:
        """``at`` (seconds since the epoch) defaults to now."""
        if not self.style.prefix:
            return b""
        second = int(self.clock() if at is None else at)
        if second != self._cache_second:
            self._cache.clear()
            self._cache_second = second
        cached = self._cache.get(name)
        if cached is None:
            cached = self._build(name, type_name, second)
            self._cache[name] = cached
        return cached

    def _build(self, name: str, type_name: str, second: int) -> bytes:
        stamp = time.strftime("%H:%M:%S ", time.localtime(second)) if self.style.timestamp else ""
        text = f"{stamp}{name.ljust(self.width)} | ".encode()
        if not self.style.color:
            return text
        color = SYSTEM_COLOR if name == SYSTEM else self._colors.get(type_name, PALETTE[0])
        return color + text + RESET

    def render(self, name: str, type_name: str, lines: bytes, at: float | None = None) -> bytes:
        """``lines`` is one or more complete lines, each ending in ``\\n``."""
        prefix = self.prefix(name, type_name, at)
        body = to_text(lines)
        if not prefix:
            return body
        return prefix + body[:-1].replace(b"\n", b"\n" + prefix) + b"\n"


PARTIAL_IDLE = 0.2
"""A partial line (a prompt) is shown once its writer has been quiet this many seconds..."""
PARTIAL_MAX_WAIT = 2.0
"""...or once it has waited this long for its newline (a progress bar that keeps writing)."""


class LineSplitter:
    """Holds back a partial line until its newline arrives, or until it is flushed."""

    __slots__ = ("_pending", "_pending_size", "last_data", "pending_since")

    def __init__(self) -> None:
        self._pending: list[bytes] = []
        self._pending_size = 0
        self.pending_since: float | None = None
        self.last_data = 0.0

    def flush_at(self) -> float | None:
        """When the held partial line should be shown without its newline; None if none is held.

        Waiting for a quiet writer, not a fixed time, keeps a line that a busy machine delays
        mid-write in one piece."""
        if self.pending_since is None:
            return None
        return min(self.last_data + PARTIAL_IDLE, self.pending_since + PARTIAL_MAX_WAIT)

    @property
    def has_pending(self) -> bool:
        return self._pending_size > 0

    def feed(self, data: bytes, now: float) -> bytes:
        """Return the complete lines ``data`` finishes (maybe ``b""``); keep the rest."""
        self.last_data = now
        end = data.rfind(b"\n")
        if end < 0:
            self._hold(data, now)
            if self._pending_size > MAX_PENDING:
                return self.flush()
            return b""
        complete = data[: end + 1]
        if self._pending:
            complete = b"".join(self._pending) + complete
            self._pending.clear()
            self._pending_size = 0
            self.pending_since = None
        if end + 1 < len(data):
            self._hold(data[end + 1 :], now)
        return complete

    def flush(self) -> bytes:
        """The held partial line, ended with a newline (``b""`` when nothing is held)."""
        if not self._pending:
            return b""
        line = b"".join(self._pending) + b"\n"
        self._pending.clear()
        self._pending_size = 0
        self.pending_since = None
        return line

    def _hold(self, data: bytes, now: float) -> None:
        if not self._pending:
            self.pending_since = now
        self._pending.append(data)
        self._pending_size += len(data)


class Sink:
    """Collects rendered output during one turn of the event loop and writes it in one go."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.broken = False
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self.broken:
            self._parts.append(data)

    def flush(self) -> None:
        if not self._parts:
            return
        data = memoryview(b"".join(self._parts))
        self._parts.clear()
        while data:
            try:
                written = os.write(self.fd, data)
            except BlockingIOError:
                select.select([], [self.fd], [])
                continue
            except OSError:  # EPIPE: whoever read our output has gone
                self.broken = True
                return
            data = data[written:]
