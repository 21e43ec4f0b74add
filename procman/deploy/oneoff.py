"""``procman run --env ENV COMMAND...`` (heroku run): a one-off command on one host of a deployed
environment, in the release ``current`` points at, with the environment's variables (procman.yml's
``env`` and the host's ``shared/.env``, as the app's processes have them), its exit status passed
back.

The command runs through the release's own ``procman run`` (the same environment, ``PORT`` and
Procfile type names as a local ``procman run``), on a pseudo-terminal when this process has a
terminal, so that Ctrl-C and a full-screen program work as in an SSH session."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from procman.deploy import steps
from procman.deploy.config import Environment, Host
from procman.deploy.host import DeployHost
from procman.deploy.transport.base import Terminal
from procman.errors import ProcmanError, UsageError

START_TIMEOUT = 30.0
"""Seconds for the host to start the command (its SSH session open)."""


class OneOffError(ProcmanError):
    """The one-off command cannot be run: no host for it, or no release to run it in."""


def choose_host(environment: Environment, command: Sequence[str], host: str | None) -> Host:
    """``host`` (a host of the environment, by name or label), else the first host that runs
    the Procfile type ``command`` names (a lone type name, as ``procman run web`` runs web's
    command), else the environment's first host."""
    if host is not None:
        for candidate in environment.hosts:
            if host in (candidate.host, candidate.label()):
                return candidate
        known = ", ".join(h.label() for h in environment.hosts)
        raise UsageError(
            f"{environment.name} has no host {host!r} (hosts: {known})", "name one of them"
        )
    if len(command) == 1:
        for candidate in environment.hosts:
            if command[0] in candidate.roles:
                return candidate
    return environment.hosts[0]


def run_one_off(
    host: DeployHost,
    command: Sequence[str],
    terminal: Terminal | None,
    size: Callable[[], tuple[int, int]] | None = None,
) -> int:
    """Run ``command`` in the current release on ``host``; its exit status."""
    if not command:
        raise UsageError("no command given", "write it after run, like 'procman run python -V'")
    release_id = host.current()
    if release_id is None:
        raise OneOffError(
            f"{host.label}: no release is current in {host.root}, so there is nothing to run in",
            f"deploy {host.environment.name} first",
        )
    argv = steps.procman_in_release(host.root, release_id, ["run", "--", *command])
    return host.transport.interactive(
        argv,
        terminal=terminal,
        size=size,
        timeout=START_TIMEOUT,
    )
