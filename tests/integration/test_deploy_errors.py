"""``procman deploy`` refusing bad input before anything changes: a dirty tree, a failing test
stage, an unknown environment, an unreachable host, a refused key, a host without python3. Each
is one line naming what and where, a non-zero exit and no traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from procman.deploy.config import Environment, Host
from procman.deploy.host import DeployHost, StepFailed
from procman.deploy.transport import LocalTransport
from tests.conftest import DeployApp, SSHCluster, SSHHost, free_port_on

pytestmark = pytest.mark.timeout(120)


def write_config(app: DeployApp, cluster: SSHCluster, **changes: object) -> None:
    host = cluster.hosts[0]
    staging: dict[str, object] = {
        "hosts": [{"host": host.address, "port": host.port, "roles": ["web", "worker", "clock"]}],
        "user": cluster.user,
        "identity_file": str(cluster.identity_file),
        "path": f"{host.deploy_root}/snippets",
    }
    staging.update(changes.pop("staging", {}))  # type: ignore[call-overload]
    config = {
        "app": "snippets",
        "build": app.build_command,
        "known_hosts": str(cluster.known_hosts),
        "environments": {"staging": staging},
        **changes,
    }
    app.commit("procman.yml", {"procman.yml": json.dumps(config)})


def write_promoted_config(app: DeployApp, cluster: SSHCluster) -> SSHHost:
    """``write_config`` plus ``production``, promoted from staging, on the second host."""
    host = cluster.hosts[1]
    production = {
        "promote_from": "staging",
        "hosts": [{"host": host.address, "port": host.port, "roles": ["web"]}],
        "path": f"{host.deploy_root}/snippets",
    }
    write_config(app, cluster)
    config = json.loads((app.root / "procman.yml").read_text())
    config["environments"]["production"] = production
    app.commit("production", {"procman.yml": json.dumps(config)})
    return host


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("procman: error: ")
    return lines[0]


def test_a_dirty_tree_is_refused_unless_allowed(
    deploy_app: DeployApp, deploy_hosts: SSHCluster
) -> None:
    write_config(deploy_app, deploy_hosts, test="false")
    (deploy_app.root / "notes.txt").write_text("not committed\n")
    error = one_error_line(deploy_app.run("deploy", "staging"))
    assert "uncommitted changes: notes.txt" in error
    assert "--allow-dirty" in error
    # --allow-dirty goes on to the test stage, which fails here: nothing reaches the hosts.
    failed = deploy_app.run("deploy", "staging", "--allow-dirty")
    assert "test stage failed (exit status 1): false; nothing was deployed" in one_error_line(
        failed
    )
    assert not list(deploy_hosts.hosts[0].srv.iterdir())


def test_the_test_stage_runs_in_the_repository_and_stops_the_deploy(
    deploy_app: DeployApp, deploy_hosts: SSHCluster
) -> None:
    write_config(deploy_app, deploy_hosts, test="test -f Procfile && echo tests-ran && exit 3")
    done = deploy_app.run("deploy", "staging")
    assert "tests-ran" in done.stdout
    error = one_error_line(done)
    assert "test stage failed (exit status 3)" in error
    assert "--skip-tests" in error


def test_an_unknown_environment_names_the_known_ones(
    deploy_app: DeployApp, deploy_hosts: SSHCluster
) -> None:
    write_config(deploy_app, deploy_hosts)
    error = one_error_line(deploy_app.run("deploy", "stagin"))
    assert "procman.yml: no environment named 'stagin' (environments: staging)" in error


def test_an_unreachable_host_is_named(deploy_app: DeployApp, deploy_hosts: SSHCluster) -> None:
    closed = free_port_on("127.0.0.2")
    write_config(
        deploy_app,
        deploy_hosts,
        staging={"hosts": [{"host": "127.0.0.2", "port": closed, "roles": ["web"]}]},
    )
    error = one_error_line(deploy_app.run("deploy", "staging", "--skip-tests"))
    assert f"127.0.0.2:{closed}: connect: cannot reach 127.0.0.2 port {closed}" in error
    assert "nothing was changed" in error
    assert error.endswith("that it is up and runs sshd)")


def test_a_refused_key_is_an_authentication_error(
    deploy_app: DeployApp, deploy_hosts: SSHCluster, tmp_path: Path
) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
        check=True,
        capture_output=True,
    )
    write_config(deploy_app, deploy_hosts, staging={"identity_file": str(stranger)})
    error = one_error_line(deploy_app.run("deploy", "staging"))
    assert "connect: authentication failed" in error
    assert deploy_hosts.hosts[0].address in error


def test_a_host_without_python3_is_named_with_the_package_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The host is this machine (LocalTransport), with a PATH holding every tool a deploy needs
    # but python3.
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("sh", "tar", "sha256sum", "setsid", "find", "mkdir"):
        found = shutil.which(name)
        assert found is not None, name
        os.symlink(found, tools / name)
    monkeypatch.setenv("PATH", str(tools))
    environment = Environment("staging", (Host("localhost"),), str(tmp_path / "srv"))
    host = DeployHost(Host("localhost"), environment, LocalTransport())
    with pytest.raises(StepFailed) as failure:
        host.preflight()
    assert str(failure.value) == (
        "localhost: check the host: python3 is not installed "
        "(install it on the host (Debian: apt-get install python3))"
    )


def test_the_test_stage_refuses_a_commit_other_than_the_working_tree(
    deploy_app: DeployApp, deploy_hosts: SSHCluster
) -> None:
    write_config(deploy_app, deploy_hosts, test="true")
    first = deploy_app.git("rev-parse", "HEAD~1")
    error = one_error_line(deploy_app.run("deploy", "staging", "--commit", "HEAD~1"))
    assert f"the test stage runs in the working tree, which is not at HEAD~1 ({first[:7]})" in error
    assert "--skip-tests" in error


def test_build_and_test_flags_are_refused_on_a_promotion(
    deploy_app: DeployApp, deploy_hosts: SSHCluster
) -> None:
    write_promoted_config(deploy_app, deploy_hosts)
    done = deploy_app.run("deploy", "production", "--skip-tests", "--commit", "HEAD~1")
    assert done.returncode == 2
    assert one_error_line(done) == (
        "procman: error: --commit HEAD~1, --skip-tests: production is promoted from staging, so "
        "nothing is built or tested for it (deploy staging with them first, or promote an older "
        "release of it with --release ID)"
    )
    # --commit HEAD names the default, but it is still a choice a promotion cannot honour.
    head = deploy_app.run("deploy", "production", "--commit", "HEAD")
    assert head.returncode == 2
    assert "--commit HEAD: production is promoted from staging" in one_error_line(head)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_is_named_with_the_host_and_the_step(
    deploy_app: DeployApp, tmp_path: Path
) -> None:
    from procman.deploy.config import load_deploy_config
    from procman.deploy.pipeline import DeployError, DeployOptions, Pipeline

    # The host is this machine (LocalTransport: real commands, real files) with its deploy root
    # on a 256 KiB file system, and the release is bigger than that.
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], check=True)
    try:
        deploy_app.commit("a big file", {"blob.txt": os.urandom(600_000).hex()})
        config = {
            "app": "snippets",
            "environments": {"staging": {"hosts": ["localhost"], "path": f"{disk}/snippets"}},
        }
        deploy_app.commit("procman.yml", {"procman.yml": json.dumps(config)})
        pipeline = Pipeline(
            deploy_app.root,
            load_deploy_config(deploy_app.root / "procman.yml"),
            say=lambda line: None,
            connect=lambda host, environment: LocalTransport(),
        )
        with pytest.raises(DeployError) as failure:
            pipeline.deploy("staging", DeployOptions())
        message = str(failure.value)
        assert message.startswith("localhost: upload ")
        assert "No space left on device; no host was switched" in message
        assert not (disk / "snippets" / "current").exists()
        assert not (disk / "snippets" / ".procman" / "lock").exists()
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_bad_release_id_is_refused_before_connecting(
    deploy_app: DeployApp, deploy_hosts: SSHCluster
) -> None:
    closed = free_port_on("127.0.0.2")
    write_config(
        deploy_app,
        deploy_hosts,
        staging={"hosts": [{"host": "127.0.0.2", "port": closed, "roles": ["web"]}]},
    )
    error = one_error_line(deploy_app.run("rollback", "staging", "$(reboot)"))
    assert error == (
        "procman: error: bad release id '$(reboot)' (release ids look like "
        "20261122T131955Z-1a2b3c4 (see procman releases ENV))"
    )


def test_a_malformed_known_hosts_line_is_named_with_its_line(
    deploy_app: DeployApp, deploy_hosts: SSHCluster, tmp_path: Path
) -> None:
    known = tmp_path / "known_hosts"
    lines = deploy_hosts.known_hosts.read_text().splitlines()
    broken = "[127.0.0.9]:2222 AAAAC3NzaC1lZDI1NTE5AAAAIFGq root@vm"  # no key type, bad base64
    known.write_text("\n".join([*lines, broken]) + "\n")
    write_config(deploy_app, deploy_hosts, known_hosts=str(known))
    error = one_error_line(deploy_app.run("deploy", "staging", "--skip-tests"))
    assert f"connect: {known}:{len(lines) + 1}: not a known_hosts line ([127.0.0.9]:2222" in error
    assert f"ssh-keyscan HOST >> {known}" in error


def test_a_missing_identity_file_is_named(
    deploy_app: DeployApp, deploy_hosts: SSHCluster, tmp_path: Path
) -> None:
    missing = tmp_path / "no_such_key"
    write_config(deploy_app, deploy_hosts, staging={"identity_file": str(missing)})
    error = one_error_line(deploy_app.run("deploy", "staging", "--skip-tests"))
    assert f"connect: identity_file {missing} does not exist" in error
    assert "ssh-agent" in error


def test_no_key_at_all_says_to_add_one(
    deploy_app: DeployApp, deploy_hosts: SSHCluster, tmp_path: Path
) -> None:
    write_config(deploy_app, deploy_hosts)
    config = json.loads((deploy_app.root / "procman.yml").read_text())
    del config["environments"]["staging"]["identity_file"]
    deploy_app.commit("no identity file", {"procman.yml": json.dumps(config)})
    home = tmp_path / "home"  # no ~/.ssh keys, and no agent
    home.mkdir()
    done = deploy_app.run(
        "deploy", "staging", "--skip-tests", env={"HOME": str(home), "SSH_AUTH_SOCK": ""}
    )
    error = one_error_line(done)
    assert "connect: no key to offer: the ssh-agent has none" in error
    assert "ssh-add" in error


def test_a_refused_promotion_leaves_the_source_hosts_untouched(
    deploy_app: DeployApp, deploy_hosts: SSHCluster
) -> None:
    host = write_promoted_config(deploy_app, deploy_hosts)
    error = one_error_line(deploy_app.run("deploy", "production"))
    assert "cannot skip staging: deploy to staging first (procman deploy staging)" in error
    # Reading staging's history made nothing there; nothing reached production either.
    assert not (deploy_hosts.hosts[0].srv / "snippets").exists()
    assert not (host.srv / "snippets").exists()
    releases = deploy_app.run("releases", "staging")
    assert releases.returncode == 0, releases.stderr
    assert not (deploy_hosts.hosts[0].srv / "snippets").exists()


@pytest.mark.skipif(shutil.which("nsenter") is None, reason="needs nsenter (util-linux)")
def test_a_full_disk_over_ssh_asks_whether_the_disk_is_full(
    deploy_app: DeployApp, deploy_hosts: SSHCluster
) -> None:
    host = deploy_hosts.hosts[0]
    if not host.private_srv or host.process is None:
        pytest.skip("the hosts have no mount namespace of their own here")
    tiny = f"{host.deploy_root}/tiny"
    (host.srv / "tiny").mkdir()
    # -r: the host's root directory too; without it nsenter resolves paths from the mount
    # namespace's real root, which is not this test's root when the suite runs in a chroot
    in_host = ["nsenter", "-t", str(host.process.pid), "-m", "-r"]
    subprocess.run([*in_host, "mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", tiny], check=True)
    try:
        deploy_app.commit("a big file", {"blob.txt": os.urandom(600_000).hex()})
        write_config(deploy_app, deploy_hosts, staging={"path": f"{tiny}/snippets"})
        error = one_error_line(deploy_app.run("deploy", "staging", "--skip-tests"))
        assert f"{host.address}:{host.port}: upload " in error
        assert "the host did not store the whole file" in error
        assert "is its disk full?; no host was switched" in error
        assert f"(free space under {tiny}/snippets/.procman/artifacts (df -h" in error
    finally:
        subprocess.run([*in_host, "umount", tiny], check=True)
