"""Where every fetched job is recorded until it ends, and how jobs of a dead worker come back.

A worker moves each job id atomically (one Lua script: ``LMOVE`` from the first non-empty queue
in its order) into its own *work-in-progress* list, ``procman:wip:<worker>``, before anything
else happens to it; the job leaves that list in the same transaction that records it finished or
failed. So at every moment a job is in a queue, in exactly one worker's list, or done.

A worker is alive while its pool refreshes ``procman:alive:<worker>`` (every 2 s, expiring after
10 s). A list whose owner is not alive is moved back to the front of its queues by whichever pool
sees it first, under a short lock.

A job whose worker process dies while running it (``os._exit``, a segfault, the OOM killer) is
counted in its own hash (``procman_worker_deaths``); after ``MAX_WORKER_DEATHS`` such deaths it
is recorded failed instead of being put back, so one poisonous job cannot block its queue.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis
from rq.job import Job, JobStatus
from rq.job_lifecycle import record_job_failure
from rq.queue import Queue
from rq.registry import StartedJobRegistry
from rq.results import Result
from rq.utils import now
from rq.worker import Worker

WIP_PREFIX = "procman:wip:"
ALIVE_PREFIX = "procman:alive:"
REAPING_PREFIX = "procman:reaping:"
WORKERS_KEY = "procman:workers"
"""Every worker a pool has marked alive and not yet marked gone: the ones to look for when a
whole pool dies (an idle worker has no list of its own to find it by)."""
ALIVE_SECONDS = 10
REAP_LOCK_SECONDS = 30
DONE = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}
MAX_WORKER_DEATHS = 3
"""A job that killed its worker process this many times is failed, not run again (as Sidekiq
Pro's reliable fetch sends "poison pill" jobs to the dead set)."""
DEATHS_FIELD = "procman_worker_deaths"
"""A field of the job's own hash (``rq:job:<id>``): it goes when the job goes; RQ ignores it."""
TIMEOUT_KILL = (
    "JobTimeoutException: the job outlived its timeout and did not stop on SIGALRM; "
    "procman killed its worker process"
)

COUNT_DEATH_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
end
return 0
"""

FETCH_SCRIPT = """
for i = 2, #KEYS do
  local id = redis.call('LMOVE', KEYS[i], KEYS[1], 'LEFT', 'RIGHT')
  if id then return {i - 2, id} end
end
return false
"""


def wip_key(worker_name: str) -> str:
    return WIP_PREFIX + worker_name


def alive_key(worker_name: str) -> str:
    return ALIVE_PREFIX + worker_name


def mark_alive(connection: redis.Redis, worker_names: Iterable[str]) -> None:
    with connection.pipeline(transaction=False) as pipeline:
        for name in worker_names:
            pipeline.set(alive_key(name), "1", ex=ALIVE_SECONDS)
            pipeline.sadd(WORKERS_KEY, name)
        pipeline.execute()


def mark_gone(connection: redis.Redis, worker_name: str) -> None:
    with connection.pipeline(transaction=False) as pipeline:
        pipeline.delete(alive_key(worker_name))
        pipeline.srem(WORKERS_KEY, worker_name)
        pipeline.execute()


def requeue_in_progress(connection: redis.Redis, worker_name: str) -> list[str]:
    """Put every unfinished job of ``worker_name`` back at the front of its queue; return their ids.

    Each move is one MULTI: the id leaves the worker's list and enters the queue together, so a
    crash here loses and duplicates nothing. Jobs already finished or failed just leave the list.
    """
    key = wip_key(worker_name)
    requeued = []
    for raw in connection.lrange(key, 0, -1):
        job_id = raw.decode() if isinstance(raw, bytes) else str(raw)
        try:
            job = Job.fetch(job_id, connection=connection)
        except Exception:  # the hash expired or cannot be read: nothing to run
            connection.lrem(key, 1, job_id)
            continue
        if job.get_status(refresh=True) in DONE:
            connection.lrem(key, 1, job_id)
            continue
        queue = Queue(job.origin, connection=connection)
        with connection.pipeline() as pipeline:
            _forget_started(connection, pipeline, job)
            job.set_status(JobStatus.QUEUED, pipeline=pipeline)
            pipeline.lrem(key, 1, job_id)
            pipeline.lpush(queue.key, job_id)
            pipeline.sadd("rq:queues", queue.key)
            pipeline.execute()
        requeued.append(job_id)
    return requeued


def fail_in_progress(
    connection: redis.Redis,
    worker_name: str,
    job_id: str,
    reason: str,
    timeout: float | None = None,
) -> None:
    """Record a job that its worker could not finish as failed, as RQ records a failure: status,
    ``ended_at``, the failed registry and a failure result carrying ``reason`` (what
    ``Job.latest_result()``, ``rq info`` and ``procman jobs`` show). ``timeout`` is the one that
    applied, when the job's hash still has RQ's default in its place."""
    key = wip_key(worker_name)
    try:
        job = Job.fetch(job_id, connection=connection)
    except Exception:
        connection.lrem(key, 1, job_id)
        return
    job.ended_at = now()
    if timeout is not None and timeout >= 1:
        job.timeout = int(timeout)
    with connection.pipeline() as pipeline:
        _forget_started(connection, pipeline, job)
        record_job_failure(job, reason, pipeline)
        pipeline.lrem(key, 1, job_id)
        pipeline.execute()
    try:  # the dependents that may run after a failure (allow_dependency_failures), as RQ does
        Queue(job.origin, connection=connection).enqueue_dependents(job)
    except redis.RedisError:
        pass


def time_out_in_progress(
    connection: redis.Redis,
    worker_name: str,
    job_id: str,
    timeout: float | None,
    default_retry: tuple[int, list[int]],
) -> int | None:
    """A job whose worker was killed at its timeout: a failure like one stopped by SIGALRM, so it
    is retried (as RQ retries: scheduled after its next interval, or queued at once) while it has
    retries left, its own or ``default_retry`` (``queues.yml``'s ``retry:`` and its intervals)
    for a job enqueued without, its failure kept as its latest result; else recorded failed.
    The seconds until the retry, or None."""
    key = wip_key(worker_name)
    try:
        job = Job.fetch(job_id, connection=connection)
    except Exception:
        connection.lrem(key, 1, job_id)
        return None
    retries, intervals = default_retry
    if job.retries_left is None and retries > 0:
        job.retries_left = retries
        job.retry_intervals = intervals
    if not job.should_retry:
        fail_in_progress(connection, worker_name, job_id, TIMEOUT_KILL, timeout)
        return None
    wait = job.get_retry_interval()
    job.ended_at = now()
    with connection.pipeline() as pipeline:
        _forget_started(connection, pipeline, job)
        # what ``procman jobs show`` gives for this failure, as the worker keeps one it retries
        Result.create_failure(job, job.failure_ttl, TIMEOUT_KILL, worker_name, pipeline)
        job.retry(Queue(job.origin, connection=connection), pipeline)
        pipeline.lrem(key, 1, job_id)
        pipeline.execute()
    return wait


def still_running(connection: redis.Redis, job_id: str) -> bool:
    """Whether ``job_id`` exists and has not ended (finished, failed, stopped or canceled)."""
    try:
        return Job.fetch(job_id, connection=connection).get_status(refresh=False) not in DONE
    except Exception:  # the hash expired or cannot be read
        return False


def count_worker_death(connection: redis.Redis, job_id: str) -> int:
    """One more death of a worker process running ``job_id``; the total (0: the job is gone)."""
    count = connection.eval(COUNT_DEATH_SCRIPT, 1, Job.key_for(job_id), DEATHS_FIELD)
    return int(count)


def forget_worker_deaths(connection: redis.Redis, job_id: str) -> None:
    """A job retried by hand starts counting again."""
    connection.hdel(Job.key_for(job_id), DEATHS_FIELD)


def worker_died(connection: redis.Redis, worker_name: str) -> None:
    """What RQ's ``Worker.register_death`` does when a worker ends, for one that could not: out
    of the workers registry (so ``rq info`` and ``procman jobs`` stop listing it), marked dead."""
    key = Worker.redis_worker_namespace_prefix + worker_name
    worker = Worker.find_by_key(key, connection=connection)
    if worker is not None:
        worker.register_death()  # type: ignore[no-untyped-call]


def reap_dead_workers(connection: redis.Redis, reaper: str) -> dict[str, list[str]]:
    """Requeue the jobs of every worker whose pool stopped refreshing it (on any machine)."""
    found: dict[str, list[str]] = {}
    names = {
        _text(raw)[len(WIP_PREFIX) :]
        for raw in connection.scan_iter(match=WIP_PREFIX + "*", count=200)
    }
    names.update(_text(raw) for raw in connection.smembers(WORKERS_KEY))
    for name in sorted(names):
        if connection.exists(alive_key(name)):
            continue
        if not connection.set(REAPING_PREFIX + name, reaper, nx=True, ex=REAP_LOCK_SECONDS):
            continue
        try:
            requeued = requeue_in_progress(connection, name)
            worker_died(connection, name)
            connection.srem(WORKERS_KEY, name)
        finally:
            connection.delete(REAPING_PREFIX + name)
        if requeued:
            found[name] = requeued
    return found


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _forget_started(connection: redis.Redis, pipeline: redis.client.Pipeline, job: Job) -> None:
    """Drop the job's entries (``id:execution``) from its queue's started registry, so RQ's own
    clean-up never marks the requeued job abandoned."""
    registry = StartedJobRegistry(job.origin, connection=connection)
    prefix = f"{job.id}:"
    members: list[bytes] = connection.zrange(registry.key, 0, -1)  # type: ignore[assignment]
    for member in members:
        text = member.decode()
        if text == job.id or text.startswith(prefix):
            pipeline.zrem(registry.key, member)
