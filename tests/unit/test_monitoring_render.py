"""procman jobs' formatting of what procman.queues.monitoring returns: exact strings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from procman.cli.jobs import render_detail, render_failed, render_overview
from procman.queues.monitoring import (
    FailedJob,
    FailedPage,
    JobDetail,
    Overview,
    QueueStats,
    WorkerStats,
    _last_line,
)

NOW = datetime.now(UTC)


def queue(name: str, weight: int | None, configured: bool = True, queued: int = 0) -> QueueStats:
    return QueueStats(name, weight, configured, queued, 0, 0, 2, 10)


def test_overview_marks_queues_the_yaml_does_not_list() -> None:
    overview = Overview(
        redis="redis://:***@db:6379/0 (from REDIS_URL)",
        queues=(queue("critical", 5), queue("default", 3, queued=12), queue("old", None, False)),
        workers=(),
    )
    assert render_overview(overview) == "\n".join(
        [
            "redis: redis://:***@db:6379/0 (from REDIS_URL)",
            "",
            "QUEUE     WEIGHT  QUEUED  SCHEDULED  STARTED  FAILED  FINISHED",
            "critical  5       0       0          0        2       10",
            "default   3       12      0          0        2       10",
            "old*      -       0       0          0        2       10",
            "* not in the queue YAML: no 'procman worker' of this app serves it",
            "",
            "no workers",
        ]
    )


def test_overview_shows_each_workers_current_job_and_counts() -> None:
    busy = WorkerStats(
        "w1", "web-1", 4021, "busy", ("critical", "default"), "abc", "app.jobs.send(1)", 75.0,
        120, 3, NOW, NOW,
    )  # fmt: skip
    idle = WorkerStats("w2", "web-1", 4022, "idle", ("low",), None, None, None, 7, 0, NOW, NOW)
    text = render_overview(
        Overview("redis://localhost:6379/0", (queue("default", None),), (busy, idle))
    )
    assert text.splitlines()[-3:] == [
        "HOST   PID   STATE  QUEUES            DONE  FAILED  JOB",
        "web-1  4021  busy   critical,default  120   3       abc app.jobs.send(1) (1m15s)",
        "web-1  4022  idle   low               7     0       -",
    ]


def test_failed_page_says_where_the_next_page_starts() -> None:
    job = FailedJob(
        "j1", "default", "app.jobs.send(1)", NOW - timedelta(seconds=90), "KeyError: 'x'"
    )
    page = FailedPage(("default",), total=41, offset=20, limit=1, jobs=(job,))
    assert render_failed(page, None, now=NOW).splitlines() == [
        "ID  QUEUE    FAILED     JOB               ERROR",
        "j1  default  1m30s ago  app.jobs.send(1)  KeyError: 'x'",
        "21-21 of 41 failed jobs; next: --offset 21",
    ]


def test_failed_page_when_there_are_none() -> None:
    empty = FailedPage(("low",), total=0, offset=0, limit=20, jobs=())
    assert render_failed(empty, "low") == "no failed jobs in queue low"
    past = FailedPage(("low",), total=3, offset=20, limit=20, jobs=())
    assert render_failed(past, None) == "no failed jobs past --offset 20 (3 in all)"


def test_detail_shows_the_traceback_indented_after_the_fields() -> None:
    detail = JobDetail(
        id="j1", queue="default", status="failed", description="app.jobs.send(1)",
        function="app.jobs.send", args=("1",), kwargs={"to": "'a@b.c'"}, decode_error=None,
        created_at=None, enqueued_at=None, scheduled_for=None, started_at=None, ended_at=None,
        worker="w1", timeout=180.0, retries_left=None, result=None,
        traceback="Traceback (most recent call last):\n  File \"x\"\nKeyError: 'x'\n",
    )  # fmt: skip
    assert render_detail(detail).splitlines() == [
        "id:            j1",
        "queue:         default",
        "status:        failed",
        "function:      app.jobs.send",
        "args:          1",
        "kwargs:        to='a@b.c'",
        "ended:         -",
        "worker:        w1",
        "timeout:       180s",
        "traceback:",
        "  Traceback (most recent call last):",
        '    File "x"',
        "  KeyError: 'x'",
    ]


def test_the_last_line_of_an_exception_skips_trailing_blank_lines() -> None:
    assert _last_line("Traceback ...\n  File\nValueError: boom\n\n") == "ValueError: boom"
    assert _last_line("\n \n") is None
