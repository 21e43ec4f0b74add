"""Finding what the formation left outside its process groups (daemons, ``setsid``,
``start_new_session``): every process procman starts carries ``PROCMAN_RUN_ID``, a value new for
each run, which their descendants inherit; and on Linux orphans are re-parented to procman (a child
subreaper). Only used while stopping, so none of this costs anything at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass

RUN_ID_VARIABLE = "PROCMAN_RUN_ID"
PROC = "/proc"


def new_run_id() -> str:
    return os.urandom(8).hex()


@dataclass(frozen=True, slots=True)
class Stray:
    pid: int
    pgid: int

    @property
    def leads_group(self) -> bool:
        return self.pid == self.pgid


def find_strays(run_id: str, parent: int) -> list[Stray]:
    """Live processes whose parent is ``parent`` or whose environment carries ``run_id``."""
    if not os.path.isdir(PROC):
        return _find_with_psutil(run_id, parent)
    marker = f"\0{RUN_ID_VARIABLE}={run_id}\0".encode()
    found = []
    for name in os.listdir(PROC):
        if not name.isdigit():
            continue
        stray = _examine(int(name), marker, parent)
        if stray is not None:
            found.append(stray)
    return found


def _examine(pid: int, marker: bytes, parent: int) -> Stray | None:
    """One /proc entry: two small reads, none for a process of another user (no permission)."""
    try:
        with open(f"{PROC}/{pid}/stat", "rb") as file:
            stat = file.read()
        # after the command name in parentheses (which may hold anything): state ppid pgrp ...
        state, ppid, pgid = stat[stat.rindex(b")") + 2 :].split(b" ", 3)[:3]
        if state in (b"Z", b"X"):
            return None
        if int(ppid) != parent:
            with open(f"{PROC}/{pid}/environ", "rb") as file:
                if marker not in b"\0" + file.read():
                    return None
        return Stray(pid, int(pgid))
    except (OSError, ValueError):
        return None  # gone meanwhile, or not ours to read


def _find_with_psutil(run_id: str, parent: int) -> list[Stray]:
    """Where there is no /proc (macOS): slower, but only while stopping."""
    import psutil

    found = []
    for process in psutil.process_iter(["ppid", "status"]):
        try:
            if process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            ours = process.info["ppid"] == parent
            if not ours and process.environ().get(RUN_ID_VARIABLE) != run_id:
                continue
            found.append(Stray(process.pid, os.getpgid(process.pid)))
        except (psutil.Error, OSError):
            continue
    return found
