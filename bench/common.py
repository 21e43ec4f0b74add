"""What every benchmark shares: the managers under test, launching them, watching their output,
timing their exit, and finding (and killing) whatever they leave behind.

Every process a run starts carries ``PROCMAN_BENCH_TAG=<unique id>`` in its environment, inherited
by children and grandchildren, so leftovers are found in ``/proc/*/environ`` whoever re-parented
them.
"""

from __future__ import annotations

import compileall
import json
import math
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

TAG_VAR = "PROCMAN_BENCH_TAG"
BIN = Path(sys.executable).parent
HONCHO_KILL_WAIT = 5.0
"""honcho has no stop-timeout option: it always waits 5 s (``honcho.manager.KILL_WAIT``)."""
EXIT_GRACE = 5.0
"""A manager still running this long after its stop timeout is reported as "did not exit"."""

PREFIX = re.compile(rb"^\d\d:\d\d:\d\d (\S+) *\| ")
STARTED_PID = re.compile(rb"started (?:\(pid[ =]|with pid )(\d+)")


@dataclass(frozen=True, slots=True)
class Manager:
    name: str
    argv: tuple[str, ...]
    """``start`` with colours off; the Procfile path and timeout are added per run."""
    timeout_option: str | None
    version: str

    def command(self, procfile: Path, timeout: float) -> list[str]:
        argv = [*self.argv, "-f", str(procfile)]
        if self.timeout_option:
            argv += [self.timeout_option, f"{timeout:g}"]
        return argv

    def stop_timeout(self, requested: float) -> float:
        """The SIGTERM-to-SIGKILL wait this manager really uses when asked for ``requested``."""
        return requested if self.timeout_option else HONCHO_KILL_WAIT


def _version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return "?"
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else "?"


def find_managers(wanted: Iterable[str]) -> tuple[list[Manager], dict[str, str]]:
    """The managers installed here, and why each missing one is skipped."""
    found: list[Manager] = []
    skipped: dict[str, str] = {}
    for name in wanted:
        manager = _find(name)
        if isinstance(manager, str):
            skipped[name] = manager
        else:
            found.append(manager)
    return found, skipped


def _find(name: str) -> Manager | str:
    if name == "procman":
        # PROCMAN_BENCH_BIN: measure an install other than the editable one in .venv, e.g. a
        # normal (wheel) install as users get it, whose imports skip the editable-install hook.
        path = Path(os.environ.get("PROCMAN_BENCH_BIN", BIN / "procman"))
        if not path.exists():
            return f"{path} not found: run scripts/test --co -q"
        if "PROCMAN_BENCH_BIN" not in os.environ:
            # The editable install runs the checkout, whose bytecode may be stale or missing (and
            # is never written under PYTHONDONTWRITEBYTECODE); a wheel install ships it compiled.
            compileall.compile_dir(Path(__file__).parents[1] / "procman", quiet=1)
        version = _version([str(path), "--version"]).replace(", version", "")
        return Manager(name, (str(path), "start", "--no-color"), "-t", version)
    if name == "honcho":
        path = shutil.which("honcho", path=f"{BIN}:{os.environ.get('PATH', '')}")
        if path is None:
            return "not installed: .venv/bin/pip install -e '.[bench]'"
        return Manager(name, (path, "start", "--no-colour"), None, _version([path, "--version"]))
    if name == "foreman":
        path = shutil.which("foreman")
        if path is None:
            return "not installed: apt-get install ruby-foreman"
        version = "foreman " + _version([path, "version"])
        return Manager(name, (path, "start", "--no-color"), "-t", version)
    return f"unknown manager {name!r}"


# -- running a manager -----------------------------------------------------------------------


def new_tag() -> str:
    return uuid.uuid4().hex


def tagged_env(tag: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({TAG_VAR: tag, "NO_COLOR": "1"})
    for name in ("PORT", "PYTHONUNBUFFERED"):
        env.pop(name, None)
    return env


def write_procfile(directory: Path, entries: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "Procfile"
    path.write_text("".join(f"{name}: {command}\n" for name, command in entries.items()))
    return path


def launch(
    manager: Manager, procfile: Path, timeout: float, out: Path, tag: str
) -> subprocess.Popen[bytes]:
    """Start the manager in its own session (so our signals and its children's stay apart),
    stdout and stderr to ``out``."""
    with out.open("wb") as stdout:
        return subprocess.Popen(
            manager.command(procfile, timeout),
            cwd=procfile.parent,
            env=tagged_env(tag),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_exit(process: subprocess.Popen[bytes], timeout: float) -> float | None:
    """Block until ``process`` exits (without reaping it); return the monotonic time it did,
    or None after ``timeout`` seconds."""
    fd = os.pidfd_open(process.pid)
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    return time.monotonic() if ready else None


@dataclass(frozen=True, slots=True)
class Reaped:
    returncode: int
    self_cpu: float
    """user+sys of the manager's main process alone, read from /proc while it is a zombie."""
    tree_cpu: float
    """user+sys of the manager and every descendant it reaped (``wait4``'s rusage)."""


def reap(process: subprocess.Popen[bytes]) -> Reaped:
    """Reap an exited ``process``, reading its own CPU time first."""
    os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
    times = psutil.Process(process.pid).cpu_times()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return Reaped(
        returncode=process.returncode,
        self_cpu=times.user + times.system,
        tree_cpu=usage.ru_utime + usage.ru_stime,
    )


def stop(process: subprocess.Popen[bytes], bound: float) -> float | None:
    """SIGINT the manager and wait up to ``bound`` s; return seconds to exit, None if it did not
    (it is then killed). The manager is always reaped."""
    sent = time.monotonic()
    os.kill(process.pid, signal.SIGINT)
    exited = wait_exit(process, bound)
    if exited is None:
        kill_group(process.pid)
        process.kill()
    process.wait()
    return None if exited is None else exited - sent


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# -- what is left -----------------------------------------------------------------------------


def tagged(tag: str) -> list[psutil.Process]:
    """Live (not zombie) processes carrying ``tag``."""
    marker = f"{TAG_VAR}={tag}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as file:
                if marker not in file.read().split(b"\0"):
                    continue
            process = psutil.Process(int(entry.name))
            if process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (OSError, psutil.Error):
            continue
    return found


def leftovers(tag: str, settle: float = 0.2) -> list[str]:
    """Names of tagged processes still alive ``settle`` s after the manager exited; kill them."""
    time.sleep(settle)
    names = []
    for process in tagged(tag):
        try:
            names.append(process.name())
            process.kill()
        except psutil.Error:
            continue
    return names


def summarize(names: Iterable[str]) -> str:
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "none"


# -- reading the output -------------------------------------------------------------------------


def split_prefix(line: bytes) -> tuple[bytes, bytes] | None:
    """``HH:MM:SS name | text`` as (name, text); None when the line has no such prefix."""
    match = PREFIX.match(line)
    if match is None:
        return None
    return match[1], line[match.end() :]


class Follower:
    """Reads the lines a manager has appended to its output file so far."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self._rest = b""

    def lines(self) -> Iterator[bytes]:
        try:
            with self._path.open("rb") as file:
                file.seek(self._offset)
                data = file.read()
        except FileNotFoundError:
            return
        self._offset += len(data)
        *complete, self._rest = (self._rest + data).split(b"\n")
        yield from complete


def wait_for_lines(
    follower: Follower, wanted: set[bytes], timeout: float, poll: float = 0.002
) -> tuple[float | None, set[int]]:
    """Poll until every text in ``wanted`` has been seen after a prefix; return the monotonic
    time of the poll that saw the last one (None on timeout) and the app pids the manager
    reported starting."""
    pending = set(wanted)
    pids: set[int] = set()
    deadline = time.monotonic() + timeout
    while True:
        for line in follower.lines():
            parts = split_prefix(line)
            if parts is None:
                continue
            pending.discard(parts[1])
            started = STARTED_PID.search(parts[1])
            if started:
                pids.add(int(started[1]))
        now = time.monotonic()
        if not pending:
            return now, pids
        if now > deadline:
            return None, pids
        time.sleep(poll)


# -- the manager's own processes --------------------------------------------------------------


def own_processes(root: int, app_pids: Iterable[int]) -> list[psutil.Process]:
    """The manager and its descendants, minus the app processes (the pids it reported starting)
    and everything below them."""
    apps = set(app_pids)
    own = []
    stack = [psutil.Process(root)]
    while stack:
        process = stack.pop()
        if process.pid in apps:
            continue
        own.append(process)
        try:
            stack.extend(process.children())
        except psutil.Error:
            continue
    return own


# -- procman's control socket -------------------------------------------------------------------


def control_socket(app_dir: Path) -> Path:
    """Where a running ``procman start`` listens (``.procman/procman.sock`` in the app directory;
    procman only moves it to the temp directory when that path is too long for a Unix socket,
    which the bench's short scratch paths never are)."""
    return app_dir / ".procman" / "procman.sock"


def control_request(path: Path, message: dict[str, Any], timeout: float = 15.0) -> dict[str, Any]:
    """One request on a fresh connection, as the ``procman`` client commands do: send one JSON
    line, read one JSON line back."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps(message).encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed after {len(reply)} bytes without a full reply")
            reply += chunk
    answer = json.loads(reply)
    if not isinstance(answer, dict):
        raise ValueError(f"reply is not a JSON object: {reply[:80]!r}")
    return answer


# -- reporting --------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` 0.99 for p99)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def machine() -> dict[str, str]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": model,
        "kernel": os.uname().release,
        "python": sys.version.split()[0],
    }
