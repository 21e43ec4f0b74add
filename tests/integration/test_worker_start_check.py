"""``procman start`` validates the queue YAML that its ``procman worker`` processes would read
before anything starts (no private Redis, no process), with ``procman check``'s messages; apps
whose Procfile runs no ``procman worker`` neither pay for it nor get it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import App

pytestmark = pytest.mark.timeout(60)


def test_a_bad_queues_yml_stops_the_start_before_anything_runs(app: App) -> None:
    app.procfile("web: echo started\nworker: procman worker\n")
    app.write("queues.yml", "concurrency: 0\nbogus: 1\n")
    checked = app.run("check")
    result = app.run("start", "--no-timestamp")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == checked.stderr
    assert result.stderr == (
        "procman: error: queues.yml: unknown key 'bogus' (known keys: concurrency, queues, "
        "timeout, retry, max_jobs, max_memory, keyspace_notifications, schedule)\n"
        "procman: error: queues.yml: concurrency: must be from 1 to 256 (got 0)\n"
    )
    assert not (app.root / ".procman" / "redis").exists()  # no private Redis was started


def test_the_config_named_on_the_worker_line_is_the_one_checked(app: App) -> None:
    (app.root / "conf").mkdir()
    app.write("conf/q.yml", "timeout: x\n")
    app.write("queues.yml", "concurrency: 0\n")  # not this one: the worker reads conf/q.yml
    app.procfile("worker: procman worker -C conf/q.yml --burst\n")
    result = app.run("start", "--no-timestamp")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "procman: error: conf/q.yml: timeout: must be a positive integer (got the string 'x')\n"
    )
    app.procfile("worker: procman worker --config=conf/missing.yml\n")
    missing = app.run("start", "--no-timestamp")
    assert missing.returncode == 1
    assert missing.stderr.startswith("procman: error: conf/missing.yml: no such file")


def test_without_a_worker_the_queue_yaml_is_neither_read_nor_imported(app: App) -> None:
    app.procfile("web: echo started\n")
    app.write("queues.yml", "concurrency: 0\n")
    code = (
        "import sys; from pathlib import Path; "
        "from procman.settings import AppOptions; "
        "from procman.commands.start import StartOptions, plan; "
        "plan(StartOptions(app=AppOptions(root=Path('.')))); "
        "print(sorted(m for m in ('procman.queues.config', 'yaml', 'croniter') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=app.root,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"


def test_check_refuses_what_start_refuses_in_a_config_named_on_a_worker_line(app: App) -> None:
    (app.root / "conf").mkdir()
    app.write("conf/q.yml", "queues: [a, a]\n")
    app.procfile("worker: procman worker -C conf/q.yml\nweb: echo hi\n")
    checked = app.run("check")
    assert checked.returncode == 1
    assert checked.stderr == (
        "procman: error: conf/q.yml: queues[1]: queue 'a' is listed twice (first at queues[0]) "
        "(list each queue once)\n"
    )
    assert app.run("start", "--no-timestamp").stderr == checked.stderr
    app.write("conf/q.yml", "queues: [a, b]\n")
    assert app.run("check").returncode == 0
