"""One worker process of ``procman worker``: RQ's in-process worker, extended at its seams.

- Fetching is atomic and recorded (see ``procman.queues.recovery``) instead of RQ's multi-queue
  ``BLPOP``, which loses the job when the worker dies right after the pop; the queue order is
  drawn per fetch by ``weighted_order``.
- With ``*`` the queues are every queue RQ lists in Redis, looked up again every ``QUEUES_EVERY``
  seconds, in alphabetical order (Resque's ``QUEUE=*``).
- A job costs two Redis round trips (``procman.queues.bookkeeping``): one script takes it and
  records it started, one pipeline records it finished; RQ's own handling is used where that does
  not cover the job (failures, retries, repeats, rate limits, jobs others depend on). RQ's
  heartbeat and suspension check run at most every ``HEARTBEAT_EVERY`` / ``SUSPENSION_EVERY``
  seconds and its counters on the worker's hash are written at most every ``COUNTS_EVERY``
  seconds (and when the worker goes idle), not per job.
- Jobs run in this process (no fork per job, RQ's ``SimpleWorker``), so a job costs a few Redis
  round trips, not a fork. The hard timeout that a fork would give is kept by the pool: each job's
  start and end go to the pool over a pipe (and each fetch, so that a stop waits to know whether
  it took a job), and the pool kills this process if a job outlives its
  timeout (SIGALRM comes first and fails the job cleanly when the job lets it).
- Signals: the pool owns them. SIGTERM and SIGINT (sent to the whole process group by
  ``procman start``) are ignored here; SIGUSR1 from the pool asks for a warm stop.
- Logging: one line per event that matters (ready, each job started, finished or failed, the
  failure as one line: the traceback is in ``procman jobs show ID``); everything RQ logs only
  when verbose. A timestamp of its own only when not under ``procman start`` (whose log stream
  stamps every line already).
- A job's place in RQ's started registry never expires: procman's recovery, not RQ's clean-up,
  decides what becomes of a job whose worker died (RQ would fail it as abandoned).
- While Redis is away the worker waits: one line when it goes, one when it is back, back-off
  between tries, no traceback and no restart.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import signal
import sys
import time
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis
from redis.exceptions import NoScriptError
from rq.callbacks import execute_success_callback
from rq.exceptions import StopRequested
from rq.executions import Execution
from rq.job import Job, JobStatus, Retry
from rq.queue import Queue
from rq.registry import FinishedJobRegistry, StartedJobRegistry
from rq.results import Result
from rq.timeouts import JobTimeoutException
from rq.utils import current_timestamp, now, utcformat
from rq.worker import WorkerStatus

from procman.errors import excerpt
from procman.queues.bookkeeping import (
    EXECUTION_PREFIX,
    FINISH_SCRIPT,
    START_SCRIPT,
    execution_key,
    job_key_prefix,
)
from procman.queues.config import ALL_QUEUES
from procman.queues.connection import one_line
from procman.queues.recovery import (
    mark_alive,
    requeue_in_progress,
    wake_key,
    wip_key,
)
from procman.queues.redis_url import redact
from procman.queues.rq_private import (
    RQWorkerSeams,
    all_queue_names,
    dependency_ids,
    format_exc_info,
    mark_finished,
    mark_started,
)
from procman.queues.stats import JobCounter
from procman.queues.weighting import fetch_order
from procman.settings import VERBOSE_VARIABLE
from procman.supervisor.strays import RUN_ID_VARIABLE

SPEC_VARIABLE = "PROCMAN_WORKER_SPEC"
HEARTBEAT_EVERY = 5.0
SUSPENSION_EVERY = 1.0
"""How often a busy worker asks whether ``rq suspend`` was run (RQ asks before every job)."""
COUNTS_EVERY = 1.0
"""How often a busy worker adds its finished jobs to RQ's counters on its hash."""
QUEUES_EVERY = 2.0
"""How often a worker serving ``*`` looks for new queues."""
BLOCK_SECONDS = 1
events = logging.getLogger("procman.worker")
"""The worker's own lines: one per event that matters."""
DESCRIPTION_LIMIT = 80
ERROR_LIMIT = 200
REDIS_BACKOFF_MAX = 30.0
REDIS_GONE = (redis.ConnectionError, redis.TimeoutError)
REDIS_FULL_EXIT = 75
"""The worker process's exit status when Redis refused a write at its ``maxmemory`` (EX_TEMPFAIL):
the pool starts another after a backoff, saying why, instead of a traceback."""


class Pushes(redis.client.PubSub):
    """The keyspace subscription, noting each time redis-py connects it again (a restarted Redis
    has forgotten ``notify-keyspace-events``: it must be set again)."""

    reconnected = False

    def on_connect(self, connection: Any) -> None:
        super().on_connect(connection)
        self.reconnected = True


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What the pool tells a worker process (as JSON in its environment, so no secret shows in
    ``ps``)."""

    name: str
    redis_url: str
    queues: tuple[tuple[str, int | None], ...]
    timeout: int
    retry: int
    max_jobs: int | None
    max_memory: int | None
    burst: bool
    status_fd: int
    app_dir: str
    verbose: bool = False
    """Everything RQ logs, tracebacks included (``-v``, or ``PROCMAN_VERBOSE=1``)."""
    timestamps: bool = True
    """A time on each line: not under ``procman start``, whose stream has one already."""
    keyspace_notifications: bool = True
    """queues.yml's ``keyspace_notifications``: False leaves Redis's setting alone."""

    @property
    def all_queues(self) -> bool:
        """``*``: every queue RQ lists in Redis."""
        return self.queues == ((ALL_QUEUES, None),)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerSpec:
        data = json.loads(text)
        data["queues"] = tuple((name, weight) for name, weight in data["queues"])
        return cls(**data)


def retry_intervals(retries: int) -> list[int]:
    """Sidekiq's backoff without its jitter: (count ** 4) + 15 seconds before retry ``count``."""
    return [count**4 + 15 for count in range(retries)]


class ProcmanWorker(RQWorkerSeams):
    def __init__(self, spec: WorkerSpec, connection: redis.Redis) -> None:
        names = [] if spec.all_queues else [name for name, _ in spec.queues]
        super().__init__(names, name=spec.name, connection=connection)
        self.spec = spec
        self.wip_key = wip_key(spec.name)
        self._start = connection.register_script(START_SCRIPT)
        self._finish = connection.register_script(FINISH_SCRIPT)
        self._rng = random.Random()
        self._queues_by_name = {queue.name: queue for queue in self.queues}
        self._queues_seen = -math.inf
        self._last_heartbeat = -math.inf
        self._key_expires = -math.inf
        """When (monotonic) the worker's hash expires unless a heartbeat comes first."""
        self._suspension_checked = -math.inf
        self._pushes: Pushes | bool | None = None
        """The keyspace subscription; False where Redis has none (then the wake-up lists)."""
        self._registered = False
        self._lost_track = False
        """Redis went away during a fetch: a job may be in this worker's list that it never got."""
        self._busy = False
        self._fetching = False
        """In the start script: a warm stop then waits for its outcome (RQ's would raise)."""
        self._execution: Execution | None = None
        self._succeeded = 0
        self._working_seconds = 0.0
        self._job_counts = JobCounter()  # the dashboard's jobs per minute and per day
        self._counted_at = -math.inf
        self._performed = 0

    # -- signals: the pool decides -----------------------------------------------------------

    def install_signals(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGUSR1, self.request_stop)

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        super().bootstrap(*args, **kwargs)
        if self.spec.all_queues:
            self._see_queues(say=False)
            events.info("%s: ready for all queues (*)", self.name)
        else:
            events.info("%s: ready for %s", self.name, ", ".join(self.queue_names()))

    def get_state(self) -> str:
        """Busy from the moment a job is taken (RQ's warm stop reads this: a busy worker finishes
        its job, an idle one stops at once)."""
        if self._fetching or self._execution is not None:
            return WorkerStatus.BUSY
        return super().get_state()

    def request_stop(self, signum: Any, frame: Any) -> None:
        """Warm stop: finish the running job, then exit (idle: exit now)."""
        try:
            self.warm_stop()
        except REDIS_GONE:
            self.stop_requested = True  # seen by the wait for Redis

    def command_channel_failed(self, exc: Exception, pubsub: Any, pubsub_thread: Any) -> None:
        """RQ's command channel thread: while Redis is away it waits quietly (the main loop
        says so once) instead of logging every 2 s."""
        if not isinstance(exc, redis.ConnectionError):
            raise exc
        time.sleep(2.0)

    # -- Redis going away --------------------------------------------------------------------

    def _wait_for_redis(self, error: BaseException) -> None:
        wait_for_redis(self.connection, self.name, self.spec.redis_url, error, self._stopping)

    def _stopping(self) -> bool:
        return self.stop_requested

    # -- RQ's periodic bookkeeping, spaced out -----------------------------------------------

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ's heartbeat (the worker's hash and execution set kept from expiring); when RQ asks
        for one without a timeout (after every job), at most every ``HEARTBEAT_EVERY`` s, with
        the job counters when due."""
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)
            self._beat(timeout)
            return
        if timeout is None and time.monotonic() - self._last_heartbeat < HEARTBEAT_EVERY:
            return
        try:
            with self.connection.pipeline(transaction=False) as beat:
                super().heartbeat(timeout, beat)
                self._add_counts(beat)
                beat.execute()
            self._beat(timeout)
        except REDIS_GONE as error:
            self._wait_for_redis(error)

    def _beat(self, timeout: int | None) -> None:
        self._last_heartbeat = time.monotonic()
        self._key_expires = self._last_heartbeat + (timeout or self.worker_ttl + 60)

    def _maybe_heartbeat(self) -> None:
        self.heartbeat()

    def check_for_suspension(self, burst: bool) -> None:
        """RQ's (``rq suspend``), at most every ``SUSPENSION_EVERY`` s."""
        if time.monotonic() - self._suspension_checked < SUSPENSION_EVERY:
            return
        try:
            super().check_for_suspension(burst)
            self._suspension_checked = time.monotonic()
        except REDIS_GONE as error:
            self._wait_for_redis(error)

    def run_maintenance_tasks(self) -> None:
        try:
            super().run_maintenance_tasks()  # type: ignore[no-untyped-call]
        except REDIS_GONE as error:
            self._wait_for_redis(error)  # and it runs again next time round

    # -- RQ's counters on the worker's hash, written in batches ------------------------------

    def increment_successful_job_count(self, pipeline: Any = None) -> None:
        self._succeeded += 1
        self._job_counts.count(failed=False)

    def increment_total_working_time(self, job_execution_time: timedelta, pipeline: Any) -> None:
        self._working_seconds += job_execution_time.total_seconds()

    def increment_failed_job_count(self, pipeline: Any = None) -> None:
        super().increment_failed_job_count(pipeline)
        self._job_counts.count(failed=True)
        if pipeline is not None:
            self._add_counts(pipeline, due=True)

    def _add_counts(self, pipeline: Any, due: bool = False) -> None:
        """Add the jobs finished since the last time to RQ's counters (``successful_job_count``,
        ``total_working_time``: what ``procman jobs`` shows per worker), when ``due`` or once
        ``COUNTS_EVERY`` s have passed."""
        if not self._succeeded and not self._working_seconds and not self._job_counts:
            return
        if not due and time.monotonic() - self._counted_at < COUNTS_EVERY:
            return
        self._job_counts.add_to(pipeline)
        if self._succeeded:
            pipeline.hincrby(self.key, "successful_job_count", self._succeeded)
        if self._working_seconds:
            pipeline.hincrbyfloat(self.key, "total_working_time", self._working_seconds)
        self._succeeded = 0
        self._working_seconds = 0.0
        self._counted_at = time.monotonic()

    # -- fetching ----------------------------------------------------------------------------

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        burst = timeout is None
        seen_empty = False  # the single queue's BLMOVE just timed out: no need to fetch first
        while True:
            try:
                self._maybe_heartbeat()
                if not self._registered:  # listed before its first job, whoever marked it
                    mark_alive(self.connection, [self.name])
                    self._registered = True
                if self.stop_requested:  # asked while taking no job after all
                    raise StopRequested
                if self._lost_track:
                    self._give_back_lost()
                self._see_queues()
                fetched = None if seen_empty else self._fetch_one()
                if fetched is not None:
                    return fetched
                self._go_idle()
                if burst:
                    return None
                if len(self.queues) == 1:
                    fetched = self._block_on_single_queue()
                    if fetched is not None:
                        return fetched
                    seen_empty = True
                    continue
                seen_empty = False
                self._wait_for_push()
            except REDIS_GONE as error:
                seen_empty = False
                self._lost_track = True
                self._drop_pushes()
                self._wait_for_redis(error)

    def _give_back_lost(self) -> None:
        """Between jobs the worker holds none: a job in its list is one whose fetch was cut off
        by Redis going away (taken, the answer lost). It goes back on its queue."""
        requeued = requeue_in_progress(self.connection, self.name)
        self._lost_track = False
        if requeued:
            self.log.warning(
                "Worker %s: job %s was being fetched as Redis went away: put back on its queue",
                self.name,
                ", ".join(requeued),
            )

    def _see_queues(self, say: bool = True) -> None:
        """With ``*``: every queue RQ lists in Redis, alphabetically, looked up again every
        ``QUEUES_EVERY`` s; the new ones are said in one line."""
        if not self.spec.all_queues or time.monotonic() - self._queues_seen < QUEUES_EVERY:
            return
        names = all_queue_names(self.connection)
        self._queues_seen = time.monotonic()
        if names == self.queue_names():
            return
        added = [name for name in names if name not in self._queues_by_name]
        self.queues = [self._queues_by_name.get(name) or self._queue(name) for name in names]
        self._queues_by_name = {queue.name: queue for queue in self.queues}
        self.connection.hset(self.key, "queues", ",".join(names))
        if self._pushes is False:  # the wake-up lists to block on are new ones
            self._pushes = None
        if say and added:
            events.info("%s: now also serving %s", self.name, ", ".join(added))

    def _queue(self, name: str) -> Queue:
        return Queue(name, connection=self.connection, serializer=self.serializer)

    def _fetch_one(self) -> tuple[Job, Queue] | None:
        if self.spec.all_queues:
            queues = list(self.queues)
        else:
            order = fetch_order(self.spec.queues, self._rng)
            queues = [self._queues_by_name[name] for name in order]
        if not queues:
            return None
        return self._take(queues, held="")

    def _take(self, queues: list[Queue], held: str) -> tuple[Job, Queue] | None:
        """Run the start script: the first job of ``queues`` (or ``held``, already in this
        worker's list) taken and recorded started; None when there was none."""
        execution_id = uuid.uuid4().hex
        at = now()
        keys = [
            self.wip_key,
            self.executions_key,
            self.key,
            *(queue.key for queue in queues),
            *(StartedJobRegistry.key_template.format(queue.name) for queue in queues),
        ]
        args = [
            self.name,
            execution_id,
            utcformat(at),
            repr(at.timestamp()),
            "0" if self._busy else "1",
            held,
            job_key_prefix(),
            EXECUTION_PREFIX,
        ]
        self._fetching = True
        self._report("fetch")  # the pool, stopping, waits for the answer: start or idle
        job = None
        try:
            answer = self._start(keys=keys, args=args)
            if not answer:
                return None
            index, raw_id, fields = answer
            self._busy = True
            job = self.job_class(
                _text(raw_id), connection=self.connection, serializer=self.serializer
            )
            job.restore(dict(zip(fields[::2], fields[1::2], strict=True)))
            self._taken(job)
            mark_started(job, self.name, at)
            execution = Execution(execution_id, job.id, self.connection, worker_name=self.name)
            execution.created_at = execution.last_heartbeat = at
            self.executions[execution_id] = execution
            self._execution = execution  # busy from here on (before _fetching goes)
        finally:
            self._fetching = False
            if job is None:
                self._report("idle")
        return job, queues[int(index)]

    def _go_idle(self) -> None:
        """Idle after being busy: the state RQ shows, and the counters not yet written."""
        if not self._busy:
            return
        with self.connection.pipeline(transaction=False) as pipeline:
            self.set_state(WorkerStatus.IDLE, pipeline=pipeline)
            self._add_counts(pipeline, due=True)
            pipeline.execute()
        self._busy = False

    def _wait_for_push(self) -> None:
        """With several queues no blocking pop can also record the job atomically, so an idle
        worker waits for Redis's keyspace notification of a push to one of its queues (with
        ``*``: to any queue), then fetches as usual. The subscription is made once, before the
        first empty fetch, so a push that lands between a fetch and the wait is still seen; each
        time redis-py connects it again (Redis restarted), the setting is made again. Where
        Redis cannot notify, the worker blocks on its queues' wake-up lists instead (``BLPOP``,
        a token per ``procman.queues.enqueue``; a job pushed some other way waits at most
        BLOCK_SECONDS)."""
        if self._pushes is None:
            self._pushes = self._subscribe_to_pushes()
        if not isinstance(self._pushes, Pushes):
            keys = [wake_key(queue.name) for queue in self.queues]
            if keys:
                self.connection.blpop(keys, BLOCK_SECONDS)
            else:  # no queue yet (``*`` on an empty Redis)
                time.sleep(BLOCK_SECONDS)
            return
        message = self._pushes.get_message(timeout=BLOCK_SECONDS)
        while message is not None:  # one fetch answers any number of pushes
            message = self._pushes.get_message(timeout=0)
        if self._pushes.reconnected:
            self._pushes.reconnected = False
            try:
                self._notify_on_pushes()
            except redis.ResponseError:
                self._drop_pushes()

    def _subscribe_to_pushes(self) -> Pushes | bool:
        if not self.spec.keyspace_notifications:
            self.log.info("keyspace notifications off (queues.yml): waiting on wake-up lists")
            return False
        try:
            self._notify_on_pushes()
        except redis.ResponseError as error:  # CONFIG disabled (managed Redis)
            self.log.info("no keyspace notifications (%s): waiting on wake-up lists", error)
            return False
        database = self.connection.connection_pool.connection_kwargs.get("db", 0)
        channel = f"__keyspace@{database}__:"
        pushes = Pushes(self.connection.connection_pool, ignore_subscribe_messages=True)
        if self.spec.all_queues:
            pushes.psubscribe(channel + Queue.redis_queue_namespace_prefix + "*")
        else:
            pushes.subscribe(*[channel + queue.key for queue in self.queues])
        return pushes

    def _notify_on_pushes(self) -> None:
        """Turn on list events on the keyspace channel (other settings stay as they were)."""
        setting: dict[str, Any] = self.connection.config_get("notify-keyspace-events")  # type: ignore[assignment]
        raw = setting.get("notify-keyspace-events") or ""
        events = raw.decode() if isinstance(raw, bytes) else str(raw)
        if "K" not in events or not ({"l", "A"} & set(events)):
            self.connection.config_set("notify-keyspace-events", events + "Kl")

    def _drop_pushes(self) -> None:
        """After Redis went away: subscribe (and set the setting) afresh once it is back."""
        if isinstance(self._pushes, Pushes):
            try:
                self._pushes.close()
            except redis.RedisError:  # a broken connection closing: nothing to do
                pass
        self._pushes = None

    def _block_on_single_queue(self) -> tuple[Job, Queue] | None:
        queue = self.queues[0]
        raw_id = self.connection.blmove(queue.key, self.wip_key, BLOCK_SECONDS, "LEFT", "RIGHT")
        if raw_id is None:
            return None
        return self._take([queue], held=_text(raw_id))

    # -- running -----------------------------------------------------------------------------

    def execute_job(self, job: Job, queue: Queue) -> None:
        """A job whose outcome could not be written (Redis went away under it) goes back on its
        queue once Redis is back, as if its worker had died, and the worker carries on."""
        execution = self._execution
        assert execution is not None and execution.job_id == job.id
        try:
            self.perform_job(job, queue, execution)
        except redis.OutOfMemoryError:  # the job stays in the WIP list: the pool puts it back
            raise SystemExit(REDIS_FULL_EXIT) from None
        except REDIS_GONE as error:
            self._wait_for_redis(error)
            self.executions.clear()
            requeued = requeue_in_progress(self.connection, self.name)
            if requeued:
                self.log.warning(
                    "Worker %s: job %s could not be recorded while Redis was away: put back on "
                    "its queue",
                    self.name,
                    ", ".join(requeued),
                )
            self._busy = True  # so that the state idle is written
            self._go_idle()
        finally:
            self._execution = None

    def _taken(self, job: Job) -> None:
        """Right after the start script: the app's defaults on the job, and the pool told (it
        enforces the timeout, and counts the job when stopping)."""
        if job.timeout in (None, Queue.DEFAULT_TIMEOUT):
            # RQ stamps its own default (180 s) on a job enqueued without a timeout; the app's
            # queues.yml decides for those.
            job.timeout = self.spec.timeout
        if job.retries_left is None and self.spec.retry > 0:
            job.retries_left = self.spec.retry
            job.retry_intervals = retry_intervals(self.spec.retry)
        self._report(f"start {job.id} {job.timeout}")

    def perform_job(self, job: Job, queue: Queue, execution: Any) -> bool:
        self._outlive(job)
        described = _described(job)
        events.info("%s: %s started (job %s)", queue.name, described, job.id)
        began = time.monotonic()
        try:
            finished = self._run(job, queue, execution)
            if finished:
                took = time.monotonic() - began
                events.info(
                    "%s: %s finished in %.2fs (job %s)", queue.name, described, took, job.id
                )
            return finished
        finally:
            self._report("end")
            self._performed += 1
            if self._performed == self.spec.max_jobs:
                events.info("%s: ran its %d jobs (max_jobs): quitting", self.name, self._performed)
            if self._too_fat():
                events.info("%s: above max_memory after a job, recycling", self.name)
                self.stop_requested = True

    def _outlive(self, job: Job) -> None:
        """The worker's hash must not expire while the job runs (no heartbeat comes meanwhile):
        one more heartbeat when the job's timeout reaches past its expiry."""
        timeout = int(job.timeout) if job.timeout and job.timeout > 0 else self.worker_ttl
        if time.monotonic() + timeout + 60 > self._key_expires:
            self.heartbeat(max(timeout + 60, self.worker_ttl + 60))

    def _run(self, job: Job, queue: Queue, execution: Execution) -> bool:
        """Run the job under its timeout (SIGALRM), then record its outcome: procman's finish
        script where it covers the job, else RQ's own handling (as for every failure)."""
        try:
            timeout = job.timeout or Queue.DEFAULT_TIMEOUT
            with self.death_penalty_class(timeout, JobTimeoutException, job_id=job.id):
                return_value = job.perform()
            if not self._finishes_itself(job, return_value):
                self.finalize_success(job, queue, execution, return_value)
                return True
            execute_success_callback(job, self.death_penalty_class, return_value)
        except BaseException:  # as RQ: whatever the job raised is its failure
            self.finalize_failure(job, queue, execution, sys.exc_info())
            return False
        self._record_finished(job, queue, execution, return_value)
        return True

    def _finishes_itself(self, job: Job, return_value: Any) -> bool:
        """Whether procman's finish script covers the job: not a ``Retry`` returned, no repeats
        left, no rate limit, a result kept for a while (not 0, not for ever)."""
        return (
            not isinstance(return_value, Retry)
            and not job.repeats_left
            and not job.has_rate_limit
            and job.get_result_ttl(self.default_result_ttl) > 0
        )

    def _record_finished(
        self, job: Job, queue: Queue, execution: Execution, return_value: Any
    ) -> None:
        """One round trip: the finish script (``procman.queues.bookkeeping``) in the completion
        pipeline, with the worker's counters when due. A job that others wait for goes through
        RQ's ``handle_job_success``, which enqueues them."""
        ended = now()
        job.ended_at = ended
        ttl = job.get_result_ttl(self.default_result_ttl)
        member = execution.composite_key
        result = Result(
            job.id,
            Result.Type.SUCCESSFUL,
            connection=self.connection,
            return_value=return_value,
            worker_name=self.name,
            serializer=job.serializer,
            execution_id=execution.id,
            execution_started_at=execution.created_at,
            execution_ended_at=ended,
        )
        fields = [item for pair in result.serialize().items() for item in pair]
        keys = [
            job.key,
            job.dependents_key,
            Result.get_key(job.id),  # type: ignore[no-untyped-call]
            FinishedJobRegistry.key_template.format(queue.name),
            StartedJobRegistry.key_template.format(queue.name),
            execution_key(member),
            self.executions_key,
            self.wip_key,
        ]
        if dependency_ids(job):
            keys.append(job.dependencies_key)
        args = [job.id, member, utcformat(ended), ttl, current_timestamp() + ttl, *fields]
        with self.connection.pipeline(transaction=False) as pipeline:
            pipeline.evalsha(self._finish.sha, len(keys), *keys, *args)
            self.add_to_completion(pipeline, job)
            self._add_counts(pipeline)
            replies = pipeline.execute(raise_on_error=False)
        recorded = replies[0]
        if isinstance(recorded, NoScriptError):  # Redis restarted, or SCRIPT FLUSH
            recorded = self._finish(keys=keys, args=args)
        for reply in (recorded, *replies[1:]):
            if isinstance(reply, Exception):
                raise reply
        if not recorded:  # jobs wait for this one
            job.ended_at = ended
            self.handle_job_success(job, queue, queue.started_job_registry, execution)
        else:
            self.executions.pop(execution.id, None)
            mark_finished(job)
            self.increment_successful_job_count()
            if job.started_at is not None:
                self.increment_total_working_time(ended - job.started_at, pipeline)
        job.send_webhooks(JobStatus.FINISHED)

    def add_to_completion(self, pipeline: Any, job: Job) -> None:
        """Commands that ride along in the one pipeline that records a job's outcome, whichever
        it is (procman's finish script, or RQ's own transaction for failures, retries and the
        rest, through ``cleanup_execution``): the seam for counters kept per queue; none yet."""

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        """The failure as one line (its traceback stays in Redis for ``procman jobs show``, also
        for a failure that will be retried, which RQ records nowhere); RQ's own line, traceback
        included, only when verbose."""
        retrying = job.should_retry
        then = ""
        if retrying:
            wait = job.get_retry_interval()
            then = f"; retrying in {wait}s" if wait else "; retrying now"
            try:
                Result.create_failure(job, job.failure_ttl, format_exc_info(exc_info), self.name)
            except redis.RedisError:
                pass  # the retry itself is recorded, or not, with the failure that follows
        events.info(
            "%s: %s failed: %s%s (procman jobs show %s)",
            job.origin,
            _described(job),
            _exception_line(exc_info),
            then,
            job.id,
        )
        if self.spec.verbose:
            super().handle_exception(job, *exc_info)
        else:
            self.call_exception_handlers(job, *exc_info)

    def cleanup_execution(self, job: Job, pipeline: Any, execution: Any = None) -> None:
        """Leave the work-in-progress list in the transaction that records the outcome."""
        super().cleanup_execution(job, pipeline, execution)
        pipeline.lrem(self.wip_key, 1, job.id)
        self.add_to_completion(pipeline, job)

    def _report(self, line: str) -> None:
        try:
            os.write(self.spec.status_fd, line.encode() + b"\n")
        except OSError:
            pass  # the pool is gone; PR_SET_PDEATHSIG ends us shortly

    def _too_fat(self) -> bool:
        if self.spec.max_memory is None:
            return False
        import psutil

        return bool(psutil.Process().memory_info().rss > self.spec.max_memory)


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _described(job: Job) -> str:
    """The job's call (``jobs.add(1, 2)``), shortened for one log line."""
    try:
        text = job.description or job.func_name
    except Exception:  # cannot be deserialized
        text = job.id
    return excerpt(" ".join(str(text).split()), DESCRIPTION_LIMIT)


def _exception_line(exc_info: Any) -> str:
    """``ValueError: boom``: the last line of the traceback, on one line."""
    kind, value = exc_info[0], exc_info[1]
    text = "".join(traceback.format_exception_only(kind, value)).strip()
    return excerpt(" ".join(text.split()), ERROR_LIMIT)


class _OneLine(logging.Formatter):
    """No trailing empty line (RQ ends a traceback with a newline)."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).rstrip("\n")


def setup_logging(verbose: bool, timestamps: bool) -> None:
    """Lines to standard output (so they land in procman's log stream), the app's own logging
    included: ``%(message)s``, after a time when not under procman start."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        _OneLine("%(asctime)s %(message)s" if timestamps else "%(message)s", datefmt="%H:%M:%S")
    )
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    if not verbose:  # RQ's warnings and errors only (its work() sets rq.worker and rq.job)
        logging.getLogger("rq").setLevel(logging.WARNING)


def logging_choice(verbose_option: bool) -> tuple[bool, bool]:
    """``(verbose, timestamps)`` for this process: verbose with ``-v`` or ``PROCMAN_VERBOSE=1``
    (``procman start -v``); timestamps unless under ``procman start``."""
    verbose = verbose_option or os.environ.get(VERBOSE_VARIABLE) == "1"
    return verbose, RUN_ID_VARIABLE not in os.environ


def wait_for_redis(
    connection: redis.Redis,
    name: str,
    url: str,
    error: BaseException,
    stopping: Any = None,
) -> None:
    """One line saying Redis went away, tries after 1, 2, 4 … s (at most 30 s apart) until it
    answers, one line saying it is back. ``stopping()`` true ends the wait with StopRequested."""
    log = logging.getLogger("rq.worker")
    where = redact(url)
    log.warning("Worker %s: lost Redis at %s (%s); waiting for it", name, where, _reason(error))
    delay = 1.0
    while True:
        if stopping is not None and stopping():
            raise StopRequested
        time.sleep(delay)
        try:
            connection.ping()
        except REDIS_GONE:
            delay = min(delay * 2, REDIS_BACKOFF_MAX)
            continue
        log.warning("Worker %s: Redis at %s is back", name, where)
        return


def _reason(error: BaseException) -> str:
    return one_line(redact(str(error)) or type(error).__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of a worker process started by the pool."""
    spec = WorkerSpec.from_json(os.environ[SPEC_VARIABLE])
    if spec.app_dir not in sys.path:
        sys.path.insert(0, spec.app_dir)
    setup_logging(spec.verbose, spec.timestamps)
    connection = redis.Redis.from_url(spec.redis_url)
    while True:
        try:  # RQ's Worker.__init__ talks to Redis
            worker = ProcmanWorker(spec, connection)
            break
        except REDIS_GONE as error:
            wait_for_redis(connection, spec.name, spec.redis_url, error)
    level = "INFO" if spec.verbose else "WARNING"
    try:
        worker.work(burst=spec.burst, max_jobs=spec.max_jobs, logging_level=level)
    except REDIS_GONE as error:  # while starting (registering) or stopping: no job is held
        logging.getLogger("rq.worker").warning(
            "Worker %s: lost Redis at %s (%s); exiting",
            spec.name,
            redact(spec.redis_url),
            _reason(error),
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
