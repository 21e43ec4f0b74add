"""Log throughput: 4 producers each write COUNT lines of 80 bytes; the manager's stdout is a file.

The baseline runs the same 4 producers with their stdout on one file (``O_APPEND``), no manager.
Wall time runs from launch to exit of the manager (or of the last producer, for the baseline),
so it includes the manager's start-up and shutdown. Every line of the output is checked: each
producer line is ``ID SEQUENCE PAYLOAD CRC32`` and must appear exactly once, in order, intact,
under its own process name.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import common

PRODUCERS = 4
PRODUCER = Path(__file__).with_name("producer.py")
STATUS_LINE = (b"started with pid ", b"exited with code ", b"terminated by ")
"""What foreman prints under the process's own name rather than ``system``."""
RUN_BOUND = 300.0


@dataclass(frozen=True, slots=True)
class Check:
    good: int = 0
    lost: int = 0
    duplicated: int = 0
    garbled: int = 0
    manager_lines: int = 0

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.garbled)

    def describe(self) -> str:
        return f"{self.lost} lost, {self.duplicated} dup, {self.garbled} garbled"


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    seconds: float
    lines_per_second: float
    self_cpu: float | None
    manager_cpu: float | None
    returncode: int
    leftovers: list[str]
    output: Path
    check: Check | None = None


def producer_command(producer: int, count: int, done: Path) -> list[str]:
    return [sys.executable, str(PRODUCER), str(producer), str(count), str(done), str(PRODUCERS)]


def producers_cpu(done: Path) -> float:
    return sum(float(path.read_text()) for path in done.iterdir() if path.name.isdigit())


def check_output(path: Path, count: int, prefixed: bool) -> Check:
    """Account for every producer line in ``path``: good, lost, duplicated or garbled."""
    expected = dict.fromkeys(range(1, PRODUCERS + 1), 0)
    good = duplicated = garbled = manager_lines = lost = 0
    with path.open("rb") as file:
        for raw in file:
            if not raw.endswith(b"\n"):
                garbled += 1
                continue
            text = raw[:-1]
            name = None
            if prefixed:
                bar = text.find(b"| ", 9)
                if bar < 0 or text[8:9] != b" ":
                    garbled += 1
                    continue
                name = text[9:bar].rstrip(b" ")
                text = text[bar + 2 :]
                if name == b"system" or text.startswith(STATUS_LINE):
                    manager_lines += 1
                    continue
            fields = text.split(b" ")
            try:
                producer, sequence = int(fields[0]), int(fields[1])
                intact = len(fields) == 4 and zlib.crc32(text[:-9]) == int(fields[3], 16)
            except (ValueError, IndexError):
                intact = False
            if not intact or producer not in expected:
                garbled += 1
                continue
            if name is not None and not name.startswith(b"p%d." % producer):
                garbled += 1  # the right line under the wrong process name
                continue
            following = expected[producer]
            if sequence < following:
                duplicated += 1
                continue
            lost += sequence - following
            expected[producer] = sequence + 1
            good += 1
    lost += sum(count - following for following in expected.values())
    return Check(good, lost, duplicated, garbled, manager_lines)


def run_baseline(work: Path, count: int) -> Sample:
    done = work / "done"
    done.mkdir(parents=True)
    out = work / "out.log"
    with out.open("ab") as stdout:
        started = time.monotonic()
        processes = [
            subprocess.Popen(producer_command(i, count, done), stdout=stdout)
            for i in range(1, PRODUCERS + 1)
        ]
        for process in processes:
            process.wait(RUN_BOUND)
        seconds = time.monotonic() - started
    return Sample("baseline", seconds, PRODUCERS * count / seconds, None, None, 0, [], out)


def run_manager(manager: common.Manager, work: Path, count: int) -> Sample:
    done = work / "done"
    done.mkdir(parents=True)
    procfile = common.write_procfile(
        work,
        {
            f"p{i}": subprocess.list2cmdline(producer_command(i, count, done))
            for i in range(1, PRODUCERS + 1)
        },
    )
    out = work / "out.log"
    tag = common.new_tag()
    started = time.monotonic()
    process = common.launch(manager, procfile, 5.0, out, tag)
    exited = common.wait_exit(process, RUN_BOUND)
    if exited is None:
        common.kill_group(process.pid)
        process.kill()
        exited = time.monotonic()
    seconds = exited - started
    reaped = common.reap(process)
    left = common.leftovers(tag, settle=0.1)
    return Sample(
        manager.name,
        seconds,
        PRODUCERS * count / seconds,
        reaped.self_cpu,
        reaped.tree_cpu - producers_cpu(done),
        reaped.returncode,
        left,
        out,
    )


def run(managers: list[common.Manager], repeat: int, count: int, scratch: Path) -> list[Sample]:
    """``repeat`` rounds; each runs the baseline and then every manager once. The outputs are
    checked after the last round, two at a time, so checking never competes with a timed run."""
    samples = []
    for round_number in range(repeat):
        for manager in [None, *managers]:
            work = scratch / f"throughput-{round_number}-{manager.name if manager else 'base'}"
            if manager is None:
                sample = run_baseline(work, count)
            else:
                sample = run_manager(manager, work, count)
            samples.append(sample)
            print(
                f"  throughput {sample.name}: {sample.seconds:.2f} s", file=sys.stderr, flush=True
            )
    jobs = [(s.output, count, s.name != "baseline") for s in samples]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        checks = pool.starmap(check_output, jobs)
    for sample in samples:
        shutil.rmtree(sample.output.parent, ignore_errors=True)
    return [replace(sample, check=check) for sample, check in zip(samples, checks, strict=True)]


if __name__ == "__main__":
    found, _ = common.find_managers(sys.argv[1:] or ["procman"])
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"procman-bench-{os.getpid()}"
    for result in run(found, 1, 200_000, scratch):
        print(result)
    shutil.rmtree(scratch, ignore_errors=True)
