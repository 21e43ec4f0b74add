"""Inline mode for the app's own tests (Sidekiq's ``Sidekiq::Testing.inline!``): ``enqueue``,
``.delay``, ``.enqueue_in`` and ``.enqueue_at`` run the job at once, in the calling process, with no
Redis and no worker.

    from procman.queues.testing import inline

    def test_highlighting() -> None:
        with inline() as jobs:
            highlight.delay(snippet_id)
        assert jobs[0].return_value() == ...

``PROCMAN_JOBS_INLINE=1`` in the environment turns it on for a whole test run. What a worker would
do is kept: the function is found by its dotted path, as the worker imports it, and the arguments go
through the same pickling as on their way to Redis, so a job a worker could not run fails here too.
Scheduled jobs run at once (as in Sidekiq); timeouts and retries are not applied.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

INLINE_VARIABLE = "PROCMAN_JOBS_INLINE"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")

FINISHED = "finished"
FAILED = "failed"


@dataclass(eq=False, slots=True)
class InlineJob:
    """A job that ran inline; shaped after the parts of RQ's ``Job`` a test looks at."""

    func_name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    origin: str
    """The queue it was enqueued on."""
    scheduled_for: datetime | None = None
    """For ``enqueue_in``/``enqueue_at``: when a worker would have run it."""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    result: Any = None
    error: BaseException | None = None
    status: str = FINISHED

    def get_status(self, refresh: bool = True) -> str:
        return self.status

    def return_value(self, refresh: bool = False) -> Any:
        return self.result

    @property
    def is_finished(self) -> bool:
        return self.status == FINISHED

    @property
    def is_failed(self) -> bool:
        return self.status == FAILED


class InlineJobs(list[InlineJob]):
    """The jobs run inside one ``inline()`` block, in the order they were enqueued."""

    def __init__(self, raise_errors: bool) -> None:
        super().__init__()
        self.raise_errors = raise_errors


_active: list[InlineJobs] = []


@contextmanager
def inline(*, raise_errors: bool = True) -> Iterator[InlineJobs]:
    """Run every job enqueued inside the block at once; yield the list of jobs run.

    ``raise_errors``: a job's exception comes out of ``enqueue``/``.delay`` (the default, as in
    Sidekiq); with False it is kept on the job (``status == "failed"``, ``error``) instead."""
    jobs = InlineJobs(raise_errors)
    _active.append(jobs)
    try:
        yield jobs
    finally:
        _active.remove(jobs)


def inline_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Inside ``inline()``, or with ``PROCMAN_JOBS_INLINE`` set to 1/true/yes/on."""
    if _active:
        return True
    raw = (os.environ if environ is None else environ).get(INLINE_VARIABLE, "")
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{INLINE_VARIABLE}={raw!r}: expected 1 (run jobs inline) or 0")


def run_inline(
    func_name: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    queue: str,
    scheduled_for: datetime | None = None,
) -> InlineJob:
    """Run the job now, as a worker would: import ``func_name``, call it with unpickled copies of
    the arguments."""
    from rq.serializers import DefaultSerializer
    from rq.utils import import_attribute

    copied_args, copied_kwargs = DefaultSerializer.loads(
        DefaultSerializer.dumps((tuple(args), dict(kwargs)))
    )
    try:
        func = import_attribute(func_name)
    except (ValueError, ImportError, AttributeError) as error:
        raise ValueError(
            f"cannot import {func_name} ({error}); a worker could not either"
        ) from None
    job = InlineJob(func_name, copied_args, copied_kwargs, queue, scheduled_for)
    recorder = _active[-1] if _active else None
    if recorder is not None:
        recorder.append(job)
    try:
        job.result = func(*copied_args, **copied_kwargs)
    except Exception as error:
        job.status = FAILED
        job.error = error
        if recorder is None or recorder.raise_errors:
            raise
    return job
