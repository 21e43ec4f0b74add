"""An environment's deploy history: one JSON line per deploy, promote, rollback or restart on every
host.

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

RELEASE_ACTIONS = ("deploy", "promote", "rollback", "restart")
DAY_TWO_ACTIONS = ("config", "scale")
"""Changes to the environment, not to its release: ``procman config set``, ``procman scale``.
They make no release healthy and are left out of the one-row-per-release listing."""
ACTIONS = (*RELEASE_ACTIONS, *DAY_TWO_ACTIONS)
OK = "ok"
FAILED = "failed"
ROLLED_BACK = "failed, rolled back"
RESULTS = (OK, FAILED, ROLLED_BACK)
INTERRUPTED = "interrupted"
"""The flag of a command stopped by Ctrl-C."""
ALLOW_DIRTY_CONFIG = "allow-dirty-config"
"""The flag of a promotion that used a procman.yml with uncommitted changes."""
FORCE_STALE_SOURCE = "force-stale-source"
"""The flag of a promotion whose source release was not running healthily when promoted."""
CONFIG_DIRTY = "config-dirty"
"""Shown among the flags of a record whose procman.yml differed from the committed one."""
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
    """Choices worth remembering: ``allow-dirty``, ``skip-tests``, ``allow-dirty-config``,
    ``force-stale-source``; ``interrupted`` (Ctrl-C)."""
    config_sha256: str | None = None
    """The sha256 of the procman.yml the command used; None in records older than the field."""
    config_dirty: bool | None = None
    """Whether that procman.yml differed from the committed one (git's HEAD); None when not
    recorded."""

    @property
    def healthy(self) -> bool:
        """This record left its release running healthily (a config or scale record says
        nothing about that)."""
        return self.result == OK and self.action not in DAY_TWO_ACTIONS

    def to_json_line(self) -> str:
        data: dict[str, Any] = {name: getattr(self, name) for name in _TEXT_FIELDS}
        data["duration"] = round(self.duration, 3)
        data["flags"] = list(self.flags)
        if self.config_sha256 is not None:
            data["config_sha256"] = self.config_sha256
        if self.config_dirty is not None:
            data["config_dirty"] = self.config_dirty
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
        config_sha256 = data.get("config_sha256")
        if config_sha256 is not None and not isinstance(config_sha256, str):
            raise ValueError("config_sha256 is not a string")
        config_dirty = data.get("config_dirty")
        if config_dirty is not None and not isinstance(config_dirty, bool):
            raise ValueError("config_dirty is not true or false")
        if data["action"] not in ACTIONS:
            raise ValueError(f"unknown action {data['action']!r}")
        if data["result"] not in RESULTS:
            raise ValueError(f"unknown result {data['result']!r}")
        return cls(
            **{name: data[name] for name in _TEXT_FIELDS},
            duration=float(duration),
            flags=tuple(flags),
            config_sha256=config_sha256,
            config_dirty=config_dirty,
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
    """One line of ``procman releases ENV``: a release as its latest record describes it (with
    ``--all``, one record)."""

    release_id: str
    git_sha: str
    when: str
    who: str
    result: str
    current: bool
    kept: bool = True
    """Still on the host; False once pruned (it can no longer be rolled back to)."""
    action: str = "deploy"
    sha256: str = ""
    flags: tuple[str, ...] = ()
    config_sha256: str | None = None
    config_dirty: bool | None = None

    @classmethod
    def of(cls, record: HistoryRecord, current: bool, kept: bool) -> ReleaseRow:
        return cls(
            release_id=record.release_id,
            git_sha=record.git_sha,
            when=record.when,
            who=record.who,
            result=record.result,
            current=current,
            kept=kept,
            action=record.action,
            sha256=record.sha256,
            flags=record.flags,
            config_sha256=record.config_sha256,
            config_dirty=record.config_dirty,
        )

    @property
    def shown_flags(self) -> tuple[str, ...]:
        """The flags, plus ``config-dirty`` when the procman.yml used was not the committed one
        and no flag says so already."""
        if self.config_dirty and not {ALLOW_DIRTY_CONFIG, "allow-dirty"} & set(self.flags):
            return (*self.flags, CONFIG_DIRTY)
        return self.flags

    def to_json(self) -> dict[str, object]:
        return {
            "release_id": self.release_id,
            "sha256": self.sha256,
            "git_sha": self.git_sha,
            "action": self.action,
            "when": self.when,
            "who": self.who,
            "result": self.result,
            "flags": list(self.flags),
            "config_sha256": self.config_sha256,
            "config_dirty": self.config_dirty,
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
        if record.action not in DAY_TWO_ACTIONS:
            latest[record.release_id] = record
    return [
        ReleaseRow.of(record, release_id == current, kept is None or release_id in kept)
        for release_id, record in sorted(latest.items(), reverse=True)
    ]


def record_rows(
    records: Sequence[HistoryRecord], current: str | None, kept: Collection[str] | None = None
) -> list[ReleaseRow]:
    """One row per record, newest record first (``procman releases ENV --all``); the records of
    the release ``current`` points at are marked, and so are those of pruned releases."""
    return [
        ReleaseRow.of(
            record,
            record.release_id == current,
            kept is None or record.release_id in kept,
        )
        for record in reversed(records)
    ]
