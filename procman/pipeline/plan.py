"""The plan of a CI pipeline, from procman.yml and the options: a test job, then one deploy job
per environment, in promotion order (an environment with ``promote_from`` after its source).

Pure: the plan is data that the templates render; nothing here knows GitHub's or GitLab's syntax.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from procman.deploy.config import DeployConfig, Environment
from procman.errors import ConfigError, UsageError

FORMATS = ("github", "gitlab")
DEFAULT_PYTHON = "3.12"
SSH_KEY_SECRET = "PROCMAN_SSH_PRIVATE_KEY"
KNOWN_HOSTS_SECRET = "PROCMAN_SSH_KNOWN_HOSTS"
PYTHON_VERSION = re.compile(r"[0-9]+(\.[0-9]+){0,2}")
_BRANCH = re.compile(r"[A-Za-z0-9._/-]+")


class PipelineError(ConfigError):
    """The pipeline cannot be planned: no test command, a bad option value."""


@dataclass(frozen=True, slots=True)
class DeployJob:
    environment: str
    job: str
    """The job's id (``deploy-staging``)."""
    stage: str
    """GitLab's stage for it: the environment's name (``deploy-test`` for one named ``test``)."""
    needs: str
    """The job that must pass first: ``test``, or the deploy job of ``promote_from``."""
    promote_from: str | None
    command: str
    """The ``procman deploy`` command line the job runs."""

    @property
    def gated(self) -> bool:
        """A promotion: it waits for a person (GitLab's manual job, GitHub's reviewers)."""
        return self.promote_from is not None


@dataclass(frozen=True, slots=True)
class PipelinePlan:
    app: str
    python: str
    branch: str | None
    """The branch that deploys; None for the repository's default branch."""
    install: str | None
    """The command installing the app's dependencies for the test job."""
    procman_requirement: str
    """What pip installs to get procman (``procman==VERSION``), quoted for a shell."""
    test: str
    deploys: tuple[DeployJob, ...]
    ssh_key_secret: str = SSH_KEY_SECRET
    known_hosts_secret: str = KNOWN_HOSTS_SECRET

    @property
    def stages(self) -> tuple[str, ...]:
        return ("test", *(job.stage for job in self.deploys))


def plan_pipeline(
    config: DeployConfig,
    *,
    python: str | None = None,
    branch: str | None = None,
    test: str | None = None,
    install: str | None = None,
    procman_requirement: str,
) -> PipelinePlan:
    """The pipeline for ``config``: its test command (``test`` overrides procman.yml's) and every
    environment, sources before the environments promoted from them."""
    python = python or DEFAULT_PYTHON
    if not PYTHON_VERSION.fullmatch(python):
        raise UsageError(f"bad Python version {python!r}", "give it like 3.12")
    if branch is not None and (not _BRANCH.fullmatch(branch) or branch.startswith("-")):
        raise UsageError(f"bad branch name {branch!r}", "give a branch name like main")
    command = test if test is not None else config.test
    if command is None or not command.strip():
        raise PipelineError(
            f"{config.path}: test: missing; the pipeline's test job runs it",
            "add the app's test command to procman.yml, like 'test: python -m pytest -q'",
        )
    return PipelinePlan(
        app=config.app,
        python=python,
        branch=branch,
        install=install,
        procman_requirement=shlex.quote(procman_requirement),
        test=command,
        deploys=tuple(_deploy_jobs(config.environments)),
    )


def promotion_order(environments: Mapping[str, Environment]) -> list[str]:
    """Environment names, each after the one it is promoted from; otherwise in file order."""
    ordered: list[str] = []
    pending = list(environments)
    while pending:
        ready = [
            name
            for name in pending
            if environments[name].promote_from is None or environments[name].promote_from in ordered
        ]
        if not ready:  # a cycle: procman.yml's validation refuses these
            raise AssertionError(f"promotion cycle among {pending}")
        ordered.extend(ready)
        pending = [name for name in pending if name not in ready]
    return ordered


def job_id(environment: str) -> str:
    """``deploy-ENV``, with '.' (allowed in names, not in GitHub job ids) as '_'."""
    return "deploy-" + environment.replace(".", "_")


def _deploy_jobs(environments: Mapping[str, Environment]) -> list[DeployJob]:
    jobs: list[DeployJob] = []
    for name in promotion_order(environments):
        source = environments[name].promote_from
        command = f"procman deploy {name}"
        if source is None:
            command += " --skip-tests"  # the test job ran test: on this commit
        jobs.append(
            DeployJob(
                environment=name,
                job=job_id(name),
                stage=name if name != "test" else "deploy-test",
                needs=job_id(source) if source is not None else "test",
                promote_from=source,
                command=command,
            )
        )
    return jobs
