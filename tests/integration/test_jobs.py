"""procman jobs against a real Redis: jobs enqueued with RQ and run by RQ's SimpleWorker in burst
mode in this process, then inspected and repaired through procman.queues.monitoring and, for a
few cases, through the installed procman executable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.registry import FailedJobRegistry
from rq.results import Result
from rq.utils import current_timestamp
from rq.worker import SimpleWorker

from procman.errors import ProcmanError
from procman.queues import monitoring
from procman.queues.config import parse_queue_config
from tests.conftest import App
from tests.integration import monitoring_jobs

JOBS = "tests.integration.monitoring_jobs"
CONFIG = parse_queue_config("queues:\n  - [critical, 5]\n  - [default, 3]\n  - [low, 1]\n")


@pytest.fixture
def connection(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def enqueue(connection: redis.Redis, queue: str, func: str, *args: object) -> Job:
    return Queue(queue, connection=connection).enqueue(func, *args)


def work(connection: redis.Redis, *queues: str) -> None:
    SimpleWorker(list(queues), connection=connection).work(burst=True)


def commands_processed(connection: redis.Redis) -> int:
    return int(connection.info("stats")["total_commands_processed"])


# -- the overview -----------------------------------------------------------------------------


def test_overview_counts_each_queue_with_its_weight(connection: redis.Redis) -> None:
    enqueue(connection, "default", f"{JOBS}.add", 1, 2)
    enqueue(connection, "default", f"{JOBS}.fail", "boom")
    enqueue(connection, "critical", f"{JOBS}.fail", "bang")
    work(connection, "critical", "default")
    for n in range(3):
        enqueue(connection, "low", f"{JOBS}.add", n, n)
    Queue("default", connection=connection).enqueue_in(timedelta(hours=1), f"{JOBS}.add", 1, 1)
    enqueue(connection, "stray", f"{JOBS}.add", 0, 0)

    result = monitoring.overview(connection, CONFIG)

    counts = {
        q.name: (q.weight, q.configured, q.queued, q.scheduled, q.started, q.failed, q.finished)
        for q in result.queues
    }
    assert [q.name for q in result.queues] == ["critical", "default", "low", "stray"]
    assert counts == {
        "critical": (5, True, 0, 0, 0, 1, 0),
        "default": (3, True, 0, 1, 0, 1, 1),
        "low": (1, True, 3, 0, 0, 0, 0),
        "stray": (None, False, 1, 0, 0, 0, 0),
    }
    assert result.workers == ()  # a burst worker says goodbye


def test_without_a_queue_yaml_the_default_queue_is_shown(connection: redis.Redis) -> None:
    result = monitoring.overview(connection, None)
    assert [(q.name, q.weight, q.configured, q.queued) for q in result.queues] == [
        ("default", None, True, 0)
    ]


def test_workers_show_their_current_job_and_what_they_have_done(
    connection: redis.Redis, redis_url: str
) -> None:
    monitoring_jobs.OBSERVED.clear()
    enqueue(connection, "default", f"{JOBS}.add", 1, 2)
    enqueue(connection, "default", f"{JOBS}.fail", "boom")
    observer = enqueue(connection, "default", f"{JOBS}.observe", redis_url)
    work(connection, "default")

    (seen,) = monitoring_jobs.OBSERVED
    (worker,) = seen.workers
    assert worker.state == "busy"
    assert worker.queues == ("default",)
    assert worker.job_id == observer.id
    assert worker.job_description == f"{JOBS}.observe('{redis_url}')"
    assert worker.job_seconds is not None and 0 <= worker.job_seconds < 30
    assert (worker.successful_jobs, worker.failed_jobs) == (1, 1)
    assert worker.pid is not None and worker.hostname
    assert {q.name: q.started for q in seen.queues} == {"default": 1}


# -- failed jobs ------------------------------------------------------------------------------


def test_failed_lists_a_page_with_the_exceptions_last_line(connection: redis.Redis) -> None:
    for n in range(5):
        enqueue(connection, "default", f"{JOBS}.fail", f"boom {n}")
    enqueue(connection, "low", f"{JOBS}.fail", "low boom")
    work(connection, "default", "low")

    first = monitoring.failed_jobs(connection, CONFIG, "default", limit=2)
    rest = monitoring.failed_jobs(connection, CONFIG, "default", offset=2, limit=10)

    assert (first.total, len(first.jobs), rest.total, len(rest.jobs)) == (5, 2, 5, 3)
    jobs = first.jobs + rest.jobs
    assert sorted(job.error or "" for job in jobs) == [f"ValueError: boom {n}" for n in range(5)]
    assert len({job.id for job in jobs}) == 5
    assert all(job.queue == "default" and job.failed_at is not None for job in jobs)
    assert {job.description for job in jobs} == {f"{JOBS}.fail('boom {n}')" for n in range(5)}


def test_failed_across_queues_pages_through_each_queue_in_turn(connection: redis.Redis) -> None:
    for queue in ("critical", "default", "low"):
        for n in range(2):
            enqueue(connection, queue, f"{JOBS}.fail", f"{queue} {n}")
    work(connection, "critical", "default", "low")

    pages = [monitoring.failed_jobs(connection, CONFIG, offset=o, limit=4) for o in (0, 4)]

    assert [page.total for page in pages] == [6, 6]
    assert [[job.queue for job in page.jobs] for page in pages] == [
        ["critical", "critical", "default", "default"],
        ["low", "low"],
    ]


def test_unknown_queue_is_an_error_naming_it(connection: redis.Redis) -> None:
    with pytest.raises(ProcmanError, match=r"no queue named 'nope'") as raised:
        monitoring.failed_jobs(connection, CONFIG, "nope")
    assert raised.value.hint == "known queues: critical, default, low"


# -- one job ----------------------------------------------------------------------------------


def test_show_a_finished_job_gives_its_result(connection: redis.Redis) -> None:
    job = enqueue(connection, "default", f"{JOBS}.add", 2, 3)
    work(connection, "default")

    detail = monitoring.job_detail(connection, job.id)

    assert (detail.status, detail.queue, detail.function) == ("finished", "default", f"{JOBS}.add")
    assert (detail.args, detail.kwargs, detail.result, detail.traceback) == (
        ("2", "3"),
        {},
        "5",
        None,
    )
    assert detail.enqueued_at and detail.started_at and detail.ended_at and detail.worker


def test_show_a_failed_job_gives_the_full_traceback(connection: redis.Redis) -> None:
    job = enqueue(connection, "default", f"{JOBS}.fail", "no luck")
    work(connection, "default")

    detail = monitoring.job_detail(connection, job.id)

    assert detail.status == "failed"
    assert detail.traceback is not None
    assert detail.traceback.startswith("Traceback (most recent call last):")
    assert "raise ValueError(message)" in detail.traceback
    assert detail.traceback.rstrip().endswith("ValueError: no luck")


def test_show_a_scheduled_job_gives_its_time(connection: redis.Redis) -> None:
    job = Queue("low", connection=connection).enqueue_in(timedelta(minutes=5), f"{JOBS}.add", 1, 1)
    detail = monitoring.job_detail(connection, job.id)
    assert detail.status == "scheduled"
    assert detail.scheduled_for is not None and detail.result is None


@pytest.mark.parametrize("job_id", ["0123abcd", "not a valid id!"])
def test_unknown_job_is_an_error_naming_it(connection: redis.Redis, job_id: str) -> None:
    with pytest.raises(ProcmanError, match=f"no job with id '{job_id}'"):
        monitoring.job_detail(connection, job_id)


# -- repairs ----------------------------------------------------------------------------------


def test_retry_puts_a_failed_job_back_on_its_queue(connection: redis.Redis) -> None:
    job = enqueue(connection, "low", f"{JOBS}.fail", "again")
    work(connection, "low")

    ref = monitoring.retry_job(connection, job.id)

    assert (ref.id, ref.queue, ref.status) == (job.id, "low", "queued")
    assert Queue("low", connection=connection).get_job_ids() == [job.id]
    assert FailedJobRegistry("low", connection=connection).count == 0


def test_retry_refuses_a_job_that_has_not_failed(connection: redis.Redis) -> None:
    job = enqueue(connection, "default", f"{JOBS}.add", 1, 1)
    with pytest.raises(ProcmanError, match=f"job {job.id} is queued, not failed"):
        monitoring.retry_job(connection, job.id)


def test_retry_all_of_one_queue_leaves_the_others(connection: redis.Redis) -> None:
    for n in range(3):
        enqueue(connection, "default", f"{JOBS}.fail", str(n))
    enqueue(connection, "low", f"{JOBS}.fail", "low")
    work(connection, "default", "low")
    expired = FailedJobRegistry("default", connection=connection).get_job_ids()[0]
    connection.delete(Job.key_for(expired))  # its data gone, its registry entry left

    report = monitoring.retry_all(connection, CONFIG, "default")

    assert (report.queues, report.requeued, report.missing) == (("default",), 2, 1)
    assert Queue("default", connection=connection).count == 2
    assert FailedJobRegistry("default", connection=connection).count == 0
    assert FailedJobRegistry("low", connection=connection).count == 1


def test_delete_removes_the_job_and_its_registry_entry(connection: redis.Redis) -> None:
    job = enqueue(connection, "default", f"{JOBS}.fail", "bye")
    work(connection, "default")

    ref = monitoring.delete_job(connection, job.id)

    assert (ref.id, ref.status) == (job.id, "failed")
    assert not Job.exists(job.id, connection)
    assert FailedJobRegistry("default", connection=connection).count == 0


def test_clear_empties_the_queue_only(connection: redis.Redis) -> None:
    for n in range(3):
        enqueue(connection, "low", f"{JOBS}.add", n, n)
    enqueue(connection, "default", f"{JOBS}.add", 1, 1)

    assert monitoring.queue_size(connection, CONFIG, "low") == 3
    assert monitoring.clear_queue(connection, CONFIG, "low") == 3

    assert Queue("low", connection=connection).count == 0
    assert Queue("default", connection=connection).count == 1


# -- 100,000 failed jobs ----------------------------------------------------------------------


def make_failed_jobs(connection: redis.Redis, queue: str, count: int) -> None:
    """``count`` failed jobs as RQ stores them (job hash, failure result, registry entry), written
    in pipelines from one real RQ job rather than run one by one."""
    template = Job.create(f"{JOBS}.fail", args=("boom",), connection=connection, origin=queue)
    template.set_status(JobStatus.FAILED)
    fields = template.to_dict()
    traceback = "Traceback (most recent call last):\nValueError: boom\n"
    result = Result(template.id, Result.Type.FAILED, connection, exc_string=traceback).serialize()
    key = FailedJobRegistry(queue, connection=connection).key
    score = current_timestamp() + 3600
    for start in range(0, count, 10_000):
        ids = [f"failed-{n}" for n in range(start, min(count, start + 10_000))]
        with connection.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hset(Job.key_for(job_id), mapping=fields)
                pipe.xadd(Result.get_key(job_id), result)
            pipe.zadd(key, dict.fromkeys(ids, score))
            pipe.execute()


@pytest.mark.slow
def test_a_registry_of_100000_is_read_a_page_at_a_time(
    app: App, connection: redis.Redis, redis_url: str
) -> None:
    make_failed_jobs(connection, "default", 100_000)
    runs = {}
    for name, args in {
        "overview": ["jobs", "--json"],
        "failed": ["jobs", "failed", "--json", "--limit", "20", "--offset", "50000"],
        "show": ["jobs", "show", "failed-77777", "--json"],
    }.items():
        before = commands_processed(connection)
        result = app.run(*args, "--redis-url", redis_url)
        runs[name] = (commands_processed(connection) - before, result)
        assert result.returncode == 0, result.stderr

    assert json.loads(runs["overview"][1].stdout)["queues"][0]["failed"] == 100_000
    page = json.loads(runs["failed"][1].stdout)
    assert (page["total"], len(page["jobs"]), page["offset"]) == (100_000, 20, 50_000)
    assert {job["error"] for job in page["jobs"]} == {"ValueError: boom"}
    assert json.loads(runs["show"][1].stdout)["status"] == "failed"
    # Loading the registry would take 100,000 commands or more; a page takes a few per job.
    used = {name: count for name, (count, _) in runs.items()}
    assert used["overview"] < 30, used
    assert used["failed"] < 20 + 2 * 20, used
    assert used["show"] < 20, used


# -- the command line -------------------------------------------------------------------------


def test_cli_reads_the_redis_url_and_queues_from_the_app(
    app: App, connection: redis.Redis, redis_url: str
) -> None:
    app.write(".env", f"REDIS_PROVIDER=MY_REDIS\nMY_REDIS={redis_url}\n")
    app.write("queues.yml", "queues:\n  - [critical, 5]\n  - [low, 1]\n")
    enqueue(connection, "low", f"{JOBS}.add", 1, 1)
    enqueue(connection, "critical", f"{JOBS}.fail", "cli boom")
    work(connection, "critical")

    table = app.run("jobs")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[:5] == [
        f"redis: {redis_url} (from MY_REDIS (named by REDIS_PROVIDER))",
        "",
        "QUEUE     WEIGHT  QUEUED  SCHEDULED  STARTED  FAILED  FINISHED",
        "critical  5       0       0          0        1       0",
        "low       1       1       0          0        0       0",
    ]
    assert table.stdout.rstrip().endswith("no workers")

    failed = app.run("jobs", "failed")
    assert failed.returncode == 0, failed.stderr
    assert "ValueError: cli boom" in failed.stdout
    assert failed.stdout.splitlines()[-1] == "1-1 of 1 failed jobs"


def test_cli_retry_delete_and_clear(app: App, connection: redis.Redis, redis_url: str) -> None:
    app.write(".env", f"REDIS_URL={redis_url}\n")
    job = enqueue(connection, "default", f"{JOBS}.fail", "x")
    work(connection, "default")

    retried = app.run("jobs", "retry", job.id)
    assert (retried.returncode, retried.stdout) == (0, f"requeued job {job.id} on queue default\n")
    refused = app.run("jobs", "clear", "default", input=b"")
    assert refused.returncode == 2
    assert refused.stderr == (
        "procman: error: not deleting without confirmation (pass --yes (stdin is no terminal))\n"
    )
    cleared = app.run("jobs", "clear", "default", "--yes")
    assert (cleared.returncode, cleared.stdout) == (0, "deleted 1 job from queue default\n")
    gone = app.run("jobs", "delete", job.id)
    assert gone.returncode == 1
    assert gone.stderr.startswith(f"procman: error: no job with id '{job.id}'")


def test_cli_says_in_one_line_when_redis_is_unreachable(app: App) -> None:
    result = app.run("jobs", "failed", "--redis-url", "redis://:s3cret@127.0.0.1:1/0")
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        "procman: error: cannot reach Redis at redis://:***@127.0.0.1:1/0 (from --redis-url)"
    )
    assert "s3cret" not in line and "Traceback" not in line


def test_cli_options_may_come_before_the_command(app: App, redis_url: str) -> None:
    result = app.run("jobs", "--redis-url", redis_url, "--json", "failed")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["total"] == 0
