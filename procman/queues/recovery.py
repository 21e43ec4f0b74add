"""Where every fetched job is recorded until it ends, and how jobs of a dead worker come back.

A worker moves each job id atomically (one Lua script: ``LMOVE`` from the first non-empty queue
in its order) into its own *work-in-progress* list, ``procman:wip:<worker>``, before anything
else happens to it; the job leaves that list in the same transaction that records it finished or
failed. So at every moment a job is in a queue, in exactly one worker's list, or done.

A worker is alive while its pool refreshes ``procman:alive:<worker>`` (every 2 s, expiring after
10 s). A list whose owner is not alive is moved back to the front of its queues by whichever pool
sees it first, under a short lock.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.registry import FailedJobRegistry, StartedJobRegistry

WIP_PREFIX = "procman:wip:"
ALIVE_PREFIX = "procman:alive:"
REAPING_PREFIX = "procman:reaping:"
ALIVE_SECONDS = 10
REAP_LOCK_SECONDS = 30
DONE = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}

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
        pipeline.execute()


def mark_gone(connection: redis.Redis, worker_name: str) -> None:
    connection.delete(alive_key(worker_name))


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


def fail_in_progress(connection: redis.Redis, worker_name: str, job_id: str, reason: str) -> None:
    """Record a job that its worker could not finish (killed at its timeout) as failed."""
    key = wip_key(worker_name)
    try:
        job = Job.fetch(job_id, connection=connection)
    except Exception:
        connection.lrem(key, 1, job_id)
        return
    registry = FailedJobRegistry(job.origin, connection=connection)
    with connection.pipeline() as pipeline:
        _forget_started(connection, pipeline, job)
        job.set_status(JobStatus.FAILED, pipeline=pipeline)
        registry.add(job, exc_string=reason, pipeline=pipeline)
        pipeline.lrem(key, 1, job_id)
        pipeline.execute()


def reap_dead_workers(connection: redis.Redis, reaper: str) -> dict[str, list[str]]:
    """Requeue the jobs of every worker whose pool stopped refreshing it (on any machine)."""
    found: dict[str, list[str]] = {}
    for raw in connection.scan_iter(match=WIP_PREFIX + "*", count=200):
        key = raw.decode() if isinstance(raw, bytes) else str(raw)
        name = key[len(WIP_PREFIX) :]
        if connection.exists(alive_key(name)):
            continue
        if not connection.set(REAPING_PREFIX + name, reaper, nx=True, ex=REAP_LOCK_SECONDS):
            continue
        try:
            requeued = requeue_in_progress(connection, name)
        finally:
            connection.delete(REAPING_PREFIX + name)
        if requeued:
            found[name] = requeued
    return found


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
