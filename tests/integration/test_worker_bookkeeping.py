"""End-to-end: what ``procman worker`` writes to Redis per job (procman.queues.bookkeeping): few
commands, and everything RQ's readers need, left clean; the jobs its scripts do not cover go
through RQ's own handling."""

from __future__ import annotations

import pytest
import redis
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.registry import FinishedJobRegistry, StartedJobRegistry
from rq.results import Result

from tests.conftest import App

pytestmark = pytest.mark.timeout(90)

JOBS = """
from rq import Retry

def noop():
    return None

def add(a, b):
    return a + b

def again():
    return Retry(max=1)
"""
COMMANDS_PER_JOB = 20
"""The budget for a no-op job, in Redis commands (``INFO commandstats``; RQ's SimpleWorker: 57)."""


@pytest.fixture
def jobs_app(app: App, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> App:
    app.write("jobs.py", JOBS)
    app.write("queues.yml", "concurrency: 1\nretry: false\n")
    monkeypatch.setenv("REDIS_URL", redis_url)
    return app


def _calls(connection: redis.Redis) -> int:
    return sum(int(entry["calls"]) for entry in connection.info("commandstats").values())


def test_a_no_op_job_costs_at_most_20_redis_commands(jobs_app: App, redis_url: str) -> None:
    connection = redis.Redis.from_url(redis_url)
    queue = Queue("default", connection=connection)
    jobs = 300
    with connection.pipeline() as pipeline:
        queue.enqueue_many(
            [Queue.prepare_data("jobs.noop") for _ in range(jobs)], pipeline=pipeline
        )
        pipeline.execute()
    connection.config_resetstat()
    result = jobs_app.run("worker", "--burst", timeout=60)
    spent = _calls(connection) - 1  # the INFO itself
    assert result.returncode == 0, result.stdout + result.stderr
    assert FinishedJobRegistry("default", connection=connection).count == jobs
    # the pool's own start-up and the worker's registration are in the count too
    assert spent / jobs <= COMMANDS_PER_JOB, spent / jobs


def test_a_finished_job_is_recorded_as_rq_records_it_and_nothing_is_left(
    jobs_app: App, redis_url: str
) -> None:
    connection = redis.Redis.from_url(redis_url)
    queue = Queue("default", connection=connection)
    job = queue.enqueue("jobs.add", 2, 3, result_ttl=77)
    result = jobs_app.run("worker", "--burst", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    done = Job.fetch(job.id, connection=connection)
    assert done.get_status() == JobStatus.FINISHED
    assert done.return_value() == 5
    assert done.started_at is not None and done.ended_at is not None
    assert done.started_at <= done.ended_at
    assert done.worker_name
    latest = Result.fetch_latest(done)
    assert latest is not None and latest.type == Result.Type.SUCCESSFUL
    assert latest.worker_name == done.worker_name and latest.execution_id
    assert 0 < connection.ttl(done.key) <= 77
    assert 0 < connection.ttl(Result.get_key(job.id)) <= 77  # type: ignore[no-untyped-call]
    assert FinishedJobRegistry("default", connection=connection).get_job_ids() == [job.id]
    assert StartedJobRegistry("default", connection=connection).count == 0
    assert connection.keys("rq:execution:*") == []
    assert connection.keys("procman:wip:*") == []


def test_a_job_others_depend_on_goes_through_rq_which_enqueues_them(
    jobs_app: App, redis_url: str
) -> None:
    connection = redis.Redis.from_url(redis_url)
    queue = Queue("default", connection=connection)
    parent = queue.enqueue("jobs.add", 1, 1)
    child = queue.enqueue("jobs.add", 2, 2, depends_on=parent)
    assert child.get_status() == JobStatus.DEFERRED
    result = jobs_app.run("worker", "--burst", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    for job, value in ((parent, 2), (child, 4)):
        done = Job.fetch(job.id, connection=connection)
        assert (done.get_status(), done.return_value()) == (JobStatus.FINISHED, value)
    assert connection.keys("rq:execution:*") == []
    assert connection.keys("procman:wip:*") == []


def test_jobs_outside_the_scripts_reach_rq_s_own_handling(jobs_app: App, redis_url: str) -> None:
    connection = redis.Redis.from_url(redis_url)
    queue = Queue("default", connection=connection)
    gone = queue.enqueue("jobs.add", 1, 2, result_ttl=0)  # deleted once it finishes
    forever = queue.enqueue("jobs.add", 3, 4, result_ttl=-1)  # kept for ever
    retried = queue.enqueue("jobs.again")  # returns Retry(max=1): runs twice, then fails
    result = jobs_app.run("worker", "--burst", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not connection.exists(gone.key)
    kept = Job.fetch(forever.id, connection=connection)
    assert (kept.get_status(), kept.return_value(), connection.ttl(kept.key)) == (
        JobStatus.FINISHED,
        7,
        -1,
    )
    assert Job.fetch(retried.id, connection=connection).get_status() == JobStatus.FAILED
    assert connection.keys("rq:execution:*") == []
    assert connection.keys("procman:wip:*") == []
