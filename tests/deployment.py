"""The example app deployed to the session's real sshd hosts, for the deploy and day-two tests:
``Deployment`` writes procman.yml for them and reads what the hosts have; the ``deployment``
fixture (tests/conftest.py) gives each test one and stops what it started."""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import subprocess
import time
import urllib.parse
from pathlib import Path

import psutil
import pytest

from tests.sshd_hosts import (
    HOST_VAR,
    RUN_VAR,
    SSH_RUN,
    DeployApp,
    SSHCluster,
    SSHHost,
    free_port_on,
)


def get(port: int, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    except OSError as error:
        return 0, str(error)
    finally:
        connection.close()


def post(port: int, path: str, form: dict[str, str]) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        body = urllib.parse.urlencode(form)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("Location") or ""
    finally:
        connection.close()


class Deployment:
    """The example app's repository with a procman.yml for the session's hosts: staging on the
    first host (web on ``staging_port``), production on the second (web) and third (worker)."""

    def __init__(self, app: DeployApp, cluster: SSHCluster, redis_url: str) -> None:
        self.app = app
        self.cluster = cluster
        self.redis_url = redis_url
        self.staging_port = free_port_on("127.0.0.1")
        self.production_port = free_port_on("127.0.0.1")
        self.staging = [cluster.hosts[0]]
        self.production = cluster.hosts[1:3]

    def host_entry(self, host: SSHHost, roles: list[str] | None = None) -> dict[str, object]:
        entry: dict[str, object] = {"host": host.address, "port": host.port}
        if roles is not None:
            entry["roles"] = roles
        else:
            entry["roles"] = ["web", "worker", "clock"]
        return entry

    def write_config(
        self,
        *,
        build: str | None = None,
        staging_hosts: list[SSHHost] | None = None,
        keep: int = 3,
        rolling: bool = False,
        extra: dict[str, object] | None = None,
        staging_extra: dict[str, object] | None = None,
    ) -> str:
        if staging_hosts is not None:
            self.staging = staging_hosts
        release = (extra or {}).pop("release", None)
        env_common = {"REDIS_PROVIDER": "REDISTOGO_URL", "SNIPPETS_DB": "data/snippets.db"}
        config: dict[str, object] = {
            "app": "snippets",
            "build": build or self.app.build_command,
            "keep_releases": keep,
            **({"release": release} if release else {}),
            "shared": [".env", "data/"],
            "known_hosts": str(self.cluster.known_hosts),
            "environments": {
                "staging": {
                    # Hosts share one loopback here: web runs on the first host only.
                    "hosts": [self.host_entry(self.staging[0])]
                    + [self.host_entry(h, ["worker"]) for h in self.staging[1:]],
                    "user": self.cluster.user,
                    "identity_file": str(self.cluster.identity_file),
                    "path": f"{self.staging[0].deploy_root}/snippets",
                    "formation": {"web": 1, "worker": 1, "clock": 0},
                    "env": {**env_common, "PORT": str(self.staging_port)},
                    "healthcheck": {"path": "/health", "timeout": 8},
                    **(staging_extra or {}),
                },
                "production": {
                    "promote_from": "staging",
                    "hosts": [
                        self.host_entry(self.production[0], ["web"]),
                        self.host_entry(self.production[1], ["worker"]),
                    ],
                    "user": self.cluster.user,
                    "identity_file": str(self.cluster.identity_file),
                    "path": f"{self.production[0].deploy_root}/snippets",
                    "formation": {"web": 1, "worker": 1, "clock": 0},
                    "env": {**env_common, "PORT": str(self.production_port)},
                    "healthcheck": {"path": "/health", "timeout": 8},
                    "rolling": rolling,
                },
            },
            **(extra or {}),
        }
        for host in self.cluster.hosts:
            shared = self.root_of(host) / "shared"
            shared.mkdir(parents=True, exist_ok=True)
            (shared / ".env").write_text(f"REDISTOGO_URL={self.redis_url}\n")
        return self.app.commit("procman.yml", {"procman.yml": json.dumps(config, indent=2)})

    def label(self, host: SSHHost) -> str:
        """How procman names the host in what it prints."""
        return f"{self.cluster.user}@{host.address}:{host.port}"

    def root_of(self, host: SSHHost) -> Path:
        """The deploy root on the host, as this machine sees it."""
        return host.srv / "snippets"

    def current(self, host: SSHHost) -> str | None:
        link = self.root_of(host) / "current"
        return Path(link.readlink()).name if link.is_symlink() else None

    def history(self, host: SSHHost) -> list[dict[str, object]]:
        path = self.root_of(host) / ".procman" / "history.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def artifact_sha256(self, host: SSHHost, release_id: str) -> str:
        data = (self.root_of(host) / ".procman" / "artifacts" / f"{release_id}.tar.gz").read_bytes()
        return hashlib.sha256(data).hexdigest()

    def deploy(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = self.app.run("deploy", *args, timeout=150)
        if ok:
            assert done.returncode == 0, done.stdout + done.stderr
        return done

    def stop_everything(self) -> None:
        """Stop what the deploys started on the hosts, over SSH as procman does."""
        for host in self.cluster.hosts:
            self.cluster.stop_deployed(host, f"{host.deploy_root}/snippets")


def host_commands(address: str) -> list[str]:
    """Command lines of the processes running on this run's host at ``address``."""
    return [command for _, command in host_processes_of(address)]


def wait_until(check: object, timeout: float = 20, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def release_id_in(output: str) -> str:
    match = re.search(r"release (\d{8}T\d{6}Z-[0-9a-f]+)", output)
    assert match, output
    return match.group(1)


def host_processes_of(address: str) -> list[tuple[psutil.Process, str]]:
    """The processes running on this run's host at ``address`` (started in one of its SSH
    sessions; never another run's, which may use the same address), with their command lines;
    those that exit meanwhile are left out."""
    found = []
    for process in psutil.process_iter():
        try:
            environ = process.environ()
            if environ.get(HOST_VAR) == address and environ.get(RUN_VAR) == SSH_RUN:
                found.append((process, " ".join(process.cmdline())))
        except (psutil.Error, OSError):
            continue
    return found


def reboot(host: SSHHost) -> None:
    """What a reboot does to a deployed app: every process the host ran is killed (SIGKILL)."""
    processes = [process for process, _ in host_processes_of(host.address)]
    for process in processes:
        try:
            process.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(processes, timeout=10)
    wait_until(
        lambda: not host_processes_of(host.address),
        what=f"every process on {host.address} to be gone",
    )
