"""Where every fetched job is recorded until it ends, and how jobs of a dead worker come back.

A worker moves each job id atomically (one Lua script: ``LMOVE`` from the first non-empty queue
in its order, see ``procman.queues.bookkeeping``) into its own *work-in-progress* list,
``procman:wip:<worker>``, in the same step that records it started; the job leaves that list in
the same script or transaction that records it finished or failed. So at every moment a job is
in a queue, in exactly one worker's list, or done.

Recovery reads a registry procman keeps, never the keyspace, so it costs O(workers) however big
the Redis: ``procman:workers`` lists every worker (its pool adds it before forking it, the worker
itself again before its first fetch), ``procman:pools`` says where each pool runs (machine, pid,
process start time). A worker is alive while its pool refreshes ``procman:alive:<worker>`` (every
2 s, expiring after 10 s, on Redis's clock). Another pool judges it dead only when that key has
expired, or when its pool ran on the same machine and that process is gone; a pool never judges
its own workers (it is their parent and sees them die). A dead worker's list is moved back to the
front of its queues by whichever pool sees it first, under a short lock.

A job whose worker process dies while running it (``os._exit``, a segfault, the OOM killer) is
counted in its own hash (``procman_worker_deaths``); after ``MAX_WORKER_DEATHS`` such deaths it
is recorded failed instead of being put back, so one poisonous job cannot block its queue.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import redis
from rq.executions import WORKER_EXECUTIONS_KEY_TEMPLATE
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.registry import StartedJobRegistry
from rq.results import Result
from rq.utils import now
from rq.worker import Worker

from procman.queues.bookkeeping import EXECUTION_PREFIX
from procman.queues.rq_private import QUEUES_KEY, record_job_failure
from procman.queues.stats import count_job

WIP_PREFIX = "procman:wip:"
ALIVE_PREFIX = "procman:alive:"
REAPING_PREFIX = "procman:reaping:"
WORKERS_KEY = "procman:workers"
"""Every worker a pool has marked alive and not yet marked gone: the ones to look for when a
whole pool dies (an idle worker has no list of its own to find it by)."""
POOLS_KEY = "procman:pools"
"""Pool id (``host.pid``, what its workers' names start with) -> where it runs, as JSON."""
WAKE_PREFIX = "procman:wake:"
"""``procman:wake:<queue>``: a short list ``enqueue`` (and recovery) pushes a token to with each
job, for idle workers to block on where Redis sends no keyspace notifications (``CONFIG``
disabled)."""
WAKE_KEEP = 100
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


def wip_key(worker_name: str) -> str:
    return WIP_PREFIX + worker_name


def alive_key(worker_name: str) -> str:
    return ALIVE_PREFIX + worker_name


def wake_key(queue_name: str) -> str:
    return WAKE_PREFIX + queue_name


def wake(pipeline: redis.client.Pipeline, queue_names: Sequence[str]) -> None:
    """Queue a token on each queue's wake-up list (kept short: tokens are only hints)."""
    for name in queue_names:
        pipeline.lpush(wake_key(name), "1")
        pipeline.ltrim(wake_key(name), 0, WAKE_KEEP - 1)


@dataclass(frozen=True, slots=True)
class PoolPlace:
    """Where a pool runs: enough for a pool on the same machine to tell that it is gone."""

    id: str
    """``host.pid``: what the names of its workers start with."""
    machine: str
    """Host name, boot id and pid namespace ("" when unknown: then only heartbeats count)."""
    pid: int
    started: str
    """The process's start time (``/proc/PID/stat``), so a reused pid is not taken for it."""

    def to_json(self) -> str:
        return json.dumps({"machine": self.machine, "pid": self.pid, "started": self.started})

    @classmethod
    def from_json(cls, pool_id: str, text: bytes | str) -> PoolPlace | None:
        try:
            data = json.loads(text)
            return cls(pool_id, str(data["machine"]), int(data["pid"]), str(data["started"]))
        except (ValueError, KeyError, TypeError):
            return None

    def is_gone(self) -> bool:
        """True only when this machine is where the pool ran and its process no longer runs."""
        here = this_machine()
        return bool(here) and self.machine == here and process_started(self.pid) != self.started


def this_pool(pid: int | None = None) -> PoolPlace:
    pid = os.getpid() if pid is None else pid
    return PoolPlace(
        f"{socket.gethostname()}.{pid}", this_machine(), pid, process_started(pid) or ""
    )


def this_machine() -> str:
    """Host name, boot id and pid namespace: pids mean the same only where all three match."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    return f"{socket.gethostname()} {boot} {namespace}"


def process_started(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks after boot), None when there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def pool_of(worker_name: str) -> str:
    """The pool id a worker's name starts with (``host.pid.serial``; host names have dots)."""
    return worker_name.rsplit(".", 1)[0]


def mark_alive(
    connection: redis.Redis, worker_names: Iterable[str], pool: PoolPlace | None = None
) -> None:
    with connection.pipeline(transaction=False) as pipeline:
        for name in worker_names:
            pipeline.set(alive_key(name), "1", ex=ALIVE_SECONDS)
            pipeline.sadd(WORKERS_KEY, name)
        if pool is not None:
            pipeline.hset(POOLS_KEY, pool.id, pool.to_json())
        pipeline.execute()


def pool_gone(connection: redis.Redis, pool: PoolPlace) -> None:
    """A pool that stops cleanly leaves the registry (its workers have left it already)."""
    connection.hdel(POOLS_KEY, pool.id)


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
            pipeline.sadd(QUEUES_KEY, queue.key)
            wake(pipeline, [job.origin])
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
        count_job(pipeline, failed=True)
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
    else:  # its hash expired: its set of executions (which has no expiry of its own) goes too
        connection.delete(WORKER_EXECUTIONS_KEY_TEMPLATE.format(worker_name))


def find_dead_workers(
    connection: redis.Redis, judge: PoolPlace, *, own_too: bool = False
) -> list[str]:
    """The workers of other pools that are dead: their alive key expired, or their pool ran on
    this machine and its process is gone. Two round trips, O(workers); no keyspace scan.

    ``own_too``: names under the judge's own pool id count as well (a pool about to start its
    first worker: any such name is a previous process's that had the same pid)."""
    names = sorted(_text(raw) for raw in connection.smembers(WORKERS_KEY))
    if not own_too:
        names = [name for name in names if pool_of(name) != judge.id]
    if not names:
        return []
    with connection.pipeline(transaction=False) as pipeline:
        for name in names:
            pipeline.exists(alive_key(name))
        pipeline.hgetall(POOLS_KEY)
        *alive, pools = pipeline.execute()
    places = {_text(key): PoolPlace.from_json(_text(key), value) for key, value in pools.items()}

    def dead(name: str, is_alive: bool) -> bool:
        if not is_alive or (own_too and pool_of(name) == judge.id):
            return True
        place = places.get(pool_of(name))
        return place is not None and place.is_gone()

    return [name for name, is_alive in zip(names, alive, strict=True) if dead(name, is_alive)]


def recover_worker(connection: redis.Redis, name: str, reaper: str) -> list[str] | None:
    """Requeue the jobs of dead worker ``name`` and unregister it; None when another pool is at it.

    Its name leaves the registry only after its jobs are back, so a crash half way leaves it for
    the next pool to finish."""
    if not connection.set(REAPING_PREFIX + name, reaper, nx=True, ex=REAP_LOCK_SECONDS):
        return None
    try:
        requeued = requeue_in_progress(connection, name)
        worker_died(connection, name)
        mark_gone(connection, name)
    finally:
        connection.delete(REAPING_PREFIX + name)
    return requeued


def forget_gone_pools(connection: redis.Redis, judge: PoolPlace) -> None:
    """Drop the registry entries of pools that have no worker left in it (a live pool writes its
    own back within 2 s, and until then is judged by its workers' heartbeats alone)."""
    pools = {_text(key) for key in connection.hkeys(POOLS_KEY)}
    with_workers = {pool_of(_text(raw)) for raw in connection.smembers(WORKERS_KEY)}
    empty = sorted(pools - with_workers - {judge.id})
    if empty:
        connection.hdel(POOLS_KEY, *empty)


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _forget_started(connection: redis.Redis, pipeline: redis.client.Pipeline, job: Job) -> None:
    """Drop the job's entries (``id:execution``) from its queue's started registry, so RQ's own
    clean-up never marks the requeued job abandoned, and the execution they name (its hash, and
    its place in its worker's set: procman's worker gives neither an expiry)."""
    registry = StartedJobRegistry(job.origin, connection=connection)
    prefix = f"{job.id}:"
    members: list[bytes] = connection.zrange(registry.key, 0, -1)  # type: ignore[assignment]
    for member in members:
        text = member.decode()
        if text == job.id or text.startswith(prefix):
            pipeline.zrem(registry.key, member)
            if text != job.id:
                pipeline.delete(EXECUTION_PREFIX + text)
                if job.worker_name:
                    pipeline.srem(WORKER_EXECUTIONS_KEY_TEMPLATE.format(job.worker_name), text)
