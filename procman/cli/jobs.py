"""``procman jobs``: the queues, the workers and the failed jobs; retry, delete, clear.

Each command turns its options into ``JobsOptions``, calls one function of
``procman.commands.jobs`` and formats what it returns.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from procman.cli.commands import env_option, root_option, to_app_options, with_options
from procman.cli.control import format_duration, format_table
from procman.errors import UsageError

if TYPE_CHECKING:
    from procman.commands.jobs import JobsOptions
    from procman.queues.monitoring import FailedPage, JobDetail, Overview

F = TypeVar("F", bound=Callable[..., Any])


def target_options(command: F) -> F:
    """-d, -e, -C and --redis-url: on ``procman jobs`` and on each of its commands."""
    decorators = [
        root_option,
        env_option,
        click.option(
            "-C",
            "--config",
            type=click.Path(path_type=Path),
            help="Queue YAML, for the queues and weights [default: queues.yml in the app "
            "directory, if present].",
        ),
        click.option(
            "--redis-url",
            metavar="URL",
            help="Redis to inspect [default: REDIS_PROVIDER's variable, else REDIS_URL, from the "
            "environment or the env files, else redis://localhost:6379/0].",
        ),
    ]
    return with_options(command, decorators)


json_option = click.option("--json", "as_json", is_flag=True, help="Print it as JSON.")


@click.group(invoke_without_command=True)
@target_options
@json_option
@click.pass_context
def jobs(ctx: click.Context, /, as_json: bool, **options: Any) -> int:
    """Show queues (sizes, weights, scheduled, started, failed, finished) and workers (host, pid,
    state, current job, jobs done and failed); the commands below list and repair jobs."""
    ctx.obj = {**options, "as_json": as_json}
    if ctx.invoked_subcommand is not None:
        return 0
    from procman.commands.jobs import overview

    result = overview(_options(ctx, options))
    _echo(result.as_json() if as_json else render_overview(result), as_json)
    return 0


@jobs.command()
@target_options
@json_option
@click.argument("queue", required=False)
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Jobs per page."
)
@click.option(
    "--offset", type=click.IntRange(min=0), default=0, show_default=True, help="Jobs to skip."
)
@click.pass_context
def failed(
    ctx: click.Context, /, queue: str | None, limit: int, offset: int, as_json: bool, **options: Any
) -> int:
    """List failed jobs (of QUEUE, or of every queue), newest first, with the error's last line."""
    from procman.commands.jobs import failed as failed_jobs

    page = failed_jobs(_options(ctx, options), queue, offset=offset, limit=limit)
    as_json = as_json or ctx.obj["as_json"]
    _echo(page.as_json() if as_json else render_failed(page, queue), as_json)
    return 0


@jobs.command()
@target_options
@json_option
@click.argument("job_id", metavar="ID")
@click.pass_context
def show(ctx: click.Context, /, job_id: str, as_json: bool, **options: Any) -> int:
    """Show one job: function, arguments, status, times, and its result or full traceback."""
    from procman.commands.jobs import show as job_detail

    detail = job_detail(_options(ctx, options), job_id)
    as_json = as_json or ctx.obj["as_json"]
    _echo(detail.as_json() if as_json else render_detail(detail), as_json)
    return 0


@jobs.command()
@target_options
@click.argument("job_id_or_queue", metavar="[ID|QUEUE]", required=False)
@click.option("--all", "every", is_flag=True, help="Retry every failed job (of QUEUE, if given).")
@click.pass_context
def retry(ctx: click.Context, /, job_id_or_queue: str | None, every: bool, **options: Any) -> int:
    """Put a failed job back on its queue: ID, or --all [QUEUE] for every failed job."""
    from procman.commands.jobs import retry as retry_jobs
    from procman.queues.monitoring import JobRef

    if not every and job_id_or_queue is None:
        raise UsageError("give the ID of a failed job, or --all", "see 'procman jobs failed'")
    report = retry_jobs(_options(ctx, options), job_id_or_queue, every)
    if isinstance(report, JobRef):
        click.echo(f"requeued job {report.id} on queue {report.queue}")
        return 0
    gone = f"; {report.missing} whose data had expired dropped" if report.missing else ""
    if report.requeued:
        click.echo(f"requeued {_jobs(report.requeued)} to {', '.join(report.queues)}{gone}")
    else:
        click.echo(f"no failed jobs to retry{gone}")
    return 0


@jobs.command()
@target_options
@click.argument("job_id", metavar="ID")
@click.pass_context
def delete(ctx: click.Context, /, job_id: str, **options: Any) -> int:
    """Delete a job (waiting, scheduled, failed or finished) and its results."""
    from procman.commands.jobs import delete as delete_job

    ref = delete_job(_options(ctx, options), job_id)
    click.echo(f"deleted job {ref.id} ({ref.status}, queue {ref.queue})")
    return 0


@jobs.command()
@target_options
@click.argument("queue")
@click.option("-y", "--yes", is_flag=True, help="Do not ask; needed when stdin is not a terminal.")
@click.pass_context
def clear(ctx: click.Context, /, queue: str, yes: bool, **options: Any) -> int:
    """Delete every job waiting in QUEUE (failed and finished jobs stay)."""
    from procman.commands.jobs import clear as clear_queue

    def confirm(waiting: int) -> bool:
        return yes or _confirm(f"Delete the {_jobs(waiting)} waiting in queue {queue}?")

    cleared = clear_queue(_options(ctx, options), queue, confirm)
    if cleared.waiting == 0:
        click.echo(f"queue {queue} is empty: nothing to clear")
        return 0
    if cleared.removed is None:
        click.echo("nothing deleted")
        return 1
    click.echo(f"deleted {_jobs(cleared.removed)} from queue {queue}")
    return 0


def _options(ctx: click.Context, options: dict[str, Any]) -> JobsOptions:
    """This command's options, else those given before it (``procman jobs -d app failed``)."""
    from procman.commands.jobs import JobsOptions

    given = {**ctx.obj, **{k: v for k, v in options.items() if v}} if ctx.obj else options
    app = to_app_options(None, given["root"], given["env_files"], None)
    return JobsOptions(app=app, config_path=given["config"], redis_url=given["redis_url"])


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise UsageError("not deleting without confirmation", "pass --yes (stdin is no terminal)")
    return click.confirm(question, default=False)


def _echo(result: dict[str, Any] | str, as_json: bool) -> None:
    click.echo(json.dumps(result, indent=2) if as_json else result)


def _jobs(count: int) -> str:
    return f"{count} job{'' if count == 1 else 's'}"


# -- formatting -------------------------------------------------------------------------------


def render_overview(result: Overview) -> str:
    queues = [["QUEUE", "WEIGHT", "QUEUED", "SCHEDULED", "STARTED", "FAILED", "FINISHED"]]
    for q in result.queues:
        counts = (q.queued, q.scheduled, q.started, q.failed, q.finished)
        name = q.name if q.configured else f"{q.name}*"
        weight = "-" if q.weight is None else str(q.weight)
        queues.append([name, weight, *(str(count) for count in counts)])
    lines = [f"redis: {result.redis}", "", format_table(queues)]
    if any(not q.configured for q in result.queues):
        lines.append("* not in the queue YAML: no 'procman worker' of this app serves it")
    lines.append("")
    if not result.workers:
        lines.append("no workers")
        return "\n".join(lines)
    workers = [["HOST", "PID", "STATE", "QUEUES", "DONE", "FAILED", "JOB"]]
    for w in result.workers:
        job = "-"
        if w.job_id is not None:
            job = f"{w.job_id} {w.job_description or ''} ({format_duration(w.job_seconds)})"
        workers.append(
            [
                w.hostname or "?",
                str(w.pid or "?"),
                w.state,
                ",".join(w.queues),
                str(w.successful_jobs),
                str(w.failed_jobs),
                job,
            ]
        )
    lines.append(format_table(workers))
    return "\n".join(lines)


def render_failed(page: FailedPage, queue: str | None, now: datetime | None = None) -> str:
    where = f" in queue {queue}" if queue else ""
    if not page.jobs:
        if page.total:
            return f"no failed jobs past --offset {page.offset}{where} ({page.total} in all)"
        return f"no failed jobs{where}"
    now = now or datetime.now(UTC)
    rows = [["ID", "QUEUE", "FAILED", "JOB", "ERROR"]]
    for job in page.jobs:
        age = (
            "-" if job.failed_at is None else f"{format_duration(_seconds(now, job.failed_at))} ago"
        )
        rows.append([job.id, job.queue, age, _cut(job.description or "-", 50), job.error or "-"])
    last = page.offset + len(page.jobs)
    footer = f"{page.offset + 1}-{last} of {page.total} failed jobs{where}"
    if last < page.total:
        footer += f"; next: --offset {last}"
    return f"{format_table(rows)}\n{footer}"


def render_detail(job: JobDetail) -> str:
    fields = [
        ("id", job.id),
        ("queue", job.queue),
        ("status", job.status),
        ("function", job.function or job.description or "-"),
        ("args", ", ".join(job.args) if job.args is not None else "-"),
        ("kwargs", _kwargs(job.kwargs)),
        ("created", _time(job.created_at)),
        ("enqueued", _time(job.enqueued_at)),
        ("scheduled for", _time(job.scheduled_for)),
        ("started", _time(job.started_at)),
        ("ended", _time(job.ended_at)),
        ("worker", job.worker or "-"),
        ("timeout", "-" if job.timeout is None else f"{job.timeout:g}s"),
        ("retries left", "-" if job.retries_left is None else str(job.retries_left)),
    ]
    if job.result is not None:
        fields.append(("result", job.result))
    if job.decode_error:
        fields.append(("note", job.decode_error))
    lines = [f"{name + ':':<14} {value}" for name, value in fields if value != "-" or name in KEEP]
    if job.traceback:
        lines += ["traceback:", *("  " + line for line in job.traceback.rstrip().splitlines())]
    return "\n".join(lines)


KEEP = ("function", "args", "ended", "worker")
"""Fields shown even when empty, so a job that never ran says so."""


def _kwargs(kwargs: dict[str, str] | None) -> str:
    if not kwargs:
        return "-"
    return ", ".join(f"{key}={value}" for key, value in kwargs.items())


def _time(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    seconds = (datetime.now(UTC) - moment).total_seconds()
    when = f"in {format_duration(-seconds)}" if seconds < 0 else f"{format_duration(seconds)} ago"
    return f"{moment.astimezone().isoformat(sep=' ', timespec='seconds')} ({when})"


def _seconds(now: datetime, then: datetime) -> float:
    return max(0.0, (now - then).total_seconds())


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
