"""Shutdown: 10 running children, SIGINT to the manager, time until the manager exits.

``term``: children that honour SIGTERM (a shell running ``sleep``).
``ignore``: children that ignore SIGTERM, each with a background grandchild that ignores it too,
so only SIGKILL after the stop timeout ends them.

A manager still running ``EXIT_GRACE`` s after its stop timeout is killed and reported as "did
not exit". After every run, any process still carrying the run's tag is a leftover: it is reported
and killed.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import common

CHILDREN = 10
STOP_TIMEOUT = 2.0
SETTLE = 0.2
"""Seconds between the last ``up-N`` line and SIGINT, so every child is in its loop or sleep."""
SCENARIOS = {
    "term": "echo up-{n}; sleep 1000; echo never",
    "ignore": (
        "trap '' TERM; echo up-{n}; (while :; do sleep 0.1; done) & while :; do sleep 0.1; done"
    ),
}


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    scenario: str
    stop_timeout: float
    seconds: float | None
    """None: did not exit within stop_timeout + EXIT_GRACE (or never got its children up)."""
    leftovers: list[str]


def run_one(manager: common.Manager, scenario: str, work: Path) -> Sample:
    command = SCENARIOS[scenario]
    procfile = common.write_procfile(
        work, {f"c{n}": command.format(n=n) for n in range(1, CHILDREN + 1)}
    )
    out = work / "out.log"
    tag = common.new_tag()
    process = common.launch(manager, procfile, STOP_TIMEOUT, out, tag)
    wanted = {f"up-{n}".encode() for n in range(1, CHILDREN + 1)}
    ready, _ = common.wait_for_lines(common.Follower(out), wanted, 30.0)
    timeout = manager.stop_timeout(STOP_TIMEOUT)
    seconds = None
    if ready is not None:
        time.sleep(SETTLE)
        seconds = common.stop(process, timeout + common.EXIT_GRACE)
    else:
        common.stop(process, 0.0)
    return Sample(manager.name, scenario, timeout, seconds, common.leftovers(tag))


def run(managers: list[common.Manager], repeat: int, scratch: Path) -> list[Sample]:
    samples = []
    for round_number in range(repeat):
        for scenario in SCENARIOS:
            for manager in managers:
                work = scratch / f"shutdown-{round_number}-{scenario}-{manager.name}"
                sample = run_one(manager, scenario, work)
                samples.append(sample)
                shutil.rmtree(work, ignore_errors=True)
                shown = "did not exit" if sample.seconds is None else f"{sample.seconds:.3f} s"
                print(
                    f"  shutdown {scenario} {manager.name}: {shown}, "
                    f"leftovers: {common.summarize(sample.leftovers)}",
                    file=sys.stderr,
                    flush=True,
                )
    return samples


if __name__ == "__main__":
    found, _ = common.find_managers(sys.argv[1:] or ["procman"])
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"procman-bench-{os.getpid()}"
    for result in run(found, 1, scratch):
        print(result)
    shutil.rmtree(scratch, ignore_errors=True)
