"""``procman jobs``: the queues, the workers and the failed jobs; retry, delete, clear.

Each function takes the command's :class:`JobsOptions`, composes the target once (the app's Redis
and queue YAML, :func:`resolve_target`), calls ``procman.queues.monitoring`` on one connection
and returns what it found, for ``procman.cli.jobs`` to print."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from procman.errors import ProcmanError, collect, raise_collected, spell_options
from procman.queues import monitoring
from procman.queues.config import QueueConfig, default_path, load_queue_config
from procman.queues.monitoring import FailedPage, JobDetail, JobRef, Overview, RetryReport
from procman.queues.redis_url import RedisUrl, resolve_redis_url
from procman.rundir import RunDir
from procman.settings import AppOptions, load_app


@dataclass(frozen=True, slots=True)
class JobsOptions:
    app: AppOptions
    config_path: Path | None = None
    """The queue YAML given (``-C``); None: ``queues.yml`` in the app directory, if present."""
    redis_url: str | None = None


@dataclass(frozen=True, slots=True)
class Target:
    url: RedisUrl
    config: QueueConfig | None
    """The app's queue YAML; None when it has none (then the worker serves ``default``)."""


def resolve_target(options: JobsOptions) -> Target:
    """The app's Redis URL (``--redis-url``, else REDIS_PROVIDER / REDIS_URL from the environment
    and the app's env files) and queue YAML (``config_path``, else ``queues.yml`` in the app
    directory if present). Every problem is reported together."""
    config_path, redis_url = options.config_path, options.redis_url
    app = load_app(options.app)
    errors: list[ProcmanError] = []
    private = RunDir(app.root).private_redis_url()
    url = collect(
        lambda: resolve_redis_url(app.process_env(unbuffered=False), redis_url, private), errors
    )
    path = config_path if config_path is not None else default_path(app.root)
    config = None
    if config_path is not None or path.is_file():
        env = {**app.shell, **app.env}
        config = collect(lambda: load_queue_config(path, app_dir=app.root, env=env), errors)
    raise_collected(errors)
    assert url is not None
    return Target(url=url, config=config)


def overview(options: JobsOptions) -> Overview:
    target = resolve_target(options)
    with monitoring.connected(target.url) as connection:
        label = spell_options(target.url.describe())
        return monitoring.overview(connection, target.config, redis_label=label)


def failed(options: JobsOptions, queue: str | None, *, offset: int, limit: int) -> FailedPage:
    target = resolve_target(options)
    with monitoring.connected(target.url) as connection:
        return monitoring.failed_jobs(connection, target.config, queue, offset=offset, limit=limit)


def show(options: JobsOptions, job_id: str) -> JobDetail:
    target = resolve_target(options)
    with monitoring.connected(target.url) as connection:
        return monitoring.job_detail(connection, job_id)


def retry(options: JobsOptions, job_id_or_queue: str | None, every: bool) -> JobRef | RetryReport:
    """One failed job put back (its ID), or with ``every`` all of them (of a queue, if given)."""
    target = resolve_target(options)
    with monitoring.connected(target.url) as connection:
        if not every:
            assert job_id_or_queue is not None, "an ID, or every"
            return monitoring.retry_job(connection, job_id_or_queue)
        return monitoring.retry_all(connection, target.config, job_id_or_queue)


def delete(options: JobsOptions, job_id: str) -> JobRef:
    target = resolve_target(options)
    with monitoring.connected(target.url) as connection:
        return monitoring.delete_job(connection, job_id)


@dataclass(frozen=True, slots=True)
class Cleared:
    waiting: int
    """Jobs waiting in the queue when asked."""
    removed: int | None
    """Jobs deleted; None when the user declined (or nothing was waiting)."""


def clear(options: JobsOptions, queue: str, confirm: Callable[[int], bool]) -> Cleared:
    """Delete the jobs waiting in ``queue`` once ``confirm(waiting)`` agrees (not asked when the
    queue is empty)."""
    target = resolve_target(options)
    with monitoring.connected(target.url) as connection:
        waiting = monitoring.queue_size(connection, target.config, queue)
        if waiting == 0 or not confirm(waiting):
            return Cleared(waiting=waiting, removed=None)
        return Cleared(
            waiting=waiting, removed=monitoring.clear_queue(connection, target.config, queue)
        )
