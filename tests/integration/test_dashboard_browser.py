"""The dashboard in a real browser: Debian's chromium, headless, driven by Playwright, against
the installed ``procman dashboard`` serving an app whose ``procman start`` runs a real worker on
a real Redis.

Set PROCMAN_SCREENSHOTS=docs/dashboard to refresh the screenshots docs/dashboard.md shows (they
are written to the test's temporary directory otherwise)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from rq.queue import Queue

from tests.conftest import App, LiveOutput, free_port, wait_until

pytestmark = pytest.mark.timeout(180)

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAYLOAD = '<script>alert("xss-1")</script>"><img src=x onerror=alert("xss-2")>'

JOBS = '''
import time
from pathlib import Path


def send_welcome(marker, note):
    """Fails the first time (after creating marker), succeeds once retried."""
    path = Path(marker)
    if not path.exists():
        path.touch()
        raise ValueError("mail server refused: " + note)
    return "sent"


def add(a, b):
    return a + b


def resize_image(name):
    time.sleep(0.2)
    return name


def nightly_report():
    return "ok"
'''

QUEUES = """\
concurrency: 1
retry: false
queues:
  - [default, 3]
  - [mail, 1]
schedule:
  nightly_report: {cron: "0 3 * * *", func: jobs.nightly_report, queue: default}
"""


@pytest.fixture
def site(
    tmp_path: Path, redis_url: str, live: type[LiveOutput]
) -> Iterator[tuple[str, redis.Redis]]:
    """``procman start`` (web + a worker serving ``default`` only, so ``mail`` keeps its jobs) and
    ``procman dashboard`` on a free port; the dashboard's URL and a Redis client."""
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run scripts/test, which installs it")
    (tmp_path / "shop").mkdir()
    app = App(tmp_path / "shop")  # the name the pages show
    connection = redis.Redis.from_url(redis_url)
    try:
        app.write("jobs.py", JOBS)
        app.write("queues.yml", QUEUES)
        app.procfile("web: python3 -m http.server $PORT\nworker: procman worker -q default\n")
        port = free_port()
        start = live(app.spawn("start", "--redis-url", redis_url, "-p", str(free_port())))
        start.wait_for("ready for default", timeout=30)
        dashboard = live(app.spawn("dashboard", "--port", str(port), "--redis-url", redis_url))
        dashboard.wait_for("procman dashboard: serving", timeout=30)
        yield f"http://127.0.0.1:{port}", connection
    finally:
        connection.close()
        app.stop_all()


@pytest.fixture
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def screenshots(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("PROCMAN_SCREENSHOTS") or tmp_path / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def test_the_dashboard_in_a_browser(
    site: tuple[str, redis.Redis], browser: object, tmp_path: Path
) -> None:
    from playwright.sync_api import Browser, Dialog, expect

    url, connection = site
    assert isinstance(browser, Browser)
    shots = screenshots(tmp_path)
    fill(connection, tmp_path)
    marker = tmp_path / "first-try"
    flaky = Queue("default", connection=connection).enqueue(
        "jobs.send_welcome", str(marker), PAYLOAD
    )
    wait_until(lambda: flaky.get_status(refresh=True) == "failed", timeout=30, what="job failed")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )

    visit_pages(page, url, shots)

    # the failed page: the payload is text, nothing of it runs or renders as an element
    page.goto(url + "/failed")
    article = page.locator("article.failed-job").filter(has_text=flaky.id)
    expect(article.locator(".error")).to_have_text(f"ValueError: mail server refused: {PAYLOAD}")
    expect(article.locator(".call")).to_contain_text(PAYLOAD[:30])
    assert page.locator("img").count() == 0
    assert page.evaluate("document.querySelectorAll('script:not([src])').length") == 0
    page.screenshot(path=str(shots / "failed.png"), full_page=True)
    page.goto(url + f"/jobs/{flaky.id}")
    expect(page.locator("pre")).to_contain_text("mail server refused: " + PAYLOAD)
    page.screenshot(path=str(shots / "job.png"), full_page=True)

    # retry it from the failed page: the worker runs it again, and it succeeds
    page.goto(url + "/failed")
    page.locator("article.failed-job").filter(has_text=flaky.id).locator(
        "button", has_text="Retry"
    ).click()
    expect(page.locator(".notice")).to_have_text(f"requeued job {flaky.id} on queue default")
    wait_until(lambda: flaky.get_status(refresh=True) == "finished", timeout=30, what="retried")
    page.goto(url + f"/jobs/{flaky.id}")
    expect(page.locator("h1 .state")).to_have_text("finished")
    expect(page.locator("dd code", has_text="'sent'")).to_be_visible()

    # a POST without the CSRF token is refused, from the page's own origin too
    refused = page.evaluate(
        """url => fetch(url, {method: 'POST', body: new URLSearchParams({next: '/'})})
                 .then(response => response.status)""",
        url + "/failed/delete-all",
    )
    assert refused == 403
    assert page.request.post(url + "/failed/retry-all", form={"next": "/"}).status == 403
    assert dialogs == [], "a script from the payload ran"
    assert not [e for e in errors if "Content Security Policy" in e and "inline" in e]


def fill(connection: redis.Redis, tmp_path: Path) -> None:
    """Jobs done, jobs waiting in ``mail`` (which the worker does not serve), jobs scheduled."""
    from datetime import timedelta

    default = Queue("default", connection=connection)
    mail = Queue("mail", connection=connection)
    for n in range(12):
        default.enqueue("jobs.add", n, n)
    for name in ("avatar.png", "banner.jpg", "logo.svg"):
        default.enqueue("jobs.resize_image", name)
    for n in range(6):
        mail.enqueue("jobs.send_welcome", str(tmp_path / f"never-{n}"), f"user{n}@example.com")
    default.enqueue_in(timedelta(minutes=30), "jobs.add", 40, 2)
    mail.enqueue_in(timedelta(hours=6), "jobs.send_welcome", str(tmp_path / "later"), "later")


def visit_pages(page: Any, url: str, shots: Path) -> None:
    from playwright.sync_api import expect

    # the overview: processes from the running procman start, queues, charts
    page.goto(url + "/")
    expect(page.locator("h2", has_text="Processes")).to_be_visible()
    expect(page.locator("td", has_text="worker.1")).to_be_visible()
    expect(page.locator("td", has_text="web.1")).to_be_visible()
    expect(page.locator("a", has_text="mail")).to_be_visible()
    assert page.locator("svg rect.processed").count() == 90
    page.screenshot(path=str(shots / "overview.png"), full_page=True)

    page.goto(url + "/queues")
    expect(page.locator("h1", has_text="Queues")).to_be_visible()
    page.screenshot(path=str(shots / "queues.png"), full_page=True)
    page.goto(url + "/queues/mail")
    expect(page.locator("h1", has_text="Queue mail")).to_be_visible()
    assert page.locator("tbody tr").count() == 6
    page.screenshot(path=str(shots / "queue.png"), full_page=True)
    page.goto(url + "/workers")
    expect(page.locator("td", has_text="default")).to_be_visible()
    page.screenshot(path=str(shots / "workers.png"), full_page=True)
    page.goto(url + "/scheduled")
    expect(page.get_by_role("cell", name="nightly_report", exact=True)).to_be_visible()
    page.screenshot(path=str(shots / "scheduled.png"), full_page=True)


def test_screenshots_are_what_docs_show() -> None:
    """docs/dashboard.md shows each page's screenshot, each file there."""
    docs = Path(__file__).resolve().parents[2] / "docs"
    shown = re.findall(r"\]\((dashboard/[\w-]+\.png)\)", (docs / "dashboard.md").read_text())
    assert sorted(shown) == sorted(
        f"dashboard/{name}.png"
        for name in ("overview", "queues", "queue", "workers", "failed", "job", "scheduled")
    )
    for name in shown:
        assert (docs / name).stat().st_size > 10_000, name
    assert shutil.which("chromium") or Path(CHROMIUM).exists()
