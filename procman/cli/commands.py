"""Command-line parsing only: each command builds options and calls one library function."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from procman import __version__
from procman.cli.lazy import LazyGroup
from procman.errors import UsageError
from procman.settings import AppOptions
from procman.supervisor.output import StreamStyle

F = TypeVar("F", bound=Callable[..., Any])


MAX_SECONDS = 7 * 24 * 3600
"""Above about 24.8 days a wait no longer fits a poll timeout; a week is plenty."""


class Seconds(click.FloatRange):
    """Seconds, 0 or more, finite (``nan`` or ``inf`` would never fire) and at most a week."""

    def __init__(self) -> None:
        super().__init__(min=0)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        seconds = super().convert(value, param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        if seconds > MAX_SECONDS:
            self.fail(f"{value!r} is more than a week ({MAX_SECONDS} seconds)", param, ctx)
        return seconds


LOCK_WAIT_HELP = "wait this long for another deploy's lock [default: fail at once]."
lock_wait_option = click.option(
    "--wait", type=Seconds(), default=0.0, metavar="SECONDS", help=LOCK_WAIT_HELP.capitalize()
)
"""``--wait`` of the commands that take the deploy lock."""
env_lock_wait_option = click.option(
    "--wait", type=Seconds(), default=None, metavar="SECONDS", help=f"With --env: {LOCK_WAIT_HELP}"
)
"""``--wait`` of the commands that take the deploy lock only with ``--env``."""

procfile_option = click.option(
    "-f", "--procfile", type=click.Path(path_type=Path), help="Procfile to use."
)
root_option = click.option(
    "-d",
    "--root",
    type=click.Path(path_type=Path),
    help="App directory [default: the Procfile's directory].",
)


class QuietAlias(click.Option):
    """An option whose last long spelling is accepted but left out of ``--help`` (an alias kept
    for compatibility, or for a spelling other commands use)."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        if record is None:
            return None
        quiet = self.opts[-1]
        shown = ", ".join(o for o in self.opts if o != quiet)
        metavar = self.make_metavar(ctx) if not self.is_flag else ""
        return (f"{shown} {metavar}".rstrip(), record[1])


env_option = click.option(
    "-e",
    "--env",
    "--env-file",
    "env_files",
    cls=QuietAlias,
    multiple=True,
    help="Env file to load; repeat, or separate with commas; later files win "
    "[default: .env in the app directory, if present].",
)
env_file_option = click.option(
    "-e",
    "--env-file",
    "env_files",
    multiple=True,
    metavar="FILE",
    help="Env file to load; repeat, or separate with commas; later files win "
    "[default: .env in the app directory, if present].",
)
"""The env file option of a command that also works on a deployed environment, where ``--env``
names the environment (``procman.cli.environments``)."""
port_option = click.option(
    "-p",
    "--port",
    type=int,
    help="Base port [default: PORT from the env files, else $PORT, else 5000].",
)
"""The app options, declared once: every command that works on an app takes them alike."""


def app_options(command: F) -> F:
    """-f, -d, -e and -p, shared by every command that works on an app here only (one that also
    works on a deployed environment takes ``procman.cli.environments.environment_app_options``)."""
    return with_options(command, [procfile_option, root_option, env_option, port_option])


def app_options_env_file(command: F) -> F:
    """-f, -d, -e/--env-file and -p: the app options of a command that also takes ``--env ENV``
    for a deployed environment (logs, scale, restart, run)."""
    return with_options(command, [procfile_option, root_option, env_file_option, port_option])


def with_options(command: F, decorators: Sequence[Callable[[Any], Any]]) -> F:
    """``command`` with click options applied in the order listed (as stacked decorators)."""
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def to_app_options(
    procfile: Path | None, root: Path | None, env_files: tuple[str, ...], port: int | None
) -> AppOptions:
    paths = tuple(Path(p) for spec in env_files for p in spec.split(",") if p.strip())
    if env_files and not paths:
        raise UsageError("-e/--env: no file name given", "name an env file, like -e .env")
    return AppOptions(procfile=procfile, root=root, env_files=paths, port=port)


LAZY_COMMANDS = {
    **{name: f"procman.cli.control:{name}" for name in ("scale", "ps", "restart", "stop", "logs")},
    **{name: f"procman.cli.deploy:{name}" for name in ("deploy", "releases", "rollback", "unlock")},
    "hosts": "procman.cli.hosts:hosts",
    "run": "procman.cli.run:run",
    "config": "procman.cli.config:config",
    "jobs": "procman.cli.jobs:jobs",
    "dashboard": "procman.cli.dashboard:dashboard",
    "worker": "procman.cli.queues:worker",
    "export": "procman.cli.export:export",
    "pipeline": "procman.cli.pipeline:pipeline",
    "init": "procman.cli.init:init",
}
"""The commands defined outside this module, imported only when used."""


@click.group(
    cls=LazyGroup,
    lazy_commands=LAZY_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, "-V", "--version", prog_name="procman")
@click.option("--traceback", is_flag=True, help="Show a traceback on errors (for bug reports).")
def cli(traceback: bool) -> None:
    """Run a Procfile app: locally with one log stream, and on your own servers."""


@cli.command()
@app_options
@click.argument("names", nargs=-1)
@click.option(
    "-m",
    "--formation",
    help="Instances per type, like 'all=1,web=2,worker=3' [default: one of each].",
)
@click.option("-c", "--concurrency", help="Same as --formation (honcho's spelling).")
@click.option(
    "-t",
    "--timeout",
    type=Seconds(),
    default=5.0,
    show_default=True,
    help="Seconds between SIGTERM and SIGKILL when stopping.",
)
@click.option(
    "--color/--no-color",
    default=None,
    help="Colour the prefixes [default: on a terminal, unless NO_COLOR is set].",
)
@click.option("--timestamp/--no-timestamp", default=True, help="Show HH:MM:SS on each line.")
@click.option("--prefix/--no-prefix", default=True, help="Show 'time name |' on each line.")
@click.option("--tty", is_flag=True, help="Run each process on its own pseudo-terminal.")
@click.option(
    "--restart",
    "restart_types",
    metavar="TYPES",
    help="Restart these types (comma-separated, or 'all') when they exit, with backoff.",
)
@click.option(
    "--can-die",
    "can_die_types",
    metavar="TYPES",
    help="Let these types (comma-separated, or 'all') exit without stopping the rest.",
)
@click.option(
    "--redis-url",
    metavar="URL",
    help="Redis for every process (as REDIS_URL) [default: REDIS_PROVIDER or REDIS_URL; "
    "else, for an app with queues, a private redis-server].",
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Also show what procman's own children log in full (the private Redis, RQ's lines).",
)
@click.option(
    "--log-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the log stream to this file instead of standard output, rotated (FILE.1, "
    "FILE.2, ...) so that it never takes more than (--log-backups + 1) x --log-max-bytes.",
)
@click.option(
    "--log-max-bytes",
    type=click.IntRange(min=1),
    default=10 * 1024 * 1024,
    show_default=True,
    metavar="BYTES",
    help="With --log-file: rotate the file before it passes this size.",
)
@click.option(
    "--log-backups",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    metavar="N",
    help="With --log-file: rotated files to keep (the oldest is deleted).",
)
def start(
    procfile: Path | None,
    root: Path | None,
    env_files: tuple[str, ...],
    port: int | None,
    names: tuple[str, ...],
    formation: str | None,
    concurrency: str | None,
    timeout: float,
    color: bool | None,
    timestamp: bool,
    prefix: bool,
    tty: bool,
    restart_types: str | None,
    can_die_types: str | None,
    redis_url: str | None,
    verbose: bool,
    log_file: Path | None,
    log_max_bytes: int,
    log_backups: int,
) -> int:
    """Start the app's processes (all types, or the NAMES given)."""
    from procman.commands.start import LogFileOptions, StartOptions
    from procman.commands.start import start as start_app

    if color is None:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    options = StartOptions(
        app=to_app_options(procfile, root, env_files, port),
        names=names,
        formation=formation if formation is not None else concurrency,
        formation_option="formation" if formation is not None else "concurrency",
        stop_timeout=timeout,
        style=StreamStyle(color=color, timestamp=timestamp, prefix=prefix),
        tty=tty,
        restart=restart_types,
        can_die=can_die_types,
        redis_url=redis_url,
        verbose=verbose,
        log_file=LogFileOptions(log_file, log_max_bytes, log_backups) if log_file else None,
    )
    return start_app(options)


@cli.command()
@app_options
@click.option(
    "-C",
    "--config",
    type=click.Path(path_type=Path),
    help="Queue YAML to validate [default: queues.yml in the app directory, if present].",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was parsed, as JSON.")
def check(
    procfile: Path | None,
    root: Path | None,
    env_files: tuple[str, ...],
    port: int | None,
    config: Path | None,
    as_json: bool,
) -> int:
    """Validate the Procfile, env files, queue YAML and procman.yml without running anything."""
    from procman.commands.check import check as check_app

    report = check_app(to_app_options(procfile, root, env_files, port), config)
    for warning in report.warnings:
        click.echo(f"procman: warning: {warning}", err=True)
    if as_json:
        import json

        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        click.echo(report.summary())
    return 0
