"""Deploy orchestration (rolling, roll back, Ctrl-C) at the transport seam, in a second or so.

Each "host" is a directory of this machine: a ``Transport`` that runs the real remote steps
(``deploy/steps.py``: lock, unpack, switch, history, ...) with ``sh`` here, the deploy root
mapped to the host's directory, and plays the host's processes itself (``procman start``,
``stop``, the health check answer the test sets). The same paths through real sshd hosts and the
real app are in tests/integration/test_deploy.py, which these do not replace."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath

import pytest

from procman.deploy.config import Environment, Host, parse_deploy_config
from procman.deploy.pipeline import DeployError, DeployOptions, Pipeline
from procman.deploy.transport import LocalTransport
from procman.deploy.transport.base import ClosesOnExit, Result, StrPath

pytestmark = pytest.mark.timeout(60)

ROOT = "/srv/app"
PORT = 5099


class FakeHost(ClosesOnExit):
    """One host: its deploy root is ``directory``; its processes are a set of release ids."""

    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.directory = directory
        self.local = LocalTransport(name)
        self.running: set[str] = set()
        self.healthy = True
        """What the health check answers for this host's web."""
        self.on_step: Callable[[str], None] = lambda step: None
        """Called with each step's name (``start``, ``health``, ``built``...) before it runs."""
        self.lock = threading.Lock()

    @property
    def host(self) -> str:
        return self.name

    def here(self, text: str) -> str:
        return text.replace(ROOT, str(self.directory))

    def run(self, argv: Sequence[str], *, timeout: float, input: bytes | None = None) -> Result:
        step = argv[3].removeprefix("procman-") if argv[:2] == ["sh", "-c"] else argv[0]
        if argv[0] == "python3":
            step = "health"
        self.on_step(step)
        if step == "health":
            answer = "200" if self.healthy else "503"
            return Result(0 if self.healthy else 1, json.dumps({str(PORT): answer}).encode(), b"")
        if step == "start":
            release = PurePosixPath(argv[4]).name
            with self.lock:
                self.running.add(release)
            web = argv[argv.index("-m") + 1].startswith("web=1")
            listed = [{"type": "web", "port": PORT}] if web else []
            return Result(0, json.dumps(listed).encode(), b"")
        if step == "procman":
            release = PurePosixPath(argv[4]).name
            if argv[6] == "stop":
                with self.lock:
                    self.running.discard(release)
            return Result(0, b"", b"")
        if step == "running":
            lines = "".join(f"{ROOT}/releases/{release}\n" for release in sorted(self.running))
            return Result(0, lines.encode(), b"")
        result = self.local.run([self.here(a) for a in argv], timeout=timeout, input=input)
        back = str(self.directory)
        return Result(
            result.exit_status,
            result.stdout.replace(back.encode(), ROOT.encode()),
            result.stderr.replace(back.encode(), ROOT.encode()),
        )

    def put(self, local_path: StrPath, remote_path: str | PurePosixPath) -> None:
        self.local.put(local_path, self.here(str(remote_path)))

    def get(self, remote_path: str | PurePosixPath, local_path: StrPath) -> None:
        self.local.get(self.here(str(remote_path)), local_path)

    def close(self) -> None:
        pass

    # -- what the test reads -----------------------------------------------------------------

    def current(self) -> str | None:
        link = self.directory / "current"
        return Path(os.readlink(link)).name if link.is_symlink() else None

    def history(self) -> list[dict[str, object]]:
        path = self.directory / ".procman" / "history.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True,
                          timeout=30).stdout  # fmt: skip


class Cluster:
    """A git repository of a tiny app and two fake hosts, web1 (web) and web2 (worker)."""

    def __init__(self, base: Path, rolling: bool) -> None:
        self.repo = base / "repo"
        self.repo.mkdir()
        self.hosts = {name: FakeHost(name, base / name) for name in ("web1", "web2")}
        for host in self.hosts.values():
            (host.directory / "shared").mkdir(parents=True)
            (host.directory / "shared" / ".env").write_text("")
        git(self.repo, "init", "-q", "-b", "main")
        git(self.repo, "config", "user.email", "t@example.com")
        git(self.repo, "config", "user.name", "t")
        (self.repo / "Procfile").write_text("web: serve\nworker: work\n")
        procman = self.repo / ".venv" / "bin" / "procman"
        procman.parent.mkdir(parents=True)
        procman.write_text("#!/bin/sh\n")  # finish_build checks that the release has one
        procman.chmod(0o755)
        hosts = "[{host: web1, roles: [web]}, {host: web2, roles: [worker]}]"
        (self.repo / "procman.yml").write_text(
            "app: demo\nenvironments:\n"
            f"  staging: {{hosts: {hosts}, path: {ROOT}, rolling: {str(rolling).lower()}}}\n"
        )
        self.commit("first")
        self.said: list[str] = []
        config = parse_deploy_config(
            (self.repo / "procman.yml").read_text(), str(self.repo / "procman.yml")
        )
        self.pipeline = Pipeline(self.repo, config, self.said.append, connect=self.connect)

    def connect(self, host: Host, environment: Environment) -> FakeHost:
        return self.hosts[host.host]

    def commit(self, message: str) -> None:
        (self.repo / "VERSION").write_text(message)
        git(self.repo, "add", "-A")
        git(self.repo, "commit", "-q", "-m", message)

    def deploy(self) -> str:
        outcome = self.pipeline.deploy("staging", DeployOptions(skip_tests=True))
        return outcome.release_id

    def currents(self) -> dict[str, str | None]:
        return {name: host.current() for name, host in self.hosts.items()}


@pytest.fixture
def cluster(tmp_path: Path) -> Cluster:
    if shutil.which("git") is None or shutil.which("flock") is None:
        pytest.skip("git and flock are needed")
    return Cluster(tmp_path, rolling=False)


@pytest.fixture
def rolling(tmp_path: Path) -> Cluster:
    if shutil.which("git") is None or shutil.which("flock") is None:
        pytest.skip("git and flock are needed")
    return Cluster(tmp_path, rolling=True)


def test_a_failed_health_check_rolls_every_host_back(cluster: Cluster) -> None:
    first = cluster.deploy()
    assert cluster.currents() == {"web1": first, "web2": first}
    cluster.commit("second")
    cluster.hosts["web1"].healthy = False
    with pytest.raises(DeployError, match=r"health check.*rolled back"):
        cluster.deploy()
    assert cluster.currents() == {"web1": first, "web2": first}
    assert cluster.hosts["web1"].running == {first}
    for host in cluster.hosts.values():
        assert [r["result"] for r in host.history()] == ["ok", "failed, rolled back"]
    assert "web1: rolled back to " + first in cluster.said
    assert "web2: rolled back to " + first in cluster.said


def test_rollback_activates_the_previous_healthy_release(cluster: Cluster) -> None:
    first = cluster.deploy()
    cluster.commit("second")
    second = cluster.deploy()
    assert second != first
    outcome = cluster.pipeline.rollback("staging", None)
    assert outcome.release_id == first
    assert cluster.currents() == {"web1": first, "web2": first}
    assert cluster.hosts["web1"].running == {first}
    history = cluster.hosts["web2"].history()
    assert [(r["action"], r["release_id"], r["result"]) for r in history][-1] == (
        "rollback", first, "ok",
    )  # fmt: skip


def test_rolling_stops_at_the_first_unhealthy_host(rolling: Cluster) -> None:
    first = rolling.deploy()
    rolling.commit("second")
    rolling.hosts["web1"].healthy = False
    steps: list[tuple[str, str]] = []
    for host in rolling.hosts.values():
        host.on_step = lambda step, name=host.name: steps.append((name, step))
    with pytest.raises(DeployError, match="rolled back"):
        rolling.deploy()
    assert ("web1", "switch") in steps and ("web1", "start") in steps
    # web2 was never switched nor started: a rolling deploy stops at web1's failure
    assert ("web2", "switch") not in steps and ("web2", "start") not in steps
    assert rolling.currents() == {"web1": first, "web2": first}


@pytest.fixture(autouse=True)
def python_handles_ctrl_c() -> Iterator[None]:
    """Python's own SIGINT handler, as in a procman process: an RQ worker run in-process by an
    earlier test (tests/integration/test_jobs.py) leaves RQ's handler installed."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def interrupt_at(host: FakeHost, wanted: str) -> None:
    """Ctrl-C (a real SIGINT to this process) when ``host`` begins the step ``wanted``."""

    def on_step(step: str) -> None:
        if step == wanted:
            host.on_step = lambda step: None
            os.kill(os.getpid(), signal.SIGINT)

    host.on_step = on_step


def test_ctrl_c_before_the_switch_switches_nothing(cluster: Cluster) -> None:
    first = cluster.deploy()
    cluster.commit("second")
    interrupt_at(cluster.hosts["web2"], "built")
    with pytest.raises(KeyboardInterrupt):
        cluster.deploy()
    assert "interrupted: no host was switched" in cluster.said
    assert cluster.currents() == {"web1": first, "web2": first}
    last = cluster.hosts["web1"].history()[-1]
    assert (last["result"], last["flags"]) == ("failed", ["interrupted"])


def test_ctrl_c_during_the_restart_puts_the_previous_release_back(rolling: Cluster) -> None:
    first = rolling.deploy()
    rolling.commit("second")
    interrupt_at(rolling.hosts["web1"], "health")
    with pytest.raises(KeyboardInterrupt):
        rolling.deploy()
    assert "interrupted: putting every host back on its previous release" in rolling.said
    assert rolling.currents() == {"web1": first, "web2": first}
    assert rolling.hosts["web1"].running == {first}
    last = rolling.hosts["web1"].history()[-1]
    assert (last["result"], last["flags"]) == ("failed, rolled back", ["interrupted"])
