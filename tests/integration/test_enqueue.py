"""Enqueueing against a real Redis, then running the jobs with RQ's own SimpleWorker in this
process: proof that what the app enqueues is a job a worker can run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from procman.queues import RedisUnavailable, connect, enqueue, get_connection, use_connection
from tests.queues_app import jobs


@pytest.fixture
def client(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[redis.Redis]:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.delenv("REDIS_PROVIDER", raising=False)
    monkeypatch.delenv("PROCMAN_JOBS_INLINE", raising=False)
    use_connection(None)
    yield get_connection()
    get_connection().close()
    use_connection(None)


def work(client: redis.Redis, *queues: str) -> None:
    worker = SimpleWorker([Queue(name, connection=client) for name in queues], connection=client)
    worker.work(burst=True)


def test_enqueue_by_function_and_by_path_runs_on_a_worker(client: redis.Redis) -> None:
    by_function = enqueue(jobs.add, 2, 3)
    by_path = enqueue("tests.queues_app.jobs.add", 4, b=5, queue="critical")
    assert isinstance(by_function, Job) and isinstance(by_path, Job)
    assert Queue("default", connection=client).job_ids == [by_function.id]
    stored = Job.fetch(by_path.id, connection=client)
    assert (stored.func_name, stored.args, stored.kwargs) == (
        "tests.queues_app.jobs.add",
        (4,),
        {"b": 5},
    )
    assert stored.meta["procman_defaults"] == ["timeout", "retry"]  # for the worker to fill
    assert stored.retries_left is None
    work(client, "default", "critical")
    assert by_function.return_value(refresh=True) == 5
    assert by_path.return_value(refresh=True) == 9


def test_decorated_job_carries_its_options(client: redis.Redis) -> None:
    delayed = jobs.shout.delay("hey", times=2)
    stored = Job.fetch(delayed.id, connection=client)
    assert stored.origin == "low"
    assert stored.timeout == 30
    assert stored.retries_left == 2 and stored.retry_intervals == [15, 16]
    assert "procman_defaults" not in stored.meta
    work(client, "low")
    assert delayed.return_value(refresh=True) == "HEY!HEY!"


def test_retry_false_is_recorded_as_zero_retries(client: redis.Redis) -> None:
    never = jobs.never_retried.delay()
    assert Job.fetch(never.id, connection=client).retries_left == 0
    assert Job.fetch(never.id, connection=client).meta["procman_defaults"] == ["timeout"]
    default = jobs.plain.delay(1)
    assert Job.fetch(default.id, connection=client).retries_left is None
    work(client, "default")
    assert Job.fetch(never.id, connection=client).get_status() == "failed"


def test_scheduled_jobs_wait_in_the_scheduled_registry(client: redis.Redis) -> None:
    before = datetime.now(UTC)
    soon = jobs.plain.enqueue_in(timedelta(minutes=5), 4)
    later = jobs.plain.enqueue_at(datetime(2030, 1, 1, 9, tzinfo=UTC), 6)
    registry = ScheduledJobRegistry("default", connection=client)
    assert set(registry.get_job_ids()) == {soon.id, later.id}
    at = registry.get_scheduled_time(soon)
    assert timedelta(minutes=4) < at - before < timedelta(minutes=6)
    assert registry.get_scheduled_time(later) == datetime(2030, 1, 1, 9, tzinfo=UTC)
    assert Queue("default", connection=client).count == 0


def test_one_connection_per_process(client: redis.Redis) -> None:
    assert get_connection() is client
    enqueue(jobs.add, 1, 1)
    assert get_connection() is client


def test_unreachable_redis_is_one_line_with_the_password_hidden(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://:s3cret@127.0.0.1:1/0")
    monkeypatch.delenv("REDIS_PROVIDER", raising=False)
    monkeypatch.delenv("PROCMAN_JOBS_INLINE", raising=False)
    use_connection(None)
    with pytest.raises(RedisUnavailable) as caught:
        enqueue(jobs.add, 1, 1)
    message = str(caught.value)
    assert "\n" not in message and "s3cret" not in message
    assert message.startswith(
        "cannot reach Redis at redis://:***@127.0.0.1:1/0 (from REDIS_URL): PING failed: "
    )
    assert "start one with 'redis-server'" in message and "REDIS_PROVIDER" in message
    use_connection(None)


def test_connect_explains_a_database_the_server_lacks(redis_url: str) -> None:
    with pytest.raises(RedisUnavailable) as caught:
        connect(redis_url.rsplit("/", 1)[0] + "/999")
    message = str(caught.value)
    assert "PING failed: DB index is out of range" in message
    assert "check the URL's database number" in message
    connect(redis_url).close()
