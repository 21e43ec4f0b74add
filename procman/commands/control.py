"""What the client commands do: ``scale``, ``ps``, ``restart``, ``stop`` and ``logs`` against the
procman running in an app directory (through ``procman.supervisor.control``'s client).

The app directory's run directory is composed once per command and passed along."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from procman.errors import ProcmanError, flag_of
from procman.formation import parse_scale, resolve_counts, scaled
from procman.procfile import load_procfile
from procman.rundir import RunDir
from procman.settings import AppOptions, app_root, check_root, load_app, procfile_path
from procman.supervisor.control.client import ControlClient, Gone, NotRunning


@dataclass(frozen=True, slots=True)
class ScaleResult:
    formation: dict[str, int]
    live: bool
    """False when no procman was running: the formation was only saved for the next start."""


def run_dir_for(options: AppOptions) -> RunDir:
    """The app directory's run directory (``-d`` checked first)."""
    check_root(options)
    return RunDir(app_root(options))


def client_for(options: AppOptions, run_dir: RunDir | None = None) -> ControlClient:
    run_dir = run_dir if run_dir is not None else run_dir_for(options)
    return ControlClient(run_dir.socket_path, run_dir.root)


def scale(options: AppOptions, specs: Sequence[str]) -> ScaleResult:
    changes = parse_scale(specs)  # bad syntax fails before we look for a supervisor
    run_dir = run_dir_for(options)
    try:
        reply = client_for(options, run_dir).request({"verb": "scale", "changes": list(specs)})
    except NotRunning:
        app = load_app(options)
        procfile = load_procfile(procfile_path(options))
        current = resolve_counts(procfile, run_dir.load_formation() or {})
        counts = scaled(procfile, current, changes, app.base_port)
        run_dir.save_formation(counts)
        return ScaleResult(formation=counts, live=False)
    return ScaleResult(formation=reply["formation"], live=True)


def ps(options: AppOptions) -> list[dict[str, Any]]:
    processes: list[dict[str, Any]] = client_for(options).request({"verb": "ps"})["processes"]
    return processes


def restart(options: AppOptions, targets: Sequence[str]) -> list[str]:
    reply = client_for(options).request({"verb": "restart", "targets": list(targets)})
    return list(reply["restarted"])


def stop(options: AppOptions, targets: Sequence[str]) -> list[str] | None:
    """Stop the named instances or types; with none, the whole app (returns None)."""
    reply = client_for(options).request({"verb": "stop", "targets": list(targets)})
    stopped = reply["stopped"]
    return None if stopped == "all" else list(stopped)


WAIT_POLL = 0.1


def wait_stopped(options: AppOptions, names: Sequence[str] | None, timeout: float) -> None:
    """Return once the named instances have no process (``None``: once procman has exited);
    a ProcmanError after ``timeout`` seconds."""
    run_dir = run_dir_for(options)
    client = client_for(options, run_dir)
    deadline = time.monotonic() + timeout
    while True:
        try:
            processes = client.request({"verb": "ps"})["processes"]
        except (NotRunning, Gone):
            # Its processes have stopped; for the whole app, wait until procman itself has
            # exited too (its lock released), so that a new procman start can follow at once.
            if names is None and run_dir.is_running():
                processes = [{"name": "?", "pid": 0}]
            else:
                return
        except ProcmanError:
            if names is not None:
                raise
            processes = [{"name": "?", "pid": 0}]  # stopping: "procman is stopping"
        waiting = [
            p["name"]
            for p in processes
            if p["pid"] is not None and (names is None or p["name"] in names)
        ]
        if names is not None and not waiting:
            return
        if time.monotonic() >= deadline:
            what = "procman" if names is None else ", ".join(waiting)
            raise ProcmanError(
                f"{what} still running {timeout:g}s after the stop request",
                f"they may be finishing work; wait longer with {flag_of('wait')}, "
                "or check procman ps",
            )
        time.sleep(WAIT_POLL)


@dataclass(frozen=True, slots=True)
class LogStream:
    names: list[str]
    """The instances running when the stream started, to pad the prefixes to."""
    types: list[str]
    entries: Iterator[dict[str, Any]]


def logs(options: AppOptions, targets: Sequence[str], lines: int, follow: bool) -> LogStream:
    request = {"verb": "logs", "targets": list(targets), "lines": lines, "follow": follow}
    messages = client_for(options).stream(request)
    header = next(messages)
    return LogStream(
        names=header["names"],
        types=header["types"],
        entries=(message["entry"] for message in messages),
    )
