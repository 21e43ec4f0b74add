"""``procman worker``: a pool of worker processes, supervised, plus the pool's own duties.

The pool process runs no job. It starts ``concurrency`` worker processes (replacing any that
dies), keeps them marked alive in Redis, kills one whose job outlives its timeout (recording the
job failed), hands every job of a dead worker back to its queue, moves due scheduled jobs
(``enqueue_in``/``enqueue_at``, retries) to their queues, and enqueues the ``schedule:`` entries
once per tick however many pools share the Redis.

Signals: the first SIGTERM/SIGINT/SIGHUP is a warm shutdown (no new jobs; running jobs get up to
the job timeout to finish); a second one, or the end of that wait, kills the workers at once and
puts their jobs back at the front of their queues.
"""

from __future__ import annotations

import atexit
import gc
import math
import os
import select
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

import redis
from rq.queue import Queue
from rq.scheduler import RQScheduler

from procman.errors import spell_options
from procman.exitcodes import status_for_signal
from procman.queues import worker as worker_module
from procman.queues.browse import stop_requested
from procman.queues.config import ALL_QUEUES, QueueConfig, ScheduledJob
from procman.queues.connection import is_full
from procman.queues.recovery import (
    MAX_WORKER_DEATHS,
    count_worker_death,
    fail_in_progress,
    find_dead_workers,
    forget_gone_pools,
    mark_alive,
    mark_gone,
    pool_gone,
    recover_worker,
    requeue_in_progress,
    still_running,
    this_pool,
    time_out_in_progress,
    worker_died,
)
from procman.queues.redis_url import RedisUrl
from procman.queues.rq_private import all_queue_names
from procman.queues.worker import REDIS_FULL_EXIT, SPEC_VARIABLE, WorkerSpec
from procman.supervisor.signals import STOP_SIGNALS, SignalPipe

TICK = 0.25
ALIVE_EVERY = 2.0
REAP_EVERY = 5.0
REAP_BUDGET = 0.05
"""Seconds of a turn the pool spends at most on the dead workers of other pools; the rest wait
for the next turn, so timeouts and signals are never kept waiting by recovery."""
SCHEDULE_EVERY = 1.0
TIMEOUT_GRACE = 1.0
"""After a job's timeout, SIGALRM had its chance to fail it cleanly; this long after, the pool
kills the worker (a job blocking signals or stuck in C code)."""
CRON_CATCH_UP = 60.0
CRON_KEY_SECONDS = 24 * 3600
REDIS_BACKOFF_MAX = 30.0
REDIS_UNUSABLE = (redis.ConnectionError, redis.TimeoutError, redis.OutOfMemoryError)
"""Redis away, or refusing writes at its maxmemory: the pool's duties try again later."""
"""While Redis is away the pool tries its duties again after 1, 2, 4 … s, at most this long."""
STOP_MARGIN = 0.5
"""Under ``procman start``, a warm stop ends this long before start's ``-t`` runs out (and its
SIGKILL comes): the pool stops its workers and puts their jobs back on their queues itself."""
IDLE_STOP_WAIT = 5.0
"""How long a warm stop waits at least: enough for idle workers to exit, and for one that has just
fetched a job to say so (from then on the job's own timeout counts)."""
FETCH_SETTLE = 1.0
"""How long a stop waits at most for workers in the middle of taking a job to say whether they
got one (they say so within moments; the bound is for one stuck there)."""
RESPAWN_FLOOR = 1.0
"""A worker that dies within this many seconds of starting is replaced only after this long, so
a broken app cannot make the pool spin."""


@dataclass(frozen=True, slots=True)
class PoolOptions:
    config: QueueConfig
    redis_url: RedisUrl
    queues: tuple[tuple[str, int | None], ...]
    concurrency: int
    burst: bool
    app_dir: Path
    stop_cut: float | None = None
    """Under ``procman start``: its ``-t`` (``PROCMAN_STOP_TIMEOUT``), the longest a warm stop
    can take before start kills the whole process group."""
    verbose: bool = False
    """Everything RQ logs (``-v``, ``PROCMAN_VERBOSE=1``); else one line per event that matters."""
    timestamps: bool = True
    """A time on each line: not under ``procman start``, whose log stream has one already."""


class ChildProcess(Protocol):
    """What the pool uses of a worker process: ``subprocess.Popen``'s names, met by ``Forked``."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


class Forked:
    """A forked worker, waited for and signalled like a ``subprocess.Popen`` (``returncode`` is
    the exit code, or minus the signal that ended it; a reaped pid is never signalled)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self._reap(os.WNOHANG)
        return self.returncode

    def wait(self) -> int:
        while self.returncode is None:
            self._reap(0)
        return self.returncode

    def _reap(self, flags: int) -> None:
        try:
            pid, status = os.waitpid(self.pid, flags)
        except ChildProcessError:  # reaped elsewhere: its status is lost (as Popen says: 0)
            self.returncode = 0
            return
        if pid == self.pid:
            self.returncode = os.waitstatus_to_exitcode(status)

    def send_signal(self, sig: int) -> None:
        if self.poll() is not None:
            return
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


@dataclass(eq=False, slots=True)
class WorkerProcess:
    name: str
    process: ChildProcess
    status_fd: int
    started_at: float
    job_id: str | None = None
    timeout: float | None = None
    deadline: float | None = None
    buffer: bytes = b""
    status_open: bool = True
    fetching: bool = False
    """Between its ``fetch`` and ``start`` (or ``idle``) lines: it may be taking a job."""


@dataclass(slots=True)
class Timers:
    alive: float = 0.0
    reap: float = 0.0
    schedule: float = 0.0
    cron_seen: dict[str, float] = field(default_factory=dict)


class Pool:
    def __init__(self, options: PoolOptions, connection: redis.Redis) -> None:
        self.options = options
        self.connection = connection
        self._selector = selectors.DefaultSelector()
        self._signals = SignalPipe()
        self._workers: dict[int, WorkerProcess] = {}
        self._serial = 0
        self._host = socket.gethostname()
        self._place = this_pool()
        self._dead: list[str] = []
        """Workers of other pools found dead, to recover a few per turn."""
        self._stopping = False
        self._cold = False
        self._stop_began: float | None = None
        self._exit_status = 0
        self._timers = Timers()
        self._orphaned: set[str] = set()
        self._died_running: dict[str, tuple[str, str]] = {}
        """Worker name -> (the job it was running when it died, how it died), to be counted."""
        self._redis_backoff = 1.0
        self._full_backoff = 1.0
        """Seconds before starting another worker after one stopped on a full Redis; doubled at
        each such stop, back to 1 when a worker gets to end a job."""
        self._respawns: list[float] = []
        """When to start a replacement for each worker that died (later for one that died young,
        so a broken app cannot make the pool spin; the loop never sleeps for it)."""
        self._all_queues = options.queues == ((ALL_QUEUES, None),)
        """``*``: the queues are those RQ lists in Redis, looked up again as they change."""
        self._scheduled_queues = [] if self._all_queues else self._queue_names()
        self._scheduler = self._new_scheduler(self._scheduled_queues)

    def _new_scheduler(self, queue_names: list[str]) -> RQScheduler:
        return RQScheduler(
            queue_names,
            connection=self.connection,
            logging_level="INFO" if self.options.verbose else "WARNING",
            log_format="%(asctime)s %(message)s" if self.options.timestamps else "%(message)s",
        )

    def _queue_names(self) -> list[str]:
        """The queues served: those given, or with ``*`` every queue RQ lists in Redis."""
        if self._all_queues:
            return all_queue_names(self.connection)
        return [name for name, _ in self.options.queues]

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> int:
        self._signals.open()
        self._selector.register(self._signals.reader, selectors.EVENT_READ, None)
        try:
            count = self.options.concurrency
            redis = spell_options(self.options.redis_url.describe())
            for warning in self.options.config.warnings:
                self._say(f"warning: {warning}")
            self._say(
                f"serving {', '.join(_describe(q) for q in self.options.queues)} with {count} "
                f"worker process{'es' if count != 1 else ''} on {redis}"
            )
            self._recover_before_start()
            for _ in range(self.options.concurrency):
                self._spawn()
            while self._workers or (self._respawns and not self._stopping):
                self._turn()
        finally:
            self._signals.close()
            self._leave_registry()
            self._scheduler.release_locks()  # type: ignore[no-untyped-call]
            for worker in list(self._workers.values()):
                worker.process.kill()
            self._selector.close()
        return self._exit_status

    def _turn(self) -> None:
        ready = self._selector.select(TICK)
        for key, _ in ready:  # what the workers said first: a stop's plan counts their jobs
            if key.data is not None:
                self._read_status(key.data)
        if any(key.data is None for key, _ in ready):
            self._on_signals()
        self._reap_children()
        now = time.monotonic()
        due = [at for at in self._respawns if at <= now]
        if due and not self._stopping:
            self._respawns = [at for at in self._respawns if at > now]
            for _ in due:
                self._spawn()
        self._enforce_timeouts(now)
        self._duties(now)
        if self._stopping and not self._cold and now >= self._warm_stop_deadline():
            if self._cut_short():
                self._say(
                    f"procman start's -t {self.options.stop_cut:g} is nearly up: stopping the "
                    "workers now"
                )
            else:
                self._say("jobs did not finish within the timeout: stopping the workers now")
            self._go_cold()

    def _recover_before_start(self) -> None:
        """Before the first worker runs: register, and give back the jobs of workers found dead
        (a previous pool on this machine, stopped by SIGKILL however long ago), so they go back
        on their queues and leave ``procman jobs`` at once rather than after their heartbeat
        expires. Names under this pool's own id are a previous process's with the same pid."""
        try:
            mark_alive(self.connection, [], self._place)
            self._dead = find_dead_workers(self.connection, self._place, own_too=True)
            self._recover_dead(deadline=None)
        except REDIS_UNUSABLE:
            pass  # the loop's duties try again, and say so

    def _leave_registry(self) -> None:
        if self._workers or self._orphaned:
            return  # their names stay registered: another pool judges them by heartbeat
        try:
            pool_gone(self.connection, self._place)
        except redis.RedisError:
            pass

    # -- workers -----------------------------------------------------------------------------

    def _spawn(self) -> None:
        self._serial += 1
        name = f"{self._host}.{os.getpid()}.{self._serial}"
        try:
            mark_alive(self.connection, [name], self._place)
        except REDIS_UNUSABLE:
            pass  # marked on the next round of duties; the worker itself waits for Redis
        read_fd, write_fd = os.pipe()
        config = self.options.config
        spec = WorkerSpec(
            name=name,
            redis_url=self.options.redis_url.url,
            queues=self.options.queues,
            timeout=config.timeout,
            retry=config.retry,
            max_jobs=config.max_jobs,
            max_memory=config.max_memory,
            keyspace_notifications=config.keyspace_notifications,
            burst=self.options.burst,
            status_fd=write_fd,
            app_dir=str(self.options.app_dir),
            verbose=self.options.verbose,
            timestamps=self.options.timestamps,
        )
        try:
            process = self._start_worker(spec, read_fd)
        finally:
            os.close(write_fd)
        os.set_blocking(read_fd, False)
        worker = WorkerProcess(name, process, read_fd, time.monotonic())
        self._workers[process.pid] = worker
        self._selector.register(read_fd, selectors.EVENT_READ, worker)

    def _start_worker(self, spec: WorkerSpec, read_fd: int) -> ChildProcess:
        """Fork the worker (the worker module is imported here already, so a worker costs a fork,
        not an interpreter start). Forking is only safe with this thread alone: should another
        thread ever run in the pool, the worker is started as a fresh interpreter instead."""
        if threading.active_count() > 1:
            return subprocess.Popen(
                [sys.executable, "-m", "procman.queues.worker"],
                env={**os.environ, SPEC_VARIABLE: spec.to_json()},
                cwd=self.options.app_dir,
                pass_fds=(spec.status_fd,),
                # the design before forking, kept as a guard only: no thread runs in the pool
                # (RQScheduler.acquire_locks without auto_start starts none), and preexec_fn is
                # as unsafe with threads here as it was there
                preexec_fn=_die_with_parent,  # noqa: PLW1509
            )
        for stream in (sys.stdout, sys.stderr):  # or the child writes their buffers again
            stream.flush()
        pool_pid = os.getpid()
        # No signal reaches the child while it still has the pool's handlers (they would write
        # to the pool's wakeup socket); the pool gets its own once the fork is done.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        try:
            pid = os.fork()
            if pid == 0:
                _run_forked_worker(self, spec, read_fd, pool_pid, mask)  # never returns
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        return Forked(pid)

    def _read_status(self, worker: WorkerProcess) -> None:
        if not worker.status_open:
            return
        try:
            data = os.read(worker.status_fd, 4096)
        except BlockingIOError:
            return
        if not data:
            self._close_status(worker)
            return
        worker.buffer += data
        *lines, worker.buffer = worker.buffer.split(b"\n")
        for line in lines:
            parts = line.decode().split()
            if parts == ["fetch"]:
                worker.fetching = True
            elif parts == ["idle"]:
                worker.fetching = False
            elif parts[:1] == ["start"] and len(parts) == 3:
                worker.fetching = False
                worker.job_id = parts[1]
                timeout = float(parts[2])
                worker.timeout = timeout
                worker.deadline = (
                    time.monotonic() + timeout + TIMEOUT_GRACE if timeout > 0 else None
                )
            elif parts == ["end"]:
                self._full_backoff = 1.0
                worker.job_id = None
                worker.timeout = None
                worker.deadline = None

    def _reap_children(self) -> None:
        for pid, worker in list(self._workers.items()):
            returncode = worker.process.poll()
            if returncode is None:
                continue
            del self._workers[pid]
            self._read_status(worker)
            self._close_status(worker)
            if worker.job_id is not None and not self._cold:  # not one the pool killed itself
                self._died_running[worker.name] = (worker.job_id, _how_it_ended(returncode))
            self._orphaned.add(worker.name)
            self._requeue_orphaned()
            self._after_exit(worker, returncode)

    def _requeue_orphaned(self) -> None:
        """Give the jobs of this pool's dead workers back; while Redis is away, try again later
        (the names stay listed, and no other pool takes them: their alive keys expire first)."""
        for name in list(self._orphaned):
            try:
                self._count_death(name)
                requeued = requeue_in_progress(self.connection, name)
                mark_gone(self.connection, name)
                worker_died(self.connection, name)
            except REDIS_UNUSABLE:
                return
            self._orphaned.discard(name)
            if requeued:
                how = "stopped" if self._cold else "died"
                self._say(f"{name} {how}: put {len(requeued)} job(s) back on their queues")

    def _count_death(self, name: str) -> None:
        """A worker that died running a job: after ``MAX_WORKER_DEATHS`` deaths the job is
        failed rather than run again, so the jobs behind it run."""
        died = self._died_running.pop(name, None)
        if died is None:
            return
        job_id, how = died
        if not still_running(self.connection, job_id):
            return  # it finished before its worker died (before the worker said "end")
        deaths = count_worker_death(self.connection, job_id)
        if deaths < MAX_WORKER_DEATHS:
            return
        fail_in_progress(
            self.connection,
            name,
            job_id,
            f"WorkerDied: its worker process died {deaths} times while running it (last: {how}); "
            "procman stopped running it again",
        )
        self._say(
            f"job {job_id}: its worker process died {deaths} times while running it "
            f"(last: {how}): moved to the failed jobs"
        )

    def _close_status(self, worker: WorkerProcess) -> None:
        if worker.status_open:
            worker.status_open = False
            self._selector.unregister(worker.status_fd)
            os.close(worker.status_fd)

    def _after_exit(self, worker: WorkerProcess, returncode: int) -> None:
        if self._stopping:
            return
        if self.options.burst and returncode == 0 and not self._queues_have_jobs():
            return  # done: the queues are empty (a worker recycled by max_jobs is replaced)
        if returncode == REDIS_FULL_EXIT:
            wait = self._full_backoff
            self._say(
                f"{worker.name} stopped: Redis is full (maxmemory reached); starting another "
                f"in {wait:g}s"
            )
            self._respawns.append(time.monotonic() + wait)
            self._full_backoff = min(wait * 2, REDIS_BACKOFF_MAX)
            return
        reason = _how_it_ended(returncode)
        if returncode != 0 or time.monotonic() - worker.started_at < 1:
            self._say(f"{worker.name} {reason}; starting another")
        young = time.monotonic() - worker.started_at < RESPAWN_FLOOR
        self._respawns.append(time.monotonic() + (RESPAWN_FLOOR if young else 0.0))

    def _full_message(self) -> str:
        return (
            f"Redis at {self.options.redis_url.redacted} is full (maxmemory reached): it refuses "
            "writes until it has room (raise its maxmemory, or free memory in it)"
        )

    def _queues_have_jobs(self) -> bool:
        """Whether a job waits in one of the pool's queues (when Redis cannot say: yes, and the
        replacement worker waits for it)."""
        try:
            with self.connection.pipeline(transaction=False) as pipeline:
                for name in self._queue_names():
                    pipeline.llen(Queue(name, connection=self.connection).key)
                return any(pipeline.execute())
        except REDIS_UNUSABLE:
            return True

    def _enforce_timeouts(self, now: float) -> None:
        for worker in self._workers.values():
            if worker.deadline is None or now < worker.deadline or worker.job_id is None:
                continue
            job_id = worker.job_id
            self._say(f"job {job_id} outlived its timeout: killing {worker.name}")
            worker.process.kill()
            worker.process.wait()
            config = self.options.config
            retry_in = time_out_in_progress(
                self.connection,
                worker.name,
                job_id,
                worker.timeout,
                (config.retry, worker_module.retry_intervals(config.retry)),
            )
            if retry_in is not None:
                self._say(f"job {job_id}: timed out; retrying in {retry_in}s")
            worker.job_id = None
            worker.timeout = None
            worker.deadline = None

    # -- the pool's duties -------------------------------------------------------------------

    def _duties(self, now: float) -> None:
        reached = False
        try:
            self._requeue_orphaned()
            if now >= self._timers.alive:
                names = [w.name for w in self._workers.values()]
                mark_alive(self.connection, names, self._place)
                self._timers.alive = now + ALIVE_EVERY
                if not self._stopping and stop_requested(self.connection, self._place.id):
                    self._warm_stop("stop asked from the dashboard")
            if now >= self._timers.reap:
                found = find_dead_workers(self.connection, self._place)
                self._dead += [name for name in found if name not in self._dead]
                forget_gone_pools(self.connection, self._place)
                self._timers.reap = now + REAP_EVERY
                reached = True
            self._recover_dead(deadline=time.monotonic() + REAP_BUDGET)
            if now >= self._timers.schedule and not self._stopping:
                self._move_scheduled_jobs()
                self._enqueue_cron_ticks(time.time())
                self._timers.schedule = now + SCHEDULE_EVERY
                reached = True
        except (redis.ConnectionError, redis.TimeoutError) as error:
            wait = self._redis_backoff
            self._say(
                f"lost Redis at {self.options.redis_url.redacted} ({error}); retrying in {wait:g}s"
            )
            self._timers.alive = self._timers.reap = self._timers.schedule = now + wait
            self._redis_backoff = min(wait * 2, REDIS_BACKOFF_MAX)
        except redis.ResponseError as error:
            if not is_full(error):
                raise
            wait = self._redis_backoff
            self._say(f"{self._full_message()}; retrying in {wait:g}s")
            self._timers.alive = self._timers.reap = self._timers.schedule = now + wait
            self._redis_backoff = min(wait * 2, REDIS_BACKOFF_MAX)
        else:
            if reached:
                if self._redis_backoff > 1.0:
                    self._say(f"Redis at {self.options.redis_url.redacted} is back")
                    # workers waiting out the backoff (Redis was full) start now
                    self._respawns = [min(at, now) for at in self._respawns]
                self._redis_backoff = 1.0

    def _recover_dead(self, deadline: float | None) -> None:
        """Give back the jobs of the dead workers found, a worker at a time, until ``deadline``."""
        while self._dead and (deadline is None or time.monotonic() < deadline):
            name = self._dead[0]
            requeued = recover_worker(self.connection, name, self._place.id)
            self._dead.pop(0)
            if requeued:
                self._say(f"worker {name} is gone: put {len(requeued)} job(s) back on their queues")

    def _move_scheduled_jobs(self) -> None:
        if self._all_queues:  # scheduled jobs of the queues that appeared since, too
            names = self._queue_names()
            if names != self._scheduled_queues:
                self._scheduler.release_locks()  # type: ignore[no-untyped-call]
                self._scheduled_queues = names
                self._scheduler = self._new_scheduler(names)
        if not self._scheduler.acquired_locks or self._scheduler.should_reacquire_locks:
            self._scheduler.acquire_locks()  # type: ignore[no-untyped-call]
        else:
            self._scheduler.heartbeat()  # type: ignore[no-untyped-call]
        if self._scheduler.acquired_locks:
            self._scheduler.enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]

    def _enqueue_cron_ticks(self, now: float) -> None:
        for entry in self.options.config.schedule:
            tick = previous_tick(entry.cron, now)
            if now - tick > CRON_CATCH_UP or self._timers.cron_seen.get(entry.name) == tick:
                continue
            self._timers.cron_seen[entry.name] = tick
            if enqueue_tick(self.connection, entry, tick):
                self._say(f"schedule {entry.name}: enqueued {entry.func} on {entry.queue}")

    # -- stopping ----------------------------------------------------------------------------

    def _on_signals(self) -> None:
        for signum in self._signals.received():
            if signum == signal.SIGCHLD or signum not in STOP_SIGNALS:
                continue
            if self._stopping:
                self._say(f"{signal.Signals(signum).name} again: stopping the workers now")
                self._exit_status = status_for_signal(signum)
                self._go_cold()
                continue
            self._warm_stop(signal.Signals(signum).name)

    def _warm_stop(self, why: str) -> None:
        self._settle_fetches()  # first: a job's deadline counts from when it was read
        self._stopping = True
        self._stop_began = time.monotonic()
        self._say(f"{why}: {self._warm_stop_plan()}")
        for worker in self._workers.values():
            _signal(worker.process, signal.SIGUSR1)

    def _settle_fetches(self) -> None:
        """A worker in the middle of taking a job says within moments whether it got one: wait
        for that (at most ``FETCH_SETTLE`` s), so the stop's plan counts every running job."""
        deadline = time.monotonic() + FETCH_SETTLE
        while True:
            fetching = [w for w in self._workers.values() if w.fetching and w.status_open]
            left = deadline - time.monotonic()
            if not fetching or left <= 0:
                return
            ready, _, _ = select.select([w.status_fd for w in fetching], [], [], left)
            for worker in fetching:
                if worker.status_fd in ready:
                    self._read_status(worker)

    def _warm_stop_deadline(self, cut: bool = True) -> float:
        """When a warm stop stops waiting: once the last running job's own timeout has passed
        (the pool kills a job at its timeout anyway, and fails or retries it), for a job without
        one once the ``queues.yml`` timeout has; under ``procman start`` (``cut``), a little before
        start's ``-t`` runs out, whichever comes first."""
        began = self._stop_began if self._stop_began is not None else time.monotonic()
        ends = [began + IDLE_STOP_WAIT]
        for worker in self._workers.values():
            if worker.job_id is not None:
                ends.append(
                    worker.deadline
                    if worker.deadline is not None
                    else began + self.options.config.timeout
                )
        deadline = max(ends)
        if cut and self.options.stop_cut is not None:
            deadline = min(deadline, began + max(0.0, self.options.stop_cut - STOP_MARGIN))
        return deadline

    def _cut_short(self) -> bool:
        """Whether ``procman start``'s ``-t`` ends this warm stop before the jobs' timeouts."""
        return self._warm_stop_deadline(cut=True) < self._warm_stop_deadline(cut=False)

    def _warm_stop_plan(self) -> str:
        """What a warm stop will really do, for the line that starts it."""
        running = sum(1 for worker in self._workers.values() if worker.job_id is not None)
        if not running:
            return "no job running: stopping"
        jobs = "1 running job" if running == 1 else f"{running} running jobs"
        its, it = ("its", "it") if running == 1 else ("their", "them")
        began = self._stop_began if self._stop_began is not None else time.monotonic()
        wait = math.ceil(self._warm_stop_deadline(cut=False) - began)
        cut = self.options.stop_cut
        if cut is None:
            return f"finishing {jobs} (up to {wait}s, {its} timeout), then stopping"
        if not self._cut_short():
            return (
                f"finishing {jobs} (up to {wait}s, {its} timeout; procman start's -t {cut:g} "
                "allows that), then stopping"
            )
        return (
            f"finishing {jobs} for up to {cut:g}s only: procman start's -t {cut:g} is shorter "
            f"than {its} timeout allows ({wait}s more; start with a longer -t to let {it} "
            f"finish), then putting {it} back on {its} queue{'' if running == 1 else 's'}"
        )

    def _go_cold(self) -> None:
        self._cold = True
        for worker in self._workers.values():
            worker.process.kill()
        for worker in self._workers.values():
            worker.process.wait()
        self._reap_children()  # and their jobs go back to the front of their queues

    def _say(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S ") if self.options.timestamps else ""
        sys.stdout.write(f"{stamp}procman worker: {message}\n")
        sys.stdout.flush()


def previous_tick(cron: str, now: float) -> float:
    """The latest time at or before ``now`` that ``cron`` names (local time)."""
    from croniter import croniter

    return float(croniter(cron, datetime.fromtimestamp(now)).get_prev(float))


def enqueue_tick(connection: redis.Redis, entry: ScheduledJob, tick: float) -> bool:
    """Claim the tick and enqueue its job in one transaction (MULTI/EXEC, the claim key WATCHed),
    so both happen or neither: True for exactly one caller per entry and tick across every pool
    sharing the Redis, and a pool that dies half-way leaves the tick to the next."""
    key = f"procman:cron:{entry.name}:{int(tick)}"
    queue = Queue(entry.queue, connection=connection)
    with connection.pipeline() as pipeline:
        try:
            pipeline.watch(key)  # type: ignore[no-untyped-call]
            if pipeline.exists(key):
                return False
            pipeline.multi()
            pipeline.set(key, socket.gethostname(), ex=CRON_KEY_SECONDS)
            fault_point("cron-tick-claimed")
            queue.enqueue_call(
                entry.func, args=entry.args, kwargs=dict(entry.kwargs), pipeline=pipeline
            )
            pipeline.execute()
        except redis.WatchError:  # another pool claimed it meanwhile
            return False
    return True


FAULT_VARIABLE = "PROCMAN_TEST_FAULT"


def fault_point(name: str) -> None:
    """Fault injection for the tests: the pool dies here, as in a crash (SIGKILL, nothing cleaned
    up), when ``PROCMAN_TEST_FAULT`` names this point."""
    if os.environ.get(FAULT_VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _how_it_ended(returncode: int) -> str:
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"


def _describe(queue: tuple[str, int | None]) -> str:
    name, weight = queue
    if name == ALL_QUEUES:
        return "all queues (*)"
    return name if weight is None else f"{name}({weight})"


def _signal(process: ChildProcess, signum: int) -> None:
    try:
        process.send_signal(signum)
    except ProcessLookupError:
        pass


def _die_with_parent() -> None:
    """A worker must not outlive its pool (nobody would mark it alive, and its jobs would run
    twice once another pool requeues them)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


def _run_forked_worker(
    pool: Pool, spec: WorkerSpec, read_fd: int, pool_pid: int, mask: set[int | signal.Signals]
) -> None:
    """In the forked child: become what ``python -m procman.queues.worker`` was (its signal
    handlers, cwd, ``sys.path``, environment, modules of the app, only the status pipe's write
    end open besides stdio), run the worker, and end with ``os._exit``: the pool's ``finally``
    blocks and ``atexit`` handlers never run here."""
    status = 1
    started = interrupted = False
    try:
        _die_with_parent()
        if os.getppid() != pool_pid:  # the pool died before PDEATHSIG was armed
            os.kill(os.getpid(), signal.SIGKILL)
        # The pool's objects are never collected here: one owning a descriptor closed below
        # cannot close a reused number later.
        gc.freeze()
        atexit._clear()
        _reset_signal_handlers()
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.chdir(spec.app_dir)
        os.environ[SPEC_VARIABLE] = spec.to_json()
        sys.argv = [worker_module.__file__ or "procman.queues.worker"]
        if not sys.flags.safe_path and sys.path:
            sys.path[0] = os.getcwd()  # what ``python -m`` puts first: its cwd, the app dir
        _forget_app_modules(spec.app_dir)
        pool._selector.close()
        pool._signals.reader.close()
        pool._signals._writer.close()
        os.close(read_fd)
        for other in pool._workers.values():
            if other.status_open:
                os.close(other.status_fd)
        # And every other descriptor of the pool (its Redis sockets, what its parent passed it):
        # the fresh interpreter had none of them either (Popen's close_fds).
        _close_all_but(0, 1, 2, spec.status_fd)
        started = True
        status = worker_module.main()
    except SystemExit as stop:
        status = _exit_code(stop.code)
    except KeyboardInterrupt:
        interrupted = True
    except redis.ResponseError as error:
        if is_full(error):  # its job, if any, stays in its WIP list: the pool puts it back
            status = REDIS_FULL_EXIT
        else:
            sys.excepthook(*sys.exc_info())
    except BaseException:
        sys.excepthook(*sys.exc_info())
    finally:
        if started:  # the worker's (and its jobs') own atexit handlers, as at interpreter exit
            atexit._run_exitfuncs()
        _flush()
        if interrupted:  # as Python ends on an uncaught KeyboardInterrupt
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        os._exit(status)


def _reset_signal_handlers() -> None:
    """The dispositions an exec'd interpreter would start with: handled signals back to the
    default (SIGINT to ``KeyboardInterrupt``), ignored ones still ignored, no wakeup fd."""
    signal.set_wakeup_fd(-1)
    for signum in signal.valid_signals():
        try:
            handler = signal.getsignal(signum)
        except ValueError:
            continue
        if handler in (signal.SIG_DFL, signal.SIG_IGN):
            continue
        fresh = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
        try:
            signal.signal(signum, fresh)
        except (OSError, ValueError):
            pass  # SIGKILL, SIGSTOP


def _forget_app_modules(app_dir: str) -> None:
    """The pool imported the app's modules named by ``schedule:`` entries; a fresh worker
    imported its own, so its module-level state (a client made at import time) is its own."""
    root = os.path.realpath(app_dir) + os.sep
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name == "__main__" or name.split(".")[0] == "procman" or not path:
            continue
        real = os.path.realpath(path)
        if real.startswith(root) and not {"site-packages", "dist-packages"} & set(Path(real).parts):
            del sys.modules[name]


def _close_all_but(*keep: int) -> None:
    try:
        fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: every possible number
        fds = list(range(os.sysconf("SC_OPEN_MAX")))
    for fd in fds:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # the listing's own descriptor, gone already


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")
    return 1


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
