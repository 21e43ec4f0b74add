"""``procman config --env ENV``, ``config set`` and ``config unset``: an environment's variables
(procman.yml's ``env:`` and the hosts' ``shared/.env``), like ``heroku config``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from procman.cli.commands import QuietAlias, lock_wait_option
from procman.cli.control import format_table
from procman.cli.deploy import pipeline_options
from procman.cli.environments import config_option, naming_environment
from procman.errors import UsageError

DEFAULT_CONFIG = Path("procman.yml")

environment_option = click.option(
    "--env",
    "--environment",
    "environment",
    cls=QuietAlias,
    metavar="ENV",
    help="The deployed environment of procman.yml (required).",
)
no_restart_option = click.option(
    "--no-restart",
    is_flag=True,
    help="Change shared/.env only; the processes see it at their next restart or deploy.",
)


@click.group(invoke_without_command=True)
@environment_option
@config_option
@click.option("--reveal", is_flag=True, help="Show secret-looking values instead of ***.")
@click.option("--json", "as_json", is_flag=True, help="Print the variables as JSON.")
@click.pass_context
def config(
    ctx: click.Context, environment: str | None, config_path: Path, reveal: bool, as_json: bool
) -> int:
    """List ENV's variables: procman.yml's env: and the hosts' shared/.env, which wins; values
    of secret-looking names (…KEY, …TOKEN, …PASSWORD, …SECRET) and URL passwords are masked."""
    ctx.obj = (environment, config_path)
    if ctx.invoked_subcommand is not None:
        return 0
    environment = _named(environment, "config")
    from procman.commands.environment import config_list

    with naming_environment(environment, config_path):
        variables = config_list(pipeline_options(config_path), environment)
    if as_json:
        click.echo(json.dumps([v.as_json(reveal) for v in variables], indent=2))
        return 0
    if not variables:
        click.echo(f"{environment} has no variables (procman config set --env {environment} "
                   "KEY=VALUE sets one)")  # fmt: skip
        return 0
    rows = [["NAME", "VALUE", "SOURCE"]]
    for var in variables:
        differs = f" (differs on {', '.join(var.differs_on)})" if var.differs_on else ""
        rows.append([var.name, var.shown(reveal), var.source + differs])
    click.echo("\n".join(line.rstrip() for line in format_table(rows).splitlines()))
    return 0


@config.command(name="set")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
@environment_option
@config_option
@no_restart_option
@lock_wait_option
@click.pass_obj
def set_(
    obj: tuple[str | None, Path],
    assignments: tuple[str, ...],
    environment: str | None,
    config_path: Path,
    no_restart: bool,
    wait: float,
) -> int:
    """Set variables in shared/.env on every host of ENV (all or none), then restart its
    processes, one host at a time. KEY=@FILE reads the value from a file,
    KEY=@- from standard input, and - reads KEY=VALUE lines from standard input (keeping
    secrets out of the shell's history). History records the names, never the values."""
    from procman.commands.environment import ConfigChange, config_change

    environment = _named(environment or obj[0], "config set")
    config_path = _given(config_path, obj[1])
    change = ConfigChange(assignments=assignments, restart=not no_restart, wait=wait)
    with naming_environment(environment, config_path):
        done = config_change(pipeline_options(config_path), environment, change)
    if not done.restarted:
        why = "--no-restart" if no_restart else "nothing is deployed yet"
        click.echo(f"procman: not restarted ({why}): the processes read it at their next start")
    return 0


@config.command()
@click.argument("names", nargs=-1, required=True, metavar="KEY...")
@environment_option
@config_option
@no_restart_option
@lock_wait_option
@click.pass_obj
def unset(
    obj: tuple[str | None, Path],
    names: tuple[str, ...],
    environment: str | None,
    config_path: Path,
    no_restart: bool,
    wait: float,
) -> int:
    """Remove variables from shared/.env on every host of ENV (all or none), then restart its
    processes, one host at a time."""
    from procman.commands.environment import ConfigChange, config_change

    environment = _named(environment or obj[0], "config unset")
    config_path = _given(config_path, obj[1])
    change = ConfigChange(unset=names, restart=not no_restart, wait=wait)
    with naming_environment(environment, config_path):
        done = config_change(pipeline_options(config_path), environment, change)
    if done.not_set:
        click.echo(f"procman: warning: not set on any host: {', '.join(done.not_set)}", err=True)
    if not done.restarted:
        why = "--no-restart" if no_restart else "nothing is deployed yet"
        click.echo(f"procman: not restarted ({why}): the processes read it at their next start")
    return 0


def _named(environment: str | None, command: str) -> str:
    if environment is None:
        raise UsageError(
            f"procman {command}: which environment? (config is per deployed environment)",
            f"name it with --env ENV, like procman {command} --env staging",
        )
    return environment


def _given(config_path: Path, group_config_path: Path) -> Path:
    """-C given after the subcommand, else before it."""
    return config_path if config_path != DEFAULT_CONFIG else group_config_path
