"""``procman hosts trust --env ENV``: read each host's key, then (the CLI having shown the
fingerprints and had them confirmed) record the new ones in procman.yml's known_hosts file."""

from __future__ import annotations

from pathlib import Path

from procman.commands.observe import EnvironmentOptions, load_environment
from procman.deploy.config import Host
from procman.deploy.trust import HostKeyData, TrustPlan, plan_trust, record


def plan(options: EnvironmentOptions) -> TrustPlan:
    """Every host's key and whether the known_hosts file has it; nothing is written."""
    from procman.deploy.transport.ssh import (
        lookup_ssh_config,
        offered_host_key,
        recorded_keys,
    )

    config, environment = load_environment(options)
    user_config = Path("~/.ssh/config").expanduser()

    def read_key(host: Host, label: str) -> HostKeyData:
        found = lookup_ssh_config(user_config, host.host.strip("[]"))
        port = host.port if host.port != 22 or found.port is None else found.port
        return offered_host_key(found.hostname, port, label)

    return plan_trust(config, environment, read_key, recorded_keys)


def trust(chosen: TrustPlan) -> int:
    """Record the plan's new keys; how many were recorded."""
    record(chosen.known_hosts, chosen.new)
    return len(chosen.new)
