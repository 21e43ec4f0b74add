"""``procman worker``: run the app's background jobs (a pool of RQ workers, procman.queues.pool).

The app's settings, queue YAML and Redis URL are composed here once, then handed to the pool."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from procman.errors import UsageError, flag_of
from procman.queues.config import (
    ALL_QUEUES,
    QUEUE_NAME,
    QueueConfig,
    default_path,
    load_queue_config,
)
from procman.queues.connection import connect
from procman.queues.pool import Pool, PoolOptions
from procman.queues.redis_url import resolve_redis_url
from procman.queues.worker import logging_choice
from procman.rundir import RunDir
from procman.settings import STOP_TIMEOUT_VARIABLE, AppOptions, load_app


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    app: AppOptions
    config_path: Path | None = None
    """The queue YAML given (``-C``); None: ``queues.yml`` in the app directory, if present."""
    redis_url: str | None = None
    queues: str | None = None
    """``critical,default`` or ``critical:5,low:1`` as given; None: the queue YAML's."""
    concurrency: int | None = None
    burst: bool = False
    verbose: bool = False


def serve(options: WorkerOptions) -> int:
    """Validate everything, connect, then run the pool until it is stopped (or, with ``burst``,
    until the queues are empty)."""
    app = load_app(options.app)
    path = options.config_path if options.config_path is not None else default_path(app.root)
    config = (
        load_queue_config(path, app_dir=app.root, env={**app.shell, **app.env})
        if options.config_path is not None or path.exists()
        else QueueConfig(path=None)
    )
    queues = (
        parse_queues_option(options.queues)
        if options.queues is not None
        else tuple((q.name, q.weight) for q in config.queues)
    )
    url = resolve_redis_url(
        {**app.shell, **app.env}, options.redis_url, RunDir(app.root).private_redis_url()
    )
    connection = connect(url)
    verbose, timestamps = logging_choice(options.verbose)
    pool_options = PoolOptions(
        config=config,
        redis_url=url,
        queues=queues,
        concurrency=options.concurrency if options.concurrency is not None else config.concurrency,
        burst=options.burst,
        app_dir=app.root,
        stop_cut=start_stop_timeout(),
        verbose=verbose,
        timestamps=timestamps,
    )
    return Pool(pool_options, connection).run()


def start_stop_timeout() -> float | None:
    """``procman start``'s ``-t`` when running under it (it sets ``PROCMAN_STOP_TIMEOUT``)."""
    try:
        seconds = float(os.environ.get(STOP_TIMEOUT_VARIABLE, ""))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def parse_queues_option(spec: str) -> tuple[tuple[str, int | None], ...]:
    """``--queues critical,default`` (strict order), ``critical:5,default:3`` (weighted), a mix
    (``critical:5,default``, read as in the queue YAML: Sidekiq 7's modes), or ``*`` (every queue
    in Redis, alphabetically)."""
    if spec.strip() == ALL_QUEUES:
        return ((ALL_QUEUES, None),)
    queues: list[tuple[str, int | None]] = []
    for raw in spec.split(","):
        part = raw.strip()
        if not part:
            continue
        name, _, weight = part.partition(":")
        if not name or (weight and (not weight.isdigit() or int(weight) < 1)):
            raise UsageError(
                f"{flag_of('queues')}: cannot read {part!r}",
                "write names in order ('critical,default') or with weights ('critical:5,low:1')",
            )
        if name == ALL_QUEUES:
            raise UsageError(
                "--queues: '*' (every queue in Redis) cannot be combined with other queues",
                "give --queues '*' alone, or name the queues",
            )
        if not QUEUE_NAME.fullmatch(name):
            raise UsageError(
                f"{flag_of('queues')}: bad queue name {name!r}",
                "queue names may use only letters, digits, '_', '-' and '.'; separate them "
                "with commas ('critical,default')",
            )
        queues.append((name, int(weight) if weight else None))
    if not queues:
        raise UsageError(
            f"{flag_of('queues')}: no queue given",
            f"write e.g. {flag_of('queues')} critical,default",
        )
    if len({name for name, _ in queues}) != len(queues):
        raise UsageError(f"{flag_of('queues')}: a queue is listed twice", "list each queue once")
    return tuple(queues)
