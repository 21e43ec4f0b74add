"""The dashboard with 200,000 failed and 100,000 pending jobs, beside rq-dashboard on the same data.

    .venv/bin/python bench/dashboard.py [--failed N] [--pending N] [--runs N]
                                        [--rq-dashboard PATH/TO/rq-dashboard]

Starts a private ``redis-server`` (free loopback port, stopped at the end), loads the jobs with
RQ's own calls in pipelines (failed ones with a traceback each, in the failed registry of
``default``; pending ones in ``default``), then serves ``procman dashboard`` and, when given,
``rq-dashboard`` (install it into a venv of its own: ``python3 -m venv /tmp/rqd &&
/tmp/rqd/bin/pip install rq-dashboard six``) on the same Redis, and times each page and JSON
endpoint over real HTTP: one warm-up request, then the median and the slowest of ``--runs``.
Prints a Markdown table on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import redis
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.registry import FailedJobRegistry
from rq.results import Result

BATCH = 2000
TRACEBACK = """Traceback (most recent call last):
  File "/srv/app/jobs.py", line 12, in send_invoice
    gateway.charge(customer, amount)
  File "/srv/app/gateway.py", line 40, in charge
    raise PaymentError(f"card declined for {{customer}}")
gateway.PaymentError: card declined for customer {n}
"""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise SystemExit("redis-server did not start") from None
            time.sleep(0.05)
    client.close()
    return server, url


def post_timed(url: str, fields: dict[str, str], cookie: str = "") -> float:
    """Seconds one POST takes (bulk actions run to the end within the request)."""
    data = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    if cookie:
        request.add_header("Cookie", cookie)
    began = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=1800) as reply:
            reply.read()
    except urllib.error.HTTPError as error:
        if error.code != 303:
            raise
    return time.perf_counter() - began


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def csrf_cookie(base: str) -> tuple[str, str]:
    """``(Cookie header, token)`` for POSTs to procman's dashboard."""
    with urllib.request.urlopen(base + "/", timeout=60) as reply:
        header = reply.headers.get("Set-Cookie", "")
    token = header.split(";", 1)[0].split("=", 1)[1]
    return f"procman_csrf={token}", token


def bulk(
    connection: redis.Redis, count: int, procman_base: str, rq_dashboard_base: str | None
) -> list[tuple[str, str, float]]:
    """Retry all and delete all of ``count`` failed jobs with each dashboard (the failed jobs
    loaded again before each, everything else emptied)."""
    urllib.request.install_opener(urllib.request.build_opener(NoRedirect()))
    cookie, token = csrf_cookie(procman_base)
    form = {"csrf_token": token, "next": "/failed", "queue": "default"}
    actions = [
        ("procman dashboard", "retry all", procman_base + "/failed/retry-all", form, cookie),
        ("procman dashboard", "delete all", procman_base + "/failed/delete-all", form, cookie),
    ]
    if rq_dashboard_base:
        actions += [
            ("rq-dashboard", "retry all", rq_dashboard_base + "/requeue/default", {}, ""),
            (
                "rq-dashboard",
                "delete all",
                rq_dashboard_base + "/queue/default/failed/empty",
                {},
                "",
            ),
        ]
    rows = []
    for who, name, url, fields, with_cookie in actions:
        connection.flushdb()
        load(connection, count, 0)
        say(f"{who}: {name} of {count} failed jobs")
        seconds = post_timed(url, fields, with_cookie)
        left = connection.zcard("rq:failed:default")
        queued = connection.llen("rq:queue:default")
        rows.append((who, f"{name} ({left} left failed, {queued} queued)", seconds))
    return rows


def load(connection: redis.Redis, failed: int, pending: int) -> None:
    queue = Queue("default", connection=connection)
    registry = FailedJobRegistry("default", connection=connection)
    started = time.monotonic()
    for first in range(0, failed, BATCH):
        with connection.pipeline() as pipeline:
            for n in range(first, min(first + BATCH, failed)):
                job = Job.create(
                    "jobs.send_invoice", args=(f"customer-{n}", n % 500), connection=connection
                )
                job.origin = "default"
                job.ended_at = datetime.now(UTC)
                job.set_status(JobStatus.FAILED, pipeline=pipeline)
                exc = TRACEBACK.format(n=n)
                registry.add(job, ttl=-1, exc_string=exc, pipeline=pipeline)
                Result.create_failure(job, -1, exc, "bench-worker", pipeline=pipeline)
            pipeline.execute()
    say(f"loaded {failed} failed jobs in {time.monotonic() - started:.0f}s")
    started = time.monotonic()
    for first in range(0, pending, BATCH):
        with connection.pipeline() as pipeline:
            for n in range(first, min(first + BATCH, pending)):
                queue.enqueue_call("jobs.resize", args=(f"image-{n}.png",), pipeline=pipeline)
            pipeline.execute()
    say(f"loaded {pending} pending jobs in {time.monotonic() - started:.0f}s")


def serve(argv: list[str], url: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, process_group=0
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=120):
                return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{argv[0]} did not start serving {url}") from None
            time.sleep(0.2)


def timed(url: str, runs: int) -> tuple[float, float, int]:
    """``(median ms, slowest ms, bytes)`` of ``runs`` GETs after one warm-up."""
    with urllib.request.urlopen(url, timeout=300) as reply:
        size = len(reply.read())
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        with urllib.request.urlopen(url, timeout=300) as reply:
            reply.read()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples), max(samples), size


PROCMAN_PAGES = [
    ("overview page", "/"),
    ("overview JSON", "/api/overview"),
    ("queues page", "/queues"),
    ("pending jobs page (oldest first)", "/queues/default"),
    ("pending jobs page (newest first, page 2)", "/queues/default?order=newest&offset=20"),
    ("pending jobs JSON", "/api/queues/default"),
    ("pending jobs, last page", "/queues/default?offset=99980"),
    ("workers page", "/workers"),
    ("workers JSON", "/api/workers"),
    ("failed jobs page", "/failed"),
    ("failed jobs JSON", "/api/failed"),
    ("failed jobs, page 5000", "/failed?offset=99980"),
    ("failed jobs search (no match: looks through 2,000)", "/failed?search=nomatch"),
    ("scheduled page", "/scheduled"),
    ("job detail page", "/jobs/{failed_id}"),
]
RQ_DASHBOARD_PAGES = [
    ("queues page (HTML shell)", "/0/view/queues"),
    ("queues JSON", "/0/data/queues.json"),
    ("workers JSON", "/0/data/workers.json"),
    ("pending jobs JSON (8 a page, its default)", "/0/data/jobs/default/queued/8/asc/1.json"),
    ("pending jobs JSON (20 a page)", "/0/data/jobs/default/queued/20/asc/1.json"),
    ("failed jobs JSON (20 a page, newest first)", "/0/data/jobs/default/failed/20/dsc/1.json"),
    ("failed jobs page (HTML shell)", "/0/view/jobs/default/failed/20/dsc/1"),
    ("job detail JSON", "/0/data/job/{failed_id}.json"),
]


def report(
    args: argparse.Namespace,
    rows: list[tuple[str, str, float, float, int]],
    bulk_rows: list[tuple[str, str, float]],
) -> None:
    print(f"{args.failed:,} failed and {args.pending:,} pending jobs; median and slowest of "
          f"{args.runs} requests after one warm-up\n")  # fmt: skip
    print("| dashboard | request | median ms | slowest ms | bytes |")
    print("|---|---|---:|---:|---:|")
    for who, name, median, slowest, size in rows:
        print(f"| {who} | {name} | {median:.1f} | {slowest:.1f} | {size:,} |")
    if bulk_rows:
        print(f"\nBulk actions on {args.bulk:,} failed jobs (one request each)\n")
        print("| dashboard | action | seconds |")
        print("|---|---|---:|")
        for who, name, seconds in bulk_rows:
            print(f"| {who} | {name} | {seconds:.1f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failed", type=int, default=200_000)
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rq-dashboard", help="the rq-dashboard executable, to compare")
    parser.add_argument(
        "--bulk",
        type=int,
        default=0,
        metavar="N",
        help="also time retry all and delete all of N failed jobs (loaded again before each)",
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="procman-bench-dashboard-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        server, url = start_redis(workdir)
        processes.append(server)
        connection = redis.Redis.from_url(url)
        load(connection, args.failed, args.pending)
        raw_id = connection.zrange("rq:failed:default", 0, 0)[0]
        failed_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        app = workdir / "app"
        app.mkdir()
        (app / "Procfile").write_text("worker: procman worker\n")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "procman", "dashboard", "-d", str(app)]
        processes.append(serve([*argv, "--redis-url", url, "--port", str(port)], base + "/"))
        procman_base = base
        rows = [
            ("procman dashboard", name, *timed(base + path.format(failed_id=failed_id), args.runs))
            for name, path in PROCMAN_PAGES
        ]
        say("procman dashboard timed")
        rq_base = None
        if args.rq_dashboard:
            port = free_port()
            rq_base = base = f"http://127.0.0.1:{port}"
            command = [args.rq_dashboard, "-u", url, "-p", str(port), "-b", "127.0.0.1"]
            processes.append(serve(command, base + "/0/view/queues", dict(os.environ)))
            for name, path in RQ_DASHBOARD_PAGES:
                say(f"rq-dashboard: {name}")
                try:
                    figures = timed(base + path.format(failed_id=failed_id), args.runs)
                except OSError as error:
                    rows.append(("rq-dashboard", f"{name}: failed ({error})", 0.0, 0.0, 0))
                    continue
                rows.append(("rq-dashboard", name, *figures))
        bulk_rows = bulk(connection, args.bulk, procman_base, rq_base) if args.bulk else []
        report(args, rows, bulk_rows)
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
