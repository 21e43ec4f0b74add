"""Looking at a deployed environment: ``procman ps --env`` (every instance on every host) and
``procman logs --env`` (the hosts' log streams as one).

Both fan out to every host of the environment at once. A host that does not answer is an outcome
like any other: ``ps`` lists it, saying what it waited for, and never drops it; ``logs`` says so
and goes on with the others.
"""

from __future__ import annotations

import json
import re
import select
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from procman.deploy import steps
from procman.deploy.config import DeployConfig, Environment
from procman.deploy.host import DeployHost, StepFailed, tail
from procman.deploy.hostgroup import HostGroup
from procman.deploy.transport.base import Stream, Transport
from procman.errors import ProcmanError

Connect = Callable[..., Transport]

PS_TIMEOUT = 15.0
"""Seconds a host may take to list its processes, once connected."""
LOGS_TIMEOUT = 15.0
"""Seconds a host may take to start sending its log stream, once connected."""


@dataclass(frozen=True, slots=True)
class HostProcesses:
    """What one host runs: the release ``current`` points at and every instance of every
    ``procman start`` running there; or, when it did not answer, why (``error``)."""

    host: str
    current: str | None = None
    processes: tuple[dict[str, Any], ...] = ()
    """``procman ps --json`` rows, each with its ``release``."""
    error: str | None = None

    @property
    def answered(self) -> bool:
        return self.error is None

    def as_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "answered": self.answered,
            "error": self.error,
            "current": self.current,
            "processes": [dict(row) for row in self.processes],
        }


def waited_for(error: ProcmanError, transport: Transport, answer: float) -> str:
    """``error`` with the waits it ended: the connection (when the transport has a bound for it),
    then the answer."""
    connect = getattr(transport, "connect_timeout", None)
    waits = f"up to {connect:g}s to connect and " if isinstance(connect, float | int) else ""
    hint = f" ({error.hint})" if error.hint else ""
    return f"{error.message}; waited {waits}up to {answer:g}s for an answer{hint}"


def group_of(
    config: DeployConfig, environment: Environment, connect: Connect
) -> HostGroup[DeployHost]:
    """The environment's hosts as a group, not connected yet (each connects on first use)."""
    return HostGroup(
        [
            DeployHost(host, environment, connect(host, environment), shared=config.shared)
            for host in environment.hosts
        ]
    )


def host_processes(host: DeployHost) -> HostProcesses:
    """Every instance the ``procman start`` processes of ``host`` run, each with its release."""
    current = host.current()
    rows: list[dict[str, Any]] = []
    for release_id in host.supervisors():
        listed = host.transport.run(
            steps.procman_in_release(host.root, release_id, ["ps", "--json"]), timeout=PS_TIMEOUT
        )
        if not listed.ok:
            if b"no procman is running" in listed.stderr:
                continue  # it stopped between the two looks
            raise StepFailed(host.label, f"ps {release_id}", tail(listed.stdout + listed.stderr))
        try:
            processes: list[dict[str, Any]] = json.loads(listed.stdout)
        except ValueError:
            raise StepFailed(
                host.label, f"ps {release_id}", f"not JSON: {tail(listed.stdout, 3)}"
            ) from None
        rows += [{"host": host.label, "release": release_id, **p} for p in processes]
    return HostProcesses(host.label, current, tuple(rows))


def processes(hosts: HostGroup[DeployHost]) -> list[HostProcesses]:
    """Every host's processes, in procman.yml's order; a host that failed to answer is there
    with its error."""
    result = hosts.run(host_processes)
    found: list[HostProcesses] = []
    for host, outcome in zip(result.ran, result.outcomes, strict=True):
        if outcome.error is not None:
            found.append(
                HostProcesses(
                    outcome.host, error=waited_for(outcome.error, host.transport, PS_TIMEOUT)
                )
            )
        else:
            assert outcome.value is not None
            found.append(outcome.value)
    return found


# -- logs ---------------------------------------------------------------------------------------

LINE = re.compile(r"^(?:(?P<time>\d\d:\d\d:\d\d) )?(?P<name>\S+) +\| (?P<text>.*)$", re.S)


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of a host's log stream: ``time`` as the host wrote it (HH:MM:SS, its local
    time), the instance (``web.1``, ``system``) and its type, the text with its newline."""

    host: str
    time: str
    name: str
    type: str
    text: str


def parse_log_line(host: str, line: str) -> LogLine:
    """A line of ``steps.SUPERVISOR_LOG``; one procman wrote without a prefix (its own error,
    say) is ``system``'s, at the time it arrived."""
    match = LINE.match(line)
    if match is None:
        return LogLine(host, time.strftime("%H:%M:%S"), "system", "system", line)
    name = match["name"]
    stamp = match["time"] or time.strftime("%H:%M:%S")
    return LogLine(host, stamp, name, name.rsplit(".", 1)[0], match["text"])


@dataclass
class _Source:
    host: str
    stream: Stream
    pending: bytes = b""


@dataclass
class LogStreams:
    """The log streams of every host that answered, read as one (``lines``), and what the others
    said (``problems``). Closing it closes every stream (and so ends the readers on the hosts)."""

    sources: list[_Source]
    follow: bool
    problems: list[str] = field(default_factory=list)
    """``host: what went wrong``, for hosts that did not answer or whose stream ended badly."""
    _said: int = 0

    def lines(self, on_problem: Callable[[str], None]) -> Iterator[LogLine]:
        """Every line as it comes, from whichever host; ``on_problem`` hears of hosts that did
        not answer and, when following, of a host whose stream ended (the others go on). Ends
        when every stream has ended."""
        live = list(self.sources)
        self._tell(on_problem)
        while live:
            ready, _, _ = select.select(live_fds(live), [], [], 1.0)
            for source in list(live):
                if source.stream.fileno() not in ready and not source.stream.ended:
                    continue
                data = source.stream.read()
                if data:
                    text = source.pending + data
                    end = text.rfind(b"\n") + 1
                    source.pending = text[end:]
                    for line in text[:end].decode(errors="replace").splitlines(keepends=True):
                        yield parse_log_line(source.host, line)
                elif source.stream.ended:
                    live.remove(source)
                    if source.pending:
                        yield parse_log_line(source.host, source.pending.decode() + "\n")
                    if self.follow:
                        self.problems.append(
                            f"{source.host}: its log stream ended (the connection was lost, or "
                            "the reader on the host stopped); the other hosts' go on"
                        )
            self._tell(on_problem)

    def _tell(self, on_problem: Callable[[str], None]) -> None:
        while self._said < len(self.problems):
            on_problem(self.problems[self._said])
            self._said += 1

    def close(self) -> None:
        for source in self.sources:
            source.stream.close()


def live_fds(sources: Sequence[_Source]) -> list[int]:
    return [source.stream.fileno() for source in sources]


def open_logs(
    hosts: HostGroup[DeployHost], lines: int, follow: bool, targets: Sequence[str]
) -> LogStreams:
    """Start the log reader on every host at once (``steps.follow_logs``)."""

    def start(host: DeployHost) -> Stream:
        return host.transport.stream(
            steps.follow_logs(host.root, lines, follow, targets), timeout=LOGS_TIMEOUT
        )

    result = hosts.run(start)
    sources = [_Source(label, stream) for label, stream in result.values.items()]
    problems = [
        waited_for(outcome.error, host.transport, LOGS_TIMEOUT)
        for host, outcome in zip(result.ran, result.outcomes, strict=True)
        if outcome.error is not None
    ]
    return LogStreams(sources, follow, problems)
