"""The Redis fixture every queue test relies on: a real server, empty for each test."""

from __future__ import annotations

import redis


def test_a_real_empty_redis(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.dbsize() == 0
    client.set("procman-test", "1")
    assert client.info("server")["redis_version"]
    client.close()


def test_the_next_test_gets_it_empty(redis_url: str) -> None:
    assert redis.Redis.from_url(redis_url).dbsize() == 0
