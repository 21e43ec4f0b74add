"""Pure pieces of live formation control: scale specs, the protocol, the log ring, backoff, the
run directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procman.errors import ConfigError, FormationError, ProcmanError
from procman.formation import apply_scale, format_formation, parse_scale, scaled
from procman.procfile import parse_procfile
from procman.rundir import MAX_SOCKET_PATH, RunDir
from procman.supervisor.control.protocol import ProtocolError, parse_request
from procman.supervisor.logbook import Entry, Logbook
from procman.supervisor.process import backoff_delay

PROCFILE = parse_procfile("web: a\nworker: b\n")


def test_scale_specs() -> None:
    changes = parse_scale(["worker=3", "web+1,worker-2"])
    assert [str(c) for c in changes] == ["worker=3", "web+1", "worker-2"]
    assert apply_scale({"web": 1, "worker": 1}, changes) == {"web": 2, "worker": 1}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("worker", "cannot read 'worker' (write TYPE=N, TYPE+N or TYPE-N"),
        ("worker=-1", "worker=-1: the count must be a whole number 0 or more"),
        ("worker=two", "worker=two: the count must be a whole number 0 or more"),
        ("", "no change given"),
    ],
)
def test_bad_scale_specs(spec: str, message: str) -> None:
    with pytest.raises(FormationError) as caught:
        parse_scale([spec])
    assert str(caught.value).startswith(message)


def test_scale_below_zero_changes_nothing() -> None:
    current = {"web": 1, "worker": 1}
    with pytest.raises(FormationError, match="worker-2: worker has 1 instance, cannot go below 0"):
        apply_scale(current, parse_scale(["web=5", "worker-2"]))
    assert current == {"web": 1, "worker": 1}


def test_scaled_checks_types_and_ports() -> None:
    assert scaled(PROCFILE, {"web": 1, "worker": 1}, parse_scale(["worker=3"]), 5000) == {
        "web": 1,
        "worker": 3,
    }
    with pytest.raises(FormationError, match="scale: unknown process type 'clock'"):
        scaled(PROCFILE, {"web": 1}, parse_scale(["clock=1"]), 5000)
    with pytest.raises(FormationError, match="above 65535"):
        scaled(PROCFILE, {"web": 1}, parse_scale(["worker=2"]), 65435)
    assert format_formation({"web": 1, "worker": 3}) == "web=1, worker=3"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=20), max_size=4))
def test_any_scale_spec_gives_a_result_or_our_error(specs: list[str]) -> None:
    try:
        changes = parse_scale(specs)
        apply_scale({"web": 1, "worker": 1}, changes)
    except ProcmanError:
        pass


def test_requests() -> None:
    request = parse_request(b'{"verb": "logs", "targets": ["web"], "lines": 5, "follow": true}')
    assert (request.verb, request.targets, request.lines, request.follow) == (
        "logs",
        ("web",),
        5,
        True,
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"not json", "not a JSON line"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"verb": "explode"}', "unknown verb 'explode'"),
        (b'{"verb": "restart", "targets": "web"}', "'targets' must be a list of strings"),
        (b'{"verb": "logs", "lines": -1}', "'lines' must be a whole number 0 or more"),
        (b'{"verb": "logs", "lines": true}', "'lines' must be a whole number 0 or more"),
        (b'{"verb": "logs", "follow": "false"}', "'follow' must be true or false"),
        (b'{"verb": "logs", "follow": 1}', "'follow' must be true or false"),
        (b"\xff\xfe", "not a JSON line"),
    ],
)
def test_bad_requests(line: bytes, message: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_request(line)
    assert caught.value.message == message


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_request_line_gives_a_request_or_a_protocol_error(line: bytes) -> None:
    try:
        parse_request(line)
    except ProtocolError:
        pass


def test_logbook_keeps_the_last_lines_and_filters() -> None:
    book = Logbook(capacity=100)
    for i in range(300):
        book.append(
            Entry(
                "web.1" if i % 2 else "worker.1", "web" if i % 2 else "worker", i, f"{i}\n".encode()
            )
        )
    web = book.tail(3, lambda entry: entry.type == "web")
    assert [entry.text for entry in web] == [b"295\n", b"297\n", b"299\n"]
    everything = book.tail(1000, lambda entry: True)
    assert 100 <= len(everything) <= 101
    assert everything[-1].text == b"299\n"


def test_logbook_splits_chunks_into_lines() -> None:
    book = Logbook()
    book.append(Entry("web.1", "web", 0, b"a\nb\nc\n"))
    assert [entry.text for entry in book.tail(2, lambda entry: True)] == [b"b\n", b"c\n"]


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff_delay(10_000) == 30


def test_formation_file_round_trip(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path)
    assert run_dir.load_formation() is None
    run_dir.save_formation({"web": 2, "worker": 0})
    assert run_dir.load_formation() == {"web": 2, "worker": 0}
    assert json.loads(run_dir.formation_path.read_text()) == {"web": 2, "worker": 0}


@pytest.mark.parametrize("content", ["{", "[1]", '{"web": -1}', '{"web": true}', '{"web": "2"}'])
def test_a_damaged_formation_file_says_how_to_fix_it(tmp_path: Path, content: str) -> None:
    run_dir = RunDir(tmp_path)
    run_dir.ensure()
    run_dir.formation_path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        run_dir.load_formation()
    assert f"delete {run_dir.formation_path}" in str(caught.value)


def test_a_long_app_path_gets_a_short_socket(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    assert len(str(RunDir(tmp_path).socket_path)) <= MAX_SOCKET_PATH
    assert RunDir(tmp_path).socket_path == tmp_path / ".procman" / "procman.sock"
    short = RunDir(deep).socket_path
    assert len(str(short)) <= MAX_SOCKET_PATH
    assert short == RunDir(deep).socket_path  # client and server agree


def test_an_unusable_app_directory_is_a_clear_error(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    with pytest.raises(ProcmanError, match=r"^cannot create .*file/\.procman"):
        RunDir(not_a_directory).lock()


def test_a_momentary_check_does_not_make_a_start_fail(tmp_path: Path) -> None:
    import fcntl
    import os
    import threading

    from procman.rundir import AlreadyRunning

    run_dir = RunDir(tmp_path)
    run_dir.ensure()
    lock_file = tmp_path / ".procman" / "procman.pid"
    lock_file.write_text("1\n")
    # A check holds a shared lock for an instant (is_running, or flock -s on a deploy host) ...
    check = os.open(lock_file, os.O_RDONLY)
    fcntl.flock(check, fcntl.LOCK_SH)
    threading.Timer(0.05, os.close, [check]).start()
    fd = run_dir.lock()  # ... and the start waits it out instead of failing
    try:
        with pytest.raises(AlreadyRunning, match=rf"\(pid {os.getpid()}\)"):
            RunDir(tmp_path).lock()  # a real holder stays: refused after the retries
        assert run_dir.is_running()
    finally:
        os.close(fd)
