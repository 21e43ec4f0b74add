"""A corpus of sidekiq.yml files in the shapes public repositories use (tests/fixtures/sidekiq/,
written for these tests): each loads as Sidekiq would read it, with one warning per key procman
does not act on, or is refused with one line naming the line and the expression."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from procman.errors import QueueConfigError
from procman.queues.config import load_queue_config

CORPUS = Path(__file__).parent.parent / "fixtures" / "sidekiq"
PRODUCTION = {"RAILS_ENV": "production"}


def importer(module: str) -> Any:
    if module == "app.jobs":
        return type("Module", (), {"report": staticmethod(lambda: None)})
    raise ModuleNotFoundError(f"No module named {module!r}", name=module)


# file, env, (concurrency, mode, queues summary, keys warned about, scheduled entries)
EXPECTED: list[tuple[str, dict[str, str], tuple[int, str, str, list[str], list[str]]]] = [
    (
        "01-sample.yml",
        {},
        (10, "strict", "critical, default, mailers, low",
         ["verbose", "timeout", "max_retries", "concurrency"], []),
    ),
    (
        "02-environments.yml",
        {},
        (2, "weighted",
         "critical(3), default(2), mailers(1), active_storage_analysis(1), active_storage_purge(1)",
         ["timeout", "max_retries", "retry_interval", "verbose"], []),
    ),
    (
        "02-environments.yml",
        PRODUCTION,
        (10, "weighted",
         "critical(3), default(2), mailers(1), active_storage_analysis(1), active_storage_purge(1)",
         ["timeout", "verbose", "max_retries", "retry_interval", "logfile", "pidfile", "daemon",
          "concurrency"], []),
    ),
    (
        "04-limit-fetch.yml",
        {},
        (25, "weighted", "default(1), high(2), low(1), email(3)",
         ["limits", "timeout", "max_retries", "redis", "logfile", "loglevel", "concurrency"], []),
    ),
    (
        "05-sidekiq-5-daemon.yml",
        {},
        (4, "strict", "default", ["verbose", "pidfile", "logfile", "daemon", "concurrency"], []),
    ),
    (
        "06-qlimit.yml",
        {},
        (5, "strict", "unlimited, limited", ["pidfile", "qlimit", "concurrency"], []),
    ),
    (
        "07-scheduler-top-level.yml",
        {},
        (3, "strict", "default, low",
         ["schedule.clear_sessions", "schedule.heartbeat", "concurrency"], ["python_report"]),
    ),
    (
        "08-scheduler-v4.yml",
        {},
        (2, "weighted", "critical(2), default",
         ["scheduler", "scheduler.schedule.digest", "scheduler.schedule.cleanup"], []),
    ),
    (
        "09-mixed-weights.yml",
        {},
        (2, "weighted", "default(5), sms, mailer, pull", ["dynamic", "labels"], []),
    ),
    (
        "10-rails-env.yml",
        {},
        (5, "strict", "default, mailers, active_storage_analysis, active_storage_purge",
         ["require", "concurrency"], []),
    ),
    (
        "10-rails-env.yml",
        PRODUCTION,
        (20, "weighted", "critical(4), default(2), mailers(1)", ["require", "concurrency"], []),
    ),
    ("11-sidekiq-queues.yml", {}, (2, "random", "searchkick(1), default(1), mailers(1)", [], [])),
    ("12-capsules.yml", {}, (5, "strict", "default", ["capsules", "concurrency"], [])),
]  # fmt: skip


@pytest.mark.parametrize(("name", "env", "expected"), EXPECTED)
def test_each_file_loads_with_the_expected_warnings(
    name: str, env: dict[str, str], expected: tuple[int, str, str, list[str], list[str]]
) -> None:
    config = load_queue_config(CORPUS / name, importer=importer, env=env, cores=2)
    concurrency, mode, summary, warned, scheduled = expected
    assert config.concurrency == concurrency
    assert config.mode == mode
    assert config.summary() == summary
    keys = [warning.split(": ")[1] for warning in config.warnings]
    assert sorted(keys) == sorted(warned)
    assert all(w.startswith(f"{CORPUS / name}: ") for w in config.warnings)
    assert [job.name for job in config.schedule] == scheduled


def test_a_ruby_expression_in_the_erb_is_refused_with_its_line() -> None:
    with pytest.raises(QueueConfigError) as caught:
        load_queue_config(CORPUS / "03-redis-ssl-params.yml", importer=importer, env={})
    assert caught.value.message == (
        f"{CORPUS / '03-redis-ssl-params.yml'}:5: cannot evaluate <%= OpenSSL::SSL::VERIFY_NONE "
        "if ENV['RAILS_ENV'] == 'production' %>: 'OpenSSL' is outside the subset"
    )


def test_the_corpus_is_all_here() -> None:
    names = {path.name for path in CORPUS.glob("*.yml")}
    assert names == {name for name, _, _ in EXPECTED} | {"03-redis-ssl-params.yml"}
