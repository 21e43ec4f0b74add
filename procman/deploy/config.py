"""The deploy file (``procman.yml``): the app, its pipeline commands and its environments.

Everything is validated before any connection is opened; each problem is reported with the file
and its key path (``procman.yml: environments.production.hosts[1]: ...``), and independent
problems are reported together. Host roles and formation types are checked against the Procfile
when one is given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from procman.deploy.remote_paths import ROOT_HINT, SHARED_HINT, root_problem, shared_problem
from procman.errors import ConfigError, ProcmanError, excerpt, raise_collected
from procman.procfile import Procfile
from procman.textfile import FileWords, read_text
from procman.yamlconfig import KeyPathChecker, describe, is_int, known_keys, load_yaml

DEFAULT_FILE = "procman.yml"
DEFAULT_KEEP_RELEASES = 5
MIN_KEEP_RELEASES = 2
"""The current release and the previous one (rollback's target) are always kept."""
DEFAULT_SSH_PORT = 22
DEFAULT_HEALTHCHECK_PATH = "/"
DEFAULT_HEALTHCHECK_TIMEOUT = 30
"""Seconds for every web instance to answer 2xx after a restart."""

TOP_KEYS = (
    "app",
    "test",
    "build",
    "release",
    "keep_releases",
    "shared",
    "known_hosts",
    "environments",
)
DEFAULT_SHARED = (".env",)
"""Linked from ``shared/`` into every release when present on the host."""
ENVIRONMENT_KEYS = (
    "hosts",
    "path",
    "formation",
    "env",
    "healthcheck",
    "promote_from",
    "rolling",
    "identity_file",
    "user",
)
HOST_KEYS = ("host", "roles", "user", "port")
HEALTHCHECK_KEYS = ("path", "timeout")
# Keys from neighbouring tools (Kamal, Capistrano, Heroku) whose meaning has a different name here.
KEY_HINTS = {
    "service": "app",
    "application": "app",
    "servers": "hosts",
    "server": "hosts",
    "deploy_to": "path",
    "keep": "keep_releases",
    "keep_releases_count": "keep_releases",
    "promote": "promote_from",
    "source": "promote_from",
    "ssh_key": "identity_file",
    "key": "identity_file",
    "keys": "identity_file",
    "ps": "formation",
    "processes": "formation",
    "scale": "formation",
    "health": "healthcheck",
    "health_check": "healthcheck",
    "healthcheck_path": "healthcheck",
    "environment": "env",
    "vars": "env",
    "role": "roles",
    "hostname": "host",
    "username": "user",
    "linked_files": "shared",
    "linked_dirs": "shared",
    "shared_files": "shared",
    "known_hosts_file": "known_hosts",
}

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HOST = re.compile(
    r"(?:(?P<user>[^@\s:\[\]/]+)@)?"
    r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>[0-9]+))?"
)
HOST_EXAMPLE = "write [user@]host[:port], like deploy@web1.example.com or web1.example.com:2222"


class DeployConfigError(ConfigError):
    """procman.yml is wrong: bad syntax, an unknown key, a bad value, a role no Procfile has."""


class UnknownEnvironment(DeployConfigError):
    """A command named an environment procman.yml does not have."""

    def __init__(self, message: str, hint: str, name: str, known: tuple[str, ...]) -> None:
        super().__init__(message, hint)
        self.name = name
        self.known = known


@dataclass(frozen=True, slots=True)
class Host:
    host: str
    """A host name or address (an IPv6 address in brackets)."""
    user: str | None = None
    """The host's own ``user``, else the environment's; None for SSH's default."""
    port: int = DEFAULT_SSH_PORT
    roles: tuple[str, ...] = ()
    """The Procfile types this host runs; empty for every type in the formation."""

    def label(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port != DEFAULT_SSH_PORT else ""
        return f"{user}{self.host}{port}"

    def runs(self, process_type: str) -> bool:
        return not self.roles or process_type in self.roles


@dataclass(frozen=True, slots=True)
class Healthcheck:
    path: str = DEFAULT_HEALTHCHECK_PATH
    timeout: int = DEFAULT_HEALTHCHECK_TIMEOUT


@dataclass(frozen=True, slots=True)
class Environment:
    name: str
    hosts: tuple[Host, ...]
    path: str
    """The directory on each host holding ``releases/``, ``shared/`` and ``current``."""
    formation: Mapping[str, int] | None = None
    """Instances of each Procfile type; None for one of each."""
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    healthcheck: Healthcheck = Healthcheck()
    promote_from: str | None = None
    rolling: bool = False
    identity_file: str | None = None
    user: str | None = None

    def summary(self) -> str:
        count = len(self.hosts)
        promoted = f", promoted from {self.promote_from}" if self.promote_from else ""
        return f"{self.name} ({count} host{'' if count == 1 else 's'}{promoted})"


@dataclass(frozen=True, slots=True)
class DeployConfig:
    path: str
    app: str
    environments: Mapping[str, Environment]
    test: str | None = None
    build: str | None = None
    release: str | None = None
    keep_releases: int = DEFAULT_KEEP_RELEASES
    shared: tuple[str, ...] = DEFAULT_SHARED
    """Paths kept across releases under ``shared/`` and linked into each; a trailing ``/`` marks a
    directory (made when missing)."""
    known_hosts: str | None = None
    """A project known_hosts file, checked after ``~/.ssh/known_hosts`` (relative to this file)."""

    def environment(self, name: str) -> Environment:
        """The environment called ``name``; ``UnknownEnvironment`` lists the ones there are."""
        try:
            return self.environments[name]
        except KeyError:
            known = tuple(self.environments)
            raise UnknownEnvironment(
                f"{self.path}: no environment named {name!r} (environments: {', '.join(known)})",
                "name one of them, or add it under 'environments:'",
                name,
                known,
            ) from None

    def known_hosts_path(self) -> Path | None:
        if self.known_hosts is None:
            return None
        return Path(self.path).parent / Path(self.known_hosts).expanduser()

    def summary(self) -> str:
        return ", ".join(environment.summary() for environment in self.environments.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "app": self.app,
            "test": self.test,
            "build": self.build,
            "release": self.release,
            "keep_releases": self.keep_releases,
            "shared": list(self.shared),
            "known_hosts": self.known_hosts,
            "environments": {
                name: {
                    "hosts": [
                        {"host": h.host, "user": h.user, "port": h.port, "roles": list(h.roles)}
                        for h in environment.hosts
                    ],
                    "path": environment.path,
                    "formation": (
                        dict(environment.formation) if environment.formation is not None else None
                    ),
                    "env": dict(environment.env),
                    "healthcheck": {
                        "path": environment.healthcheck.path,
                        "timeout": environment.healthcheck.timeout,
                    },
                    "promote_from": environment.promote_from,
                    "rolling": environment.rolling,
                    "identity_file": environment.identity_file,
                    "user": environment.user,
                }
                for name, environment in self.environments.items()
            },
        }


def default_path(app_dir: Path) -> Path:
    return app_dir / DEFAULT_FILE


DEPLOY_FILE_WORDS = FileWords(
    missing="no such file",
    missing_hint="create it in the app directory (see examples/procman.yml and docs/deploy.md)",
    directory_hint="pass the YAML file itself",
)


def load_deploy_config(path: Path, procfile: Procfile | None = None) -> DeployConfig:
    """Read and validate ``procman.yml`` at ``path`` (roles and formation against ``procfile``)."""
    text = read_text(path, DeployConfigError, DEPLOY_FILE_WORDS)
    return parse_deploy_config(text, str(path), procfile)


def parse_deploy_config(
    text: str, path: str = DEFAULT_FILE, procfile: Procfile | None = None
) -> DeployConfig:
    """Validate procman.yml text. With ``procfile``, every role and formation type must name one
    of its process types. Raises DeployConfigError, or ManyErrors with every problem."""
    document = load_yaml(text, path, DeployConfigError)
    if document is None:
        raise DeployConfigError(
            f"{path}: is empty", "give at least 'app' and 'environments' (see examples/procman.yml)"
        )
    errors: list[ProcmanError] = []
    values = known_keys(
        document, path, "", TOP_KEYS, errors, DeployConfigError, key_hints=KEY_HINTS
    )
    if values is None:
        raise_collected(errors)
        raise AssertionError("unreachable")  # pragma: no cover
    types = procfile.names if procfile is not None else None
    check = _Checker(path, errors, types)
    app = check.name("app", values.get("app"), required=True)
    test = check.command("test", values.get("test"))
    build = check.command("build", values.get("build"))
    release = check.command("release", values.get("release"))
    keep = check.keep_releases(values.get("keep_releases", DEFAULT_KEEP_RELEASES))
    shared = check.shared(values.get("shared"))
    known_hosts = check.file_path("known_hosts", values.get("known_hosts"))
    environments = check.environments(values.get("environments"))
    raise_collected(errors)
    assert app is not None and environments is not None
    return DeployConfig(
        path=path,
        app=app,
        environments=MappingProxyType(environments),
        test=test,
        build=build,
        release=release,
        keep_releases=keep,
        shared=shared,
        known_hosts=known_hosts,
    )


def parse_host(text: str) -> tuple[str | None, str, int | None] | None:
    """``[user@]host[:port]`` as (user, host, port); None when it does not parse."""
    match = _HOST.fullmatch(text)
    if match is None or not USER.fullmatch(match["user"] or "x"):
        return None
    port = int(match["port"]) if match["port"] is not None and len(match["port"]) < 6 else None
    if match["port"] is not None and (port is None or not 1 <= port <= 65535):
        return None
    return match["user"], match["host"], port


class _Checker(KeyPathChecker):
    """Validates one document's values, noting each problem in ``errors`` and going on."""

    def __init__(self, path: str, errors: list[ProcmanError], types: list[str] | None) -> None:
        super().__init__(path, errors, DeployConfigError, key_hints=KEY_HINTS)
        self.types = types
        """The Procfile's process types; None when there is no Procfile to check against."""

    def name(self, key_path: str, value: Any, *, required: bool = False) -> str | None:
        if value is None:
            if required:
                self.fail(key_path, "missing", "name the app, like 'app: snippets'")
            return None
        if not isinstance(value, str) or not NAME.fullmatch(value):
            self.fail(
                key_path,
                f"bad name {describe(value)}",
                "use letters, digits, '_', '-' and '.', starting with a letter or digit",
            )
            return None
        return value

    def command(self, key_path: str, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(
                key_path,
                f"must be a shell command (got {describe(value)})",
                f"write it on one line, or leave '{key_path}' out",
            )
            return None
        return value

    def keep_releases(self, value: Any) -> int:
        if not is_int(value) or value < MIN_KEEP_RELEASES:
            self.fail(
                "keep_releases",
                f"must be at least {MIN_KEEP_RELEASES} (got {describe(value)})",
                "the current release and the previous one (rollback's target) are always kept",
            )
            return DEFAULT_KEEP_RELEASES
        return int(value)

    def shared(self, value: Any) -> tuple[str, ...]:
        if value is None:
            return DEFAULT_SHARED
        hint = SHARED_HINT
        if not isinstance(value, list):
            self.fail("shared", f"must be a list of paths (got {describe(value)})", hint)
            return DEFAULT_SHARED
        names: list[str] = []
        for index, item in enumerate(value):
            problem = shared_problem(item) if isinstance(item, str) else "is not a path"
            if problem is not None:
                self.fail(
                    f"shared[{index}]", f"{describe(item)} is not a path inside the release", hint
                )
                continue
            text = item
            if text in names:
                self.fail(f"shared[{index}]", f"{text!r} is listed twice")
                continue
            names.append(text)
        return tuple(names)

    def file_path(self, key_path: str, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip() or "\0" in value:
            self.fail(key_path, f"must be a file path (got {describe(value)})")
            return None
        return value

    def environments(self, value: Any) -> dict[str, Environment] | None:
        hint = "write 'environments:' with one mapping per environment, like 'staging: {...}'"
        if value is None:
            self.fail("environments", "missing", hint)
            return None
        if not isinstance(value, dict) or not value:
            got = "an empty mapping" if value == {} else describe(value)
            self.fail(
                "environments", f"must be a mapping of names to environments (got {got})", hint
            )
            return None
        result: dict[str, Environment] = {}
        valid = True
        for name, entry in value.items():
            if not isinstance(name, str) or not NAME.fullmatch(name):
                self.fail(
                    "environments",
                    f"bad environment name {describe(name)}",
                    "use letters, digits, '_', '-' and '.', like 'staging'",
                )
                valid = False
                continue
            environment = self.environment(name, entry, list(value))
            if environment is None:
                valid = False
            else:
                result[name] = environment
        self.promotion_cycles(result)
        return result if valid else None

    def environment(self, name: str, entry: Any, names: list[Any]) -> Environment | None:
        key_path = f"environments.{name}"
        before = len(self.errors)
        values = self.mapping(key_path, entry, ENVIRONMENT_KEYS)
        if values is None:
            return None
        user = self.user(f"{key_path}.user", values.get("user"))
        hosts = self.hosts(f"{key_path}.hosts", values.get("hosts"), user)
        path = self.remote_path(f"{key_path}.path", values.get("path"))
        formation = self.formation(f"{key_path}.formation", values.get("formation"))
        env = self.env(f"{key_path}.env", values.get("env"))
        healthcheck = self.healthcheck(f"{key_path}.healthcheck", values.get("healthcheck"))
        promote_from = self.promote_from(
            f"{key_path}.promote_from", name, values.get("promote_from"), names
        )
        rolling = values.get("rolling", False)
        if not isinstance(rolling, bool):
            self.fail(f"{key_path}.rolling", f"must be true or false (got {describe(rolling)})")
        identity_file = values.get("identity_file")
        if identity_file is not None and (
            not isinstance(identity_file, str) or not identity_file.strip()
        ):
            self.fail(
                f"{key_path}.identity_file",
                f"must be a path to a private key (got {describe(identity_file)})",
                "like ~/.ssh/id_ed25519; leave it out to use the SSH agent",
            )
        if hosts is not None and formation is not None:
            self.unplaced_types(key_path, hosts, formation)
        if len(self.errors) != before or hosts is None or path is None or healthcheck is None:
            return None
        return Environment(
            name=name,
            hosts=hosts,
            path=path,
            formation=MappingProxyType(formation) if formation is not None else None,
            env=MappingProxyType(env or {}),
            healthcheck=healthcheck,
            promote_from=promote_from,
            rolling=bool(rolling),
            identity_file=identity_file,
            user=user,
        )

    def user(self, key_path: str, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not USER.fullmatch(value):
            self.fail(key_path, f"bad user name {describe(value)}", "like 'deploy'")
            return None
        return value

    def hosts(self, key_path: str, value: Any, user: str | None) -> tuple[Host, ...] | None:
        if value is None or value == []:
            self.fail(
                key_path,
                "missing" if value is None else "is an empty list",
                f"list the hosts to deploy to; {HOST_EXAMPLE}",
            )
            return None
        if not isinstance(value, list):
            value = [value] if isinstance(value, str) else value
        if not isinstance(value, list):
            self.fail(key_path, f"must be a list of hosts (got {describe(value)})", HOST_EXAMPLE)
            return None
        hosts: list[Host] = []
        first_at: dict[tuple[str, int], int] = {}
        for index, item in enumerate(value):
            host = self.host(f"{key_path}[{index}]", item, user)
            if host is None:
                continue
            address = (host.host, host.port)
            if address in first_at:
                self.fail(
                    f"{key_path}[{index}]",
                    f"host {host.label()} is listed twice"
                    f" (first at {key_path}[{first_at[address]}])",
                    "list each host once; give it several roles instead",
                )
                continue
            first_at[address] = index
            hosts.append(host)
        return tuple(hosts) if len(hosts) == len(value) else None

    def host(self, key_path: str, item: Any, user: str | None) -> Host | None:
        if isinstance(item, str):
            parsed = parse_host(item)
            if parsed is None:
                self.fail(key_path, f"cannot read host {excerpt(item, 40)!r}", HOST_EXAMPLE)
                return None
            own_user, name, port = parsed
            return Host(name, own_user or user, port or DEFAULT_SSH_PORT)
        if not isinstance(item, dict):
            self.fail(
                key_path,
                f"expected a host, got {describe(item)}",
                f"{HOST_EXAMPLE}, or a mapping like {{host: web1.example.com, roles: [web]}}",
            )
            return None
        values = self.mapping(key_path, item, HOST_KEYS)
        if values is None:
            return None
        before = len(self.errors)
        for key in ("host", "roles"):
            if key not in values:
                hint = (
                    "name the Procfile types this host runs, like roles: [web]; "
                    "or write the host as a string to run every type"
                    if key == "roles"
                    else "like host: web1.example.com"
                )
                self.fail(key_path, f"missing '{key}'", hint)
        raw = values.get("host")
        parsed = parse_host(raw) if isinstance(raw, str) else None
        if "host" in values and (parsed is None or parsed[0] is not None or parsed[2] is not None):
            self.fail(
                f"{key_path}.host",
                f"cannot read host {excerpt(raw, 40)!r}"
                if isinstance(raw, str)
                else f"must be a host name (got {describe(raw)})",
                "give the bare host name or address here, and 'user' and 'port' as their own keys",
            )
        own_user = self.user(f"{key_path}.user", values.get("user"))
        port = values.get("port", DEFAULT_SSH_PORT)
        if not is_int(port) or not 1 <= port <= 65535:
            self.fail(f"{key_path}.port", f"must be from 1 to 65535 (got {describe(port)})")
        roles = self.roles(f"{key_path}.roles", values.get("roles")) if "roles" in values else None
        if len(self.errors) != before or parsed is None or roles is None:
            return None
        return Host(parsed[1], own_user or user, int(port), roles)

    def roles(self, key_path: str, value: Any) -> tuple[str, ...] | None:
        if not isinstance(value, list) or not value:
            got = "an empty list" if value == [] else describe(value)
            self.fail(
                key_path,
                f"must be a list of Procfile types (got {got})",
                "like roles: [web] or roles: [worker, clock]",
            )
            return None
        roles: list[str] = []
        for index, role in enumerate(value):
            if not isinstance(role, str) or not self.known_type(f"{key_path}[{index}]", role):
                if not isinstance(role, str):
                    self.fail(
                        f"{key_path}[{index}]", f"must be a Procfile type (got {describe(role)})"
                    )
                continue
            if role in roles:
                self.fail(f"{key_path}[{index}]", f"role '{role}' is listed twice")
                continue
            roles.append(role)
        return tuple(roles) if len(roles) == len(value) else None

    def known_type(self, key_path: str, name: str) -> bool:
        if self.types is None or name in self.types:
            return True
        self.fail(
            key_path,
            f"'{excerpt(name, 40)}' is not a process type in the Procfile"
            f" ({', '.join(self.types)})",
            "name a type the Procfile defines, or add it to the Procfile",
        )
        return False

    def remote_path(self, key_path: str, value: Any) -> str | None:
        if value is None:
            self.fail(key_path, "missing", ROOT_HINT)
            return None
        problem = root_problem(value) if isinstance(value, str) else "must be an absolute path"
        if problem is not None or not isinstance(value, str):
            self.fail(key_path, f"{problem} (got {describe(value)})", ROOT_HINT)
            return None
        return value.rstrip("/")

    def formation(self, key_path: str, value: Any) -> dict[str, int] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.fail(
                key_path,
                f"must be a mapping of process types to counts (got {describe(value)})",
                "like formation: {web: 2, worker: 1}",
            )
            return None
        counts: dict[str, int] = {}
        for name, count in value.items():
            if not isinstance(name, str):
                self.fail(key_path, f"bad process type {describe(name)}")
                continue
            item_path = f"{key_path}.{name}"
            if not self.known_type(item_path, name):
                continue
            if not is_int(count) or count < 0:
                self.fail(
                    item_path,
                    f"must be a count of 0 or more (got {describe(count)})",
                    "0 runs no instance of the type",
                )
                continue
            counts[name] = int(count)
        return counts if len(counts) == len(value) else None

    def unplaced_types(
        self, key_path: str, hosts: tuple[Host, ...], formation: Mapping[str, int]
    ) -> None:
        for name, count in formation.items():
            if count > 0 and not any(host.runs(name) for host in hosts):
                self.fail(
                    f"{key_path}.formation.{name}",
                    f"{count} instance{'' if count == 1 else 's'}"
                    f" but no host has the role '{name}'",
                    f"add '{name}' to a host's roles, or set {name}: 0",
                )

    def env(self, key_path: str, value: Any) -> dict[str, str] | None:
        secrets = "env is for non-secret values; keep secrets out of procman.yml"
        if value is None:
            return None
        if not isinstance(value, dict):
            self.fail(
                key_path,
                f"must be a mapping of names to values (got {describe(value)})",
                f"like env: {{REDIS_PROVIDER: REDISTOGO_URL}}; {secrets}",
            )
            return None
        result: dict[str, str] = {}
        for name, item in value.items():
            if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
                self.fail(
                    key_path,
                    f"bad variable name {describe(name)}",
                    "use letters, digits and '_', not starting with a digit",
                )
                continue
            if not isinstance(item, str):
                self.fail(
                    f"{key_path}.{name}",
                    f"must be a string (got {describe(item)})",
                    f"quote it, like {name}: '...'; {secrets}",
                )
                continue
            result[name] = item
        return result

    def healthcheck(self, key_path: str, value: Any) -> Healthcheck | None:
        if value is None:
            return Healthcheck()
        values = self.mapping(key_path, value, HEALTHCHECK_KEYS)
        if values is None:
            return None
        path = values.get("path", DEFAULT_HEALTHCHECK_PATH)
        timeout = values.get("timeout", DEFAULT_HEALTHCHECK_TIMEOUT)
        valid = True
        if not isinstance(path, str) or not path.startswith("/") or any(c.isspace() for c in path):
            hint = f"like /{path}" if isinstance(path, str) and path else "like /health"
            self.fail(f"{key_path}.path", f"must start with '/' (got {describe(path)})", hint)
            valid = False
        if not is_int(timeout) or timeout < 1:
            self.fail(
                f"{key_path}.timeout",
                f"must be a positive number of seconds (got {describe(timeout)})",
            )
            valid = False
        return Healthcheck(path, int(timeout)) if valid else None

    def promote_from(self, key_path: str, name: str, value: Any, names: list[Any]) -> str | None:
        if value is None:
            return None
        others = [other for other in names if other != name and isinstance(other, str)]
        known = f"environments: {', '.join(others)}" if others else "no other environment"
        if not isinstance(value, str):
            self.fail(key_path, f"must name an environment (got {describe(value)})", known)
            return None
        if value == name:
            self.fail(key_path, f"'{name}' cannot be promoted from itself", known)
            return None
        if value not in names:
            self.fail(key_path, f"no environment named '{excerpt(value, 40)}'", known)
            return None
        return value

    def promotion_cycles(self, environments: Mapping[str, Environment]) -> None:
        reported: set[str] = set()
        for start in environments:
            chain = [start]
            source = environments[start].promote_from
            while source is not None and source in environments and source not in chain:
                chain.append(source)
                source = environments[source].promote_from
            if source is None or source != start or start in reported:
                continue
            reported.update(chain)
            cycle = " -> ".join([*chain, start])
            self.fail(
                f"environments.{start}.promote_from",
                f"promotion cycle: {cycle}",
                "the first environment of a pipeline has no promote_from",
            )
