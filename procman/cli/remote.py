"""What ``ps --env``, ``logs --env`` and ``run --env`` print and return: a deployed environment
seen from here (the library calls are in ``procman.commands.observe`` and ``.oneoff``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from procman.cli.control import format_duration, format_table
from procman.supervisor.output import PALETTE, RESET, SYSTEM, SYSTEM_COLOR

REMOTE_COLUMNS = ("host", "name", "pid", "state", "uptime", "restarts", "release")


def ps_environment(environment: str, config_path: Path, as_json: bool) -> int:
    """``procman ps --env ENV``: exit 1 when a host did not answer (it is listed all the same)."""
    from procman.commands.observe import EnvironmentOptions, ps

    hosts = ps(EnvironmentOptions(config_path, environment))
    if as_json:
        click.echo(json.dumps({"environment": environment,
                               "hosts": [h.as_json() for h in hosts]}, indent=2))  # fmt: skip
    else:
        rows = [[column.upper() for column in REMOTE_COLUMNS]]
        for host in hosts:
            if host.error is not None:
                rows.append([host.host, "-", "-", "no answer", "-", "-", "-"])
            elif not host.processes:
                rows.append([host.host, "-", "-", "not running", "-", "-", host.current or "-"])
            for process in host.processes:
                rows.append(
                    [
                        host.host,
                        process["name"],
                        str(process["pid"] or "-"),
                        process["state"],
                        format_duration(process["uptime"]),
                        str(process["restarts"]),
                        process["release"],
                    ]
                )
        click.echo(format_table(rows))
    for host in hosts:
        if host.error is not None:
            click.echo(f"procman: {host.error}", err=True)
    return 0 if all(host.answered for host in hosts) else 1


def logs_environment(
    environment: str,
    config_path: Path,
    targets: tuple[str, ...],
    lines: int,
    follow: bool,
    color: bool,
) -> int:
    """``procman logs --env ENV``: every host's lines as one stream, ``HH:MM:SS host name | text``,
    until the streams end or Ctrl-C (which closes them: exit 130, from the error funnel)."""
    from procman.commands.observe import EnvironmentOptions
    from procman.commands.observe import logs as open_logs

    out = sys.stdout
    problems: list[str] = []

    def tell(problem: str) -> None:
        problems.append(problem)
        click.echo(f"procman: {problem}", err=True)

    width = 0
    types: list[str] = []
    with open_logs(EnvironmentOptions(config_path, environment), targets, lines, follow) as streams:
        for line in streams.lines(tell):
            name = f"{line.host} {line.name}"
            width = max(width, len(name))
            prefix = f"{line.time} {name.ljust(width)} | "
            if color:
                if line.type not in types:
                    types.append(line.type)
                shade = (
                    SYSTEM_COLOR if line.name == SYSTEM else PALETTE[types.index(line.type) % 12]
                ).decode()
                prefix = f"{shade}{prefix}{RESET.decode()}"
            out.write(prefix + line.text)
            out.flush()
    return 1 if problems else 0
