"""Which Redis to use, Heroku-style, and hiding its password wherever a URL is shown.

The order, the same everywhere (worker, ``procman jobs``, the app helper, ``procman start``):

1. ``--redis-url``;
2. ``REDIS_PROVIDER``, holding the *name* of the variable with the URL
   (``REDIS_PROVIDER=REDISTOGO_URL``, ``REDISTOGO_URL=redis://...``);
3. ``REDIS_URL``;
4. ``redis://localhost:6379/0``.

Unlike Sidekiq, a ``REDIS_PROVIDER`` naming an unset variable is an error, not a silent fall-back.
An empty variable counts as unset. Pure: the environment is passed in.

``PROCMAN_REDIS_SSL_CERT_REQS=none`` relaxes the certificate check of whichever ``rediss://`` URL
is resolved (it adds ``ssl_cert_reqs=none`` unless the URL sets it): managed Redis such as
Heroku's presents a certificate no CA vouches for and rotates the URL in ``REDIS_URL`` itself,
so a copy of the URL with the parameter added, kept in another variable, goes stale.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qsl, urlsplit

from procman.errors import RedisUrlError, excerpt, flag_of

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
SCHEMES = ("redis", "rediss", "unix")
MASK = "***"
DEFAULT_SOURCE = "the default"
SSL_CERT_REQS_VARIABLE = "PROCMAN_REDIS_SSL_CERT_REQS"
SSL_CERT_REQS = ("none", "optional", "required")
"""redis-py's values for ``ssl_cert_reqs`` (Python's ``ssl.CERT_NONE`` ...)."""

_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_AUTHORITY = re.compile(r"(?P<head>^[A-Za-z][A-Za-z0-9+.-]*://)(?P<netloc>[^/?#]*)")
_PASSWORD_PARAM = re.compile(r"(?P<key>[?&;]password=)(?P<value>[^&;#]*)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RedisUrl:
    url: str
    source: str
    """Where it came from, for messages: '--redis-url', 'REDIS_URL', 'REDISTOGO_URL (named by
    REDIS_PROVIDER)' or 'the default'."""

    @property
    def redacted(self) -> str:
        return redact(self.url)

    def describe(self) -> str:
        return f"{self.redacted} (from {self.source})"


def resolve_redis_url(
    env: Mapping[str, str], option: str | None = None, private: str | None = None
) -> RedisUrl:
    """The Redis URL to use and where it came from; RedisUrlError when it cannot be used.

    ``private`` is the URL of the private Redis that a running ``procman start`` made for this
    app: a shell command in the app directory uses it when nothing else names a Redis."""
    cert_reqs = ssl_cert_reqs(env)
    if option is not None:
        return relaxed(checked(option, flag_of("redis_url")), cert_reqs)
    provider = env.get("REDIS_PROVIDER", "")
    if provider:
        url = checked(_provided_url(provider, env), f"{provider} (named by REDIS_PROVIDER)")
        return relaxed(url, cert_reqs)
    if env.get("REDIS_URL"):
        return relaxed(checked(env["REDIS_URL"], "REDIS_URL"), cert_reqs)
    if private:
        return RedisUrl(private, "the private Redis of the running procman start")
    return RedisUrl(DEFAULT_REDIS_URL, DEFAULT_SOURCE)


def ssl_cert_reqs(env: Mapping[str, str]) -> str | None:
    """``PROCMAN_REDIS_SSL_CERT_REQS``: none, optional or required; None when unset."""
    value = env.get(SSL_CERT_REQS_VARIABLE, "").strip()
    if not value:
        return None
    if value.lower() not in SSL_CERT_REQS:
        raise RedisUrlError(
            f"{SSL_CERT_REQS_VARIABLE}={excerpt(value, 40)!r} is not a certificate check",
            "set it to none (skip the check, as for Heroku Redis), optional or required",
        )
    return value.lower()


def relaxed(url: RedisUrl, cert_reqs: str | None) -> RedisUrl:
    """``url`` with ``ssl_cert_reqs`` added when it is a ``rediss://`` URL that does not set it
    itself; the source then says where the setting came from."""
    if cert_reqs is None or urlsplit(url.url).scheme != "rediss":
        return url
    query = urlsplit(url.url).query
    if any(key == "ssl_cert_reqs" for key, _ in parse_qsl(query, keep_blank_values=True)):
        return url
    base, hash_mark, fragment = url.url.partition("#")
    joiner = "&" if query else ("" if base.endswith("?") else "?")
    return RedisUrl(
        f"{base}{joiner}ssl_cert_reqs={cert_reqs}{hash_mark}{fragment}",
        f"{url.source}, ssl_cert_reqs={cert_reqs} from {SSL_CERT_REQS_VARIABLE}",
    )


def _provided_url(provider: str, env: Mapping[str, str]) -> str:
    if ":" in provider:
        raise RedisUrlError(
            f"REDIS_PROVIDER={redact(excerpt(provider, 80))!r} looks like a URL, not a variable "
            "name: REDIS_PROVIDER holds the name of the variable that holds the URL",
            "set REDIS_PROVIDER=REDISTOGO_URL and put the URL in REDISTOGO_URL, "
            "or put the URL in REDIS_URL and unset REDIS_PROVIDER",
        )
    if not _VARIABLE.fullmatch(provider):
        raise RedisUrlError(
            f"REDIS_PROVIDER={excerpt(provider, 80)!r} is not a variable name",
            "set it to the name of the variable holding the URL, like REDISTOGO_URL",
        )
    url = env.get(provider, "")
    if not url:
        state = "is empty" if provider in env else "is not set"
        raise RedisUrlError(
            f"REDIS_PROVIDER names {provider}, which {state}",
            f"set {provider} to the Redis URL, or unset REDIS_PROVIDER to use REDIS_URL",
        )
    return url


def checked(url: str, source: str) -> RedisUrl:
    """``url`` if it is a URL redis-py can connect with (redis://, rediss://, unix://)."""
    check_redis_url(url, source)
    return RedisUrl(url, source)


def check_redis_url(url: str, source: str) -> None:
    shown = excerpt(redact(url), 80)
    example = "like redis://localhost:6379/0, rediss://:PASSWORD@HOST:PORT or unix:///path.sock"
    if not url.strip():
        raise RedisUrlError(f"{source}: the Redis URL is empty", f"give one {example}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise RedisUrlError(
            f"{source}: {shown} is not a valid Redis URL ({error})", f"give one {example}"
        ) from None
    if parts.scheme not in SCHEMES:
        scheme = f"scheme '{parts.scheme}'" if parts.scheme else "no scheme"
        raise RedisUrlError(
            f"{source}: {shown} has {scheme}; expected redis://, rediss:// or unix://",
            f"give one {example}",
        )
    if any(c.isspace() or c == "\x00" for c in url):
        raise RedisUrlError(
            f"{source}: {shown} contains whitespace", "remove it, or percent-encode it (%20)"
        )
    if parts.scheme == "unix":
        if not parts.path:
            raise RedisUrlError(
                f"{source}: {shown} names no socket path", "write it like unix:///run/redis.sock"
            )
        return
    _check_host(parts, port, source, shown, example)


def _check_host(
    parts: SplitResult, port: int | None, source: str, shown: str, example: str
) -> None:
    if not parts.hostname:
        raise RedisUrlError(f"{source}: {shown} names no host", f"give one {example}")
    if port == 0:
        raise RedisUrlError(f"{source}: {shown}: port 0 is not a port", "use 1 to 65535")
    database = parts.path.lstrip("/")
    if database and not (database.isascii() and database.isdigit()):
        raise RedisUrlError(
            f"{source}: {shown}: the path must be a database number, like /0",
            f"give one {example}",
        )


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (``redis://:***@host``,
    ``redis://user:***@host``, ``?password=***``); a lone ``user@`` is hidden too, since older
    clients took it as the password. Safe on any text."""

    def hide_userinfo(match: re.Match[str]) -> str:
        userinfo, at, host = match["netloc"].rpartition("@")
        if not at:
            return match[0]
        user, colon, _ = userinfo.partition(":")
        hidden = f"{user}:{MASK}" if colon else MASK
        return f"{match['head']}{hidden}@{host}"

    text = _AUTHORITY.sub(hide_userinfo, url, count=1)
    return _PASSWORD_PARAM.sub(lambda m: f"{m['key']}{MASK}", text)
