"""``procman hosts trust``: each host's key read from the host, shown with its fingerprint, and,
once the user has confirmed, recorded in the known_hosts file procman.yml names.

Nothing else ever accepts an unknown key (the SSH transport refuses it); a key that differs from
the one recorded is never replaced here either: that is the warning sign of an intercepted
connection, and the user removes the old key by hand if the change is expected.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Protocol

from procman.deploy.config import DeployConfig, DeployConfigError, Environment, Host
from procman.deploy.hostgroup import HostGroup
from procman.errors import ProcmanError


class KeyState(Enum):
    NEW = "new"
    """Not recorded: recorded on confirmation."""
    KNOWN = "known"
    """Recorded already, the same key."""
    CHANGED = "changed"
    """Recorded with a different key: refused, never replaced."""


@dataclass(frozen=True, slots=True)
class OfferedKey:
    host: str
    """The host's label, for messages."""
    name: str
    """As known_hosts records it."""
    key_type: str
    fingerprint: str
    line: str
    """The known_hosts line that trusts it."""
    state: KeyState


@dataclass(frozen=True, slots=True)
class TrustPlan:
    known_hosts: Path
    keys: tuple[OfferedKey, ...]
    unreachable: tuple[str, ...]
    """``host: why`` for hosts whose key could not be read."""

    @property
    def new(self) -> list[OfferedKey]:
        return [key for key in self.keys if key.state is KeyState.NEW]

    @property
    def changed(self) -> list[OfferedKey]:
        return [key for key in self.keys if key.state is KeyState.CHANGED]


class TrustError(ProcmanError):
    """Keys cannot be recorded: no known_hosts file named, or it cannot be written."""


class HostKeyData(Protocol):
    """A key as a host offered it (``transport.ssh.HostKey``)."""

    @property
    def name(self) -> str: ...
    @property
    def key_type(self) -> str: ...
    @property
    def base64(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...


ReadKey = Callable[[Host, str], HostKeyData]
"""Reads the key a host offers; the host's label for messages second."""


def known_hosts_file(config: DeployConfig) -> Path:
    path = config.known_hosts_path()
    if path is None:
        raise DeployConfigError(
            f"{config.path}: known_hosts: no file named, so the hosts' keys have nowhere to go",
            "add a line like 'known_hosts: known_hosts' to it (a file kept with the project, "
            "that procman checks after ~/.ssh/known_hosts)",
        )
    return path


class _Member:
    def __init__(self, host: Host) -> None:
        self.host = host

    @property
    def label(self) -> str:
        return self.host.label()

    def close(self) -> None:
        pass


def plan_trust(
    config: DeployConfig,
    environment: Environment,
    read_key: ReadKey,
    recorded: Callable[[Path, str], dict[str, str]],
) -> TrustPlan:
    """Read every host's key at once and compare it with what ``known_hosts`` records."""
    path = known_hosts_file(config)
    members = HostGroup([_Member(host) for host in environment.hosts])
    result = members.run(lambda member: read_key(member.host, member.label))
    keys: list[OfferedKey] = []
    for member, outcome in zip(result.ran, result.outcomes, strict=True):
        if outcome.value is None:
            continue
        offered = outcome.value
        known = recorded(path, offered.name)
        if offered.key_type not in known:
            state = KeyState.CHANGED if known else KeyState.NEW
        else:
            state = (
                KeyState.KNOWN if known[offered.key_type] == offered.base64 else KeyState.CHANGED
            )
        line = f"{offered.name} {offered.key_type} {offered.base64}"
        keys.append(
            OfferedKey(
                member.label, offered.name, offered.key_type, offered.fingerprint, line, state
            )
        )
    unreachable = tuple(str(error) for error in result.errors)
    return TrustPlan(path, tuple(keys), unreachable)


def record(path: Path, keys: Sequence[OfferedKey]) -> None:
    """Append the keys' lines to ``path`` (created, mode 0644, when missing); only NEW keys."""
    lines = "".join(f"{key.line}\n" for key in keys if key.state is KeyState.NEW)
    if not lines:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        with os.fdopen(descriptor, "a") as file:
            if file.tell() > 0 and not path.read_bytes().endswith(b"\n"):
                file.write("\n")
            file.write(lines)
    except OSError as error:
        raise TrustError(
            f"cannot write {path} ({error.strerror})", "check that the directory is writable"
        ) from None
