"""``procman deploy``, ``releases``, ``rollback`` and ``unlock`` end to end: the example app shipped
over real OpenSSH (the session's ``sshd_cluster``: 127.0.0.2 as staging, 127.0.0.3 and 127.0.0.4
as production), run by procman on the hosts, its pages fetched, its jobs processed through a real
Redis. No mocks."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import psutil
import pytest

from tests.conftest import PROCMAN, DeployApp, SSHCluster, SSHHost
from tests.deployment import (
    Deployment,
    get,
    host_commands,
    host_processes_of,
    post,
    reboot,
    release_id_in,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_deploy_to_staging_serves_the_app_and_runs_its_jobs(deployment: Deployment) -> None:
    deployment.write_config()
    done = deployment.deploy("staging")
    release = release_id_in(done.stdout)
    staging = deployment.staging[0]
    assert deployment.current(staging) == release

    status, body = get(deployment.staging_port, "/health")
    assert (status, body) == (200, "ok")
    status, page = get(deployment.staging_port, "/")
    assert status == 200 and "Paste a snippet" in page

    # A job enqueued by staging's web is run by staging's worker, on the Redis named by
    # REDIS_PROVIDER=REDISTOGO_URL (from the host's shared .env).
    status, location = post(deployment.staging_port, "/", {"title": "a.py", "code": "print(1)"})
    assert status == 303
    path = urllib.parse.urlsplit(location).path
    wait_until(
        lambda: '<span class="nb">print</span>' in get(deployment.staging_port, path)[1],
        what="the worker to highlight the snippet",
    )
    assert (deployment.root_of(staging) / "shared" / "data" / "snippets.db").exists()

    # The processes outlive the SSH session and run from the release.
    commands = host_commands(staging.address)
    assert any("gunicorn" in c for c in commands), commands
    assert any("procman worker" in c for c in commands), commands

    [record] = deployment.history(staging)
    assert record["action"] == "deploy" and record["result"] == "ok"
    assert record["release_id"] == release
    assert record["git_sha"] == deployment.app.git("rev-parse", "HEAD")
    assert record["sha256"] == deployment.artifact_sha256(staging, release)

    listing = deployment.app.run("releases", "staging")
    assert listing.returncode == 0, listing.stderr
    row = rf"\*\s+{release}\s+{record['sha256'][:12]}\s+{release[-7:]}\s+deploy\s+.*\sok$"
    assert re.search(row, listing.stdout, re.M), listing.stdout


def test_deploy_to_hosts_whose_shell_reads_a_bashrc(
    deploy_app: DeployApp, bashrc_hosts: SSHCluster, redis_url: str
) -> None:
    """The other deploy tests' hosts skip ``~/.bashrc`` for speed; real servers read it for every
    command sshd runs (here it runs ``pyenv init``), and a deploy must not mind."""
    deployment = Deployment(deploy_app, bashrc_hosts, redis_url)
    try:
        deployment.write_config()
        release = release_id_in(deployment.deploy("staging").stdout)
        assert deployment.current(deployment.staging[0]) == release
        assert get(deployment.staging_port, "/health") == (200, "ok")
    finally:
        deployment.stop_everything()


def test_repeated_deploy_of_the_same_commit_uploads_nothing(deployment: Deployment) -> None:
    deployment.write_config()
    first = deployment.deploy("staging")
    assert "uploaded to 1, built on 1" in first.stdout
    again = deployment.deploy("staging")
    assert "cached" in again.stdout
    assert "uploaded to 0, built on 0" in again.stdout
    assert release_id_in(first.stdout) == release_id_in(again.stdout)
    assert get(deployment.staging_port, "/health") == (200, "ok")


def test_promotion_ships_the_identical_artifact_without_rebuilding(
    deployment: Deployment,
) -> None:
    deployment.write_config()
    refused = deployment.deploy("production", ok=False)
    assert refused.returncode != 0
    assert "cannot skip staging: deploy to staging first (procman deploy staging)" in (
        refused.stderr
    )
    assert "Traceback" not in refused.stderr

    release = release_id_in(deployment.deploy("staging").stdout)
    store = deployment.app.root / ".procman" / "releases"
    artifact = store / f"{release}.tar.gz"
    built_at = artifact.stat().st_mtime_ns

    promoted = deployment.deploy("production")
    assert f"promoting {release}" in promoted.stdout
    assert artifact.stat().st_mtime_ns == built_at  # not rebuilt
    assert sorted(p.name for p in store.glob("*.tar.gz")) == [artifact.name]
    local = hashlib.sha256(artifact.read_bytes()).hexdigest()
    for host in deployment.cluster.hosts:
        assert deployment.current(host) == release
        assert deployment.artifact_sha256(host, release) == local
    [record] = deployment.history(deployment.production[0])
    assert (record["action"], record["result"], record["sha256"]) == ("promote", "ok", local)

    web_host, worker_host = deployment.production
    assert get(deployment.production_port, "/health") == (200, "ok")
    assert any("gunicorn" in c for c in host_commands(web_host.address))
    assert not any("procman worker" in c for c in host_commands(web_host.address))
    assert any("procman worker" in c for c in host_commands(worker_host.address))
    assert not any("gunicorn" in c for c in host_commands(worker_host.address))


def test_failing_build_on_one_host_switches_no_host(deployment: Deployment) -> None:
    hosts = deployment.cluster.hosts[:2]
    build = f"{deployment.app.build_command} && test ! -e ../../shared/fail-build"
    deployment.write_config(build=build, staging_hosts=hosts)
    good = release_id_in(deployment.deploy("staging", "--skip-tests").stdout)
    (deployment.root_of(hosts[1]) / "shared" / "fail-build").write_text("")
    deployment.app.commit("v2", {"snippets/VERSION": "2\n"})
    failed = deployment.deploy("staging", ok=False)
    assert failed.returncode == 1
    assert "no host was switched" in failed.stderr
    assert hosts[1].address in failed.stderr and "build" in failed.stderr
    assert "fix the build: command or the app, check it on the host in" in failed.stderr
    assert "Traceback" not in failed.stderr
    for host in hosts:
        assert deployment.current(host) == good
        assert [r["result"] for r in deployment.history(host)] == ["ok", "failed"]
        assert not (deployment.root_of(host) / ".procman" / "lock").exists()


def test_failing_health_check_rolls_back_and_the_old_release_keeps_serving(
    deployment: Deployment,
) -> None:
    deployment.write_config()
    good = release_id_in(deployment.deploy("staging").stdout)
    web = (deployment.app.root / "snippets" / "web.py").read_text()
    broken = web.replace('return "ok", 200,', 'return "broken", 500,')
    assert broken != web
    deployment.app.commit("break /health", {"snippets/web.py": broken})
    failed = deployment.deploy("staging", ok=False)
    assert failed.returncode == 1, failed.stdout
    assert "rolled back" in failed.stderr
    assert "500" in failed.stderr
    assert "last web log lines" in failed.stdout
    staging = deployment.staging[0]
    assert deployment.current(staging) == good
    assert get(deployment.staging_port, "/health") == (200, "ok")
    assert [r["result"] for r in deployment.history(staging)] == ["ok", "failed, rolled back"]


def test_a_second_deploy_is_refused_by_the_lock_and_unlock_breaks_it(
    deployment: Deployment,
) -> None:
    deployment.write_config(build=f"sleep 4 && {deployment.app.build_command}")
    slow = threading.Thread(target=lambda: results.append(deployment.deploy("staging", ok=False)))
    results: list[subprocess.CompletedProcess[str]] = []
    slow.start()
    lock = deployment.root_of(deployment.staging[0]) / ".procman" / "lock"
    wait_until(lock.exists, what="the first deploy to take the lock")
    second = deployment.deploy("staging", ok=False)
    slow.join(timeout=120)
    assert second.returncode == 1
    assert "staging is locked by" in second.stderr
    assert "procman unlock staging" in second.stderr
    assert results and results[0].returncode == 0, results[0].stderr if results else "no result"
    assert not lock.exists()

    # A lock left by a deploy that died is broken by procman unlock, which names the holder.
    lock.mkdir()
    (lock / "info").write_text('{"holder": "alice@laptop", "time": "T", "release": "R"}\n')
    unlocked = deployment.app.run("unlock", "staging")
    assert unlocked.returncode == 0, unlocked.stderr
    assert "held by alice@laptop" in unlocked.stdout
    assert not lock.exists()


def test_sshd_killed_mid_upload_leaves_current_unchanged(deployment: Deployment) -> None:
    hosts = deployment.cluster.hosts[:2]
    deployment.write_config(staging_hosts=hosts)
    good = release_id_in(deployment.deploy("staging").stdout)
    # A big incompressible file makes the upload long enough to cut.
    import os

    (deployment.app.root / "blob.bin").write_bytes(os.urandom(40 * 1024 * 1024))
    deployment.app.commit("a big file")
    victim = hosts[1]
    artifacts = deployment.root_of(victim) / ".procman" / "artifacts"

    def cut() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(p.name.startswith(".") for p in artifacts.iterdir()):
                assert victim.process is not None
                [listener] = psutil.Process(victim.process.pid).children()  # sh exec'd sshd
                for connection in listener.children():  # the connections, not the listener
                    connection.kill()
                return
            time.sleep(0.005)

    cutter = threading.Thread(target=cut)
    cutter.start()
    failed = deployment.deploy("staging", ok=False)
    cutter.join()
    assert failed.returncode == 1, failed.stdout
    assert victim.address in failed.stderr
    assert "no host was switched" in failed.stderr
    assert "Traceback" not in failed.stderr
    for host in hosts:
        assert deployment.current(host) == good
    # The lock is released where the host answers, or the output says where it is still held.
    for host in hosts:
        lock = deployment.root_of(host) / ".procman" / "lock"
        assert not lock.exists() or "procman unlock staging" in failed.stdout


def test_unknown_host_key_is_refused(deployment: Deployment, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    deployment.write_config(extra={"known_hosts": str(empty)})
    failed = deployment.deploy("staging", ok=False)
    assert failed.returncode == 1
    assert "SHA256:" in failed.stderr
    assert "ssh-keyscan" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert not (deployment.root_of(deployment.staging[0]) / "releases").exists()


def test_rollback_runs_the_previous_release_again(deployment: Deployment) -> None:
    deployment.write_config()
    first = release_id_in(deployment.deploy("staging").stdout)
    index = deployment.app.root / "snippets" / "templates" / "index.html"
    changed = index.read_text().replace("Paste a snippet", "Paste a v2 snippet")
    deployment.app.commit("v2", {"snippets/templates/index.html": changed})
    time.sleep(1)  # release ids have one-second resolution
    second = release_id_in(deployment.deploy("staging").stdout)
    assert second != first
    assert "Paste a v2 snippet" in get(deployment.staging_port, "/")[1]

    rolled = deployment.app.run("rollback", "staging")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    staging = deployment.staging[0]
    assert deployment.current(staging) == first
    page = get(deployment.staging_port, "/")[1]
    assert "Paste a snippet" in page and "v2" not in page
    assert deployment.history(staging)[-1]["action"] == "rollback"

    forward = deployment.app.run("rollback", "staging", second)
    assert forward.returncode == 0, forward.stdout + forward.stderr
    assert deployment.current(staging) == second
    listing = deployment.app.run("releases", "staging", "--json")
    rows = json.loads(listing.stdout)
    assert [r["release_id"] for r in rows if r["current"]] == [second]


def test_rolling_stops_at_the_first_unhealthy_host(deployment: Deployment) -> None:
    hosts = deployment.cluster.hosts[:2]
    deployment.write_config(staging_hosts=hosts, staging_extra={"rolling": True})
    good = release_id_in(deployment.deploy("staging").stdout)
    web = (deployment.app.root / "snippets" / "web.py").read_text()
    deployment.app.commit("break", {"snippets/web.py": web.replace('"ok", 200,', '"no", 503,')})
    failed = deployment.deploy("staging", ok=False)
    assert failed.returncode == 1
    assert "503" in failed.stderr and "rolled back" in failed.stderr
    # The first host failed its check; the second was never switched, nor restarted.
    assert f"{hosts[0].address}:{hosts[0].port}: rolled back to {good}" in failed.stdout
    assert hosts[1].address not in failed.stdout
    for host in hosts:
        assert deployment.current(host) == good
    assert get(deployment.staging_port, "/health") == (200, "ok")


def test_promote_an_older_release_and_prune_to_keep_releases(deployment: Deployment) -> None:
    deployment.write_config(keep=2)
    ids = []
    for version in range(3):
        if version:
            deployment.app.commit(f"v{version}", {"snippets/VERSION": f"{version}\n"})
            time.sleep(1)  # release ids have one-second resolution
        ids.append(release_id_in(deployment.deploy("staging").stdout))
    staging = deployment.staging[0]
    kept = sorted(p.name for p in (deployment.root_of(staging) / "releases").iterdir())
    assert kept == ids[1:]  # the oldest was pruned: keep_releases is 2
    listed = deployment.app.run("releases", "staging")
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]][-1] == ids[0]
    assert listed.stdout.splitlines()[-1].endswith("ok (pruned)")
    assert not any(line.endswith("(pruned)") for line in listed.stdout.splitlines()[1:-1])
    assert not (
        deployment.root_of(staging) / ".procman" / "artifacts" / f"{ids[0]}.tar.gz"
    ).exists()

    # The pruned release is still in the local cache, byte for byte: it can be promoted from there.
    # Without the cache it is nowhere.
    store = deployment.app.root / ".procman" / "releases"
    for path in store.glob(f"{ids[0]}.*"):
        path.unlink()
    gone = deployment.deploy("production", "--release", ids[0], ok=False)
    assert gone.returncode == 1
    assert f"release {ids[0]} is neither cached here nor downloadable" in gone.stderr
    assert "Traceback" not in gone.stderr
    promoted = deployment.deploy("production", "--release", ids[1])
    assert f"promoting {ids[1]}" in promoted.stdout
    for host in deployment.production:
        assert deployment.current(host) == ids[1]
    never = deployment.deploy("production", "--release", "20200101T000000Z-0000000", ok=False)
    assert "was never healthy on staging" in never.stderr


def test_a_release_without_procman_is_refused_before_the_switch(deployment: Deployment) -> None:
    deployment.write_config(build="true")
    failed = deployment.deploy("staging", ok=False)
    assert failed.returncode == 1
    assert "procman is not installed in the release" in failed.stderr
    assert "no host was switched" in failed.stderr
    assert deployment.current(deployment.staging[0]) is None


def test_the_release_phase_runs_once_with_the_environment_before_the_switch(
    deployment: Deployment,
) -> None:
    hosts = deployment.cluster.hosts[:2]
    phase = 'echo "migrated with $REDIS_PROVIDER in $(basename "$PWD")" >> ../../shared/release.log'
    deployment.write_config(staging_hosts=hosts, extra={"release": phase})
    good = release_id_in(deployment.deploy("staging").stdout)
    logs = [deployment.root_of(h) / "shared" / "release.log" for h in hosts]
    assert logs[0].read_text() == f"migrated with REDISTOGO_URL in {good}\n"
    assert not logs[1].exists()  # once per deploy, on the first host

    deployment.write_config(staging_hosts=hosts, extra={"release": "echo no; exit 4"})
    failed = deployment.deploy("staging", ok=False)
    assert failed.returncode == 1
    assert "release phase (`echo no; exit 4`): exit status 4: no; no host was switched" in (
        failed.stderr
    )
    for host in hosts:
        assert deployment.current(host) == good
        assert deployment.history(host)[-1]["result"] == "failed"


def test_wait_queues_behind_a_running_deploy(deployment: Deployment) -> None:
    deployment.write_config(build=f"sleep 3 && {deployment.app.build_command}")
    results: list[subprocess.CompletedProcess[str]] = []
    slow = threading.Thread(target=lambda: results.append(deployment.deploy("staging")))
    slow.start()
    lock = deployment.root_of(deployment.staging[0]) / ".procman" / "lock"
    wait_until(lock.exists, what="the first deploy to take the lock")
    deployment.app.commit("v2", {"snippets/VERSION": "2\n"})
    second = deployment.deploy("staging", "--wait", "60")
    slow.join(timeout=120)
    assert results and results[0].returncode == 0
    history = deployment.history(deployment.staging[0])
    assert [r["result"] for r in history] == ["ok", "ok"]
    assert deployment.current(deployment.staging[0]) == release_id_in(second.stdout)


def test_a_job_running_during_a_deploy_finishes(deployment: Deployment) -> None:
    from redis import Redis
    from rq import Queue
    from rq.job import Job, JobStatus

    nap = (
        "import time\n\n\ndef nap(seconds: float) -> str:\n"
        "    time.sleep(seconds)\n    return 'rested'\n"
    )
    deployment.app.commit("a slow job", {"snippets/slow.py": nap})
    deployment.write_config()
    deployment.deploy("staging")
    connection = Redis.from_url(deployment.redis_url)
    try:
        job = Queue("default", connection=connection).enqueue("snippets.slow.nap", 4)
        wait_until(
            lambda: Job.fetch(job.id, connection=connection).get_status() == JobStatus.STARTED,
            what="the worker to start the job",
        )
        # The next deploy stops the old worker gracefully: it finishes the job it is running.
        deployment.app.commit("v2", {"snippets/VERSION": "2\n"})
        deployment.deploy("staging")
        finished = Job.fetch(job.id, connection=connection)
        assert finished.get_status() == JobStatus.FINISHED
        assert finished.return_value() == "rested"
    finally:
        connection.close()


def interrupt_deploy_when(
    deployment: Deployment, line_starts: str, delay: float
) -> tuple[int, str]:
    """Run ``procman deploy staging``, SIGINT it ``delay`` s after a line starting with
    ``procman: `` + ``line_starts``; its exit status and everything it printed."""
    process = subprocess.Popen(
        [PROCMAN, "deploy", "staging"],
        cwd=deployment.app.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    printed = []
    try:
        for line in process.stdout:
            printed.append(line)
            if line.startswith(f"procman: {line_starts}"):
                time.sleep(delay)
                process.send_signal(signal.SIGINT)
                break
        printed.append(process.stdout.read())
        return process.wait(timeout=60), "".join(printed)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_ctrl_c_before_the_switch_records_the_deploy_and_switches_nothing(
    deployment: Deployment,
) -> None:
    deployment.write_config()
    good = release_id_in(deployment.deploy("staging").stdout)
    deployment.write_config(extra={"release": "sleep 6"})
    status, printed = interrupt_deploy_when(deployment, "release phase", 0.5)
    assert status == 130, printed
    assert "interrupted: no host was switched" in printed
    assert "Traceback" not in printed
    staging = deployment.staging[0]
    assert deployment.current(staging) == good
    last = deployment.history(staging)[-1]
    assert (last["result"], last["flags"]) == ("failed", ["interrupted"])
    assert not (deployment.root_of(staging) / ".procman" / "lock").exists()
    assert get(deployment.staging_port, "/health") == (200, "ok")
    # The release command already running on the host runs to its end (a migration is not cut
    # in half), then nothing of it is left.
    wait_until(
        lambda: not [c for c in host_commands(staging.address) if "sleep 6" in c],
        timeout=15,
        what="the release phase's command to end on the host",
    )


def test_ctrl_c_during_the_restart_puts_the_previous_release_back(
    deployment: Deployment,
) -> None:
    deployment.write_config()
    good = release_id_in(deployment.deploy("staging").stdout)
    web = (deployment.app.root / "snippets" / "web.py").read_text()
    slow_boot = f"{web}\n\nimport time  # noqa: E402\n\ntime.sleep(4)\n"
    deployment.app.commit("a web that boots slowly", {"snippets/web.py": slow_boot})
    status, printed = interrupt_deploy_when(deployment, "shipped to", 1.5)
    assert status == 130, printed
    assert "interrupted: putting every host back on its previous release" in printed
    assert f"rolled back to {good}" in printed
    assert not [line for line in printed.splitlines() if line.startswith("Traceback")]
    staging = deployment.staging[0]
    assert deployment.current(staging) == good
    last = deployment.history(staging)[-1]
    assert (last["result"], last["flags"]) == ("failed, rolled back", ["interrupted"])
    assert last["release_id"] != good
    assert not (deployment.root_of(staging) / ".procman" / "lock").exists()
    assert get(deployment.staging_port, "/health") == (200, "ok")


def test_promotion_checks_that_the_source_release_runs_and_answers_now(
    deployment: Deployment,
) -> None:
    deployment.write_config()
    release = release_id_in(deployment.deploy("staging").stdout)
    staging = deployment.staging[0]

    # staging's web stalls (SIGSTOP): history still says ok, but /health does not answer.
    stalled = [p for p, command in host_processes_of(staging.address) if "gunicorn" in command]
    assert stalled
    for process in stalled:
        process.suspend()
    try:
        refused = deployment.deploy("production", ok=False)
    finally:
        for process in stalled:
            process.resume()
    assert refused.returncode == 1, refused.stdout
    assert "Traceback" not in refused.stderr
    assert (
        f"cannot promote from staging: {release} is current there by history but not running "
        f"healthily now ({deployment.label(staging)}: GET /health did not answer 2xx within "
        "8s (port "
    ) in refused.stderr
    assert "--force-stale-source" in refused.stderr
    assert all(deployment.current(host) is None for host in deployment.production)

    # staging's processes are gone (a reboot): refused, with the reason.
    reboot(staging)
    refused = deployment.deploy("production", ok=False)
    assert refused.returncode == 1, refused.stdout
    assert f"{deployment.label(staging)}: procman is not running it" in refused.stderr
    assert "procman restart --env staging" in refused.stderr
    assert all(deployment.current(host) is None for host in deployment.production)
    assert deployment.history(deployment.production[0]) == []

    # --force-stale-source promotes anyway, says so, and history records it.
    forced = deployment.deploy("production", "--force-stale-source")
    assert "promoting it anyway (--force-stale-source)" in forced.stdout
    for host in deployment.production:
        assert deployment.current(host) == release
        [record] = deployment.history(host)
        assert record["flags"] == ["force-stale-source"]
    listing = deployment.app.run("releases", "production")
    assert re.search(
        rf"\*\s+{release}\s.*\spromote\s.*\sok\s+force-stale-source$", listing.stdout, re.M
    ), listing.stdout

    # Started again, staging is promoted from without the flag.
    restarted = deployment.app.run("restart", "--environment", "staging", timeout=120)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    deployment.deploy("production")
    assert deployment.history(deployment.production[0])[-1]["flags"] == []


def test_a_promotion_with_an_uncommitted_procman_yml_is_refused_and_history_records_the_config(
    deployment: Deployment,
) -> None:
    deployment.write_config()
    config = deployment.app.root / "procman.yml"
    committed = hashlib.sha256(config.read_bytes()).hexdigest()
    release = release_id_in(deployment.deploy("staging").stdout)
    [record] = deployment.history(deployment.staging[0])
    assert (record["config_sha256"], record["config_dirty"]) == (committed, False)

    # A new env: value for production, not committed.
    edited = json.loads(config.read_text())
    edited["environments"]["production"]["env"]["SNIPPET_TTL"] = "5"
    config.write_text(json.dumps(edited, indent=2))
    changed = hashlib.sha256(config.read_bytes()).hexdigest()
    refused = deployment.deploy("production", ok=False)
    assert refused.returncode == 1, refused.stdout
    assert "Traceback" not in refused.stderr
    assert (
        "procman.yml has uncommitted changes, which this promotion would apply to production "
        "unreviewed; nothing was promoted"
    ) in refused.stderr
    assert "--allow-dirty-config" in refused.stderr
    assert all(deployment.current(host) is None for host in deployment.production)

    deployment.deploy("production", "--allow-dirty-config")
    for host in deployment.production:
        assert deployment.current(host) == release
        [record] = deployment.history(host)
        assert record["flags"] == ["allow-dirty-config"]
        assert (record["config_sha256"], record["config_dirty"]) == (changed, True)
    env = (
        deployment.root_of(deployment.production[0]) / "releases" / release / ".procman-deploy.env"
    )
    assert "SNIPPET_TTL='5'" in env.read_text()

    # procman releases --json shows which config was used.
    rows = json.loads(deployment.app.run("releases", "production", "--json").stdout)
    assert [(r["config_sha256"], r["config_dirty"]) for r in rows] == [(changed, True)]


def test_releases_show_the_action_flags_and_sha256_and_all_lists_every_record(
    deployment: Deployment,
) -> None:
    deployment.write_config(extra={"test": "true"})
    first = release_id_in(deployment.deploy("staging", "--skip-tests").stdout)
    deployment.app.commit("v2", {"snippets/VERSION": "2\n"})
    time.sleep(1)  # release ids have one-second resolution
    second = release_id_in(deployment.deploy("staging").stdout)
    rolled = deployment.app.run("rollback", "staging")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    staging = deployment.staging[0]
    sha = {r: deployment.artifact_sha256(staging, r) for r in (first, second)}

    listing = deployment.app.run("releases", "staging")
    assert listing.returncode == 0, listing.stderr
    header, *rows = listing.stdout.splitlines()
    assert header.split() == [
        "RELEASE", "SHA256", "GIT", "ACTION", "WHEN", "WHO", "RESULT", "FLAGS"
    ]  # fmt: skip
    # One row per release, as its latest record left it: the first was rolled back to.
    assert rows[0].split()[:4] == [second, sha[second][:12], second[-7:], "deploy"]
    assert rows[1].split()[:5] == ["*", first, sha[first][:12], first[-7:], "rollback"]
    assert rows_json(deployment, "releases", "staging", "--json") == [
        (second, sha[second], "deploy", []),
        (first, sha[first], "rollback", []),
    ]

    # --all: every record, newest first, with its flags.
    every = deployment.app.run("releases", "staging", "--all")
    assert every.returncode == 0, every.stderr
    lines = every.stdout.splitlines()[1:]
    assert [line.lstrip("* ").split()[3] for line in lines] == ["rollback", "deploy", "deploy"]
    assert lines[2].startswith("*") and lines[2].split()[-2:] == ["ok", "skip-tests"]
    assert rows_json(deployment, "releases", "staging", "--all", "--json") == [
        (first, sha[first], "rollback", []),
        (second, sha[second], "deploy", []),
        (first, sha[first], "deploy", ["skip-tests"]),
    ]


def rows_json(deployment: Deployment, *args: str) -> list[tuple[str, str, str, list[str]]]:
    done = deployment.app.run(*args)
    assert done.returncode == 0, done.stderr
    return [
        (r["release_id"], r["sha256"], r["action"], r["flags"]) for r in json.loads(done.stdout)
    ]


def test_restart_environment_starts_the_current_release_after_a_reboot(
    deployment: Deployment,
) -> None:
    deployment.write_config(rolling=True)
    release = release_id_in(deployment.deploy("staging").stdout)
    deployment.deploy("production")
    assert get(deployment.production_port, "/health") == (200, "ok")
    for host in deployment.production:
        reboot(host)
    assert get(deployment.production_port, "/health")[0] == 0

    done = deployment.app.run("restart", "--environment", "production", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    web_host, worker_host = deployment.production
    assert done.stdout.splitlines() == [
        f"procman: restarting {release} (git {release[-7:]}) on production (2 hosts, promoted "
        "from staging), one host at a time",
        f"procman: {deployment.label(web_host)}: healthy (web on {deployment.production_port})",
        f"procman: {deployment.label(worker_host)}: restarted",
        done.stdout.splitlines()[-1],
    ]
    assert re.fullmatch(
        rf"procman: production now runs {release} \(restart, \d+\.\ds\)",
        done.stdout.splitlines()[-1],
    )
    assert get(deployment.production_port, "/health") == (200, "ok")
    assert any("procman worker" in c for c in host_commands(worker_host.address))
    for host in deployment.production:
        assert deployment.current(host) == release
        last = deployment.history(host)[-1]
        assert (last["action"], last["release_id"], last["result"]) == ("restart", release, "ok")

    # Restarting what runs works too, and the local restart still means the local app.
    again = deployment.app.run("restart", "--environment", "production", timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert get(deployment.production_port, "/health") == (200, "ok")

    # --env is the environment (--environment above is its older spelling), and a type narrows
    # it to that type's instances on the hosts that run it: the worker keeps running meanwhile.
    def pids(host: SSHHost, word: str) -> set[int]:
        """The processes running ``word``, not their forks (an RQ work horse, gunicorn's)."""
        found = {p: p.ppid() for p, command in host_processes_of(host.address) if word in command}
        return {p.pid for p, parent in found.items() if parent not in {q.pid for q in found}}

    workers, webs = pids(worker_host, "procman worker"), pids(web_host, "gunicorn")
    assert workers and webs
    typed = deployment.app.run("restart", "--env", "production", "web", timeout=120)
    assert typed.returncode == 0, typed.stdout + typed.stderr
    assert typed.stdout.splitlines()[:2] == [
        f"procman: restarting web of {release} (git {release[-7:]}) on production (2 hosts, "
        "promoted from staging), one host at a time",
        f"procman: {deployment.label(web_host)}: healthy (web on {deployment.production_port})",
    ]
    assert pids(worker_host, "procman worker") == workers
    assert pids(web_host, "gunicorn").isdisjoint(webs)
    assert get(deployment.production_port, "/health") == (200, "ok")
    last = deployment.history(web_host)[-1]
    assert (last["action"], last["result"], last["flags"]) == ("restart", "ok", ["types:web"])
    unknown = deployment.app.run("restart", "--env", "production", "wrker")
    assert unknown.returncode == 1
    assert f"{release} has no process type 'wrker' (types: web, clock, worker)" in unknown.stderr


def test_releases_of_an_empty_promoted_environment_suggest_deploying_its_source_first(
    deployment: Deployment,
) -> None:
    deployment.write_config()
    done = deployment.app.run("releases", "production")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "no releases on production yet (procman deploy staging, then procman deploy "
        "production, which promotes what runs on staging)\n"
    )
    staging = deployment.app.run("releases", "staging")
    assert staging.stdout == "no releases on staging yet (procman deploy staging)\n"
