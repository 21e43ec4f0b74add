"""``procman ps --env ENV`` and ``procman logs --env ENV``: the processes and the log streams of a
deployed environment's hosts (``procman.deploy.observe``), procman.yml loaded and checked first."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from procman.deploy.config import DeployConfig, Environment, load_deploy_config
from procman.deploy.connect import ssh_connector
from procman.deploy.host import DeployHost
from procman.deploy.hostgroup import HostGroup
from procman.deploy.observe import HostProcesses, LogStreams, group_of, open_logs, processes
from procman.procfile import load_procfile


@dataclass(frozen=True, slots=True)
class EnvironmentOptions:
    """A deployed environment of procman.yml."""

    config_path: Path
    name: str


def load_environment(options: EnvironmentOptions) -> tuple[DeployConfig, Environment]:
    """procman.yml (checked against the Procfile beside it) and the environment named."""
    procfile_path = options.config_path.parent / "Procfile"
    procfile = load_procfile(procfile_path) if procfile_path.is_file() else None
    config = load_deploy_config(options.config_path, procfile)
    return config, config.environment(options.name)


@contextmanager
def environment_hosts(options: EnvironmentOptions) -> Iterator[HostGroup[DeployHost]]:
    """The environment's hosts, each connecting on first use, closed at the end."""
    config, environment = load_environment(options)
    with group_of(config, environment, ssh_connector(config)) as hosts:
        yield hosts


def ps(options: EnvironmentOptions) -> list[HostProcesses]:
    """Every host's instances, in procman.yml's order; a host that did not answer is listed with
    what went wrong."""
    with environment_hosts(options) as hosts:
        return processes(hosts)


@contextmanager
def logs(
    options: EnvironmentOptions, targets: Sequence[str], lines: int, follow: bool
) -> Iterator[LogStreams]:
    """The log streams of every host, open while inside; closed (the readers on the hosts end,
    the connections close) on leaving, on Ctrl-C too."""
    with environment_hosts(options) as hosts:
        streams = open_logs(hosts, lines, follow, targets)
        try:
            yield streams
        finally:
            streams.close()
