"""Fixtures shared by every test: the installed procman executable, app directories, and a guard
that fails any test leaving a process behind; for the deploy tests, real sshd hosts and a git
repository of the example app (their code is in tests/sshd_hosts.py, shared with the benchmarks)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psutil
import pytest

from tests import sshd_hosts
from tests.sshd_hosts import (
    EXAMPLES,
    HOST_VAR,
    PROCMAN,
    RUN_VAR,
    SSH_ADDRESSES,
    SSH_RUN,
    SSHD,
    DeployApp,
    HostProcessesLeftRunning,
    SSHCluster,
    SSHHost,
    clean_deploy_hosts,
    empty_directory,
    free_port_on,
    host_processes,
    kill_host_processes,
    procman_executable,
    run_procman,
)

__all__ = [
    "EXAMPLES",
    "HOST_VAR",
    "PROCMAN",
    "RUN_VAR",
    "SSHD",
    "SSH_ADDRESSES",
    "SSH_RUN",
    "WATCHDOG_BOUND",
    "App",
    "DeployApp",
    "HostProcessesLeftRunning",
    "LiveOutput",
    "SSHCluster",
    "SSHHost",
    "clean_deploy_hosts",
    "empty_directory",
    "free_port",
    "free_port_on",
    "host_processes",
    "kill_host_processes",
    "procman_executable",
    "tagged_processes",
    "wait_until",
]
"""Besides the fixtures, what the tests import from here (much of it from tests/sshd_hosts.py)."""

TAG = "PROCMAN_TEST_TAG"


def tagged_processes(tag: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(TAG) == tag and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


WATCHDOG_BOUND = 2.0
"""Seconds within which procman's watchdog stops what a killed procman left running: about 1.3 s
by its own account (procman/supervisor/watchdog.py), with some room on a busy machine."""


def wait_until(
    condition: Callable[[], object], timeout: float = 10, what: str = "condition"
) -> None:
    """Poll ``condition`` until it is true; an AssertionError naming ``what`` after ``timeout``
    seconds. For what a test waits on instead of sleeping a fixed time."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(0.05)


SSHD_FIXTURES = frozenset({"sshd_cluster", "bashrc_hosts"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Groups for ``pytest -n 2 --dist loadgroup`` (scripts/test): tests on the SSH hosts share
    127.0.0.2-4 and their clean-up kills whatever runs there, and the other integration tests
    start apps on procman's default ports; each group runs on one worker, one test at a time, as
    without xdist, while the unit tests fill in beside them."""
    for item in items:
        if SSHD_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("sshd"))
        elif "integration" in item.path.parts:
            item.add_marker(pytest.mark.xdist_group("local"))


@pytest.fixture(autouse=True)
def no_process_left_behind(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every process a test starts inherits a unique tag; any still alive afterwards is killed and
    fails the test."""
    tag = uuid.uuid4().hex
    monkeypatch.setenv(TAG, tag)
    yield tag
    deadline = time.monotonic() + 3
    survivors = tagged_processes(tag)
    while survivors and time.monotonic() < deadline:
        time.sleep(0.05)
        survivors = tagged_processes(tag)
    if survivors:
        described = [f"{p.pid} {' '.join(p.cmdline())}" for p in survivors if p.is_running()]
        for process in survivors:
            try:
                process.kill()
            except psutil.Error:
                pass
        if described:
            pytest.fail(f"processes left behind: {described}")


class App:
    """A throwaway app directory with a Procfile, and a way to run procman in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[subprocess.Popen[bytes]] = []

    def procfile(self, text: str) -> Path:
        path = self.root / "Procfile"
        path.write_text(text)
        return path

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text)
        return path

    def run(
        self,
        *args: str,
        timeout: float = 20,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the installed ``procman``; ``env`` is added to this process's environment."""
        text = input.decode() if input is not None else None
        return run_procman(self.root, *args, timeout=timeout, env=env, input=text)

    def spawn(self, *args: str, **kwargs: object) -> subprocess.Popen[bytes]:
        """Start procman in its own process group, as a shell would start a foreground job."""
        process = subprocess.Popen(
            [PROCMAN, *args],
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            process_group=0,
            **kwargs,  # type: ignore[arg-type]
        )
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait()
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    application = App(tmp_path)
    yield application
    application.stop_all()


class LiveOutput:
    """Reads a running process's stdout continuously on a thread, as a terminal would, so the
    process never blocks on a full pipe while the test does something else; the test can wait
    for a line meanwhile."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        self.process = process
        self.fd = process.stdout.fileno()
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read_all, daemon=True)
        self._thread.start()

    def _read_all(self) -> None:
        try:
            while chunk := os.read(self.fd, 65536):
                with self._lock:
                    self._chunks.append(chunk)
        except OSError:
            pass
        finally:
            self._done.set()

    @property
    def data(self) -> bytes:
        with self._lock:
            if len(self._chunks) > 1:
                self._chunks[:] = [b"".join(self._chunks)]
            return self._chunks[0] if self._chunks else b""

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    def _wait(self, found: Callable[[str], bool], what: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.text
            if found(text):
                return text
            if self._done.is_set():
                text = self.text
                if found(text):
                    return text
                raise AssertionError(f"output ended before {what}; output:\n{text}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not seen within {timeout}s; output:\n{text}")
            time.sleep(0.01)

    def wait_for(self, needle: str, timeout: float = 10) -> str:
        return self._wait(lambda text: needle in text, repr(needle), timeout)

    def wait_for_line(self, name: str, body: str, timeout: float = 10) -> None:
        """Wait for ``name | body`` in the log stream, whatever the padding."""
        pattern = re.compile(rf"(^|\n)(\d\d:\d\d:\d\d )?{re.escape(name)} +\| {re.escape(body)}\n")
        self._wait(lambda text: bool(pattern.search(text)), f"{name} | {body}", timeout)

    def finish(self, timeout: float = 15) -> tuple[int, str]:
        """Read to the end and wait for the exit status."""
        if not self._done.wait(timeout):
            raise AssertionError(f"still running after {timeout}s; output:\n{self.text}")
        return self.process.wait(timeout=timeout), self.text


@pytest.fixture
def live() -> type[LiveOutput]:
    return LiveOutput


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_redis_server(data: Path, *options: str) -> Iterator[str]:
    """A real redis-server on a free loopback port (its files in ``data``, ``options`` added to
    its command line), answering before this yields its URL, and stopped afterwards, on failure
    too. Its environment lacks the per-test tag: it may outlive a test."""
    import redis

    binary = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/sbin:/usr/bin")
    if binary is None:
        pytest.fail("redis-server is not installed: run scripts/test, which installs it")
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != TAG}
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(data), *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not start on port {port}")
                time.sleep(0.02)
        client.close()
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server for the whole session, on a free loopback port, stopped at the end (on
    failure too). Its environment lacks the per-test tag: it is meant to outlive each test."""
    with running_redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's Redis, emptied for this test."""
    import redis

    client = redis.Redis.from_url(redis_server)
    client.flushall()
    client.close()
    return redis_server


# Real OpenSSH servers for the deploy tests (the code is in tests/sshd_hosts.py, shared with
# bench/deploy.py) --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sshd_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHCluster]:
    """Real OpenSSH servers on 127.0.0.2-4 for the whole session, each with a generated host key,
    one client key authorized for the current user, a known_hosts file listing exactly these
    hosts, and a private /srv (a mount namespace) where the machine allows it. Stopped at the end,
    on failure too. Their environment lacks the per-test tag: they outlive each test.

    The hosts' shell reads no ``~/.bashrc`` (``quiet_shell``): this machine's runs ``pyenv init``,
    which costs every remote command a fraction of a second (a deploy 3 s against 9 s) and can
    wait on pyenv's lock when hosts run commands at once. ``bashrc_hosts`` keeps one test on hosts
    that do read it, as many real servers do."""
    yield from _sshd_cluster(tmp_path_factory, quiet_shell=True)


@pytest.fixture
def bashrc_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHCluster]:
    """Hosts like ``sshd_cluster``'s, for one test, whose shell reads the user's ``~/.bashrc``
    for every command; emptied and cleaned as ``deploy_hosts`` does."""
    for cluster in _sshd_cluster(tmp_path_factory, quiet_shell=False):
        with clean_deploy_hosts(cluster) as cleaned:
            yield cleaned


def _sshd_cluster(
    tmp_path_factory: pytest.TempPathFactory, quiet_shell: bool
) -> Iterator[SSHCluster]:
    if not os.path.exists(SSHD):
        pytest.fail(sshd_hosts.NO_SSHD)
    base = tmp_path_factory.mktemp("sshd")
    env = {key: value for key, value in os.environ.items() if key != TAG}
    with ExitStack() as stack:
        try:
            cluster = stack.enter_context(sshd_hosts.sshd_cluster(base, env, quiet_shell))
        except sshd_hosts.SSHDidNotStart as error:
            pytest.fail(str(error))
        yield cluster


@pytest.fixture
def deploy_hosts(sshd_cluster: SSHCluster) -> Iterator[SSHCluster]:
    """The session's SSH hosts, each /srv emptied for this test; afterwards, on failure too, every
    process still running on a host is killed (with a warning: deploy tests stop their own, this
    is the safety net) and every /srv emptied again."""
    with clean_deploy_hosts(sshd_cluster) as cluster:
        yield cluster


@pytest.fixture
def deploy_app(tmp_path: Path) -> DeployApp:
    """A fresh git repository (branch main) with the example app committed in one commit."""
    application = DeployApp(tmp_path / "app")
    application.create()
    return application


@pytest.fixture
def deployment(deploy_app: DeployApp, deploy_hosts: SSHCluster, redis_url: str) -> Iterator[object]:
    """The example app's repository with a procman.yml for the session's sshd hosts
    (``tests.deployment.Deployment``); what it started on the hosts is stopped at the end."""
    from tests.deployment import Deployment

    deployment = Deployment(deploy_app, deploy_hosts, redis_url)
    yield deployment
    deployment.stop_everything()
