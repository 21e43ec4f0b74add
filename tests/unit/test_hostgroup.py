"""The host group at the transport seam: ``DeployHost``s over fake transports that answer (or
fail) each command, so every host's outcome can be checked in milliseconds. The same group runs
every deploy through real sshd hosts in tests/integration/test_deploy*.py."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import PurePosixPath

import pytest

from procman.deploy.config import Environment, Host
from procman.deploy.host import DeployHost, StepFailed
from procman.deploy.hostgroup import HostGroup, HostGroupError
from procman.deploy.transport.base import (
    ClosesOnExit,
    ConnectionLost,
    Result,
    StrPath,
    TransportError,
)

pytestmark = pytest.mark.timeout(30)


class FakeTransport(ClosesOnExit):
    """A host that answers every command with ``answer`` (or raises ``raises``), noting each."""

    def __init__(
        self, name: str, answer: Result | None = None, raises: TransportError | None = None
    ) -> None:
        self.name = name
        self.answer = answer or Result(0, b"", b"")
        self.raises = raises
        self.commands: list[list[str]] = []
        self.closed = False
        self.threads: set[str] = set()

    @property
    def host(self) -> str:
        return self.name

    def run(self, argv: Sequence[str], *, timeout: float, input: bytes | None = None) -> Result:
        self.commands.append(list(argv))
        self.threads.add(threading.current_thread().name)
        if self.raises is not None:
            raise self.raises
        return self.answer

    def put(self, local_path: StrPath, remote_path: str | PurePosixPath) -> None:
        raise AssertionError("no uploads here")

    def get(self, remote_path: str | PurePosixPath, local_path: StrPath) -> None:
        raise AssertionError("no downloads here")

    def close(self) -> None:
        self.closed = True


ENVIRONMENT = Environment(name="staging", hosts=(), path="/srv/app")


def group(*transports: FakeTransport) -> HostGroup[DeployHost]:
    return HostGroup([DeployHost(Host(t.name), ENVIRONMENT, t) for t in transports])


def test_a_step_runs_on_every_host_each_on_its_own_thread_and_every_outcome_comes_back() -> None:
    a, b, c = (FakeTransport(name, Result(0, name.encode(), b"")) for name in ("a", "b", "c"))
    hosts = group(a, b, c)
    together = threading.Barrier(3, timeout=5)  # broken unless all three run at once

    def step(host: DeployHost) -> str:
        together.wait()
        return host.transport.run(["echo"], timeout=1).stdout.decode()

    result = hosts.run(step)
    assert result.ok
    assert result.values == {"a": "a", "b": "b", "c": "c"}
    assert [o.host for o in result.outcomes] == ["a", "b", "c"]
    assert result.error("nothing") is None
    threads = a.threads | b.threads | c.threads
    assert len(threads) == 3 and threading.main_thread().name not in threads


def test_the_error_carries_every_failed_host_not_only_the_last() -> None:
    lost = ConnectionLost("b", "ssh", "the connection dropped")
    failing = Result(1, b"", b"disk full")
    a, b, c = FakeTransport("a"), FakeTransport("b", raises=lost), FakeTransport("c", failing)
    result = group(a, b, c).run(lambda host: host.unlock())
    assert not result.ok
    assert [h.label for h in result.failed] == ["b", "c"]
    assert [h.label for h in result.succeeded] == ["a"]
    said: list[str] = []
    with pytest.raises(HostGroupError) as caught:
        result.raise_on_failure("nothing was changed", said.append)
    error = caught.value
    assert error.failed_hosts == ("b", "c")
    assert error.succeeded == ("a",)
    assert isinstance(error.errors[0], ConnectionLost)
    assert isinstance(error.errors[1], StepFailed)
    assert error.message == "c: unlock: exit status 1: disk full; nothing was changed"
    assert said == ["error: b: unlock: the connection dropped"]
    assert result["b"].error is error.errors[0] and result["a"].ok


def test_one_by_one_stops_at_the_first_failure_and_skips_the_rest() -> None:
    a, b, c = FakeTransport("a"), FakeTransport("b", Result(2, b"", b"no")), FakeTransport("c")
    result = group(a, b, c).one_by_one(lambda host: host.unlock())
    assert [h.label for h in result.ran] == ["a", "b"]
    assert [h.label for h in result.skipped] == ["c"]
    assert c.commands == []
    assert result.error() is not None and result.error().failed_hosts == ("b",)  # type: ignore[union-attr]


def test_an_error_that_is_no_procman_error_propagates() -> None:
    def broken(host: DeployHost) -> None:
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        group(FakeTransport("a")).run(broken)


def test_the_group_closes_every_connection_at_its_end_even_on_an_error() -> None:
    a, b = FakeTransport("a"), FakeTransport("b")
    with pytest.raises(RuntimeError), group(a, b) as hosts:
        assert len(hosts) == 2 and hosts[1].label == "b" and hosts.labels == ["a", "b"]
        raise RuntimeError("stop")
    assert a.closed and b.closed


def test_only_is_a_part_of_the_group_and_an_empty_group_runs_nothing() -> None:
    a, b = FakeTransport("a"), FakeTransport("b")
    hosts = group(a, b)
    part = hosts.only([hosts[1]])
    assert part.run(lambda host: host.unlock()).values == {"b": None}
    assert a.commands == [] and len(b.commands) == 1
    assert hosts.only([]).run(lambda host: host.unlock()).ok
