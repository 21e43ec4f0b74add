"""What the queues hold and what the workers do (Resque's list), and the few repairs:
retry, delete, clear. Library code for ``procman jobs``: returns frozen objects, never prints.

Built to stay fast with 100,000 jobs in a registry: queue and registry sizes are counted in Redis
(LLEN, ZCARD) in one round trip, listings read one page of ids and fetch only those jobs in one
pipeline, and nothing here ever loads a whole queue or registry. Reading never changes anything
in Redis except what RQ itself does when it reads (dropping expired entries from the failed
registry); abandoned jobs are left to the workers, which own that decision.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.registry import (
    FailedJobRegistry,
    FinishedJobRegistry,
    StartedJobRegistry,
)
from rq.results import Result
from rq.worker import Worker

from procman.errors import ProcmanError, UsageError, excerpt
from procman.queues.config import ALL_QUEUES, DEFAULT_CONFIG, QueueConfig
from procman.queues.connection import connect, unavailable
from procman.queues.recovery import forget_worker_deaths
from procman.queues.redis_url import RedisUrl

RETRY_BATCH = 500
"""Failed jobs requeued per round by ``retry_all``: ids are read a batch at a time, never all."""


# -- results ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueStats:
    name: str
    weight: int | None
    """From the queue YAML; None in strict order or for a queue the YAML does not list."""
    configured: bool
    """Listed in the queue YAML (or the default queue, with no YAML): served by its workers."""
    queued: int
    scheduled: int
    started: int
    failed: int
    finished: int

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "weight": self.weight,
            "configured": self.configured,
            "queued": self.queued,
            "scheduled": self.scheduled,
            "started": self.started,
            "failed": self.failed,
            "finished": self.finished,
        }


@dataclass(frozen=True, slots=True)
class WorkerStats:
    name: str
    hostname: str | None
    pid: int | None
    state: str
    queues: tuple[str, ...]
    job_id: str | None
    """The job it is running; None when idle."""
    job_description: str | None
    job_seconds: float | None
    """How long the current job has run."""
    successful_jobs: int
    failed_jobs: int
    started_at: datetime | None
    last_heartbeat: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hostname": self.hostname,
            "pid": self.pid,
            "state": self.state,
            "queues": list(self.queues),
            "job": None
            if self.job_id is None
            else {
                "id": self.job_id,
                "description": self.job_description,
                "seconds": self.job_seconds,
            },
            "successful_jobs": self.successful_jobs,
            "failed_jobs": self.failed_jobs,
            "started_at": _iso(self.started_at),
            "last_heartbeat": _iso(self.last_heartbeat),
        }


@dataclass(frozen=True, slots=True)
class Overview:
    redis: str
    """The Redis URL, password hidden."""
    queues: tuple[QueueStats, ...]
    workers: tuple[WorkerStats, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "redis": self.redis,
            "queues": [queue.as_json() for queue in self.queues],
            "workers": [worker.as_json() for worker in self.workers],
        }


@dataclass(frozen=True, slots=True)
class FailedJob:
    id: str
    queue: str
    description: str | None
    """The call as RQ recorded it at enqueue time, like ``app.jobs.send('a@b.c')``; None when
    the job's data has expired or been deleted."""
    failed_at: datetime | None
    error: str | None
    """The exception's last line, like ``ValueError: bad address``."""

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "queue": self.queue,
            "description": self.description,
            "failed_at": _iso(self.failed_at),
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class FailedPage:
    queues: tuple[str, ...]
    total: int
    offset: int
    limit: int
    jobs: tuple[FailedJob, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "queues": list(self.queues),
            "total": self.total,
            "offset": self.offset,
            "limit": self.limit,
            "jobs": [job.as_json() for job in self.jobs],
        }


@dataclass(frozen=True, slots=True)
class JobDetail:
    id: str
    queue: str
    status: str
    description: str | None
    function: str | None
    args: tuple[str, ...] | None
    """``repr`` of each argument; None when they cannot be decoded here."""
    kwargs: dict[str, str] | None
    decode_error: str | None
    """Why the function and arguments could not be decoded (a class only the app can import)."""
    created_at: datetime | None
    enqueued_at: datetime | None
    scheduled_for: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    worker: str | None
    timeout: float | None
    retries_left: int | None
    result: str | None
    """``repr`` of the return value of the latest successful run."""
    traceback: str | None
    """The full traceback of the latest failed run."""

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "queue": self.queue,
            "status": self.status,
            "description": self.description,
            "function": self.function,
            "args": None if self.args is None else list(self.args),
            "kwargs": self.kwargs,
            "decode_error": self.decode_error,
            "created_at": _iso(self.created_at),
            "enqueued_at": _iso(self.enqueued_at),
            "scheduled_for": _iso(self.scheduled_for),
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "worker": self.worker,
            "timeout": self.timeout,
            "retries_left": self.retries_left,
            "result": self.result,
            "traceback": self.traceback,
        }


@dataclass(frozen=True, slots=True)
class JobRef:
    """A job acted on: which, and where it is now."""

    id: str
    queue: str
    status: str


@dataclass(frozen=True, slots=True)
class RetryReport:
    queues: tuple[str, ...]
    """The queues jobs were put back on."""
    requeued: int
    missing: int
    """Registry entries whose job data was gone (expired or deleted): dropped, not requeued."""


# -- connecting -------------------------------------------------------------------------------


@contextmanager
def connected(url: RedisUrl) -> Iterator[redis.Redis]:
    """A client that has answered a PING, closed after the block; any Redis failure, on
    connecting or inside the block, becomes one ProcmanError line (URL redacted, what to do)."""
    client = connect(url)
    try:
        yield client
    except redis.RedisError as error:
        raise unavailable(url, error, tried="reading the queues") from None
    finally:
        client.close()


# -- reading ----------------------------------------------------------------------------------


def overview(
    connection: redis.Redis,
    config: QueueConfig | None = None,
    *,
    redis_label: str = "",
    now: datetime | None = None,
) -> Overview:
    """Every queue (the queue YAML's, then any other Redis knows) with its counts, and every
    worker with what it is doing. A fixed number of Redis commands per queue and per worker."""
    moment = now or datetime.now(UTC)
    queues = _known_queues(connection, config or DEFAULT_CONFIG)
    stats = _queue_stats(connection, queues, moment)
    return Overview(redis=redis_label, queues=stats, workers=_workers(connection, moment))


def failed_jobs(
    connection: redis.Redis,
    config: QueueConfig | None = None,
    queue: str | None = None,
    *,
    offset: int = 0,
    limit: int = 20,
) -> FailedPage:
    """One page of failed jobs: of ``queue``, or of every queue in turn (the queue YAML's order),
    newest first within each queue."""
    if offset < 0 or limit < 1:
        raise UsageError(f"offset must be 0 or more and limit 1 or more (got {offset}, {limit})")
    names = _selected_queues(connection, config, queue)
    registries = [FailedJobRegistry(name, connection=connection) for name in names]
    counts = [registry.count for registry in registries]  # drops expired entries, as RQ does
    slices: list[tuple[str, list[str]]] = []
    skip, wanted = offset, limit
    for registry, count in zip(registries, counts, strict=True):
        if wanted == 0:
            break
        if skip >= count:
            skip -= count
            continue
        ids = registry.get_job_ids(skip, skip + wanted - 1, desc=True, cleanup=False)
        slices.append((registry.name, ids))
        skip, wanted = 0, wanted - len(ids)
    jobs = [job for name, ids in slices for job in _failed_entries(connection, name, ids) if job]
    return FailedPage(
        queues=tuple(names), total=sum(counts), offset=offset, limit=limit, jobs=tuple(jobs)
    )


def job_detail(connection: redis.Redis, job_id: str) -> JobDetail:
    """Everything RQ knows about one job: its call, status, times, and result or traceback."""
    job = fetch_job(connection, job_id)
    status = job.get_status(refresh=False)
    function, args, kwargs, decode_error = _decoded_call(job)
    result, traceback, result_error = _latest_outcome(job)
    return JobDetail(
        id=job.id,
        queue=job.origin,
        status=status.value,
        description=job.description,
        function=function,
        args=args,
        kwargs=kwargs,
        decode_error=decode_error or result_error,
        created_at=job.created_at,
        enqueued_at=job.enqueued_at,
        scheduled_for=_scheduled_for(connection, job) if status == JobStatus.SCHEDULED else None,
        started_at=job.started_at,
        ended_at=job.ended_at,
        worker=job.worker_name,
        timeout=job.timeout,
        retries_left=job.retries_left,
        result=result,
        traceback=traceback,
    )


def fetch_job(connection: redis.Redis, job_id: str) -> Job:
    try:
        return Job.fetch(job_id, connection=connection)
    except (NoSuchJobError, ValueError):  # ValueError: not even a valid RQ job id
        raise ProcmanError(
            f"no job with id {excerpt(job_id)!r}",
            "see the ids with 'procman jobs failed'; finished jobs are kept for 500 s by default",
        ) from None


def queue_size(connection: redis.Redis, config: QueueConfig | None, queue: str) -> int:
    """The number of jobs waiting in ``queue``; ProcmanError when no such queue is known."""
    (name,) = _selected_queues(connection, config, queue)
    return Queue(name, connection=connection).count


# -- changing ---------------------------------------------------------------------------------


def retry_job(connection: redis.Redis, job_id: str) -> JobRef:
    """Move one failed job back onto its queue."""
    job = fetch_job(connection, job_id)
    registry = FailedJobRegistry(job.origin, connection=connection)
    try:
        requeued = registry.requeue(job)
    except InvalidJobOperation:
        raise ProcmanError(
            f"job {job.id} is {job.get_status(refresh=False).value}, not failed",
            "only failed jobs can be retried: see 'procman jobs failed'",
        ) from None
    forget_worker_deaths(connection, job.id)
    return JobRef(requeued.id, requeued.origin, requeued.get_status(refresh=False).value)


def retry_all(
    connection: redis.Redis, config: QueueConfig | None = None, queue: str | None = None
) -> RetryReport:
    """Move every failed job of ``queue`` (or of every queue) back onto its queue, a batch of ids
    at a time. Jobs that fail again meanwhile wait for the next ``retry --all``."""
    requeued = missing = 0
    requeued_to: list[str] = []
    for name in _selected_queues(connection, config, queue):
        registry = FailedJobRegistry(name, connection=connection)
        left = registry.count  # bounds the loop: jobs failing meanwhile are not chased
        before = requeued
        while left > 0:
            ids = registry.get_job_ids(0, min(left, RETRY_BATCH) - 1, cleanup=False)
            if not ids:
                break
            for job_id in ids:
                done, gone = _requeue(registry, job_id)
                requeued += done
                missing += gone
            left -= len(ids)
        if requeued > before:
            requeued_to.append(name)
    return RetryReport(queues=tuple(requeued_to), requeued=requeued, missing=missing)


def delete_job(connection: redis.Redis, job_id: str) -> JobRef:
    """Delete a job and its results from Redis, wherever it is (queue or registry)."""
    job = fetch_job(connection, job_id)
    status = job.get_status(refresh=False)
    if status == JobStatus.STARTED:
        raise ProcmanError(
            f"job {job.id} is running (on {job.worker_name or 'a worker'})",
            "wait for it to end, then delete it",
        )
    job.delete()
    return JobRef(job.id, job.origin, status.value)


def clear_queue(connection: redis.Redis, config: QueueConfig | None, queue: str) -> int:
    """Delete every job waiting in ``queue``; the number deleted. Registries are left alone."""
    (name,) = _selected_queues(connection, config, queue)
    removed: int = Queue(name, connection=connection).empty()  # type: ignore[no-untyped-call]
    return removed


# -- helpers ----------------------------------------------------------------------------------


def _known_queues(
    connection: redis.Redis, config: QueueConfig
) -> list[tuple[str, int | None, bool]]:
    """``(name, weight, configured)``: the YAML's queues in its order, then the others Redis
    knows (any queue RQ ever enqueued to), by name."""
    every = any(queue.name == ALL_QUEUES for queue in config.queues)  # '*': all are served
    listed = [(queue.name, queue.weight, True) for queue in config.queues if not every]
    names = {name for name, _, _ in listed}
    others = sorted(q.name for q in Queue.all(connection=connection) if q.name not in names)
    return listed + [(name, None, every) for name in others]


def _selected_queues(
    connection: redis.Redis, config: QueueConfig | None, queue: str | None
) -> list[str]:
    known = [name for name, _, _ in _known_queues(connection, config or DEFAULT_CONFIG)]
    if queue is None:
        return known
    if queue not in known:
        raise ProcmanError(
            f"no queue named {excerpt(queue)!r}",
            f"known queues: {', '.join(known)}" if known else "no queue has had a job yet",
        )
    return [queue]


def _queue_stats(
    connection: redis.Redis, queues: Sequence[tuple[str, int | None, bool]], now: datetime
) -> tuple[QueueStats, ...]:
    """All counts in one pipeline, seven commands a queue. Failed and finished entries whose time
    to live has passed are not counted (as RQ's own ``count`` after its cleanup), nor removed."""
    expiry = now.timestamp()
    with connection.pipeline(transaction=False) as pipe:
        for name, _, _ in queues:
            failed = FailedJobRegistry(name, connection=connection).key
            finished = FinishedJobRegistry(name, connection=connection).key
            queue = Queue(name, connection=connection)
            pipe.llen(queue.key)
            pipe.zcard(queue.scheduled_job_registry.key)
            pipe.zcard(StartedJobRegistry(name, connection=connection).key)
            pipe.zcard(failed)
            pipe.zcount(failed, 0, expiry)
            pipe.zcard(finished)
            pipe.zcount(finished, 0, expiry)
        replies: list[int] = pipe.execute()
    stats = []
    for index, (name, weight, configured) in enumerate(queues):
        queued, scheduled, started, failed_all, failed_expired, finished_all, finished_expired = (
            replies[index * 7 : index * 7 + 7]
        )
        stats.append(
            QueueStats(
                name=name,
                weight=weight,
                configured=configured,
                queued=queued,
                scheduled=scheduled,
                started=started,
                failed=failed_all - failed_expired,
                finished=finished_all - finished_expired,
            )
        )
    return tuple(stats)


def _workers(connection: redis.Redis, now: datetime) -> tuple[WorkerStats, ...]:
    workers = sorted(
        Worker.all(connection=connection), key=lambda w: (w.hostname or "", w.pid or 0, w.name)
    )
    executions = [worker.get_current_executions() for worker in workers]
    current = [running[0] if running else None for running in executions]
    jobs = Job.fetch_many(
        [execution.job_id for execution in current if execution], connection=connection
    )
    descriptions = {job.id: job.description for job in jobs if job is not None}
    return tuple(
        WorkerStats(
            name=worker.name,
            hostname=worker.hostname,
            pid=worker.pid,
            state=worker.get_state(),
            queues=tuple(worker.queue_names()),
            job_id=execution.job_id if execution else None,
            job_description=descriptions.get(execution.job_id) if execution else None,
            job_seconds=max(0.0, (now - execution.created_at).total_seconds())
            if execution
            else None,
            successful_jobs=worker.successful_job_count,
            failed_jobs=worker.failed_job_count,
            started_at=worker.birth_date,
            last_heartbeat=worker.last_heartbeat,
        )
        for worker, execution in zip(workers, current, strict=True)
    )


def _failed_entries(connection: redis.Redis, queue: str, ids: Sequence[str]) -> list[FailedJob]:
    """The page's jobs and their latest results, in one pipeline (two commands a job)."""
    if not ids:
        return []
    with connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hgetall(Job.key_for(job_id))
            results_key = Result.get_key(job_id)  # type: ignore[no-untyped-call]
            pipe.xrevrange(results_key, "+", "-", count=1)
        replies = pipe.execute()
    entries = []
    for index, job_id in enumerate(ids):
        data, latest = replies[2 * index], replies[2 * index + 1]
        entries.append(_failed_entry(connection, queue, job_id, data, latest))
    return entries


def _failed_entry(
    connection: redis.Redis, queue: str, job_id: str, data: dict[bytes, bytes], latest: Any
) -> FailedJob:
    if not data:
        return FailedJob(job_id, queue, None, None, "(the job's data has expired or was deleted)")
    job = Job(job_id, connection=connection)
    job.restore(data)
    result = None
    if latest:
        result_id, payload = latest[0]
        try:
            result = Result.restore(job_id, result_id.decode(), payload, connection=connection)
        except Exception:  # an undecodable return value: the exception text is still useful
            result = None
    error = _last_line(result.exc_string) if result is not None and result.exc_string else None
    failed_at = job.ended_at or (result.created_at if result is not None else None)
    return FailedJob(job_id, job.origin or queue, job.description, failed_at, error)


def _last_line(text: str) -> str | None:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else None


def _decoded_call(
    job: Job,
) -> tuple[str | None, tuple[str, ...] | None, dict[str, str] | None, str | None]:
    """The function and ``repr`` of each argument. Decoding unpickles the job's data, which may
    need a class only the app can import: then None, and why."""
    try:
        function = job.func_name
        args = tuple(repr(arg) for arg in job.args)
        kwargs = {str(key): repr(value) for key, value in job.kwargs.items()}
    except Exception as error:  # unpickling runs arbitrary code and can raise anything
        return None, None, None, f"cannot decode the job's call here: {_cause(error)}"
    return function, args, kwargs, None


def _latest_outcome(job: Job) -> tuple[str | None, str | None, str | None]:
    """``(repr of the return value, traceback, why the result could not be decoded)``."""
    try:
        result = job.latest_result()
    except Exception as error:  # unpickling the return value can raise anything
        return None, None, f"cannot decode the job's result here: {_cause(error)}"
    if result is None:
        return None, None, None
    if result.type == Result.Type.SUCCESSFUL:
        return repr(result.return_value), None, None
    return None, result.exc_string or None, None


def _cause(error: BaseException) -> str:
    while error.__cause__ is not None:
        error = error.__cause__
    text = excerpt(str(error), 100)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _scheduled_for(connection: redis.Redis, job: Job) -> datetime | None:
    try:
        registry = Queue(job.origin, connection=connection).scheduled_job_registry
        scheduled: datetime = registry.get_scheduled_time(job)
        return scheduled
    except NoSuchJobError:
        return None


def _requeue(registry: FailedJobRegistry, job_id: str) -> tuple[int, int]:
    """``(1, 0)`` requeued, ``(0, 1)`` data gone (entry dropped), ``(0, 0)`` already moved."""
    try:
        registry.requeue(job_id)
    except NoSuchJobError:
        registry.remove(job_id)
        return 0, 1
    except InvalidJobOperation:  # someone else requeued or deleted it meanwhile
        return 0, 0
    forget_worker_deaths(registry.connection, job_id)
    return 1, 0


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
