"""Idle: 10 children that only sleep; the manager's own CPU and memory over a quiet window.

The managers run side by side (they are idle, so they barely compete). After every child is up
and a half-second settle, the window opens. "Own processes" are the manager and its descendants
minus the app processes it reported starting (and anything below them): procman's ``sh``
watchdog and honcho's per-process Python helpers count, the sleeping children do not. CPU is
the on-CPU time of all their threads (``/proc/PID/task/*/schedstat``, nanoseconds) over the
window; memory is the sum of RSS (and of PSS, which splits pages shared after fork) at its end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import common
import psutil

CHILDREN = 10
STOP_TIMEOUT = 2.0
SETTLE = 0.5


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    cpu_percent: float | None
    """Percent of one core over the window; None when the children never came up."""
    rss_mb: float
    pss_mb: float
    processes: list[str]
    leftovers: list[str]


def cpu_seconds(process: psutil.Process) -> float:
    total = 0
    try:
        for task in os.scandir(f"/proc/{process.pid}/task"):
            with open(f"{task.path}/schedstat") as file:
                total += int(file.read().split()[0])
    except OSError:
        times = process.cpu_times()
        return times.user + times.system
    return total / 1e9


@dataclass(slots=True)
class Running:
    manager: common.Manager
    process: subprocess.Popen[bytes]
    tag: str
    own: list[psutil.Process] | None = None
    before: float = 0.0


def measure(running: Running, elapsed: float) -> Sample:
    own = running.own or []
    cpu = None
    if running.own is not None:
        cpu = 100 * (sum(map(cpu_seconds, own)) - running.before) / elapsed
    return Sample(
        running.manager.name,
        cpu,
        sum(p.memory_info().rss for p in own) / 2**20,
        sum(p.memory_full_info().pss for p in own) / 2**20,
        [p.name() for p in own],
        [],
    )


def run_round(managers: list[common.Manager], window: float, work: Path) -> list[Sample]:
    procfile = common.write_procfile(
        work, {f"i{n}": f"echo up-{n} && exec sleep 1000" for n in range(1, CHILDREN + 1)}
    )
    wanted = {f"up-{n}".encode() for n in range(1, CHILDREN + 1)}
    runs = []
    for manager in managers:
        tag = common.new_tag()
        out = work / f"{manager.name}.log"
        runs.append(Running(manager, common.launch(manager, procfile, STOP_TIMEOUT, out, tag), tag))
    for running in runs:
        ready, app_pids = common.wait_for_lines(
            common.Follower(work / f"{running.manager.name}.log"), wanted, 30.0
        )
        if ready is not None:
            running.own = common.own_processes(running.process.pid, app_pids)
    time.sleep(SETTLE)
    for running in runs:
        running.before = sum(map(cpu_seconds, running.own or []))
    opened = time.monotonic()
    time.sleep(window)
    elapsed = time.monotonic() - opened
    samples = [measure(running, elapsed) for running in runs]
    for running in runs:
        common.stop(running.process, running.manager.stop_timeout(STOP_TIMEOUT) + common.EXIT_GRACE)
    for running, sample in zip(runs, samples, strict=True):
        sample.leftovers.extend(common.leftovers(running.tag, settle=0.1))
    return samples


def run(managers: list[common.Manager], repeat: int, window: float, scratch: Path) -> list[Sample]:
    samples = []
    for round_number in range(repeat):
        work = scratch / f"idle-{round_number}"
        for sample in run_round(managers, window, work):
            samples.append(sample)
            print(
                f"  idle {sample.name}: {sample.cpu_percent or 0:.3f}% CPU, "
                f"{sample.rss_mb:.1f} MB RSS in {common.summarize(sample.processes)}",
                file=sys.stderr,
                flush=True,
            )
        shutil.rmtree(work, ignore_errors=True)
    return samples


if __name__ == "__main__":
    found, _ = common.find_managers(sys.argv[1:] or ["procman"])
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"procman-bench-{os.getpid()}"
    for result in run(found, 1, 10.0, scratch):
        print(result)
    shutil.rmtree(scratch, ignore_errors=True)
