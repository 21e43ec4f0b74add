"""``procman run``: a command once with the app's environment, here (foreman run) or, with
``--env ENV``, on a host of a deployed environment (heroku run)."""

from __future__ import annotations

from pathlib import Path

import click

from procman.cli.commands import to_app_options
from procman.cli.environments import environment_app_options, local_only, naming_environment


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@environment_app_options
@click.option(
    "--host",
    metavar="HOST",
    help="With --env: the host to run on [default: the first with the role of a COMMAND that "
    "names a Procfile type, else the first].",
)
@click.option(
    "--tty/--no-tty",
    default=None,
    help="With --env: run on a pseudo-terminal [default: when standard input and output are "
    "terminals].",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run(
    procfile: Path | None,
    root: Path | None,
    env_files: tuple[str, ...],
    port: int | None,
    environment: str | None,
    config_path: Path,
    host: str | None,
    tty: bool | None,
    command: tuple[str, ...],
) -> int:
    """Run COMMAND once with the app's environment (.env, PORT), like foreman run. With --env,
    on a host of the deployed environment, in its current release with its variables (procman.yml
    env and the host's shared/.env), like heroku run; exits with COMMAND's exit status."""
    if environment is not None:
        from procman.commands.observe import EnvironmentOptions
        from procman.commands.oneoff import RunOptions
        from procman.commands.oneoff import run as run_remote

        local_only(
            environment, {"-f": procfile, "-d": root, "-e/--env-file": env_files, "-p": port}
        )
        with naming_environment(environment, config_path):
            options = RunOptions(EnvironmentOptions(config_path, environment), command, host, tty)
            return run_remote(options)
    if host is not None or tty is not None:
        from procman.errors import UsageError

        raise UsageError(
            "--host and --tty are for --env (a deployed environment)", "leave them out"
        )
    from procman.commands.run import run as run_command

    run_command(to_app_options(procfile, root, env_files, port), command)
