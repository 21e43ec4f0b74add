"""End-to-end: ``procman worker --queues '*'`` (and ``queues: ['*']``) serves every queue that
exists in Redis, alphabetically, including queues created after it started."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest
import redis
from rq.job import Job, JobStatus
from rq.queue import Queue

from procman.queues import monitoring
from procman.queues.config import parse_queue_config
from tests.conftest import App, LiveOutput

pytestmark = pytest.mark.timeout(90)

JOBS = """
def add(a, b):
    return a + b
"""
NEW_QUEUE_BOUND = 10.0
"""A queue created after the worker started is served within this long (it looks every 2 s)."""


@pytest.fixture
def jobs_app(app: App, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> App:
    app.write("jobs.py", JOBS)
    app.procfile("worker: procman worker\n")
    monkeypatch.setenv("REDIS_URL", redis_url)
    return app


def _wait_finished(connection: redis.Redis, job: Job, bound: float) -> JobStatus | None:
    deadline = time.monotonic() + bound
    status = job.get_status(refresh=True)
    while status != JobStatus.FINISHED and time.monotonic() < deadline:
        time.sleep(0.05)
        status = job.get_status(refresh=True)
    return status


def test_burst_serves_every_queue_in_alphabetical_order(jobs_app: App, redis_url: str) -> None:
    connection = redis.Redis.from_url(redis_url)
    order = []
    for name in ("zeta", "alpha", "mid"):
        queue = Queue(name, connection=connection)
        order += [(name, queue.enqueue("jobs.add", n, 1)) for n in range(3)]
    result = jobs_app.run("worker", "--burst", "-c", "1", "--queues", "*", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "serving all queues (*) with 1 worker process" in result.stdout
    assert "ready for all queues (*)" in result.stdout
    started = re.findall(r" (\w+): jobs\.add\(\d+, 1\) started \(job ", result.stdout)
    assert started == ["alpha"] * 3 + ["mid"] * 3 + ["zeta"] * 3
    for _, job in order:
        assert Job.fetch(job.id, connection=connection).get_status() == JobStatus.FINISHED


@pytest.mark.parametrize("notifications", ["true", "false"])
def test_a_queue_created_after_the_worker_started_is_served(
    jobs_app: App, redis_url: str, live: type[LiveOutput], notifications: str
) -> None:
    jobs_app.write(
        "queues.yml",
        f"concurrency: 1\nkeyspace_notifications: {notifications}\nqueues: ['*']\n",
    )
    connection = redis.Redis.from_url(redis_url)
    first = Queue("first", connection=connection).enqueue("jobs.add", 1, 1)
    procman = jobs_app.spawn("worker")
    output = live(procman)
    try:
        output.wait_for("ready for all queues (*)")
        assert _wait_finished(connection, first, NEW_QUEUE_BOUND) == JobStatus.FINISHED
        time.sleep(0.5)  # idle, waiting for pushes to the queues it knows
        later = Queue("later", connection=connection).enqueue("jobs.add", 2, 2)
        assert _wait_finished(connection, later, NEW_QUEUE_BOUND) == JobStatus.FINISHED, output.text
        assert Job.fetch(later.id, connection=connection).return_value() == 4
        output.wait_for("now also serving later")
    finally:
        os.killpg(procman.pid, signal.SIGTERM)
        status, text = output.finish()
    assert status == 0, text


def test_procman_jobs_lists_every_queue_as_served_under_a_star(redis_url: str) -> None:
    connection = redis.Redis.from_url(redis_url)
    for name in ("beta", "alpha"):
        Queue(name, connection=connection).enqueue("jobs.add", 1, 1)
    config = parse_queue_config("queues: ['*']\n", "queues.yml")
    result = monitoring.overview(connection, config)
    assert [(q.name, q.weight, q.configured, q.queued) for q in result.queues] == [
        ("alpha", None, True, 1),
        ("beta", None, True, 1),
    ]
