"""One worker process of ``procman worker``: RQ's in-process worker, extended at its seams.

- Fetching is atomic and recorded (see ``procman.queues.recovery``) instead of RQ's multi-queue
  ``BLPOP``, which loses the job when the worker dies right after the pop; the queue order is
  drawn per fetch by ``weighted_order``.
- Jobs run in this process (no fork per job, RQ's ``SimpleWorker``), so a job costs a few Redis
  round trips, not a fork. The hard timeout that a fork would give is kept by the pool: each job's
  start and end go to the pool over a pipe, and the pool kills this process if a job outlives its
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
import os
import random
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from rq.exceptions import NoSuchJobError, StopRequested
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue
from rq.results import Result
from rq.worker import WorkerStatus

from procman.errors import excerpt
from procman.queues.connection import one_line
from procman.queues.recovery import (
    FETCH_SCRIPT,
    mark_alive,
    requeue_in_progress,
    wake_key,
    wip_key,
)
from procman.queues.redis_url import redact
from procman.queues.rq_private import RQWorkerSeams, format_exc_info
from procman.queues.stats import count_job
from procman.queues.weighting import fetch_order
from procman.settings import VERBOSE_VARIABLE
from procman.supervisor.strays import RUN_ID_VARIABLE

SPEC_VARIABLE = "PROCMAN_WORKER_SPEC"
HEARTBEAT_EVERY = 5.0
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
        names = [name for name, _ in spec.queues]
        super().__init__(names, name=spec.name, connection=connection)
        self.spec = spec
        self.wip_key = wip_key(spec.name)
        self._fetch = connection.register_script(FETCH_SCRIPT)
        self._rng = random.Random()
        self._queues_by_name = {queue.name: queue for queue in self.queues}
        self._last_heartbeat = 0.0
        self._pushes: Pushes | bool | None = None
        """The keyspace subscription; False where Redis has none (then the wake-up lists)."""
        self._registered = False
        self._performed = 0

    # -- signals: the pool decides -----------------------------------------------------------

    def install_signals(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGUSR1, self.request_stop)

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        super().bootstrap(*args, **kwargs)
        events.info("%s: ready for %s", self.name, ", ".join(self.queue_names()))

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

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)
            return
        try:
            super().heartbeat(timeout)
        except REDIS_GONE as error:
            self._wait_for_redis(error)

    def check_for_suspension(self, burst: bool) -> None:
        try:
            super().check_for_suspension(burst)
        except REDIS_GONE as error:
            self._wait_for_redis(error)

    def run_maintenance_tasks(self) -> None:
        try:
            super().run_maintenance_tasks()  # type: ignore[no-untyped-call]
        except REDIS_GONE as error:
            self._wait_for_redis(error)  # and it runs again next time round

    def execute_job(self, job: Job, queue: Queue) -> None:
        """A job whose outcome could not be written (Redis went away under it) goes back on its
        queue once Redis is back, as if its worker had died, and the worker carries on."""
        try:
            super().execute_job(job, queue)
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
            self.set_state(WorkerStatus.IDLE)

    # -- running: RQ's bookkeeping -----------------------------------------------------------

    def prepare_execution(self, job: Job) -> Execution:
        """RQ's, but the job's entry in the started registry never expires: RQ's clean-up
        (``StartedJobRegistry.cleanup``, run by every worker's maintenance and every count)
        would otherwise fail a job cut off at a stop as ``AbandonedJobError`` once its
        heartbeat TTL passed, before the next pool put it back on its queue. The entry leaves
        when the job ends, or when procman's recovery requeues or fails it."""
        with self.connection.pipeline() as pipeline:
            ttl = self.get_heartbeat_ttl(job)
            execution = Execution.create(job, ttl, pipeline=pipeline, worker_name=self.name)
            pipeline.zadd(job.started_job_registry.key, {execution.composite_key: "+inf"})
            self.executions[execution.id] = execution
            self.set_state(WorkerStatus.BUSY, pipeline=pipeline)
            pipeline.execute()
        return execution

    # -- fetching ----------------------------------------------------------------------------

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        burst = timeout is None
        self.set_state("idle")
        seen_empty = False  # the single queue's BLMOVE just timed out: no need to fetch first
        while True:
            try:
                self._maybe_heartbeat()
                if not self._registered:  # listed before its first job, whoever marked it
                    mark_alive(self.connection, [self.name])
                    self._registered = True
                fetched = None if seen_empty else self._fetch_one()
                if fetched is not None:
                    return fetched
                if burst:
                    return None
                if len(self.queues) == 1:
                    fetched = self._block_on_single_queue()
                    if fetched is not None:
                        return fetched
                    seen_empty = True
                    continue
                self._wait_for_push()
            except REDIS_GONE as error:
                seen_empty = False
                self._drop_pushes()
                self._wait_for_redis(error)

    def _fetch_one(self) -> tuple[Job, Queue] | None:
        order = fetch_order(self.spec.queues, self._rng)
        queues = [self._queues_by_name[name] for name in order]
        while True:
            result = self._fetch(keys=[self.wip_key, *[queue.key for queue in queues]])
            if not result:
                return None
            index, raw_id = result
            job = self._job(raw_id)
            if job is not None:
                return job, queues[int(index)]

    def _wait_for_push(self) -> None:
        """With several queues no blocking pop can also record the job atomically, so an idle
        worker waits for Redis's keyspace notification of a push to one of its queues, then
        fetches as usual. The subscription is made once, before the first empty fetch, so a push
        that lands between a fetch and the wait is still seen; each time redis-py connects it
        again (Redis restarted), the setting is made again. Where Redis cannot notify, the
        worker blocks on its queues' wake-up lists instead (``BLPOP``, a token per
        ``procman.queues.enqueue``; a job pushed some other way waits at most BLOCK_SECONDS)."""
        if self._pushes is None:
            self._pushes = self._subscribe_to_pushes()
        if not isinstance(self._pushes, Pushes):
            self.connection.blpop([wake_key(queue.name) for queue in self.queues], BLOCK_SECONDS)
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
        pushes = Pushes(self.connection.connection_pool, ignore_subscribe_messages=True)
        pushes.subscribe(*[f"__keyspace@{database}__:{queue.key}" for queue in self.queues])
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
        job = self._job(raw_id)
        return None if job is None else (job, queue)

    def _job(self, raw_id: bytes | str) -> Job | None:
        job_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
        try:
            return Job.fetch(job_id, connection=self.connection, serializer=self.serializer)
        except NoSuchJobError:  # deleted while queued: nothing to run
            self.connection.lrem(self.wip_key, 1, job_id)
            return None

    def _maybe_heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_heartbeat >= HEARTBEAT_EVERY:
            self.heartbeat()
            self._last_heartbeat = now

    # -- running -----------------------------------------------------------------------------

    def perform_job(self, job: Job, queue: Queue, execution: Any) -> bool:
        if job.timeout in (None, Queue.DEFAULT_TIMEOUT):
            # RQ stamps its own default (180 s) on a job enqueued without a timeout; the app's
            # queues.yml decides for those.
            job.timeout = self.spec.timeout
        if job.retries_left is None and self.spec.retry > 0:
            job.retries_left = self.spec.retry
            job.retry_intervals = retry_intervals(self.spec.retry)
        self._report(f"start {job.id} {job.timeout}")
        described = _described(job)
        events.info("%s: %s started (job %s)", queue.name, described, job.id)
        began = time.monotonic()
        try:
            finished = bool(super().perform_job(job, queue, execution))
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

    def increment_successful_job_count(self, pipeline: Any = None) -> None:
        """RQ's count, and the dashboard's per-minute and per-day counts, in the pipeline that
        records the job's outcome (no extra round trip)."""
        super().increment_successful_job_count(pipeline)
        count_job(pipeline if pipeline is not None else self.connection, failed=False)

    def increment_failed_job_count(self, pipeline: Any = None) -> None:
        super().increment_failed_job_count(pipeline)
        count_job(pipeline if pipeline is not None else self.connection, failed=True)

    def cleanup_execution(self, job: Job, pipeline: Any, execution: Any = None) -> None:
        """Leave the work-in-progress list in the transaction that records the outcome."""
        super().cleanup_execution(job, pipeline, execution)
        pipeline.lrem(self.wip_key, 1, job.id)

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
