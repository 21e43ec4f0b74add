"""What ``procman worker`` prints: one line per event that matters (ready, each job started,
finished or failed, a failure as one line naming ``procman jobs show ID``), one timestamp
standalone and none of its own under ``procman start``; everything RQ logs when verbose."""

from __future__ import annotations

import os
import re
import signal
import subprocess

import pytest
import redis
from rq.job import Job
from rq.queue import Queue

from tests.conftest import PROCMAN, App, LiveOutput
from tests.integration.test_start import lines_of

pytestmark = pytest.mark.timeout(60)

JOBS = """
def add(a, b):
    return a + b

def boom():
    raise ValueError("boom")
"""

ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture
def jobs_app(app: App, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> App:
    app.write("jobs.py", JOBS)
    app.write("queues.yml", "concurrency: 1\n")
    monkeypatch.setenv("REDIS_URL", redis_url)
    return app


def _enqueue(redis_url: str) -> tuple[Job, Job]:
    queue = Queue("default", connection=redis.Redis.from_url(redis_url))
    return queue.enqueue("jobs.boom"), queue.enqueue("jobs.add", 1, 2)


def _run_under_start(app: App, *, verbose: bool) -> list[str]:
    """``procman start`` running the worker until both jobs have ended: the worker.1 lines."""
    app.procfile(f"worker: {PROCMAN} worker\n")
    env = {"PROCMAN_VERBOSE": "1"} if verbose else {}
    process = subprocess.Popen(
        [PROCMAN, "start", "--no-timestamp"],
        cwd=app.root,
        stdout=subprocess.PIPE,
        process_group=0,
        env={**os.environ, **env},
    )
    app.started.append(process)
    output = LiveOutput(process)
    output.wait_for(" finished in ", timeout=20)
    process.send_signal(signal.SIGINT)
    code, text = output.finish()
    assert code == 130, text
    return lines_of(text, "worker.1")


def test_under_start_one_line_per_event_and_a_failure_in_one_line(
    jobs_app: App, redis_url: str
) -> None:
    failing, adding = _enqueue(redis_url)
    lines = _run_under_start(jobs_app, verbose=False)
    normal = [re.sub(r"\b\w[\w.-]*\.\d+\.\d+\b", "NAME", line) for line in lines]
    normal = [re.sub(r"finished in \d+\.\d\ds", "finished in Ts", line) for line in normal]
    normal = [re.sub(r"redis://\S+", "URL", line) for line in normal]
    assert normal == [
        "procman worker: serving default with 1 worker process on URL (from REDIS_URL)",
        "NAME: ready for default",
        f"default: jobs.boom() started (job {failing.id})",
        f"default: jobs.boom() failed: ValueError: boom (procman jobs show {failing.id})",
        f"default: jobs.add(1, 2) started (job {adding.id})",
        f"default: jobs.add(1, 2) finished in Ts (job {adding.id})",
        "procman worker: SIGTERM: no job running: stopping",
    ]
    shown = jobs_app.run("jobs", "show", failing.id)
    assert "Traceback (most recent call last)" in shown.stdout, shown.stdout + shown.stderr


def test_verbose_under_start_shows_what_rq_logs_but_no_empty_line(
    jobs_app: App, redis_url: str
) -> None:
    _enqueue(redis_url)
    lines = _run_under_start(jobs_app, verbose=True)
    text = "\n".join(lines)
    assert "cleaning registries for queue: default" in text
    assert "Acquired scheduler lock for default" in lines  # no timestamp of its own
    assert "Traceback (most recent call last):" in lines
    assert "" not in lines  # the traceback's trailing newline makes no empty worker.1 line
    assert not [line for line in lines if re.match(r"\d\d:\d\d:\d\d ", line)]


def test_standalone_each_line_has_one_timestamp(jobs_app: App, redis_url: str) -> None:
    failing, _ = _enqueue(redis_url)
    result = jobs_app.run("worker", "--burst")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines and all(
        re.match(r"\d\d:\d\d:\d\d (?!\d\d:\d\d:\d\d)\S", line) for line in lines
    ), result.stdout
    assert any(
        line.endswith(
            f"default: jobs.boom() failed: ValueError: boom (procman jobs show {failing.id})"
        )
        for line in lines
    ), result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert "cleaning registries" not in result.stdout


def test_a_failure_to_be_retried_is_one_line_and_its_traceback_is_kept(
    jobs_app: App, redis_url: str
) -> None:
    jobs_app.write("queues.yml", "concurrency: 1\nretry: 2\n")
    failing, _ = _enqueue(redis_url)
    result = jobs_app.run("worker", "--burst")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(
        rf"default: jobs.boom\(\) failed: ValueError: boom; retrying in 15s "
        rf"\(procman jobs show {failing.id}\)\n",
        result.stdout,
    ), result.stdout
    shown = jobs_app.run("jobs", "show", failing.id)
    assert "status:        scheduled" in shown.stdout, shown.stdout
    assert 'raise ValueError("boom")' in shown.stdout, shown.stdout
