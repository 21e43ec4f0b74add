"""Day-two commands on a deployed environment (``config``, ``scale``, ``restart --env``,
``deploy --plan``) end to end: the example app deployed over real OpenSSH to the session's sshd
hosts (tests/deployment.py), its processes' environments and counts read on the hosts. No
mocks."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path

import psutil
import pytest

from tests.conftest import SSHHost
from tests.deployment import Deployment, get, host_processes_of, release_id_in, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def environ_of(host: SSHHost, word: str) -> list[dict[str, str]]:
    """The environments of the processes on ``host`` running ``word`` (not their forks)."""
    found = {p: p.ppid() for p, command in host_processes_of(host.address) if word in command}
    roots = [p for p, parent in found.items() if parent not in {q.pid for q in found}]
    environs = []
    for process in roots:
        try:
            environs.append(process.environ())
        except psutil.Error:
            continue
    return environs


def processes(deployment: Deployment, host: SSHHost) -> list[dict[str, object]]:
    """``procman ps --json`` of the release running on ``host``, asked over SSH."""
    from procman.deploy.config import Environment, Host
    from procman.deploy.host import DeployHost

    release = deployment.current(host)
    assert release is not None
    with deployment.cluster.connect(host) as transport:
        environment = Environment("any", (), f"{host.deploy_root}/snippets")
        return DeployHost(Host(host.address), environment, transport).processes(release)


def running(deployment: Deployment, host: SSHHost, type_name: str) -> int:
    return sum(
        1 for p in processes(deployment, host) if p["type"] == type_name and p["state"] == "running"
    )


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (symlinks by target) with its content's sha256 and mode; the
    log the running app writes to is left out."""
    found = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if relative.endswith("/.procman/procman.log"):
            found[relative] = "(the running app's log)"
            continue
        if path.is_symlink():
            found[relative] = f"-> {os.readlink(path)}"
        elif path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found[relative] = f"{digest} {stat.filemode(path.stat().st_mode)}"
    return found


def test_config_set_and_unset_reach_the_processes_and_history_keeps_only_names(
    deployment: Deployment, tmp_path: Path
) -> None:
    deployment.write_config()
    deployment.deploy("staging")
    [host] = deployment.staging
    secret = tmp_path / "token.txt"
    secret.write_text("s3cr3t-from-a-file\n")

    done = deployment.app.run(
        "config", "set", "--env", "staging", "GREETING=hello there", f"API_TOKEN=@{secret}",
        timeout=150,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "procman: staging: set GREETING, API_TOKEN in shared/.env on 1 host"
    assert lines[1].startswith("procman: restarting ")
    assert lines[-1].startswith("procman: staging now runs ")
    for environ in environ_of(host, "gunicorn") + environ_of(host, "procman worker"):
        assert environ["GREETING"] == "hello there"
        assert environ["API_TOKEN"] == "s3cr3t-from-a-file"
    assert get(deployment.staging_port, "/health") == (200, "ok")
    env_file = deployment.root_of(host) / "shared" / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert not list(env_file.parent.glob(".env.procman-*"))  # nothing left beside it
    history = (deployment.root_of(host) / ".procman" / "history.jsonl").read_text()
    assert "hello there" not in history and "s3cr3t" not in history
    config_record = deployment.history(host)[-2]
    assert (config_record["action"], config_record["flags"]) == (
        "config", ["set:GREETING,API_TOKEN"]
    )  # fmt: skip

    listed = deployment.app.run("config", "--env", "staging")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:]}
    assert rows["API_TOKEN"][1:] == ["***", "shared/.env"]
    assert rows["GREETING"][1:] == ["hello", "there", "shared/.env"]
    assert rows["REDIS_PROVIDER"][1:] == ["REDISTOGO_URL", "procman.yml"]
    revealed = json.loads(deployment.app.run("config", "--env", "staging", "--json",
                                             "--reveal").stdout)  # fmt: skip
    assert {"name": "API_TOKEN", "value": "s3cr3t-from-a-file", "source": "shared/.env",
            "masked": False, "differs_on": []} in revealed  # fmt: skip

    gone = deployment.app.run("config", "unset", "--env", "staging", "GREETING", timeout=150)
    assert gone.returncode == 0, gone.stdout + gone.stderr
    environs = environ_of(host, "gunicorn")
    assert environs and all("GREETING" not in e and "API_TOKEN" in e for e in environs)


def test_redis_provider_naming_no_set_variable_is_refused_and_changes_nothing(
    deployment: Deployment,
) -> None:
    deployment.write_config()
    [host] = deployment.staging
    env_file = deployment.root_of(host) / "shared" / ".env"
    before = env_file.read_bytes()
    refused = deployment.app.run("config", "set", "--env", "staging", "REDIS_PROVIDER=REDIS_URL")
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        f"procman: error: staging ({deployment.label(host)}): REDIS_PROVIDER names REDIS_URL, "
        "which is not set; nothing was changed (set REDIS_URL to the Redis URL in the same "
        "command, like REDISTOGO_URL=redis://... and REDIS_PROVIDER=REDISTOGO_URL)"
    )
    url = deployment.app.run("config", "set", "--env", "staging",
                             "REDIS_PROVIDER=redis://:pw@db:6379")  # fmt: skip
    assert url.returncode == 1
    assert "not be the URL itself (got 'redis://:***@db:6379')" in url.stderr
    assert "pw" not in url.stderr
    assert env_file.read_bytes() == before


def test_a_host_that_refuses_the_write_leaves_no_host_changed(deployment: Deployment) -> None:
    deployment.write_config()
    first, second = deployment.production
    before = {host.address: snapshot(deployment.root_of(host)) for host in deployment.production}
    # The second host cannot write the new file beside shared/.env (a directory is in the way).
    blocker = deployment.root_of(second) / "shared" / ".env.procman-new"
    blocker.mkdir()
    try:
        refused = deployment.app.run("config", "set", "--env", "production", "A=1", "--no-restart")
    finally:
        blocker.rmdir()
    assert refused.returncode == 1, refused.stdout
    assert refused.stderr.startswith(f"procman: error: {deployment.label(second)}: write ")
    assert refused.stderr.rstrip().endswith("; no host was changed")
    for host in deployment.production:
        after = snapshot(deployment.root_of(host))
        assert after == before[host.address], host.address
    assert not (deployment.root_of(first) / ".procman" / "lock").exists()


def test_scale_changes_the_processes_on_the_host_and_the_next_deploy_keeps_it(
    deployment: Deployment,
) -> None:
    deployment.write_config()
    deployment.deploy("staging")
    [host] = deployment.staging
    wait_until(lambda: running(deployment, host, "worker") == 1, what="worker=1")

    done = deployment.app.run("scale", "--env", "staging", "worker=2", timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "web=1, clock=0, worker=2",
        f"  {deployment.label(host)}: worker=2",
    ]
    wait_until(lambda: running(deployment, host, "worker") == 2, what="worker=2")
    last = deployment.history(host)[-1]
    assert (last["action"], last["flags"], last["result"]) == ("scale", ["worker=2"], "ok")

    more = deployment.app.run("scale", "--env", "staging", "worker+1", timeout=60)
    assert more.returncode == 0, more.stdout + more.stderr
    wait_until(lambda: running(deployment, host, "worker") == 3, what="worker=3")

    deployment.app.commit("a change", {"CHANGED.txt": "yes\n"})
    redeployed = release_id_in(deployment.deploy("staging").stdout)
    assert deployment.current(host) == redeployed
    # the environment's formation (worker=3), not procman.yml's (worker: 1)
    wait_until(lambda: running(deployment, host, "worker") == 3, what="worker=3 after the deploy")
    wait_until(lambda: running(deployment, host, "web") == 1, what="web=1")

    unknown = deployment.app.run("scale", "--env", "staging", "wrker=2")
    assert unknown.returncode == 2
    assert unknown.stderr == (
        "procman: error: staging runs no process type 'wrker' (types: web, clock, worker); "
        "nothing was changed (name a type of the Procfile of the release it runs)\n"
    )
    wait_until(lambda: running(deployment, host, "worker") == 3, what="worker=3")


def test_deploy_plan_prints_every_step_and_touches_nothing(deployment: Deployment) -> None:
    deployment.write_config()
    first = release_id_in(deployment.deploy("staging").stdout)
    deployment.app.commit("a change", {"CHANGED.txt": "yes\n"})
    before = {host.address: snapshot(deployment.root_of(host)) for host in deployment.cluster.hosts}
    store = deployment.app.root / ".procman" / "releases"
    artifacts = sorted(p.name for p in store.iterdir())

    done = deployment.app.run("deploy", "staging", "--plan", timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    for host in deployment.cluster.hosts:
        assert snapshot(deployment.root_of(host)) == before[host.address], host.address
    assert sorted(p.name for p in store.iterdir()) == artifacts  # nothing built here either
    lines = done.stdout.splitlines()
    assert re.fullmatch(
        r"plan: deploy \d{8}T\d{6}Z-[0-9a-f]{7} \(not built yet\) to staging; nothing is changed",
        lines[0],
    ), lines[0]
    [host] = deployment.staging
    header = f"{deployment.label(host)} (current: {first}; runs web=1, clock=0, worker=1):"
    assert header in lines
    numbered = re.compile(r"  ( \d|\d\d)\. [^:]+:")  # a command may run over several lines
    after = lines[lines.index(header) + 1 :]
    steps = [line.split(":", 1)[0].strip() for line in after if numbered.match(line)]
    assert steps == [
        "1. check the host", "2. lock", "3. read current", "4. check release", "5. upload",
        "6. verify upload", "7. unpack", f"8. build (`{deployment.app.build_command}`)",
        "9. check the build", "10. switch current", "11. list running processes",
        f"12. stop {first}", "13. start processes", "14. health check", f"15. stop {first}",
        "16. scale up", "17. record history", "18. prune releases", "19. unlock",
    ]  # fmt: skip
    assert "  13. start processes: sh -c " in done.stdout
    assert "-m web=1,clock=0,worker=0" in done.stdout
