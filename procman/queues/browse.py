"""The dashboard's reads and repairs: pending, failed and scheduled jobs a page at a time, the
periodic schedule, and the bulk actions done in batches.

As ``procman.queues.monitoring`` (which this builds on), built for Redis holding hundreds of
thousands of jobs: a page reads one slice of ids (``LRANGE``/``ZRANGE``) and fetches only those
jobs, in one pipeline; sizes come from ``LLEN``/``ZCARD``; bulk actions go a batch of ids at a
time, a few round trips a batch. Nothing here decodes (unpickles) a job's data: what a listing
shows is the call as RQ recorded it at enqueue time (``description``), and the exception text
RQ stored; ``monitoring.job_detail`` decodes one job when asked for it.
"""

from __future__ import annotations

import zlib
from base64 import b64decode
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from rq.exceptions import NoSuchJobError
from rq.executions import ExecutionRegistry
from rq.job import Job
from rq.queue import Queue
from rq.registry import FailedJobRegistry
from rq.results import Result
from rq.utils import utcparse

from procman.errors import ProcmanError, UsageError, excerpt
from procman.queues.config import DEFAULT_CONFIG, QueueConfig
from procman.queues.connection import CONNECT_TIMEOUT, unavailable
from procman.queues.monitoring import _iso, _last_line, _selected_queues, fetch_job
from procman.queues.recovery import DEATHS_FIELD, POOLS_KEY, pool_of
from procman.queues.redis_url import RedisUrl
from procman.queues.rq_private import has_dependencies

BATCH = 500
"""Ids per round of a bulk action."""
SEARCH_SCAN = 2000
"""Failed entries a search looks through at most per request (newest first); the page says where
it stopped, and the next request goes on from there."""
STOP_PREFIX = "procman:stop:"
STOP_SECONDS = 60
"""A stop request the pool has not picked up by then (it looks every 2 s) is dropped."""
FIELDS = ("description", "created_at", "enqueued_at", "ended_at", "origin", "worker_name")


# -- results ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobRow:
    """A job in a listing: what Redis holds about it, nothing decoded."""

    id: str
    queue: str
    description: str | None
    """The call, like ``app.jobs.send('a@b.c')``; None when the job's data is gone."""
    created_at: datetime | None
    enqueued_at: datetime | None
    ended_at: datetime | None
    worker: str | None
    scheduled_for: datetime | None = None
    error: str | None = None
    """Failed jobs: the exception's last line."""
    traceback: str | None = None
    """Failed jobs: the whole traceback of the latest failed run."""

    @property
    def function(self) -> str | None:
        """The function's dotted name, from the description."""
        if self.description is None:
            return None
        return self.description.split("(", 1)[0]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "queue": self.queue,
            "function": self.function,
            "description": self.description,
            "created_at": _iso(self.created_at),
            "enqueued_at": _iso(self.enqueued_at),
            "ended_at": _iso(self.ended_at),
            "worker": self.worker,
            "scheduled_for": _iso(self.scheduled_for),
            "error": self.error,
            "traceback": self.traceback,
        }


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing. ``total`` is exact: the jobs listed (for a search, the failed jobs
    it looks through)."""

    kind: str
    queue: str | None
    total: int
    offset: int
    limit: int
    jobs: tuple[JobRow, ...]
    newest_first: bool = True
    search: str | None = None
    searched: int | None = None
    """A search: how many entries it looked through (newest first, from ``offset``)."""
    next_offset: int | None = None
    """A search that stopped before the end: where the next request goes on."""
    more: bool = False
    """Whether a next page has jobs."""

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "queue": self.queue,
            "total": self.total,
            "offset": self.offset,
            "limit": self.limit,
            "newest_first": self.newest_first,
            "search": self.search,
            "searched": self.searched,
            "next_offset": self.next_offset,
            "more": self.more,
            "jobs": [job.as_json() for job in self.jobs],
        }


@dataclass(frozen=True, slots=True)
class Periodic:
    """A ``schedule:`` entry of the queue YAML with its next run."""

    name: str
    cron: str
    func: str
    queue: str
    next_run: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cron": self.cron,
            "func": self.func,
            "queue": self.queue,
            "next_run": _iso(self.next_run),
        }


@dataclass(frozen=True, slots=True)
class BulkReport:
    done: int
    missing: int
    """Entries whose job data was gone: dropped from the registry."""


# -- pending jobs -----------------------------------------------------------------------------


def pending_jobs(
    connection: redis.Redis,
    config: QueueConfig | None,
    queue: str,
    *,
    offset: int = 0,
    limit: int = 20,
    newest_first: bool = False,
) -> Page:
    """One page of the jobs waiting in ``queue``: oldest first (the next to run first), or
    newest first. Two round trips."""
    _check_page(offset, limit)
    (name,) = _selected_queues(connection, config, queue)
    key = Queue(name, connection=connection).key
    if newest_first:
        start, end = -(offset + limit), -(offset + 1)
    else:
        start, end = offset, offset + limit - 1
    with connection.pipeline(transaction=False) as pipeline:
        pipeline.llen(key)
        pipeline.lrange(key, start, end)
        total, raw_ids = pipeline.execute()
    if newest_first:
        # LRANGE with negative indexes past the head clips: keep only this page's share
        raw_ids = list(reversed(raw_ids))[: max(0, min(limit, total - offset))]
    ids = [_text(raw) for raw in raw_ids]
    jobs = _rows(connection, name, ids)
    return Page(
        kind="pending",
        queue=name,
        total=total,
        offset=offset,
        limit=limit,
        jobs=tuple(jobs),
        newest_first=newest_first,
        more=offset + len(ids) < total,
    )


MOVE_TO_FRONT = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[1], ARGV[1])
  return 1
end
return 0
"""


def move_to_front(
    connection: redis.Redis, config: QueueConfig | None, queue: str, job_id: str
) -> None:
    """Make a waiting job the next one its queue hands out (one atomic script)."""
    (name,) = _selected_queues(connection, config, queue)
    key = Queue(name, connection=connection).key
    if not connection.eval(MOVE_TO_FRONT, 1, key, job_id):
        raise ProcmanError(
            f"job {excerpt(job_id)} is not waiting in queue {name}",
            "it may have started meanwhile: reload the page",
        )


def delete_pending(
    connection: redis.Redis, config: QueueConfig | None, queue: str, job_id: str
) -> None:
    """Delete a job waiting in ``queue`` (its data and results too)."""
    (name,) = _selected_queues(connection, config, queue)
    job = fetch_job(connection, job_id)
    if job.origin != name or job.get_status(refresh=False).value != "queued":
        raise ProcmanError(
            f"job {job.id} is not waiting in queue {name}",
            "it may have started meanwhile: reload the page",
        )
    job.delete()


# -- failed jobs ------------------------------------------------------------------------------


def failed_listing(
    connection: redis.Redis,
    config: QueueConfig | None,
    queue: str | None = None,
    *,
    offset: int = 0,
    limit: int = 20,
    search: str | None = None,
) -> Page:
    """One page of failed jobs with their tracebacks: of ``queue``, or of every queue in turn,
    newest first. ``search`` keeps the jobs whose function name contains it (any case): then
    ``offset`` is where in the failed jobs (newest first) the search starts, and it looks
    through SEARCH_SCAN of them at most (the page's ``next_offset`` goes on from there)."""
    _check_page(offset, limit)
    names = _selected_queues(connection, config, queue)
    keys = [FailedJobRegistry(name, connection=connection).key for name in names]
    with connection.pipeline(transaction=False) as pipeline:
        for key in keys:
            pipeline.zcard(key)
        counts: list[int] = pipeline.execute()
    total = sum(counts)
    if search:
        return _search_failed(connection, queue, names, keys, counts, offset, limit, search)
    pages = page_across(counts, offset, limit)
    with connection.pipeline(transaction=False) as pipeline:
        for index, first, last in pages:
            pipeline.zrange(keys[index], first, last, desc=True)
        replies = pipeline.execute()
    rows: list[JobRow] = []
    for (index, _, _), raw_ids in zip(pages, replies, strict=True):
        rows += _rows(connection, names[index], [_text(raw) for raw in raw_ids], failed=True)
    return Page(
        kind="failed",
        queue=queue,
        total=total,
        offset=offset,
        limit=limit,
        jobs=tuple(rows),
        more=offset + len(rows) < total,
    )


def page_across(counts: Sequence[int], offset: int, limit: int) -> list[tuple[int, int, int]]:
    """Where rows ``offset`` to ``offset + limit`` fall in registries of ``counts`` rows laid end
    to end: ``(index, first, last)`` for each registry touched, ``last`` inclusive (as ZRANGE
    takes it)."""
    pages: list[tuple[int, int, int]] = []
    skip, wanted = offset, limit
    for index, count in enumerate(counts):
        if wanted == 0:
            break
        if skip >= count:
            skip -= count
            continue
        take = min(wanted, count - skip)
        pages.append((index, skip, skip + take - 1))
        skip, wanted = 0, wanted - take
    return pages


SEARCH_SCRIPT = """
local ids = redis.call('ZREVRANGE', KEYS[1], ARGV[1], ARGV[2])
local found = {}
for _, id in ipairs(ids) do
  local description = redis.call('HGET', ARGV[4] .. id, 'description')
  if description then
    local name = string.lower(string.match(description, '^[^(]*'))
    if string.find(name, ARGV[3], 1, true) then
      found[#found + 1] = id
    end
  end
end
return {#ids, found}
"""
"""One slice of a failed registry, newest first, searched in Redis: the ids whose function name
(the description up to its first parenthesis) contains the text. A slice of SEARCH_SLICE ids
keeps Redis busy for a few milliseconds at most."""
SEARCH_SLICE = 1000


def _search_failed(
    connection: redis.Redis,
    queue: str | None,
    names: Sequence[str],
    keys: Sequence[str],
    counts: Sequence[int],
    offset: int,
    limit: int,
    search: str,
) -> Page:
    """Up to ``limit`` matches, looking through at most SEARCH_SCAN entries from position
    ``offset`` (of every selected registry in turn, newest first)."""
    wanted = search.lower()
    matches: list[tuple[str, str]] = []
    searched = 0
    position = 0  # of the first entry of the registry at hand, across registries
    for name, key, count in zip(names, keys, counts, strict=True):
        start = max(0, offset + searched - position)
        while start < count and searched < SEARCH_SCAN and len(matches) < limit:
            size = min(SEARCH_SLICE, count - start, SEARCH_SCAN - searched)
            stop = start + size - 1
            scanned, found = connection.eval(
                SEARCH_SCRIPT, 1, key, start, stop, wanted, Job.redis_job_namespace_prefix
            )
            for raw_id in found:
                if len(matches) < limit:
                    matches.append((name, _text(raw_id)))
                else:  # a full page: the rest of this slice is looked through again next time
                    scanned = _position_of(connection, key, start, _text(raw_id))
                    break
            if not scanned:
                break
            start += scanned
            searched += scanned
        position += count
    rows: list[JobRow] = []
    for name in dict.fromkeys(name for name, _ in matches):
        rows += _rows(connection, name, [i for n, i in matches if n == name], failed=True)
    following = offset + searched
    total = sum(counts)
    return Page(
        kind="failed",
        queue=queue,
        total=total,
        offset=offset,
        limit=limit,
        jobs=tuple(rows),
        search=search,
        searched=searched,
        next_offset=following if following < total else None,
        more=following < total,
    )


def _position_of(connection: redis.Redis, key: str, start: int, job_id: str) -> int:
    """How many entries from ``start`` (newest first) come before ``job_id``."""
    rank: Any = connection.zrevrank(key, job_id)
    return max(0, int(rank) - start) if rank is not None else 0


def queue_names(connection: redis.Redis, config: QueueConfig | None) -> list[str]:
    """The queue YAML's queues, then any other Redis knows (one round trip)."""
    return _selected_queues(connection, config, None)


def retry_all_failed(
    connection: redis.Redis, config: QueueConfig | None = None, queue: str | None = None
) -> BulkReport:
    """Put every failed job (of ``queue``, or of every queue) back on its queue, BATCH ids at a
    time: each batch is one transaction (``WATCH`` on the registry, the ids read and their jobs
    fetched, then ``MULTI``: out of the registry and onto the queue together), so a job is never
    lost between the two, nor run twice by a concurrent retry. A batch whose registry keeps
    changing, or holding a job RQ will not requeue in a pipeline, is requeued a job at a time
    by RQ's own ``requeue``."""
    done = missing = 0
    for name in _selected_queues(connection, config, queue):
        registry = FailedJobRegistry(name, connection=connection)
        left = connection.zcard(registry.key)  # jobs failing meanwhile are not chased
        while left > 0:
            batch = _retry_batch(connection, registry, min(left, BATCH))
            if batch is None:
                batch = _retry_one_by_one(registry, min(left, BATCH))
            taken, gone = batch
            if taken + gone == 0:
                break
            done, missing, left = done + taken, missing + gone, left - taken - gone
    return BulkReport(done=done, missing=missing)


WATCH_TRIES = 5


def _retry_batch(
    connection: redis.Redis, registry: FailedJobRegistry, size: int
) -> tuple[int, int] | None:
    """``(requeued, data gone)`` for the oldest ``size`` entries; None: do it job by job."""
    for _ in range(WATCH_TRIES):
        with connection.pipeline() as pipeline:
            try:
                pipeline.watch(registry.key)  # type: ignore[no-untyped-call]
                ids = _ids(pipeline.zrange(registry.key, 0, size - 1))
                jobs = Job.fetch_many(ids, connection=connection)
                if any(
                    job is not None and (job.has_rate_limit or has_dependencies(job))
                    for job in jobs
                ):
                    return None
                pipeline.multi()
                requeued = gone = 0
                for job_id, job in zip(ids, jobs, strict=True):
                    pipeline.zrem(registry.key, job_id)
                    if job is None:
                        gone += 1
                        continue
                    _requeue(connection, job, pipeline)
                    requeued += 1
                pipeline.execute()
                return requeued, gone
            except redis.WatchError:
                continue
    return None


def _retry_one_by_one(registry: FailedJobRegistry, size: int) -> tuple[int, int]:
    from procman.queues.monitoring import _requeue as requeue_one

    requeued = gone = 0
    for job_id in _ids(registry.connection.zrange(registry.key, 0, size - 1)):
        done, missing = requeue_one(registry, job_id)
        requeued, gone = requeued + done, gone + missing
    return requeued, gone


def _requeue(connection: redis.Redis, job: Job, pipeline: Any) -> None:
    """What ``FailedJobRegistry.requeue`` does once the entry is out of the registry."""
    job.started_at = None
    job.ended_at = None
    pipeline.hdel(job.key, DEATHS_FIELD)
    Queue(job.origin, connection=connection).enqueue_job(job, pipeline=pipeline)


DELETE_SCRIPT = """
local n = #ARGV - 3
local jobs, results, executions = ARGV[n + 1], ARGV[n + 2], ARGV[n + 3]
local deleted, missing, slow = 0, 0, {}
for i = 1, n do
  local id = ARGV[i]
  local key = jobs .. id
  local group = redis.call('HGET', key, 'group_id')
  if group and group ~= '' then
    slow[#slow + 1] = id
  else
    redis.call('ZREM', KEYS[1], id)
    if redis.call('DEL', key) == 1 then deleted = deleted + 1 else missing = missing + 1 end
    redis.call('DEL', key .. ':dependents', jobs .. ':' .. id .. ':dependencies',
               results .. id, executions .. id)
  end
end
return {deleted, missing, slow}
"""
"""Delete failed jobs in Redis, a batch per call: the registry entry, the job's hash, its
dependents and dependencies sets, its results and its (ended) executions, as ``Job.delete``
does for a failed job; a job in a group is left to ``Job.delete`` (returned)."""


def delete_all_failed(
    connection: redis.Redis, config: QueueConfig | None = None, queue: str | None = None
) -> BulkReport:
    """Delete every failed job (of ``queue``, or of every queue) and its results, BATCH ids at a
    time: two round trips a batch (the ids, then one script deleting them)."""
    done = missing = 0
    for name in _selected_queues(connection, config, queue):
        registry = FailedJobRegistry(name, connection=connection)
        left = connection.zcard(registry.key)
        while left > 0:
            ids = _ids(connection.zrange(registry.key, 0, min(left, BATCH) - 1))
            if not ids:
                break
            left -= len(ids)
            prefixes = (
                Job.redis_job_namespace_prefix,
                Result.get_key(""),  # type: ignore[no-untyped-call]
                ExecutionRegistry.key_template.format(""),
            )
            deleted, gone, slow = connection.eval(DELETE_SCRIPT, 1, registry.key, *ids, *prefixes)
            done, missing = done + int(deleted), missing + int(gone)
            for job_id in _ids(slow):
                try:
                    Job.fetch(job_id, connection=connection).delete()
                    done += 1
                except NoSuchJobError:
                    registry.remove(job_id)
                    missing += 1
    return BulkReport(done=done, missing=missing)


# -- scheduled and periodic jobs --------------------------------------------------------------


def scheduled_jobs(
    connection: redis.Redis,
    config: QueueConfig | None,
    queue: str | None = None,
    *,
    offset: int = 0,
    limit: int = 20,
) -> Page:
    """One page of the jobs scheduled with ``enqueue_in``/``enqueue_at`` (and retries waiting
    for their interval): of ``queue``, or of every queue in turn, soonest first."""
    _check_page(offset, limit)
    names = _selected_queues(connection, config, queue)
    keys = [Queue(name, connection=connection).scheduled_job_registry.key for name in names]
    with connection.pipeline(transaction=False) as pipeline:
        for key in keys:
            pipeline.zcard(key)
        counts: list[int] = pipeline.execute()
    pages = page_across(counts, offset, limit)
    with connection.pipeline(transaction=False) as pipeline:
        for index, first, last in pages:
            pipeline.zrange(keys[index], first, last, withscores=True)
        replies = pipeline.execute()
    rows: list[JobRow] = []
    for (index, _, _), pairs in zip(pages, replies, strict=True):
        name = names[index]
        ids = [_text(raw) for raw, _ in pairs]
        when = {_text(raw): datetime.fromtimestamp(score, UTC) for raw, score in pairs}
        for row in _rows(connection, name, ids):
            rows.append(_with_time(row, when.get(row.id)))
    total = sum(counts)
    return Page(
        kind="scheduled",
        queue=queue,
        total=total,
        offset=offset,
        limit=limit,
        jobs=tuple(rows),
        newest_first=False,
        more=offset + len(rows) < total,
    )


def enqueue_scheduled_now(connection: redis.Redis, job_id: str) -> str:
    """Move a scheduled job onto its queue now (at the back, as when its time comes); the queue."""
    job = fetch_job(connection, job_id)
    queue = Queue(job.origin, connection=connection)
    if not connection.zrem(queue.scheduled_job_registry.key, job.id):
        raise ProcmanError(
            f"job {job.id} is not scheduled", "it may have been enqueued meanwhile: reload the page"
        )
    queue.enqueue_job(job)
    return queue.name


def periodic_jobs(config: QueueConfig | None, now: datetime | None = None) -> tuple[Periodic, ...]:
    """The queue YAML's ``schedule:`` entries, each with its next run (local time, as cron)."""
    from croniter import croniter

    moment = (now or datetime.now(UTC)).astimezone()
    return tuple(
        Periodic(
            name=entry.name,
            cron=entry.cron,
            func=entry.func,
            queue=entry.queue,
            next_run=croniter(entry.cron, moment).get_next(datetime),
        )
        for entry in (config or DEFAULT_CONFIG).schedule
    )


# -- workers ----------------------------------------------------------------------------------


def stop_worker(connection: redis.Redis, worker_name: str) -> str:
    """Ask a worker to stop warm (finish its job, then exit). A worker of a ``procman worker``
    pool: the whole pool stops warm (it picks the request up within 2 s; it would replace a
    single worker that exits); any other RQ worker gets RQ's shutdown command. What was asked:
    ``"pool"`` or ``"worker"``."""
    pool = pool_of(worker_name)
    if connection.hexists(POOLS_KEY, pool):
        connection.set(STOP_PREFIX + pool, "dashboard", ex=STOP_SECONDS)
        return "pool"
    from rq.command import send_shutdown_command

    if not connection.exists(f"rq:worker:{worker_name}"):
        raise ProcmanError(
            f"no worker named {excerpt(worker_name)}", "it may have stopped: reload the page"
        )
    send_shutdown_command(connection, worker_name)
    return "worker"


def stop_requested(connection: redis.Redis, pool_id: str) -> bool:
    """Whether a stop of pool ``pool_id`` was asked for (the request is taken: asked once)."""
    with connection.pipeline(transaction=True) as pipeline:
        pipeline.get(STOP_PREFIX + pool_id)
        pipeline.delete(STOP_PREFIX + pool_id)
        asked, _ = pipeline.execute()
    return asked is not None


# -- helpers ----------------------------------------------------------------------------------


def _check_page(offset: int, limit: int) -> None:
    if offset < 0 or limit < 1:
        raise UsageError(f"offset must be 0 or more and limit 1 or more (got {offset}, {limit})")


def _rows(
    connection: redis.Redis, queue: str, ids: Sequence[str], *, failed: bool = False
) -> list[JobRow]:
    """The jobs ``ids`` as rows, in one pipeline: ``HMGET`` of the few fields shown, and for
    failed jobs the latest result (``XREVRANGE ... COUNT 1``)."""
    if not ids:
        return []
    with connection.pipeline(transaction=False) as pipeline:
        for job_id in ids:
            pipeline.hmget(Job.key_for(job_id), FIELDS)
            if failed:
                key = Result.get_key(job_id)  # type: ignore[no-untyped-call]
                pipeline.xrevrange(key, "+", "-", count=1)
        replies = pipeline.execute()
    step = 2 if failed else 1
    rows = []
    for index, job_id in enumerate(ids):
        values = [None if raw is None else _text(raw) for raw in replies[index * step]]
        fields = dict(zip(FIELDS, values, strict=True))
        traceback = _traceback(replies[index * step + 1]) if failed else None
        if failed and traceback is None and fields["description"] is None:
            traceback = "(the job's data has expired or was deleted)"
        rows.append(
            JobRow(
                id=job_id,
                queue=fields["origin"] or queue,
                description=fields["description"],
                created_at=_time(fields["created_at"]),
                enqueued_at=_time(fields["enqueued_at"]),
                ended_at=_time(fields["ended_at"]),
                worker=fields["worker_name"] or None,
                error=_last_line(traceback) if traceback else None,
                traceback=traceback,
            )
        )
    return rows


def _traceback(latest: Any) -> str | None:
    """The ``exc_string`` of a result stream entry, without decoding its return value."""
    if not latest:
        return None
    _, payload = latest[0]
    raw = payload.get(b"exc_string")
    if not raw:
        return None
    try:
        return zlib.decompress(b64decode(raw)).decode("utf-8", "replace")
    except (ValueError, zlib.error):
        return _text(raw)


def _with_time(row: JobRow, when: datetime | None) -> JobRow:
    from dataclasses import replace

    return replace(row, scheduled_for=when)


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return utcparse(text)
    except ValueError:
        return None


def _ids(raws: Any) -> list[str]:
    return [_text(raw) for raw in raws]


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


# -- a long-lived reader ----------------------------------------------------------------------


class Store:
    """The app's Redis and queue YAML for a long-running reader (the dashboard): one client
    (redis-py's pool, safe across threads), created on first use; every Redis failure inside
    ``connection()`` becomes one ``RedisUnavailable`` line, the URL's password hidden."""

    READ_TIMEOUT = 10.0
    """Seconds a reply may take before the request fails (a page never hangs on Redis)."""

    def __init__(self, url: RedisUrl, config: QueueConfig | None) -> None:
        self.url = url
        self.config = config
        self._client: redis.Redis | None = None

    @property
    def label(self) -> str:
        """Where the Redis is, password hidden: what a page may show."""
        return self.url.redacted

    @contextmanager
    def connection(self) -> Iterator[redis.Redis]:
        try:
            if self._client is None:
                self._client = redis.Redis.from_url(
                    self.url.url,
                    socket_connect_timeout=CONNECT_TIMEOUT,
                    socket_timeout=self.READ_TIMEOUT,
                )
            yield self._client
        except ValueError as error:  # a URL redis-py cannot read
            raise unavailable(self.url, error, tried="reading the URL") from None
        except redis.RedisError as error:
            raise unavailable(self.url, error, tried="reading the queues") from None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
