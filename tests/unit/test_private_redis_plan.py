"""The rule deciding whether ``procman start`` runs a private Redis (pure: which and port faked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from procman.errors import RedisUrlError
from procman.procfile import parse_procfile
from procman.queues import config
from procman.queues.private_redis import (
    NO_SERVER,
    QUEUE_FILE,
    PrivateRedis,
    RedisPlan,
    plan_redis,
    uses_queues,
)

WEB = parse_procfile("web: gunicorn app:app\n")
WITH_WORKER = parse_procfile("web: gunicorn app:app\nworker: procman worker --burst\n")


def plan(
    tmp_path: Path,
    procfile: str | None = None,
    env: dict[str, str] | None = None,
    option: str | None = None,
    found: bool = True,
) -> RedisPlan:
    return plan_redis(
        tmp_path,
        parse_procfile(procfile) if procfile else WITH_WORKER,
        env or {"PATH": "/usr/bin"},
        option,
        which=lambda name, path: f"/usr/bin/{name}" if found else None,
        port=lambda: 7001,
    )


def test_the_queue_file_name_is_the_config_modules() -> None:
    assert QUEUE_FILE == config.DEFAULT_FILE


def test_an_app_uses_queues_with_a_queue_file_or_a_worker_line(tmp_path: Path) -> None:
    assert not uses_queues(tmp_path, WEB)
    assert uses_queues(tmp_path, WITH_WORKER)
    assert uses_queues(tmp_path, parse_procfile("w: .venv/bin/procman worker\n"))
    assert not uses_queues(tmp_path, parse_procfile("w: procman workers\n"))
    (tmp_path / "queues.yml").write_text("")
    assert uses_queues(tmp_path, WEB)


def test_private_redis_when_nothing_is_configured(tmp_path: Path) -> None:
    chosen = plan(tmp_path)
    assert chosen == RedisPlan(
        url="redis://127.0.0.1:7001/0",
        server=PrivateRedis("/usr/bin/redis-server", 7001, tmp_path / ".procman" / "redis"),
    )
    assert chosen.server is not None
    assert chosen.server.command() == (
        f"/usr/bin/redis-server --bind 127.0.0.1 --port 7001 --dir {tmp_path}/.procman/redis "
        f"--appendonly yes --save '' --daemonize no --logfile {tmp_path}/.procman/redis/redis.log "
        "--loglevel warning"
    )
    assert chosen.server.command(log_to_stream=True).endswith(
        "--daemonize no --logfile '' --loglevel warning"
    )


def test_nothing_for_an_app_without_queues(tmp_path: Path) -> None:
    assert plan(tmp_path, "web: gunicorn app:app\n") == RedisPlan()


@pytest.mark.parametrize(
    "env",
    [
        {"REDIS_URL": "redis://cache:6379"},
        {"REDIS_PROVIDER": "CACHE_URL", "CACHE_URL": "redis://cache:6379"},
    ],
)
def test_a_configured_redis_is_left_alone(tmp_path: Path, env: dict[str, str]) -> None:
    assert plan(tmp_path, env=env) == RedisPlan()


def test_a_bad_configuration_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RedisUrlError, match="REDIS_PROVIDER names CACHE_URL, which is not set"):
        plan(tmp_path, env={"REDIS_PROVIDER": "CACHE_URL"})


def test_the_option_wins_and_hides_redis_provider(tmp_path: Path) -> None:
    assert plan(tmp_path, option="redis://cache:6380/1") == RedisPlan(
        url="redis://cache:6380/1", unset=("REDIS_PROVIDER",)
    )
    with pytest.raises(RedisUrlError, match="the redis-url option"):
        plan(tmp_path, option="cache:6380")


def test_a_procfile_running_its_own_redis_gets_none(tmp_path: Path) -> None:
    assert plan(tmp_path, "redis: redis-server --port 7000\nworker: procman worker\n") == (
        RedisPlan()
    )
    assert plan(tmp_path, "cache: exec redis-server\nworker: procman worker\n") == RedisPlan()


def test_without_redis_server_a_note(tmp_path: Path) -> None:
    assert plan(tmp_path, found=False) == RedisPlan(note=NO_SERVER)
    assert "\n" not in NO_SERVER and "apt-get install redis-server" in NO_SERVER
