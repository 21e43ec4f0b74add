"""SSHTransport against real OpenSSH servers (the session's ``sshd_cluster``): commands, one reused
connection, three hosts in parallel, SFTP transfers, strict host keys, unreachable hosts and
timeouts. No mocks."""

from __future__ import annotations

import hashlib
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from procman.deploy.transport import (
    CommandTimeout,
    ConnectionLost,
    HostKeyRejected,
    HostUnreachable,
    LocalTransport,
    TransportError,
)
from procman.deploy.transport.ssh import SSHTransport, fingerprint
from tests.conftest import HOST_VAR, SSHCluster, SSHHost


def connect(cluster: SSHCluster, host: SSHHost, **options: object) -> SSHTransport:
    return cluster.connect(host, **options)


@pytest.fixture
def host(sshd_cluster: SSHCluster) -> SSHHost:
    return sshd_cluster.hosts[0]


@pytest.fixture
def ssh(sshd_cluster: SSHCluster, host: SSHHost) -> Iterator[SSHTransport]:
    with connect(sshd_cluster, host) as transport:
        yield transport


def test_run_returns_output_and_exit_status(ssh: SSHTransport) -> None:
    result = ssh.run(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=10)
    assert (result.exit_status, result.stdout, result.stderr) == (3, b"out\n", b"err\n")


def test_arguments_are_quoted_not_interpreted(ssh: SSHTransport) -> None:
    result = ssh.run(["printf", "%s|", "a b", "$(id)", "; rm -rf /", "it's"], timeout=10)
    assert result.stdout == b"a b|$(id)|; rm -rf /|it's|"


def test_input_is_fed_to_the_command(ssh: SSHTransport) -> None:
    assert ssh.run(["cat"], timeout=10, input=b"x" * 200_000).stdout == b"x" * 200_000


def test_one_connection_is_reused_for_every_command(ssh: SSHTransport, host: SSHHost) -> None:
    seen = {ssh.run(["sh", "-c", "echo $SSH_CONNECTION"], timeout=10).stdout for _ in range(10)}
    sock = ssh.tcp_socket
    assert sock is not None and len(seen) == 1
    address, port = sock.getsockname()
    assert seen.pop().split()[:2] == [address.encode(), str(port).encode()]
    assert host.sessions_from(port) == 1
    ssh.run(["true"], timeout=10)
    assert ssh.tcp_socket is sock
    ssh.close()
    assert ssh.tcp_socket is None


def test_each_host_has_its_own_srv(sshd_cluster: SSHCluster) -> None:
    for index, host in enumerate(sshd_cluster.hosts):
        (host.srv / "marker").write_text(f"host {index}\n")
    for index, host in enumerate(sshd_cluster.hosts):
        with connect(sshd_cluster, host) as transport:
            marker = f"{host.deploy_root}/marker"
            assert transport.run(["cat", marker], timeout=10).stdout == f"host {index}\n".encode()


def test_three_hosts_in_parallel(sshd_cluster: SSHCluster, tmp_path: Path) -> None:
    """Each host's command waits (up to 20 s) until all three have started: run one after
    another, the first would give up and fail."""
    transports = [connect(sshd_cluster, host) for host in sshd_cluster.hosts]
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    os.chmod(tmp_path, 0o755)
    script = (
        'touch "$0/$1"; i=0; while [ "$(ls "$0" | wc -l)" -lt 3 ]; do '
        "i=$((i+1)); [ $i -gt 200 ] && exit 1; sleep 0.1; done; echo done"
    )
    try:
        with ThreadPoolExecutor(len(transports)) as pool:
            results = list(
                pool.map(
                    lambda t: t.run(["sh", "-c", script, str(meeting), t.host], timeout=30),
                    transports,
                )
            )
        assert all(r.exit_status == 0 and r.stdout.endswith(b"done\n") for r in results), results
        assert sorted(os.listdir(meeting)) == sorted(t.host for t in transports)
    finally:
        for transport in transports:
            transport.close()


def test_put_and_get_a_megabyte_by_sha256(ssh: SSHTransport, host: SSHHost,
                                          tmp_path: Path) -> None:  # fmt: skip
    payload = os.urandom(1024 * 1024)
    source = tmp_path / "artifact.tar.gz"
    source.write_bytes(payload)
    remote = f"{host.deploy_root}/artifact.tar.gz"
    ssh.put(source, remote)
    digest = ssh.run(["sha256sum", remote], timeout=10).stdout.split()[0].decode()
    assert digest == hashlib.sha256(payload).hexdigest()
    assert ssh.run(["ls", "-A", host.deploy_root], timeout=10).stdout.split().count(
        b"artifact.tar.gz") == 1 and b"procman-" not in ssh.run(
        ["ls", "-A", host.deploy_root], timeout=10).stdout  # fmt: skip
    back = tmp_path / "back.tar.gz"
    ssh.get(remote, back)
    assert hashlib.sha256(back.read_bytes()).hexdigest() == digest


def test_upload_into_a_missing_directory_names_host_and_step(ssh: SSHTransport,
                                                             tmp_path: Path) -> None:  # fmt: skip
    source = tmp_path / "file"
    source.write_bytes(b"x")
    with pytest.raises(TransportError) as raised:
        ssh.put(source, "/nonexistent/dir/file")
    assert raised.value.host == ssh.host
    assert "upload" in str(raised.value) and "/nonexistent/dir/file" in str(raised.value)


def test_unknown_host_key_is_refused_with_its_fingerprint(
    sshd_cluster: SSHCluster, host: SSHHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/known_hosts to fall back on
    others = tmp_path / "known_hosts"
    lines = sshd_cluster.known_hosts.read_text().splitlines()
    others.write_text("".join(f"{line}\n" for line in lines if f"[{host.address}]" not in line))
    expected = fingerprint_of(host)
    with (
        connect(sshd_cluster, host, known_hosts=[others]) as transport,
        pytest.raises(HostKeyRejected) as raised,
    ):
        transport.run(["true"], timeout=10)
    message = str(raised.value)
    assert expected in message and "\n" not in message
    assert host.address in message and f"ssh-keyscan -p {host.port}" in message


def test_changed_host_key_is_refused(sshd_cluster: SSHCluster, host: SSHHost,
                                     tmp_path: Path) -> None:  # fmt: skip
    other_key = sshd_cluster.hosts[1].root / "ssh_host_ed25519_key.pub"
    forged = tmp_path / "known_hosts"
    key_type, key = other_key.read_text().split()[:2]
    forged.write_text(f"[{host.address}]:{host.port} {key_type} {key}\n")
    with (
        connect(sshd_cluster, host, known_hosts=[forged]) as transport,
        pytest.raises(HostKeyRejected, match="HOST KEY CHANGED") as raised,
    ):
        transport.run(["true"], timeout=10)
    assert fingerprint_of(host) in str(raised.value)


def test_unreachable_port_is_a_one_line_error(sshd_cluster: SSHCluster) -> None:
    with (
        SSHTransport("127.0.0.2", 1, sshd_cluster.user, connect_timeout=5) as transport,
        pytest.raises(HostUnreachable) as raised,
    ):
        transport.run(["true"], timeout=10)
    message = str(raised.value)
    assert message.startswith(f"{sshd_cluster.user}@127.0.0.2:1: connect: cannot reach")
    assert "\n" not in message


def test_authentication_failure_names_the_host(sshd_cluster: SSHCluster, host: SSHHost,
                                               tmp_path: Path) -> None:  # fmt: skip
    stranger = tmp_path / "id_stranger"
    import subprocess

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
                   check=True)  # fmt: skip
    with (
        connect(sshd_cluster, host, identity_file=stranger) as transport,
        pytest.raises(TransportError, match="authentication failed") as raised,
    ):
        transport.run(["true"], timeout=10)
    assert str(raised.value).startswith(transport.host) and "\n" not in str(raised.value)


def test_command_timeout_is_enforced_and_the_command_stopped(ssh: SSHTransport) -> None:
    started = time.monotonic()
    with pytest.raises(CommandTimeout, match=r"no exit within 0\.5s"):
        ssh.run(["sh", "-c", "echo $$ > /tmp/procman-timeout.pid; exec sleep 30"], timeout=0.5)
    assert time.monotonic() - started < 5
    pid = ssh.run(["cat", "/tmp/procman-timeout.pid"], timeout=10).stdout.decode().strip()
    deadline = time.monotonic() + 5
    while ssh.run(["kill", "-0", pid], timeout=10).exit_status == 0:
        assert time.monotonic() < deadline, "the timed-out command is still running"
        time.sleep(0.05)
    assert ssh.run(["echo", "still usable"], timeout=10).stdout == b"still usable\n"


def host_sleeps(host: SSHHost, seconds: str) -> list[psutil.Process]:
    """The ``sleep SECONDS`` processes running on ``host``."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(HOST_VAR) == host.address and process.cmdline() == [
                "sleep",
                seconds,
            ]:
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


def when_running(host: SSHHost, seconds: str, then: Callable[[], object]) -> threading.Thread:
    """On a thread: once ``sleep SECONDS`` runs on ``host``, call ``then``."""

    def wait_then() -> None:
        deadline = time.monotonic() + 20
        while not host_sleeps(host, seconds) and time.monotonic() < deadline:
            time.sleep(0.05)
        then()

    thread = threading.Thread(target=wait_then)
    thread.start()
    return thread


def kill_sleeps(host: SSHHost, seconds: str) -> None:
    for process in host_sleeps(host, seconds):
        process.kill()


def test_a_connection_lost_under_a_command_fails_it_at_once(
    sshd_cluster: SSHCluster, host: SSHHost
) -> None:
    with connect(sshd_cluster, host) as ssh:
        ssh.run(["true"], timeout=10)
        assert ssh.tcp_socket is not None
        sessions = host.connection_processes(ssh.tcp_socket.getsockname()[1])
        assert sessions
        killed_at: list[float] = []

        def kill() -> None:
            killed_at.append(time.monotonic())
            for process in sessions:
                process.kill()

        thread = when_running(host, "301", kill)
        try:
            with pytest.raises(ConnectionLost) as raised:
                ssh.run(["sleep", "301"], timeout=600)
            # The old loop waited at 100% CPU for an end of output that never came.
            assert time.monotonic() - killed_at[0] < 5
        finally:
            thread.join()
            kill_sleeps(host, "301")
        assert raised.value.message == f"{ssh.host}: run `sleep 301`: connection lost"
        # The next command connects again.
        assert ssh.run(["echo", "back"], timeout=10).stdout == b"back\n"


def test_a_host_that_stops_answering_fails_the_command_after_the_stall_timeout(
    sshd_cluster: SSHCluster, host: SSHHost
) -> None:
    with connect(sshd_cluster, host, keepalive_interval=1, stall_timeout=3) as ssh:
        ssh.run(["true"], timeout=10)
        assert ssh.tcp_socket is not None
        sessions = host.connection_processes(ssh.tcp_socket.getsockname()[1])
        stopped_at: list[float] = []

        def stop() -> None:
            stopped_at.append(time.monotonic())
            for process in sessions:
                process.send_signal(signal.SIGSTOP)

        thread = when_running(host, "302", stop)
        try:
            with pytest.raises(ConnectionLost) as raised:
                ssh.run(["sleep", "302"], timeout=600)
            waited = time.monotonic() - stopped_at[0]
        finally:
            thread.join()
            for process in sessions:
                process.send_signal(signal.SIGCONT)
            kill_sleeps(host, "302")
        assert 3 <= waited < 3 + 1 + 5, waited  # the stall timeout, after at most one interval
        assert raised.value.message == (
            f"{ssh.host}: run `sleep 302`: the host stopped answering (no reply to a keepalive "
            "within 3s); connection closed"
        )


def test_a_quiet_command_on_a_live_connection_is_not_a_stall(
    sshd_cluster: SSHCluster, host: SSHHost
) -> None:
    with connect(sshd_cluster, host, keepalive_interval=0.5, stall_timeout=1) as ssh:
        assert ssh.run(["sh", "-c", "sleep 4; echo done"], timeout=20).stdout == b"done\n"


def fingerprint_of(host: SSHHost) -> str:
    import paramiko

    key = paramiko.Ed25519Key.from_private_key_file(str(host.root / "ssh_host_ed25519_key"))
    return fingerprint(key)


def test_local_transport_has_the_same_interface(tmp_path: Path) -> None:
    with LocalTransport() as local:
        result = local.run(["sh", "-c", "cat; echo err >&2; exit 4"], timeout=10, input=b"in")
        assert (result.exit_status, result.stdout, result.stderr) == (4, b"in", b"err\n")
        (tmp_path / "a").write_bytes(b"payload")
        local.put(tmp_path / "a", str(tmp_path / "b"))
        local.get(str(tmp_path / "b"), tmp_path / "c")
        assert (tmp_path / "c").read_bytes() == b"payload"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]
        started = time.monotonic()
        with pytest.raises(CommandTimeout, match="localhost: run `sleep 30`"):
            local.run(["sleep", "30"], timeout=0.3)
        assert time.monotonic() - started < 5


def test_a_stream_gives_output_as_it_comes_and_closing_it_ends_the_command(
    ssh: SSHTransport, host: SSHHost
) -> None:
    # A command that waits for its standard input to close, as procman's log follower does.
    script = "echo first; echo second >&2; cat; echo never"
    stream = ssh.stream(["sh", "-c", script], timeout=10)
    received = b""
    deadline = time.monotonic() + 10
    while received != b"first\nsecond\n" and time.monotonic() < deadline:
        select.select([stream], [], [], 0.5)
        received += stream.read()
    assert received == b"first\nsecond\n"
    assert not stream.ended
    stream.close()
    deadline = time.monotonic() + 10
    while any(p.name() == "cat" for p in _host_children(host)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(p.name() == "cat" for p in _host_children(host))


def test_a_stream_ends_when_the_command_does(ssh: SSHTransport) -> None:
    stream = ssh.stream(["sh", "-c", "echo done"], timeout=10)
    received = b""
    deadline = time.monotonic() + 10
    while not stream.ended and time.monotonic() < deadline:
        select.select([stream], [], [], 0.5)
        received += stream.read()
    stream.close()
    assert received == b"done\n"


def _host_children(host: SSHHost) -> list[psutil.Process]:
    assert host.process is not None
    try:
        return psutil.Process(host.process.pid).children(recursive=True)
    except psutil.Error:
        return []
