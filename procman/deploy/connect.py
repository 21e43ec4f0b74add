"""Reaching an environment's hosts: connections as procman.yml describes them, and the
environment's hosts as one ``HostGroup`` of ``DeployHost``s, each checked before use."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from procman.deploy.config import (
    DEFAULT_SSH_PORT,
    DeployConfig,
    DeployConfigError,
    Environment,
    Host,
)
from procman.deploy.host import DeployHost
from procman.deploy.hostgroup import HostGroup
from procman.deploy.progress import Progress, said_on_interrupt
from procman.deploy.transport.base import Transport

Connect = Callable[[Host, Environment], Transport]
Say = Callable[[str], None]


def ssh_connector(config: DeployConfig) -> Connect:
    """Connections as procman.yml describes them: strict host keys (``~/.ssh/known_hosts`` and
    the project's ``known_hosts`` file), keys from the agent or ``identity_file``. What
    procman.yml leaves out (the address behind an alias, user, port, identity file) comes from
    ``~/.ssh/config`` when it has the host."""
    known = config.known_hosts_path()
    if known is not None and not known.is_file():
        raise DeployConfigError(
            f"{config.path}: known_hosts: {known} does not exist",
            f"record the hosts' keys in it (ssh-keyscan HOST >> {known}), or remove the key",
        )
    user_config = Path("~/.ssh/config").expanduser()

    def connect(host: Host, environment: Environment) -> Transport:
        from procman.deploy.transport.ssh import SSHTransport, lookup_ssh_config

        found = lookup_ssh_config(user_config, host.host.strip("[]"))
        identity = environment.identity_file or found.identity_file
        return SSHTransport(
            found.hostname,
            host.port if host.port != DEFAULT_SSH_PORT or found.port is None else found.port,
            host.user or found.user,
            known_hosts=[known] if known is not None else [],
            identity_file=Path(identity).expanduser() if identity else None,
        )

    return connect


@contextmanager
def environment_hosts(
    config: DeployConfig,
    environment: Environment,
    connect: Connect,
    say: Say,
    progress: Progress,
    *,
    read_only: bool = False,
    show_progress: bool = False,
    check: bool = True,
) -> Iterator[HostGroup[DeployHost]]:
    """The hosts of ``environment`` as a group, one connection each, every host checked (tools;
    the layout made, unless only reading from them); closed at the end. Meanwhile, long steps
    show progress (with ``show_progress``), and a Ctrl-C says what it waits for. Without
    ``check``, nothing is run yet and no host is refused: for a command that reports each host's
    outcome itself (a host that does not answer listed as such)."""
    hosts = HostGroup(
        [
            DeployHost(host, environment, connect(host, environment), progress, config.shared)
            for host in environment.hosts
        ]
    )
    with (
        hosts,
        progress.reported(say if show_progress else None),
        said_on_interrupt(say, progress),
    ):
        if check:
            checked = hosts.run(lambda host: host.preflight(make_layout=not read_only))
            checked.raise_on_failure("nothing was changed", say)
        yield hosts
