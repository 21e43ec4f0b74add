"""Writing generated files whole: a temporary file beside the target, then a rename, so that a
failure leaves the old file (or none) and never half of a new one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from enum import Enum
from pathlib import Path

from procman.errors import ProcmanError


class WriteError(ProcmanError):
    """A generated file cannot be written (a directory that cannot be made or written)."""

    def __init__(self, message: str, hint: str | None = None, *, reason: str = "") -> None:
        super().__init__(message, hint)
        self.reason = reason
        """What went wrong, without the file's name (``Permission denied``)."""


WRITE_HINT = "write the file somewhere you can create files, or fix the directory's permissions"


class Written(Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    """The file exists and was left alone (procman init never overwrites)."""


def write_atomically(path: Path, text: str, *, replace: bool = True) -> Written:
    """Write ``text`` to ``path`` through a temporary file and a rename. With ``replace`` false an
    existing ``path`` is never replaced, even one created meanwhile (SKIPPED)."""
    existed = path.exists()
    if existed and not replace:
        return Written.SKIPPED
    _make_parent(path)
    mode = _mode_for(path)
    with _temporary_beside(path) as temporary:
        try:
            with os.fdopen(os.open(temporary, os.O_WRONLY), "w", encoding="utf-8") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            os.chmod(temporary, mode)
            if replace:
                os.replace(temporary, path)
            else:
                try:
                    os.link(temporary, path)  # fails when path exists: no overwrite, ever
                except FileExistsError:
                    return Written.SKIPPED
        except OSError as error:
            raise _write_error(path, error) from None
    return Written.UPDATED if existed else Written.CREATED


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = error.strerror or str(error)
        raise WriteError(
            f"cannot create directory {path.parent}: {reason}", WRITE_HINT, reason=reason
        ) from None


def _mode_for(path: Path) -> int:
    """An existing file's permissions, else the usual ones for a new file (0666 less umask)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def _temporary_beside(path: Path) -> Iterator[str]:
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as error:
        raise _write_error(path, error) from None
    os.close(descriptor)
    try:
        yield temporary
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _write_error(path: Path, error: OSError) -> WriteError:
    reason = error.strerror or str(error)
    return WriteError(
        f"cannot write {path}: {reason}; nothing was written",
        WRITE_HINT,
        reason=reason,
    )
