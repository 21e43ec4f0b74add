"""The control protocol: one JSON object per line each way.

A request is ``{"verb": ..., ...}``; every reply carries ``"ok"``. Errors are
``{"ok": false, "error": ..., "hint": ...}``. ``logs`` replies ``{"ok": true}`` and then one
``{"entry": {...}}`` line per chunk of output for as long as the client stays connected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from procman.errors import ProcmanError

if TYPE_CHECKING:
    from procman.supervisor.logbook import Entry
    from procman.supervisor.snapshot import ProcessSnapshot, Snapshot
    from procman.supervisor.supervisor import LogTail, Restarted, Scaled, Stopped

MAX_REQUEST_BYTES = 64 * 1024
VERBS = ("ps", "scale", "restart", "stop", "logs")


class ProtocolError(ProcmanError):
    pass


@dataclass(frozen=True, slots=True)
class Request:
    verb: str
    targets: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()
    lines: int = 0
    follow: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def encode(message: dict[str, Any]) -> bytes:
    import json  # on the first request, not at every start

    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    import json  # see encode

    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("not a JSON line") from None
    if not isinstance(message, dict):
        raise ProtocolError("expected a JSON object")
    return message


def parse_request(line: bytes) -> Request:
    message = decode(line)
    verb = message.get("verb")
    if verb not in VERBS:
        raise ProtocolError(f"unknown verb {verb!r}", f"one of: {', '.join(VERBS)}")
    return Request(
        verb=verb,
        targets=_strings(message, "targets"),
        changes=_strings(message, "changes"),
        lines=_count(message, "lines"),
        follow=_flag(message, "follow"),
    )


# -- replies: the supervisor's typed results as the JSON objects docs/control.md shows ----------


def ps_reply(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "ok": True,
        "processes": [process_json(process) for process in snapshot.processes],
        "formation": dict(snapshot.formation),
    }


def process_json(process: ProcessSnapshot) -> dict[str, Any]:
    """One ``ps`` row, also what ``procman ps --json`` prints."""
    return {
        "name": process.name,
        "type": process.type,
        "pid": process.pid,
        "state": process.state.value,
        "uptime": None if process.uptime is None else round(process.uptime, 3),
        "restarts": process.restarts,
        "last_exit": process.last_exit,
        "port": process.port,
        "command": process.command,
    }


def snapshot_from_reply(reply: dict[str, Any]) -> Snapshot:
    """The typed Snapshot a ``ps`` reply carries (the inverse of ``ps_reply``), for readers on
    the client side such as the dashboard."""
    from procman.supervisor.process import State
    from procman.supervisor.snapshot import ProcessSnapshot, Snapshot

    processes = tuple(
        ProcessSnapshot(
            name=str(row["name"]),
            type=str(row["type"]),
            pid=row.get("pid"),
            state=State(row["state"]),
            uptime=row.get("uptime"),
            restarts=int(row.get("restarts", 0)),
            last_exit=row.get("last_exit"),
            port=int(row.get("port", 0)),
            command=str(row.get("command", "")),
        )
        for row in reply.get("processes", [])
    )
    formation = {str(name): int(count) for name, count in reply.get("formation", {}).items()}
    return Snapshot(processes=processes, formation=formation)


def scale_reply(scaled: Scaled) -> dict[str, Any]:
    return {"ok": True, "formation": dict(scaled.formation)}


def restart_reply(restarted: Restarted) -> dict[str, Any]:
    return {"ok": True, "restarted": list(restarted.names)}


def stop_reply(stopped: Stopped) -> dict[str, Any]:
    return {"ok": True, "stopped": "all" if stopped.everything else list(stopped.names)}


def logs_reply(tail: LogTail) -> dict[str, Any]:
    """The first reply to ``logs``; the tail's entries follow it as entry messages."""
    return {"ok": True, "names": list(tail.names), "types": list(tail.types)}


def entry_message(entry: Entry) -> dict[str, Any]:
    return {
        "entry": {
            "name": entry.name,
            "type": entry.type,
            "time": entry.time,
            "text": entry.text.decode("utf-8", "replace"),
        }
    }


def error_reply(error: ProcmanError) -> dict[str, Any]:
    return {
        "ok": False,
        "error": error.message,
        "hint": error.hint,
        "exit_status": int(error.exit_status),
    }


def _strings(message: dict[str, Any], key: str) -> tuple[str, ...]:
    value = message.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ProtocolError(f"{key!r} must be a list of strings")
    return tuple(value)


def _flag(message: dict[str, Any], key: str) -> bool:
    value = message.get(key, False)
    if not isinstance(value, bool):
        raise ProtocolError(f"{key!r} must be true or false")
    return value


def _count(message: dict[str, Any], key: str) -> int:
    value = message.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolError(f"{key!r} must be a whole number 0 or more")
    return value
