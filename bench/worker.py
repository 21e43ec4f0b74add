"""Background jobs: ``procman worker`` side by side with RQ's own workers on one Redis.

The bench starts its own ``redis-server`` on a free loopback port (no persistence, log to
/dev/null), empties it (``FLUSHALL``) before every run and stops it at the end. Every worker's
stdout and stderr go to /dev/null. The jobs live in a ``jobs.py`` written into a scratch app
directory, importable by every worker (``-P`` for ``rq``, the app directory for procman).

Throughput: ``THROUGHPUT_JOBS`` no-op jobs are enqueued first (one pipeline per 1,000,
untimed), ``CONFIG RESETSTAT``, then the worker is launched in burst mode; the time runs from
launching it to the latest ``ended_at`` that RQ recorded on a job (so worker-pool's one-second
exit poll does not count), Redis commands from ``INFO commandstats`` (every command, those run
inside Lua scripts included) divided by the jobs. Every job must end ``finished``. RQ's
forking workers get ``FORK_JOBS`` jobs, a steady per-job cost, so the bench stays short.

Latency: with the worker idle, one ``stamp`` job at a time; the job pushes ``time.time()`` at
its start onto a Redis list, the bench took ``time.time()`` just before ``enqueue`` (same
machine, same clock). The bench waits for the job to finish, then ``SPACING`` s, then the next.

Crash: ``CRASH_JOBS`` jobs (a sleep of 2-20 ms, then ``HINCRBY effects <n> 1``; every 100th then
raises) on two queues, 3 worker processes, one of them (at least ``SPARE_YOUNG`` s old)
SIGKILLed every 50-300 ms until every job has ended (or ``CRASH_BOUND`` s). procman: the pool's
children; the time from a kill until the dead worker's ``procman:wip:<name>`` list no longer
holds its job (requeued) is watched every few ms. RQ: 3 ``rq worker`` processes restarted by the
bench when killed, as a process manager would; the kill hits a worker or its work-horse at
random; afterwards the workers keep running without kills until ``RQ_GRACE`` s after the last
kill (``--maintenance-interval 10``), so RQ's own abandoned-job handling gets its chance. Then
every job's state is read; a job whose side effect shows twice ran twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import common
import psutil
import redis
from rq.job import Job
from rq.queue import Queue
from rq.registry import FailedJobRegistry, FinishedJobRegistry
from rq.utils import utcparse

THROUGHPUT_JOBS = 10_000
SHORTER = {"rq worker": 500, "rq worker-pool -n 2": 500, "1 SimpleWorker": 3_000}
"""Fewer jobs for the slow runners, so the bench stays short: at ~100 jobs/s a forking worker
would take 100 s per run for 10,000. Their cost per job is steady (a fork, or the same Redis
round trips), and the steady-state rate (first job start to last job end) is reported too."""
LATENCY_SAMPLES = 200
SPACING = 0.02
CRASH_JOBS = 2_000
CRASH_CONCURRENCY = 3
CRASH_BOUND = 60.0
RQ_GRACE = 30.0
KILL_EVERY = (0.05, 0.3)
SPARE_YOUNG = 1.2
"""Worker processes younger than this are not killed (work-horses are, at any age): one still
starting holds no job, and procman's pool waits ``RESPAWN_FLOOR`` (1 s) before replacing a
worker that died that young (blocking its loop), so killing those measures start-up, not job
recovery. 1.2 s leaves a margin over the pool's own clock, started after ``Popen``."""
RUN_BOUND = 120.0
READY_BOUND = 20.0

JOBS = '''"""Jobs for bench/worker.py."""
import time

from rq import get_current_job


def noop():
    return None


def stamp():
    started = time.time()
    job = get_current_job()
    job.connection.rpush("bench:started", f"{job.id} {started!r}")


def work(index, seconds, fail):
    time.sleep(seconds)
    get_current_job().connection.hincrby("bench:effects", str(index), 1)
    if fail:
        raise RuntimeError("planned failure")
'''
QUEUES_YML = "concurrency: 2\nretry: false\nqueues:\n  - default\n"


# -- Redis ------------------------------------------------------------------------------------


@contextlib.contextmanager
def redis_server(directory: Path, *extra: str) -> Iterator[str]:
    """A private ``redis-server`` on a free loopback port (``extra``: more of its options);
    yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    directory.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(directory), "--logfile", "", *extra],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.02)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def command_count(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(int(entry["calls"]) for entry in stats.values())


def enqueue_noops(client: redis.Redis, count: int, queue_name: str = "default") -> list[str]:
    queue = Queue(queue_name, connection=client)
    ids: list[str] = []
    for first in range(0, count, 1000):
        batch = [
            Queue.prepare_data("jobs.noop", job_id=f"noop-{n}")
            for n in range(first, min(count, first + 1000))
        ]
        with client.pipeline() as pipeline:
            ids += [job.id for job in queue.enqueue_many(batch, pipeline=pipeline)]
            pipeline.execute()
    return ids


# -- the workers under test -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setup:
    app: Path
    url: str
    tag: str
    procman: str

    def env(self) -> dict[str, str]:
        env = common.tagged_env(self.tag)
        env["REDIS_URL"] = self.url
        env.pop("REDIS_PROVIDER", None)
        return env

    def rq(self, *args: str) -> list[str]:
        return [str(common.BIN / "rq"), *args, "-u", self.url, "-P", str(self.app), "-q"]


THROUGHPUT_RUNNERS = ("procman -c 2", "rq worker", "rq worker-pool -n 2", "1 SimpleWorker",
                      "2 SimpleWorkers")  # fmt: skip
LATENCY_RUNNERS = ("procman, 1 queue", "procman, 2 weighted queues", "rq worker",
                   "SimpleWorker")  # fmt: skip
SIMPLE = ("-w", "rq.worker.SimpleWorker")


def commands(runner: str, setup: Setup, *, burst: bool) -> list[list[str]]:
    """The processes one runner starts (several for two SimpleWorkers)."""
    flag = ["--burst"] if burst else []
    table = {
        "procman -c 2": [[setup.procman, "worker", *flag]],
        "procman, 1 queue": [[setup.procman, "worker", "-c", "1", *flag]],
        "procman, 2 weighted queues": [
            [setup.procman, "worker", "-c", "1", "-q", "default:3,other:1", *flag]
        ],
        "rq worker": [setup.rq("worker", *flag, "default")],
        "rq worker-pool -n 2": [setup.rq("worker-pool", "-n", "2", *flag, "default")],
        "1 SimpleWorker": [setup.rq("worker", *SIMPLE, *flag, "default")],
        "SimpleWorker": [setup.rq("worker", *SIMPLE, *flag, "default")],
        "2 SimpleWorkers": [setup.rq("worker", *SIMPLE, *flag, "default")] * 2,
        "rq worker-pool -n 2 -w SimpleWorker": [
            setup.rq("worker-pool", "-n", "2", *SIMPLE, *flag, "default")
        ],
    }
    return table[runner]


def jobs_for(runner: str, quick: bool) -> int:
    full = 2_000 if quick else THROUGHPUT_JOBS
    return min(full, SHORTER.get(runner, full))


def launch(argv: list[str], setup: Setup) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        cwd=setup.app,
        env=setup.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def finish(processes: list[subprocess.Popen[bytes]], bound: float) -> bool:
    """Wait for every process to exit; kill the stragglers' groups. True when all exited."""
    deadline = time.monotonic() + bound
    clean = True
    for process in processes:
        try:
            process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            clean = False
            common.kill_group(process.pid)
            process.wait()
    return clean


def stop(processes: list[subprocess.Popen[bytes]], setup: Setup) -> list[str]:
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    finish(processes, 10.0)
    return common.leftovers(setup.tag, settle=0.1)


# -- throughput -------------------------------------------------------------------------------


@dataclass(slots=True)
class Throughput:
    runner: str
    jobs: int
    seconds: float | None = None
    """Launch until the last job ended (RQ's ``ended_at``)."""
    steady_seconds: float | None = None
    """First job started until the last one ended: no start-up."""
    commands_per_job: float | None = None
    finished: int = 0
    exited: bool = True


def run_throughput(runner: str, setup: Setup, client: redis.Redis, jobs: int) -> Throughput:
    client.flushall()
    ids = enqueue_noops(client, jobs)
    client.config_resetstat()
    began = time.time()
    processes = [launch(argv, setup) for argv in commands(runner, setup, burst=True)]
    sample = Throughput(runner, jobs, exited=finish(processes, RUN_BOUND))
    sample.commands_per_job = (command_count(client) - 1) / jobs  # minus the INFO itself
    with client.pipeline(transaction=False) as pipeline:
        for job_id in ids:
            pipeline.hmget(Job.key_for(job_id), "status", "started_at", "ended_at")
        states = pipeline.execute()
    started = [utcparse(at.decode()).timestamp() for _, at, _ in states if at]
    ended = [utcparse(at.decode()).timestamp() for _, _, at in states if at]
    sample.finished = sum(1 for status, _, _ in states if status == b"finished")
    if ended and sample.finished == jobs:
        sample.seconds = max(ended) - began
        sample.steady_seconds = max(ended) - min(started)
    common.leftovers(setup.tag, settle=0.0)
    return sample


# -- latency ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Latency:
    runner: str
    seconds: list[float] = field(default_factory=list)
    missing: int = 0


def wait_ready(client: redis.Redis, count: int, processes: list[subprocess.Popen[bytes]]) -> bool:
    deadline = time.monotonic() + READY_BOUND
    while client.scard("rq:workers") < count:
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            return False
        time.sleep(0.02)
    time.sleep(0.5)
    return True


def start_latencies(
    client: redis.Redis, enqueue_one: Callable[[], Job], samples: int, spacing: float = SPACING
) -> tuple[list[float], int]:
    """One ``stamp`` job at a time: the job's own start time minus the time taken just before
    ``enqueue_one()``; then wait for it to finish (at most 2 s), then ``spacing``. Returns the
    seconds measured and how many samples went missing (no stamp within 5 s, or another job's)."""
    seconds: list[float] = []
    missing = 0
    for _ in range(samples):
        sent = time.time()
        job = enqueue_one()
        answer = client.blpop(["bench:started"], timeout=5)
        if answer is None:
            missing += 1
            continue
        job_id, started = answer[1].decode().split()
        if job_id != job.id:
            missing += 1
            continue
        seconds.append(float(started) - sent)
        deadline = time.monotonic() + 2
        while job.get_status(refresh=True) != "finished" and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(spacing)
    return seconds, missing


def run_latency(runner: str, setup: Setup, client: redis.Redis, samples: int) -> Latency:
    client.flushall()
    queue = Queue("default", connection=client)
    processes = [launch(argv, setup) for argv in commands(runner, setup, burst=False)]
    result = Latency(runner)
    try:
        if not wait_ready(client, 1, processes):
            result.missing = samples
            return result
        result.seconds, result.missing = start_latencies(
            client, lambda: queue.enqueue("jobs.stamp"), samples
        )
    finally:
        stop(processes, setup)
    return result


# -- crash ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Crash:
    runner: str
    jobs: int
    seconds: float | None = None
    """Launch until every job had ended (None: not within the bound)."""
    kills: dict[str, int] = field(default_factory=dict)
    in_flight_kills: int = 0
    """Kills of a worker that held a job (procman: its ``procman:wip`` list was not empty;
    RQ: a work-horse, or a worker whose work-horse was running)."""
    requeue_seconds: list[float] = field(default_factory=list)
    not_requeued: int = 0
    states: dict[str, int] = field(default_factory=dict)
    """End state of every job: finished, failed (raised), and whatever else (lost)."""
    lost: int = 0
    twice: int = 0
    never_ran: int = 0
    leftovers: list[str] = field(default_factory=list)


def enqueue_crash_jobs(client: redis.Redis, count: int) -> dict[str, bool]:
    """The crash jobs on ``high`` (3 in 4) and ``low``; job id -> whether it raises."""
    rng = random.Random(4)
    plan: dict[str, list[object]] = {"high": [], "low": []}
    fails: dict[str, bool] = {}
    for index in range(count):
        fail = index % 100 == 99
        job_id = f"crash-{index}"
        fails[job_id] = fail
        data = Queue.prepare_data(
            "jobs.work", args=(index, rng.uniform(0.002, 0.02), fail), job_id=job_id
        )
        plan["high" if rng.random() < 0.75 else "low"].append(data)
    with client.pipeline() as pipeline:
        for name, batch in plan.items():
            Queue(name, connection=client).enqueue_many(batch, pipeline=pipeline)  # type: ignore[arg-type]
        pipeline.execute()
    return fails


def ended_count(client: redis.Redis) -> int:
    total = 0
    for name in ("high", "low"):
        total += FinishedJobRegistry(name, connection=client).count
        total += FailedJobRegistry(name, connection=client).count
    return total


def worker_name(pid: int) -> str | None:
    """The procman worker name in a pool child's spec (its environment)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as file:
            entries = file.read().split(b"\0")
    except OSError:
        return None
    for entry in entries:
        if entry.startswith(b"PROCMAN_WORKER_SPEC="):
            return str(json.loads(entry.split(b"=", 1)[1])["name"])
    return None


def children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children()
    except psutil.Error:
        return []


class RequeueWatch:
    """The jobs a killed procman worker held, until its ``procman:wip`` list lets go of them."""

    def __init__(self, client: redis.Redis, result: Crash) -> None:
        self.client = client
        self.result = result
        self.pending: list[tuple[float, str, set[str]]] = []

    def held(self, name: str) -> set[str]:
        return {raw.decode() for raw in self.client.lrange(f"procman:wip:{name}", 0, -1)}

    def killed(self, name: str, at: float) -> None:
        held = self.held(name)
        if held:
            self.result.in_flight_kills += 1
            self.pending.append((at, name, held))

    def check(self) -> None:
        still = []
        for killed_at, name, held in self.pending:
            if held & self.held(name):
                still.append((killed_at, name, held))
            else:
                self.result.requeue_seconds.append(time.monotonic() - killed_at)
        self.pending = still

    def settle(self, bound: float) -> None:
        deadline = time.monotonic() + bound
        while self.pending and time.monotonic() < deadline:
            time.sleep(0.005)
            self.check()
        self.result.not_requeued = sum(len(held) for _, _, held in self.pending)


def kill_pool_child(pool: int, rng: random.Random, watch: RequeueWatch) -> None:
    targets = [c for c in children(pool) if grown(c)]
    if not targets:
        return
    target = rng.choice(targets)
    name = worker_name(target.pid)
    with contextlib.suppress(psutil.Error):
        target.kill()
        killed_at = time.monotonic()
        watch.result.kills["worker"] = watch.result.kills.get("worker", 0) + 1
        if name:
            watch.killed(name, killed_at)


def grown(process: psutil.Process) -> bool:
    """Past ``SPARE_YOUNG`` s of age. (Not psutil's ``create_time``: it adds the boot time in
    whole seconds, so an age from it can be off by up to a second.)"""
    try:
        with open(f"/proc/{process.pid}/stat") as file:
            fields = file.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime
    return time.clock_gettime(time.CLOCK_BOOTTIME) - started >= SPARE_YOUNG


def crash_procman(setup: Setup, client: redis.Redis, count: int) -> Crash:
    client.flushall()
    fails = enqueue_crash_jobs(client, count)
    argv = [setup.procman, "worker", "-c", str(CRASH_CONCURRENCY), "-q", "high:3,low:1"]
    began = time.monotonic()
    pool = launch(argv, setup)
    result = Crash("procman worker", count)
    watch = RequeueWatch(client, result)
    rng = random.Random(7)
    next_kill = began + 1.0  # let the workers start first
    next_check = began
    try:
        while time.monotonic() - began < CRASH_BOUND:
            now = time.monotonic()
            if now >= next_check:
                next_check = now + 0.05
                if ended_count(client) >= count:
                    result.seconds = now - began
                    break
            if now >= next_kill:
                next_kill = now + rng.uniform(*KILL_EVERY)
                kill_pool_child(pool.pid, rng, watch)
            watch.check()
            time.sleep(0.003)
        watch.settle(15.0)
        deadline = time.monotonic() + 10  # the last requeued jobs may still be running
        while ended_count(client) < count and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        result.leftovers = stop([pool], setup)
    tally(client, fails, result)
    return result


def crash_rq(setup: Setup, client: redis.Redis, count: int) -> Crash:
    client.flushall()
    fails = enqueue_crash_jobs(client, count)
    argv = setup.rq("worker", "--maintenance-interval", "10", "high", "low")
    began = time.monotonic()
    workers = [launch(argv, setup) for _ in range(CRASH_CONCURRENCY)]
    result = Crash("rq worker", count)
    rng = random.Random(7)
    next_kill = began + 1.0
    last_kill = began
    next_check = began
    restarted = 0
    try:
        while time.monotonic() - began < CRASH_BOUND:
            now = time.monotonic()
            for index, worker in enumerate(workers):
                if worker.poll() is not None:  # the process manager starts it again
                    workers[index] = launch(argv, setup)
                    restarted += 1
            if now >= next_check:
                next_check = now + 0.05
                queued = sum(Queue(n, connection=client).count for n in ("high", "low"))
                if ended_count(client) >= count or queued == 0:
                    result.seconds = now - began if ended_count(client) >= count else None
                    break
            if now >= next_kill:
                next_kill = now + rng.uniform(*KILL_EVERY)
                horses = {w.pid: children(w.pid) for w in workers if w.poll() is None}
                grown_up = {w.pid for w in workers if with_process(w.pid, grown)}
                targets = [("worker", pid) for pid in horses if pid in grown_up]
                targets += [("work-horse", c.pid) for found in horses.values() for c in found]
                if targets:
                    kind, pid = rng.choice(targets)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                        result.kills[kind] = result.kills.get(kind, 0) + 1
                        result.in_flight_kills += kind == "work-horse" or bool(horses.get(pid))
                        last_kill = now
            time.sleep(0.003)
        # no more kills: let RQ finish what it can and run its own clean-up
        while time.monotonic() < last_kill + RQ_GRACE:
            for index, worker in enumerate(workers):
                if worker.poll() is not None:
                    workers[index] = launch(argv, setup)
                    restarted += 1
            if ended_count(client) >= count:
                break
            time.sleep(0.1)
    finally:
        result.leftovers = stop(workers, setup)
    result.kills["restarts"] = restarted
    tally(client, fails, result)
    return result


def with_process(pid: int, check: Callable[[psutil.Process], bool]) -> bool:
    try:
        return check(psutil.Process(pid))
    except psutil.Error:
        return False


def tally(client: redis.Redis, fails: dict[str, bool], result: Crash) -> None:
    """Read every job's end state and side effects; count the lost and the doubled."""
    ids = list(fails)
    with client.pipeline(transaction=False) as pipeline:
        for job_id in ids:
            pipeline.hget(Job.key_for(job_id), "status")
        statuses = pipeline.execute()
    in_queue = {
        raw.decode() for name in ("high", "low") for raw in client.lrange(f"rq:queue:{name}", 0, -1)
    }
    failed_ids: set[str] = set()
    for name in ("high", "low"):
        failed_ids |= set(FailedJobRegistry(name, connection=client).get_job_ids())
    effects = {int(k): int(v) for k, v in client.hgetall("bench:effects").items()}
    for index, (job_id, raw) in enumerate(zip(ids, statuses, strict=True)):
        status = raw.decode() if raw else "missing"
        expected = "failed" if fails[job_id] else "finished"
        ran = effects.get(index, 0)
        if status == expected and (expected == "finished" or job_id in failed_ids):
            state = status if not fails[job_id] else "failed (raised)"
        elif status == "failed":
            state = "failed, not by the job (killed)"
        elif status == "queued" and job_id not in in_queue:
            state = "queued but in no queue (popped, lost)"
        else:
            state = status if status != "queued" else "still queued"
        result.states[state] = result.states.get(state, 0) + 1
        if state not in ("finished", "failed (raised)"):
            result.lost += 1
        if ran >= 2:
            result.twice += 1
        if ran == 0 and state in ("finished", "failed (raised)"):
            result.never_ran += 1


# -- the benchmark ----------------------------------------------------------------------------


@dataclass(slots=True)
class Results:
    throughput: list[Throughput] = field(default_factory=list)
    latency: list[Latency] = field(default_factory=list)
    crash: list[Crash] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    skipped: str | None = None


def prepare(scratch: Path, url: str) -> Setup:
    app = scratch / "worker-app"
    app.mkdir(parents=True, exist_ok=True)
    (app / "jobs.py").write_text(JOBS)
    (app / "queues.yml").write_text(QUEUES_YML)
    (app / "Procfile").write_text("worker: procman worker\n")
    procman = os.environ.get("PROCMAN_BENCH_BIN", str(common.BIN / "procman"))
    return Setup(app=app, url=url, tag=common.new_tag(), procman=procman)


def run(repeat: int, scratch: Path, quick: bool = False) -> Results:
    results = Results()
    if shutil.which("redis-server") is None:
        results.skipped = "redis-server not on PATH"
        return results
    import rq

    results.versions = {"rq": rq.__version__, "redis-py": redis.__version__}
    with redis_server(scratch / "redis") as url:
        setup = prepare(scratch, url)
        client = redis.Redis.from_url(url)
        results.versions["redis-server"] = str(client.info("server")["redis_version"])
        for round_number in range(repeat):
            for runner in THROUGHPUT_RUNNERS:
                sample = run_throughput(runner, setup, client, jobs_for(runner, quick))
                results.throughput.append(sample)
                progress(f"round {round_number + 1}: {describe_throughput(sample)}")
        samples = 50 if quick else LATENCY_SAMPLES
        for round_number in range(repeat):
            for runner in LATENCY_RUNNERS:
                latency = run_latency(runner, setup, client, samples)
                results.latency.append(latency)
                progress(f"round {round_number + 1}: {describe_latency(latency)}")
        count = 500 if quick else CRASH_JOBS
        for crash in (crash_procman(setup, client, count), crash_rq(setup, client, count)):
            results.crash.append(crash)
            progress(describe_crash(crash))
        client.flushall()
    return results


def progress(text: str) -> None:
    print(f"  worker {text}", file=sys.stderr, flush=True)


def describe_throughput(sample: Throughput) -> str:
    rate = f"{sample.jobs / sample.seconds:,.0f} jobs/s" if sample.seconds else "—"
    return (
        f"{sample.runner}: {sample.jobs:,} jobs, {rate}, {sample.commands_per_job:.1f} "
        f"commands/job, {sample.finished:,} finished{'' if sample.exited else ', did not exit'}"
    )


def describe_latency(sample: Latency) -> str:
    if not sample.seconds:
        return f"{sample.runner}: no sample"
    p50 = 1000 * common.percentile(sample.seconds, 0.5)
    p99 = 1000 * common.percentile(sample.seconds, 0.99)
    return f"{sample.runner}: p50 {p50:.2f} ms, p99 {p99:.2f} ms, {sample.missing} missing"


def describe_crash(sample: Crash) -> str:
    requeue = (
        f", requeued after p50 {1000 * common.percentile(sample.requeue_seconds, 0.5):.0f} ms "
        f"/ max {1000 * max(sample.requeue_seconds):.0f} ms"
        if sample.requeue_seconds
        else ""
    )
    took = f"{sample.seconds:.1f} s" if sample.seconds else "not all ended"
    return (
        f"crash {sample.runner}: {took}, kills {sample.kills}, {sample.in_flight_kills} with a "
        f"job in flight{requeue}, {sample.not_requeued} not requeued; states {sample.states}; "
        f"lost {sample.lost}, run twice {sample.twice}"
    )


if __name__ == "__main__":
    os.environ.pop("PYTHONUNBUFFERED", None)
    directory = Path(os.environ.get("TMPDIR", "/tmp")) / f"procman-bench-{os.getpid()}"
    try:
        run(1, directory, quick="--quick" in sys.argv)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
