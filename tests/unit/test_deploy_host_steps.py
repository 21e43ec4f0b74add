"""The host-side steps a deploy added on top of the file steps: the env file it writes, the release
state and supervisor listings it reads, shared links, health check output, the formation per
host and the workers' stop timeout. Shell steps run in a real ``sh`` on a scratch root."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from procman.deploy import steps
from procman.deploy.config import Environment, Host, parse_deploy_config
from procman.deploy.pipeline import host_formation, stop_timeout_for
from procman.envfile import parse_env
from procman.errors import ConfigError, ManyErrors

ID = "20261122T131955Z-0123456"
DIGEST = "a" * 64


def sh(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)


@given(
    st.dictionaries(
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True),
        st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\0")),
        max_size=5,
    )
)
def test_the_deploy_env_file_reads_back_exactly(values: dict[str, str]) -> None:
    assert parse_env(steps.dotenv_text(values), ".procman-deploy.env").values == values


def test_the_deploy_env_file_is_not_interpolated() -> None:
    text = steps.dotenv_text({"A": "${HOME} $x \\n 'q'"})
    assert parse_env(text, "x.env", {"HOME": "/root"}).values == {"A": "${HOME} $x \\n 'q'"}


def test_release_state(tmp_path: Path) -> None:
    root = str(tmp_path / "srv")
    sh(steps.preflight(root))
    assert steps.parse_release_state(sh(steps.release_state(root, ID)).stdout) == (None, False)
    artifact = Path(steps.artifact_path(root, ID))
    artifact.write_bytes(b"x")
    digest, built = steps.parse_release_state(sh(steps.release_state(root, ID)).stdout)
    assert digest == "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
    assert not built
    release = Path(steps.release_dir(root, ID))
    release.mkdir()
    assert sh(steps.finish_build(root, ID)).returncode == steps.NO_PROCMAN_STATUS  # none yet
    assert steps.parse_release_state(sh(steps.release_state(root, ID)).stdout) == (digest, False)
    (release / ".venv" / "bin").mkdir(parents=True)
    (release / ".venv" / "bin" / "procman").write_text("#!/bin/sh\n")
    (release / ".venv" / "bin" / "procman").chmod(0o755)
    assert sh(steps.finish_build(root, ID)).returncode == 0
    assert steps.parse_release_state(sh(steps.release_state(root, ID)).stdout) == (digest, True)
    sh(steps.remove_releases(root, [ID]))
    assert steps.parse_release_state(sh(steps.release_state(root, ID)).stdout) == (None, False)


def test_parse_release_state_refuses_garbage() -> None:
    with pytest.raises(steps.StepError):
        steps.parse_release_state("not a digest  file\n")
    assert steps.parse_release_state(f"{DIGEST}  /x\nbuilt\n") == (DIGEST, True)


def test_unpack_release_links_shared_paths(tmp_path: Path) -> None:
    import tarfile

    root = str(tmp_path / "srv")
    sh(steps.preflight(root))
    with tarfile.open(steps.artifact_path(root, ID), "w:gz"):
        pass
    release = Path(steps.release_dir(root, ID))
    shared = Path(steps.shared_dir(root))
    (shared / "config.yml").write_text("x")
    done = sh(steps.unpack_release(root, ID, [".env", "config.yml", "media/uploads/"], "A='1'\n"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (release / ".env").exists()  # optional, and absent
    assert (release / "config.yml").resolve() == (shared / "config.yml").resolve()
    assert (shared / "media" / "uploads").is_dir()
    assert (release / "media" / "uploads").is_symlink()
    missing = sh(steps.unpack_release(root, ID, ["secrets.json"], ""))
    assert (missing.returncode, missing.stdout) == (
        steps.MISSING_SHARED_STATUS,
        "missing secrets.json\n",
    )


def test_preflight_makes_the_layout_and_names_a_missing_tool(tmp_path: Path) -> None:
    root = str(tmp_path / "srv")
    assert sh(steps.preflight(root)).returncode == 0
    assert sorted(p.name for p in Path(root).iterdir()) == [".procman", "releases", "shared"]


def test_running_supervisors_are_the_releases_whose_lock_is_held(tmp_path: Path) -> None:
    import fcntl
    import os

    root = str(tmp_path / "srv")
    sh(steps.preflight(root))
    held = None
    for release_id, running in [(ID, True), ("20261122T131956Z-89abcde", False)]:
        run_dir = Path(steps.release_dir(root, release_id)) / ".procman"
        run_dir.mkdir(parents=True)
        lock = run_dir / steps.LOCK_FILE
        lock.write_text("123\n")  # a stale lock file stays after procman exits
        if running:
            held = os.open(lock, os.O_RDWR)
            fcntl.flock(held, fcntl.LOCK_EX)
    try:
        output = sh(steps.running_supervisors(root)).stdout
    finally:
        assert held is not None
        os.close(held)
    assert steps.parse_running_supervisors(output) == [ID]
    assert steps.parse_running_supervisors("/x/releases/not-an-id\n\n") == []


def test_parse_health() -> None:
    assert steps.parse_health('{"5000": "200", "5001": "URLError: refused"}\n') == {
        5000: "200",
        5001: "URLError: refused",
    }
    with pytest.raises(steps.StepError):
        steps.parse_health("Traceback (most recent call last):\n")
    with pytest.raises(steps.StepError):
        steps.parse_health("")


def test_health_check_script_reports_a_closed_port_within_its_timeout() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = sh(steps.health_check("/health", 0.5, [port]))
    assert done.returncode == 1
    [status] = steps.parse_health(done.stdout).values()
    assert "refused" in status.lower()


def test_host_formation_counts_per_host_by_role() -> None:
    web = Host("web1", roles=("web",))
    anything = Host("box")
    counted = Environment("p", (web, anything), "/srv/a", formation={"web": 2, "worker": 3})
    types = ("web", "worker", "clock")
    assert host_formation(counted, web, types) == {"web": 2, "worker": 0, "clock": 0}
    assert host_formation(counted, anything, types) == {"web": 2, "worker": 3, "clock": 0}
    default = Environment("s", (anything,), "/srv/a")
    assert host_formation(default, anything, types) == {"web": 1, "worker": 1, "clock": 1}


def test_stop_timeout_covers_the_job_timeout() -> None:
    assert stop_timeout_for(None) == 30
    assert stop_timeout_for("timeout: 600\n") == 610
    assert stop_timeout_for("timeout: 5\n") == 30
    assert stop_timeout_for("queues: [[[\n") == 30  # a broken file: the default, not a crash


BASE = "app: a\nenvironments:\n  s: {hosts: [h], path: /srv/a}\n"


def test_shared_and_known_hosts_keys() -> None:
    config = parse_deploy_config(BASE + "shared: [.env, media/, config/app.yml]\nknown_hosts: kh\n")
    assert config.shared == (".env", "media/", "config/app.yml")
    assert config.known_hosts_path() == Path("kh")
    assert parse_deploy_config(BASE).shared == (".env",)


@pytest.mark.parametrize(
    ("shared", "message"),
    [
        ("shared: .env", "procman.yml: shared: must be a list of paths (got the string '.env')"),
        (
            "shared: [/etc/passwd]",
            "procman.yml: shared[0]: the string '/etc/passwd' is not a path inside the release",
        ),
        (
            "shared: [../up]",
            "procman.yml: shared[0]: the string '../up' is not a path inside the release",
        ),
        ("shared: [a, a]", "procman.yml: shared[1]: 'a' is listed twice"),
        ("shared: [3]", "procman.yml: shared[0]: 3 is not a path inside the release"),
        ("linked_files: [a]", "did you mean 'shared'"),
    ],
)
def test_bad_shared_paths(shared: str, message: str) -> None:
    with pytest.raises((ConfigError, ManyErrors)) as failure:
        parse_deploy_config(BASE + shared + "\n")
    assert message in str(failure.value)


def test_ssh_config_fills_in_what_procman_yml_leaves_out(tmp_path: Path) -> None:
    from procman.deploy.transport.ssh import SSHConfigEntry, lookup_ssh_config

    config = tmp_path / "config"
    config.write_text(
        "Host web1\n  HostName 10.0.0.5\n  Port 2222\n  User deploy\n"
        "  IdentityFile ~/.ssh/deploy_key\n"
    )
    assert lookup_ssh_config(config, "web1") == SSHConfigEntry(
        "10.0.0.5", 2222, "deploy", str(Path("~/.ssh/deploy_key").expanduser())
    )
    assert lookup_ssh_config(config, "other") == SSHConfigEntry("other")
    assert lookup_ssh_config(tmp_path / "missing", "web1") == SSHConfigEntry("web1")


def test_a_missing_project_known_hosts_file_is_an_error_before_connecting(tmp_path: Path) -> None:
    from procman.deploy.config import DeployConfigError
    from procman.deploy.pipeline import ssh_connector

    config = parse_deploy_config(BASE + "known_hosts: nowhere\n", str(tmp_path / "procman.yml"))
    with pytest.raises(DeployConfigError) as failure:
        ssh_connector(config)
    assert f"procman.yml: known_hosts: {tmp_path / 'nowhere'} does not exist" in str(failure.value)
