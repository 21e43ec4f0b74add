"""What each host is doing now, for the person waiting: the steps under way, a progress line for
each long one, and what a Ctrl-C waits for.

Deploy steps run on one thread per host; each says when it starts and ends (``Progress.step``).
While ``Progress.reported`` is active, a thread prints ``HOST: STEP: still running after Ns``
every ``every`` seconds of a step. ``said_on_interrupt`` makes the first Ctrl-C say at once
which steps it lets finish, and the second that it no longer waits.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

PROGRESS_EVERY = 10.0
"""Seconds between two progress lines of one step."""
_TICK = 1.0

Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class UnderWay:
    host: str
    step: str
    elapsed: float


class Progress:
    """The steps under way on every host; thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._steps: dict[int, tuple[str, str, float]] = {}
        self._shown: dict[int, int] = {}
        self._next = 0

    @contextmanager
    def step(self, host: str, step: str) -> Iterator[None]:
        """``step`` is under way on ``host`` while inside."""
        with self._lock:
            key = self._next
            self._next += 1
            self._steps[key] = (host, step, self._clock())
        try:
            yield
        finally:
            with self._lock:
                del self._steps[key]
                self._shown.pop(key, None)

    def under_way(self) -> list[UnderWay]:
        """The steps under way, oldest first."""
        now = self._clock()
        with self._lock:
            steps = sorted(self._steps.values(), key=lambda entry: entry[2])
        return [UnderWay(host, step, now - began) for host, step, began in steps]

    def due(self, every: float) -> list[UnderWay]:
        """The steps that have run another ``every`` seconds since they were last shown."""
        now = self._clock()
        due = []
        with self._lock:
            for key, (host, step, began) in sorted(self._steps.items()):
                periods = int((now - began) // every)
                if periods > self._shown.get(key, 0):
                    self._shown[key] = periods
                    due.append(UnderWay(host, step, now - began))
        return due

    @contextmanager
    def reported(self, say: Say | None, every: float = PROGRESS_EVERY) -> Iterator[None]:
        """While inside, every ``every`` seconds of a step: ``HOST: STEP: still running after
        Ns``. Nothing when ``say`` is None (standard output is not a terminal)."""
        if say is None:
            yield
            return
        stop = threading.Event()

        def report() -> None:
            main_thread_takes_ctrl_c()
            while not stop.wait(min(_TICK, every)):
                for step in self.due(every):
                    say(f"{step.host}: {step.step}: still running after {int(step.elapsed)}s")

        thread = threading.Thread(target=report, name="procman-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def interrupted(self, count: int) -> str:
        """What the ``count``-th Ctrl-C does, in words."""
        steps = self.under_way()
        if count > 1:
            return "interrupted again: not waiting for the steps under way (they may still run)"
        if not steps:
            return "interrupted"
        waiting = "; ".join(f"{s.host}: {s.step}, {s.elapsed:.0f}s so far" for s in steps)
        return f"interrupted: letting the steps under way finish ({waiting}); Ctrl-C again to stop"


def main_thread_takes_ctrl_c() -> None:
    """Block SIGINT in the calling thread (and the threads it starts, paramiko's among them), so
    that Ctrl-C goes to the main thread and interrupts its wait at once: a signal that another
    thread receives only runs its handler once the main thread's wait is over, which for a step
    under way can be minutes."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


@contextmanager
def said_on_interrupt(say: Say, progress: Progress) -> Iterator[None]:
    """While inside: each Ctrl-C (SIGINT) says at once what it does (``Progress.interrupted``),
    then raises KeyboardInterrupt as usual. Only on the main thread, where Python's own handler
    is in place; elsewhere nothing changes."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    count = 0

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal count
        count += 1
        try:
            say(progress.interrupted(count))
        except RuntimeError:  # the main thread was writing that stream itself
            pass
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
