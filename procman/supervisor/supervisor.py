"""The supervisor: one event loop that starts the formation, multiplexes output and stops it all.

A single thread waits on every child's output and on a self-pipe that turns signals (SIGCHLD,
SIGINT, SIGTERM, SIGHUP) into readable bytes, so no lock, thread or queue sits between a child's
write and our stdout.

Lifecycle, as foreman: when any process exits, every other process group gets SIGTERM, then SIGKILL
after the timeout. Ctrl-C, SIGTERM and SIGHUP do the same; a second one kills at once.
"""

from __future__ import annotations

import errno
import os
import selectors
import signal
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from procman.exitcodes import status_for_signal
from procman.formation import Instance
from procman.supervisor.output import SYSTEM, LineSplitter, Prefixer, Sink
from procman.supervisor.spawn import Child, Spawner
from procman.supervisor.watchdog import Watchdog

READ_SIZE = 1024 * 1024
PARTIAL_LINE_DELAY = 0.1
"""Seconds a line without its newline (a prompt) waits for the rest before it is shown."""
STOPPING_POLL = 0.05
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
EXIT_STATUS_OUTPUT_GONE = status_for_signal(signal.SIGPIPE)


@dataclass(eq=False, slots=True)
class Managed:
    """A started instance and what we know of its process."""

    instance: Instance
    child: Child
    started_at: float
    splitter: LineSplitter = field(default_factory=LineSplitter)
    returncode: int | None = None
    output_open: bool = True
    group_alive: bool = True

    @property
    def name(self) -> str:
        return self.instance.name


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"terminated by {signal.Signals(-returncode).name}"
    return f"exited with code {returncode}"


def exit_status(returncode: int) -> int:
    return status_for_signal(-returncode) if returncode < 0 else returncode


class Supervisor:
    def __init__(
        self,
        instances: Iterable[Instance],
        *,
        spawner: Spawner,
        environment: Callable[[Instance], Mapping[str, str]],
        prefixer: Prefixer,
        sink: Sink,
        stop_timeout: float,
        type_order: list[str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._instances = list(instances)
        self._spawner = spawner
        self._environment = environment
        self._prefixer = prefixer
        self._sink = sink
        self._stop_timeout = stop_timeout
        self._clock = clock
        self._prefixer.set_names([i.name for i in self._instances], type_order)

        self._selector = selectors.DefaultSelector()
        self._by_pid: dict[int, Managed] = {}
        self._managed: list[Managed] = []
        self._with_partial: set[Managed] = set()
        self._strays: set[int] = set()
        self._watchdog: Watchdog | None = None

        self._stopping = False
        self._kill_deadline: float | None = None
        self._killed = False
        self._exit_status = 0

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> int:
        """Run until every process has stopped; return the exit status for procman."""
        signal_reader, previous_handlers = self._install_signal_handlers()
        _become_subreaper()
        self._watchdog = Watchdog()
        stopped_cleanly = False
        try:
            for instance in self._instances:
                if self._stopping:
                    break
                self._start(instance)
            self._sink.flush()
            while not self._finished():
                self._turn(signal_reader)
            self._drain_all()
            self._sink.flush()
            stopped_cleanly = True
        finally:
            self._restore_signal_handlers(signal_reader, previous_handlers)
            self._close_outputs()
            # After a crash of our own, the watchdog sees its pipe close without "done" and stops
            # whatever is still running.
            self._watchdog.close(stand_down=stopped_cleanly)
        return self._exit_status

    def _turn(self, signal_reader: socket.socket) -> None:
        for key, _ in self._selector.select(self._next_timeout()):
            if key.data is None:
                self._handle_signals(signal_reader)
            else:
                self._read(key.data)
        self._flush_stale_partials()
        if self._stopping:
            self._advance_shutdown()
        self._sink.flush()
        if self._sink.broken and not self._stopping:
            self._begin_shutdown(EXIT_STATUS_OUTPUT_GONE)

    def _next_timeout(self) -> float | None:
        deadlines = [
            m.splitter.pending_since + PARTIAL_LINE_DELAY
            for m in self._with_partial
            if m.splitter.pending_since is not None
        ]
        if self._kill_deadline is not None and not self._killed:
            deadlines.append(self._kill_deadline)
        timeout = None
        if deadlines:
            timeout = max(0.0, min(deadlines) - self._clock())
        if self._stopping:
            timeout = STOPPING_POLL if timeout is None else min(timeout, STOPPING_POLL)
        return timeout

    def _finished(self) -> bool:
        return (
            self._stopping
            and not self._by_pid
            and not self._strays
            and not any(m.group_alive for m in self._managed)
        )

    # -- starting -------------------------------------------------------------------------------

    def _start(self, instance: Instance) -> None:
        try:
            child = self._spawner.spawn(instance.command, self._environment(instance))
        except OSError as error:
            self._system(f"{instance.name} could not start: {error.strerror or error}")
            self._begin_shutdown(1)
            return
        managed = Managed(instance=instance, child=child, started_at=self._clock())
        self._managed.append(managed)
        self._by_pid[child.pid] = managed
        self._selector.register(child.output_fd, selectors.EVENT_READ, managed)
        assert self._watchdog is not None
        self._watchdog.guard(child.pgid)
        self._system(f"{instance.name} started (pid {child.pid})")

    # -- output ---------------------------------------------------------------------------------

    def _read(self, managed: Managed) -> bool:
        """Read once from a child's output; return whether more may be waiting."""
        if not managed.output_open:  # closed earlier in this turn, after its exit
            return False
        try:
            data = os.read(managed.child.output_fd, READ_SIZE)
        except BlockingIOError:
            return False
        except OSError as error:
            if error.errno != errno.EIO:  # EIO: a pty whose other side is all closed
                raise
            data = b""
        if not data:
            self._end_output(managed)
            return False
        lines = managed.splitter.feed(data, self._clock())
        if lines:
            self._emit(managed, lines)
        if managed.splitter.has_pending:
            self._with_partial.add(managed)
        else:
            self._with_partial.discard(managed)
        return True

    def _drain(self, managed: Managed) -> None:
        """Read everything already written, so a child's last lines come before its exit."""
        while managed.output_open and self._read(managed):
            pass

    def _end_output(self, managed: Managed) -> None:
        self._flush_partial(managed)
        self._selector.unregister(managed.child.output_fd)
        os.close(managed.child.output_fd)
        managed.output_open = False

    def _flush_partial(self, managed: Managed) -> None:
        rest = managed.splitter.flush()
        if rest:
            self._emit(managed, rest)
        self._with_partial.discard(managed)

    def _flush_stale_partials(self) -> None:
        if not self._with_partial:
            return
        now = self._clock()
        for managed in list(self._with_partial):
            since = managed.splitter.pending_since
            if since is not None and now - since >= PARTIAL_LINE_DELAY:
                self._flush_partial(managed)

    def _emit(self, managed: Managed, lines: bytes) -> None:
        self._sink.write(self._prefixer.render(managed.name, managed.instance.type, lines))

    def _system(self, message: str) -> None:
        self._sink.write(self._prefixer.render(SYSTEM, SYSTEM, message.encode() + b"\n"))

    def _drain_all(self) -> None:
        for managed in self._managed:
            self._drain(managed)
            if managed.output_open:
                self._flush_partial(managed)

    def _close_outputs(self) -> None:
        for managed in self._managed:
            if managed.output_open:
                self._selector.unregister(managed.child.output_fd)
                os.close(managed.child.output_fd)
                managed.output_open = False
        self._selector.close()

    # -- signals and exits ----------------------------------------------------------------------

    def _install_signal_handlers(
        self,
    ) -> tuple[socket.socket, dict[int, signal._HANDLER]]:
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        self._signal_writer = writer
        previous: dict[int, signal._HANDLER] = {}
        for signum in (signal.SIGCHLD, *STOP_SIGNALS):
            previous[signum] = signal.signal(signum, _note_signal)
        signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        self._selector.register(reader, selectors.EVENT_READ, None)
        return reader, previous

    def _restore_signal_handlers(
        self, reader: socket.socket, previous: dict[int, signal._HANDLER]
    ) -> None:
        signal.set_wakeup_fd(-1)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        reader.close()
        self._signal_writer.close()

    def _handle_signals(self, reader: socket.socket) -> None:
        try:
            received = reader.recv(4096)
        except BlockingIOError:
            return
        for signum in dict.fromkeys(received):  # in order, each once
            if signum == signal.SIGCHLD:
                self._reap()
            elif signum in STOP_SIGNALS:
                self._on_stop_signal(signal.Signals(signum))

    def _on_stop_signal(self, signum: signal.Signals) -> None:
        if self._stopping:
            self._system(f"{signum.name} received again: killing all processes")
            self._signal_all(signal.SIGKILL)
            self._killed = True
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
            managed = self._by_pid.pop(pid, None)
            if managed is None:
                self._strays.discard(pid)
                if self._watchdog is not None and pid == self._watchdog.pid:
                    self._watchdog.reaped(returncode)
                continue
            managed.returncode = returncode
            managed.child.popen.returncode = returncode
            self._on_exit(managed, returncode)

    def _on_exit(self, managed: Managed, returncode: int) -> None:
        self._drain(managed)
        self._flush_partial(managed)
        self._system(f"{managed.name} {describe_exit(returncode)}")
        self._update_group(managed)
        if not self._stopping:
            self._begin_shutdown(exit_status(returncode))

    # -- stopping -------------------------------------------------------------------------------

    def _begin_shutdown(self, status: int) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._exit_status = status
        if any(m.group_alive for m in self._managed):
            self._system("sending SIGTERM to all processes")
        self._signal_all(signal.SIGTERM)
        self._kill_deadline = self._clock() + self._stop_timeout

    def _advance_shutdown(self) -> None:
        for managed in self._managed:
            if managed.group_alive and managed.returncode is not None:
                self._update_group(managed)
        if self._killed or self._kill_deadline is None or self._clock() < self._kill_deadline:
            return
        alive = [m.name for m in self._managed if m.group_alive]
        if alive or self._strays:
            self._system(f"sending SIGKILL to {', '.join(alive) or 'leftover processes'}")
        self._signal_all(signal.SIGKILL)
        self._killed = True

    def _signal_all(self, signum: signal.Signals) -> None:
        for managed in self._managed:
            if managed.group_alive:
                _signal_group(managed.child.pgid, signum)
        self._strays.update(self._adopted_orphans())
        for pid in list(self._strays):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                self._strays.discard(pid)

    def _update_group(self, managed: Managed) -> None:
        """Once the leader has exited, the group lives on while any grandchild is still in it."""
        managed.group_alive = _group_exists(managed.child.pgid)
        if not managed.group_alive and self._watchdog is not None:
            self._watchdog.release(managed.child.pgid)

    def _adopted_orphans(self) -> set[int]:
        """Descendants that left their process group (daemons) and were re-parented to us."""
        import psutil  # only needed while stopping; keeps start-up light

        known = set(self._by_pid)
        if self._watchdog is not None:
            known.add(self._watchdog.pid)
        try:
            children = psutil.Process().children()
        except psutil.Error:
            return set()
        return {child.pid for child in children if child.pid not in known}


def _note_signal(signum: int, frame: object) -> None:
    """The byte written to the wakeup fd is all we need; the loop reads it."""


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _become_subreaper() -> None:
    """Orphaned grandchildren come to us instead of init, so we can reap and stop them."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_child_subreaper = 36
        libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: process groups still cover every child that stays in its group
