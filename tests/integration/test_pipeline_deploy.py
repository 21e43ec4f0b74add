"""The generated GitLab pipeline's jobs, run as GitLab would run them (each job in a fresh clone,
``before_script`` and ``script`` in one shell), against the real sshd hosts: the test job passes,
deploy-staging ships the commit, deploy-production promotes it, with the SSH key and known hosts
reaching procman only through the two CI variables (an ssh-agent and ``~/.ssh/known_hosts`` of a
HOME of its own). Only the ``pip install`` lines are left out: procman is installed already."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import DeployApp, SSHCluster
from tests.integration.test_deploy import Deployment, get, release_id_in

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
VENV_BIN = Path(sys.executable).parent
HARNESS = """set -e
cleanup() {{ if [ -n "${{SSH_AGENT_PID:-}}" ]; then kill "$SSH_AGENT_PID"; fi; }}
trap cleanup EXIT
{lines}
"""
"""One job's lines in one shell, as GitLab's runner does; the trap stops the job's ssh-agent."""


@pytest.fixture
def deployment(
    deploy_app: DeployApp, deploy_hosts: SSHCluster, redis_url: str
) -> Iterator[Deployment]:
    deployment = Deployment(deploy_app, deploy_hosts, redis_url)
    yield deployment
    deployment.stop_everything()


def run_job(
    job: dict[str, object], setup: dict[str, object], repo: Path, workdir: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    clone = workdir / "checkout"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True, timeout=60)
    lines = [*(setup.get("before_script") or []), *job["script"]]  # type: ignore[misc]
    kept = [line for line in lines if "pip install" not in line]
    return subprocess.run(
        ["sh", "-c", HARNESS.format(lines="\n".join(kept))],
        cwd=clone,
        capture_output=True,
        text=True,
        check=False,
        timeout=200,
        env=env,
    )


def test_the_generated_gitlab_jobs_test_deploy_and_promote(
    deployment: Deployment, tmp_path: Path
) -> None:
    deployment.write_config(extra={"test": "python3 -m compileall -q snippets"})
    config_path = deployment.app.root / "procman.yml"
    config = json.loads(config_path.read_text())
    del config["known_hosts"]  # the CI variables bring them, and the key
    for environment in config["environments"].values():
        del environment["identity_file"]
    deployment.app.commit("procman.yml for CI", {"procman.yml": json.dumps(config, indent=2)})
    generated = deployment.app.run("pipeline", "generate", "gitlab", "-o", "-")
    assert generated.returncode == 0, generated.stderr
    pipeline = yaml.safe_load(generated.stdout)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "PROCMAN_SSH_PRIVATE_KEY": deployment.cluster.identity_file.read_text(),
        "PROCMAN_SSH_KNOWN_HOSTS": deployment.cluster.known_hosts.read_text(),
    }

    outputs = {}
    for name in ["test", "deploy-staging", "deploy-production"]:
        setup = pipeline[".procman-deploy"] if name != "test" else {}
        workdir = tmp_path / name
        workdir.mkdir()
        done = run_job(pipeline[name], setup, deployment.app.root, workdir, env)
        assert done.returncode == 0, f"{name}:\n{done.stdout}{done.stderr}"
        outputs[name] = done.stdout

    assert "valid procman.yml: staging (1 host), production (2 hosts" in outputs["test"]
    release = release_id_in(outputs["deploy-staging"])
    assert "test: skipped (--skip-tests)" in outputs["deploy-staging"]
    assert f"promoting {release}" in outputs["deploy-production"]
    assert "downloaded " in outputs["deploy-production"]  # a fresh checkout has no artifact
    assert f"production now runs {release} (promote" in outputs["deploy-production"]
    assert get(deployment.production_port, "/health") == (200, "ok")
    assert (home / ".ssh" / "known_hosts").read_text().startswith("[127.0.0.")
