"""An idle ``procman worker`` on Redis: commands per second, and latency where ``CONFIG`` is off.

Two private ``redis-server``s (``bench/worker.py``'s: free loopback port, no persistence): one as
installed, one started with ``--rename-command CONFIG ""`` as most managed Redis services run
(no ``CONFIG``, so no keyspace notifications for procman's multi-queue wait).

Idle: each runner is started (not burst) on an emptied Redis; once its 2 workers are registered
and 1 s more has passed, ``INFO commandstats`` is read, ``WINDOW`` s later read again; the
difference over the window is commands per second (every command, those inside Lua scripts
included, minus the one ``INFO``), with the busiest commands named.

Latency: as in ``bench/worker.py`` (one ``stamp`` job at a time, the job's own start time minus
the time taken just before enqueueing, then 20 ms), with procman's pool of 1 worker on two
weighted queues: on the Redis as installed (keyspace notifications), the job enqueued with
``procman.queues.enqueue``; on the Redis without ``CONFIG``, enqueued with
``procman.queues.enqueue`` (which pushes a wake-up token) or with RQ's ``Queue.enqueue`` (which
does not: the idle worker sees it when its 1 s wait ends; the bench's rhythm, 20 ms after the
previous job, puts each one just after the wait began, so these are close to the worst case).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import common
import redis
from rq.job import Job
from rq.queue import Queue
from worker import Setup, launch, prepare, redis_server, start_latencies, stop, wait_ready

from procman.queues.enqueueing import enqueue, use_connection

WINDOW = 10.0
LATENCY_SAMPLES = 200
RQ_ENQUEUE_SAMPLES = 50
"""Fewer for RQ's own enqueue: each waits up to 1 s."""
SPACING = 0.02
NO_CONFIG = ("--rename-command", "CONFIG", "")

IDLE_RUNNERS: dict[str, tuple[bool, Callable[[Setup], list[list[str]]]]] = {
    # name: (on the Redis without CONFIG, the processes it starts)
    "procman worker -c 2, 1 queue": (False, lambda s: [[s.procman, "worker", "-q", "a"]]),
    "procman worker -c 2, 2 queues": (False, lambda s: [[s.procman, "worker", "-q", "a,b"]]),
    "procman worker -c 2, 2 queues, no CONFIG": (
        True,
        lambda s: [[s.procman, "worker", "-q", "a,b"]],
    ),
    "2 x rq worker a b": (False, lambda s: [s.rq("worker", "a", "b")] * 2),
    "2 x rq worker --with-scheduler a b": (
        False,
        lambda s: [s.rq("worker", "--with-scheduler", "a", "b")] * 2,
    ),
}
LATENCY_RUNNERS = (
    "CONFIG allowed, procman.queues.enqueue",
    "no CONFIG, procman.queues.enqueue",
    "no CONFIG, RQ's Queue.enqueue",
)


@dataclass(slots=True)
class Idle:
    runner: str
    per_second: float | None = None
    busiest: list[tuple[str, float]] = field(default_factory=list)


def calls(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(entry["calls"]) for name, entry in stats.items()}


def run_idle(runner: str, setup: Setup, client: redis.Redis) -> Idle:
    client.flushall()
    _, argvs = IDLE_RUNNERS[runner]
    processes = [launch(argv, setup) for argv in argvs(setup)]
    result = Idle(runner)
    try:
        if not wait_ready(client, 2, processes):
            return result
        time.sleep(1.0)
        before = calls(client)
        time.sleep(WINDOW)
        after = calls(client)
    finally:
        stop(processes, setup)
    spent = {name: after[name] - before.get(name, 0) for name in after}
    spent["info"] = spent.get("info", 0) - 1
    result.per_second = sum(spent.values()) / WINDOW
    top = sorted(((n, c / WINDOW) for n, c in spent.items() if c > 0), key=lambda x: -x[1])
    result.busiest = top[:6]
    return result


@dataclass(slots=True)
class Latency:
    runner: str
    seconds: list[float] = field(default_factory=list)
    missing: int = 0


def run_latency(runner: str, setup: Setup, client: redis.Redis, samples: int) -> Latency:
    client.flushall()
    argv = [setup.procman, "worker", "-c", "1", "-q", "default:3,other:1"]
    processes = [launch(argv, setup)]
    queue = Queue("default", connection=client)
    result = Latency(runner)
    use_connection(client)
    try:
        if not wait_ready(client, 1, processes):
            result.missing = samples
            return result

        def enqueue_one() -> Job:
            if runner.endswith("procman.queues.enqueue"):
                job = enqueue("jobs.stamp")
            else:
                job = queue.enqueue("jobs.stamp")
            assert isinstance(job, Job)
            return job

        result.seconds, result.missing = start_latencies(client, enqueue_one, samples, SPACING)
    finally:
        use_connection(None)
        stop(processes, setup)
    return result


def run(scratch: Path, quick: bool = False) -> tuple[list[Idle], list[Latency]]:
    idle: list[Idle] = []
    latency: list[Latency] = []
    with (
        redis_server(scratch / "redis") as url,
        redis_server(scratch / "redis-no-config", *NO_CONFIG) as no_config_url,
    ):
        setup = prepare(scratch, url)
        clients = {False: redis.Redis.from_url(url), True: redis.Redis.from_url(no_config_url)}
        for runner, (without_config, _) in IDLE_RUNNERS.items():
            chosen = setup if not without_config else dataclasses.replace(setup, url=no_config_url)
            sample = run_idle(runner, chosen, clients[without_config])
            idle.append(sample)
            progress(describe_idle(sample))
        no_config = dataclasses.replace(setup, url=no_config_url)
        for runner in LATENCY_RUNNERS:
            count = LATENCY_SAMPLES if "procman" in runner else RQ_ENQUEUE_SAMPLES
            without_config = runner.startswith("no CONFIG")
            chosen = no_config if without_config else setup
            client = clients[without_config]
            sample_latency = run_latency(runner, chosen, client, 50 if quick else count)
            latency.append(sample_latency)
            progress(describe_latency(sample_latency))
    return idle, latency


def progress(text: str) -> None:
    print(f"  worker idle {text}", file=sys.stderr, flush=True)


def describe_idle(sample: Idle) -> str:
    if sample.per_second is None:
        return f"{sample.runner}: did not start"
    busiest = ", ".join(f"{name} {rate:.1f}" for name, rate in sample.busiest)
    return f"{sample.runner}: {sample.per_second:.1f} commands/s ({busiest})"


def describe_latency(sample: Latency) -> str:
    if not sample.seconds:
        return f"{sample.runner}: no sample"
    ms = [1000 * common.percentile(sample.seconds, f) for f in (0.5, 0.99, 1.0)]
    return (
        f"{sample.runner}: p50 {ms[0]:.2f} ms, p99 {ms[1]:.2f} ms, max {ms[2]:.2f} ms, "
        f"{len(sample.seconds)} samples, {sample.missing} missing"
    )


def markdown(idle: list[Idle], latency: list[Latency]) -> str:
    rows = [
        f"| idle, {WINDOW:.0f} s window | Redis commands/s | busiest (per s) |",
        "|---|---|---|",
    ]
    for sample in idle:
        rate = f"{sample.per_second:.1f}" if sample.per_second is not None else "—"
        busiest = ", ".join(
            f"{name.replace('|', ' ')} {value:.1f}" for name, value in sample.busiest
        )
        rows.append(f"| `{sample.runner}` | **{rate}** | {busiest} |")
    rows += [
        "",
        "| latency: procman -c 1 -q default:3,other:1 | p50 ms | p99 ms | max ms | samples |",
    ]
    rows.append("|---|---|---|---|---|")
    for sample in latency:
        if not sample.seconds:
            rows.append(f"| {sample.runner} | — | — | — | 0 |")
            continue
        ms = [1000 * common.percentile(sample.seconds, f) for f in (0.5, 0.99, 1.0)]
        rows.append(
            f"| {sample.runner} | **{ms[0]:.2f}** | **{ms[1]:.2f}** | {ms[2]:.2f} "
            f"| {len(sample.seconds)} ({sample.missing} missing) |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    os.environ.pop("PYTHONUNBUFFERED", None)
    if shutil.which("redis-server") is None:
        sys.exit("worker_idle: redis-server is not on PATH")
    directory = Path(os.environ.get("TMPDIR", "/tmp")) / f"procman-bench-{os.getpid()}"
    try:
        print(markdown(*run(directory, quick="--quick" in sys.argv)))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
