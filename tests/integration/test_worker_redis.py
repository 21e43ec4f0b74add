"""End-to-end: ``procman worker`` against Redis servers of its own (a big keyspace, a restart, an
outage, ``CONFIG`` disabled) and pools cut off at a stop."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.registry import StartedJobRegistry
from rq.worker import Worker

from procman.queues.enqueueing import enqueue, use_connection
from tests.conftest import PROCMAN, App, LiveOutput, free_port

pytestmark = pytest.mark.timeout(90)

JOBS = """
import time
from pathlib import Path

def nap(seconds, mark=None):
    if mark:
        with open(mark, "a") as f:
            f.write("x")
    time.sleep(seconds)

def add(a, b):
    return a + b
"""


class RedisServer:
    """A redis-server of the test's own on a free port, which the test can stop and start again
    on the same port (nothing saved: a restart empties it, as a restarted cache does)."""

    def __init__(self, directory: Path, *args: str) -> None:
        binary = shutil.which("redis-server") or shutil.which(
            "redis-server", path="/usr/sbin:/usr/bin"
        )
        assert binary is not None, "redis-server is not installed: run scripts/test"
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        directory.mkdir(parents=True, exist_ok=True)
        self.argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no", "--dir", str(directory), *args]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert self.process.poll() is None, "redis-server exited"
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[type[RedisServer]]:
    """Make RedisServers (``private_redis(directory, *args)``); each is stopped afterwards."""
    made: list[RedisServer] = []

    class Made(RedisServer):
        def __init__(self, directory: Path, *args: str) -> None:
            super().__init__(directory, *args)
            made.append(self)

    yield Made
    for server in made:
        server.stop()


@pytest.fixture
def worker_app(app: App, monkeypatch: pytest.MonkeyPatch) -> App:
    app.write("jobs.py", JOBS)
    app.procfile("worker: procman worker\n")
    monkeypatch.syspath_prepend(str(app.root))
    return app


def start_pool(app: App, url: str, *args: str) -> subprocess.Popen[bytes]:
    """``procman worker`` in its own process group, stdout and stderr in one stream."""
    process = subprocess.Popen(
        [PROCMAN, "worker", *args],
        cwd=app.root,
        env={**os.environ, "REDIS_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        process_group=0,
    )
    app.started.append(process)
    return process


def stop_pool(process: subprocess.Popen[bytes], output: LiveOutput) -> str:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    return output.finish()[1]


def wait_until(what: str, check: object, timeout: float = 20) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.05)


def status(connection: redis.Redis, job_id: str) -> JobStatus | None:
    return Job.fetch(job_id, connection=connection).get_status()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_big_keyspace_neither_slows_recovery_nor_runs_a_long_job_twice(
    worker_app: App, private_redis: type[RedisServer], tmp_path: Path, live: type[LiveOutput]
) -> None:
    """Issue 11.1: with 5 M unrelated keys, a keyspace SCAN took longer than a worker's
    heartbeat lives, and the pool put its own worker's running job back on the queue. Recovery
    now reads procman's registry: no SCAN at all, and the long job runs exactly once."""
    server = private_redis(tmp_path / "redis", "--enable-debug-command", "local")
    server.start()
    connection = redis.Redis.from_url(server.url, socket_timeout=60)
    connection.execute_command("DEBUG", "POPULATE", 5_000_000, "unrelated")  # about 10 s
    worker_app.write("queues.yml", "concurrency: 2\ntimeout: 120\n")
    marks = tmp_path / "runs"
    job = Queue("default", connection=connection).enqueue("jobs.nap", 16, str(marks))
    connection.config_resetstat()
    pool = start_pool(worker_app, server.url)
    output = live(pool)
    try:
        wait_until("the job finished", lambda: status(connection, job.id) == JobStatus.FINISHED, 60)
        time.sleep(1)  # a second run requeued late would have started by now (2 workers)
        assert marks.read_text() == "x"
        assert Queue("default", connection=connection).count == 0
        assert "cmdstat_scan" not in connection.info("commandstats")
        assert connection.hexists("procman:pools", f"{os.uname().nodename}.{pool.pid}")
    finally:
        text = stop_pool(pool, output)
    assert "put 1 job(s) back" not in text, text


def test_a_job_cut_off_at_stop_is_never_abandoned_however_late_the_next_start(
    worker_app: App, redis_url: str, tmp_path: Path, live: type[LiveOutput]
) -> None:
    """Issue 10.1: a pool killed mid-job (``procman start``'s SIGKILL after ``-t``), the next
    one started minutes later: RQ's started-registry clean-up had failed the job as
    AbandonedJobError first. Now its entry does not expire, the next pool puts the job back at
    once, and ``procman jobs`` stops listing the dead worker before its heartbeat expires."""
    worker_app.write("queues.yml", "concurrency: 1\ntimeout: 60\n")
    connection = redis.Redis.from_url(redis_url)
    queue = Queue("default", connection=connection)
    marks = tmp_path / "runs"
    job = queue.enqueue("jobs.nap", 3, str(marks))
    first = start_pool(worker_app, redis_url)
    first_output = live(first)
    wait_until("the job started", lambda: status(connection, job.id) == JobStatus.STARTED)
    # The job is marked started as it is taken, a moment before it runs: wait until it runs.
    wait_until("the job began its work", lambda: marks.exists() and marks.read_text() == "x")
    (dead,) = Worker.all(connection=connection)
    stop_pool(first, first_output)  # the pool and its worker, no clean-up: as after -t

    # RQ's clean-up, as any worker's maintenance (or `rq info`) would run it an hour later
    registry = StartedJobRegistry("default", connection=connection)
    registry.cleanup(timestamp=time.time() + 3600)
    assert status(connection, job.id) == JobStatus.STARTED  # not failed as abandoned
    assert connection.exists(f"procman:alive:{dead.name}")  # its heartbeat has not expired

    second = start_pool(worker_app, redis_url)
    second_output = live(second)
    try:
        second_output.wait_for(f"worker {dead.name} is gone: put 1 job(s) back on their queues")
        names = [w.name for w in Worker.all(connection=connection)]
        assert dead.name not in names
        assert connection.exists(f"procman:alive:{dead.name}") == 0
        listed = worker_app.run("jobs", "--json", env={"REDIS_URL": redis_url})
        assert dead.name not in listed.stdout, listed.stdout + listed.stderr
        wait_until("the job ran again", lambda: status(connection, job.id) == JobStatus.FINISHED)
        assert marks.read_text() == "xx"  # cut off once, then run to the end
        assert registry.get_job_ids() == []
    finally:
        stop_pool(second, second_output)


def test_workers_wait_for_redis_without_tracebacks(
    worker_app: App, private_redis: type[RedisServer], tmp_path: Path, live: type[LiveOutput]
) -> None:
    """Issue 11.2: while Redis is down a worker (even one started then: RQ's Worker.__init__
    talks to Redis) waits with back-off: one line when Redis goes, one when it is back."""
    server = private_redis(tmp_path / "redis")
    server.start()
    worker_app.write("queues.yml", "concurrency: 2\nqueues: [a, b]\n")
    pool = start_pool(worker_app, server.url)
    output = live(pool)
    try:
        output.wait_for("serving a, b")
        connection = redis.Redis.from_url(server.url)
        wait_until("both workers idle", lambda: len(Worker.all(connection=connection)) == 2)
        server.stop()
        output.wait_for("lost Redis")
        children = psutil.Process(pool.pid).children()
        children[0].kill()  # its replacement starts while Redis is down
        wait_until(
            "a replacement worker",
            lambda: (
                len([c for c in psutil.Process(pool.pid).children() if c.is_running()]) == 2
                and children[0].pid not in [c.pid for c in psutil.Process(pool.pid).children()]
            ),
        )
        time.sleep(4)  # the old code restarted a worker every second, a traceback each time
        server.start()
        wait_until("the workers are back", lambda: output.text.count("is back") >= 3, 40)
        job = Queue("b", connection=connection).enqueue("jobs.add", 2, 3)
        wait_until("the job ran", lambda: status(connection, job.id) == JobStatus.FINISHED)
    finally:
        text = stop_pool(pool, output)
    assert "Traceback" not in text, text
    assert "could not connect to Redis" not in text, text
    workers = set(re.findall(r"Worker (\S+): lost Redis at ", text))
    assert len(workers) >= 3, text  # the two that ran, and at least one started during it
    for name in workers:
        assert text.count(f"Worker {name}: lost Redis at ") == 1, text
        assert text.count(f"Worker {name}: Redis at {server.url} is back") <= 1, text
    # no crash loop: the one killed, and at most one caught starting (it exits with one line)
    assert text.count("; starting another") <= 2, text


def test_keyspace_notifications_come_back_after_a_redis_restart(
    worker_app: App, private_redis: type[RedisServer], tmp_path: Path, live: type[LiveOutput]
) -> None:
    """Issue 11.3: a restarted Redis has forgotten ``notify-keyspace-events``; the workers set
    it again after reconnecting (they had only subscribed again, and then waited 1 s a job)."""
    server = private_redis(tmp_path / "redis")
    server.start()
    connection = redis.Redis.from_url(server.url)
    worker_app.write("queues.yml", "concurrency: 1\nqueues: [a, b]\n")
    pool = start_pool(worker_app, server.url)
    output = live(pool)

    def notifying() -> bool:
        events = str(connection.config_get("notify-keyspace-events")["notify-keyspace-events"])
        return "K" in events and "l" in events

    def subscribed() -> bool:
        counts = dict(connection.pubsub_numsub("__keyspace@0__:rq:queue:a"))
        return bool(counts.get(b"__keyspace@0__:rq:queue:a"))

    try:
        wait_until("list events on", notifying)
        wait_until("subscribed", subscribed)
        server.stop()
        time.sleep(1.5)
        server.start()  # with the setting off again (as redis-server starts)
        wait_until("subscribed again", subscribed, 40)
        wait_until("list events on again", notifying, 10)
        job = Queue("b", connection=connection).enqueue("jobs.add", 1, 1)
        wait_until("the job ran", lambda: status(connection, job.id) == JobStatus.FINISHED)
    finally:
        text = stop_pool(pool, output)
    assert "Traceback" not in text, text


def test_without_config_an_idle_pool_blocks_instead_of_polling(
    worker_app: App,
    private_redis: type[RedisServer],
    tmp_path: Path,
    live: type[LiveOutput],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 11.4: where CONFIG is disabled (managed Redis) idle workers with several queues
    polled: ~390 commands/s for a pool of 2. Now they block on their queues' wake-up lists,
    which procman's enqueue pushes to; a job enqueued by RQ directly still runs."""
    server = private_redis(tmp_path / "redis", "--rename-command", "CONFIG", "")
    server.start()
    connection = redis.Redis.from_url(server.url)
    worker_app.write("queues.yml", "concurrency: 2\nqueues: [a, b]\n")
    pool = start_pool(worker_app, server.url)
    output = live(pool)
    try:
        wait_until("both workers idle", lambda: len(Worker.all(connection=connection)) == 2)
        time.sleep(1)
        before = _commands(connection)
        time.sleep(3)
        idle = _commands(connection) - before - 1  # minus one INFO
        assert idle < 150, f"{idle} commands in 3 s"  # polling, it was over 1,000
        use_connection(connection)
        try:
            ours = enqueue("jobs.add", 1, 2, queue="b")
        finally:
            use_connection(None)
        wait_until("procman's enqueue ran", lambda: status(connection, ours.id) == "finished")
        theirs = Queue("b", connection=connection).enqueue("jobs.add", 2, 2)
        wait_until("RQ's enqueue ran", lambda: status(connection, theirs.id) == "finished")
    finally:
        text = stop_pool(pool, output)
    assert "Traceback" not in text, text


def _commands(connection: redis.Redis) -> int:
    return sum(int(entry["calls"]) for entry in connection.info("commandstats").values())


def test_keyspace_notifications_false_leaves_the_redis_setting_alone(
    worker_app: App, private_redis: type[RedisServer], tmp_path: Path, live: type[LiveOutput]
) -> None:
    """Issue 13.4: ``CONFIG SET notify-keyspace-events`` changes a setting of the whole Redis;
    with ``keyspace_notifications: false`` the workers never send it (nor subscribe) and wait on
    the wake-up lists, and jobs still run (procman's enqueue at once, RQ's within a second)."""
    server = private_redis(tmp_path / "redis")
    server.start()
    connection = redis.Redis.from_url(server.url)
    connection.config_set("notify-keyspace-events", "Eg")  # the user's own setting
    connection.config_resetstat()  # from here, every CONFIG SET is the workers'
    worker_app.write(
        "queues.yml", "concurrency: 2\nqueues: [a, b]\nkeyspace_notifications: false\n"
    )
    pool = start_pool(worker_app, server.url)
    output = live(pool)
    try:
        wait_until("both workers idle", lambda: len(Worker.all(connection=connection)) == 2)
        use_connection(connection)
        try:
            ours = enqueue("jobs.add", 1, 2, queue="b")
        finally:
            use_connection(None)
        wait_until("procman's enqueue ran", lambda: status(connection, ours.id) == "finished")
        theirs = Queue("a", connection=connection).enqueue("jobs.add", 2, 2)
        wait_until("RQ's enqueue ran", lambda: status(connection, theirs.id) == "finished")
        setting = connection.config_get("notify-keyspace-events")["notify-keyspace-events"]
        assert sorted(setting) == sorted("Eg")
        stats = connection.info("commandstats")
        assert "cmdstat_config|set" not in stats, stats
        assert connection.pubsub_numpat() == 0
        assert not [c for c in connection.pubsub_channels() if b"__keyspace@" in c]
    finally:
        text = stop_pool(pool, output)
    assert "Traceback" not in text, text
