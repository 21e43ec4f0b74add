"""``procman check --json`` shows the env files' variables without the passwords in their URLs."""

from __future__ import annotations

import json

import pytest

from tests.conftest import App

pytestmark = pytest.mark.timeout(30)


def test_check_json_hides_passwords_in_urls(app: App) -> None:
    app.procfile("web: echo hi\n")
    app.write(
        ".env",
        "REDIS_URL=redis://:s3cretpw@cache:6379/0\n"
        "DATABASE_URL=postgres://app:dbpw@db/app?sslmode=require\n"
        "SENTRY=https://sentry.example/api?password=pw3\n"
        "PLAIN=hello:world@home\n"
        "OTHER=https://example.com/x\n",
    )
    result = app.run("check", "--json")
    assert result.returncode == 0, result.stderr
    assert "s3cretpw" not in result.stdout
    assert "dbpw" not in result.stdout
    assert "pw3" not in result.stdout
    assert json.loads(result.stdout)["env"] == {
        "REDIS_URL": "redis://:***@cache:6379/0",
        "DATABASE_URL": "postgres://app:***@db/app?sslmode=require",
        "SENTRY": "https://sentry.example/api?password=***",
        "PLAIN": "hello:world@home",
        "OTHER": "https://example.com/x",
    }
