"""The private Redis of ``procman start``, with the real redis-server: it starts before the
formation, every process gets REDIS_URL, its data survives a restart, it stops last, and it never
outlives procman."""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

import psutil
import pytest

from tests.conftest import App, LiveOutput
from tests.integration.test_start import lines_of

pytestmark = pytest.mark.timeout(60)

PYTHON = sys.executable
CLIENT = "import os, redis; r = redis.Redis.from_url(os.environ['REDIS_URL']); "


@pytest.fixture(autouse=True)
def no_redis_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "REDIS_PROVIDER"):
        monkeypatch.delenv(name, raising=False)


def python(app: App, name: str, code: str) -> str:
    app.write(name, CLIENT + code + "\n")
    return f"{PYTHON} {name}"


def test_processes_get_the_private_redis_and_can_ping_it(app: App) -> None:
    app.write("queues.yml", "queues: [default]\n")
    app.procfile(f"web: {python(app, 'ping.py', 'print(r.get_connection_kwargs(), r.ping())')}\n")
    result = app.run("start", "--no-timestamp")
    assert result.returncode == 0, result.stdout + result.stderr
    system = lines_of(result.stdout, "system")
    started = re.fullmatch(
        r"redis started \(pid \d+\): (redis://127\.0\.0\.1:(\d+)/0), data in (.*), "
        r"log in redis\.log there \(-v shows it here\)",
        system[0],
    )
    assert started, system
    assert Path(started[3]) == app.root / ".procman" / "redis"
    kwargs, pong = lines_of(result.stdout, "web.1")[0].rsplit(" ", 1)
    assert pong == "True"
    assert f"'port': {started[2]}" in kwargs and "'host': '127.0.0.1'" in kwargs
    assert system[1].startswith("web.1 started")
    assert system[-2:] == ["sending SIGTERM to redis", "redis exited with code 0"]
    assert not lines_of(result.stdout, "redis"), "redis's banner is not the app's news"
    assert "Redis is starting" in (app.root / ".procman" / "redis" / "redis.log").read_text()
    assert result.stderr == ""
    verbose = app.run("start", "--no-timestamp", "-v")
    assert "Redis is starting" in "\n".join(lines_of(verbose.stdout, "redis"))


def test_data_is_kept_across_restarts(app: App) -> None:
    app.procfile(f"web: {python(app, 'set.py', 'r.set(chr(107), 42)')}\nworker: procman worker\n")
    first = app.run("start", "web", "--no-timestamp")
    assert first.returncode == 0, first.stdout
    app.procfile(
        f"web: {python(app, 'get.py', 'print(int(r.get(chr(107))))')}\nworker: procman worker\n"
    )
    second = app.run("start", "web", "--no-timestamp")
    assert second.returncode == 0, second.stdout
    assert lines_of(second.stdout, "web.1") == ["42"]
    assert "redis started" in first.stdout and "redis started" in second.stdout


SLOW_STOP = """
import signal, sys, time
def stop(signum, frame):
    time.sleep(1)
    print("finishing a job: redis says", r.ping(), flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("working", flush=True)
time.sleep(30)
"""


def test_redis_stops_after_every_other_process(app: App) -> None:
    app.write("queues.yml", "")
    app.write("slow.py", CLIENT + SLOW_STOP)
    app.procfile(f"worker: {PYTHON} slow.py\nweb: sleep 30\n")
    procman = app.spawn("start", "--no-timestamp", "--no-color")
    output = LiveOutput(procman)
    output.wait_for_line("worker.1", "working")
    os.killpg(procman.pid, signal.SIGINT)
    status, log = output.finish()
    assert status == 130, log
    assert lines_of(log, "worker.1")[-1] == "finishing a job: redis says True"
    system = lines_of(log, "system")
    assert system[-2:] == ["sending SIGTERM to redis", "redis exited with code 0"], system
    assert system.index("sending SIGTERM to redis") > max(
        system.index("web.1 terminated by SIGTERM"), system.index("worker.1 exited with code 0")
    )


def test_sigkill_of_procman_leaves_no_redis_behind(app: App) -> None:
    app.write("queues.yml", "")
    app.procfile("web: sleep 30\n")
    procman = app.spawn("start", "--no-timestamp")
    output = LiveOutput(procman)
    output.wait_for("web.1 started")
    pid = int(re.search(r"redis started \(pid (\d+)\)", output.text)[1])  # type: ignore[index]
    assert psutil.Process(pid).name() == "redis-server"
    procman.kill()
    procman.wait()
    psutil.wait_procs([psutil.Process(pid)], timeout=5)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_when_redis_dies_the_app_stops(app: App) -> None:
    app.write("queues.yml", "")
    app.procfile("web: sleep 30\n")
    procman = app.spawn("start", "--no-timestamp")
    output = LiveOutput(procman)
    output.wait_for("web.1 started")
    pid = int(re.search(r"redis started \(pid (\d+)\)", output.text)[1])  # type: ignore[index]
    os.kill(pid, signal.SIGKILL)
    status, log = output.finish()
    assert status == 137, log
    assert "system | redis terminated by SIGKILL" in log
    assert "system | redis is needed by the app: stopping all processes" in log


def test_without_redis_server_one_line_says_what_to_do(app: App) -> None:
    app.write("queues.yml", "")
    app.procfile('web: true; printf "url=%s\\n" "$REDIS_URL"\n')
    result = app.run("start", "--no-timestamp", env={"PATH": "/nonexistent"})
    assert result.returncode == 0, result.stdout
    system = lines_of(result.stdout, "system")
    assert system[0] == (
        "this app uses queues but no Redis is configured and there is no redis-server on PATH: "
        "install one (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install "
        "redis) to have procman run a private one, or set REDIS_URL (in .env or the shell) to a "
        "Redis"
    )
    assert lines_of(result.stdout, "web.1") == ["url="]


def test_a_configured_redis_wins_and_apps_without_queues_get_none(app: App) -> None:
    app.procfile('web: true; printf "url=%s\\n" "$REDIS_URL"\n')
    plain = app.run("start", "--no-timestamp")
    assert lines_of(plain.stdout, "web.1") == ["url="]
    assert "redis" not in plain.stdout
    app.write("queues.yml", "")
    app.write(".env", "REDIS_URL=redis://10.0.0.1:6379/2\n")
    configured = app.run("start", "--no-timestamp")
    assert lines_of(configured.stdout, "web.1") == ["url=redis://10.0.0.1:6379/2"]
    assert "redis started" not in configured.stdout


def test_redis_url_option_is_given_to_every_process(app: App) -> None:
    app.write(".env", "REDIS_PROVIDER=ELSEWHERE_URL\nELSEWHERE_URL=redis://elsewhere:6379\n")
    app.procfile('web: true; printf "%s|%s\\n" "$REDIS_URL" "$REDIS_PROVIDER"\n')
    result = app.run("start", "--no-timestamp", "--redis-url", "redis://:pw@cache:6380/1")
    assert lines_of(result.stdout, "web.1") == ["redis://:pw@cache:6380/1|"]
    bad = app.run("start", "--redis-url", "http://cache")
    assert bad.returncode == 1
    assert bad.stderr.startswith("procman: error: --redis-url: http://cache has scheme 'http'")


def test_a_bad_redis_provider_is_an_error_before_anything_starts(app: App) -> None:
    app.write("queues.yml", "")
    app.write(".env", "REDIS_PROVIDER=MISSING_URL\n")
    app.procfile("web: echo started\n")
    result = app.run("start")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "procman: error: REDIS_PROVIDER names MISSING_URL, which is not set "
        "(set MISSING_URL to the Redis URL, or unset REDIS_PROVIDER to use REDIS_URL)\n"
    )


def test_shell_commands_find_the_running_private_redis(app: App, live: type[LiveOutput]) -> None:
    import json

    app.write("queues.yml", "queues: [default]\n")
    app.write("jobs.py", "def hello():\n    return 'hi'\n")
    app.procfile("web: sleep 60\n")
    procman = app.spawn("start")
    output = live(procman)
    output.wait_for("web.1 started")
    started = re.search(r"redis started \(pid \d+\): (redis://127\.0\.0\.1:\d+/0)", output.text)
    assert started
    overview = app.run("jobs", "--json")
    assert overview.returncode == 0, overview.stderr
    assert started[1] in overview.stdout
    assert "the private Redis of the running procman start" in json.dumps(
        json.loads(overview.stdout)
    )
    os.killpg(procman.pid, signal.SIGINT)
    output.finish()
    stopped = app.run("jobs", "--json")  # procman is gone: its Redis is not offered any more
    assert started[1] not in stopped.stdout + stopped.stderr
