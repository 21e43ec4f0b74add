"""Every use procman makes of RQ's private names, in one place, and why.

procman's worker extends RQ's ``SimpleWorker`` at its seams, but a few of the things it must do
have no public name in RQ 3 (pyproject.toml bounds the dependency to ``rq>=3.0,<4`` for that
reason: a major release may rename or change any of them; check each one here before raising
the bound):

- ``Worker._install_signal_handlers``: the pool owns the signals, so the worker must replace RQ's
  SIGINT/SIGTERM handlers; ``work()`` installs them through this private method only.
- ``Worker._pubsub_exception_handler``: RQ's command-channel thread logs every 2 s while Redis is
  away; procman's worker waits quietly instead (its main loop says so once).
- ``Worker._shutdown`` and ``Worker._shutdown_requested_date``: RQ's own warm stop (finish the
  running job, then exit; idle: raise ``StopRequested``), what its SIGTERM handler runs.
- ``Worker._stop_requested``: the flag that warm stop sets and ``work()`` reads after each job;
  procman sets it to recycle a worker above ``max_memory`` and reads it while waiting for Redis.
- ``Worker._exc_handlers``: the exception handlers RQ would call; procman calls them without
  RQ's multi-line log of the traceback (``call_exception_handlers``).
- ``rq.job_lifecycle`` (``call_exception_handlers``, ``format_exc_info``, ``record_job_failure``):
  not in RQ's documented API; procman records a failure the way RQ's worker does.
- ``Job._dependency_ids``: whether a job depends on others, as loaded with the job (the public
  ``dependency_ids`` costs a round trip a job); the dashboard's batched retry leaves such jobs to
  RQ's own requeue (``has_dependencies``).
- ``QUEUES_KEY``: the Redis set RQ lists its queues in (``Queue.redis_queues_keys``); a job put
  back on its queue by procman's recovery is listed there as ``Queue.enqueue`` would, and
  ``--queues '*'`` serves every queue listed there.
- ``Worker._finalize_success`` and ``Worker._finalize_failure``: RQ's handling of a job that
  returned or raised, used where procman's own bookkeeping (``procman.queues.bookkeeping``) does
  not cover the job (a ``Retry`` returned, repeats, a rate limit, a ``result_ttl`` of 0 or -1, and
  every failure).
- ``Job._status`` and ``Job._dependency_ids``: the job's status as this process knows it, set
  when procman's start script and finish script record it (RQ's ``Job.set_status`` would write
  to Redis again); the ids of the jobs it depended on, read from its hash (RQ's
  ``Job.dependency_ids`` asks Redis).

Overriding ``dequeue_job_and_maintain_ttl`` (the reliable fetch, ``procman.queues.worker``) and the
other public but undocumented ``Worker`` methods are seams of RQ, not private names; their
behaviour is covered by the worker tests against a real Redis.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rq.job import Job, JobStatus
from rq.job_lifecycle import call_exception_handlers, format_exc_info, record_job_failure
from rq.queue import Queue
from rq.utils import now
from rq.worker import SimpleWorker

__all__ = [
    "QUEUES_KEY",
    "RQWorkerSeams",
    "all_queue_names",
    "dependency_ids",
    "format_exc_info",
    "has_dependencies",
    "mark_finished",
    "mark_started",
    "record_job_failure",
]

QUEUES_KEY: str = Queue.redis_queues_keys
"""``rq:queues``: the set of every queue's key."""


def has_dependencies(job: Job) -> bool:
    """Whether ``job`` was enqueued depending on other jobs (no round trip)."""
    return bool(job._dependency_ids)


def all_queue_names(connection: Any) -> list[str]:
    """Every queue RQ lists in Redis (one that ever had a job enqueued or scheduled), by name."""
    prefix = Queue.redis_queue_namespace_prefix
    members = connection.smembers(QUEUES_KEY)
    keys = (raw.decode() if isinstance(raw, bytes) else str(raw) for raw in members)
    return sorted(key.removeprefix(prefix) for key in keys if key.startswith(prefix))


def mark_started(job: Job, worker_name: str, at: datetime) -> None:
    """What RQ's ``Job.prepare_for_execution`` sets on the job object, without writing to Redis
    (procman's start script wrote it)."""
    job.worker_name = worker_name
    job.started_at = job.last_heartbeat = at
    job._status = JobStatus.STARTED


def mark_finished(job: Job) -> None:
    """The job object's status once procman's finish script recorded it."""
    job._status = JobStatus.FINISHED


def dependency_ids(job: Job) -> list[str]:
    """The ids of the jobs ``job`` depended on, as read from its hash (no Redis command)."""
    return list(job._dependency_ids)


class RQWorkerSeams(SimpleWorker):
    """RQ's in-process worker, with the private parts procman needs under procman's names."""

    def _install_signal_handlers(self) -> None:
        self.install_signals()

    def install_signals(self) -> None:
        """Install this worker's signal handlers (RQ's: SIGINT and SIGTERM ask for a warm stop)."""
        super()._install_signal_handlers()  # type: ignore[no-untyped-call]

    def _pubsub_exception_handler(self, exc: Exception, pubsub: Any, pubsub_thread: Any) -> None:
        self.command_channel_failed(exc, pubsub, pubsub_thread)

    def command_channel_failed(self, exc: Exception, pubsub: Any, pubsub_thread: Any) -> None:
        """RQ's command-channel thread raised ``exc`` (RQ's handler: log it, wait 2 s)."""
        super()._pubsub_exception_handler(exc, pubsub, pubsub_thread)

    def warm_stop(self) -> None:
        """RQ's warm stop: finish the running job, then exit; idle, raise ``StopRequested``."""
        self._shutdown_requested_date = now()
        self._shutdown()  # type: ignore[no-untyped-call]

    @property
    def stop_requested(self) -> bool:
        """Whether the worker stops after the running job (RQ's ``work()`` reads the flag)."""
        return bool(self._stop_requested)

    @stop_requested.setter
    def stop_requested(self, value: bool) -> None:
        self._stop_requested = value

    def finalize_success(self, job: Any, queue: Queue, execution: Any, return_value: Any) -> None:
        """RQ's handling of a job that returned: callbacks, retry, result, registries, repeat,
        dependents, webhooks, rate limit."""
        self._finalize_success(job, queue, execution, return_value)

    def finalize_failure(self, job: Any, queue: Queue, execution: Any, exc_info: Any) -> None:
        """RQ's handling of a job that raised: failure callback, exception handlers, retry or
        failed registry, dependents, webhooks."""
        self._finalize_failure(job, queue, execution, exc_info)

    def call_exception_handlers(self, job: Any, *exc_info: Any) -> None:
        """Call the worker's exception handlers as RQ does, without RQ's log of the failure."""
        call_exception_handlers(self._exc_handlers, job, *exc_info)
