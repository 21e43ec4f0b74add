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
  back on its queue by procman's recovery is listed there as ``Queue.enqueue`` would.

Overriding ``dequeue_job_and_maintain_ttl`` (the reliable fetch, ``procman.queues.worker``) and the
other public but undocumented ``Worker`` methods are seams of RQ, not private names; their
behaviour is covered by the worker tests against a real Redis.
"""

from __future__ import annotations

from typing import Any

from rq.job import Job
from rq.job_lifecycle import call_exception_handlers, format_exc_info, record_job_failure
from rq.queue import Queue
from rq.utils import now
from rq.worker import SimpleWorker

__all__ = [
    "QUEUES_KEY",
    "RQWorkerSeams",
    "format_exc_info",
    "has_dependencies",
    "record_job_failure",
]

QUEUES_KEY: str = Queue.redis_queues_keys
"""``rq:queues``: the set of every queue's key."""


def has_dependencies(job: Job) -> bool:
    """Whether ``job`` was enqueued depending on other jobs (no round trip)."""
    return bool(job._dependency_ids)


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

    def call_exception_handlers(self, job: Any, *exc_info: Any) -> None:
        """Call the worker's exception handlers as RQ does, without RQ's log of the failure."""
        call_exception_handlers(self._exc_handlers, job, *exc_info)
