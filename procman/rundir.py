"""``.procman/`` in the app directory: the running supervisor's lock and control socket, and the
saved formation.

One procman supervises an app directory at a time; the lock (``flock`` on ``procman.pid``) is
released by the kernel when that procman dies, however it dies, so a stale lock or socket never
blocks the next start.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Mapping
from pathlib import Path

from procman.errors import ConfigError, ProcmanError

RUN_DIR = ".procman"
SOCKET_NAME = "procman.sock"
LOCK_NAME = "procman.pid"
FORMATION_NAME = "formation.json"
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux; keep a margin


class AlreadyRunning(ProcmanError):
    pass


class RunDir:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / RUN_DIR

    @property
    def socket_path(self) -> Path:
        """``.procman/procman.sock``, or a short path in the temp directory when that is too long
        for a Unix socket (client and server compute the same one)."""
        preferred = self.path / SOCKET_NAME
        if len(os.fsencode(preferred)) <= MAX_SOCKET_PATH:
            return preferred
        import hashlib  # rarely needed: imported here to keep start-up fast
        import tempfile

        digest = hashlib.sha256(os.fsencode(self.root)).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"procman-{os.getuid()}" / f"{digest}.sock"

    @property
    def private_redis_path(self) -> Path:
        return self.path / "redis" / "url"

    def is_running(self) -> bool:
        """Whether a procman holds this app's lock now (taking it for a moment at most)."""
        try:
            fd = os.open(self.path / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def record_private_redis(self, url: str) -> None:
        """Let ``procman worker`` and ``procman jobs``, run from a shell, find the private Redis."""
        self.private_redis_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.private_redis_path.write_text(url + "\n")

    def forget_private_redis(self) -> None:
        """No private Redis runs (any more): a url left by an earlier start must not be offered
        while this one runs. Called under the app's lock, at start and when the Redis stops."""
        try:
            self.private_redis_path.unlink()
        except FileNotFoundError:
            pass
        except OSError as error:
            raise ProcmanError(
                f"cannot remove {self.private_redis_path}: {error.strerror}",
                "it names the private Redis of an earlier 'procman start'; delete it",
            ) from None

    def private_redis_url(self) -> str | None:
        """The private Redis of the procman running in this app, if one is: the url file is
        written by a start that runs one and removed by every other start (and when it stops),
        so a leftover of an earlier run is never offered."""
        try:
            url = self.private_redis_path.read_text().strip()
        except OSError:
            return None
        return url if url and self.is_running() else None

    @property
    def formation_path(self) -> Path:
        return self.path / FORMATION_NAME

    def ensure(self) -> None:
        for directory in (self.path, self.socket_path.parent):
            try:
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as error:
                raise ProcmanError(
                    f"cannot create {directory}: {error.strerror}",
                    f"procman keeps its lock, socket and formation there; make {self.root} "
                    "writable or run procman from a copy of the app",
                ) from None

    def lock(self) -> int:
        """Take the app's lock for this process's lifetime; return the open lock fd."""
        self.ensure()
        lock_path = self.path / LOCK_NAME
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise ProcmanError(f"cannot open {lock_path}: {error.strerror}") from None
        if not _lock_exclusive(fd):
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(
                f"procman is already running in {self.root} (pid {holder})",
                "use 'procman ps', 'procman logs' or 'procman stop' to work with it",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd

    def load_formation(self) -> dict[str, int] | None:
        """The formation saved by ``procman scale``, or None when there is none."""
        try:
            text = self.formation_path.read_text()
            import json  # only once a formation was saved: keeps every start a little faster

            data = json.loads(text)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise ConfigError(
                f"{self.formation_path}: cannot read the saved formation ({error})",
                f"delete {self.formation_path} and run 'procman scale' again",
            ) from None
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
            for k, v in data.items()
        ):
            raise ConfigError(
                f"{self.formation_path}: expected an object of TYPE: COUNT",
                f"delete {self.formation_path} and run 'procman scale' again",
            )
        return data

    def save_formation(self, counts: Mapping[str, int]) -> None:
        """Write atomically, so a reader never sees half a file."""
        self.ensure()
        temporary = self.formation_path.with_suffix(".tmp")
        import json  # see load_formation

        try:
            temporary.write_text(json.dumps(dict(counts), indent=2) + "\n")
            os.replace(temporary, self.formation_path)
        except OSError as error:
            raise ProcmanError(
                f"cannot save the formation to {self.formation_path}: {error.strerror}"
            ) from None


LOCK_ATTEMPTS = 10
LOCK_RETRY = 0.02
"""Seconds between attempts: a check of whether procman runs (``is_running`` here, ``flock -s``
on a deploy host) holds a shared lock for an instant, and must not make a start fail."""


def _lock_exclusive(fd: int) -> bool:
    """Take an exclusive ``flock`` on ``fd``; False when another process keeps a lock on it for
    longer than a momentary check would."""
    for attempt in range(LOCK_ATTEMPTS):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt + 1 < LOCK_ATTEMPTS:
                time.sleep(LOCK_RETRY)
    return False


def private_redis_near(directory: Path) -> str | None:
    """The private Redis of a ``procman start`` running in ``directory`` or the nearest directory
    above it that has a ``.procman/``: a script or shell in the app (or below it) finds it."""
    for candidate in (directory, *directory.parents):
        if (candidate / RUN_DIR).is_dir():
            return RunDir(candidate).private_redis_url()
    return None
