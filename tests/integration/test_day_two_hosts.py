"""``procman ps --env``, ``logs --env``, ``run --env`` and ``hosts trust`` against the example app
deployed over real OpenSSH to the session's hosts (staging on the first two here: web, worker on
the first, a worker on the second). No mocks."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from procman.deploy import steps
from tests.conftest import PROCMAN, DeployApp, SSHCluster, SSHHost, host_processes
from tests.deployment import Deployment, release_id_in
from tests.sshd_hosts import kill_sshd, restart_sshd

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
def deployment(
    deploy_app: DeployApp, deploy_hosts: SSHCluster, redis_url: str
) -> Iterator[Deployment]:
    deployment = Deployment(deploy_app, deploy_hosts, redis_url)
    yield deployment
    for host in deploy_hosts.hosts:
        if host.process is not None and host.process.poll() is not None:
            restart_sshd(host)
    deployment.stop_everything()


def two_host_staging(deployment: Deployment) -> str:
    """Staging on the first two hosts, deployed; its release id."""
    deployment.write_config(staging_hosts=deployment.cluster.hosts[:2])
    return release_id_in(deployment.deploy("staging").stdout)


class Output:
    """A running command's standard output and error, read as they come."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        self.out: list[bytes] = []
        self.err: list[bytes] = []
        self._threads = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.err), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _read(stream: object, into: list[bytes]) -> None:
        while chunk := os.read(stream.fileno(), 65536):  # type: ignore[attr-defined]
            into.append(chunk)

    @property
    def text(self) -> str:
        return b"".join(self.out).decode(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 30, after: int = 0) -> re.Match[str]:
        """The first match of ``pattern`` (a regex, multiline) in the output from ``after`` on."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.text[after:], re.M)
            if found:
                return found
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(
                    f"{pattern!r} not seen; output:\n{self.text}\nerrors:\n"
                    + b"".join(self.err).decode(errors="replace")
                )
            time.sleep(0.05)

    def finish(self, timeout: float = 30) -> int:
        status = self.process.wait(timeout=timeout)
        for thread in self._threads:
            thread.join(timeout=10)
        return status

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def followers(address: str) -> list[str]:
    """The log readers (``steps.follow_logs``) running on the host at ``address``."""
    found = []
    for process in host_processes():
        try:
            command = process.cmdline()
            if process.environ().get("PROCMAN_SSH_HOST") == address and command[1:3] == [
                "-c",
                steps.FOLLOW_SCRIPT,
            ]:
                found.append(" ".join(command[:2]))
        except psutil.Error:
            continue
    return found


def restart_on_host(deployment: Deployment, host: SSHHost, release: str, target: str) -> None:
    """``procman restart TARGET`` in the release on ``host``, over SSH as procman does."""
    with deployment.cluster.connect(host) as transport:
        root = f"{host.deploy_root}/snippets"
        result = transport.run(
            steps.procman_in_release(root, release, ["restart", target]), timeout=60
        )
        assert result.ok, result.stdout + result.stderr


# -- ps -------------------------------------------------------------------------------------------


def test_ps_lists_every_instance_of_every_host_and_a_host_that_is_down(
    deployment: Deployment,
) -> None:
    release = two_host_staging(deployment)
    first, second = deployment.cluster.hosts[:2]
    done = deployment.app.run("ps", "--env", "staging", "--json", timeout=60)
    assert done.returncode == 0, done.stderr
    hosts = json.loads(done.stdout)["hosts"]
    assert [h["host"] for h in hosts] == [deployment.label(first), deployment.label(second)]
    assert all(h["answered"] and h["current"] == release for h in hosts)
    rows = {(p["host"], p["name"]): p for h in hosts for p in h["processes"]}
    assert set(rows) == {
        (deployment.label(first), "web.1"),
        (deployment.label(first), "worker.1"),
        (deployment.label(second), "worker.1"),
    }
    for row in rows.values():
        assert row["state"] == "running" and psutil.pid_exists(row["pid"])
        assert row["release"] == release and row["restarts"] == 0 and row["uptime"] >= 0

    table = deployment.app.run("ps", "--env", "staging", timeout=60)
    assert table.returncode == 0, table.stderr
    assert re.search(
        rf"^{re.escape(deployment.label(second))}\s+worker\.1\s+\d+\s+running\s+\S+\s+0\s+{release}$",
        table.stdout,
        re.M,
    ), table.stdout

    kill_sshd(second)  # the host dies; what it ran goes on running
    down = deployment.app.run("ps", "--env", "staging", timeout=60)
    assert down.returncode == 1, down.stdout + down.stderr
    assert "Traceback" not in down.stderr
    assert re.search(
        rf"^{re.escape(deployment.label(first))}\s+web\.1\s+\d+\s+running", down.stdout, re.M
    )
    assert re.search(
        rf"^{re.escape(deployment.label(second))}\s+-\s+-\s+no answer", down.stdout, re.M
    ), down.stdout
    assert (
        f"procman: {deployment.label(second)}: connect: cannot reach {second.address} port "
        f"{second.port} (Connection refused); waited up to 10s to connect and up to 15s for an "
        "answer (check the host's address and port"
    ) in down.stderr
    as_json = json.loads(deployment.app.run("ps", "--env", "staging", "--json", timeout=60).stdout)
    assert [(h["host"], h["answered"]) for h in as_json["hosts"]] == [
        (deployment.label(first), True),
        (deployment.label(second), False),
    ]
    restart_sshd(second)


# -- logs -----------------------------------------------------------------------------------------


def test_logs_follow_two_hosts_across_a_restart_and_end_cleanly_on_ctrl_c(
    deployment: Deployment,
) -> None:
    release = two_host_staging(deployment)
    first, second = deployment.cluster.hosts[:2]
    one, two = (re.escape(deployment.label(h)) for h in (first, second))
    logs = Output([PROCMAN, "logs", "--env", "staging", "-n", "50", "--follow", "--no-color"],
                  deployment.app.root)  # fmt: skip
    try:
        # The local format, each line's instance prefixed with its host.
        logs.wait_for(rf"^\d\d:\d\d:\d\d {one} web\.1 +\| ")
        logs.wait_for(rf"^\d\d:\d\d:\d\d {two} system +\| worker\.1 started \(pid \d+\)$")
        mark = len(logs.text)
        restart_on_host(deployment, second, release, "worker")
        logs.wait_for(
            rf"^\d\d:\d\d:\d\d {two} system +\| worker\.1 started \(pid \d+, restart 1\)$",
            after=mark,
        )
        # Still following both hosts after the restart.
        restart_on_host(deployment, first, release, "web")
        logs.wait_for(
            rf"^\d\d:\d\d:\d\d {one} system +\| web\.1 started \(pid \d+, restart 1\)$",
            after=mark,
        )
        assert len(followers(first.address)) == len(followers(second.address)) == 1
        # What they follow is capped on the hosts: procman start rotates it.
        for host in (first, second):
            starts = [
                p.cmdline() for p in host_processes() if "start" in p.cmdline()[1:4]
                and p.environ().get("PROCMAN_SSH_HOST") == host.address
            ]  # fmt: skip
            assert starts and all(
                " --log-file .procman/procman.log --log-max-bytes 10485760 --log-backups 3"
                in " ".join(command)
                for command in starts
            ), starts
        logs.process.send_signal(signal.SIGINT)
        status = logs.finish()
    finally:
        logs.kill()
    errors = b"".join(logs.err).decode()
    assert status == 130, errors
    assert "Traceback" not in errors
    # The readers on the hosts ended with the SSH channels.
    deadline = time.monotonic() + 10
    while (followers(first.address) or followers(second.address)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not followers(first.address) and not followers(second.address)


def test_logs_of_a_type_without_follow_show_the_last_lines_and_end(deployment: Deployment) -> None:
    two_host_staging(deployment)
    first, second = deployment.cluster.hosts[:2]
    done = deployment.app.run(
        "logs", "--env", "staging", "worker", "-n", "3", "--no-follow", timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines and all(re.match(r"^\d\d:\d\d:\d\d \S+ worker\.1 +\| ", line) for line in lines), (
        lines
    )
    assert len([line for line in lines if deployment.label(first) in line]) <= 3
    assert any(deployment.label(second) in line for line in lines)


def next_line(reader: subprocess.Popen[bytes], timeout: float = 10) -> bytes:
    """The reader's next line (its output unbuffered here); an AssertionError after ``timeout``."""
    assert reader.stdout is not None
    ready, _, _ = select.select([reader.stdout], [], [], timeout)
    assert ready, f"no line within {timeout}s"
    return reader.stdout.readline()


def test_the_follower_follows_a_rotated_file_and_a_switch_of_current(tmp_path: Path) -> None:
    # The reader that runs on the hosts, run here on real files.
    log = Path(steps.SUPERVISOR_LOG)
    first = tmp_path / "releases" / "one" / log
    first.parent.mkdir(parents=True)
    first.write_text("10:00:00 web.1    | old\n")
    (tmp_path / "current").symlink_to("releases/one")
    reader = subprocess.Popen(
        steps.follow_logs(str(tmp_path), 1, True, ["web"]),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        bufsize=0,
    )
    try:
        assert reader.stdout is not None
        assert next_line(reader) == b"10:00:00 web.1    | old\n"
        with first.open("a") as file:
            file.write("10:00:01 worker.1 | not wanted\n10:00:01 web.1    | appended\n")
        assert next_line(reader) == b"10:00:01 web.1    | appended\n"
        first.rename(first.with_name("procman.log.1"))  # rotated: a late line in the old file,
        with first.with_name("procman.log.1").open("a") as file:
            file.write("10:00:02 web.1    | late in the old file\n")
        first.write_text("10:00:03 web.1    | in the new file\n")  # then the new one
        assert next_line(reader) == b"10:00:02 web.1    | late in the old file\n"
        assert next_line(reader) == b"10:00:03 web.1    | in the new file\n"
        second = tmp_path / "releases" / "two" / log
        second.parent.mkdir(parents=True)
        second.write_text("10:00:04 web.1    | the next release\n")
        (tmp_path / "next").symlink_to("releases/two")
        (tmp_path / "next").replace(tmp_path / "current")  # a deploy switches current
        assert next_line(reader) == b"10:00:04 web.1    | the next release\n"
        assert reader.stdin is not None
        reader.stdin.close()  # the SSH channel closed: the reader ends
        assert reader.wait(timeout=10) == 0
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()


# -- run ------------------------------------------------------------------------------------------


def test_run_passes_the_exit_status_back_with_the_environment_variables(
    deployment: Deployment,
) -> None:
    two_host_staging(deployment)
    ok = deployment.app.run(
        "run",
        "--env",
        "staging",
        "--",
        "sh",
        "-c",
        'echo "$SNIPPETS_DB $REDISTOGO_URL $PWD"',
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    first = deployment.cluster.hosts[0]
    assert (
        ok.stdout
        == f"data/snippets.db {deployment.redis_url} "
        + str(
            Path(first.deploy_root) / "snippets" / "releases" / deployment.current(first)  # type: ignore[operator]
        )
        + "\n"
    )
    failing = deployment.app.run(
        "run", "--env", "staging", "--", "sh", "-c", "echo no >&2; exit 3", timeout=60
    )
    assert (failing.returncode, failing.stdout, failing.stderr) == (3, "", "no\n")
    # --host picks the host.
    second = deployment.cluster.hosts[1]
    where = deployment.app.run(
        "run", "--env", "staging", "--host", second.address, "--", "sh", "-c",
        "echo $PROCMAN_SSH_HOST", timeout=60,
    )  # fmt: skip
    assert where.stdout == f"{second.address}\n", where.stderr


def test_run_on_a_terminal_gets_one_there_and_ctrl_c_reaches_the_command(
    deployment: Deployment,
) -> None:
    two_host_staging(deployment)
    controller, terminal = pty.openpty()
    script = 'trap "echo got-int; exit 7" INT; [ -t 0 ] && echo on-a-tty; echo ready; sleep 30'
    process = subprocess.Popen(
        [PROCMAN, "run", "--env", "staging", "--", "sh", "-c", script],
        cwd=deployment.app.root,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while b"ready" not in seen and time.monotonic() < deadline:
            seen += os.read(controller, 65536)
        assert b"on-a-tty" in seen, seen
        os.write(controller, b"\x03")  # Ctrl-C, typed
        status = process.wait(timeout=30)
        try:
            while chunk := os.read(controller, 65536):
                seen += chunk
        except OSError:
            pass
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    assert status == 7, seen
    assert b"got-int" in seen, seen


# -- hosts trust ----------------------------------------------------------------------------------


def host_fingerprint(host: SSHHost) -> str:
    done = subprocess.run(
        ["ssh-keygen", "-lf", str(host.root / "ssh_host_ed25519_key.pub")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.split()[1]


def on_a_terminal(deployment: Deployment, args: list[str], typed: bytes) -> tuple[int, str]:
    """Run procman with a terminal, type ``typed`` once it asks; its status and what it showed."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen([PROCMAN, *args], cwd=deployment.app.root, stdin=terminal,
                               stdout=terminal, stderr=terminal)  # fmt: skip
    os.close(terminal)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while b"[y/N]" not in seen and time.monotonic() < deadline:
            seen += os.read(controller, 65536)
        os.write(controller, typed)
        status = process.wait(timeout=30)
        try:
            while chunk := os.read(controller, 65536):
                seen += chunk
        except OSError:
            pass
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    return status, seen.decode(errors="replace")


def test_hosts_trust_records_new_keys_only_once_confirmed(deployment: Deployment) -> None:
    fresh = deployment.app.root / "known_hosts"
    deployment.write_config(
        staging_hosts=deployment.cluster.hosts[:2], extra={"known_hosts": "known_hosts"}
    )
    first, second = deployment.cluster.hosts[:2]

    # Unknown keys are refused by every other command.
    refused = deployment.app.run("ps", "--env", "staging", timeout=60)
    assert "does not exist" in refused.stderr, refused.stderr
    fresh.write_text("")
    refused = deployment.app.run("ps", "--env", "staging", timeout=60)
    assert refused.returncode == 1 and "unknown host key" in refused.stderr, refused.stderr

    asked = deployment.app.run("hosts", "trust", "--env", "staging", timeout=60)
    assert asked.returncode == 2, asked.stdout + asked.stderr
    for host in (first, second):
        assert (
            f"{deployment.label(host)}: ssh-ed25519 {host_fingerprint(host)} (new)" in asked.stdout
        )
    assert (
        "procman: error: 2 new keys not recorded in known_hosts: no terminal to confirm them on"
        in asked.stderr
    )
    assert fresh.read_text() == ""

    status, said = on_a_terminal(deployment, ["hosts", "trust", "--env", "staging"], b"n\n")
    assert (status, fresh.read_text()) == (1, ""), said
    assert "Record 2 new keys in known_hosts? [y/N]: n\r\nnothing recorded" in said
    status, said = on_a_terminal(deployment, ["hosts", "trust", "--env", "staging"], b"y\n")
    assert status == 0, said
    assert "Record 2 new keys in known_hosts? [y/N]: y\r\nrecorded 2 keys in known_hosts" in said
    recorded = fresh.read_text().splitlines()
    assert [line.split()[:2] for line in recorded] == [
        [f"[{first.address}]:{first.port}", "ssh-ed25519"],
        [f"[{second.address}]:{second.port}", "ssh-ed25519"],
    ]
    again = deployment.app.run("hosts", "trust", "--env", "staging", "--yes", timeout=60)
    assert "every host is trusted already" in again.stdout
    assert fresh.read_text().splitlines() == recorded
    assert deployment.app.run("ps", "--env", "staging", timeout=60).returncode == 0

    # A different key for a host is never replaced.
    other = deployment.cluster.known_hosts.read_text().splitlines()[2].split()[1:]
    fresh.write_text(f"{recorded[0]}\n[{second.address}]:{second.port} {' '.join(other)}\n")
    changed = deployment.app.run("hosts", "trust", "--env", "staging", "--yes", timeout=60)
    assert changed.returncode == 1
    assert (
        f"{deployment.label(second)}: ssh-ed25519 {host_fingerprint(second)} (CHANGED: not trusted)"
        in (changed.stdout)
    )
    assert "it is not replaced" in changed.stderr
    assert fresh.read_text().splitlines()[1].split()[1:] == other


def test_run_without_a_terminal_passes_ctrl_c_on_as_sigint(deployment: Deployment) -> None:
    two_host_staging(deployment)
    script = 'trap "echo got-int; exit 5" INT; echo ready; sleep 30'
    run = Output(
        [PROCMAN, "run", "--env", "staging", "--", "sh", "-c", script], deployment.app.root
    )
    try:
        run.wait_for("^ready$", timeout=60)
        run.process.send_signal(signal.SIGINT)
        status = run.finish()
    finally:
        run.kill()
    assert (status, run.text) == (5, "ready\ngot-int\n"), b"".join(run.err)


def test_logs_go_on_with_the_other_hosts_when_one_dies(deployment: Deployment) -> None:
    release = two_host_staging(deployment)
    first, second = deployment.cluster.hosts[:2]
    one = re.escape(deployment.label(first))
    logs = Output([PROCMAN, "logs", "--env", "staging", "-n", "1", "--no-color"],
                  deployment.app.root)  # fmt: skip
    try:
        logs.wait_for(rf"^\d\d:\d\d:\d\d {re.escape(deployment.label(second))} ")
        kill_sshd(second)  # its connection drops
        deadline = time.monotonic() + 30
        while b"its log stream ended" not in b"".join(logs.err) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (
            f"procman: {deployment.label(second)}: its log stream ended (the connection was "
            "lost, or the reader on the host stopped); the other hosts' go on"
        ) in b"".join(logs.err).decode()
        mark = len(logs.text)
        restart_on_host(deployment, first, release, "web")
        logs.wait_for(rf"^\d\d:\d\d:\d\d {one} system +\| web\.1 started ", after=mark)
        logs.process.send_signal(signal.SIGINT)
        assert logs.finish() == 130
    finally:
        logs.kill()
    restart_sshd(second)
    deadline = time.monotonic() + 10
    while (followers(first.address) or followers(second.address)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not followers(first.address) and not followers(second.address)
