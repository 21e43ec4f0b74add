"""End-to-end: the installed ``procman start`` with real children, real signals, real pipes."""

from __future__ import annotations

import os
import re
import signal
import time

import psutil
import pytest

from tests.conftest import WATCHDOG_BOUND, App, LiveOutput, tagged_processes, wait_until

pytestmark = pytest.mark.timeout(60)

LINE = re.compile(r"^(\d\d:\d\d:\d\d )?(\S+) +\| (.*)$")


def lines_of(text: str, name: str) -> list[str]:
    """The lines a process printed, prefix removed."""
    found = []
    for line in text.splitlines():
        match = LINE.match(line)
        if match and match[2] == name:
            found.append(match[3])
    return found


def test_runs_every_type_with_port_and_ps_and_exits_with_the_trigger_code(app: App) -> None:
    app.procfile(
        "web: echo web $PORT $PS; sleep 30\nworker: echo worker $PORT $PS; sleep 0.5; exit 3\n"
    )
    result = app.run("start", "-m", "web=2,worker=1", "-p", "6000")
    assert result.returncode == 3, result.stdout
    out = result.stdout
    assert lines_of(out, "web.1") == ["web 6000 web.1"]
    assert lines_of(out, "web.2") == ["web 6001 web.2"]
    assert lines_of(out, "worker.1") == ["worker 6100 worker.1"]
    system = lines_of(out, "system")
    assert (
        system[:3]
        == [
            f"web.1 started (pid {pid})" for pid in re.findall(r"web\.1 started \(pid (\d+)\)", out)
        ]
        + system[1:3]
    )
    assert "worker.1 exited with code 3" in system
    assert "web.1 terminated by SIGTERM" in system
    assert result.stderr == ""


def test_names_are_padded_to_the_longest_and_prefix_can_go(app: App) -> None:
    app.procfile("a_long_name: echo hi\n")
    out = app.run("start", "--no-timestamp").stdout
    assert "a_long_name.1 | hi\n" in out
    assert "system        | a_long_name.1 started" in out
    bare = app.run("start", "--no-prefix").stdout
    assert "hi\n" in bare.splitlines(keepends=True)


def test_colour_only_when_asked_or_on_a_terminal(app: App) -> None:
    app.procfile("web: echo hi\n")
    assert "\x1b[" not in app.run("start").stdout
    assert "\x1b[36m" in app.run("start", "--color").stdout


def test_only_the_named_types_start(app: App) -> None:
    app.procfile(
        "web: echo web-ran; sleep 1\n"
        "worker: echo worker-ran; sleep 1\n"
        "clock: echo clock-ran; sleep 1\n"
    )
    out = app.run("start", "worker", "clock").stdout
    assert "worker-ran" in out and "clock-ran" in out and "web-ran" not in out


def test_unknown_name_lists_the_known_ones(app: App) -> None:
    app.procfile("web: echo\nworker: echo\n")
    result = app.run("start", "wrker")
    assert result.returncode == 2
    assert result.stderr == (
        "procman: error: unknown process type 'wrker' "
        "(did you mean 'worker'? Procfile defines: web, worker)\n"
    )


def test_honcho_concurrency_spelling(app: App) -> None:
    app.procfile("web: echo $PS; sleep 1\n")
    out = app.run("start", "-c", "web=3").stdout
    assert {"web.1", "web.2", "web.3"} <= {
        line for name in ("web.1", "web.2", "web.3") for line in lines_of(out, name)
    }


def test_env_file_values_reach_processes_and_win_over_the_shell(app: App) -> None:
    app.procfile('web: echo "$GREETING $WHO $FROM_SHELL"\n')
    app.write(".env", "GREETING=hello\nWHO='${FROM_SHELL} literal'\n")
    app.write("other.env", 'GREETING="hi ${FROM_SHELL}"\n')
    os.environ["FROM_SHELL"] = "shell"
    try:
        assert lines_of(app.run("start").stdout, "web.1") == ["hello ${FROM_SHELL} literal shell"]
        out = app.run("start", "-e", ".env", "-e", "other.env").stdout
        assert lines_of(out, "web.1") == ["hi shell ${FROM_SHELL} literal shell"]
    finally:
        del os.environ["FROM_SHELL"]


@pytest.mark.parametrize(
    ("signum", "status"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
)
def test_signal_stops_everything_including_grandchildren(
    app: App, live: type[LiveOutput], signum: int, status: int
) -> None:
    app.procfile(
        "web: python3 -c 'import time; print(\"up\"); time.sleep(60)'\n"
        "bg: sh -c 'sleep 60 & sleep 60 & echo spawned; wait'\n"
    )
    procman = app.spawn("start", "-m", "all=2")
    output = live(procman)
    output.wait_for_line("bg.2", "spawned")
    output.wait_for_line("web.2", "up")
    os.killpg(procman.pid, signum)
    code, text = output.finish()
    assert code == status
    assert f"{signal.Signals(signum).name} received, stopping all processes" in text
    assert tagged_processes(os.environ["PROCMAN_TEST_TAG"]) == []


def test_children_ignoring_sigterm_are_killed_after_the_timeout(
    app: App, live: type[LiveOutput]
) -> None:
    app.procfile("stubborn: trap '' TERM; echo ready; while :; do sleep 0.1; done\n")
    procman = app.spawn("start", "-t", "1")
    output = live(procman)
    output.wait_for("ready")
    sent = time.monotonic()
    os.killpg(procman.pid, signal.SIGINT)
    code, text = output.finish()
    elapsed = time.monotonic() - sent
    assert code == 130
    assert "sending SIGKILL to stubborn.1" in text
    assert "stubborn.1 terminated by SIGKILL" in text
    assert 0.9 < elapsed < 5


def test_second_interrupt_kills_at_once(app: App, live: type[LiveOutput]) -> None:
    app.procfile("stubborn: trap '' TERM; echo ready; while :; do sleep 0.1; done\n")
    procman = app.spawn("start", "-t", "30")
    output = live(procman)
    output.wait_for("ready")
    os.killpg(procman.pid, signal.SIGINT)
    output.wait_for("sending SIGTERM")
    os.killpg(procman.pid, signal.SIGINT)
    code, text = output.finish(timeout=10)
    assert code == 130
    assert "SIGINT received again: killing all processes" in text


def test_nothing_survives_procman_being_killed(app: App, live: type[LiveOutput]) -> None:
    app.procfile(
        "web: sh -c 'sleep 60 & echo ready; wait'\n"
        "stubborn: trap '' TERM; echo ready; while :; do sleep 0.1; done\n"
        "py: python3 -c 'import time; print(\"ready\"); time.sleep(60)'\n"
    )
    procman = app.spawn("start")
    output = live(procman)
    for name in ("web.1", "stubborn.1", "py.1"):
        output.wait_for_line(name, "ready")
    formation = [p for p in psutil.Process(procman.pid).children(recursive=True)]
    assert len(formation) >= 4
    procman.kill()
    procman.wait()
    wait_until(
        lambda: [p for p in formation if _alive(p)] == [],
        timeout=WATCHDOG_BOUND,
        what="every process of the formation stopped by the watchdog",
    )


def test_every_line_arrives_whole_and_in_order(app: App) -> None:
    app.write(
        "produce.py",
        "import os, sys\n"
        "for i in range(20000):\n"
        "    sys.stdout.write(os.environ['PS'] + ' line ' + str(i) + ' ' + 'x' * 60 + '\\n')\n",
    )
    app.procfile("p: python3 produce.py; sleep 2\n")
    result = app.run("start", "-m", "p=4", "--no-timestamp", timeout=60)
    for n in range(1, 5):
        got = lines_of(result.stdout, f"p.{n}")
        assert got == [f"p.{n} line {i} {'x' * 60}" for i in range(20000)]


def test_output_is_drained_before_the_exit_is_reported(app: App) -> None:
    app.procfile("burst: seq 1 5000; exit 4\n")
    out = app.run("start", "--no-timestamp").stdout
    body = [line.split("| ", 1)[1] for line in out.splitlines()]
    assert body.index("5000") < body.index("burst.1 exited with code 4")
    assert [b for b in body if b.isdigit()] == [str(i) for i in range(1, 5001)]


def test_final_line_without_newline_and_invalid_utf8(app: App) -> None:
    app.procfile("a: printf 'bad \\377\\376 bytes\\nno newline at end'\n")
    out = app.run("start", "--no-timestamp").stdout
    assert "a.1    | bad \ufffd\ufffd bytes\n" in out
    assert "a.1    | no newline at end\n" in out


def test_a_prompt_shows_while_the_process_waits(app: App, live: type[LiveOutput]) -> None:
    app.procfile("ask: printf 'Name? '; sleep 30\n")
    procman = app.spawn("start", "--no-timestamp")
    output = live(procman)
    output.wait_for_line("ask.1", "Name? ", timeout=3)
    os.killpg(procman.pid, signal.SIGTERM)
    assert output.finish()[0] == 143


def test_a_megabyte_line_does_not_hold_back_the_others(app: App) -> None:
    app.procfile(
        'big: python3 -c \'import sys; sys.stdout.write("y" * 1048576 + "\\n")\'; sleep 1\n'
        "small: for i in 1 2 3; do echo small $i; sleep 0.1; done; sleep 1\n"
    )
    out = app.run("start", "--no-timestamp").stdout
    assert "big.1   | " + "y" * 1048576 + "\n" in out
    assert lines_of(out, "small.1") == [
        "small 1",
        "small 2",
        "small 3",
    ]


def test_python_children_are_unbuffered(app: App, live: type[LiveOutput]) -> None:
    app.procfile("py: python3 -c 'import time; print(\"early\"); time.sleep(30)'\n")
    procman = app.spawn("start")
    live(procman).wait_for("early", timeout=5)
    os.killpg(procman.pid, signal.SIGINT)
    procman.wait(timeout=10)


def test_tty_gives_each_child_a_terminal(app: App) -> None:
    app.procfile(
        "t: python3 -c 'import sys, os;"
        " print(sys.stdout.isatty(), os.get_terminal_size().columns > 0)'\n"
    )
    assert lines_of(app.run("start", "--tty").stdout, "t.1") == ["True True"]
    app.procfile("t: python3 -c 'import sys; print(sys.stdout.isatty())'\n")
    assert lines_of(app.run("start").stdout, "t.1") == ["False"]


def test_output_reader_gone_stops_the_app(app: App) -> None:
    app.procfile("chatty: while :; do echo chat; sleep 0.01; done\n")
    procman = app.spawn("start")
    assert procman.stdout is not None
    procman.stdout.read(100)
    procman.stdout.close()
    assert procman.wait(timeout=10) == 141


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_the_program_not_a_shell_receives_sigterm_and_reports_its_code(
    app: App, live: type[LiveOutput]
) -> None:
    app.write(
        "graceful.py",
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: (print('cleaning up'), sys.exit(7)))\n"
        "print('up')\n"
        "time.sleep(60)\n",
    )
    app.procfile("web: python3 graceful.py\n")
    procman = app.spawn("start")
    output = live(procman)
    output.wait_for_line("web.1", "up")
    os.killpg(procman.pid, signal.SIGINT)
    code, text = output.finish()
    assert code == 130
    body = [line.split("| ", 1)[1] for line in text.splitlines()]
    assert body.index("cleaning up") < body.index("web.1 exited with code 7")


# Descendants that left their process group (setsid, start_new_session) -------------------------
# Each test finds its leftovers by a sleep duration no other test uses.


def _sleeping(*seconds: int) -> list[str]:
    """This test's live ``sleep N`` processes for the given Ns, as 'pid cmdline'."""
    wanted = [["sleep", str(n)] for n in seconds]
    found = []
    for process in tagged_processes(os.environ["PROCMAN_TEST_TAG"]):
        try:
            if process.cmdline() in wanted:
                found.append(f"{process.pid} {' '.join(process.cmdline())}")
        except psutil.Error:
            continue
    return found


def _wait_until_sleeping(*seconds: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while len(_sleeping(*seconds)) < len(seconds):
        assert time.monotonic() < deadline, f"not all of sleep {seconds} started"
        time.sleep(0.02)


@pytest.mark.parametrize("trigger", ["signal", "exit"])
def test_a_daemons_own_child_is_stopped_with_it(
    app: App, live: type[LiveOutput], trigger: str
) -> None:
    """The detached sh is re-parented to procman; its child, in the sh's new group, goes too."""
    inner, outer = (1038, 1039) if trigger == "signal" else (1040, 1041)
    procfile = f"daemon: sh -c 'setsid sh -c \"sleep {inner}; echo after\" &'; sleep {outer}\n"
    if trigger == "exit":
        procfile = "quitter: sleep 1; exit 4\n" + procfile
    app.procfile(procfile)
    procman = app.spawn("start", "-t", "1")
    output = live(procman)
    _wait_until_sleeping(inner, outer)
    if trigger == "signal":
        os.killpg(procman.pid, signal.SIGINT)
    code, text = output.finish()
    assert code == (130 if trigger == "signal" else 4), text
    assert _sleeping(inner, outer) == []


@pytest.mark.parametrize("environment", ["inherited", "cleared"])
def test_a_new_session_grandchild_of_a_process_ignoring_sigterm_is_stopped(
    app: App, live: type[LiveOutput], environment: str
) -> None:
    """Its parent dies only by the SIGKILL at the timeout; the grandchild goes too. With its
    environment cleared (no run id), it is found only once re-parented to procman, after that
    SIGKILL."""
    seconds = 1016 if environment == "inherited" else 1018
    child = (
        "import signal,os; signal.signal(signal.SIGTERM, signal.SIG_DFL); "
        f'os.execvp(\\"sleep\\", [\\"sleep\\",\\"{seconds}\\"])'
    )
    # the test's tag only, so the leftover check still sees it
    env = (
        "{'PROCMAN_TEST_TAG': os.environ['PROCMAN_TEST_TAG']}"
        if environment == "cleared"
        else "None"
    )
    app.procfile(
        "quitter: sleep 1; exit 4\n"
        'py: python3 -c "import os,signal,time,subprocess; '
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"subprocess.Popen(['python3','-c','{child}'], start_new_session=True, env={env}); "
        'time.sleep(1017)"\n'
    )
    procman = app.spawn("start", "-t", "1")
    output = live(procman)
    _wait_until_sleeping(seconds)
    code, text = output.finish()
    assert code == 4, text
    assert "py.1 terminated by SIGKILL" in text
    assert _sleeping(seconds) == []


def test_new_session_grandchildren_do_not_survive_procman_being_killed(
    app: App, live: type[LiveOutput]
) -> None:
    app.procfile(
        'py: python3 -c "import time,subprocess; '
        "subprocess.Popen(['sleep','1056'], start_new_session=True); time.sleep(1057)\"\n"
        "daemon: sh -c 'setsid sleep 1058 &'; sleep 1059\n"
        "deaf: setsid sh -c \"trap '' TERM; exec sleep 1060\" & sleep 1061\n"
    )
    procman = app.spawn("start")
    live(procman)
    _wait_until_sleeping(1056, 1058, 1059, 1060, 1061)
    procman.kill()
    procman.wait()
    wait_until(
        lambda: _sleeping(1056, 1058, 1059, 1060, 1061) == [],
        timeout=WATCHDOG_BOUND,
        what="every new-session grandchild stopped by the watchdog",
    )


def test_log_file_is_rotated_and_capped_and_keeps_the_newest_lines(app: App) -> None:
    # ~60 KB of numbered lines through a 10 KB file with 2 backups: at most 30 KB on disk.
    app.procfile("talk: python3 -c \"[print(f'line {n:05d} ' + 'x' * 40) for n in range(1200)]\"\n")
    logs = app.root / "out"
    logs.mkdir()
    result = app.run(
        "start", "--log-file", "out/procman.log", "--log-max-bytes", "10000",
        "--log-backups", "2", "--no-timestamp",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "line 00000" not in result.stdout  # into the file, not standard output
    assert sorted(p.name for p in logs.iterdir()) == [
        "procman.log",
        "procman.log.1",
        "procman.log.2",
    ]
    assert all(p.stat().st_size <= 10000 for p in logs.iterdir())
    text = "".join((logs / name).read_text() for name in ("procman.log.2", "procman.log.1",
                                                           "procman.log"))  # fmt: skip
    numbers = [int(n) for n in re.findall(r"talk\.1 \| line (\d{5})", text)]
    assert numbers[-1] == 1199
    assert numbers == list(range(numbers[0], 1200))  # the newest lines, none missing
    assert "talk.1 exited with code 0" in text
