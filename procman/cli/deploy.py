"""``procman deploy``, ``releases``, ``rollback``, ``unlock`` and ``restart --env``: the
pipeline of procman.yml.

Each command turns its arguments into ``PipelineOptions`` and calls one function of
``procman.commands.deploy`` (which loads procman.yml and runs the pipeline); paramiko is imported
only when a host is reached.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from procman.cli.commands import lock_wait_option, with_options
from procman.cli.control import format_table
from procman.cli.flags import current_speller
from procman.errors import spell_options

if TYPE_CHECKING:
    from procman.commands.deploy import PipelineOptions
    from procman.deploy.plan import Plan

F = TypeVar("F", bound=Callable[..., Any])


def deploy_file_option(command: F) -> F:
    return with_options(
        command,
        [
            click.option(
                "-C",
                "--config",
                "config_path",
                type=click.Path(path_type=Path),
                default=Path("procman.yml"),
                show_default=True,
                help="The deploy file; its directory is the app's git repository.",
            )
        ],
    )


def pipeline_options(config_path: Path) -> PipelineOptions:
    from procman.commands.deploy import PipelineOptions

    return PipelineOptions(config_path=config_path, say=say, progress=sys.stdout.isatty())


def say(line: str) -> None:
    click.echo(f"procman: {spell_options(line, current_speller())}", err=False)


@click.command()
@click.argument("environment")
@deploy_file_option
@click.option("--commit", help="The git commit to deploy [default: HEAD].")
@click.option(
    "--allow-dirty", is_flag=True, help="Deploy despite uncommitted changes (recorded in history)."
)
@click.option("--skip-tests", is_flag=True, help="Skip the test stage (recorded in history).")
@click.option(
    "--release",
    "release_id",
    metavar="ID",
    help="Promote this release of the source environment instead of its current one.",
)
@click.option(
    "--allow-dirty-config",
    is_flag=True,
    help="Promote although procman.yml has uncommitted changes (recorded in history).",
)
@click.option(
    "--force-stale-source",
    is_flag=True,
    help="Promote although the source release is not running healthily now (recorded in history).",
)
@lock_wait_option
@click.option(
    "--plan",
    "plan_only",
    is_flag=True,
    help="Print every step and remote command the deploy would run on each host; change "
    "nothing (the hosts are only read).",
)
def deploy(
    environment: str,
    config_path: Path,
    commit: str | None,
    allow_dirty: bool,
    skip_tests: bool,
    release_id: str | None,
    allow_dirty_config: bool,
    force_stale_source: bool,
    wait: float,
    plan_only: bool,
) -> int:
    """Deploy to ENVIRONMENT: test, build and ship a commit; or, for an environment with
    promote_from, ship the release that is current and healthy there, byte for byte."""
    from procman.commands.deploy import deploy as deploy_to
    from procman.deploy.pipeline import DeployOptions

    options = DeployOptions(
        commit=commit,
        allow_dirty=allow_dirty,
        skip_tests=skip_tests,
        wait=wait,
        release=release_id,
        allow_dirty_config=allow_dirty_config,
        force_stale_source=force_stale_source,
    )
    if plan_only:
        from procman.commands.deploy import plan

        print_plan(plan(pipeline_options(config_path), environment, options))
        return 0
    deploy_to(pipeline_options(config_path), environment, options)
    return 0


def print_plan(plan: Plan) -> None:
    sha = f"sha256 {plan.sha256[:12]}" if plan.sha256 else "not built yet"
    click.echo(f"plan: {plan.action} {plan.release_id} ({sha}) to {plan.environment}; "
               "nothing is changed")  # fmt: skip
    for line in plan.local:
        click.echo(f"here: {line}")
    for host in plan.hosts:
        state = host.state
        formation = ", ".join(f"{k}={v}" for k, v in state.formation.items())
        click.echo(f"{host.host} (current: {state.current or 'none'}; runs {formation}):")
        for number, step in enumerate(host.steps, start=1):
            click.echo(f"  {number:2d}. {step.step}: {step.command}")


@click.command()
@click.argument("environment")
@deploy_file_option
@click.option("--json", "as_json", is_flag=True, help="Print the releases as JSON.")
@click.option(
    "--all",
    "every_record",
    is_flag=True,
    help="Every history record, newest first, instead of one row per release.",
)
def releases(environment: str, config_path: Path, as_json: bool, every_record: bool) -> int:
    """List ENVIRONMENT's releases, newest first, the current one marked."""
    from procman.commands.deploy import releases as list_releases

    found = list_releases(pipeline_options(config_path), environment, every_record)
    rows = found.rows
    if as_json:
        click.echo(json.dumps([row.to_json() for row in rows], indent=2))
        return 0
    for warning in found.warnings:
        click.echo(f"procman: warning: {warning}", err=True)
    if not rows:
        click.echo(f"no releases on {environment} yet ({found.hint})")
        return 0
    table = [["", "RELEASE", "SHA256", "GIT", "ACTION", "WHEN", "WHO", "RESULT", "FLAGS"]]
    for row in rows:
        table.append(
            [
                "*" if row.current else "",
                row.release_id,
                row.sha256[:12],
                row.git_sha[:7],
                row.action,
                row.when,
                row.who,
                row.result if row.kept else f"{row.result} (pruned)",
                ", ".join(row.shown_flags),
            ]
        )
    click.echo("\n".join(line.rstrip() for line in format_table(table).splitlines()))
    return 0


@click.command()
@click.argument("environment")
@click.argument("release_id", metavar="[ID]", required=False)
@deploy_file_option
@lock_wait_option
def rollback(environment: str, release_id: str | None, config_path: Path, wait: float) -> int:
    """Run a kept release of ENVIRONMENT again (default: the previous healthy one), without
    rebuilding; health-checked and recorded like a deploy."""
    from procman.commands.deploy import rollback as roll_back

    roll_back(pipeline_options(config_path), environment, release_id, wait)
    return 0


def restart_environment(
    environment: str, config_path: Path, wait: float, types: tuple[str, ...] = ()
) -> int:
    """``procman restart --env ENV [TYPE...]``: the current release started or restarted on every
    host (of TYPES only, if named), health-checked, recorded as a restart."""
    from procman.commands.deploy import restart

    restart(pipeline_options(config_path), environment, wait, types)
    return 0


@click.command()
@click.argument("environment")
@deploy_file_option
def unlock(environment: str, config_path: Path) -> int:
    """Break ENVIRONMENT's deploy lock on every host (after a deploy died), saying who held it."""
    from procman.commands.deploy import unlock as break_lock

    for line in break_lock(pipeline_options(config_path), environment):
        click.echo(line)
    return 0
