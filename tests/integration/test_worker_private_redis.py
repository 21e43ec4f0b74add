"""``procman worker`` finds the private Redis of the running ``procman start`` only when that start
really runs one: a url left by an earlier run (stopped, or killed with SIGKILL) is never used."""

from __future__ import annotations

import re

import psutil
import pytest

from tests.conftest import PROCMAN, App, LiveOutput
from tests.integration.test_start import lines_of

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def no_redis_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "REDIS_PROVIDER"):
        monkeypatch.delenv(name, raising=False)


def test_a_stopped_start_leaves_no_private_redis_url(app: App) -> None:
    app.write("queues.yml", "queues: [default]\n")
    app.procfile("web: true\n")
    result = app.run("start", "--no-timestamp")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "redis started" in result.stdout
    assert not (app.root / ".procman" / "redis" / "url").exists()


def test_a_url_left_by_a_killed_start_is_not_used_by_the_next(app: App) -> None:
    app.write("queues.yml", "queues: [default]\n")
    app.procfile("web: sleep 30\n")
    procman = app.spawn("start", "--no-timestamp")
    output = LiveOutput(procman)
    output.wait_for("web.1 started")
    found = re.search(r"redis started \(pid (\d+)\): (redis://127\.0\.0\.1:\d+/0)", output.text)
    assert found
    redis_pid, old_url = int(found[1]), found[2]
    procman.kill()  # as a crash would: nothing of procman's runs its clean-up
    procman.wait()
    psutil.wait_procs([psutil.Process(redis_pid)], timeout=5)
    url_file = app.root / ".procman" / "redis" / "url"
    assert url_file.read_text().strip() == old_url  # the leftover of the finding

    app.procfile(f"worker: {PROCMAN} worker --burst\n")
    result = app.run("start", "--no-timestamp", timeout=30, env={"PATH": "/nonexistent"})
    assert lines_of(result.stdout, "system")[0].startswith(
        "this app uses queues but no Redis is configured and there is no redis-server on PATH"
    )
    assert old_url not in result.stdout + result.stderr
    assert "from the private Redis of the running procman start" not in result.stdout
    assert not url_file.exists()
