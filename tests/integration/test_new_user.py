"""What a new user tripped over on a fresh machine, each through the installed procman: the
private Redis seen from a shell, bare ``procman``, ``jobs clear``/``retry --all`` wording, name
suggestions, ``run`` replacing itself, procman's own PATH, and a taken port."""

from __future__ import annotations

import os
import pty
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from rq.queue import Queue
from rq.worker import SimpleWorker

from tests.conftest import PROCMAN, App, LiveOutput
from tests.integration.test_start import lines_of

pytestmark = pytest.mark.timeout(60)

PYTHON = sys.executable
ENQUEUE = (
    "from procman.queues import enqueue; "
    "job = enqueue('jobs.hello'); "
    "print(job.id, job.connection.connection_pool.connection_kwargs['port'])"
)


@pytest.fixture
def no_redis_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "REDIS_PROVIDER"):
        monkeypatch.delenv(name, raising=False)


def python_in(app: App, code: str) -> subprocess.CompletedProcess[str]:
    """A plain Python script run from a shell in the app directory, as a user would."""
    return subprocess.run(
        [PYTHON, "-c", code], cwd=app.root, capture_output=True, text=True, timeout=20, check=False
    )


@pytest.mark.usefixtures("no_redis_configured")
def test_a_shell_in_the_app_finds_its_private_redis_and_says_whose_it_is_when_gone(
    app: App, live: type[LiveOutput]
) -> None:
    app.write("queues.yml", "queues: [default]\n")
    app.write("jobs.py", "def hello():\n    return 'hi'\n")
    app.procfile("web: sleep 60\n")
    procman = app.spawn("start")
    output = live(procman)
    output.wait_for("web.1 started")
    started = re.search(r"redis started \(pid \d+\): (redis://127\.0\.0\.1:(\d+)/0)", output.text)
    assert started, output.text

    echoed = app.run("run", "echo $REDIS_URL")
    assert (echoed.returncode, echoed.stdout) == (0, started[1] + "\n")
    enqueued = python_in(app, ENQUEUE)
    assert enqueued.returncode == 0, enqueued.stderr
    assert enqueued.stdout.split()[1] == started[2]

    os.killpg(procman.pid, signal.SIGINT)
    output.finish()
    assert app.run("run", "echo ${REDIS_URL:-unset}").stdout == "unset\n"
    gone = python_in(app, ENQUEUE)
    assert gone.returncode == 1
    assert "Traceback" not in gone.stderr and gone.stderr.count("\n") == 1, gone.stderr
    assert gone.stderr.startswith(
        "procman: error: cannot reach Redis at redis://localhost:6379/0 (from the default)"
    )
    assert "the private one its 'procman start' runs" in gone.stderr
    assert "redis-server" not in gone.stderr
    jobs = app.run("jobs")
    assert jobs.returncode == 1 and "the private one its 'procman start' runs" in jobs.stderr


def test_bare_procman_prints_its_help_and_succeeds() -> None:
    result = subprocess.run([PROCMAN], capture_output=True, text=True, timeout=20, check=False)
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: procman [OPTIONS] COMMAND [ARGS]...")
    assert result.stderr == "" and "procman: error" not in result.stdout


def answer_on_a_terminal(app: App, answer: str, *args: str) -> tuple[int, str]:
    """Run procman with a terminal as stdin (so it asks), type ``answer``; exit status, stdout."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [PROCMAN, *args], cwd=app.root, stdin=terminal, stdout=subprocess.PIPE, text=True
        )
        os.write(controller, answer.encode() + b"\n")
        out, _ = process.communicate(timeout=20)
    finally:
        os.close(controller)
        os.close(terminal)
    return process.returncode, out


def test_jobs_clear_with_nothing_to_clear_or_a_no(app: App, redis_url: str) -> None:
    app.write("queues.yml", "queues: [newuser_clear]\n")
    env = {"REDIS_URL": redis_url}
    connection = redis.Redis.from_url(redis_url)
    queue = Queue("newuser_clear", connection=connection)
    queue.empty()  # type: ignore[no-untyped-call]
    empty = app.run("jobs", "clear", "newuser_clear", env=env)
    assert (empty.returncode, empty.stdout) == (
        0,
        "queue newuser_clear is empty: nothing to clear\n",
    )

    queue.enqueue("tests.integration.monitoring_jobs.add", 1, 2)
    os.environ["REDIS_URL"] = redis_url
    try:
        code, out = answer_on_a_terminal(app, "n", "jobs", "clear", "newuser_clear")
    finally:
        del os.environ["REDIS_URL"]
    assert code == 1
    assert out.endswith("nothing deleted\n"), out
    assert queue.count == 1
    queue.empty()  # type: ignore[no-untyped-call]
    connection.close()


def test_retry_all_names_only_the_queues_the_jobs_went_to(app: App, redis_url: str) -> None:
    app.write("queues.yml", "queues:\n  - [nu_critical, 5]\n  - [nu_default, 3]\n  - [nu_low, 1]\n")
    connection = redis.Redis.from_url(redis_url)
    for _ in range(2):
        Queue("nu_default", connection=connection).enqueue(
            "tests.integration.monitoring_jobs.fail", "boom"
        )
    SimpleWorker(["nu_default"], connection=connection).work(burst=True)
    result = app.run("jobs", "retry", "--all", env={"REDIS_URL": redis_url})
    assert (result.returncode, result.stdout) == (0, "requeued 2 jobs to nu_default\n")
    again = app.run("jobs", "retry", "--all", env={"REDIS_URL": redis_url})
    assert again.stdout == "no failed jobs to retry\n"
    Queue("nu_default", connection=connection).empty()  # type: ignore[no-untyped-call]
    connection.close()


def test_a_misspelt_type_gets_the_nearest_name(app: App, live: type[LiveOutput]) -> None:
    app.procfile("web: sleep 60\nworker: sleep 60\n")
    refused = app.run("start", "-m", "wrker=2")
    assert refused.returncode == 2
    assert "unknown process type 'wrker' (did you mean 'worker'?" in refused.stderr
    procman = app.spawn("start")
    output = live(procman)
    output.wait_for("worker.1 started")
    stopped = app.run("stop", "wbe")
    assert stopped.returncode != 0
    assert "unknown process 'wbe' (did you mean 'web'? known: web, worker" in stopped.stderr
    os.killpg(procman.pid, signal.SIGINT)
    output.finish()


def test_run_replaces_procman_with_the_program(app: App) -> None:
    app.procfile("pid: python3 -c 'import os; print(os.getpid())'\n")
    for command in ("pid", "python3 -c 'import os; print(os.getpid())'"):
        process = subprocess.Popen(
            [PROCMAN, "run", command], cwd=app.root, stdout=subprocess.PIPE, text=True
        )
        out, _ = process.communicate(timeout=20)
        assert out == f"{process.pid}\n", f"{command}: the program is not procman's own process"


def test_procfile_procman_lines_run_this_procman_without_an_activated_venv(app: App) -> None:
    app.procfile("own: procman --version\n")
    bare_path = "/usr/bin:/bin"
    assert (
        subprocess.run(
            ["sh", "-c", "command -v procman"],
            env={"PATH": bare_path},
            check=False,
            capture_output=True,
        ).returncode
        != 0
    )
    result = app.run("start", "--no-timestamp", env={"PATH": bare_path})
    assert result.returncode == 0, result.stdout + result.stderr
    assert lines_of(result.stdout, "own.1") == ["procman, version 0.1.0"]
    ran = app.run("run", "procman --version", env={"PATH": bare_path})
    assert ran.stdout == "procman, version 0.1.0\n"


def test_command_not_found_gets_a_path_hint(app: App) -> None:
    app.procfile("web: no-such-program-here --serve\n")
    result = app.run("start", "--no-timestamp")
    assert result.returncode == 127
    system = lines_of(result.stdout, "system")
    assert any(
        line.startswith("web.1 exited with code 127 (the shell's 'command not found'")
        and "activate the app's virtualenv" in line
        for line in system
    ), system


def test_a_taken_port_is_refused_before_anything_starts(app: App, tmp_path: Path) -> None:
    app.procfile("web: python3 -m http.server --bind 127.0.0.1 $PORT\nclock: sleep 60\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = app.run("start", "-p", str(port))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"procman: error: port {port} (PORT of web.1) is in use "
        f"(by pid {os.getpid()}, {' '.join(psutil_cmdline())!r}) "
        "(stop what holds it, or pass -p/--port to start from another port)\n"
    )


def psutil_cmdline() -> list[str]:
    import psutil

    command = " ".join(psutil.Process().cmdline())
    return [command if len(command) <= 60 else command[:57] + "..."]
