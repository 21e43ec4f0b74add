"""Enqueueing from application code: ``enqueue(...)`` and the ``@job`` decorator.

    from procman.queues import enqueue, job

    enqueue("app.mail.send_welcome", user_id)            # by dotted path, on queue "default"
    enqueue(send_welcome, user_id, queue="critical", retry=5)

    @job(queue="low")
    def highlight(snippet_id: int) -> None: ...

    highlight.delay(42)                                   # run by a worker soon
    highlight.enqueue_in(timedelta(minutes=5), 42)        # or 300 (seconds)
    highlight.enqueue_at(datetime(2030, 1, 1, 9), 42)     # naive datetimes are local time
    highlight(42)                                         # still a plain call, here and now

The Redis URL is resolved from the process environment with the same rules as everywhere in
procman (``REDIS_PROVIDER``, then ``REDIS_URL``, then the private Redis of a ``procman start``
running in the current directory or one above it, then ``redis://localhost:6379/0``); ``procman
start`` sets ``REDIS_URL`` for its processes. One connection is made per process, on the first
enqueue, and made again in a forked child. A script that lets the error of an unreachable Redis
go uncaught ends with procman's one-line error rather than a traceback.

Options left out are for the worker to fill from its ``queues.yml``: they are listed in the job's
meta, ``job.meta["procman_defaults"] == ["timeout", "retry"]`` (RQ stores its own 180 s timeout on
every job, so the job's timeout alone cannot say). ``retry=0`` (or False) means no retries whatever
``queues.yml`` says (``job.retries_left == 0``); ``retry=N`` retries N times with exponential
backoff (``backoff_intervals``); an RQ ``Retry`` is used as given.

In inline mode (``procman.queues.testing``) jobs run at once in this process, without Redis.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Generic, ParamSpec, TypeAlias, TypeVar, overload

import redis
from rq import Queue, Retry
from rq.job import Job

from procman.errors import ProcmanError, one_line_errors_in_scripts
from procman.queues.config import DEFAULT_QUEUE, QUEUE_NAME
from procman.queues.connection import connect, unavailable
from procman.queues.recovery import wake
from procman.queues.redis_url import RedisUrl, resolve_redis_url
from procman.queues.testing import InlineJob, inline_enabled, run_inline
from procman.queues.worker import retry_intervals
from procman.rundir import private_redis_near

P = ParamSpec("P")
R = TypeVar("R")

Enqueued: TypeAlias = Job | InlineJob
"""An RQ ``Job`` in Redis, or an ``InlineJob`` that has already run (inline mode)."""
RetryOption: TypeAlias = int | bool | Retry | None
TimeoutOption: TypeAlias = int | float | timedelta | None
FunctionRef: TypeAlias = "Callable[..., Any] | str"

DEFAULTS_META = "procman_defaults"
"""Job meta key: the options the caller left out (``["timeout", "retry"]``), for the worker to
fill from ``queues.yml``. RQ itself stores its own default timeout on every job."""


def backoff_intervals(retries: int) -> list[int]:
    """Seconds before each retry, the worker's own backoff for ``queues.yml``'s ``retry:``
    (Sidekiq's, without its jitter): 15, 16, 31, 96, 271 ..."""
    return retry_intervals(retries)


def enqueue(
    func: FunctionRef,
    /,
    *args: Any,
    queue: str = DEFAULT_QUEUE,
    timeout: TimeoutOption = None,
    retry: RetryOption = None,
    **kwargs: Any,
) -> Enqueued:
    """Put ``func(*args, **kwargs)`` on ``queue`` for a worker; return the job.

    ``func`` is a module-level function (or a ``@job``) or its dotted path, ``"app.jobs.send"``.
    A job whose own parameters are named ``queue``, ``timeout`` or ``retry`` is enqueued with
    ``enqueue_call``."""
    return enqueue_call(func, args, kwargs, queue=queue, timeout=timeout, retry=retry)


def enqueue_call(
    func: FunctionRef,
    /,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    queue: str = DEFAULT_QUEUE,
    timeout: TimeoutOption = None,
    retry: RetryOption = None,
    at: datetime | None = None,
) -> Enqueued:
    """``enqueue`` with the job's arguments given explicitly; ``at`` schedules it."""
    func_name = reference(func)
    _check_queue(queue)
    seconds = _timeout_seconds(timeout)
    policy = retry_policy(retry)
    if inline_enabled():
        return run_inline(func_name, args, kwargs or {}, queue=queue, scheduled_for=at)
    client = get_connection()
    rq_queue = Queue(queue, connection=client)
    try:
        job = rq_queue.create_job(
            func_name,
            args=tuple(args),
            kwargs=dict(kwargs or {}),
            timeout=seconds,
            retry=policy if isinstance(policy, Retry) else None,
        )
        defaults = [
            name for name, given in (("timeout", seconds), ("retry", policy)) if given is None
        ]
        if defaults:
            job.meta[DEFAULTS_META] = defaults
        if policy == 0:
            job.retries_left = 0
        if at is None:
            enqueued = rq_queue.enqueue_job(job)
            with client.pipeline(transaction=False) as pipeline:
                wake(pipeline, [queue])  # for workers where Redis sends no notifications
                pipeline.execute()
            return enqueued
        return rq_queue.schedule_job(job, at)
    except redis.RedisError as error:
        one_line_errors_in_scripts()
        raise unavailable(_shared.url or "", error, tried=f"enqueueing {func_name}") from None


class JobFunction(Generic[P, R]):
    """A function made a job by ``@job``: call it as before, or ``.delay`` it to a worker."""

    def __init__(
        self,
        func: Callable[P, R],
        *,
        queue: str = DEFAULT_QUEUE,
        timeout: TimeoutOption = None,
        retry: RetryOption = None,
    ) -> None:
        _check_queue(queue)
        _timeout_seconds(timeout)
        retry_policy(retry)
        self.func = func
        self.queue = queue
        self.timeout = timeout
        self.retry = retry
        functools.update_wrapper(self, func)

    @property
    def path(self) -> str:
        """The dotted path a worker imports: ``module.name``."""
        return reference(self.func)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> Enqueued:
        return self._enqueue(args, kwargs, None)

    def enqueue_in(
        self, delay: timedelta | float, /, *args: P.args, **kwargs: P.kwargs
    ) -> Enqueued:
        """Run after ``delay`` (a timedelta, or seconds)."""
        if not isinstance(delay, timedelta):
            delay = timedelta(seconds=delay)
        return self._enqueue(args, kwargs, datetime.now().astimezone() + delay)

    def enqueue_at(self, when: datetime, /, *args: P.args, **kwargs: P.kwargs) -> Enqueued:
        """Run at ``when`` (a naive datetime is local time)."""
        return self._enqueue(args, kwargs, when)

    def _enqueue(
        self, args: Sequence[Any], kwargs: Mapping[str, Any], at: datetime | None
    ) -> Enqueued:
        return enqueue_call(
            self.path, args, kwargs, queue=self.queue, timeout=self.timeout, retry=self.retry, at=at
        )

    def __repr__(self) -> str:
        return f"<job {self.path} queue={self.queue!r}>"


@overload
def job(func: Callable[P, R], /) -> JobFunction[P, R]: ...
@overload
def job(
    *, queue: str = ..., timeout: TimeoutOption = ..., retry: RetryOption = ...
) -> Callable[[Callable[P, R]], JobFunction[P, R]]: ...
def job(
    func: Callable[P, R] | None = None,
    /,
    *,
    queue: str = DEFAULT_QUEUE,
    timeout: TimeoutOption = None,
    retry: RetryOption = None,
) -> JobFunction[P, R] | Callable[[Callable[P, R]], JobFunction[P, R]]:
    """Make a module-level function a job: ``@job`` or ``@job(queue="low", retry=3)``."""

    def wrap(function: Callable[P, R]) -> JobFunction[P, R]:
        return JobFunction(function, queue=queue, timeout=timeout, retry=retry)

    return wrap if func is None else wrap(func)


def get_connection() -> redis.Redis:
    """This process's Redis connection, made on first use from the environment's URL."""
    return _shared.get()


def use_connection(client: redis.Redis | None, url: RedisUrl | None = None) -> None:
    """Enqueue through ``client`` from now on (None: resolve from the environment again)."""
    _shared.use(client, url)


class _SharedConnection:
    """One connection per process: a forked child (gunicorn, a worker) makes its own."""

    def __init__(self) -> None:
        self.client: redis.Redis | None = None
        self.url: RedisUrl | None = None
        self.pid = 0

    def get(self) -> redis.Redis:
        if self.client is None or self.pid != os.getpid():
            try:
                url = resolve_redis_url(os.environ, private=private_redis_near(Path.cwd()))
                client = connect(url)
            except ProcmanError:
                one_line_errors_in_scripts()
                raise
            self.use(client, url)
        assert self.client is not None
        return self.client

    def use(self, client: redis.Redis | None, url: RedisUrl | None) -> None:
        self.client, self.pid = client, os.getpid() if client is not None else 0
        self.url = url if url is not None or client is None else RedisUrl(_describe(client), "")


_shared = _SharedConnection()


def reference(func: FunctionRef) -> str:
    """The dotted path a worker imports ``func`` by; ValueError when a worker could not."""
    if isinstance(func, str):
        if not func or func.startswith(".") or func.endswith(".") or "." not in func:
            raise ValueError(f"{func!r} is not a dotted path to a function, like 'app.jobs.send'")
        return func
    if isinstance(func, JobFunction):
        return func.path
    if not (inspect.isfunction(func) or inspect.isbuiltin(func)):
        raise TypeError(f"{func!r}: enqueue a module-level function, or its dotted path")
    module, name = func.__module__, func.__qualname__
    if module == "__main__":
        raise ValueError(
            f"{name} is defined in __main__, which a worker cannot import: "
            "move it into a module of the app"
        )
    if "<" in name:
        raise ValueError(
            f"{module}.{name} is a lambda or a nested function, which a worker cannot import: "
            "define it at module level"
        )
    return f"{module}.{name}"


def retry_policy(retry: RetryOption) -> Retry | int | None:
    """None (the worker's default), 0 (no retries) or an RQ Retry with backoff."""
    if retry is None or isinstance(retry, Retry):
        return retry
    if retry is True or not isinstance(retry, int):
        raise TypeError(f"retry={retry!r}: give a number of retries, 0/False for none, or None")
    if retry < 0:
        raise ValueError(f"retry={retry}: the number of retries cannot be negative")
    if retry == 0:
        return 0
    return Retry(max=retry, interval=backoff_intervals(retry))


def _timeout_seconds(timeout: TimeoutOption) -> int | None:
    if timeout is None:
        return None
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"timeout={timeout!r}: give seconds, or a timedelta")
    if seconds == -1:
        return -1  # RQ: no timeout
    if seconds < 1:
        raise ValueError(f"timeout={timeout!r}: must be at least 1 second (or -1 for none)")
    return int(seconds)


def _check_queue(queue: str) -> None:
    if not isinstance(queue, str) or not QUEUE_NAME.fullmatch(queue):
        raise ValueError(f"queue={queue!r}: use letters, digits, '_', '-' and '.'")


def _describe(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    host, port = kwargs.get("host", "localhost"), kwargs.get("port", 6379)
    return f"redis://{host}:{port}/{kwargs.get('db', 0)}"
