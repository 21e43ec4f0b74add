"""Start-up: 50 process types, each ``echo ready-N`` and then sleep. Measured: from launching the
manager until all 50 ``ready-N`` lines are in its stdout (a file, polled every 2 ms)."""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import common

PROCESSES = 50
READY_BOUND = 60.0
STOP_TIMEOUT = 2.0
FLOOR_SCRIPT = Path(__file__).with_name("floor.py")
FLOORS = (
    common.Manager("floor: python", (sys.executable, str(FLOOR_SCRIPT), "start"), "-t", "-"),
    common.Manager(
        "floor: python + click",
        (sys.executable, str(FLOOR_SCRIPT), "start", "--click"),
        "-t",
        "-",
    ),
)
"""Measured beside the managers: the least any Python manager (or one built on click) needs."""


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    seconds: float | None
    """None: not every line arrived within READY_BOUND seconds."""
    leftovers: list[str]


def run_one(manager: common.Manager, work: Path) -> Sample:
    procfile = common.write_procfile(
        work, {f"r{i}": f"echo ready-{i} && exec sleep 1000" for i in range(1, PROCESSES + 1)}
    )
    out = work / "out.log"
    tag = common.new_tag()
    follower = common.Follower(out)
    wanted = {f"ready-{i}".encode() for i in range(1, PROCESSES + 1)}
    started = time.monotonic()
    process = common.launch(manager, procfile, STOP_TIMEOUT, out, tag)
    ready, _ = common.wait_for_lines(follower, wanted, READY_BOUND)
    bound = manager.stop_timeout(STOP_TIMEOUT) + common.EXIT_GRACE
    common.stop(process, bound)
    left = common.leftovers(tag)
    return Sample(manager.name, None if ready is None else ready - started, left)


def run(managers: list[common.Manager], repeat: int, scratch: Path) -> list[Sample]:
    """Each round runs every manager and then the floors, in turn."""
    samples = []
    for round_number in range(repeat):
        for manager in [*managers, *FLOORS]:
            work = scratch / f"startup-{round_number}-{manager.name}"
            sample = run_one(manager, work)
            samples.append(sample)
            shutil.rmtree(work, ignore_errors=True)
            shown = "timed out" if sample.seconds is None else f"{sample.seconds:.3f} s"
            print(f"  startup {manager.name}: {shown}", file=sys.stderr, flush=True)
    return samples


if __name__ == "__main__":
    found, _ = common.find_managers(sys.argv[1:] or ["procman"])
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"procman-bench-{os.getpid()}"
    for result in run(found, 1, scratch):
        print(result)
    shutil.rmtree(scratch, ignore_errors=True)
