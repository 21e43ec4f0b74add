"""Control under load: 10 processes log at full speed while ``ps`` requests hit the control socket.

Loaded: procman's stdout and stderr go to a file. Once all 10 ``chatter.py`` producers run (and
``WARMUP`` s more), the bench sends ``{"verb":"ps"}`` requests in a row on the socket, one
connection each (as the client commands do): ``FIRST`` and then ``MORE``, but for at most
``LOADED_WINDOW`` s, because 10 producers at full speed write about 200 MB/s that must then be
checked. procman's RSS is read before, after the first ``FIRST`` and at the end. Then the real
``procman ps --json`` runs ``LOADED_CLI`` times. Every request must answer ``ok`` with all 10
processes running. SIGINT then stops procman and the log file is checked: every complete line of
every producer present once and in order; the last line of each producer may be cut short by the
stop. A line procman printed in two pieces (a partial line flushed on its own, the rest on the
next line) is counted as split.

Idle: the same against a procman whose 10 children only sleep: ``FIRST`` + ``MORE`` requests
with RSS before, after ``FIRST`` and after all, and ``procman ps --json`` ``CLI_TOTAL`` times
spread over the rounds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import chatter
import common
import psutil

PRODUCERS = 10
FIRST = 1_000
MORE = 4_000
LOADED_WINDOW = 2.0
"""Seconds of socket requests at most while the producers run."""
LOADED_CLI = 3
"""``procman ps --json`` runs per round while the producers run."""
CLI_TOTAL = 50
"""``procman ps --json`` runs against the idle procman, spread over the rounds."""
WARMUP = 0.5
STOP_TIMEOUT = 2.0
CHATTER = Path(__file__).with_name("chatter.py")


@dataclass(frozen=True, slots=True)
class Check:
    good: int = 0
    lost: int = 0
    duplicated: int = 0
    garbled: int = 0
    split: int = 0
    """Lines that arrived whole but were printed as two lines (both pieces present)."""
    cut_at_stop: int = 0
    """Producers whose last line was cut short by the stop (allowed)."""
    manager_lines: int = 0

    def describe(self) -> str:
        return (
            f"{self.good:,} good, {self.lost} lost, {self.duplicated} dup, {self.garbled} "
            f"garbled, {self.split} split, {self.cut_at_stop} cut at stop"
        )


@dataclass(slots=True)
class Requests:
    """One series of socket requests in a row."""

    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    first_seconds: float | None = None
    """Wall time of the first FIRST requests (None: fewer were sent)."""
    seconds: float = 0.0
    rss_mb: list[float] = field(default_factory=list)
    """procman's RSS before, after FIRST (if reached) and at the end."""
    cli_seconds: list[float] = field(default_factory=list)
    cli_failures: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Sample:
    loaded: Requests = field(default_factory=Requests)
    idle: Requests = field(default_factory=Requests)
    log_mb: float = 0.0
    log_seconds: float = 0.0
    check: Check | None = None
    leftovers: list[str] = field(default_factory=list)


def ps_once(path: Path) -> tuple[float, str | None]:
    """Time one ``ps`` request; return (seconds, what went wrong or None)."""
    began = time.perf_counter()
    try:
        reply = common.control_request(path, {"verb": "ps"})
    except (OSError, ValueError) as error:
        return time.perf_counter() - began, f"{type(error).__name__}: {error}"
    seconds = time.perf_counter() - began
    if not reply.get("ok"):
        return seconds, f"error reply: {reply}"
    running = [p for p in reply.get("processes", []) if p.get("state") == "running"]
    if len(running) != PRODUCERS:
        return seconds, f"{len(running)} processes running, not {PRODUCERS}"
    return seconds, None


def fire(path: Path, pid: int, into: Requests, window: float | None) -> None:
    """FIRST and then MORE requests in a row (stopping after ``window`` s, if given), reading
    procman's RSS before, after FIRST and at the end."""
    own = psutil.Process(pid)
    into.rss_mb.append(own.memory_info().rss / 2**20)
    began = time.perf_counter()
    deadline = None if window is None else began + window
    for n in range(1, FIRST + MORE + 1):
        seconds, failure = ps_once(path)
        into.latencies.append(seconds)
        if failure:
            into.failures.append(failure)
        if n == FIRST:
            into.first_seconds = time.perf_counter() - began
            into.rss_mb.append(own.memory_info().rss / 2**20)
        if deadline is not None and time.perf_counter() > deadline:
            break
    into.seconds = time.perf_counter() - began
    into.rss_mb.append(own.memory_info().rss / 2**20)


def cli_ps(procman: str, work: Path, env: dict[str, str], calls: int, into: Requests) -> None:
    for _ in range(calls):
        began = time.perf_counter()
        done = subprocess.run(
            [procman, "ps", "--json"], cwd=work, env=env, capture_output=True, check=False
        )
        into.cli_seconds.append(time.perf_counter() - began)
        if done.returncode != 0:
            error = done.stderr.decode(errors="replace")[:200]
            into.cli_failures.append(f"exit {done.returncode}: {error}")
            continue
        try:
            rows = json.loads(done.stdout)
        except ValueError:
            into.cli_failures.append(f"not JSON: {done.stdout[:80]!r}")
            continue
        if len(rows) != PRODUCERS:
            into.cli_failures.append(f"{len(rows)} rows, not {PRODUCERS}")


def wait_running(path: Path, bound: float = 30.0) -> bool:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if ps_once(path)[1] is None:
            return True
        time.sleep(0.01)
    return False


def run_loaded(procman: common.Manager, work: Path, sample: Sample) -> None:
    procfile = common.write_procfile(
        work,
        {
            f"p{i}": f"exec {sys.executable} {CHATTER} {i}"  # exec: SIGTERM reaches Python
            for i in range(1, PRODUCERS + 1)
        },
    )
    out = work / "out.log"
    tag = common.new_tag()
    path = common.control_socket(work)
    launched = time.monotonic()
    process = common.launch(procman, procfile, STOP_TIMEOUT, out, tag)
    try:
        if not wait_running(path):
            sample.loaded.failures.append("the producers never all ran")
            return
        time.sleep(WARMUP)
        fire(path, process.pid, sample.loaded, LOADED_WINDOW)
        cli_ps(procman.argv[0], work, common.tagged_env(tag), LOADED_CLI, sample.loaded)
    finally:
        stopped = common.stop(process, STOP_TIMEOUT + common.EXIT_GRACE)
        sample.log_seconds = time.monotonic() - launched
        if stopped is None:
            sample.loaded.failures.append("procman did not exit after SIGINT")
        sample.leftovers.extend(common.leftovers(tag))
    sample.log_mb = out.stat().st_size / 2**20
    sample.check = check_output(out)
    out.unlink()


def run_idle(procman: common.Manager, work: Path, cli_calls: int, sample: Sample) -> None:
    procfile = common.write_procfile(
        work, {f"p{i}": "exec sleep 1000" for i in range(1, PRODUCERS + 1)}
    )
    tag = common.new_tag()
    process = common.launch(procman, procfile, STOP_TIMEOUT, work / "out.log", tag)
    path = common.control_socket(work)
    try:
        if not wait_running(path):
            sample.idle.failures.append("the children never all ran")
            return
        fire(path, process.pid, sample.idle, None)
        cli_ps(procman.argv[0], work, common.tagged_env(tag), cli_calls, sample.idle)
    finally:
        common.stop(process, STOP_TIMEOUT + common.EXIT_GRACE)
        sample.leftovers.extend(common.leftovers(tag, settle=0.1))


# -- checking the log ----------------------------------------------------------------------------


def check_output(path: Path) -> Check:
    """Account for every producer line: each ``HH:MM:SS pN.1 | N SEQUENCE ....`` must come once,
    in order, whole and under its own name. A fragment followed by the rest of its line (from the
    same process) is a split line; a fragment that is a producer's very last output was cut by
    the stop."""
    checker = LogChecker()
    with path.open("rb") as file:
        for raw in file:
            checker.feed(raw)
    return checker.finish()


class LogChecker:
    def __init__(self) -> None:
        self.tails = {i: chatter.padding(i) for i in range(1, PRODUCERS + 1)}
        self.expected = dict.fromkeys(self.tails, 0)
        self.held: dict[int, bytes] = {}
        self.counts = dict.fromkeys(("good", "lost", "duplicated", "garbled", "split"), 0)
        self.manager_lines = 0

    def feed(self, raw: bytes) -> None:
        bar = raw.find(b"| ", 9)
        if bar < 0 or not raw.endswith(b"\n"):
            self.counts["garbled"] += 1
            return
        name = raw[9:bar].rstrip(b" ")
        if not name.startswith(b"p") or not name.endswith(b".1"):
            self.manager_lines += 1
            return
        producer = int(name[1:-2]) if name[1:-2].isdigit() else 0
        if producer not in self.tails:
            self.counts["garbled"] += 1
            return
        text = raw[bar + 2 :]
        if producer in self.held:
            sequence = self.whole(producer, self.held.pop(producer)[:-1] + text)
            if sequence is not None:
                self.counts["split"] += 1
                self.account(producer, sequence)
                return
            self.counts["garbled"] += 1  # the held fragment was not the start of this line
        sequence = self.whole(producer, text)
        if sequence is None:
            self.held[producer] = text
        else:
            self.account(producer, sequence)

    def whole(self, producer: int, text: bytes) -> int | None:
        """The sequence number of a complete, intact line of ``producer``; else None."""
        if len(text) != chatter.LINE_SIZE or not text.endswith(self.tails[producer]):
            return None
        fields = text.split(b" ", 2)
        if fields[0] != b"%d" % producer or len(fields[1]) != 9 or not fields[1].isdigit():
            return None
        return int(fields[1])

    def account(self, producer: int, sequence: int) -> None:
        following = self.expected[producer]
        if sequence < following:
            self.counts["duplicated"] += 1
            return
        self.counts["lost"] += sequence - following
        self.expected[producer] = sequence + 1
        self.counts["good"] += 1

    def finish(self) -> Check:
        cut = 0
        for producer, fragment in self.held.items():
            start = b"%d %09d " % (producer, self.expected[producer])
            body = fragment[:-1]
            if start.startswith(body) or body.startswith(start):
                cut += 1
            else:
                self.counts["garbled"] += 1
        return Check(**self.counts, cut_at_stop=cut, manager_lines=self.manager_lines)


# -- running it -------------------------------------------------------------------------------


def run(managers: list[common.Manager], repeat: int, scratch: Path) -> list[Sample]:
    """procman only: no peer has a control socket."""
    procman = next((m for m in managers if m.name == "procman"), None)
    if procman is None:
        return []
    samples = []
    cli_calls = -(-CLI_TOTAL // repeat)
    for round_number in range(repeat):
        work = scratch / f"control-{round_number}"
        sample = Sample()
        run_loaded(procman, work / "loaded", sample)
        run_idle(procman, work / "idle", cli_calls, sample)
        samples.append(sample)
        shutil.rmtree(work, ignore_errors=True)
        print(f"  control: {summary(sample)}", file=sys.stderr, flush=True)
    return samples


def describe(requests: Requests) -> str:
    if not requests.latencies:
        return "no requests"
    ms = [1000 * s for s in requests.latencies]
    cli = common.median(requests.cli_seconds) if requests.cli_seconds else float("nan")
    return (
        f"{len(ms)} ps in {requests.seconds:.2f} s, p50 {common.percentile(ms, 0.5):.2f} ms, "
        f"p99 {common.percentile(ms, 0.99):.2f} ms, {len(requests.failures)} failed, RSS "
        + " / ".join(f"{mb:.1f}" for mb in requests.rss_mb)
        + f" MB; CLI {len(requests.cli_seconds)} x median {cli:.3f} s, "
        f"{len(requests.cli_failures)} failed"
    )


def summary(sample: Sample) -> str:
    check = sample.check.describe() if sample.check else "unchecked"
    return (
        f"loaded: {describe(sample.loaded)}; log {sample.log_mb:.0f} MB in "
        f"{sample.log_seconds:.1f} s: {check}; idle: {describe(sample.idle)}"
    )


if __name__ == "__main__":
    found, _ = common.find_managers(["procman"])
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"procman-bench-{os.getpid()}"
    for result in run(found, 1, scratch):
        print(summary(result))
        for requests in (result.loaded, result.idle):
            for failure in (requests.failures + requests.cli_failures)[:10]:
                print("  failure:", failure)
    shutil.rmtree(scratch, ignore_errors=True)
