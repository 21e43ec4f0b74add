"""The dashboard's auth and CSRF helpers, and its pure page helpers (no server, no Redis)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from procman.dashboard import security
from procman.dashboard.app import _ago, _chart, _duration
from procman.dashboard.security import (
    Credentials,
    NoCredentials,
    basic_auth,
    credentials_from,
    csrf_ok,
    require_credentials_off_loopback,
    same_origin,
)
from procman.queues.stats import Series


def header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@given(st.text().filter(lambda user: ":" not in user), st.text())
def test_basic_auth_reads_back_any_user_and_password(user: str, password: str) -> None:
    assert basic_auth(header(user, password)) == (user, password)


@given(st.text())
def test_basic_auth_never_raises_on_garbage(value: str) -> None:
    result = basic_auth(value)
    assert result is None or isinstance(result, tuple)


def test_basic_auth_refuses_what_is_not_basic() -> None:
    assert basic_auth(None) is None
    assert basic_auth("Bearer abc") is None
    assert basic_auth("Basic !!!") is None
    assert basic_auth("Basic " + base64.b64encode(b"no-colon").decode()) is None
    assert basic_auth("basic " + base64.b64encode(b"a:b").decode()) == ("a", "b")


def test_credentials_check_both_parts() -> None:
    credentials = Credentials(user="admin", password="pw")
    assert credentials.check("admin", "pw")
    assert not credentials.check("admin", "p")
    assert not credentials.check("admi", "pw")
    assert "pw" not in repr(credentials)


def test_credentials_from_the_environment() -> None:
    assert credentials_from({}) is None
    found = credentials_from({"PROCMAN_DASHBOARD_USER": "a", "PROCMAN_DASHBOARD_PASSWORD": "b"})
    assert found == Credentials(user="a", password="b")
    with pytest.raises(NoCredentials, match="PROCMAN_DASHBOARD_PASSWORD or"):
        credentials_from({"PROCMAN_DASHBOARD_USER": "a"})
    with pytest.raises(NoCredentials, match="PROCMAN_DASHBOARD_USER is not set"):
        credentials_from({"PROCMAN_DASHBOARD_PASSWORD": "b"})
    with pytest.raises(NoCredentials, match="not a password hash"):
        credentials_from({"PROCMAN_DASHBOARD_USER": "a", "PROCMAN_DASHBOARD_PASSWORD_HASH": "b"})


def test_off_loopback_needs_credentials() -> None:
    require_credentials_off_loopback("127.0.0.1", None)
    require_credentials_off_loopback("0.0.0.0", Credentials("a", "b"))
    with pytest.raises(NoCredentials, match=r"on 0\.0\.0\.0 without a password"):
        require_credentials_off_loopback("0.0.0.0", None)


def test_csrf_and_origin() -> None:
    assert csrf_ok("abc", "abc")
    assert not csrf_ok("abc", "abd")
    assert not csrf_ok(None, "abc") and not csrf_ok("abc", None) and not csrf_ok("", "")
    assert same_origin(None, "127.0.0.1:9181")
    assert same_origin("http://127.0.0.1:9181", "127.0.0.1:9181")
    assert not same_origin("http://evil.example", "127.0.0.1:9181")
    assert not same_origin("null", "127.0.0.1:9181")


def test_the_policy_allows_no_inline_script_or_style() -> None:
    policy = security.CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe" not in policy


def test_chart_bars_scale_to_the_peak() -> None:
    chart = _chart(Series(labels=("a", "b"), processed=(4, 2), failed=(0, 1)))
    assert chart.peak == 4
    assert [bar.height for bar in chart.bars] == [80.0, 40.0]
    assert [bar.failed_height for bar in chart.bars] == [0.0, 20.0]
    empty = _chart(Series(labels=("a",), processed=(0,), failed=(0,)))
    assert empty.peak == 1 and empty.bars[0].height == 0


def test_durations_and_ages() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert _duration(None) == "-" and _duration(5.5) == "5s" and _duration(125) == "2m 5s"
    assert _duration(7300) == "2h 1m" and _duration(90000) == "1d 1h"
    assert _ago(now - timedelta(seconds=30), now) == "30s ago"
    assert _ago(now + timedelta(minutes=5), now) == "in 5m 0s"
    assert _ago(None, now) == "-"
