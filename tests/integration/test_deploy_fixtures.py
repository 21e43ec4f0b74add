"""The deploy tests' fixtures, against the session's real sshd hosts: every session on a host
carries its address in PROCMAN_SSH_HOST (sshd itself does not), detached daemons outlive their
SSH connection and are killed by the clean-up, /srv is emptied, and ``deploy_app`` is a clean
git repository holding the example app."""

from __future__ import annotations

import re
import subprocess
import threading
import time
import warnings
from pathlib import Path

import psutil
import pytest

from procman.deploy.transport import TransportError
from procman.deploy.transport.ssh import SSHTransport
from tests.conftest import (
    HOST_VAR,
    RUN_VAR,
    SSH_ADDRESSES,
    SSH_RUN,
    DeployApp,
    HostProcessesLeftRunning,
    SSHCluster,
    SSHHost,
    clean_deploy_hosts,
    free_port_on,
    host_processes,
    kill_host_processes,
)

DETACH_SLEEP = "setsid -f sleep 300 </dev/null >/dev/null 2>&1"


def connect(cluster: SSHCluster, host: SSHHost) -> SSHTransport:
    return cluster.connect(host)


def run_on(cluster: SSHCluster, host: SSHHost, script: str) -> str:
    with connect(cluster, host) as ssh:
        result = ssh.run(["sh", "-c", script], timeout=10)
    assert result.exit_status == 0, result.stderr
    return result.stdout.decode()


def wait_for_host_processes(count: int, timeout: float = 5) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while len(found := host_processes(SSH_RUN)) < count:
        assert time.monotonic() < deadline, f"{count} host processes expected, found {found}"
        time.sleep(0.02)
    return found


def sshd_processes(host: SSHHost) -> list[psutil.Process]:
    """The host's listener and its per-connection sshd processes (privileged and user's)."""
    assert host.process is not None
    listener = psutil.Process(host.process.pid)
    assert listener.name() == "sshd"
    return [listener, *(p for p in listener.children(recursive=True) if name_of(p) == "sshd")]


def name_of(process: psutil.Process) -> str:
    """The process's name; "" once it has exited (it may between being listed and asked)."""
    try:
        return process.name()
    except psutil.Error:
        return ""


def test_every_session_on_a_host_has_its_address(sshd_cluster: SSHCluster) -> None:
    for host in sshd_cluster.hosts:
        output = run_on(sshd_cluster, host, f'echo "${HOST_VAR} ${RUN_VAR}"')
        assert output == f"{host.address} {SSH_RUN}\n"


def test_sshd_and_pytest_do_not_carry_it_a_sessions_command_does(
    deploy_hosts: SSHCluster,
) -> None:
    host = deploy_hosts.hosts[1]
    with connect(deploy_hosts, host) as ssh:
        outcome: list[object] = []

        def sleep_there() -> None:
            try:
                outcome.append(ssh.run(["sleep", "30"], timeout=20))
            except TransportError as error:
                outcome.append(error)

        running = threading.Thread(target=sleep_there, daemon=True)
        running.start()
        try:
            deadline = time.monotonic() + 5
            while not (found := [p for p in host_processes(SSH_RUN) if "sleep" in name_of(p)]):
                assert time.monotonic() < deadline, "the session's sleep did not start"
                time.sleep(0.02)
            [sleeper] = found
            assert sleeper.cmdline() == ["sleep", "30"]
            assert not [p for p in host_processes(SSH_RUN) if name_of(p) == "sshd"]
            assert sleeper.environ()[HOST_VAR] == host.address
            sshds = sshd_processes(host)
            # The listener and this connection's process (as root, without privilege separation
            # into a second, unprivileged one; other users get that one too).
            assert len(sshds) >= 2
            for process in [*sshds, psutil.Process()]:
                assert HOST_VAR not in process.environ(), process.cmdline()
            # The sleep's parent is the session's sshd, which survives the kill.
            assert sleeper.parent() in sshds
            assert [text for text in kill_host_processes() if "sleep 30" in text]
        finally:
            running.join(timeout=15)
        assert not running.is_alive()
        [ended] = outcome
        assert isinstance(ended, TransportError) and "killed" in str(ended), ended
        assert all(process.is_running() for process in sshds)
        assert ssh.run(["true"], timeout=10).exit_status == 0  # the connection still works


def test_a_detached_process_outlives_its_connection_until_killed(
    sshd_cluster: SSHCluster,
) -> None:
    for host in sshd_cluster.hosts:
        run_on(sshd_cluster, host, DETACH_SLEEP)
    sleepers = wait_for_host_processes(3)

    def under_sshd() -> list[psutil.Process]:
        """Sleepers still in an SSH session (a dead one is not: the asserts below see it)."""
        found = []
        for sleeper in sleepers:
            try:
                parent = sleeper.parent()
                if parent is not None and parent.name() == "sshd":
                    found.append(sleeper)
            except psutil.NoSuchProcess:
                pass
        return found

    deadline = time.monotonic() + 10  # every connection is closed: they leave sshd's sessions
    while under_sshd():
        assert time.monotonic() < deadline, f"still under sshd after 10 s: {under_sshd()}"
        time.sleep(0.02)
    for sleeper in sleepers:
        assert sleeper.is_running() and sleeper.cmdline() == ["sleep", "300"]
        parent = sleeper.parent()
        assert parent is None or parent.name() != "sshd"
    expected = {f"{p.environ()[HOST_VAR]} pid {p.pid}: sleep 300" for p in sleepers}
    assert {text.split()[0] for text in expected} == set(SSH_ADDRESSES)
    killed = kill_host_processes()
    assert sorted(killed) == sorted(expected)
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in sleepers)
    assert kill_host_processes() == []


def test_a_process_ignoring_sigterm_is_killed_with_sigkill(sshd_cluster: SSHCluster) -> None:
    host = sshd_cluster.hosts[0]
    run_on(
        sshd_cluster,
        host,
        "setsid -f sh -c 'trap \"\" TERM; exec sleep 300' </dev/null >/dev/null 2>&1",
    )
    [stubborn] = wait_for_host_processes(1)
    deadline = time.monotonic() + 10
    while stubborn.cmdline() != ["sleep", "300"]:  # the sh has not exec'd the sleep yet
        assert time.monotonic() < deadline, stubborn.cmdline()
        time.sleep(0.01)
    started = time.monotonic()
    assert kill_host_processes(term_timeout=0.5) == [
        f"{host.address} pid {stubborn.pid}: sleep 300"
    ]
    assert time.monotonic() - started >= 0.5
    assert not host_processes(SSH_RUN)


def test_clean_up_runs_when_the_test_fails_and_warns(sshd_cluster: SSHCluster) -> None:
    host = sshd_cluster.hosts[2]
    with (
        pytest.warns(HostProcessesLeftRunning, match=r"killed 1 process.*sleep 300"),
        pytest.raises(RuntimeError, match="the test failed"),
        clean_deploy_hosts(sshd_cluster),
    ):
        run_on(sshd_cluster, host, f"mkdir -p {host.deploy_root}/app && {DETACH_SLEEP}")
        assert (host.srv / "app").is_dir()
        wait_for_host_processes(1)
        raise RuntimeError("the test failed")
    assert not host_processes(SSH_RUN)
    assert [list(h.srv.iterdir()) for h in sshd_cluster.hosts] == [[], [], []]


def test_srv_is_emptied_before_and_nothing_is_said_when_nothing_was_left(
    sshd_cluster: SSHCluster, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("kept\n")
    for host in sshd_cluster.hosts:
        (host.srv / "app" / "releases" / "1").mkdir(parents=True)
        (host.srv / "app" / "releases" / "1" / ".venv").symlink_to(outside)
        (host.srv / "link").symlink_to(outside)
        (host.srv / ".hidden").write_text("x\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with clean_deploy_hosts(sshd_cluster) as cluster:
            assert cluster is sshd_cluster
            assert [list(h.srv.iterdir()) for h in cluster.hosts] == [[], [], []]
            for host in cluster.hosts:
                run_on(cluster, host, f"echo hi > {host.deploy_root}/file")
                assert (host.srv / "file").read_text() == "hi\n"
    assert (outside / "keep").read_text() == "kept\n"
    assert [list(h.srv.iterdir()) for h in sshd_cluster.hosts] == [[], [], []]


def test_deploy_hosts_gives_empty_srv(deploy_hosts: SSHCluster) -> None:
    for host in deploy_hosts.hosts:
        assert host.srv.is_dir() and not list(host.srv.iterdir())
        assert run_on(deploy_hosts, host, f"ls -A {host.deploy_root}") == ""


def test_free_port_on_a_host_address(sshd_cluster: SSHCluster) -> None:
    import socket

    for host in sshd_cluster.hosts:
        port = free_port_on(host.address)
        assert port != host.port
        with socket.socket() as listener:
            listener.bind((host.address, port))


def test_deploy_app_is_a_clean_repository_with_the_example_app(deploy_app: DeployApp) -> None:
    root = deploy_app.root
    assert (root / "Procfile").read_text().startswith("# The snippets example app")
    assert deploy_app.git("status", "--porcelain") == ""
    assert deploy_app.git("rev-list", "--count", "HEAD") == "1"
    assert deploy_app.git("branch", "--show-current") == "main"
    tracked = deploy_app.git("ls-files").splitlines()
    assert {".gitignore", "Procfile", "queues.yml", "requirements.txt"} <= set(tracked)
    assert "snippets/web.py" in tracked and "snippets/templates/base.html" in tracked
    assert not [name for name in tracked if "__pycache__" in name or name.endswith(".db")]
    assert "procman.yml" not in tracked
    (root / ".procman").mkdir()
    (root / ".procman" / "state").write_text("{}\n")
    assert deploy_app.git("status", "--porcelain") == ""
    check = deploy_app.run("check", timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr


def test_deploy_app_commit_returns_the_new_sha(deploy_app: DeployApp) -> None:
    first = deploy_app.git("rev-parse", "HEAD")
    sha = deploy_app.commit("tune", {"snippets/extra/notes.txt": "hello\n", "Procfile": "web: x\n"})
    assert re.fullmatch(r"[0-9a-f]{40}", sha) and sha != first
    assert sha == deploy_app.git("rev-parse", "HEAD")
    assert deploy_app.git("show", f"{sha}:snippets/extra/notes.txt") == "hello"
    assert deploy_app.git("status", "--porcelain") == ""
    assert deploy_app.commit("again") != sha  # a commit even when nothing changed


def test_build_command_links_the_test_venv(deploy_app: DeployApp, tmp_path: Path) -> None:
    release = tmp_path / "release"
    release.mkdir()
    subprocess.run(["sh", "-c", deploy_app.build_command], cwd=release, check=True, timeout=10)
    assert (release / ".venv").resolve() == deploy_app.venv.resolve()
    probe = subprocess.run(
        [str(release / ".venv" / "bin" / "python"), "-c", "import flask, gunicorn, procman"],
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert probe.returncode == 0, probe.stderr
    assert (release / ".venv" / "bin" / "procman").exists()
