"""What the supervisor knows of each instance (a *slot* such as ``web.2``) and of each OS process
started for it (a *run*: a slot gets a new run on every restart)."""

from __future__ import annotations

import enum
import signal
from dataclasses import dataclass, field

from procman.exitcodes import status_for_signal
from procman.formation import Instance
from procman.supervisor.output import LineSplitter
from procman.supervisor.spawn import Child

STARTING_SECONDS = 1.0
"""An instance is "starting" until it prints something or has been up this long."""
BACKOFF_FIRST = 1.0
BACKOFF_CAP = 30.0
BACKOFF_RESET_AFTER = 10.0
"""A restarted instance that stays up this long is healthy again: its next crash waits
BACKOFF_FIRST."""
COMMAND_NOT_FOUND = 127
"""The exit status sh gives when it cannot find the command."""


class State(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    CRASHED = "crashed"
    RESTARTING = "restarting"
    EXITED = "exited"


class Then(enum.Enum):
    """What to do with a slot once its run has fully stopped."""

    RESTART = enum.auto()
    REMOVE = enum.auto()  # scaled away
    IDLE = enum.auto()  # `procman stop NAME`: keep the slot, stopped


@dataclass(eq=False, slots=True)
class Run:
    slot: Slot
    child: Child
    started_at: float
    splitter: LineSplitter = field(default_factory=LineSplitter)
    returncode: int | None = None
    output_open: bool = True
    group_alive: bool = True
    kill_at: float | None = None
    killed: bool = False
    printed: bool = False

    @property
    def name(self) -> str:
        return self.slot.name

    @property
    def type(self) -> str:
        return self.slot.instance.type

    @property
    def alive(self) -> bool:
        """The leader has not exited, or something is still left in its process group."""
        return self.returncode is None or self.group_alive


@dataclass(eq=False, slots=True)
class Slot:
    instance: Instance
    state: State = State.STARTING
    run: Run | None = None
    launches: int = 0
    last_exit: int | None = None
    crashes_in_a_row: int = 0
    start_at: float | None = None
    then: Then | None = None
    service: bool = False
    """A service (the private Redis), named by its type alone: ``redis``."""

    @property
    def name(self) -> str:
        return self.instance.type if self.service else self.instance.name

    @property
    def restarts(self) -> int:
        return max(0, self.launches - 1)

    def shown_state(self, now: float) -> State:
        run = self.run
        if (
            self.state is State.STARTING
            and run is not None
            and (run.printed or now - run.started_at >= STARTING_SECONDS)
        ):
            return State.RUNNING
        return self.state


def backoff_delay(crashes_in_a_row: int) -> float:
    """1 s after the first crash, doubling each time, at most 30 s."""
    exponent = min(max(crashes_in_a_row - 1, 0), 16)
    return float(min(BACKOFF_FIRST * 2**exponent, BACKOFF_CAP))


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"terminated by {signal.Signals(-returncode).name}"
    if returncode == COMMAND_NOT_FOUND:
        return (
            f"exited with code {returncode} (the shell's 'command not found': is the program "
            "installed, and on the PATH procman was started with? activate the app's "
            "virtualenv, or write the command's full path in the Procfile)"
        )
    return f"exited with code {returncode}"


def exit_status(returncode: int) -> int:
    return status_for_signal(-returncode) if returncode < 0 else returncode
