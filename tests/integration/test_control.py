"""End-to-end: a real ``procman start``, its control socket and the client commands."""

from __future__ import annotations

import itertools
import json
import os
import re
import select
import signal
import socket
import subprocess
import time
from typing import Any

import pytest

from tests.conftest import (
    PROCMAN,
    WATCHDOG_BOUND,
    App,
    LiveOutput,
    tagged_processes,
    wait_until,
)

pytestmark = pytest.mark.timeout(90)

TICKER = 'while :; do echo "$PS tick $PORT"; sleep 0.05; done'


def ps(app: App) -> list[dict[str, Any]]:
    result = app.run("ps", "--json")
    assert result.returncode == 0, result.stderr
    processes: list[dict[str, Any]] = json.loads(result.stdout)
    return processes


def by_name(app: App) -> dict[str, dict[str, Any]]:
    return {process["name"]: process for process in ps(app)}


def started(
    app: App, live: type[LiveOutput], *args: str
) -> tuple[subprocess.Popen[bytes], LiveOutput]:
    procman = app.spawn("start", *args)
    output = live(procman)
    output.wait_for("started (pid")
    wait_until(lambda: app.run("ps").returncode == 0, what="control socket up")
    return procman, output


def test_scale_up_and_down_while_logging(app: App, live: type[LiveOutput]) -> None:
    app.procfile(f"web: {TICKER}\nworker: {TICKER}\n")
    procman, output = started(app, live)
    before = by_name(app)
    result = app.run("scale", "worker=4")
    assert result.returncode == 0
    assert result.stdout == "web=1, worker=4\n"
    for number in (2, 3, 4):
        output.wait_for_line(f"worker.{number}", f"worker.{number} tick {5100 + number - 1}")
    after = by_name(app)
    assert sorted(after) == ["web.1", "worker.1", "worker.2", "worker.3", "worker.4"]
    assert after["web.1"]["pid"] == before["web.1"]["pid"]
    assert after["worker.1"]["pid"] == before["worker.1"]["pid"]
    assert [after[f"worker.{n}"]["port"] for n in range(1, 5)] == [5100, 5101, 5102, 5103]

    assert app.run("scale", "worker-3").stdout == "web=1, worker=1\n"
    for number in (2, 3, 4):
        output.wait_for(f"worker.{number} terminated by SIGTERM")
    wait_until(lambda: sorted(by_name(app)) == ["web.1", "worker.1"], what="scaled down")
    assert by_name(app)["worker.1"]["pid"] == before["worker.1"]["pid"]
    assert json.loads((app.root / ".procman" / "formation.json").read_text()) == {
        "web": 1,
        "worker": 1,
    }
    os.killpg(procman.pid, signal.SIGINT)
    code, text = output.finish()
    assert code == 130
    # every instance's lines are whole: nothing interleaved mid-line while scaling
    for line in text.splitlines():
        assert re.fullmatch(r"\d\d:\d\d:\d\d \S+ +\| .*", line), line


def test_saved_formation_is_used_by_the_next_start_unless_m_is_given(
    app: App, live: type[LiveOutput]
) -> None:
    app.procfile(f"web: {TICKER}\nworker: {TICKER}\n")
    result = app.run("scale", "worker=3", "web=0")
    assert result.returncode == 0
    assert result.stdout == (
        "web=0, worker=3\nprocman is not running here: saved for the next 'procman start'\n"
    )
    procman, output = started(app, live)
    wait_until(lambda: len(ps(app)) == 3, what="three workers")
    assert sorted(by_name(app)) == ["worker.1", "worker.2", "worker.3"]
    os.killpg(procman.pid, signal.SIGTERM)
    assert output.finish()[0] == 143

    procman, output = started(app, live, "-m", "web=1,worker=0")
    assert sorted(by_name(app)) == ["web.1"]
    assert app.run("stop").stdout == "stopping the app\n"
    assert output.finish()[0] == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("wrker=2", "procman: error: scale: unknown process type 'wrker'"),
        ("worker=-1", "procman: error: worker=-1: the count must be a whole number 0 or more"),
        ("worker=two", "procman: error: worker=two: the count must be a whole number"),
        ("worker-5", "procman: error: worker-5: worker has 1 instance, cannot go below 0"),
    ],
)
def test_bad_scale_changes_nothing(
    app: App, live: type[LiveOutput], change: str, message: str
) -> None:
    app.procfile(f"web: {TICKER}\nworker: {TICKER}\n")
    procman, output = started(app, live)
    before = by_name(app)
    result = app.run("scale", change)
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1
    after = by_name(app)
    assert {name: p["pid"] for name, p in after.items()} == {
        name: p["pid"] for name, p in before.items()
    }
    assert not (app.root / ".procman" / "formation.json").exists()
    os.killpg(procman.pid, signal.SIGINT)
    output.finish()


def test_ps_shows_every_instance(app: App, live: type[LiveOutput]) -> None:
    app.procfile(f"web: {TICKER}\nworker: {TICKER}\n")
    procman, output = started(app, live, "-m", "worker=2", "-p", "7000")
    wait_until(lambda: all(p["state"] == "running" for p in ps(app)), what="running")
    rows = ps(app)
    assert [(r["name"], r["port"], r["restarts"], r["command"]) for r in rows] == [
        ("web.1", 7000, 0, TICKER),
        ("worker.1", 7100, 0, TICKER),
        ("worker.2", 7101, 0, TICKER),
    ]
    assert all(isinstance(r["pid"], int) and r["uptime"] >= 0 for r in rows)
    table = app.run("ps").stdout.splitlines()
    assert table[0].split() == ["NAME", "PID", "STATE", "UPTIME", "RESTARTS", "PORT", "COMMAND"]
    assert table[2].split()[:3] == ["worker.1", str(rows[1]["pid"]), "running"]
    os.killpg(procman.pid, signal.SIGINT)
    output.finish()


def test_restart_keeps_names_and_ports_under_load(app: App, live: type[LiveOutput]) -> None:
    app.procfile(
        "web: " + TICKER + "\n"
        "noisy: python3 -c 'import itertools; [print(\"noise\", i) for i in itertools.count()]'\n"
    )
    procman, output = started(app, live, "-m", "web=2")
    before = by_name(app)
    result = app.run("restart", "web")
    assert result.stdout == "restarting web.1, web.2\n"
    wait_until(
        lambda: all(
            by_name(app)[n]["pid"] not in (None, before[n]["pid"]) for n in ("web.1", "web.2")
        ),
        what="new pids",
    )
    after = by_name(app)
    for name in ("web.1", "web.2"):
        assert after[name]["port"] == before[name]["port"]
        assert after[name]["restarts"] == 1
    assert after["noisy.1"]["pid"] == before["noisy.1"]["pid"]
    output.wait_for("web.2 started (pid")
    os.killpg(procman.pid, signal.SIGINT)
    code, text = output.finish(timeout=30)
    assert code == 130
    noise = [int(n) for n in re.findall(r"\| noise (\d+)\n", text)]
    assert noise == list(range(len(noise)))  # no line lost while restarting


def test_stop_one_instance_then_the_app(app: App, live: type[LiveOutput]) -> None:
    app.procfile(f"web: {TICKER}\nworker: {TICKER}\n")
    procman, output = started(app, live)
    assert app.run("stop", "worker.1").stdout == "stopping worker.1\n"
    wait_until(lambda: by_name(app)["worker.1"]["state"] == "stopped", what="stopped")
    assert by_name(app)["web.1"]["state"] == "running"
    assert procman.poll() is None
    app.run("restart", "worker.1")
    wait_until(lambda: by_name(app)["worker.1"]["state"] == "running", what="running again")
    assert app.run("stop").returncode == 0
    assert output.finish()[0] == 0


def test_stop_wait_returns_once_the_processes_have_stopped(
    app: App, live: type[LiveOutput]
) -> None:
    slow = "trap 'sleep 0.5; exit 0' TERM; echo ready; while :; do sleep 0.1; done"
    app.procfile(
        f"web: {TICKER}\nslow: {slow}\nstubborn: trap '' TERM; while :; do sleep 1; done\n"
    )
    _, output = started(app, live, "-t", "3")
    output.wait_for_line("slow.1", "ready")
    done = app.run("stop", "slow", "--wait", "10")
    assert (done.returncode, done.stdout) == (0, "stopping slow.1\nstopped\n")
    assert by_name(app)["slow.1"]["pid"] is None  # gone by the time stop returned

    late = app.run("stop", "stubborn", "--wait", "0.5")
    assert late.returncode == 1
    assert late.stderr == (
        "procman: error: stubborn.1 still running 0.5s after the stop request (they may be "
        "finishing work; wait longer with --wait, or check procman ps)\n"
    )
    # SIGKILL comes 3 s (-t) after SIGTERM: the app has stopped within the wait.
    done = app.run("stop", "--wait", "10")
    assert (done.returncode, done.stdout) == (0, "stopping the app\nstopped\n")
    # procman itself has exited, its lock released: a new procman start can follow at once.
    from procman.rundir import RunDir

    assert not RunDir(app.root).is_running()
    assert output.finish(timeout=5)[0] == 0


def test_unknown_process_lists_the_known_ones(app: App, live: type[LiveOutput]) -> None:
    app.procfile(f"web: {TICKER}\n")
    procman, output = started(app, live)
    result = app.run("restart", "wbe")
    assert result.returncode == 2
    assert result.stderr == (
        "procman: error: unknown process 'wbe' (did you mean 'web'? known: web, web.1)\n"
    )
    os.killpg(procman.pid, signal.SIGINT)
    output.finish()


def test_logs_shows_recent_lines_and_follows(app: App, live: type[LiveOutput]) -> None:
    app.procfile(f"web: {TICKER}\nworker: {TICKER}\n")
    procman, output = started(app, live)
    output.wait_for_line("worker.1", "worker.1 tick 5100")
    recent = app.run("logs", "-n", "3", "--no-follow", "worker")
    lines = recent.stdout.splitlines()
    assert len(lines) == 3
    assert all(" worker.1 | worker.1 tick 5100" in line or "system" in line for line in lines)
    follower = subprocess.Popen(
        [PROCMAN, "logs", "-n", "0", "web"], cwd=app.root, stdout=subprocess.PIPE
    )
    try:
        followed = live(follower)
        followed.wait_for_line("web.1", "web.1 tick 5000")
        assert "worker.1 tick" not in followed.text
    finally:
        follower.send_signal(signal.SIGINT)
        follower.wait(timeout=10)
    os.killpg(procman.pid, signal.SIGINT)
    output.finish()


def test_second_start_is_refused(app: App, live: type[LiveOutput]) -> None:
    app.procfile(f"web: {TICKER}\n")
    procman, output = started(app, live)
    result = app.run("start")
    assert result.returncode == 1
    assert result.stderr == (
        f"procman: error: procman is already running in {app.root.resolve()} (pid {procman.pid}) "
        "(use 'procman ps', 'procman logs' or 'procman stop' to work with it)\n"
    )
    os.killpg(procman.pid, signal.SIGINT)
    output.finish()


def test_stale_socket_after_kill_9_is_replaced(app: App, live: type[LiveOutput]) -> None:
    app.procfile(f"web: {TICKER}\n")
    procman, _ = started(app, live)
    procman.kill()
    procman.wait()
    assert (app.root / ".procman" / "procman.sock").exists()
    result = app.run("ps")
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"procman: error: no procman is running in {app.root.resolve()}"
    )
    wait_until(
        lambda: tagged_processes(os.environ["PROCMAN_TEST_TAG"]) == [],
        timeout=WATCHDOG_BOUND,
        what="the orphaned formation and its watchdog gone",
    )
    procman, output = started(app, live)
    assert [p["name"] for p in ps(app)] == ["web.1"]
    os.killpg(procman.pid, signal.SIGINT)
    assert output.finish()[0] == 130


def test_client_commands_without_a_running_procman(app: App) -> None:
    app.procfile("web: echo\n")
    for command in (["ps"], ["restart"], ["stop"], ["logs"]):
        result = app.run(*command)
        assert result.returncode == 1
        assert result.stderr == (
            f"procman: error: no procman is running in {app.root.resolve()} "
            "(start the app with 'procman start', or pass its directory with -d/--root)\n"
        )


def test_crash_loop_backs_off(app: App, live: type[LiveOutput]) -> None:
    app.procfile(f"crashy: echo boom; exit 3\nweb: {TICKER}\n")
    procman = app.spawn("start", "--restart", "crashy")
    output = live(procman)
    output.wait_for("crashy.1 started (pid", timeout=5)
    starts: list[float] = []
    deadline = time.monotonic() + 20
    while len(starts) < 4 and time.monotonic() < deadline:
        seen = output.text.count("crashy.1 started (pid")
        while len(starts) < seen:
            starts.append(time.monotonic())
        time.sleep(0.01)
    assert len(starts) == 4, output.text
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    for gap, expected in zip(gaps, (1.0, 2.0, 4.0), strict=True):
        assert expected - 0.1 <= gap <= expected + 0.6, gaps
    assert "crashy.1 restarting in 2s (2 exits in a row)" in output.text
    crashy = by_name(app)["crashy.1"]
    assert crashy["restarts"] >= 3
    assert crashy["last_exit"] == 3
    assert by_name(app)["web.1"]["restarts"] == 0
    os.killpg(procman.pid, signal.SIGINT)
    assert output.finish()[0] == 130


def test_can_die_keeps_the_rest_running(app: App, live: type[LiveOutput]) -> None:
    app.procfile(f"once: echo done; exit 5\nweb: {TICKER}\n")
    procman = app.spawn("start", "--can-die", "once")
    output = live(procman)
    output.wait_for("once.1 exited with code 5")
    wait_until(lambda: app.run("ps").returncode == 0, what="socket")
    rows = by_name(app)
    assert rows["once.1"]["state"] == "crashed" and rows["once.1"]["last_exit"] == 5
    assert "crashed (exit 5)" in app.run("ps").stdout
    assert rows["web.1"]["state"] == "running"
    assert procman.poll() is None
    os.killpg(procman.pid, signal.SIGINT)
    output.finish()


# -- a misbehaving client never blocks the supervisor ------------------------------------------


def connect(app: App) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(app.root / ".procman" / "procman.sock"))
    return sock


def hung_up(sock: socket.socket) -> bool:
    """Whether the other side closed the connection, without reading what it sent."""
    poller = select.poll()
    poller.register(sock, select.POLLRDHUP)
    return any(events & (select.POLLRDHUP | select.POLLHUP) for _, events in poller.poll(0))


def test_garbage_and_half_requests_do_not_hurt(app: App, live: type[LiveOutput]) -> None:
    app.procfile(f"web: {TICKER}\n")
    procman, output = started(app, live)
    garbage = connect(app)
    garbage.sendall(b"\x00\xffnot json at all\n")
    reply = json.loads(garbage.makefile("rb").readline())
    assert reply["ok"] is False and reply["error"] == "not a JSON line"
    garbage.close()

    unknown = connect(app)
    unknown.sendall(b'{"verb": "explode"}\n')
    assert json.loads(unknown.makefile("rb").readline())["error"] == "unknown verb 'explode'"
    unknown.close()

    half = connect(app)
    half.sendall(b'{"verb": "p')
    half.close()  # a client killed mid-request

    digits = connect(app)  # a count Python's int() refuses to convert (over 4,300 digits)
    digits.sendall(json.dumps({"verb": "scale", "changes": ["web=" + "9" * 5000]}).encode() + b"\n")
    reply = json.loads(digits.makefile("rb").readline())
    assert reply["ok"] is False and "is more than the 65535 ports there are" in reply["error"]
    digits.close()

    huge = connect(app)
    try:
        huge.sendall(b"x" * (1024 * 1024))
    except (BrokenPipeError, ConnectionResetError):
        pass
    huge.close()

    assert [p["name"] for p in ps(app)] == ["web.1"]
    os.killpg(procman.pid, signal.SIGINT)
    assert output.finish()[0] == 130


def test_a_client_killed_mid_request(app: App, live: type[LiveOutput]) -> None:
    app.procfile(f"web: {TICKER}\n")
    procman, output = started(app, live)
    client = subprocess.Popen(
        [
            "python3",
            "-c",
            "import socket,sys,time;s=socket.socket(socket.AF_UNIX);"
            f"s.connect({str(app.root / '.procman' / 'procman.sock')!r});"
            's.sendall(b\'{"verb": "ps"\');print("sent",flush=True);time.sleep(30)',
        ],
        stdout=subprocess.PIPE,
    )
    live(client).wait_for("sent")  # half a request is in, and the client hangs on
    client.kill()
    client.wait()
    assert [p["name"] for p in ps(app)] == ["web.1"]
    os.killpg(procman.pid, signal.SIGINT)
    output.finish()


def test_peers_that_never_read(app: App, live: type[LiveOutput]) -> None:
    app.procfile(
        "noisy: python3 -c 'import itertools;"
        ' [print("noise", i, "x" * 200) for i in itertools.count()]\'\n'
    )
    procman, output = started(app, live)
    deaf = connect(app)
    deaf.setblocking(False)
    request = b'{"verb": "ps"}\n' * 2000
    sent = 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # keep asking, never read a reply
        try:
            sent += deaf.send(request)
        except BlockingIOError:
            time.sleep(0.01)
        except (BrokenPipeError, ConnectionResetError):
            break  # the supervisor dropped us: fine
    deaf_follower = connect(app)
    deaf_follower.sendall(b'{"verb": "logs", "follow": true}\n')  # then never read
    wait_until(lambda: hung_up(deaf_follower), timeout=20, what="the deaf follower dropped")
    for _ in range(3):
        assert [p["name"] for p in ps(app)] == ["noisy.1"]
    deaf.close()
    deaf_follower.close()
    os.killpg(procman.pid, signal.SIGINT)
    code, text = output.finish(timeout=60)
    assert code == 130
    # a line cut by SIGTERM mid-write may end the stream; every complete one is there, in order
    noise = [int(n) for n in re.findall(r"\| noise (\d+) x{200}\n", text)]
    assert len(noise) > 1000
    missing = next((i for i, n in enumerate(noise) if n != i), None)
    if missing is not None:  # show how the line was lost: split in two, or gone
        at = text.find(f"noise {missing - 1} ")
        raise AssertionError(f"line {missing} lost; the stream there:\n{text[at : at + 700]}")


def test_scale_all(app: App, live: type[LiveOutput]) -> None:
    app.procfile(f"web: {TICKER}\nworker: {TICKER}\n")
    procman, output = started(app, live)
    assert app.run("scale", "all=2").stdout == "web=2, worker=2\n"
    assert app.run("scale", "all-1", "worker+2").stdout == "web=1, worker=3\n"
    wait_until(lambda: len(ps(app)) == 4, what="four instances")
    os.killpg(procman.pid, signal.SIGINT)
    output.finish()


def test_logs_of_one_instance_leave_out_procmans_lines_about_others(
    app: App, live: type[LiveOutput]
) -> None:
    app.procfile(f"web: {TICKER}\nworker: {TICKER}\n")
    procman, output = started(app, live, "-m", "worker=2")
    app.run("restart", "worker.2")
    output.wait_for("worker.2 started (pid", timeout=10)
    output.wait_for("restart 1)")
    text = app.run("logs", "--no-follow", "-n", "10000", "web").stdout
    assert "web.1 started (pid" in text
    assert "worker.2" not in text and "worker.1" not in text
    lines = text.splitlines()
    assert len({line.index("|") for line in lines}) == 1  # one column for every name
    os.killpg(procman.pid, signal.SIGINT)
    output.finish()


def test_while_stopping_restart_is_refused_and_a_second_stop_kills(
    app: App, live: type[LiveOutput]
) -> None:
    app.procfile("stubborn: trap '' TERM; echo ready; while :; do sleep 0.1; done\n")
    _, output = started(app, live, "-t", "30")
    output.wait_for_line("stubborn.1", "ready")
    assert app.run("stop").returncode == 0
    output.wait_for("sending SIGTERM to all processes")
    refused = app.run("restart")
    assert refused.returncode == 1
    assert refused.stderr.startswith("procman: error: procman is stopping")
    assert app.run("stop").returncode == 0
    code, text = output.finish(timeout=10)
    assert code == 0
    assert "stop requested again: killing all processes" in text


def test_a_request_line_over_the_limit_is_refused(app: App, live: type[LiveOutput]) -> None:
    app.procfile(f"web: {TICKER}\n")
    procman, output = started(app, live)
    for size in (70_000, 140_000):
        sock = connect(app)
        line = b'{"verb": "ps", "padding": "' + b"x" * size + b'"}\n'
        try:
            sock.sendall(line)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = sock.makefile("rb").readline()
        sock.close()
        assert json.loads(reply)["error"] == "request longer than 65536 bytes"
    assert [p["name"] for p in ps(app)] == ["web.1"]
    os.killpg(procman.pid, signal.SIGINT)
    output.finish()
