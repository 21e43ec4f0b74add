"""Two builds of ``procman worker`` side by side, rounds interleaved (A, B, A, B …) so that a busy
machine slows both alike: ``bench/worker.py``'s burst throughput (``procman -c 2``) and idle
latency (1 queue; 2 weighted queues), on one private ``redis-server``.

    .venv/bin/python bench/worker_ab.py OLD_PROCMAN NEW_PROCMAN [--rounds N] [--jobs N]

Each argument is a ``procman`` executable. An old tree runs without installing it, as
docs/benchmarks.md's "before" did (the editable install's finder removed, the old tree first)::

    mkdir /tmp/oldprocman && git archive 0e5055c procman | tar -x -C /tmp/oldprocman
    cat > /tmp/oldprocman/procman-old <<'SH'
    #!/bin/sh
    exec "$VENV/bin/python" -c "
    import sys
    sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in str(f)]
    sys.path.insert(0, '/tmp/oldprocman')
    sys.argv[0] = 'procman'
    from procman.cli import main
    sys.exit(main())
    " "$@"
    SH
    chmod +x /tmp/oldprocman/procman-old    # with VENV=$PWD/.venv exported
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
from pathlib import Path

import common
import redis
from worker import prepare, redis_server, run_latency, run_throughput

LATENCY_RUNNERS = ("procman, 1 queue", "procman, 2 weighted queues")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("builds", nargs=2, metavar="PROCMAN")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=5_000)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"procman-bench-{os.getpid()}"
    rates: dict[str, list[float]] = {build: [] for build in args.builds}
    commands: dict[str, list[float]] = {build: [] for build in args.builds}
    latency: dict[tuple[str, str], list[tuple[float, float]]] = {}
    try:
        with redis_server(scratch / "redis") as url:
            base = prepare(scratch, url)
            client = redis.Redis.from_url(url)
            for round_number in range(args.rounds):
                for build in args.builds:
                    setup = dataclasses.replace(base, procman=build)
                    sample = run_throughput("procman -c 2", setup, client, args.jobs)
                    if sample.seconds:
                        rates[build].append(sample.jobs / sample.seconds)
                    commands[build].append(sample.commands_per_job or 0.0)
                    line = f"round {round_number + 1} {build}: {rates[build][-1:]} jobs/s"
                    for runner in LATENCY_RUNNERS:
                        result = run_latency(runner, setup, client, args.samples)
                        if result.seconds:
                            p50 = 1000 * common.percentile(result.seconds, 0.5)
                            p99 = 1000 * common.percentile(result.seconds, 0.99)
                            latency.setdefault((build, runner), []).append((p50, p99))
                            line += f"; {runner} p50 {p50:.2f} / p99 {p99:.2f} ms"
                    print(line, file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("| build | jobs/s, median (runs) | Redis commands/job | " + " | ".join(
        f"{runner}: p50 / p99 ms, medians" for runner in LATENCY_RUNNERS
    ) + " |")  # fmt: skip
    print("|---|---|---|" + "---|" * len(LATENCY_RUNNERS))
    for build in args.builds:
        runs = " / ".join(f"{rate:.0f}" for rate in rates[build])
        cells = []
        for runner in LATENCY_RUNNERS:
            pairs = latency.get((build, runner), [])
            p50 = common.median([p for p, _ in pairs]) if pairs else float("nan")
            p99 = common.median([p for _, p in pairs]) if pairs else float("nan")
            cells.append(f"{p50:.2f} / {p99:.2f}")
        rate = common.median(rates[build]) if rates[build] else float("nan")
        print(
            f"| `{build}` | **{rate:.0f}** ({runs}) | {common.median(commands[build]):.1f} | "
            + " | ".join(cells)
            + " |"
        )


if __name__ == "__main__":
    os.environ.pop("PYTHONUNBUFFERED", None)
    main()
