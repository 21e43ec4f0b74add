"""A Redis at its ``maxmemory`` with ``noeviction`` (managed Redis plans' default), on a real
``redis-server``: enqueueing fails with one line saying so and stores nothing, and the worker
pool says so and keeps going, running the jobs once Redis has room again."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import redis
from rq.job import Job, JobStatus
from rq.queue import Queue

from tests.conftest import App, LiveOutput, running_redis_server

pytestmark = pytest.mark.timeout(90)

JOBS = """
import time

def add(a, b):
    return a + b

def nap(seconds):
    time.sleep(seconds)
    return seconds
"""


@pytest.fixture(scope="module")
def small_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of this module's own (its maxmemory is changed by the tests)."""
    data = tmp_path_factory.mktemp("full")
    with running_redis_server(data, "--maxmemory-policy", "noeviction") as url:
        yield url


@pytest.fixture
def connection(small_redis: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(small_redis)
    client.config_set("maxmemory", 0)
    client.flushall()
    yield client
    client.config_set("maxmemory", 0)
    client.close()


def fill(client: redis.Redis) -> None:
    """Write 256 kB, then set maxmemory 128 kB below what Redis uses: with noeviction it refuses
    every write that could grow its memory, whatever the write's size."""
    for index in range(16):
        client.set(f"fill:{index}", "x" * 16384)
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", used - 128 * 1024)
    with pytest.raises(redis.OutOfMemoryError):
        client.set("fill:last", "x")


@pytest.fixture
def full_app(app: App, small_redis: str, monkeypatch: pytest.MonkeyPatch) -> App:
    app.write("jobs.py", JOBS)
    app.procfile("worker: procman worker\n")
    monkeypatch.setenv("REDIS_URL", small_redis)
    return app


def test_enqueue_on_a_full_redis_is_one_line_and_stores_nothing(
    full_app: App, small_redis: str, connection: redis.Redis
) -> None:
    fill(connection)
    script = "from procman.queues import enqueue; enqueue('jobs.add', 1, 2)"
    result = subprocess.run(
        [sys.executable, "-c", script], check=False, cwd=full_app.root, capture_output=True,
        text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == (
        f"procman: error: Redis at {small_redis} (from REDIS_URL) is full (maxmemory): enqueueing "
        "jobs.add failed: command not allowed when used memory > 'maxmemory'. (nothing was "
        "stored: raise the Redis's maxmemory (or the plan's size), or free memory in it "
        "(procman jobs shows the failed and finished jobs it keeps))\n"
    )
    assert Queue("default", connection=connection).count == 0
    assert connection.keys("rq:job:*") == []


def test_the_pool_reports_a_full_redis_and_runs_the_job_once_it_has_room(
    full_app: App, connection: redis.Redis
) -> None:
    job = Queue("default", connection=connection).enqueue("jobs.add", 2, 3)
    fill(connection)
    process = full_app.spawn("worker", "-c", "1")
    output = LiveOutput(process)
    output.wait_for("Redis is full (maxmemory reached); starting another in", timeout=20)
    time.sleep(1)
    assert process.poll() is None, output.text  # still running, not crashed
    assert Job.fetch(job.id, connection=connection).get_status() == JobStatus.QUEUED
    connection.config_set("maxmemory", 0)  # room again
    deadline = time.monotonic() + 40
    while Job.fetch(job.id, connection=connection).get_status() != JobStatus.FINISHED:
        assert time.monotonic() < deadline, (
            f"the job did not run once Redis had room:\n{output.text}"
        )
        time.sleep(0.1)
    assert Job.fetch(job.id, connection=connection).return_value() == 5
    process.send_signal(signal.SIGINT)
    status, text = output.finish(timeout=20)
    assert status == 0, text
    assert "Traceback" not in text
    assert process.stderr is not None
    assert "Traceback" not in process.stderr.read().decode()


def test_the_fill_helper_leaves_redis_full(connection: redis.Redis) -> None:
    fill(connection)
    with pytest.raises(redis.OutOfMemoryError):
        connection.lpush("rq:queue:default", "x")


def test_a_job_whose_result_cannot_be_written_goes_back_on_its_queue(
    full_app: App, connection: redis.Redis
) -> None:
    job = Queue("default", connection=connection).enqueue("jobs.nap", 2)
    process = full_app.spawn("worker", "-c", "1")
    output = LiveOutput(process)
    deadline = time.monotonic() + 30
    while Job.fetch(job.id, connection=connection).get_status() != JobStatus.STARTED:
        assert time.monotonic() < deadline, output.text
        time.sleep(0.05)
    fill(connection)  # full while the job sleeps: its result cannot be written
    output.wait_for("stopped: Redis is full (maxmemory reached)", timeout=20)
    assert process.poll() is None, output.text
    connection.config_set("maxmemory", 0)
    deadline = time.monotonic() + 40
    while Job.fetch(job.id, connection=connection).get_status() != JobStatus.FINISHED:
        assert time.monotonic() < deadline, f"the job did not run again:\n{output.text}"
        time.sleep(0.1)
    assert Job.fetch(job.id, connection=connection).return_value() == 2
    assert output.text.count(f"started (job {job.id})") == 2  # it ran again: at least once
    process.send_signal(signal.SIGINT)
    status, text = output.finish(timeout=20)
    assert status == 0, text
    assert "Traceback" not in text
    assert process.stderr is not None
    assert "Traceback" not in process.stderr.read().decode()
