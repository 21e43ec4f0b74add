"""End to end: the example app (examples/) under the installed ``procman start``, served by a real
gunicorn, highlighted by its real worker (on procman's private Redis) and cleaned by its real clock
process, then stopped with Ctrl-C."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import sqlite3
import sys
import urllib.parse
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import App, LiveOutput

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

VENV_BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def request(
    port: int, method: str, path: str, form: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        body = urllib.parse.urlencode(form) if form is not None else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if form else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        connection.close()


@pytest.fixture
def example(app: App, monkeypatch: pytest.MonkeyPatch) -> App:
    """A copy of examples/ (its own database), with the venv's gunicorn and python on PATH as
    scripts/example arranges, and a fast clock: test.env, loaded after .env, wins over it."""
    if shutil.which("gunicorn", path=str(VENV_BIN)) is None:
        pytest.fail(f"gunicorn is not in {VENV_BIN}: run scripts/test, which installs it")
    shutil.copytree(
        EXAMPLES,
        app.root,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("*.db", "*.db-*", "__pycache__", ".procman"),
    )
    app.write("test.env", "SNIPPET_TTL=3\nCLOCK_INTERVAL=0.5\n")
    monkeypatch.setenv("PATH", f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    for name in ("REDIS_URL", "REDIS_PROVIDER"):  # procman start runs its private Redis
        monkeypatch.delenv(name, raising=False)
    return app


@pytest.mark.timeout(60)
def test_example_app_serves_snippets_and_stops_on_ctrl_c(example: App) -> None:
    port = free_port()
    procman = example.spawn("start", "-p", str(port), "-e", ".env,test.env", "--no-color")
    output = LiveOutput(procman)
    output.wait_for(f"Listening at: http://127.0.0.1:{port}", timeout=30)
    assert request(port, "GET", "/health")[::2] == (200, "ok")

    status, _, page = request(port, "GET", "/")
    assert status == 200
    assert "Paste a snippet" in page

    form = {"title": "greeting.py", "code": 'print("<hello>")'}
    status, headers, _ = request(port, "POST", "/", form)
    assert status == 303
    location = urllib.parse.urlsplit(headers["Location"]).path
    assert re.fullmatch(r"/s/\d+", location)

    status, _, page = request(port, "GET", location)
    assert status == 200
    assert "greeting.py" in page
    if "highlighting…" in page:  # the worker has not run the job yet: the code is shown plain
        assert "print(&#34;&lt;hello&gt;&#34;)" in page
    assert "greeting.py" in request(port, "GET", "/")[2]

    output.wait_for_line("worker.1", "highlighted snippet 1 as Python", timeout=20)
    page = request(port, "GET", location)[2]
    assert "highlighting…" not in page
    assert '<span class="nb">print</span>' in page
    assert "&lt;hello&gt;" in page

    with closing(sqlite3.connect(example.root / "snippets.db")) as database:
        assert database.execute("SELECT count(*) FROM snippets").fetchone() == (1,)

    clock = "INFO snippets.clock: "
    output.wait_for_line(
        "clock.1", clock + "cleaning snippets.db every 0.5s (keeping snippets for 3s)"
    )
    output.wait_for_line("clock.1", clock + "deleted 1 snippet(s) older than 3s", timeout=15)
    assert request(port, "GET", location)[0] == 404
    output.wait_for(f'"GET {location} HTTP/1.1" 404')

    os.killpg(procman.pid, signal.SIGINT)
    status, log = output.finish(timeout=20)
    assert status == 130, log
    for name, body in [
        ("system", "SIGINT received, stopping all processes"),
        ("system", "sending SIGTERM to all processes"),
        ("clock.1", clock + "SIGTERM received, stopping"),
        ("clock.1", clock + "stopped"),
        ("system", "sending SIGTERM to redis"),
        ("system", "redis exited with code 0"),
    ]:
        output.wait_for_line(name, body, timeout=0)
    assert re.search(r"web\.1 +\| .*Shutting down: Master", log)
    assert "SIGKILL" not in log
    assert procman.stderr is not None
    assert procman.stderr.read() == b""
