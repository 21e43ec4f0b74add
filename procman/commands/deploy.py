"""``procman deploy``, ``releases``, ``rollback``, ``unlock`` and ``restart --env``: the
pipeline of procman.yml.

Each function takes the command's :class:`PipelineOptions`, composes the pipeline once (procman.yml
validated against the Procfile beside it, :func:`pipeline_for`) and calls one method of
``procman.deploy.pipeline.Pipeline``; paramiko is imported only when a host is reached.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from procman.deploy.config import load_deploy_config
from procman.deploy.history import ReleaseRow
from procman.deploy.pipeline import DeployOptions, Outcome, Pipeline, deploy_hint
from procman.deploy.plan import Plan
from procman.procfile import load_procfile


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    config_path: Path
    """procman.yml; its directory is the app's git repository."""
    say: Callable[[str], None]
    """Where the pipeline's progress lines go."""
    progress: bool = False
    """Show live progress (on a terminal)."""


def pipeline_for(options: PipelineOptions) -> Pipeline:
    repo = options.config_path.parent.resolve()
    procfile_path = repo / "Procfile"
    procfile = load_procfile(procfile_path) if procfile_path.is_file() else None
    config = load_deploy_config(options.config_path, procfile)
    return Pipeline(repo, config, options.say, progress=options.progress)


def deploy(options: PipelineOptions, environment: str, deploy_options: DeployOptions) -> Outcome:
    return pipeline_for(options).deploy(environment, deploy_options)


def plan(options: PipelineOptions, environment: str, deploy_options: DeployOptions) -> Plan:
    """``procman deploy ENV --plan``: every step and remote command, run nowhere."""
    return pipeline_for(options).plan(environment, deploy_options)


@dataclass(frozen=True, slots=True)
class Releases:
    rows: list[ReleaseRow]
    warnings: list[str]
    hint: str
    """What to run when there are no releases yet."""


def releases(options: PipelineOptions, environment: str, every_record: bool) -> Releases:
    pipeline = pipeline_for(options)
    rows, warnings = pipeline.releases(environment, every_record)
    hint = "" if rows else deploy_hint(pipeline.environment(environment))
    return Releases(rows=rows, warnings=warnings, hint=hint)


def rollback(
    options: PipelineOptions, environment: str, release_id: str | None, wait: float
) -> Outcome:
    return pipeline_for(options).rollback(environment, release_id, wait)


def restart(
    options: PipelineOptions, environment: str, wait: float, only: Sequence[str] = ()
) -> Outcome:
    """``procman restart --env ENV [TYPE...]``: the current release started or restarted on every
    host (only the instances of the types named, if any), health-checked, recorded as a
    restart."""
    return pipeline_for(options).restart(environment, wait, only)


def unlock(options: PipelineOptions, environment: str) -> list[str]:
    """Break the deploy lock on every host; a line per host saying who held it."""
    return pipeline_for(options).unlock(environment)
