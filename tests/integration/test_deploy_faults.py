"""``procman deploy`` when a host fails under it, on the real OpenSSH hosts: a host whose sshd dies
or stops answering during the build, a long step watched from a terminal and interrupted, and a
``shared/.env`` written by hand after a deploy. No mocks."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import threading
import time

import psutil
import pytest

from tests.conftest import (
    HOST_VAR,
    PROCMAN,
    RUN_VAR,
    SSH_RUN,
    LiveOutput,
    SSHHost,
)
from tests.deployment import Deployment, get, release_id_in, wait_until
from tests.sshd_hosts import kill_sshd, restart_sshd

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def label(deployment: Deployment, host: SSHHost) -> str:
    """How procman names the host in its messages."""
    return f"{deployment.cluster.user}@{host.address}:{host.port}"


def slow_build(deployment: Deployment, host: SSHHost, seconds: int) -> str:
    """The usual build, after ``sleep SECONDS`` on ``host`` only."""
    return (
        f'if [ "$PROCMAN_SSH_HOST" = {host.address} ]; then sleep {seconds}; fi; '
        f"{deployment.app.build_command}"
    )


def on_host(host: SSHHost, process: psutil.Process) -> bool:
    """Whether ``process`` runs on ``host`` of this test run (other runs use the same addresses)."""
    environ = process.environ()
    return environ.get(HOST_VAR) == host.address and environ.get(RUN_VAR) == SSH_RUN


def sleeps(host: SSHHost, seconds: int) -> list[psutil.Process]:
    """The ``sleep SECONDS`` processes running on ``host``."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.cmdline() == ["sleep", str(seconds)] and on_host(host, process):
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


def start_deploy(deployment: Deployment) -> tuple[subprocess.Popen[bytes], LiveOutput]:
    process = subprocess.Popen(
        [PROCMAN, "deploy", "staging"],
        cwd=deployment.app.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    return process, LiveOutput(process)


def stopped(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


def test_a_host_whose_sshd_dies_during_the_build_fails_the_deploy_at_once(
    deployment: Deployment,
) -> None:
    hosts = deployment.cluster.hosts
    victim = hosts[2]
    deployment.write_config(build=slow_build(deployment, victim, 601), staging_hosts=list(hosts))
    process, output = start_deploy(deployment)
    try:
        wait_until(lambda: sleeps(victim, 601), timeout=60, what="the build to run on the host")
        kill_sshd(victim)  # the host dies: its sshd and every connection to it
        killed = time.monotonic()
        status, text = output.finish(timeout=60)
        took = time.monotonic() - killed
    finally:
        stopped(process)
        for sleep in sleeps(victim, 601):
            sleep.kill()
        restart_sshd(victim)
    assert status == 1, text
    # Before, the transport waited at 100% CPU for the end of the build's output, until the
    # build's 1800 s timeout; now the lost connection is that host's build error.
    assert took < 15, text
    error = [line for line in text.splitlines() if line.startswith("procman: error: ")]
    build = slow_build(deployment, victim, 601)
    assert error == [
        f"procman: error: {label(deployment, victim)}: build (`{build}"
        "`): connection lost; no host was switched (check that the host is up and its sshd "
        "answers; what the step started there may still be running)"
    ], text
    assert "Traceback" not in text
    # The other hosts: nothing switched, the deploy recorded as failed, their lock released.
    for host in hosts[:2]:
        assert deployment.current(host) is None
        assert deployment.history(host)[-1]["result"] == "failed"
        assert not (deployment.root_of(host) / ".procman" / "lock").exists()
    # The dead host keeps its lock, as the warning says; once it is back, unlock breaks it.
    assert (
        f"procman: warning: {label(deployment, victim)}: connect: cannot reach {victim.address}"
        in text
    )
    assert "the lock is still held there: when the host is back, run procman unlock staging" in text
    unlocked = deployment.app.run("unlock", "staging")
    assert f"{label(deployment, victim)}: unlocked (held by" in unlocked.stdout, unlocked.stderr


def test_a_host_that_stops_answering_during_the_build_fails_the_deploy_within_30s(
    deployment: Deployment,
) -> None:
    hosts = deployment.cluster.hosts
    victim = hosts[1]
    deployment.write_config(build=slow_build(deployment, victim, 602), staging_hosts=list(hosts))
    process, output = start_deploy(deployment)
    frozen: list[psutil.Process] = []
    try:
        wait_until(lambda: sleeps(victim, 602), timeout=60, what="the build to run on the host")
        assert victim.process is not None
        frozen = [psutil.Process(victim.process.pid), *victim.connection_processes()]
        for each in frozen:
            each.send_signal(signal.SIGSTOP)  # sshd stalls: the connection stays open, silent
        stalled = time.monotonic()
        # Noticed: the other hosts record the failed deploy.
        wait_until(
            lambda: [r for r in deployment.history(hosts[0]) if r["result"] == "failed"],
            timeout=60,
            what="the failed deploy to be recorded",
        )
        noticed = time.monotonic() - stalled
        status, text = output.finish(timeout=60)
    finally:
        stopped(process)
        for each in frozen:
            each.send_signal(signal.SIGCONT)
        for sleep in sleeps(victim, 602):
            sleep.kill()
    assert noticed <= 30, (noticed, output.text)
    assert status == 1, text
    error = [line for line in text.splitlines() if line.startswith("procman: error: ")]
    build = slow_build(deployment, victim, 602)
    assert error == [
        f"procman: error: {label(deployment, victim)}: build (`{build}"
        "`): the host stopped answering (no reply to a keepalive within 20s); connection closed; "
        "no host was switched (check that the host is up and its sshd answers; what the step "
        "started there may still be running)"
    ], text
    for host in (hosts[0], hosts[2]):
        assert deployment.current(host) is None
        assert not (deployment.root_of(host) / ".procman" / "lock").exists()


class Terminal:
    """A process whose standard output and error are a pseudo-terminal, read on a thread."""

    def __init__(self, argv: list[str], cwd: object) -> None:
        master, slave = pty.openpty()
        self.process = subprocess.Popen(argv, cwd=cwd, stdout=slave, stderr=slave)
        os.close(slave)
        self._master = master
        self._chunks: list[bytes] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while chunk := os.read(self._master, 65536):
                self._chunks.append(chunk)
        except OSError:  # EIO: the other end is closed
            pass
        finally:
            os.close(self._master)

    @property
    def text(self) -> str:
        return b"".join(self._chunks).decode(errors="replace").replace("\r\n", "\n")

    def wait_for(self, needle: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise AssertionError(f"{needle!r} not seen; output:\n{self.text}")
            time.sleep(0.05)
        return self.text

    def finish(self, timeout: float) -> tuple[int, str]:
        status = self.process.wait(timeout=timeout)
        self._thread.join(timeout=10)
        return status, self.text


def test_a_long_step_shows_progress_on_a_terminal_and_ctrl_c_says_what_it_waits_for(
    deployment: Deployment,
) -> None:
    staging = deployment.staging[0]
    build = slow_build(deployment, staging, 16)
    deployment.write_config(build=build)
    terminal = Terminal([PROCMAN, "deploy", "staging"], deployment.app.root)
    try:
        step = f"{label(deployment, staging)}: build (`{build}`)"
        terminal.wait_for(f"procman: {step}: still running after 10s\n", timeout=60)
        assert sleeps(staging, 16)
        terminal.process.send_signal(signal.SIGINT)
        text = terminal.wait_for("Ctrl-C again to stop\n", timeout=5)
        # Said while the build still runs, not once it is over.
        assert sleeps(staging, 16), text
        status, text = terminal.finish(timeout=60)
    finally:
        stopped(terminal.process)
    assert status == 130, text
    lines = text.splitlines()
    said = next(i for i, line in enumerate(lines) if line.startswith("procman: interrupted: let"))
    assert lines[said].startswith(
        f"procman: interrupted: letting the steps under way finish ({step}, "
    )
    assert lines[said].endswith("s so far); Ctrl-C again to stop")
    assert lines[said + 1] == "procman: interrupted: no host was switched"
    assert "Traceback" not in text


def host_env(host: SSHHost, name: str) -> set[str | None]:
    """The values of ``name`` in the environment of the web processes (gunicorn) on ``host``."""
    values = set()
    for process in psutil.process_iter():
        try:
            if "gunicorn" in " ".join(process.cmdline()) and on_host(host, process):
                values.add(process.environ().get(name))
        except (psutil.Error, OSError):
            continue
    return values


def test_a_secret_added_to_shared_env_by_hand_is_seen_after_a_rollback_redeploy_or_promotion(
    deployment: Deployment,
) -> None:
    # Staging's Redis comes from env: (REDIS_URL), not from shared/.env, which is not there yet.
    env = {"REDIS_URL": deployment.redis_url, "PORT": str(deployment.staging_port)}
    deployment.write_config(staging_extra={"env": env})
    staging = deployment.staging[0]
    env_file = deployment.root_of(staging) / "shared" / ".env"
    env_file.unlink()  # no shared/.env: the release gets no link to it
    release = release_id_in(deployment.deploy("staging").stdout)
    assert host_env(staging, "REDISTOGO_URL") == {None}

    # The documented way to add a secret: by hand, then restart the current release.
    env_file.write_text(f"REDISTOGO_URL={deployment.redis_url}\n")
    done = deployment.app.run("rollback", "staging", release)
    assert done.returncode == 0, done.stdout + done.stderr
    assert host_env(staging, "REDISTOGO_URL") == {deployment.redis_url}
    assert get(deployment.staging_port, "/health") == (200, "ok")

    # A redeploy of the same commit (nothing unpacked again) picks up a change too.
    env_file.write_text(f"REDISTOGO_URL={deployment.redis_url}\nSNIPPETS_FLAG=on\n")
    again = deployment.deploy("staging")
    assert "uploaded to 0, built on 0" in again.stdout
    assert host_env(staging, "SNIPPETS_FLAG") == {"on"}

    # A promotion of a release already built on production's hosts, likewise.
    deployment.deploy("production")
    web = deployment.production[0]
    (deployment.root_of(web) / "shared" / ".env").write_text(
        f"REDISTOGO_URL={deployment.redis_url}\nSNIPPETS_FLAG=production\n"
    )
    promoted = deployment.deploy("production")
    assert "uploaded to 0, built on 0" in promoted.stdout
    assert host_env(web, "SNIPPETS_FLAG") == {"production"}


def test_a_second_ctrl_c_stops_waiting_for_the_step_under_way(deployment: Deployment) -> None:
    staging = deployment.staging[0]
    deployment.write_config(build=slow_build(deployment, staging, 603))
    process, output = start_deploy(deployment)
    try:
        wait_until(lambda: sleeps(staging, 603), timeout=60, what="the build to run on the host")
        process.send_signal(signal.SIGINT)
        output.wait_for("Ctrl-C again to stop\n", timeout=10)
        process.send_signal(signal.SIGINT)
        status, text = output.finish(timeout=30)  # not the build's 603 s
    finally:
        stopped(process)
        for sleep in sleeps(staging, 603):
            sleep.kill()
    assert status == 130, text
    assert (
        "procman: interrupted again: not waiting for the steps under way (they may still run)\n"
        "procman: interrupted: no host was switched\n"
    ) in text
    assert "Traceback" not in text
    last = deployment.history(staging)[-1]
    assert (last["result"], last["flags"]) == ("failed", ["interrupted"])
    assert not (deployment.root_of(staging) / ".procman" / "lock").exists()
