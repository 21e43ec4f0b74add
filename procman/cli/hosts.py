"""``procman hosts trust --env ENV``: record a deployed environment's host keys, once confirmed."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from procman.cli.environments import naming_environment
from procman.errors import UsageError


@click.group()
def hosts() -> None:
    """The hosts of a deployed environment (procman.yml)."""


@hosts.command()
@click.option("--env", "environment", metavar="ENV", required=True, help="The environment.")
@click.option(
    "-C",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=Path("procman.yml"),
    show_default=True,
    help="The deploy file.",
)
@click.option("-y", "--yes", is_flag=True, help="Record the new keys without asking.")
def trust(environment: str, config_path: Path, yes: bool) -> int:
    """Show each host's key fingerprint and, once confirmed, record the new ones in the
    known_hosts file procman.yml names. A key that differs from the one recorded is never
    replaced."""
    from procman.commands.observe import EnvironmentOptions
    from procman.commands.trust import plan, trust

    with naming_environment(environment, config_path):
        found = plan(EnvironmentOptions(config_path, environment))
    for key in found.keys:
        note = {"new": "new", "known": "already trusted", "changed": "CHANGED: not trusted"}
        click.echo(f"{key.host}: {key.key_type} {key.fingerprint} ({note[key.state.value]})")
    for problem in found.unreachable:
        click.echo(f"procman: error: {problem}", err=True)
    for key in found.changed:
        click.echo(
            f"procman: error: {key.host}: the key differs from the one {found.known_hosts} "
            f"records for {key.name}; it is not replaced (the host was reinstalled, or someone "
            f"is intercepting). If the change is expected: ssh-keygen -R '{key.name}' -f "
            f"{found.known_hosts}, then run this again",
            err=True,
        )
    new = found.new
    if new:
        keys = f"{len(new)} new key{'s' if len(new) > 1 else ''}"
        question = f"Record {keys} in {found.known_hosts}?"
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(
                    f"{keys} not recorded in {found.known_hosts}: no terminal to confirm them on",
                    "check the fingerprints above with the hosts' admin, then pass --yes",
                )
            if not click.confirm(question, default=False):
                click.echo("nothing recorded")
                return 1
        count = trust(found)
        click.echo(f"recorded {count} key{'s' if count > 1 else ''} in {found.known_hosts}")
    elif not found.changed and not found.unreachable:
        click.echo(f"every host is trusted already ({found.known_hosts})")
    return 1 if found.changed or found.unreachable else 0
