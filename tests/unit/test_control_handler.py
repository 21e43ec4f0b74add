"""The control socket's handler at its seam: parsed requests in, the supervisor's typed methods
called, replies out byte for byte as docs/control.md shows them. A fake supervisor stands in for
the loop; a real Supervisor that has not started anything answers the requests that need no
running process."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from procman.errors import ProcmanError, UsageError
from procman.procfile import parse_procfile
from procman.supervisor.control.handler import RequestHandler
from procman.supervisor.control.protocol import encode, error_reply, parse_request
from procman.supervisor.logbook import Entry
from procman.supervisor.output import Prefixer, Sink, StreamStyle
from procman.supervisor.process import State
from procman.supervisor.snapshot import ProcessSnapshot, Snapshot
from procman.supervisor.spawn import Spawner
from procman.supervisor.supervisor import LogTail, Restarted, Scaled, Stopped, Supervisor

GUNICORN = "gunicorn --bind 127.0.0.1:$PORT ..."


class FakeConnection:
    """What the handler uses of server.Connection; ``room`` replies fit before the peer is
    dropped, as a peer that stops reading is."""

    def __init__(self, room: int | None = None) -> None:
        self.sent: list[bytes] = []
        self.closed = False
        self.finished = False
        self.on_close: Callable[[FakeConnection], None] | None = None
        self._room = room

    def send(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        self.sent.append(encode(message))
        if self._room is not None and len(self.sent) >= self._room:
            self.close()

    def finish(self) -> None:
        self.finished = True

    def close(self) -> None:
        self.closed = True
        if self.on_close is not None:
            self.on_close(self)


class FakeSupervisor:
    """Answers with fixed results and records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.followers: list[Callable[[Entry], None]] = []
        self.unfollowed = 0
        self.error: ProcmanError | None = None
        self.snapshot_result = Snapshot(processes=(), formation={})
        self.tail = LogTail(names=(), types=(), entries=())

    def _called(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        if self.error is not None:
            raise self.error

    def snapshot(self) -> Snapshot:
        self._called("snapshot")
        return self.snapshot_result

    def scale(self, specs: Iterable[str]) -> Scaled:
        self._called("scale", tuple(specs))
        return Scaled(formation={"web": 1, "clock": 1})

    def restart(self, targets: Iterable[str]) -> Restarted:
        self._called("restart", tuple(targets))
        return Restarted(names=("clock.1",))

    def stop(self, targets: Iterable[str]) -> Stopped:
        targets = tuple(targets)
        self._called("stop", targets)
        return Stopped(names=(), everything=True) if not targets else Stopped(names=("web.1",))

    def log_tail(self, targets: Iterable[str], lines: int) -> LogTail:
        self._called("log_tail", tuple(targets), lines)
        return self.tail

    def follow_logs(
        self, targets: Iterable[str], deliver: Callable[[Entry], None]
    ) -> Callable[[], None]:
        self._called("follow_logs", tuple(targets))
        self.followers.append(deliver)

        def unfollow() -> None:
            self.unfollowed += 1
            self.followers.remove(deliver)

        return unfollow


def answer(supervisor: Any, line: bytes, connection: FakeConnection | None = None) -> bytes | None:
    """The reply line the server would send for a request line, as the server makes it."""
    handler = RequestHandler(supervisor)
    try:
        reply = handler(parse_request(line), connection or FakeConnection())
    except ProcmanError as error:
        reply = error_reply(error)
    return None if reply is None else encode(reply)


def test_ps_reply_is_the_documented_one() -> None:
    supervisor = FakeSupervisor()
    supervisor.snapshot_result = Snapshot(
        processes=(
            ProcessSnapshot(
                "web.1", "web", 27677, State.RUNNING, 5.0191234, 0, None, 5000, GUNICORN
            ),
            ProcessSnapshot("web.2", "web", 27727, State.RUNNING, 2.4849, 0, None, 5001, GUNICORN),
            ProcessSnapshot(
                "clock.1",
                "clock",
                27735,
                State.RUNNING,
                2.22,
                1,
                0,
                5100,
                "python -m snippets.clock",
            ),
        ),
        formation={"web": 2, "clock": 1},
    )
    assert answer(supervisor, b'{"verb":"ps"}') == (
        b'{"ok":true,"processes":['
        b'{"name":"web.1","type":"web","pid":27677,"state":"running","uptime":5.019,"restarts":0,'
        b'"last_exit":null,"port":5000,"command":"gunicorn --bind 127.0.0.1:$PORT ..."},'
        b'{"name":"web.2","type":"web","pid":27727,"state":"running","uptime":2.485,"restarts":0,'
        b'"last_exit":null,"port":5001,"command":"gunicorn --bind 127.0.0.1:$PORT ..."},'
        b'{"name":"clock.1","type":"clock","pid":27735,"state":"running","uptime":2.22,'
        b'"restarts":1,"last_exit":0,"port":5100,"command":"python -m snippets.clock"}],'
        b'"formation":{"web":2,"clock":1}}\n'
    )
    assert supervisor.calls == [("snapshot", ())]


def test_a_stopped_instance_has_no_pid_or_uptime() -> None:
    supervisor = FakeSupervisor()
    supervisor.snapshot_result = Snapshot(
        processes=(ProcessSnapshot("once.1", "once", None, State.CRASHED, None, 0, -9, 5000, "x"),),
        formation={"once": 1},
    )
    assert answer(supervisor, b'{"verb":"ps"}') == (
        b'{"ok":true,"processes":[{"name":"once.1","type":"once","pid":null,"state":"crashed",'
        b'"uptime":null,"restarts":0,"last_exit":-9,"port":5000,"command":"x"}],'
        b'"formation":{"once":1}}\n'
    )


@pytest.mark.parametrize(
    ("request_line", "call", "reply"),
    [
        (
            b'{"verb":"scale","changes":["web-1"]}',
            ("scale", (("web-1",),)),
            b'{"ok":true,"formation":{"web":1,"clock":1}}\n',
        ),
        (
            b'{"verb":"restart","targets":["clock"]}',
            ("restart", (("clock",),)),
            b'{"ok":true,"restarted":["clock.1"]}\n',
        ),
        (
            b'{"verb":"stop","targets":["web.1"]}',
            ("stop", (("web.1",),)),
            b'{"ok":true,"stopped":["web.1"]}\n',
        ),
        (b'{"verb":"stop"}', ("stop", ((),)), b'{"ok":true,"stopped":"all"}\n'),
    ],
)
def test_each_verb_calls_the_supervisor_once_and_replies_as_documented(
    request_line: bytes, call: tuple[str, tuple[Any, ...]], reply: bytes
) -> None:
    supervisor = FakeSupervisor()
    assert answer(supervisor, request_line) == reply
    assert supervisor.calls == [call]


def test_the_supervisors_refusal_is_the_error_reply() -> None:
    supervisor = FakeSupervisor()
    supervisor.error = UsageError(
        "unknown process 'nope'", "known: web, clock, web.1, web.2, clock.1"
    )
    assert answer(supervisor, b'{"verb":"restart","targets":["nope"]}') == (
        b'{"ok":false,"error":"unknown process \'nope\'",'
        b'"hint":"known: web, clock, web.1, web.2, clock.1","exit_status":2}\n'
    )


CLOCK_LINES = (
    Entry("clock.1", "clock", 1795349332.6754777, b"INFO snippets.clock: cleaning\n"),
    Entry("clock.1", "clock", 1795349332.6758463, b"INFO snippets.clock: deleted \xff\n"),
)
CLOCK_ENTRIES = [
    b'{"entry":{"name":"clock.1","type":"clock","time":1795349332.6754777,'
    b'"text":"INFO snippets.clock: cleaning\\n"}}\n',
    b'{"entry":{"name":"clock.1","type":"clock","time":1795349332.6758463,'
    b'"text":"INFO snippets.clock: deleted \\ufffd\\n"}}\n',
]


def logs_supervisor() -> FakeSupervisor:
    supervisor = FakeSupervisor()
    supervisor.tail = LogTail(
        names=("web.1", "clock.1"), types=("web", "clock"), entries=CLOCK_LINES
    )
    return supervisor


def test_logs_sends_the_header_and_the_tail_then_closes() -> None:
    supervisor = logs_supervisor()
    connection = FakeConnection()
    line = b'{"verb":"logs","targets":["clock"],"lines":2,"follow":false}'
    assert answer(supervisor, line, connection) is None
    assert connection.sent == [
        b'{"ok":true,"names":["web.1","clock.1"],"types":["web","clock"]}\n',
        *CLOCK_ENTRIES,
    ]
    assert connection.finished
    assert supervisor.calls == [("log_tail", (("clock",), 2))]


def test_logs_follow_streams_until_the_peer_leaves() -> None:
    supervisor = logs_supervisor()
    connection = FakeConnection()
    answer(supervisor, b'{"verb":"logs","targets":["clock"],"follow":true}', connection)
    assert not connection.finished
    assert supervisor.calls == [("log_tail", (("clock",), 0)), ("follow_logs", (("clock",),))]
    (deliver,) = supervisor.followers
    for entry in CLOCK_LINES:
        deliver(entry)
    assert connection.sent[1:] == CLOCK_ENTRIES * 2  # the tail, then what was delivered
    connection.close()
    assert supervisor.followers == []
    assert supervisor.unfollowed == 1


def test_a_peer_dropped_while_taking_the_tail_is_not_followed() -> None:
    supervisor = logs_supervisor()
    connection = FakeConnection(room=2)  # the header and one line, then it is dropped
    answer(supervisor, b'{"verb":"logs","lines":2,"follow":true}', connection)
    assert connection.closed
    assert supervisor.followers == []
    assert [name for name, _ in supervisor.calls] == ["log_tail"]


# -- a real Supervisor, before its loop has started anything ------------------------------------


@pytest.fixture
def supervisor() -> Iterator[tuple[Supervisor, list[dict[str, int]]]]:
    saved: list[dict[str, int]] = []
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        yield (
            Supervisor(
                parse_procfile("web: a\nworker: b\n"),
                {"web": 1, "worker": 2},
                base_port=5000,
                spawner=Spawner(os.getcwd()),
                environment=lambda instance: {},
                prefixer=Prefixer(StreamStyle()),
                sink=Sink(sink),
                stop_timeout=5.0,
                save_formation=lambda counts: saved.append(dict(counts)),
            ),
            saved,
        )
    finally:
        os.close(sink)


def test_a_real_supervisor_answers_ps_scale_and_logs(
    supervisor: tuple[Supervisor, list[dict[str, int]]],
) -> None:
    real, saved = supervisor
    assert answer(real, b'{"verb":"ps"}') == (
        b'{"ok":true,"processes":[],"formation":{"web":1,"worker":2}}\n'
    )
    assert answer(real, b'{"verb":"scale","changes":["web+1,worker=0"]}') == (
        b'{"ok":true,"formation":{"web":2,"worker":0}}\n'
    )
    assert saved == [{"web": 2, "worker": 0}]
    connection = FakeConnection()
    answer(real, b'{"verb":"logs","targets":["web"],"lines":5}', connection)
    assert connection.sent[0] == b'{"ok":true,"names":[],"types":["web","worker"]}\n'
    assert [line.split(b'"text":')[1] for line in connection.sent[1:]] == [
        b'"scaled to web=2, worker=0\\n"}}\n'  # procman's own line about the whole app
    ]
    assert connection.finished


@pytest.mark.parametrize(
    "request_line",
    [
        b'{"verb":"restart","targets":["wrok"]}',
        b'{"verb":"stop","targets":["wrok"]}',
        b'{"verb":"logs","targets":["wrok"],"follow":true}',
    ],
)
def test_a_real_supervisor_refuses_an_unknown_process(
    supervisor: tuple[Supervisor, list[dict[str, int]]], request_line: bytes
) -> None:
    connection = FakeConnection()
    assert answer(supervisor[0], request_line, connection) == (
        b'{"ok":false,"error":"unknown process \'wrok\'","hint":"did you mean \'worker\'? '
        b'known: web, worker","exit_status":2}\n'
    )
    assert connection.sent == []


def test_a_real_supervisor_refuses_a_bad_scale_and_changes_nothing(
    supervisor: tuple[Supervisor, list[dict[str, int]]],
) -> None:
    real, saved = supervisor
    assert answer(real, b'{"verb":"scale","changes":["web=2","worker-3"]}') == (
        b'{"ok":false,"error":"worker-3: worker has 2 instances, cannot go below 0",'
        b'"hint":"use \'worker=0\' to stop them all","exit_status":2}\n'
    )
    assert saved == []
    assert real.snapshot().formation == {"web": 1, "worker": 2}
