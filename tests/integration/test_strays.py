"""How procman finds what left its process groups: real processes, found through /proc (and
through psutil, the fallback where there is no /proc)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from procman.supervisor import strays
from procman.supervisor.strays import RUN_ID_VARIABLE, Stray, find_strays, new_run_id

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(params=["proc", "psutil"])
def scan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "psutil":
        monkeypatch.setattr(strays, "PROC", "/no/such/proc")
    return str(request.param)


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:  # each leads its own group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_finds_processes_carrying_the_run_id_with_their_group(
    scan: str, tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    run_id = new_run_id()
    odd_name = tmp_path / "odd) name ("  # /proc/PID/stat shows it in parentheses
    shutil.copy(shutil.which("sleep") or "/bin/sleep", odd_name)
    env = {**os.environ, RUN_ID_VARIABLE: run_id}
    other_run = {**os.environ, RUN_ID_VARIABLE: new_run_id()}
    leader = subprocess.Popen(
        ["sh", "-c", '"$0" 30 & wait', odd_name], env=env, start_new_session=True
    )
    started.append(leader)
    elsewhere = subprocess.Popen(["sleep", "30"], env=other_run, start_new_session=True)
    started.append(elsewhere)
    deadline = time.monotonic() + 5
    while True:  # until the background child has exec'd the oddly named program
        found = [s for s in find_strays(run_id, parent=-1) if s.pid != os.getpid()]
        members = [s.pid for s in found if s.pid != leader.pid and _comm(s.pid) == odd_name.name]
        if members:
            break
        assert time.monotonic() < deadline, found
        time.sleep(0.02)
    assert sorted(found, key=lambda s: s.pid != leader.pid) == [
        Stray(leader.pid, leader.pid),
        Stray(members[0], leader.pid),
    ]


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as comm:
            return comm.read().rstrip("\n")
    except OSError:
        return ""


def test_finds_children_of_the_parent_whatever_their_environment(
    scan: str, started: list[subprocess.Popen[bytes]]
) -> None:
    child = subprocess.Popen(["sleep", "30"], env={}, start_new_session=True)
    started.append(child)
    assert Stray(child.pid, child.pid) in find_strays(new_run_id(), parent=os.getpid())


def test_zombies_are_not_strays(scan: str, started: list[subprocess.Popen[bytes]]) -> None:
    child = subprocess.Popen(["true"], start_new_session=True)
    started.append(child)
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
    assert all(s.pid != child.pid for s in find_strays(new_run_id(), parent=os.getpid()))
