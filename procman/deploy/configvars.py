"""An environment's config variables (Heroku's config vars): procman.yml's ``env:`` and each
host's ``shared/.env``, which wins. Pure: parsing ``KEY=VALUE`` changes, applying them,
masking secret-looking values, and the REDIS_PROVIDER rule; the hosts are changed by
``procman.deploy.daytwo``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from procman.deploy.steps import dotenv_text
from procman.envfile import parse_env
from procman.errors import ConfigError, EnvFileError, UsageError

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SECRET_NAME = re.compile(
    r"SECRET|PASSWORD|PASSWD|PASSPHRASE|TOKEN|(?<![A-Z])KEY|_KEY|PRIVATE|CREDENTIAL|AUTH|SALT",
    re.IGNORECASE,
)
"""Names whose values are masked in listings: ``SECRET_KEY``, ``API_TOKEN``, ``DB_PASSWORD``..."""
MASK = "***"
PROVIDER = "REDIS_PROVIDER"
FROM_YML = "procman.yml"
FROM_SHARED = "shared/.env"


class ConfigVarError(ConfigError):
    """A config change that cannot be made (a bad name, an unreadable value file)."""


@dataclass(frozen=True, slots=True)
class ConfigVar:
    name: str
    value: str
    source: str
    """``procman.yml`` (its ``env:``) or ``shared/.env`` (which wins)."""
    differs_on: tuple[str, ...] = ()
    """Hosts whose ``shared/.env`` has another value (or none) for it."""

    def shown(self, reveal: bool = False) -> str:
        return self.value if reveal else masked(self.name, self.value)

    def as_json(self, reveal: bool = False) -> dict[str, object]:
        return {
            "name": self.name,
            "value": self.shown(reveal),
            "source": self.source,
            "masked": not reveal and self.shown() != self.value,
            "differs_on": list(self.differs_on),
        }


@dataclass(frozen=True, slots=True)
class Changes:
    """``set`` values and ``unset`` names, in the order given."""

    set: Mapping[str, str]
    unset: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.set, *self.unset)


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def masked(name: str, value: str) -> str:
    """``value`` as a listing shows it: hidden for a secret-looking name, a URL's password
    hidden, else as is."""
    if not value:
        return value
    if is_secret_name(name):
        return MASK
    from procman.queues.redis_url import redact

    return redact(value) if "://" in value or "password=" in value else value


def parse_assignments(
    args: Sequence[str], read_file: Callable[[str], str], read_stdin: Callable[[], str]
) -> dict[str, str]:
    """``KEY=VALUE`` arguments; ``KEY=@PATH`` reads the value from a file and ``KEY=@-`` from
    standard input (one trailing newline dropped; ``KEY=@@x`` is the value ``@x``), and a lone
    ``-`` reads ``KEY=VALUE`` lines (env-file syntax) from standard input: values that stay out
    of the shell's history."""
    values: dict[str, str] = {}
    for arg in args:
        if arg == "-":
            try:
                values.update(parse_env(read_stdin(), "<stdin>").values)
            except EnvFileError as error:
                raise ConfigVarError(error.message, error.hint) from None
            continue
        name, equals, value = arg.partition("=")
        if not equals:
            raise UsageError(
                f"{arg!r} is not KEY=VALUE",
                f"write {arg}=value, KEY=@FILE to read the value from a file, or - for "
                "KEY=VALUE lines on standard input",
            )
        check_name(name)
        if value.startswith("@@"):
            value = value[1:]
        elif value == "@-":
            value = _chomp(read_stdin())
        elif value.startswith("@"):
            value = _chomp(read_file(value[1:]))
        if "\x00" in value:
            raise ConfigVarError(f"{name}: the value contains a NUL character", "remove it")
        values[name] = value
    return values


def check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise UsageError(
            f"{name!r} is not a variable name",
            "names use letters, digits and '_' and do not start with a digit",
        )


def _chomp(text: str) -> str:
    return text[:-1] if text.endswith("\n") else text


def parse_shared_env(text: str | None, source: str) -> dict[str, str]:
    """The variables of a host's ``shared/.env`` (none when it is missing)."""
    if text is None:
        return {}
    return dict(parse_env(text, source, base={}).values)


def applied(current: Mapping[str, str], changes: Changes) -> dict[str, str]:
    """``current`` with ``changes`` made: set values added or replaced, unset names removed."""
    result = {k: v for k, v in current.items() if k not in changes.unset}
    result.update(changes.set)
    return result


def shared_env_text(values: Mapping[str, str]) -> str:
    """The ``shared/.env`` written for ``values`` (read back exactly by procman's env files)."""
    header = "# Written by procman config set/unset; procman reads it on the hosts' starts.\n"
    return header + dotenv_text(dict(values))


def check_redis_provider(merged: Mapping[str, str], where: str) -> None:
    """REDIS_PROVIDER holds the NAME of the variable with the Redis URL (Heroku's convention:
    ``REDIS_PROVIDER=REDISTOGO_URL``); anything else is refused with the explanation."""
    provider = merged.get(PROVIDER)
    if provider is None:
        return
    example = "like REDISTOGO_URL=redis://... and REDIS_PROVIDER=REDISTOGO_URL"
    if not NAME.fullmatch(provider):
        shown = masked("URL", provider)
        raise ConfigVarError(
            f"{where}: REDIS_PROVIDER must name the variable that holds the Redis URL, not be "
            f"the URL itself (got {shown!r}); nothing was changed",
            f"set the URL under a name of its own and point REDIS_PROVIDER at it, {example}",
        )
    if provider not in merged:
        raise ConfigVarError(
            f"{where}: REDIS_PROVIDER names {provider}, which is not set; nothing was changed",
            f"set {provider} to the Redis URL in the same command, {example}",
        )


def listing(
    yml_env: Mapping[str, str], shared: Mapping[str, dict[str, str] | None]
) -> list[ConfigVar]:
    """The environment's variables by name: ``shared/.env`` (the first host's that has the
    name) winning over procman.yml's ``env:``, each noting the hosts whose ``shared/.env``
    differs (another value, or none)."""
    names = sorted({*yml_env, *(k for values in shared.values() for k in (values or {}))})
    found = []
    for name in names:
        on_host = {host: (values or {}).get(name) for host, values in shared.items()}
        present = [value for value in on_host.values() if value is not None]
        if not present:
            found.append(ConfigVar(name, yml_env[name], FROM_YML))
            continue
        differs = tuple(host for host, value in on_host.items() if value != present[0])
        found.append(ConfigVar(name, present[0], FROM_SHARED, differs))
    return found
