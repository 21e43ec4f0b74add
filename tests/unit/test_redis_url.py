"""Resolving the Redis URL (--redis-url, REDIS_PROVIDER, REDIS_URL, default) and redacting it."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from procman.errors import RedisUrlError, flag_of
from procman.queues.redis_url import DEFAULT_REDIS_URL, redact, resolve_redis_url


def resolve(env: dict[str, str], option: str | None = None) -> tuple[str, str]:
    found = resolve_redis_url(env, option)
    return found.url, found.source


def test_nothing_set_gives_the_default() -> None:
    assert (
        resolve({})
        == (DEFAULT_REDIS_URL, "the default")
        == ("redis://localhost:6379/0", "the default")
    )


def test_redis_url_when_no_provider() -> None:
    assert resolve({"REDIS_URL": "redis://cache:6380/2"}) == ("redis://cache:6380/2", "REDIS_URL")


def test_empty_variables_count_as_unset() -> None:
    assert resolve({"REDIS_PROVIDER": "", "REDIS_URL": ""}) == (DEFAULT_REDIS_URL, "the default")


def test_provider_naming_a_set_variable_wins_over_redis_url() -> None:
    env = {
        "REDIS_PROVIDER": "REDISTOGO_URL",
        "REDISTOGO_URL": "redis://:pw@togo:1234",
        "REDIS_URL": "redis://other",
    }
    found = resolve_redis_url(env)
    assert (found.url, found.source) == (
        "redis://:pw@togo:1234",
        "REDISTOGO_URL (named by REDIS_PROVIDER)",
    )
    assert (
        found.describe() == "redis://:***@togo:1234 (from REDISTOGO_URL (named by REDIS_PROVIDER))"
    )


def test_the_option_wins_over_everything() -> None:
    env = {"REDIS_PROVIDER": "X", "X": "redis://x", "REDIS_URL": "redis://y"}
    assert resolve(env, "rediss://z:6380") == ("rediss://z:6380", flag_of("redis_url"))


def test_the_option_wins_even_over_a_broken_provider() -> None:
    resolved = resolve({"REDIS_PROVIDER": "redis://oops"}, "redis://z")
    assert resolved == ("redis://z", flag_of("redis_url"))


def test_provider_holding_a_url_is_explained() -> None:
    with pytest.raises(RedisUrlError) as caught:
        resolve({"REDIS_PROVIDER": "redis://:hunter2@host:6379"})
    assert caught.value.message == (
        "REDIS_PROVIDER='redis://:***@host:6379' looks like a URL, not a variable name: "
        "REDIS_PROVIDER holds the name of the variable that holds the URL"
    )
    assert caught.value.hint is not None
    assert "set REDIS_PROVIDER=REDISTOGO_URL and put the URL in REDISTOGO_URL" in caught.value.hint
    assert "hunter2" not in str(caught.value)


def test_provider_naming_an_unset_variable_is_an_error_naming_it() -> None:
    with pytest.raises(RedisUrlError) as caught:
        resolve({"REDIS_PROVIDER": "REDISTOGO_URL", "REDIS_URL": "redis://fallback"})
    assert caught.value.message == "REDIS_PROVIDER names REDISTOGO_URL, which is not set"
    assert caught.value.hint == (
        "set REDISTOGO_URL to the Redis URL, or unset REDIS_PROVIDER to use REDIS_URL"
    )


def test_provider_naming_an_empty_variable() -> None:
    with pytest.raises(RedisUrlError, match="names REDISTOGO_URL, which is empty"):
        resolve({"REDIS_PROVIDER": "REDISTOGO_URL", "REDISTOGO_URL": ""})


def test_provider_that_is_not_a_name() -> None:
    with pytest.raises(RedisUrlError, match="REDIS_PROVIDER='MY URL' is not a variable name"):
        resolve({"REDIS_PROVIDER": "MY URL"})


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost:6379/0",
        "redis://localhost",
        "rediss://default:pw@redis.example:6380/15",
        "redis://:pw@10.0.0.1:6379",
        "redis://[::1]:6379/0",
        "unix:///run/redis/redis.sock",
        "unix:///tmp/redis.sock?db=2",
    ],
)
def test_accepted_urls(url: str) -> None:
    assert resolve({"REDIS_URL": url}) == (url, "REDIS_URL")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "http://:secret@localhost:6379",
            "REDIS_URL: http://:***@localhost:6379 has scheme 'http'; "
            "expected redis://, rediss:// or unix://",
        ),
        (
            "localhost:6379",
            "REDIS_URL: localhost:6379 has scheme 'localhost'; "
            "expected redis://, rediss:// or unix://",
        ),
        ("redis://", "REDIS_URL: redis:// names no host"),
        ("redis://:secret@", "REDIS_URL: redis://:***@ names no host"),
        (
            "redis://host:notaport",
            "REDIS_URL: redis://host:notaport is not a valid Redis URL "
            "(Port could not be cast to integer value as 'notaport')",
        ),
        ("redis://host:0", "REDIS_URL: redis://host:0: port 0 is not a port"),
        (
            "redis://host/cache",
            "REDIS_URL: redis://host/cache: the path must be a database number, like /0",
        ),
        ("unix://", "REDIS_URL: unix:// names no socket path"),
        ("redis://host :6379", "REDIS_URL: redis://host :6379 contains whitespace"),
        ("  ", "REDIS_URL: the Redis URL is empty"),
    ],
)
def test_rejected_urls(url: str, expected: str) -> None:
    with pytest.raises(RedisUrlError) as caught:
        resolve({"REDIS_URL": url})
    assert caught.value.message == expected


def test_errors_name_the_provider_variable() -> None:
    with pytest.raises(RedisUrlError) as caught:
        resolve({"REDIS_PROVIDER": "OPENREDIS_URL", "OPENREDIS_URL": "memcached://:pw@x"})
    assert caught.value.message.startswith(
        "OPENREDIS_URL (named by REDIS_PROVIDER): memcached://:***@x"
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:secret@host:6379/0", "redis://:***@host:6379/0"),
        ("rediss://user:secret@host", "rediss://user:***@host"),
        ("redis://secret@host", "redis://***@host"),
        ("redis://user:p@ss:w@rd@host/1", "redis://user:***@host/1"),
        ("redis://host/0?password=secret&db=1", "redis://host/0?password=***&db=1"),
        ("unix://:secret@/run/redis.sock", "unix://:***@/run/redis.sock"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("not a url", "not a url"),
        ("", ""),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


USERINFO = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="/?#@:\n"), min_size=0, max_size=12
)
PASSWORD = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="/?#\n"), min_size=4, max_size=30
)
HOST = st.from_regex(r"[a-z0-9.-]{1,20}", fullmatch=True)


@settings(max_examples=500, deadline=None)
@given(
    scheme=st.sampled_from(["redis", "rediss", "unix", "http", "REDIS"]),
    user=USERINFO,
    password=PASSWORD,
    host=HOST,
    tail=st.sampled_from(["", ":6379", ":6379/0", "/3", "/0?db=1"]),
)
def test_the_password_never_appears_in_the_redacted_url(
    scheme: str, user: str, password: str, host: str, tail: str
) -> None:
    assume(password not in f"{scheme}://{user}:" and password not in f"@{host}{tail}")
    url = f"{scheme}://{user}:{password}@{host}{tail}"
    shown = redact(url)
    assert password not in shown
    assert shown.endswith(f"@{host}{tail}")


@settings(max_examples=300, deadline=None)
@given(password=PASSWORD.filter(lambda p: "&" not in p and ";" not in p), host=HOST)
def test_a_password_parameter_never_appears(password: str, host: str) -> None:
    assume(password not in f"redis://{host}/0?db=1&password=")
    assert password not in redact(f"redis://{host}/0?db=1&password={password}")


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_redact_and_resolve_never_crash(text: str) -> None:
    redact(text)
    try:
        resolve({"REDIS_URL": text})
        resolve({"REDIS_PROVIDER": text, text: "redis://x"} if text else {})
    except RedisUrlError as error:
        assert error.message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rediss://:pw@h:6379/0", "rediss://:pw@h:6379/0?ssl_cert_reqs=none"),
        (
            "rediss://h:6379?ssl_ca_certs=/ca.pem",
            "rediss://h:6379?ssl_ca_certs=/ca.pem&ssl_cert_reqs=none",
        ),
        ("rediss://h:6379?ssl_cert_reqs=required", "rediss://h:6379?ssl_cert_reqs=required"),
        ("redis://h:6379/0", "redis://h:6379/0"),
    ],
)
def test_the_cert_setting_relaxes_whichever_rediss_url_is_resolved(url: str, expected: str) -> None:
    env = {"PROCMAN_REDIS_SSL_CERT_REQS": "none"}
    assert resolve_redis_url({**env, "REDIS_URL": url}).url == expected
    provided = {**env, "REDIS_PROVIDER": "REDISTOGO_URL", "REDISTOGO_URL": url}
    assert resolve_redis_url(provided).url == expected
    assert resolve_redis_url(env, url).url == expected


def test_a_bad_cert_setting_is_refused_in_one_line() -> None:
    with pytest.raises(RedisUrlError) as caught:
        resolve_redis_url({"PROCMAN_REDIS_SSL_CERT_REQS": "off"})
    assert caught.value.message == "PROCMAN_REDIS_SSL_CERT_REQS='off' is not a certificate check"
