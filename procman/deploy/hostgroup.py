"""The hosts of an environment as one group: a step run on every host at once, one thread and one
connection each, and every host's outcome returned (fabric's ``Group`` and ``GroupResult``).

Deploy, promotion, rollback, restart and the day-two commands (config, scale, ps, logs, run) all
fan out through here: ``HostGroup.run`` (every host in parallel), ``HostGroup.one_by_one`` (a
rolling change: one host after the other, stopping at the first failure). A failure is never
reduced to the last host's: ``GroupResult.raise_on_failure`` raises a ``HostGroupError`` that
carries every failed host, and names the hosts that did the step.

A Ctrl-C lets the steps under way finish (the threads are joined) before it is raised, so that a
caller knows what every host did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar, overload

from procman.deploy.progress import main_thread_takes_ctrl_c
from procman.errors import ProcmanError

T = TypeVar("T")


class Member(Protocol):
    """What a group holds: a host with a label for messages, closed once at the end."""

    @property
    def label(self) -> str: ...

    def close(self) -> None: ...


H = TypeVar("H", bound=Member)


class DeployError(ProcmanError):
    """A deploy, promotion, rollback or day-two command stopped; what changed (nothing, or rolled
    back) is said."""


class HostGroupError(DeployError):
    """A step failed on one or more hosts. ``failures`` holds every failed host's error, in host
    order; ``succeeded`` names the hosts where the step was done. The message is the last
    failure's, followed by the consequence (what was done about it)."""

    def __init__(
        self,
        failures: Sequence[tuple[str, ProcmanError]],
        consequence: str | None = None,
        succeeded: Sequence[str] = (),
    ) -> None:
        if not failures:
            raise ValueError("a HostGroupError needs at least one failure")
        last = failures[-1][1]
        message = f"{last.message}; {consequence}" if consequence else last.message
        super().__init__(message, last.hint)
        self.failures = tuple(failures)
        self.succeeded = tuple(succeeded)

    @property
    def failed_hosts(self) -> tuple[str, ...]:
        return tuple(host for host, _ in self.failures)

    @property
    def errors(self) -> tuple[ProcmanError, ...]:
        return tuple(error for _, error in self.failures)


@dataclass(frozen=True, slots=True)
class HostOutcome(Generic[T]):
    """What a step did on one host: its value, or the error it raised."""

    host: str
    value: T | None = None
    error: ProcmanError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class GroupResult(Generic[H, T]):
    """Every host's outcome of one step, in the group's host order. With ``one_by_one``, the
    hosts after a failure did not run the step: they are in ``skipped``, not in ``outcomes``."""

    def __init__(self, ran: Sequence[tuple[H, HostOutcome[T]]], skipped: Sequence[H] = ()) -> None:
        self._ran = tuple(ran)
        self.skipped: tuple[H, ...] = tuple(skipped)

    @property
    def outcomes(self) -> tuple[HostOutcome[T], ...]:
        return tuple(outcome for _, outcome in self._ran)

    @property
    def ran(self) -> list[H]:
        """The hosts the step ran on (succeeded or not)."""
        return [member for member, _ in self._ran]

    @property
    def succeeded(self) -> list[H]:
        return [member for member, outcome in self._ran if outcome.ok]

    @property
    def failed(self) -> list[H]:
        return [member for member, outcome in self._ran if not outcome.ok]

    @property
    def ok(self) -> bool:
        return all(outcome.ok for _, outcome in self._ran)

    @property
    def errors(self) -> list[ProcmanError]:
        """The errors raised, in host order."""
        return [outcome.error for _, outcome in self._ran if outcome.error is not None]

    @property
    def values(self) -> dict[str, T]:
        """Each succeeded host's value, by label."""
        return {
            outcome.host: outcome.value  # type: ignore[misc]
            for _, outcome in self._ran
            if outcome.ok
        }

    def __getitem__(self, label: str) -> HostOutcome[T]:
        for _, outcome in self._ran:
            if outcome.host == label:
                return outcome
        raise KeyError(label)

    def error(self, consequence: str | None = None) -> HostGroupError | None:
        """The failure of this step as one error carrying every failed host, or None."""
        failures = [(o.host, o.error) for _, o in self._ran if o.error is not None]
        if not failures:
            return None
        done = [member.label for member in self.succeeded]
        return HostGroupError(failures, consequence, done)

    def raise_on_failure(
        self, consequence: str | None = None, say: Callable[[str], None] | None = None
    ) -> None:
        """Raise ``HostGroupError`` when the step failed anywhere; ``say`` gets an ``error:``
        line for each failure but the last (which is the error's message)."""
        failure = self.error(consequence)
        if failure is None:
            return
        if say is not None:
            for error in failure.errors[:-1]:
                say(f"error: {error}")
        raise failure


class HostGroup(Generic[H]):
    """Hosts, each with its own connection, worked on together. Iterating, ``len`` and indexing
    give the hosts in the order procman.yml lists them. As a context manager, it closes every
    host's connection at the end."""

    def __init__(self, members: Sequence[H]) -> None:
        self._members = tuple(members)

    def __iter__(self) -> Iterator[H]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    @overload
    def __getitem__(self, index: int) -> H: ...

    @overload
    def __getitem__(self, index: slice) -> list[H]: ...

    def __getitem__(self, index: int | slice) -> H | list[H]:
        if isinstance(index, slice):
            return list(self._members[index])
        return self._members[index]

    @property
    def labels(self) -> list[str]:
        return [member.label for member in self._members]

    def only(self, members: Sequence[H]) -> HostGroup[H]:
        """The group of ``members`` (a part of this one), sharing their connections."""
        return HostGroup(members)

    def run(self, step: Callable[[H], T]) -> GroupResult[H, T]:
        """Run ``step`` on every host at once, one thread each; every host's outcome. A
        ``ProcmanError`` is that host's outcome; anything else propagates."""
        return GroupResult(list(zip(self._members, _parallel(self._members, step), strict=True)))

    def one_by_one(self, step: Callable[[H], T]) -> GroupResult[H, T]:
        """Run ``step`` on one host after the other (a rolling change), stopping at the first
        failure: the hosts after it are ``skipped``."""
        ran: list[tuple[H, HostOutcome[T]]] = []
        for index, member in enumerate(self._members):
            outcome = _parallel([member], step)[0]
            ran.append((member, outcome))
            if not outcome.ok:
                return GroupResult(ran, self._members[index + 1 :])
        return GroupResult(ran)

    def close(self) -> None:
        for member in self._members:
            member.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _parallel(members: Sequence[H], step: Callable[[H], T]) -> list[HostOutcome[T]]:
    """``step`` on every member at once, in threads that leave Ctrl-C to the main thread; the
    outcomes in member order. Leaving the pool joins the threads, on a Ctrl-C too."""
    if not members:
        return []

    def guarded(member: H) -> HostOutcome[T]:
        try:
            return HostOutcome(member.label, value=step(member))
        except ProcmanError as error:
            return HostOutcome(member.label, error=error)

    with ThreadPoolExecutor(len(members), initializer=main_thread_takes_ctrl_c) as pool:
        return list(pool.map(guarded, members))
