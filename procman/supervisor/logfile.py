"""The log stream kept in a file with rotation and a size cap (``procman start --log-file``), as
on a deploy host, where nobody reads standard output and a disk must never fill.

The file is rotated as logrotate and Python's ``RotatingFileHandler`` do it: ``procman.log`` is
renamed ``procman.log.1`` (``.1`` to ``.2``, and so on; the oldest is dropped) once the next
write would take it past ``max_bytes``. At most ``backups + 1`` files are kept, each at most
``max_bytes`` (rotated between lines), so the disk used is bounded. A reader that follows the
file by name (``tail -F``, ``procman logs --env``) sees every line."""

from __future__ import annotations

import os
from pathlib import Path

from procman.errors import ProcmanError
from procman.supervisor.output import Sink

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUPS = 3


class LogFileError(ProcmanError):
    """The log file cannot be opened, written or rotated."""


def backup_path(path: Path, number: int) -> Path:
    return path.with_name(f"{path.name}.{number}")


class RotatingLogFile(Sink):
    """A ``Sink`` that appends to ``path``, rotating it before a write would pass ``max_bytes``."""

    def __init__(
        self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES, backups: int = DEFAULT_BACKUPS
    ) -> None:
        if max_bytes < 1 or backups < 0:
            raise ValueError("max_bytes must be at least 1 and backups 0 or more")
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        super().__init__(self._open())
        self.size = os.fstat(self.fd).st_size

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise LogFileError(
                f"log file {self.path}: cannot open it ({error.strerror})",
                "give a log file in a directory that exists and that you can write",
            ) from None

    def flush(self) -> None:
        """Write what was collected, rotating at line boundaries so that no file passes
        ``max_bytes`` (a line longer than a whole file is cut)."""
        if not self._parts:
            return
        data = b"".join(self._parts)
        self._parts.clear()
        while data:
            room = self.max_bytes - self.size
            if len(data) <= room:
                self._write(data)
                return
            cut = data.rfind(b"\n", 0, room) + 1 if room > 0 else 0
            if cut == 0 and self.size == 0:
                cut = room
            if cut:
                self._write(data[:cut])
                data = data[cut:]
            self.rotate()

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.fd, view)
            except OSError:
                return  # a full disk must not stop the app: these lines are dropped, not the next
            view = view[written:]
            self.size += written

    def rotate(self) -> None:
        """Shift the backups up by one (dropping the oldest), move the file to ``.1`` and start a
        new one; with no backups, empty the file instead."""
        os.close(self.fd)
        try:
            if self.backups == 0:
                os.truncate(self.path, 0)
            else:
                for number in range(self.backups - 1, 0, -1):
                    older = backup_path(self.path, number)
                    if older.exists():
                        os.replace(older, backup_path(self.path, number + 1))
                os.replace(self.path, backup_path(self.path, 1))
        except OSError:
            pass  # never lose the stream over a rename: go on appending to what is there
        self.fd = self._open()
        self.size = os.fstat(self.fd).st_size

    def close(self) -> None:
        os.close(self.fd)
