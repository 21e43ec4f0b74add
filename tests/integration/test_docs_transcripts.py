"""The example app's log in docs/getting-started.md is what ``procman start`` prints: the example
is run as the page tells (start, paste a snippet, Ctrl-C) and each transcript marked
``<!-- transcript: NAME -->`` is compared with the real output.

Times, pids, ports, job ids and paths differ from run to run and are normalised on both sides.
Lines are compared per process name, as a multiset (processes interleave differently each run).
Lines procman writes (``system``, ``worker.1``) must match exactly, so the page neither invents a
line nor hides one; gunicorn's and the clock's lines on the page must each have been printed
(gunicorn tells of its own workers in an order and number of lines that vary between runs)."""

from __future__ import annotations

import os
import re
import signal
import urllib.parse
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import App, LiveOutput
from tests.integration.test_example_app import example, free_port, request

__all__ = ["example"]  # the fixture, used by name

ROOT = Path(__file__).resolve().parents[2]
GETTING_STARTED = ROOT / "docs" / "getting-started.md"
DOCS_APP_DIR = "/home/you/procman/examples"
EXACT = {"system", "worker.1"}
"""Names whose lines procman itself writes: compared exactly."""

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

_LINE = re.compile(r"^(?:\^C)?(?:\d\d:\d\d:\d\d )?(\S+) +\| ?(.*)$")
_NORMALISE = [
    (re.compile(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] "), ""),  # gunicorn's own date
    (re.compile(r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]"), "[DATE]"),  # its access log
    (re.compile(r'(" \d{3}) .*$'), r"\1 ..."),  # an access line's size, referrer and browser
    (re.compile(r"\b\d\d:\d\d:\d\d\b"), "HH:MM:SS"),
    (re.compile(r"\bpid(:| |: )\d+"), r"pid\1N"),
    (re.compile(r"\[\d+\]"), "[N]"),
    (re.compile(r"\(\d+\)"), "(N)"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:PORT"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "JOB"),
    (re.compile(r"\b\d+(\.\d+)?(ms|s)\b"), r"T\2"),
    (re.compile(r"^[\w.-]+\.\d+\.(\d+): "), r"HOST.N.\1: "),  # a worker's name: host.pid.n
]


def transcript(name: str) -> str:
    text = GETTING_STARTED.read_text()
    found = re.search(rf"<!-- transcript: {re.escape(name)} -->\n+```\n(.*?)```", text, re.S)
    assert found, f"docs/getting-started.md has no transcript marked {name!r}"
    return found[1]


PERIODIC = re.compile(r"expire_snippets|deleted \d+ snippet\(s\) older than")
"""The example's ``schedule:`` job (every 15 minutes, by the clock): its lines come whenever a
run crosses a quarter hour, so they are left out of the comparison."""


def by_name(text: str, app_dir: str) -> dict[str, Counter[str]]:
    lines: dict[str, Counter[str]] = {}
    for raw in text.splitlines():
        match = _LINE.match(raw)
        if match is None or (match[1] == "worker.1" and PERIODIC.search(match[2])):
            continue
        body = match[2].replace(app_dir, "APP")
        for pattern, replacement in _NORMALISE:
            body = pattern.sub(replacement, body)
        lines.setdefault(match[1], Counter())[body] += 1
    return lines


def compare(documented: str, printed: str, app_dir: str) -> None:
    shown, real = by_name(documented, DOCS_APP_DIR), by_name(printed, app_dir)
    for name, lines in shown.items():
        if name in EXACT:
            assert lines == real.get(name, Counter()), (
                f"{name}: the page shows {sorted(lines.elements())}\n"
                f"procman printed {sorted(real.get(name, Counter()).elements())}"
            )
        else:
            invented = lines - real.get(name, Counter())
            assert not invented, f"{name}: the page shows lines never printed: {invented}"
    for name in EXACT:
        assert name in shown or name not in real, f"the page hides every {name} line"


def test_getting_started_shows_what_the_example_app_prints(example: App) -> None:
    port = free_port()
    procman = example.spawn("start", "-p", str(port), "--no-color")
    output = LiveOutput(procman)
    output.wait_for(f"Listening at: http://127.0.0.1:{port}", timeout=30)
    started = settle(output)
    compare(transcript("example-start"), started, str(example.root))

    form = {"title": "hello.py", "code": 'print("hello")'}
    status, headers, _ = request(port, "POST", "/", form)
    assert status == 303, headers
    assert re.fullmatch(r"/s/\d+", urllib.parse.urlsplit(headers["Location"]).path)
    output.wait_for("highlighted snippet 1 as Python", timeout=20)
    ran = settle(output)[len(started) :]
    compare(transcript("example-job"), ran, str(example.root))

    os.killpg(procman.pid, signal.SIGINT)
    status, log = output.finish(timeout=30)
    assert status == 130
    compare(transcript("example-stop"), log[len(started) + len(ran) :], str(example.root))


def settle(output: LiveOutput, quiet: float = 1.5, limit: float = 20) -> str:
    """The output once nothing new has come for ``quiet`` seconds."""
    import time

    deadline = time.monotonic() + limit
    seen, since = output.text, time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = output.text
        if now != seen:
            seen, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return seen
    raise AssertionError(f"the output never went quiet for {quiet}s:\n{seen}")
