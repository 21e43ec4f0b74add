"""Connecting to Redis: one place that turns every way of failing into a one-line ProcmanError.

Everything in procman that talks to Redis (the worker, ``procman jobs``, the app's ``enqueue``)
connects through ``connect``, so an unreachable Redis reads the same everywhere: the URL with its
password hidden, where the URL came from, what went wrong, and what to do.
"""

from __future__ import annotations

import re

import redis

from procman.errors import ProcmanError, flag_of
from procman.queues.redis_url import DEFAULT_SOURCE, RedisUrl, redact

CONNECT_TIMEOUT = 5.0
"""Seconds to wait for the TCP (or TLS) connection; an unreachable host fails instead of hanging.
Reads have no timeout: a worker's blocking pop waits as long as it asks to."""

FIX = (
    "start one with 'redis-server' (Debian: apt-get install redis-server), or point REDIS_URL "
    f"(or REDIS_PROVIDER, or {flag_of('redis_url')}) at a running Redis"
)


NOTHING_CONFIGURED = (
    "nothing names a Redis here (no REDIS_URL or REDIS_PROVIDER), so procman tried the default: "
    "an app's own Redis is the private one its 'procman start' runs, so start the app first "
    "(procman start, in the app directory), or set REDIS_URL to a running Redis"
)
UNTRUSTED_CERTIFICATE = (
    "the server's TLS certificate is not one this machine trusts (self-signed, or from a private "
    "CA): add ?ssl_ca_certs=/path/to/ca.pem to the URL to check it against that CA, or "
    "?ssl_cert_reqs=none to skip the check (still encrypted, but unverified); where the provider "
    "rotates the URL (Heroku Redis), set PROCMAN_REDIS_SSL_CERT_REQS=none instead"
)
WRONG_HOST_CERTIFICATE = (
    "the server's TLS certificate does not name the host in the URL: use the name it was issued "
    "for, or add ?ssl_check_hostname=false to the URL"
)


FULL = (
    "nothing was stored: raise the Redis's maxmemory (or the plan's size), or free memory in it "
    "(procman jobs shows the failed and finished jobs it keeps)"
)
_PIPELINE_PREFIX = re.compile(r"^Command # [0-9]+ \(.*?\) of pipeline caused error: ")


class RedisUnavailable(ProcmanError):
    """Redis could not be reached, refused us, or failed a command."""


class RedisFull(RedisUnavailable):
    """Redis refused a write: its ``maxmemory`` is reached and its policy evicts nothing."""


def is_full(error: BaseException) -> bool:
    """Whether ``error`` is Redis refusing a write at ``maxmemory`` (``OOM command not ...``)."""
    return isinstance(error, redis.OutOfMemoryError) or (
        isinstance(error, redis.ResponseError) and "maxmemory" in str(error)
    )


def connect(url: RedisUrl | str) -> redis.Redis:
    """A client for ``url``, checked with a PING; RedisUnavailable when that fails."""
    where = url if isinstance(url, RedisUrl) else RedisUrl(url, "")
    try:
        client = redis.Redis.from_url(where.url, socket_connect_timeout=CONNECT_TIMEOUT)
    except ValueError as error:
        raise unavailable(where, error, tried="reading the URL") from None
    try:
        client.ping()
    except redis.RedisError as error:
        client.close()
        raise unavailable(where, error) from None
    return client


def unavailable(url: RedisUrl | str, error: BaseException, tried: str = "PING") -> RedisUnavailable:
    """The one-line error for a failed Redis operation: ``cannot reach Redis at URL (from
    SOURCE): tried PING: REASON (what to do)``."""
    where = url if isinstance(url, RedisUrl) else RedisUrl(url, "")
    shown = where.describe() if where.source else where.redacted
    reason = one_line(redact(str(error)) or type(error).__name__)
    if is_full(error):
        reason = _PIPELINE_PREFIX.sub("", reason)
        return RedisFull(f"Redis at {shown} is full (maxmemory): {tried} failed: {reason}", FULL)
    if isinstance(error, redis.AuthenticationError) or "NOAUTH" in reason or "WRONGPASS" in reason:
        hint = "check the password in the URL"
    elif isinstance(error, redis.ResponseError):
        hint = "check the URL's database number and that this server is a Redis"
    elif "CERTIFICATE_VERIFY_FAILED" in reason:
        hint = WRONG_HOST_CERTIFICATE if "mismatch" in reason else UNTRUSTED_CERTIFICATE
    elif where.source == DEFAULT_SOURCE:
        hint = NOTHING_CONFIGURED
    else:
        hint = FIX
    return RedisUnavailable(f"cannot reach Redis at {shown}: {tried} failed: {reason}", hint)


def one_line(text: str) -> str:
    return " ".join(text.split())
