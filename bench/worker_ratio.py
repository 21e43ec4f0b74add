"""``procman worker`` against the best plain RQ configuration, interleaved in one run on one Redis.

    .venv/bin/python bench/worker_ratio.py [--rounds N] [--jobs N] [--samples N]

One private ``redis-server`` (``bench/worker.py``'s: a free loopback port, no persistence, emptied
before each run). Each round runs, one after another and in an order that turns round by one
each round (so a machine busy at some moment slows each alike over the rounds):

- burst throughput on ``--jobs`` no-op jobs (``bench/worker.py``'s ``run_throughput``: the jobs
  enqueued first, ``CONFIG RESETSTAT``, the worker launched in burst mode; the time from launch to
  the last job's ``ended_at``; Redis commands per job = the sum of ``INFO commandstats`` calls,
  those inside Lua scripts included, minus the ``INFO`` itself, divided by the jobs) for
  ``procman worker -c 2`` (``queues.yml``: 2 processes, ``retry: false``, ``default``),
  2 x ``rq worker -w rq.worker.SimpleWorker`` and ``rq worker-pool -n 2 -w
  rq.worker.SimpleWorker``: RQ's fastest ways to run no-op jobs with two processes;
- idle enqueue → start latency of ``procman worker -c 1`` on 1 queue and on 2 weighted queues
  (``bench/worker.py``'s ``run_latency``: one ``stamp`` job at a time, ``--samples`` of them).

It prints each round on stderr, then a Markdown table on stdout: jobs/s (median, and each round),
procman ÷ the faster RQ configuration of the same round (median of the rounds), commands per
job, and the latency medians. These are measurements, not tests: nothing asserts on them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import common
import redis
from worker import Setup, prepare, redis_server, run_latency, run_throughput

PROCMAN = "procman -c 2"
RQ_RUNNERS = ("2 SimpleWorkers", "rq worker-pool -n 2 -w SimpleWorker")
LATENCY_RUNNERS = ("procman, 1 queue", "procman, 2 weighted queues")


@dataclass(slots=True)
class Tally:
    rates: dict[str, list[float]] = field(default_factory=dict)
    """Jobs ÷ seconds from launching the worker to the last job's end."""
    steady: dict[str, list[float]] = field(default_factory=dict)
    """Jobs ÷ seconds from the first job's start to the last one's end (no start-up)."""
    commands: dict[str, list[float]] = field(default_factory=dict)
    ratios: list[float] = field(default_factory=list)
    """procman ÷ the faster RQ configuration, per round."""
    steady_ratios: list[float] = field(default_factory=list)
    latency: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    unfinished: int = 0


def run_round(number: int, args: argparse.Namespace, setup: Setup, client: redis.Redis,
              tally: Tally) -> None:  # fmt: skip
    runners = [PROCMAN, *RQ_RUNNERS]
    turn = number % len(runners)
    rates: dict[str, float] = {}
    steady: dict[str, float] = {}
    for runner in runners[turn:] + runners[:turn]:
        sample = run_throughput(runner, setup, client, args.jobs)
        tally.unfinished += sample.jobs - sample.finished
        if sample.seconds:
            rates[runner] = sample.jobs / sample.seconds
            tally.rates.setdefault(runner, []).append(rates[runner])
        if sample.steady_seconds:
            steady[runner] = sample.jobs / sample.steady_seconds
            tally.steady.setdefault(runner, []).append(steady[runner])
        tally.commands.setdefault(runner, []).append(sample.commands_per_job or 0.0)
        progress(
            f"round {number + 1}: {runner}: {rates.get(runner, 0):,.0f} jobs/s, "
            f"{sample.commands_per_job:.1f} commands/job, {sample.finished} finished"
        )
    for found, into in ((rates, tally.ratios), (steady, tally.steady_ratios)):
        best = max((found[r] for r in RQ_RUNNERS if r in found), default=0.0)
        if PROCMAN in found and best:
            into.append(found[PROCMAN] / best)
    progress(f"round {number + 1}: procman ÷ best RQ: {tally.ratios[-1:]} (launch to end), "
             f"{tally.steady_ratios[-1:]} (steady)")  # fmt: skip
    for runner in LATENCY_RUNNERS:
        result = run_latency(runner, setup, client, args.samples)
        if result.seconds:
            p50 = 1000 * common.percentile(result.seconds, 0.5)
            p99 = 1000 * common.percentile(result.seconds, 0.99)
            tally.latency.setdefault(runner, []).append((p50, p99))
            progress(f"round {number + 1}: {runner}: p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
                     f"{result.missing} missing")  # fmt: skip


def markdown(tally: Tally, args: argparse.Namespace) -> str:
    lines = [
        f"| no-op jobs, burst ({args.jobs:,} per run, {args.rounds} rounds) | jobs/s, median "
        "(rounds) | steady jobs/s, median | Redis commands/job, median |",
        "|---|---|---|---|",
    ]
    for runner in (PROCMAN, *RQ_RUNNERS):
        rates = tally.rates.get(runner, [])
        runs = " / ".join(f"{rate:,.0f}" for rate in rates)
        median = f"{common.median(rates):,.0f}" if rates else "—"
        commands = tally.commands.get(runner, [])
        per_job = f"{common.median(commands):.1f}" if commands else "—"
        steady = tally.steady.get(runner, [])
        steady_median = f"{common.median(steady):,.0f}" if steady else "—"
        lines.append(f"| `{runner}` | **{median}** ({runs}) | {steady_median} | {per_job} |")
    lines += [
        "",
        f"procman ÷ the faster RQ configuration of the same round: **{_ratio(tally.ratios)}** "
        f"from launch to the last job's end, **{_ratio(tally.steady_ratios)}** steady (first "
        f"start to last end); jobs not finished: {tally.unfinished}",
        "",
        "| idle latency, enqueue → start | p50 ms, median (rounds) | p99 ms, median (rounds) |",
        "|---|---|---|",
    ]
    for runner in LATENCY_RUNNERS:
        pairs = tally.latency.get(runner, [])
        if not pairs:
            lines.append(f"| {runner} | — | — |")
            continue
        p50s = [p for p, _ in pairs]
        p99s = [p for _, p in pairs]
        lines.append(
            f"| {runner} | **{common.median(p50s):.2f}** ({' / '.join(f'{p:.2f}' for p in p50s)})"
            f" | **{common.median(p99s):.2f}** ({' / '.join(f'{p:.2f}' for p in p99s)}) |"
        )
    return "\n".join(lines)


def _ratio(ratios: list[float]) -> str:
    if not ratios:
        return "—"
    rounds = " / ".join(f"{ratio:.2f}" for ratio in ratios)
    return f"{common.median(ratios):.2f}x (rounds: {rounds})"


def progress(text: str) -> None:
    print(f"  worker_ratio {text}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=5_000)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        sys.exit("worker_ratio: redis-server is not on PATH")
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"procman-bench-{os.getpid()}"
    tally = Tally()
    try:
        with redis_server(scratch / "redis") as url:
            setup = prepare(scratch, url)
            client = redis.Redis.from_url(url)
            for number in range(args.rounds):
                run_round(number, args, setup, client, tally)
            client.flushall()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(markdown(tally, args))


if __name__ == "__main__":
    os.environ.pop("PYTHONUNBUFFERED", None)
    main()
