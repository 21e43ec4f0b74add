"""Live scaling: ``procman scale worker=20`` and back to ``worker=1`` on a running app.

Each worker prints ``$PS up`` at once and then sleeps. procman starts with one worker; after its
line and ``SETTLE`` s, the real CLI runs ``procman scale worker=20``. Measured from launching the
CLI: until the 19 new instances' lines are all in procman's stdout (a file, polled every 2 ms),
and until the CLI itself exits. Then ``procman scale worker=1``: until the 19 exit lines
(``worker.N terminated by ...``) are printed, until psutil no longer finds their pids, and the CLI.

``term`` workers honour SIGTERM (``-t 5``); ``ignore`` workers ignore it (``-t 1``), so only the
SIGKILL after the timeout ends them.

Peers (honcho, foreman) cannot scale a running app: the only way is to stop it and start it
again with a new formation (``-c``/``-m worker=20``). That is measured for them, with ``term``
workers: SIGINT to the running manager until all 20 ``up`` lines of the new one.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import common
import psutil

TO = 20
BOUND = 30.0
SETTLE = 0.2
POLL = 0.002
SCENARIOS = {
    "term": ('echo "$PS up" && exec sleep 1000', 5.0),
    "ignore": ("trap '' TERM; echo \"$PS up\"; exec sleep 1000", 1.0),
}
"""Worker command and procman's stop timeout (``-t``)."""
FORMATION_OPTION = {"procman": "-m", "honcho": "-c", "foreman": "-m"}
STARTED = re.compile(rb"^(worker\.\d+) started \(pid (\d+)")
ENDED = re.compile(rb"^(worker\.\d+) (?:terminated by|exited with|killed by)")


@dataclass(slots=True)
class Sample:
    name: str
    scenario: str
    stop_timeout: float
    up_seconds: float | None = None
    """Launch of ``scale worker=20`` (peers: SIGINT) until every new instance's line."""
    up_cli_seconds: float | None = None
    down_seconds: float | None = None
    """Launch of ``scale worker=1`` until the 19 exit lines."""
    down_gone_seconds: float | None = None
    """... until psutil finds none of the 19 pids."""
    down_cli_seconds: float | None = None
    peer_stop_seconds: float | None = None
    """Peers: SIGINT until the old manager exited (part of up_seconds)."""
    problems: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)


class Watcher:
    """Follows a manager's output: which instances printed ``up``, started (with pids), ended."""

    def __init__(self, out: Path) -> None:
        self.follower = common.Follower(out)
        self.up: set[bytes] = set()
        self.pids: dict[bytes, int] = {}
        self.ended: set[bytes] = set()

    def poll(self) -> None:
        for line in self.follower.lines():
            parts = common.split_prefix(line)
            if parts is None:
                continue
            name, text = parts
            if text.endswith(b"up") and name.startswith(b"worker."):
                self.up.add(name)
            elif started := STARTED.match(text):
                self.pids[started[1]] = int(started[2])
            elif ended := ENDED.match(text):
                self.ended.add(ended[1])

    def all_up(self, wanted: set[bytes]) -> bool:
        self.poll()
        return wanted <= self.up

    def all_ended(self, wanted: set[bytes]) -> bool:
        self.poll()
        return wanted <= self.ended


def names(first: int, last: int) -> set[bytes]:
    return {b"worker.%d" % n for n in range(first, last + 1)}


def launch_cli(procman: str, work: Path, spec: str, tag: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [procman, "scale", spec],
        cwd=work,
        env=common.tagged_env(tag),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def until(
    checks: list[Callable[[], bool]], cli: subprocess.Popen[bytes] | None, began: float
) -> tuple[list[float | None], float | None]:
    """Poll every 2 ms until every check holds and ``cli`` (if any) has exited; return the
    seconds from ``began`` until each check first held and until the CLI exited (None when not
    within BOUND)."""
    reached: list[float | None] = [None] * len(checks)
    exited = None
    fd = os.pidfd_open(cli.pid) if cli else None
    try:
        while time.monotonic() - began < BOUND:
            if fd is not None and exited is None:
                if select.select([fd], [], [], POLL)[0]:
                    exited = time.monotonic() - began
            else:
                time.sleep(POLL)
            for n, check in enumerate(checks):
                if reached[n] is None and check():
                    reached[n] = time.monotonic() - began
            if None not in reached and (fd is None or exited is not None):
                break
    finally:
        if fd is not None:
            os.close(fd)
    if cli is not None:
        output = cli.communicate(timeout=BOUND)[0]
        if cli.returncode != 0:
            raise RuntimeError(f"procman scale failed ({cli.returncode}): {output!r}")
    return reached, exited


def first_up(watcher: Watcher) -> bool:
    return until([lambda: watcher.all_up({b"worker.1"})], None, time.monotonic())[0][0] is not None


def run_procman(manager: common.Manager, scenario: str, work: Path) -> Sample:
    command, timeout = SCENARIOS[scenario]
    procfile = common.write_procfile(work, {"worker": command})
    out = work / "out.log"
    tag = common.new_tag()
    sample = Sample(manager.name, scenario, timeout)
    process = common.launch(manager, procfile, timeout, out, tag)
    watcher = Watcher(out)
    try:
        if not first_up(watcher):
            sample.problems.append("worker.1 never came up")
            return sample
        time.sleep(SETTLE)
        began = time.monotonic()
        cli = launch_cli(manager.argv[0], work, f"worker={TO}", tag)
        wanted = names(2, TO)
        [sample.up_seconds], sample.up_cli_seconds = until(
            [lambda: watcher.all_up(wanted)], cli, began
        )
        if sample.up_seconds is None:
            sample.problems.append(f"only {len(watcher.up)} of {TO} up")
            return sample
        time.sleep(SETTLE)
        victims = [psutil.Process(watcher.pids[name.encode()]) for name in sorted_names(wanted)]
        began = time.monotonic()
        cli = launch_cli(manager.argv[0], work, "worker=1", tag)
        [sample.down_seconds, sample.down_gone_seconds], sample.down_cli_seconds = until(
            [lambda: watcher.all_ended(wanted), lambda: not alive(victims)], cli, began
        )
        if sample.down_seconds is None:
            sample.problems.append(f"only {len(watcher.ended)} of {TO - 1} exit lines")
        if alive(victims):
            sample.problems.append(f"{len(alive(victims))} scaled-down pids still alive")
    finally:
        common.stop(process, timeout + common.EXIT_GRACE)
        sample.leftovers = common.leftovers(tag)
    return sample


def sorted_names(wanted: set[bytes]) -> list[str]:
    return sorted((n.decode() for n in wanted), key=lambda n: int(n.split(".")[1]))


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running (a reused pid is not: psutil compares creation times)."""
    living = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                living.append(process)
        except psutil.Error:
            continue
    return living


def run_peer(manager: common.Manager, work: Path) -> Sample:
    """Stop the running manager (SIGINT) and start it again with ``worker=20``."""
    command, timeout = SCENARIOS["term"]
    procfile = common.write_procfile(work, {"worker": command})
    option = FORMATION_OPTION[manager.name]
    sample = Sample(manager.name, "restart", manager.stop_timeout(timeout))
    tag = common.new_tag()
    first = launch_with(manager, procfile, timeout, work / "one.log", tag, option, "worker=1")
    second = None
    try:
        watcher = Watcher(work / "one.log")
        if not first_up(watcher):
            sample.problems.append("worker.1 never came up")
            return sample
        time.sleep(SETTLE)
        began = time.monotonic()
        os.kill(first.pid, signal.SIGINT)
        if common.wait_exit(first, sample.stop_timeout + common.EXIT_GRACE) is None:
            sample.problems.append("did not exit on SIGINT")
            return sample
        sample.peer_stop_seconds = time.monotonic() - began
        out = work / "twenty.log"
        second = launch_with(manager, procfile, timeout, out, tag, option, f"worker={TO}")
        watcher = Watcher(out)
        wanted = names(1, TO)
        [sample.up_seconds], _ = until([lambda: watcher.all_up(wanted)], None, began)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                common.stop(process, sample.stop_timeout + common.EXIT_GRACE)
            elif process is not None:
                process.wait()
        sample.leftovers = common.leftovers(tag)
    return sample


def launch_with(
    manager: common.Manager,
    procfile: Path,
    timeout: float,
    out: Path,
    tag: str,
    option: str,
    formation: str,
) -> subprocess.Popen[bytes]:
    argv = [*manager.command(procfile, timeout), option, formation]
    with out.open("wb") as stdout:
        return subprocess.Popen(
            argv,
            cwd=procfile.parent,
            env=common.tagged_env(tag),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def run(managers: list[common.Manager], repeat: int, scratch: Path) -> list[Sample]:
    samples = []
    for round_number in range(repeat):
        for manager in managers:
            scenarios = list(SCENARIOS) if manager.name == "procman" else ["restart"]
            for scenario in scenarios:
                work = scratch / f"scale-{round_number}-{manager.name}-{scenario}"
                if manager.name == "procman":
                    sample = run_procman(manager, scenario, work)
                else:
                    sample = run_peer(manager, work)
                samples.append(sample)
                shutil.rmtree(work, ignore_errors=True)
                print(f"  scale {describe(sample)}", file=sys.stderr, flush=True)
    return samples


def describe(sample: Sample) -> str:
    def s(value: float | None) -> str:
        return "—" if value is None else f"{value:.3f} s"

    if sample.name != "procman":
        text = f"{sample.name} restart with worker={TO}: {s(sample.up_seconds)}"
        text += f" (stop {s(sample.peer_stop_seconds)})"
    else:
        text = (
            f"procman {sample.scenario}: up {s(sample.up_seconds)} (CLI {s(sample.up_cli_seconds)})"
            f", down {s(sample.down_seconds)} (pids gone {s(sample.down_gone_seconds)}, "
            f"CLI {s(sample.down_cli_seconds)})"
        )
    extras = [*sample.problems]
    if sample.leftovers:
        extras.append(f"leftovers: {common.summarize(sample.leftovers)}")
    return text + ("; " + "; ".join(extras) if extras else "")


if __name__ == "__main__":
    found, _ = common.find_managers(sys.argv[1:] or ["procman", "honcho"])
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"procman-bench-{os.getpid()}"
    for result in run(found, 1, scratch):
        print(describe(result))
    shutil.rmtree(scratch, ignore_errors=True)
