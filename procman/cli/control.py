"""Client commands for a running ``procman start``: scale, ps, restart, stop, logs."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from procman.cli.commands import Seconds, app_options, env_lock_wait_option, to_app_options
from procman.cli.environments import (
    environment_app_options,
    local_only,
    naming_environment,
)
from procman.errors import UsageError
from procman.formation import format_formation
from procman.supervisor.output import Prefixer, StreamStyle

EnvFiles = tuple[str, ...]


@click.command()
@environment_app_options
@click.argument("changes", nargs=-1, required=True)
@env_lock_wait_option
def scale(
    procfile: Path | None,
    root: Path | None,
    env_files: EnvFiles,
    port: int | None,
    environment: str | None,
    config_path: Path,
    changes: tuple[str, ...],
    wait: float | None,
) -> int:
    """Change the formation: TYPE=N, TYPE+N or TYPE-N (live, and saved for the next start).
    With --env, of a deployed environment: N counts its hosts together (spread evenly over the
    hosts that run TYPE), kept by the environment for every later start, deploy and promotion."""
    if environment is not None:
        from procman.cli.deploy import pipeline_options
        from procman.commands.environment import scale_environment

        local_only(environment, {"-f": procfile, "-d": root, "-e/--env-file": env_files,
                                 "-p": port})  # fmt: skip
        with naming_environment(environment, config_path):
            done = scale_environment(pipeline_options(config_path), environment, changes, wait or 0)
        click.echo(format_formation(done.formation))
        for host, counts in done.per_host.items():
            state = "" if host in done.live or not counts else " (not running: at its next start)"
            click.echo(f"  {host}: {format_formation(counts) or 'none of these types'}{state}")
        return 0
    if wait is not None:
        raise UsageError("--wait is for --env (a deploy lock)", "leave it out")
    from procman.commands.control import scale as scale_app

    result = scale_app(to_app_options(procfile, root, env_files, port), changes)
    click.echo(format_formation(result.formation))
    if not result.live:
        click.echo("procman is not running here: saved for the next 'procman start'")
    return 0


@click.command()
@environment_app_options
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def ps(
    procfile: Path | None,
    root: Path | None,
    env_files: EnvFiles,
    port: int | None,
    environment: str | None,
    config_path: Path,
    as_json: bool,
) -> int:
    """List every instance: pid, state, uptime, restarts, port, command. With --env, every
    instance on every host of the deployed environment (a host that does not answer is listed as
    such, and the exit status is 1)."""
    from procman.commands.control import ps as list_processes

    if environment is not None:
        from procman.cli.remote import ps_environment

        local_only(
            environment, {"-f": procfile, "-d": root, "-e/--env-file": env_files, "-p": port}
        )
        with naming_environment(environment, config_path):
            return ps_environment(environment, config_path, as_json)
    processes = list_processes(to_app_options(procfile, root, env_files, port))
    if as_json:
        click.echo(json.dumps(processes, indent=2))
    else:
        click.echo(render_table(processes))
    return 0


@click.command()
@environment_app_options
@click.argument("targets", nargs=-1)
@env_lock_wait_option
def restart(
    procfile: Path | None,
    root: Path | None,
    env_files: EnvFiles,
    port: int | None,
    environment: str | None,
    config_path: Path,
    targets: tuple[str, ...],
    wait: float | None,
) -> int:
    """Restart instances (web.1) or types (web); all when none is named. With --env, the
    deployed environment's current release on every host instead (of the TYPES named, if any),
    gracefully, one host at a time when the environment is rolling."""
    from procman.commands.control import restart as restart_processes

    if environment is not None:
        from procman.cli.deploy import restart_environment

        given = {"-f": procfile, "-d": root, "-e/--env-file": env_files, "-p": port}
        local_only(environment, given)
        with naming_environment(environment, config_path):
            return restart_environment(environment, config_path, wait or 0.0, targets)
    if wait is not None:
        raise UsageError("--wait is for --env (a deploy lock)", "leave it out")
    names = restart_processes(to_app_options(procfile, root, env_files, port), targets)
    click.echo(f"restarting {', '.join(names) or 'nothing'}")
    return 0


@click.command()
@app_options
@click.argument("targets", nargs=-1)
@click.option(
    "--wait",
    "wait",
    type=Seconds(),
    default=None,
    metavar="SECONDS",
    help="Return only once they have stopped (the app: once procman has exited); fail after "
    "SECONDS.",
)
def stop(
    procfile: Path | None,
    root: Path | None,
    env_files: EnvFiles,
    port: int | None,
    targets: tuple[str, ...],
    wait: float | None,
) -> int:
    """Stop instances (web.1) or types (web), keeping procman running; with none, stop the app."""
    from procman.commands.control import stop as stop_processes
    from procman.commands.control import wait_stopped

    options = to_app_options(procfile, root, env_files, port)
    names = stop_processes(options, targets)
    click.echo("stopping the app" if names is None else f"stopping {', '.join(names) or 'nothing'}")
    if wait is not None:
        wait_stopped(options, names, wait)
        click.echo("stopped")
    return 0


@click.command()
@environment_app_options
@click.argument("targets", nargs=-1)
@click.option(
    "-n",
    "--lines",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="Recent lines to show first.",
)
@click.option("--follow/--no-follow", default=True, help="Keep streaming new lines [default: on].")
@click.option(
    "--color/--no-color",
    default=None,
    help="Colour the prefixes [default: on a terminal, unless NO_COLOR is set].",
)
def logs(
    procfile: Path | None,
    root: Path | None,
    env_files: EnvFiles,
    port: int | None,
    environment: str | None,
    config_path: Path,
    targets: tuple[str, ...],
    lines: int,
    follow: bool,
    color: bool | None,
) -> int:
    """Show the running app's log stream (of NAMES or TYPES only, if given) until Ctrl-C. With
    --env, the log streams of every host of the deployed environment as one, each line's
    instance prefixed with its host (-n lines of each host first)."""
    from procman.commands.control import logs as read_logs

    if environment is not None:
        from procman.cli.remote import logs_environment

        local_only(
            environment, {"-f": procfile, "-d": root, "-e/--env-file": env_files, "-p": port}
        )
        with naming_environment(environment, config_path):
            return logs_environment(
                environment, config_path, targets, lines, follow, _want_color(color)
            )
    stream = read_logs(to_app_options(procfile, root, env_files, port), targets, lines, follow)
    prefixer = Prefixer(StreamStyle(color=_want_color(color)))
    names = list(stream.names)
    prefixer.set_names(names, stream.types)
    out = sys.stdout.buffer
    for entry in stream.entries:
        if entry["name"] not in names:
            names.append(entry["name"])  # scaled up since: widen the column from here on
            prefixer.set_names(names, stream.types)
        out.write(
            prefixer.render(entry["name"], entry["type"], entry["text"].encode(), entry["time"])
        )
        out.flush()
    return 0


def _want_color(color: bool | None) -> bool:
    if color is not None:
        return color
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


COLUMNS = ("name", "pid", "state", "uptime", "restarts", "port", "command")


def render_table(processes: list[dict[str, Any]]) -> str:
    rows = [[column.upper() for column in COLUMNS]]
    for process in processes:
        state = process["state"]
        last_exit = process["last_exit"]
        if last_exit is not None and state in ("crashed", "restarting", "exited"):
            how = f"exit {last_exit}" if last_exit >= 0 else signal.Signals(-last_exit).name
            state = f"{state} ({how})"
        rows.append(
            [
                process["name"],
                str(process["pid"] or "-"),
                state,
                format_duration(process["uptime"]),
                str(process["restarts"]),
                str(process["port"]),
                process["command"],
            ]
        )
    return format_table(rows)


def format_table(rows: list[list[str]]) -> str:
    """Rows of cells (a header first) as aligned columns; the last column is not padded, so a
    long command or message runs on without trailing blanks."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  "
        + row[-1]
        for row in rows
    )


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
