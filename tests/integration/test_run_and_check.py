"""End-to-end: ``procman run`` and ``procman check`` through the installed executable."""

from __future__ import annotations

import json
import os
import pty
import subprocess

import pytest

from tests.conftest import PROCMAN, App

pytestmark = pytest.mark.timeout(30)


def test_run_passes_the_env_and_returns_the_exit_status(app: App) -> None:
    app.write(".env", "GREETING=hello\n")
    result = app.run("run", "echo $GREETING $PORT $PS; exit 7")
    assert result.returncode == 7
    assert result.stdout == "hello 5000 run.1\n"


def test_run_keeps_arguments_as_given(app: App) -> None:
    result = app.run(
        "run",
        "-p",
        "7000",
        "python3",
        "-c",
        "import os,sys; print(sys.argv[1:], os.environ['PORT'])",
        "a b",
        "$HOME",
    )
    assert result.stdout == "['a b', '$HOME'] 7000\n"


def test_run_passes_stdin_through(app: App) -> None:
    result = app.run("run", "tr a-z A-Z", input=b"shout\n")
    assert result.stdout == "SHOUT\n"


def test_run_a_procfile_type_by_name(app: App) -> None:
    app.procfile("migrate: echo migrating on $PORT\n")
    assert app.run("run", "migrate").stdout == "migrating on 5000\n"


def test_run_gives_the_command_the_terminal(app: App) -> None:
    pid, fd = pty.fork()
    if pid == 0:  # the child: procman run on a pseudo-terminal, as a user would type it
        os.chdir(app.root)
        os.execv(
            PROCMAN, [PROCMAN, "run", "python3 -c 'import sys; print(\"tty\", sys.stdin.isatty())'"]
        )
    output = b""
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"tty True" in output


def test_run_without_command_is_a_usage_error(app: App) -> None:
    result = app.run("run")
    assert result.returncode == 2
    assert result.stderr.startswith("procman: error: no command given")


def test_check_summarises_a_valid_app(app: App) -> None:
    app.procfile("web: gunicorn app:app\nworker: procman worker\nclock: python clock.py\n")
    app.write(".env", "A=1\nB=2\n")
    result = app.run("check")
    assert result.returncode == 0
    assert result.stdout.startswith("valid Procfile: web, worker, clock")


def test_check_json_lists_processes_in_order_and_the_env(app: App) -> None:
    app.procfile("web: gunicorn app:app\nclock: python clock.py\n")
    app.write(".env", 'A=1\nB="two ${A}"\n')
    report = json.loads(app.run("check", "--json").stdout)
    assert report["processes"] == [
        {"name": "web", "command": "gunicorn app:app", "line": 1},
        {"name": "clock", "command": "python clock.py", "line": 2},
    ]
    assert report["env"] == {"A": "1", "B": "two 1"}


def test_check_reports_every_problem_on_its_own_line(app: App) -> None:
    app.procfile("web: ok\nthis is wrong\nweb: again\n")
    app.write(".env", "GOOD=1\nBAD LINE\n")
    result = app.run("check")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 3
    assert all(line.startswith("procman: error: ") for line in lines)
    assert any(".env:2:" in line for line in lines)
    assert any("Procfile:2:" in line for line in lines)
    assert any(
        "Procfile:3: duplicate process name 'web', first defined on line 1" in line
        for line in lines
    )
    assert "Traceback" not in result.stderr


def test_missing_procfile_is_one_line(app: App) -> None:
    result = app.run("start")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("procman: error: Procfile: no such file")


def test_python_dash_m_works(app: App) -> None:
    app.procfile("web: echo hi\n")
    result = subprocess.run(
        [os.path.join(os.path.dirname(PROCMAN), "python"), "-m", "procman", "check"],
        cwd=app.root,
        capture_output=True,
        check=False,
        text=True,
        timeout=20,
    )
    assert result.stdout == "valid Procfile: web\n"


def test_run_a_command_that_starts_with_a_dash(app: App) -> None:
    result = app.run("run", "-x")
    assert result.returncode == 127
    assert "-x: not found" in result.stderr


def test_check_validates_queues_yml_in_the_app_directory(app: App) -> None:
    app.procfile("web: gunicorn app:app\nworker: procman worker\n")
    app.write("queues.yml", "queues:\n  - [critical, 5]\n  - [default, 3]\n  - [low, 1]\n")
    result = app.run("check")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "valid Procfile: web, worker; valid queues.yml: critical(5), default(3), low(1)\n"
    )
    report = json.loads(app.run("check", "--json").stdout)
    assert report["queues"]["queues"][0] == {"name": "critical", "weight": 5}


def test_check_reports_queue_problems_with_the_others(app: App) -> None:
    app.procfile("web: ok\nthis is wrong\n")
    app.write(
        "queues.yml",
        "queues:\n  - [critical, 5]\n  - [default, -1]\ntimout: 3\n"
        "schedule:\n  nightly: {cron: '0 3 * * *', func: jobs.nightly, queue: default}\n",
    )
    app.write("jobs.py", "def daily():\n    pass\n")
    result = app.run("check")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "procman: error: Procfile:2: expected 'name: command', got 'this is wrong' "
        "(write it like 'web: python -m http.server $PORT', or comment it out with '#')",
        "procman: error: queues.yml: unknown key 'timout' (did you mean 'timeout'?)",
        "procman: error: queues.yml: queues[1]: weight must be a whole number, 0 or more "
        "(got -1) (write it like [critical, 5]; a queue without a weight counts as 0)",
        "procman: error: queues.yml: schedule.nightly.func: cannot import jobs.nightly: "
        "module jobs has no attribute 'nightly' "
        "(check the path, and that the app directory holds the module)",
    ]


def test_check_config_option_names_another_queue_file(app: App) -> None:
    app.procfile("worker: procman worker\n")
    app.write("mail.yml", ":queues:\n  - mail\n  - default\n")
    result = app.run("check", "-C", "mail.yml")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "valid Procfile: worker; valid mail.yml: mail, default\n"
    missing = app.run("check", "--config", "nope.yml")
    assert missing.returncode == 1
    assert missing.stderr.startswith("procman: error: nope.yml: no such file")
