"""The private Redis of ``procman start``: when an app uses queues and no Redis is configured,
procman runs a ``redis-server`` of its own for it.

The rule, decided before anything starts:

1. ``--redis-url URL`` given: every process gets ``REDIS_URL=URL`` (and no ``REDIS_PROVIDER``,
   which would win over it); no private Redis.
2. The app does not use queues (no ``queues.yml`` in its directory, no ``procman worker`` in its
   Procfile): nothing is done; an app without background jobs needs no Redis.
3. ``REDIS_PROVIDER`` or ``REDIS_URL`` is set, in the shell or the env files: it is checked (a
   bad one is an error before anything starts) and the processes use it.
4. The Procfile runs a Redis itself (a ``redis`` type, or a ``redis-server`` command): nothing.
5. ``redis-server`` is on PATH: it runs as ``redis``, bound to 127.0.0.1 on a free port, with its
   data in ``.procman/redis/`` (append-only file, kept across restarts), and every process gets
   ``REDIS_URL``. It starts first; the formation starts once it answers PING; it stops last.
6. Otherwise: one line says how to install one, or where to point ``REDIS_URL``, and the app runs
   without it.

Pure but for ``which``, ``free_port`` and ``ping``; no redis-py (``procman start`` stays light).
"""

from __future__ import annotations

import os
import re
import shlex
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from procman.errors import flag_of
from procman.procfile import Procfile
from procman.queues.redis_url import checked, resolve_redis_url

QUEUE_FILE = "queues.yml"
"""``procman.queues.config.DEFAULT_FILE``, not imported from there: that module imports yaml and
croniter, which ``procman start`` would pay for on every start."""
NAME = "redis"
"""Its name in the log stream (``redis | ...``) and in ``procman logs redis``."""
DATA_DIR = Path(".procman") / "redis"
LOG_NAME = "redis.log"
BINARY = "redis-server"
HOST = "127.0.0.1"
READY_TIMEOUT = 30.0
"""Seconds to wait for the first PONG: loading a large append-only file takes a while."""
NO_SERVER = (
    "this app uses queues but no Redis is configured and there is no redis-server on PATH: "
    "install one (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) "
    "to have procman run a private one, or set REDIS_URL (in .env or the shell) to a Redis"
)

_WORKER_COMMAND = re.compile(r"(^|[\s/;&|(])procman\s+worker\b")
_REDIS_COMMAND = re.compile(r"(^|[\s/;&|(])redis-server\b")


@dataclass(frozen=True, slots=True)
class PrivateRedis:
    binary: str
    port: int
    data_dir: Path
    """Absolute."""

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def log_file(self) -> Path:
        return self.data_dir / LOG_NAME

    def argv(self, log_to_stream: bool = False) -> list[str]:
        """Its log goes to ``log_file``, not the app's stream (its start-up banner and
        warnings about the host's memory settings are not the app's news), unless asked."""
        return [
            self.binary,
            "--bind", HOST,
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--save", "",
            "--daemonize", "no",
            "--logfile", "" if log_to_stream else str(self.log_file),
            "--loglevel", "warning",
        ]  # fmt: skip

    def command(self, log_to_stream: bool = False) -> str:
        return shlex.join(self.argv(log_to_stream))

    def ready(self) -> bool:
        return ping(HOST, self.port)


@dataclass(frozen=True, slots=True)
class RedisPlan:
    """What ``procman start`` does about Redis."""

    url: str | None = None
    """REDIS_URL for every process; None leaves their environment as it is."""
    unset: tuple[str, ...] = ()
    """Variables removed from every process's environment."""
    server: PrivateRedis | None = None
    note: str | None = None
    """One line to show in the log stream."""


def plan_redis(
    root: Path,
    procfile: Procfile,
    env: Mapping[str, str],
    option: str | None = None,
    *,
    which: Callable[[str, str], str | None] | None = None,
    port: Callable[[], int] | None = None,
) -> RedisPlan:
    """Apply the rule above; ``env`` is the processes' environment (shell, then env files)."""
    if option is not None:
        return RedisPlan(url=checked(option, flag_of("redis_url")).url, unset=("REDIS_PROVIDER",))
    if not uses_queues(root, procfile):
        return RedisPlan()
    if env.get("REDIS_PROVIDER") or env.get("REDIS_URL"):
        resolve_redis_url(env)  # a bad REDIS_PROVIDER is an error now, not in every worker
        return RedisPlan()
    if runs_own_redis(procfile):
        return RedisPlan()
    binary = (which or find_executable)(BINARY, env.get("PATH", os.defpath))
    if binary is None:
        return RedisPlan(note=NO_SERVER)
    server = PrivateRedis(binary, (port or free_port)(), root / DATA_DIR)
    return RedisPlan(url=server.url, server=server)


def uses_queues(root: Path, procfile: Procfile) -> bool:
    """A ``queues.yml`` next to the Procfile, or a ``procman worker`` command in it."""
    if (root / QUEUE_FILE).is_file():
        return True
    return any(_WORKER_COMMAND.search(process.command) for process in procfile.processes)


def worker_queue_files(app_dir: Path, procfile: Procfile) -> list[tuple[Path, bool]]:
    """The queue YAML each ``procman worker`` of the Procfile would read, and whether it must
    exist: its ``-C/--config`` (relative to the app directory, where it runs), else
    ``queues.yml`` when there is one. Empty when no process runs ``procman worker``."""
    files: list[tuple[Path, bool]] = []
    for process in procfile.processes:
        found = _WORKER_COMMAND.search(process.command)
        if found is None:
            continue
        named = _config_option(process.command[found.end() :])
        entry = (app_dir / named, True) if named else (app_dir / QUEUE_FILE, False)
        if entry not in files:
            files.append(entry)
    return files


def _config_option(arguments: str) -> str | None:
    """The value of ``-C``/``--config`` among a worker's arguments (up to a shell operator)."""
    try:
        words = shlex.split(arguments, comments=True)
    except ValueError:
        return None
    for index, word in enumerate(words):
        if word in (";", "&&", "||", "|", "&"):
            return None
        if word in ("-C", "--config") and index + 1 < len(words):
            return words[index + 1]
        if word.startswith("--config="):
            return word.removeprefix("--config=")
        if word.startswith("-C") and len(word) > 2:
            return word[2:]
    return None


def runs_own_redis(procfile: Procfile) -> bool:
    return NAME in procfile.names or any(
        _REDIS_COMMAND.search(process.command) for process in procfile.processes
    )


def find_executable(name: str, path: str) -> str | None:
    """``shutil.which`` without importing shutil (and what it imports) on every start."""
    for directory in path.split(os.pathsep):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
    return None


def free_port() -> int:
    """A port nothing listens on now (the kernel's pick); redis-server binds it a moment later."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def ping(host: str, port: int, timeout: float = 0.2) -> bool:
    """Whether a Redis answers PING with PONG (not -LOADING while it reads its data)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False
