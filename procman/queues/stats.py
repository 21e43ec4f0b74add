"""Jobs processed and failed per minute (the last hour) and per day (the last 30 days).

The worker counts each job in memory (:class:`JobCounter`) and adds the counts to the pipeline
that records a job's outcome at most once a second, and when it goes idle: counting costs no
round trip and, at hundreds of jobs a second, a few commands a second rather than five a job. A
worker killed outright loses at most that last second of counts. :func:`count_job` counts one
job at once (recovering a dead worker's jobs). The counts live in small hashes, one per hour (a
field per minute, kept 2 hours) and one per month (a field per day, kept 62 days), so reading an
hour or 30 days is two ``HGETALL`` each, and nothing grows without bound. Times are UTC, on the
worker's clock.

Failed counts every failed run, a run that will be retried included (as Sidekiq counts).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

PREFIX = "procman:stats:"
HOUR_KEEP = 2 * 3600
MONTH_KEEP = 62 * 24 * 3600
TOTAL_KEY = PREFIX + "total"
OUTCOMES = ("processed", "failed")


def minute_key(moment: datetime) -> str:
    """The hash of ``moment``'s hour: a field per minute and outcome (``p:07``, ``f:07``)."""
    return f"{PREFIX}minute:{moment.astimezone(UTC):%Y%m%d%H}"


def day_key(moment: datetime) -> str:
    """The hash of ``moment``'s month: a field per day and outcome (``p:03``, ``f:03``)."""
    return f"{PREFIX}day:{moment.astimezone(UTC):%Y%m}"


def count_job(pipeline: Any, failed: bool, moment: datetime | None = None) -> None:
    """Add the commands counting one job to ``pipeline`` (a redis-py pipeline, transaction or
    not; executed by the caller)."""
    at = (moment or datetime.now(UTC)).astimezone(UTC)
    letter = "f" if failed else "p"
    minutes, days = minute_key(at), day_key(at)
    pipeline.hincrby(minutes, f"{letter}:{at:%M}", 1)
    pipeline.expire(minutes, HOUR_KEEP)
    pipeline.hincrby(days, f"{letter}:{at:%d}", 1)
    pipeline.expire(days, MONTH_KEEP)
    pipeline.hincrby(TOTAL_KEY, OUTCOMES[1] if failed else OUTCOMES[0], 1)


class JobCounter:
    """Jobs counted by a worker and not yet written: by minute and day field, and in total."""

    def __init__(self) -> None:
        self._fields: Counter[tuple[str, str]] = Counter()
        self._totals: Counter[str] = Counter()

    def __bool__(self) -> bool:
        return bool(self._totals)

    def count(self, failed: bool, moment: datetime | None = None) -> None:
        at = (moment or datetime.now(UTC)).astimezone(UTC)
        letter = "f" if failed else "p"
        self._fields[minute_key(at), f"{letter}:{at:%M}"] += 1
        self._fields[day_key(at), f"{letter}:{at:%d}"] += 1
        self._totals[OUTCOMES[1] if failed else OUTCOMES[0]] += 1

    def add_to(self, pipeline: Any) -> None:
        """Add the counts to ``pipeline`` (executed by the caller) and start again from zero."""
        for (key, field), number in self._fields.items():
            pipeline.hincrby(key, field, number)
        for key in dict.fromkeys(key for key, _ in self._fields):
            pipeline.expire(key, HOUR_KEEP if key.startswith(f"{PREFIX}minute:") else MONTH_KEEP)
        for outcome, number in self._totals.items():
            pipeline.hincrby(TOTAL_KEY, outcome, number)
        self._fields.clear()
        self._totals.clear()


@dataclass(frozen=True, slots=True)
class Series:
    """Counts per period, oldest first: ``labels[i]`` had ``processed[i]`` jobs done,
    ``failed[i]`` of them failed runs."""

    labels: tuple[str, ...]
    processed: tuple[int, ...]
    failed: tuple[int, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "processed": list(self.processed),
            "failed": list(self.failed),
        }


@dataclass(frozen=True, slots=True)
class JobCounts:
    minutes: Series
    """The last 60 minutes, the current one last."""
    days: Series
    """The last 30 days, today last."""
    processed_total: int
    failed_total: int

    def as_json(self) -> dict[str, Any]:
        return {
            "minutes": self.minutes.as_json(),
            "days": self.days.as_json(),
            "processed_total": self.processed_total,
            "failed_total": self.failed_total,
        }


def read_counts(connection: redis.Redis, now: datetime | None = None) -> JobCounts:
    """The last hour by minute and the last 30 days by day: one round trip, five commands."""
    at = (now or datetime.now(UTC)).astimezone(UTC)
    minutes = [at - timedelta(minutes=back) for back in range(59, -1, -1)]
    days = [at - timedelta(days=back) for back in range(29, -1, -1)]
    hour_keys = sorted({minute_key(moment) for moment in minutes})
    month_keys = sorted({day_key(moment) for moment in days})
    with connection.pipeline(transaction=False) as pipeline:
        for key in [*hour_keys, *month_keys]:
            pipeline.hgetall(key)
        pipeline.hgetall(TOTAL_KEY)
        *hashes, totals = pipeline.execute()
    tables = dict(zip([*hour_keys, *month_keys], hashes, strict=True))

    def series(moments: list[datetime], key: Any, field: str, label: str) -> Series:
        counts = [_decoded(tables[key(moment)]) for moment in moments]
        suffixes = [format(moment, field) for moment in moments]
        return Series(
            labels=tuple(format(moment, label) for moment in moments),
            processed=tuple(c.get(f"p:{s}", 0) for c, s in zip(counts, suffixes, strict=True)),
            failed=tuple(c.get(f"f:{s}", 0) for c, s in zip(counts, suffixes, strict=True)),
        )

    total = _decoded(totals)
    return JobCounts(
        minutes=series(minutes, minute_key, "%M", "%H:%M"),
        days=series(days, day_key, "%d", "%Y-%m-%d"),
        processed_total=total.get("processed", 0),
        failed_total=total.get("failed", 0),
    )


def _decoded(table: dict[bytes, bytes]) -> dict[str, int]:
    return {key.decode(): int(value) for key, value in table.items()}
