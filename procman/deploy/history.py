"""An environment's deploy history: one JSON line per deploy, promote or rollback on every host.

Records are frozen; parsing a history file names the line of anything corrupt; the queries that
promotion, rollback and ``procman releases`` need are pure functions of the records.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from procman.errors import ProcmanError

ACTIONS = ("deploy", "promote", "rollback")
OK = "ok"
FAILED = "failed"
ROLLED_BACK = "failed, rolled back"
RESULTS = (OK, FAILED, ROLLED_BACK)
INTERRUPTED = "interrupted"
"""The flag of a command stopped by Ctrl-C."""
_TEXT_FIELDS = ("who", "when", "action", "release_id", "sha256", "git_sha", "result")


class HistoryError(ProcmanError):
    """A history line cannot be read."""


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    who: str
    """``user@machine`` that ran the command."""
    when: str
    """UTC, ``2026-11-22T13:19:55Z``."""
    action: str
    release_id: str
    sha256: str
    git_sha: str
    result: str
    duration: float
    """Seconds the whole command took."""
    flags: tuple[str, ...] = ()
    """Choices worth remembering: ``allow-dirty``, ``skip-tests``; ``interrupted`` (Ctrl-C)."""

    @property
    def healthy(self) -> bool:
        return self.result == OK

    def to_json_line(self) -> str:
        data: dict[str, Any] = {name: getattr(self, name) for name in _TEXT_FIELDS}
        data["duration"] = round(self.duration, 3)
        data["flags"] = list(self.flags)
        return json.dumps(data, sort_keys=True, ensure_ascii=True)

    @classmethod
    def from_json_line(cls, line: str) -> HistoryRecord:
        """The record on ``line``; ValueError saying what is wrong with it."""
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        missing = [name for name in (*_TEXT_FIELDS, "duration") if name not in data]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        for name in _TEXT_FIELDS:
            if not isinstance(data[name], str):
                raise ValueError(f"{name} is not a string")
        duration = data["duration"]
        if isinstance(duration, bool) or not isinstance(duration, int | float):
            raise ValueError("duration is not a number")
        if not math.isfinite(duration) or duration < 0:
            raise ValueError("duration is not a finite number of seconds")
        flags = data.get("flags", [])
        if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
            raise ValueError("flags is not a list of strings")
        if data["action"] not in ACTIONS:
            raise ValueError(f"unknown action {data['action']!r}")
        if data["result"] not in RESULTS:
            raise ValueError(f"unknown result {data['result']!r}")
        return cls(
            **{name: data[name] for name in _TEXT_FIELDS},
            duration=float(duration),
            flags=tuple(flags),
        )


def parse_history(text: str, source: str = "history") -> tuple[HistoryRecord, ...]:
    """Every record in a history file's text, oldest first; blank lines are skipped. A corrupt
    line is a HistoryError naming ``source:line``."""
    records: list[HistoryRecord] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append(HistoryRecord.from_json_line(line))
        except (ValueError, RecursionError) as problem:
            raise HistoryError(
                f"{source}:{number}: not a history record ({_reason(problem)})",
                f"fix or delete line {number} of {source}",
            ) from None
    return tuple(records)


def _reason(problem: Exception) -> str:
    if isinstance(problem, json.JSONDecodeError):
        return f"bad JSON at column {problem.colno}: {problem.msg}"
    if isinstance(problem, RecursionError):
        return "nested too deeply"
    return str(problem)


def current_healthy(records: Sequence[HistoryRecord]) -> HistoryRecord | None:
    """The last record that left a release running healthily (what ``current`` should be)."""
    for record in reversed(records):
        if record.healthy:
            return record
    return None


def previous_healthy(records: Sequence[HistoryRecord]) -> HistoryRecord | None:
    """The last healthy release before the current one: the default target of a rollback."""
    current = current_healthy(records)
    if current is None:
        return None
    for record in reversed(records):
        if record.healthy and record.release_id != current.release_id:
            return record
    return None


def healthy_record(records: Sequence[HistoryRecord], release_id: str) -> HistoryRecord | None:
    """The last healthy record of ``release_id`` (was it ever healthy here? for ``--release``)."""
    for record in reversed(records):
        if record.healthy and record.release_id == release_id:
            return record
    return None


@dataclass(frozen=True, slots=True)
class ReleaseRow:
    """One line of ``procman releases ENV``: a release as its latest record describes it."""

    release_id: str
    git_sha: str
    when: str
    who: str
    result: str
    current: bool
    kept: bool = True
    """Still on the host; False once pruned (it can no longer be rolled back to)."""

    def to_json(self) -> dict[str, object]:
        return {
            "release_id": self.release_id,
            "git_sha": self.git_sha,
            "when": self.when,
            "who": self.who,
            "result": self.result,
            "current": self.current,
            "kept": self.kept,
        }


def release_rows(
    records: Sequence[HistoryRecord], current: str | None, kept: Collection[str] | None = None
) -> list[ReleaseRow]:
    """One row per release, newest release first; ``current`` (the id the ``current`` symlink
    points at) is marked, and, given the ids still on the host, so are the pruned ones."""
    latest: dict[str, HistoryRecord] = {}
    for record in records:
        latest[record.release_id] = record
    return [
        ReleaseRow(
            release_id=release_id,
            git_sha=record.git_sha,
            when=record.when,
            who=record.who,
            result=record.result,
            current=release_id == current,
            kept=kept is None or release_id in kept,
        )
        for release_id, record in sorted(latest.items(), reverse=True)
    ]
