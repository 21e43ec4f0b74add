"""Job functions for tests/integration/test_jobs.py, importable by RQ's workers by dotted path."""

from __future__ import annotations

from typing import Any

OBSERVED: list[Any] = []
"""What ``observe`` saw while it ran (the worker runs in the test's own process)."""


def add(a: int, b: int) -> int:
    return a + b


def fail(message: str) -> None:
    raise ValueError(message)


def observe(url: str) -> None:
    """Record ``procman jobs``' view of the queues while this job is the one running."""
    import redis

    from procman.queues import monitoring

    client = redis.Redis.from_url(url)
    try:
        OBSERVED.append(monitoring.overview(client))
    finally:
        client.close()
