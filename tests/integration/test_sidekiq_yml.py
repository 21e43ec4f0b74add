"""End-to-end: a ``config/sidekiq.yml`` given with ``-C``, as Sidekiq takes it, against a real Redis
and real worker processes: the order the queues are served in follows Sidekiq 7's modes, and the
keys procman does not act on are warned about by the worker and by ``procman check``."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest
import redis
from rq.queue import Queue

from tests.conftest import App

pytestmark = pytest.mark.timeout(120)

JOBS = """
def record(path, name):
    with open(path, "a") as f:
        f.write(name + "\\n")
"""


@pytest.fixture
def sidekiq_app(app: App, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> App:
    app.write("jobs.py", JOBS)
    (app.root / "config").mkdir()
    app.procfile("worker: procman worker -C config/sidekiq.yml\n")
    monkeypatch.setenv("REDIS_URL", redis_url)
    for variable in ("PROCMAN_ENV", "APP_ENV", "RAILS_ENV", "RACK_ENV"):
        monkeypatch.delenv(variable, raising=False)
    return app


def served(app: App, redis_url: str, sidekiq_yml: str, jobs: dict[str, int]) -> list[str]:
    """The queue of each job in the order one worker process ran them (enqueued queue by queue,
    in the order given)."""
    app.write("config/sidekiq.yml", sidekiq_yml)
    connection = redis.Redis.from_url(redis_url)
    record = app.root / "served.txt"
    for name, count in jobs.items():
        queue = Queue(name, connection=connection)
        for _ in range(count):
            queue.enqueue("jobs.record", str(record), name)
    connection.close()
    result = app.run("worker", "-C", "config/sidekiq.yml", "--burst", "-c", "1", timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    order = record.read_text().split()
    assert Counter(order) == Counter(jobs)
    return order


def test_a_list_without_weights_is_served_strictly_in_order(
    sidekiq_app: App, redis_url: str
) -> None:
    order = served(
        sidekiq_app, redis_url, ":queues:\n  - high\n  - [middle, 0]\n  - [low]\n",
        {"low": 15, "middle": 15, "high": 15},
    )  # fmt: skip
    assert order == ["high"] * 15 + ["middle"] * 15 + ["low"] * 15


def test_a_mixed_list_is_weighted_and_the_weightless_queue_is_not_starved(
    sidekiq_app: App, redis_url: str
) -> None:
    order = served(
        sidekiq_app, redis_url, ":queues:\n  - [heavy, 5]\n  - light\n",
        {"light": 60, "heavy": 60},
    )  # fmt: skip
    first = Counter(order[:60])
    # light is drawn first 1 time in 6: about 10 of the first 60 (0 has odds of 2 in 100,000)
    assert 0 < first["light"] < first["heavy"], first


def test_equal_weights_are_served_at_random(sidekiq_app: App, redis_url: str) -> None:
    order = served(sidekiq_app, redis_url, ":queues:\n  - [a, 1]\n  - [b, 1]\n", {"a": 60, "b": 60})
    first = Counter(order[:60])
    # strict order would give 60 a's; a fair draw gives 30 +- 4 of each
    assert first["a"] >= 12 and first["b"] >= 12, first


def test_check_shows_the_merged_environment_and_warns_once_per_key(sidekiq_app: App) -> None:
    sidekiq_app.write(".env", "RAILS_ENV=production\nSIDEKIQ_CONCURRENCY=1\n")
    sidekiq_app.write(
        "config/sidekiq.yml",
        ":concurrency: 1\n:queues: [default]\n:limits: {default: 1}\n"
        "production:\n  :concurrency: <%= ENV.fetch('SIDEKIQ_CONCURRENCY', 10) %>\n"
        "  :logfile: log/sidekiq.log\n  :queues:\n    - [critical, 2]\n    - default\n",
    )
    result = sidekiq_app.run("check", "-C", "config/sidekiq.yml", "--json")
    assert result.returncode == 0, result.stderr
    queues = json.loads(result.stdout)["queues"]
    assert queues["environment"] == {"name": "production", "from": "RAILS_ENV"}
    assert queues["concurrency"] == 1
    assert queues["queues"] == [
        {"name": "critical", "weight": 2},
        {"name": "default", "weight": None},
    ]
    assert queues["mode"] == "weighted"
    assert [w.split(": ")[1] for w in queues["warnings"]] == ["limits", "logfile"]
    assert result.stderr.splitlines() == [f"procman: warning: {w}" for w in queues["warnings"]]


def test_the_worker_says_each_warning_once_at_its_start(sidekiq_app: App) -> None:
    sidekiq_app.write("config/sidekiq.yml", ":queues: [default]\n:pidfile: tmp/sidekiq.pid\n")
    result = sidekiq_app.run("worker", "-C", "config/sidekiq.yml", "--burst")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [re.sub(r"^[0-9:]{8} ", "", line) for line in result.stdout.splitlines()]
    assert lines[0] == (
        "procman worker: warning: config/sidekiq.yml: pidfile: dropped in Sidekiq 6, and not "
        "acted on: procman supervises the worker (no daemon, no pid file) and writes its log to "
        "standard output"
    )
    assert lines[1].startswith("procman worker: serving default with 2 worker processes")
    assert not (sidekiq_app.root / "tmp").exists()


def test_a_ruby_expression_stops_the_worker_with_one_line(sidekiq_app: App) -> None:
    sidekiq_app.write(
        "config/sidekiq.yml", ":queues: [default]\n:concurrency: <%= Etc.nprocessors %>\n"
    )
    result = sidekiq_app.run("worker", "-C", "config/sidekiq.yml", "--burst")
    assert result.returncode == 1
    assert result.stderr.startswith(
        "procman: error: config/sidekiq.yml:2: cannot evaluate <%= Etc.nprocessors %>: 'Etc' is "
        "outside the subset"
    )
    assert result.stderr.count("\n") == 1


def test_the_transcript_in_docs_sidekiq_md_is_what_check_prints(sidekiq_app: App) -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "sidekiq.md").read_text()
    yaml_block = re.search(r"```yaml\n(.*?)```", page, re.S)
    shown = re.search(r"```\n\$ RAILS_ENV=production procman check (.*?)\n(.*?)```", page, re.S)
    assert yaml_block and shown
    sidekiq_app.write("config/sidekiq.yml", yaml_block[1])
    result = sidekiq_app.run("check", *shown[1].split(), env={"RAILS_ENV": "production"})
    assert result.returncode == 0, result.stderr
    cores = os.cpu_count() or 1
    expected = shown[2].replace("on 2 cores", f"on {cores} cores").splitlines()
    if cores >= 10:
        expected = [line for line in expected if "number of threads" not in line]
    assert result.stderr.splitlines() + result.stdout.splitlines() == expected
