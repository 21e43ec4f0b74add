"""The supervisor: one event loop that runs the formation, multiplexes its output and serves the
control socket.

It speaks no protocol: its public methods (snapshot, scale, restart, stop, log_tail, follow_logs)
take and return typed values, and control/handler.py turns the socket's requests into those calls.

A single thread waits on every child's output, on the control socket and on a socket that turns
signals into readable bytes, so no lock, thread or queue sits between a child's write and stdout.

Lifecycle, as foreman: when a process exits, every other process group gets SIGTERM, then SIGKILL
after the timeout; Ctrl-C, SIGTERM and SIGHUP do the same and a second one kills at once. Types
named in the restart policy are restarted with backoff instead, and types that may die just stop.

Services (the private Redis) start first; the formation starts once they are ready, and they stop
only after everything else has.

What left its process group (a daemon, ``setsid``) is found while stopping, by the run id every
process inherits or by being re-parented to procman, and stopped with the rest (see strays.py).
"""

from __future__ import annotations

import errno
import os
import re
import selectors
import signal
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from procman.errors import ProcmanError, UsageError, did_you_mean
from procman.exitcodes import status_for_signal
from procman.formation import Instance, expand, parse_scale, scaled
from procman.procfile import Procfile
from procman.supervisor.logbook import Entry, Logbook
from procman.supervisor.output import SYSTEM, Prefixer, Sink
from procman.supervisor.process import (
    BACKOFF_RESET_AFTER,
    Run,
    Slot,
    State,
    Then,
    backoff_delay,
    describe_exit,
    exit_status,
)
from procman.supervisor.service import Service
from procman.supervisor.signals import (
    STOP_SIGNALS,
    SignalPipe,
    become_subreaper,
    group_exists,
    signal_group,
)
from procman.supervisor.snapshot import ProcessSnapshot, Snapshot
from procman.supervisor.spawn import Child, Spawner
from procman.supervisor.strays import RUN_ID_VARIABLE, Stray, find_strays, new_run_id
from procman.supervisor.watchdog import Watchdog

READ_SIZE = 64 * 1024
"""Per child per turn: bigger reads let one chatty child delay the control socket and the others."""
GROUP_POLL = 0.05
"""While an exited process may have left grandchildren in its group, look again this often."""
EXIT_STATUS_OUTPUT_GONE = status_for_signal(signal.SIGPIPE)
READY_POLL = 0.02
"""While the formation waits for its services, ask them whether they are ready this often."""
STRAY_SCAN = 0.15
"""While stopping, look for processes outside the known groups this often (a scan reads two small
/proc files per process on the machine: about 20 µs each)."""


@dataclass(frozen=True, slots=True)
class Policy:
    """Per-type behaviour when an instance exits on its own (foreman's default: stop all)."""

    restart: frozenset[str] = frozenset()
    can_die: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Scaled:
    formation: dict[str, int]
    """The new count of every type."""


@dataclass(frozen=True, slots=True)
class Restarted:
    names: tuple[str, ...]
    """The instances restarting."""


@dataclass(frozen=True, slots=True)
class Stopped:
    names: tuple[str, ...]
    """The instances stopping (none when ``everything``)."""
    everything: bool = False
    """The whole app is stopping: procman exits once it has."""


@dataclass(frozen=True, slots=True)
class LogTail:
    names: tuple[str, ...]
    """The instances there are now, to pad prefixes to."""
    types: tuple[str, ...]
    """The Procfile's types, in order."""
    entries: tuple[Entry, ...]
    """The recent lines asked for, oldest first, one line per entry."""


class Channel(Protocol):
    """Something served from the supervisor's loop, such as the control socket: it registers
    its file descriptors in the loop's selector with a callable ``(mask) -> None`` as data."""

    def open(self) -> None: ...

    def close(self) -> None: ...


class Supervisor:
    def __init__(
        self,
        procfile: Procfile,
        counts: Mapping[str, int],
        *,
        base_port: int,
        spawner: Spawner,
        environment: Callable[[Instance], Mapping[str, str]],
        prefixer: Prefixer,
        sink: Sink,
        stop_timeout: float,
        policy: Policy = Policy(),
        control: Callable[[selectors.BaseSelector, Supervisor], Channel] | None = None,
        save_formation: Callable[[Mapping[str, int]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        services: Sequence[Service] = (),
        notes: Sequence[str] = (),
    ) -> None:
        self._procfile = procfile
        self._counts = {name: counts.get(name, 0) for name in procfile.names}
        self._base_port = base_port
        self._spawner = spawner
        self._environment = environment
        self._prefixer = prefixer
        self._sink = sink
        self._stop_timeout = stop_timeout
        self._policy = policy
        self._save_formation = save_formation
        self._clock = clock
        self._services = {service.name: service for service in services}
        self._notes = notes

        self._selector = selectors.DefaultSelector()
        self._control = control(self._selector, self) if control else None
        self._signals = SignalPipe()
        self._watchdog: Watchdog | None = None
        self._slots: dict[str, Slot] = {}
        self._runs: list[Run] = []  # every run whose process or output is not yet finished with
        self._by_pid: dict[int, Run] = {}
        self._with_partial: set[Run] = set()
        self._run_id = new_run_id()
        self._strays: dict[int, Stray] = {}
        """Processes outside the known groups, by pid, as the last scan (while stopping) found."""
        self._signalled: dict[int, int] = {}  # stray pid -> the last signal it was sent
        self._next_scan = 0.0
        self._kill_strays_at = 0.0
        self._logbook = Logbook()
        self._followers: dict[object, tuple[frozenset[str], Callable[[Entry], None]]] = {}
        """What follow_logs registered, by a token of its own: the targets and where to deliver."""
        self._service_slots: dict[str, Slot] = {}
        self._ready_by = 0.0
        self._formation_started = False
        self._services_stopping = False

        self._stopping = False
        self._force_killed = False
        self._exit_status = 0

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> int:
        """Run until every process has stopped; return the exit status for procman."""
        self._signals.open()
        self._selector.register(self._signals.reader, selectors.EVENT_READ, self._on_signals)
        become_subreaper()
        self._watchdog = Watchdog(self._run_id)
        stopped_cleanly = False
        try:
            if self._control is not None:
                self._control.open()
            for note in self._notes:
                self._system(note)
            self._start_services()
            if not self._services:
                self._start_formation()
            self._sink.flush()
            self._watchdog.flush()
            while not self._finished():
                self._turn()
            for run in self._runs:
                self._drain(run)
                self._flush_partial(run)
            self._sink.flush()
            stopped_cleanly = True
        finally:
            self._signals.close()
            if self._control is not None:
                self._control.close()
            for run in self._runs:
                self._close_output(run)
            self._selector.close()
            # After a crash of our own, the watchdog sees its pipe close without "done" and stops
            # whatever is still running.
            self._watchdog.close(stand_down=stopped_cleanly)
        return self._exit_status

    def _turn(self) -> None:
        ready_outputs = []
        for key, mask in self._selector.select(self._next_timeout()):
            if isinstance(key.data, Run):
                ready_outputs.append(key.data)
            else:
                key.data(mask)  # signals and the control socket first: they are never starved
        for run in ready_outputs:
            self._read(run)
        now = self._clock()
        self._flush_stale_partials(now)
        self._advance(now)
        self._sink.flush()
        if self._watchdog is not None:
            self._watchdog.flush()
        if self._sink.broken and not self._stopping:
            self._begin_shutdown(EXIT_STATUS_OUTPUT_GONE)

    def _next_timeout(self) -> float | None:
        deadlines = [
            flush_at
            for run in self._with_partial
            if (flush_at := run.splitter.flush_at()) is not None
        ]
        deadlines += [run.kill_at for run in self._runs if run.kill_at and not run.killed]
        deadlines += [slot.start_at for slot in self._slots.values() if slot.start_at is not None]
        now = self._clock()
        timeout = max(0.0, min(deadlines) - now) if deadlines else None
        if self._stopping or any(run.returncode is not None for run in self._runs):
            timeout = GROUP_POLL if timeout is None else min(timeout, GROUP_POLL)
        if not self._formation_started and not self._stopping:
            timeout = READY_POLL if timeout is None else min(timeout, READY_POLL)
        return timeout

    def _finished(self) -> bool:
        if not self._stopping or self._strays or any(run.alive for run in self._runs):
            return False
        self._scan_strays(self._clock())  # a last look, after everything known has gone
        return not self._strays

    def _advance(self, now: float) -> None:
        """Timers and group watching: SIGKILL after the timeout, restarts when due, and what
        happens to a slot once its run has fully stopped."""
        for run in list(self._runs):
            if run.returncode is not None and run.group_alive:
                self._update_group(run)
            if run.alive and run.kill_at is not None and not run.killed and now >= run.kill_at:
                self._system(f"sending SIGKILL to {run.name}")
                signal_group(run.child.pgid, signal.SIGKILL)
                run.killed = True
            if not run.alive and not run.output_open:
                self._runs.remove(run)
            if not run.alive and run.slot.run is run:
                self._run_finished(run.slot, now)
        if self._stopping:
            if not self._force_killed and now >= self._kill_strays_at:
                self._force_killed = True
                self._signal_strays()
            if now >= self._next_scan:
                self._scan_strays(now)
            if not self._services_stopping and self._only_services_left():
                self._stop_services()
            return
        if not self._formation_started:
            self._wait_for_services(now)
            return
        for slot in list(self._slots.values()):
            if (
                slot.start_at is not None
                and now >= slot.start_at
                and (slot.run is None or not slot.run.alive)
            ):
                self._launch(slot)

    # -- services -------------------------------------------------------------------------------

    def _start_services(self) -> None:
        if not self._services:
            return
        wanted = expand(self._procfile, self._counts, self._base_port)
        self._set_names([instance.name for instance in wanted])
        self._ready_by = self._clock() + max(s.ready_timeout for s in self._services.values())
        spawner = Spawner(self._spawner.cwd)  # never on a pty: a service's output is a log
        for service in self._services.values():
            slot = Slot(Instance(service.name, 1, service.command, 0), service=True)
            self._service_slots[service.name] = slot
            try:
                child = spawner.spawn(service.command, {**service.env, **self._tag()})
            except OSError as error:
                self._system(f"{service.name} could not start: {error.strerror or error}")
                self._begin_shutdown(1)
                return
            self._track(slot, child)
            about = f": {service.about}" if service.about else ""
            self._system(f"{service.name} started (pid {child.pid}){about}")

    def _wait_for_services(self, now: float) -> None:
        waiting = [name for name, service in self._services.items() if not service.ready()]
        if not waiting:
            self._start_formation()
        elif now >= self._ready_by:
            limit = max(self._services[name].ready_timeout for name in waiting)
            self._system(f"{', '.join(waiting)} not ready after {limit:g}s: stopping")
            self._begin_shutdown(1)

    def _start_formation(self) -> None:
        self._formation_started = True
        self._apply_formation()

    def _only_services_left(self) -> bool:
        return not self._strays and not any(run.alive for run in self._runs if not run.slot.service)

    def _stop_services(self) -> None:
        """Last, once every other process has exited."""
        self._services_stopping = True
        for slot in reversed(self._service_slots.values()):
            if slot.run is not None and slot.run.alive:
                slot.state = State.STOPPING
                self._system(f"sending SIGTERM to {slot.name}")
                self._terminate(slot.run)

    def _set_names(self, names: Iterable[str]) -> None:
        self._prefixer.set_names(
            [*names, *self._services], [*self._procfile.names, *self._services]
        )

    # -- the formation --------------------------------------------------------------------------

    def _apply_formation(self) -> None:
        """Make the slots match ``self._counts``: start missing instances, stop surplus ones."""
        wanted = expand(self._procfile, self._counts, self._base_port)
        wanted_names = {instance.name for instance in wanted}
        self._set_names([*wanted_names, *self._slots])
        for slot in list(self._slots.values()):
            if slot.name not in wanted_names:
                self._stop_slot(slot, Then.REMOVE)
        for instance in wanted:
            existing = self._slots.get(instance.name)
            if existing is None:
                new = Slot(instance)
                self._slots[instance.name] = new
                self._launch(new)
            elif existing.then is Then.REMOVE:
                existing.then = Then.RESTART  # scaled away and back before it had stopped
        self._slots = dict(
            sorted(
                self._slots.items(),
                key=lambda item: (
                    self._procfile.position(item[1].instance.type),
                    item[1].instance.number,
                ),
            )
        )

    def _launch(self, slot: Slot) -> None:
        if self._stopping:
            return
        slot.start_at = None
        slot.then = None
        instance = slot.instance
        try:
            env = {**self._environment(instance), **self._tag()}
            child = self._spawner.spawn(instance.command, env)
        except OSError as error:
            self._system(f"{instance.name} could not start: {error.strerror or error}")
            slot.state = State.CRASHED
            if not self._keeps_running(instance.type):
                self._begin_shutdown(1)
            return
        self._track(slot, child)
        restarted = f", restart {slot.restarts}" if slot.restarts else ""
        self._system(f"{instance.name} started (pid {child.pid}{restarted})")

    def _tag(self) -> dict[str, str]:
        """Inherited by every descendant that keeps its environment: how strays are found."""
        return {RUN_ID_VARIABLE: self._run_id}

    def _track(self, slot: Slot, child: Child) -> None:
        """A new run for ``slot``: read its output, reap it, and have the watchdog guard it."""
        run = Run(slot=slot, child=child, started_at=self._clock())
        slot.run = run
        slot.launches += 1
        slot.state = State.STARTING
        self._runs.append(run)
        self._by_pid[child.pid] = run
        self._selector.register(child.output_fd, selectors.EVENT_READ, run)
        assert self._watchdog is not None
        self._watchdog.guard(child.pgid)

    def _stop_slot(self, slot: Slot, then: Then) -> None:
        """Graceful stop: SIGTERM to the group now, SIGKILL after the timeout."""
        slot.start_at = None
        run = slot.run
        if run is None or not run.alive:
            slot.then = then
            self._run_finished(slot, self._clock())
            return
        slot.then = then
        slot.state = State.STOPPING
        self._terminate(run)

    def _terminate(self, run: Run) -> None:
        if run.kill_at is None:
            run.kill_at = self._clock() + self._stop_timeout
        signal_group(run.child.pgid, signal.SIGTERM)

    def _run_finished(self, slot: Slot, now: float) -> None:
        """The slot's run and everything in its group are gone: carry out what was asked."""
        then, slot.then = slot.then, None
        if then is Then.REMOVE:
            self._slots.pop(slot.name, None)
        elif then is Then.RESTART:
            self._launch(slot)
        elif then is Then.IDLE:
            slot.state = State.STOPPED

    def _keeps_running(self, type_name: str) -> bool:
        return type_name in self._policy.restart or type_name in self._policy.can_die

    # -- exits ----------------------------------------------------------------------------------

    def _on_signals(self, mask: int) -> None:
        for signum in self._signals.received():
            if signum == signal.SIGCHLD:
                self._reap()
            elif signum in STOP_SIGNALS:
                self._on_stop_signal(signal.Signals(signum))

    def _on_stop_signal(self, signum: signal.Signals) -> None:
        if self._stopping:
            self._system(f"{signum.name} received again: killing all processes")
            self._kill_everything()
            return
        self._system(f"{signum.name} received, stopping all processes")
        self._begin_shutdown(status_for_signal(signum))

    def _reap(self) -> None:
        while True:
            try:
                pid, wait_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            returncode = os.waitstatus_to_exitcode(wait_status)
            run = self._by_pid.pop(pid, None)
            if run is None:
                self._strays.pop(pid, None)
                self._signalled.pop(pid, None)
                if self._watchdog is not None and pid == self._watchdog.pid:
                    self._watchdog.reaped(returncode)
                continue
            run.returncode = returncode
            run.child.popen.returncode = returncode
            self._on_exit(run, returncode)

    def _on_exit(self, run: Run, returncode: int) -> None:
        self._drain(run)
        self._flush_partial(run)
        self._system(f"{run.name} {describe_exit(returncode)}")
        self._update_group(run)
        slot = run.slot
        if slot.run is not run:
            return
        slot.last_exit = returncode
        if slot.service and not self._stopping:
            self._system(f"{slot.name} is needed by the app: stopping all processes")
            self._begin_shutdown(exit_status(returncode) or 1)
            return
        if self._stopping or slot.then is not None:
            return  # a stop we asked for
        self._on_unexpected_exit(slot, run, returncode)

    def _on_unexpected_exit(self, slot: Slot, run: Run, returncode: int) -> None:
        type_name = slot.instance.type
        if type_name in self._policy.restart:
            now = self._clock()
            if now - run.started_at >= BACKOFF_RESET_AFTER:
                slot.crashes_in_a_row = 0
            slot.crashes_in_a_row += 1
            delay = backoff_delay(slot.crashes_in_a_row)
            slot.state = State.RESTARTING
            slot.start_at = now + delay
            self._system(
                f"{slot.name} restarting in {delay:g}s ({slot.crashes_in_a_row} "
                f"exit{'s' if slot.crashes_in_a_row > 1 else ''} in a row)"
            )
            if run.alive:
                self._terminate(run)  # leftovers in its group would hold its port
            return
        if type_name in self._policy.can_die:
            slot.state = State.CRASHED if returncode != 0 else State.EXITED
            if run.alive:
                self._terminate(run)
            return
        self._begin_shutdown(exit_status(returncode))

    def _update_group(self, run: Run) -> None:
        """Once the leader has exited, the group lives on while any grandchild is still in it."""
        run.group_alive = group_exists(run.child.pgid)
        if not run.group_alive and self._watchdog is not None:
            self._watchdog.release(run.child.pgid)

    # -- stopping everything --------------------------------------------------------------------

    def _begin_shutdown(self, status: int) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._exit_status = status
        self._kill_strays_at = self._clock() + self._stop_timeout
        alive = [run for run in self._runs if run.alive and not run.slot.service]
        if alive:
            self._system("sending SIGTERM to all processes")
        for slot in self._slots.values():
            slot.start_at = None
            if slot.run is not None and slot.run.alive:
                slot.state = State.STOPPING
        for run in alive:
            self._terminate(run)
        self._scan_strays(self._clock())

    def _kill_everything(self) -> None:
        for run in self._runs:
            if run.alive:
                signal_group(run.child.pgid, signal.SIGKILL)
                run.killed = True
        self._force_killed = True
        self._scan_strays(self._clock())

    def _scan_strays(self, now: float) -> None:
        """Find the processes outside the groups we know (SIGTERM or SIGKILL with the rest) and
        send each what it has not had yet: a stray found late, re-parented to us after its parent
        died, still gets its SIGTERM and the same deadline."""
        self._next_scan = now + STRAY_SCAN
        self._strays = {stray.pid: stray for stray in self._find_strays()}
        self._signalled = {pid: sig for pid, sig in self._signalled.items() if pid in self._strays}
        self._signal_strays()

    def _find_strays(self) -> list[Stray]:
        """Re-parented to us or carrying our run id, and in none of our runs' live groups (those
        are signalled as groups already, and services stop last)."""
        known = set(self._by_pid) | {os.getpid()}
        if self._watchdog is not None:
            known.add(self._watchdog.pid)
        groups = {run.child.pgid for run in self._runs if run.alive}
        return [
            stray
            for stray in find_strays(self._run_id, os.getpid())
            if stray.pid not in known and stray.pgid not in groups
        ]

    def _signal_strays(self) -> None:
        """SIGTERM, or SIGKILL once past the deadline, to each stray not sent it yet: to its whole
        group when it leads one, so the group's other members go too, else to it alone."""
        signum = signal.SIGKILL if self._force_killed else signal.SIGTERM
        own_group = os.getpgrp()
        for stray in list(self._strays.values()):
            if self._signalled.get(stray.pid) == signum:
                continue
            self._signalled[stray.pid] = signum
            try:
                if stray.leads_group and stray.pgid != own_group:
                    os.killpg(stray.pgid, signum)
                else:
                    os.kill(stray.pid, signum)
            except ProcessLookupError:
                self._strays.pop(stray.pid, None)

    # -- output ---------------------------------------------------------------------------------

    def _read(self, run: Run) -> bool:
        """Read once from a child's output; return whether more may be waiting."""
        if not run.output_open:  # closed earlier in this turn, after its exit
            return False
        try:
            data = os.read(run.child.output_fd, READ_SIZE)
        except BlockingIOError:
            return False
        except OSError as error:
            if error.errno != errno.EIO:  # EIO: a pty whose other side is all closed
                raise
            data = b""
        if not data:
            self._flush_partial(run)
            self._close_output(run)
            return False
        run.printed = True
        lines = run.splitter.feed(data, self._clock())
        if lines:
            self._emit(run.name, run.type, lines)
        if run.splitter.has_pending:
            self._with_partial.add(run)
        else:
            self._with_partial.discard(run)
        return True

    def _drain(self, run: Run) -> None:
        """Read everything already written, so a child's last lines come before its exit."""
        while self._read(run):
            pass

    def _close_output(self, run: Run) -> None:
        if run.output_open:
            run.output_open = False
            self._selector.unregister(run.child.output_fd)
            os.close(run.child.output_fd)

    def _flush_partial(self, run: Run) -> None:
        rest = run.splitter.flush()
        if rest:
            self._emit(run.name, run.type, rest)
        self._with_partial.discard(run)

    def _flush_stale_partials(self, now: float) -> None:
        for run in list(self._with_partial):
            flush_at = run.splitter.flush_at()
            if flush_at is None or now < flush_at:
                continue
            # The writer may have finished its line while this loop was busy elsewhere (a slow
            # control request): read again, so only the writer's own silence splits a line.
            self._read(run)
            flush_at = run.splitter.flush_at()
            if flush_at is not None and self._clock() >= flush_at:
                self._flush_partial(run)

    def _emit(self, name: str, type_name: str, lines: bytes) -> None:
        self._sink.write(self._prefixer.render(name, type_name, lines))
        entry = Entry(name, type_name, time.time(), lines)
        self._logbook.append(entry)
        for targets, deliver in list(self._followers.values()):
            if _matches(entry, targets):
                deliver(entry)

    def _system(self, message: str) -> None:
        self._emit(SYSTEM, SYSTEM, message.encode() + b"\n")

    # -- what control requests ask ---------------------------------------------------------------
    # Called from the loop (the control socket's handler runs in it), so they never block. Each
    # raises a ProcmanError for a request that cannot be carried out, having changed nothing.

    def snapshot(self) -> Snapshot:
        """Every instance, in Procfile order, and the formation."""
        now = self._clock()
        processes = []
        for slot in self._slots.values():
            run = slot.run
            running = run if run is not None and run.returncode is None else None
            processes.append(
                ProcessSnapshot(
                    name=slot.name,
                    type=slot.instance.type,
                    pid=running.child.pid if running else None,
                    state=slot.shown_state(now),
                    uptime=now - running.started_at if running else None,
                    restarts=slot.restarts,
                    last_exit=slot.last_exit,
                    port=slot.instance.port,
                    command=slot.instance.command,
                )
            )
        return Snapshot(processes=tuple(processes), formation=dict(self._counts))

    def scale(self, specs: Iterable[str]) -> Scaled:
        """Apply ``TYPE=N``, ``TYPE+N``, ``TYPE-N`` changes (as ``procman scale`` takes them), in
        order and all or nothing; save the new formation and start or stop instances to match."""
        self._refuse_while_stopping()
        counts = scaled(self._procfile, self._counts, parse_scale(specs), self._base_port)
        self._counts = counts
        if self._save_formation is not None:
            self._save_formation(counts)
        self._system(f"scaled to {', '.join(f'{k}={v}' for k, v in counts.items())}")
        if self._formation_started:
            self._apply_formation()
        return Scaled(formation=dict(counts))

    def restart(self, targets: Iterable[str]) -> Restarted:
        """Restart the named instances or types (none named: all); returns at once, the
        instances restart once their processes have stopped."""
        self._refuse_while_stopping()
        slots = self._resolve(targets)
        for slot in slots:
            slot.crashes_in_a_row = 0
            if slot.run is not None and slot.run.alive:
                self._stop_slot(slot, Then.RESTART)
            else:
                self._launch(slot)
        return Restarted(names=tuple(slot.name for slot in slots))

    def stop(self, targets: Iterable[str]) -> Stopped:
        """Stop the named instances or types, keeping them listed as stopped; none named: stop
        the whole app (asked again while stopping: kill everything at once)."""
        targets = tuple(targets)
        if not targets:
            if self._stopping:
                self._system("stop requested again: killing all processes")
                self._kill_everything()
            else:
                self._system("stop requested: stopping all processes")
                self._begin_shutdown(0)
            return Stopped(names=(), everything=True)
        self._refuse_while_stopping()
        slots = self._resolve(targets)
        for slot in slots:
            self._stop_slot(slot, Then.IDLE)
        return Stopped(names=tuple(slot.name for slot in slots))

    def log_tail(self, targets: Iterable[str], lines: int) -> LogTail:
        """The last ``lines`` lines of the named instances or types (none named: all), with
        procman's own lines about them or about the whole app; a service (``redis``) may be
        named too."""
        wanted = frozenset(targets)
        self._check_targets(wanted - set(self._services))
        return LogTail(
            names=tuple(self._slots),
            types=tuple(self._procfile.names),
            entries=tuple(self._logbook.tail(lines, lambda entry: _matches(entry, wanted))),
        )

    def follow_logs(
        self, targets: Iterable[str], deliver: Callable[[Entry], None]
    ) -> Callable[[], None]:
        """Call ``deliver`` with each new chunk of output ``log_tail`` would show for these
        targets, from the loop, until the returned function is called."""
        wanted = frozenset(targets)
        self._check_targets(wanted - set(self._services))
        token = object()
        self._followers[token] = (wanted, deliver)

        def unfollow() -> None:
            self._followers.pop(token, None)

        return unfollow

    def _refuse_while_stopping(self) -> None:
        if self._stopping:
            raise ProcmanError("procman is stopping", "start it again with 'procman start'")

    def _resolve(self, targets: Iterable[str]) -> list[Slot]:
        targets = list(targets)
        self._check_targets(frozenset(targets))
        if not targets:
            return list(self._slots.values())
        return [
            slot
            for slot in self._slots.values()
            if slot.name in targets or slot.instance.type in targets
        ]

    def _check_targets(self, targets: frozenset[str]) -> None:
        for target in targets:
            if target in self._slots or self._procfile.get(target) is not None:
                continue
            known = [*self._procfile.names, *self._slots]
            raise UsageError(
                f"unknown process {target!r}",
                did_you_mean(target, known, f"known: {', '.join(known)}"),
            )


_ABOUT_INSTANCE = re.compile(rb"([A-Za-z0-9_-]+)\.\d+ ")


def _matches(entry: Entry, targets: frozenset[str]) -> bool:
    """Lines of the targeted instances or types, and procman's own lines about them or about the
    whole app."""
    if not targets or entry.name in targets or entry.type in targets:
        return True
    if entry.name != SYSTEM:
        return False
    about = _ABOUT_INSTANCE.match(entry.text)
    if about is None:
        return True
    name = about[0][:-1].decode()
    return name in targets or about[1].decode() in targets
