"""The generated pipelines' jobs, run as the CI would run them (each job in a fresh clone; GitLab:
``before_script`` and ``script`` in one shell; GitHub: each ``run`` step in a shell of its own,
with the job's and the step's ``env``), against the real sshd hosts: the test job passes,
deploy-staging ships the commit, deploy-production promotes it, with the SSH key and known hosts
reaching procman only through the two CI secrets (an ssh-agent and ``~/.ssh/known_hosts`` of a
HOME of its own). Only the ``pip install`` lines are left out: procman is installed already."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
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


def ci_setup(deployment: Deployment, tmp_path: Path) -> dict[str, str]:
    """procman.yml without identity_file and known_hosts (the CI secrets bring them), committed;
    the environment of a job: a HOME of its own, procman on PATH, the two secrets."""
    deployment.write_config(extra={"test": "python3 -m compileall -q snippets"})
    config_path = deployment.app.root / "procman.yml"
    config = json.loads(config_path.read_text())
    del config["known_hosts"]
    for environment in config["environments"].values():
        del environment["identity_file"]
    deployment.app.commit("procman.yml for CI", {"procman.yml": json.dumps(config, indent=2)})
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "PROCMAN_SSH_PRIVATE_KEY": deployment.cluster.identity_file.read_text(),
        "PROCMAN_SSH_KNOWN_HOSTS": deployment.cluster.known_hosts.read_text(),
    }


def check_outputs(deployment: Deployment, outputs: dict[str, str], home: Path) -> None:
    assert "valid procman.yml: staging (1 host), production (2 hosts" in outputs["test"]
    release = release_id_in(outputs["deploy-staging"])
    assert "test: skipped (--skip-tests)" in outputs["deploy-staging"]
    assert f"promoting {release}" in outputs["deploy-production"]
    assert "downloaded " in outputs["deploy-production"]  # a fresh checkout has no artifact
    assert f"production now runs {release} (promote" in outputs["deploy-production"]
    assert get(deployment.production_port, "/health") == (200, "ok")
    assert (home / ".ssh" / "known_hosts").read_text().startswith("[127.0.0.")


def test_the_generated_gitlab_jobs_test_deploy_and_promote(
    deployment: Deployment, tmp_path: Path
) -> None:
    env = ci_setup(deployment, tmp_path)
    generated = deployment.app.run("pipeline", "generate", "gitlab", "-o", "-")
    assert generated.returncode == 0, generated.stderr
    pipeline = yaml.safe_load(generated.stdout)

    outputs = {}
    for name in ["test", "deploy-staging", "deploy-production"]:
        setup = pipeline[".procman-deploy"] if name != "test" else {}
        workdir = tmp_path / name
        workdir.mkdir()
        done = run_job(pipeline[name], setup, deployment.app.root, workdir, env)
        assert done.returncode == 0, f"{name}:\n{done.stdout}{done.stderr}"
        outputs[name] = done.stdout

    check_outputs(deployment, outputs, Path(env["HOME"]))


def github_value(value: str, env: dict[str, str]) -> str:
    """A step's ``env`` value with ``${{ secrets.NAME }}`` put in, as GitHub does."""
    return re.sub(r"\$\{\{ secrets\.(\w+) \}\}", lambda m: env[m[1]], value)


def test_the_generated_github_jobs_test_deploy_and_promote(
    deployment: Deployment, tmp_path: Path
) -> None:
    env = ci_setup(deployment, tmp_path)
    generated = deployment.app.run("pipeline", "generate", "github", "-o", "-")
    assert generated.returncode == 0, generated.stderr
    jobs = yaml.safe_load(generated.stdout)["jobs"]

    outputs = {}
    for name in ["test", "deploy-staging", "deploy-production"]:
        job = jobs[name]
        assert job.get("needs") in (None, "test", "deploy-staging")
        clone = tmp_path / name
        git_clone = ["git", "clone", "-q", str(deployment.app.root), str(clone)]
        subprocess.run(git_clone, check=True, timeout=60)
        job_env = {**env, **job.get("env", {})}
        if "SSH_AUTH_SOCK" in job_env:  # a runner is a machine of its own; this one is shared
            job_env["SSH_AUTH_SOCK"] = str(tmp_path / f"{name}.agent")
        outputs[name] = ""
        try:
            for step in job["steps"]:
                if "run" not in step or "pip install" in step["run"]:
                    continue
                step_env = {k: github_value(v, env) for k, v in step.get("env", {}).items()}
                done = subprocess.run(
                    ["bash", "-e", "-c", step["run"]],
                    cwd=clone,
                    capture_output=True,
                    text=True,
                    check=False,
                    timeout=200,
                    env={**job_env, **step_env},
                )
                assert done.returncode == 0, f"{name}: {step['run']}\n{done.stdout}{done.stderr}"
                outputs[name] += done.stdout
        finally:
            stop_agent(tmp_path / f"{name}.agent")

    check_outputs(deployment, outputs, Path(env["HOME"]))


def stop_agent(socket: Path) -> None:
    """Stop the ssh-agent a job started on ``socket`` (GitHub discards the whole runner)."""
    for process in psutil.process_iter(["cmdline"]):
        if str(socket) in (process.info["cmdline"] or []):
            process.terminate()
            process.wait(timeout=10)
