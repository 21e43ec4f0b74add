"""The queue YAML: defaults, both key spellings, and every validation message."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from procman.errors import ConfigError, ManyErrors, ProcmanError, QueueConfigError
from procman.queues.config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_CONFIG,
    QueueSpec,
    ScheduledJob,
    load_queue_config,
    parse_queue_config,
)

ROOT = Path(__file__).resolve().parents[2]


def fake_importer(module: str) -> Any:
    """Modules 'app.jobs' (with 'expire' and 'report') and 'app.broken' (raises on import)."""
    if module == "app.jobs":
        return SimpleNamespace(expire=lambda: None, report=lambda: None, SETTING=3)
    if module == "app.broken":
        raise RuntimeError("database is down")
    raise ModuleNotFoundError(f"No module named {module!r}", name=module.partition(".")[0])


def parse(text: str) -> Any:
    return parse_queue_config(textwrap.dedent(text), "queues.yml", importer=fake_importer)


def messages(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    error = caught.value
    return [e.message for e in (error.errors if isinstance(error, ManyErrors) else [error])]


def message(text: str) -> str:
    found = messages(text)
    assert len(found) == 1, found
    return found[0]


def test_the_issue_example_parses() -> None:
    config = parse(
        """\
        concurrency: 4
        queues:
          - [critical, 5]
          - [default, 3]
          - [low, 1]
        timeout: 180
        retry: 5
        max_jobs: 1000
        max_memory: 512MB
        schedule:
          expire_sessions: {cron: "0 * * * *", func: app.jobs.expire, queue: low}
        """
    )
    assert config.concurrency == 4
    assert config.queues == (QueueSpec("critical", 5), QueueSpec("default", 3), QueueSpec("low", 1))
    assert config.weighted
    assert config.weights == [("critical", 5), ("default", 3), ("low", 1)]
    assert (config.timeout, config.retry, config.max_jobs) == (180, 5, 1000)
    assert config.max_memory == 512 * 1024**2
    assert config.schedule == (
        ScheduledJob("expire_sessions", "0 * * * *", "app.jobs.expire", "low"),
    )
    assert config.summary() == "critical(5), default(3), low(1)"


def test_sidekiq_colon_spelling_is_accepted_for_every_key() -> None:
    config = parse(
        """\
        :concurrency: 3
        :queues:
          - critical
          - default
        :timeout: 30
        :retry: false
        :max_jobs: 10
        :max_memory: 1GB
        :schedule:
          nightly:
            :cron: "@daily"
            :func: app.jobs.report
            :queue: default
            :args: [1, two]
            :kwargs: {dry_run: true}
        """
    )
    assert config.concurrency == 3
    assert config.names == ["critical", "default"]
    assert not config.weighted
    assert config.summary() == "critical, default"
    assert (config.timeout, config.retry, config.max_jobs, config.max_memory) == (
        30,
        0,
        10,
        1024**3,
    )
    job = config.schedule[0]
    assert (job.cron, job.args, dict(job.kwargs)) == ("@daily", (1, "two"), {"dry_run": True})


@pytest.mark.parametrize("text", ["", "# only comments\n", "---\n"])
def test_an_empty_file_means_the_defaults(text: str) -> None:
    config = parse(text)
    assert config.path == "queues.yml"
    assert config.concurrency == DEFAULT_CONCURRENCY == 2
    assert config.names == ["default"] == DEFAULT_CONFIG.names
    assert (config.timeout, config.retry, config.max_jobs, config.max_memory) == (
        180,
        0,
        None,
        None,
    )
    assert config.schedule == ()


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("300kB", 300 * 1024),
        ("300KB", 300 * 1024),
        ("512MB", 512 * 1024**2),
        ("512 mb", 512 * 1024**2),
        ("1GB", 1024**3),
        ("1.5GiB", int(1.5 * 1024**3)),
        ("2048B", 2048),
    ],
)
def test_max_memory_sizes(text: str, size: int) -> None:
    assert parse(f"max_memory: {text}\n").max_memory == size


EXACT = [
    (
        "queues:\n  - [critical, 5]\n  - [default, -2]\n",
        "queues.yml: queues[1]: weight must be a whole number, 0 or more (got -2)",
    ),
    (
        "queues:\n  - [critical, 5]\n  - [default, high]\n",
        "queues.yml: queues[1]: weight must be a whole number, 0 or more (got the string 'high')",
    ),
    (
        "queues:\n  - [critical, 5]\n  - [default, 1.5]\n",
        "queues.yml: queues[1]: weight must be a whole number, 0 or more (got 1.5)",
    ),
    (
        "queues:\n  - [critical, 5]\n  - [low, 1]\n  - [critical, 2]\n",
        "queues.yml: queues[2]: queue 'critical' is listed twice (first at queues[0])",
    ),
    (
        "queues: [critical, default, critical]\n",
        "queues.yml: queues[2]: queue 'critical' is listed twice (first at queues[0])",
    ),
    (
        "queues: [[a, 1, 2]]\n",
        "queues.yml: queues[0]: expected [name, weight] or [name], got a list of 3",
    ),
    ("queues: ['critical,5']\n", "queues.yml: queues[0]: bad queue name the string 'critical,5'"),
    ("queues: [[7, 1]]\n", "queues.yml: queues[0]: bad queue name 7"),
    ("queues: []\n", "queues.yml: queues: must be a list of queues (got an empty list)"),
    (
        "queues: critical\n",
        "queues.yml: queues: must be a list of queues (got the string 'critical')",
    ),
    ("timout: 5\n", "queues.yml: unknown key 'timout'"),
    ("concurrency: 0\n", "queues.yml: concurrency: must be from 1 to 256 (got 0)"),
    ("concurrency: 257\n", "queues.yml: concurrency: must be from 1 to 256 (got 257)"),
    ("concurrency: true\n", "queues.yml: concurrency: must be from 1 to 256 (got true)"),
    ("concurrency: '4'\n", "queues.yml: concurrency: must be from 1 to 256 (got the string '4')"),
    ("timeout: 0\n", "queues.yml: timeout: must be a positive integer (got 0)"),
    ("timeout: [1]\n", "queues.yml: timeout: must be a positive integer (got a list)"),
    ("retry: true\n", "queues.yml: retry: must be a number of retries or false (got true)"),
    ("retry: -1\n", "queues.yml: retry: must be a number of retries or false (got -1)"),
    ("max_jobs: 0\n", "queues.yml: max_jobs: must be a positive integer (got 0)"),
    ("max_memory: 512\n", "queues.yml: max_memory: must be a size like 512MB (got 512)"),
    ("max_memory: lots\n", "queues.yml: max_memory: 'lots' is not a size"),
    ("max_memory: 12 parsecs\n", "queues.yml: max_memory: '12 parsecs' is not a size"),
    ("max_memory: 0MB\n", "queues.yml: max_memory: must be above 0 (got 0MB)"),
    ("- critical\n", "queues.yml: expected a mapping of keys to values, got a list"),
    ("just text\n", "queues.yml: expected a mapping of keys to values, got the string 'just text'"),
    ("retry: 1\n:retry: 2\n", "queues.yml: retry: given twice (as 'retry' and ':retry')"),
    ("queues: [a\n", "queues.yml:2:1: invalid YAML: expected ',' or ']', but got '<stream end>'"),
    (
        "queues:\n  - a\n - b\n",
        "queues.yml:3:2: invalid YAML: expected <block end>, but found '<block sequence start>'",
    ),
    (
        "retry: 1\nretry: 2\n",
        "queues.yml:2:1: invalid YAML: duplicate key 'retry' (first on line 1)",
    ),
    (
        "schedule:\n  r: {cron: '61 * * * *', func: app.jobs.report, queue: default}\n",
        "queues.yml: schedule.r.cron: '61 * * * *' is not a valid cron string",
    ),
    (
        "schedule:\n  r: {cron: 'every day', func: app.jobs.report, queue: default}\n",
        "queues.yml: schedule.r.cron: 'every day' is not a valid cron string",
    ),
    (
        "schedule:\n  r: {cron: 5, func: app.jobs.report, queue: default}\n",
        "queues.yml: schedule.r.cron: must be a cron string (got 5)",
    ),
    (
        "schedule:\n  r: {cron: '@hourly', func: nosuch.jobs.report, queue: default}\n",
        "queues.yml: schedule.r.func: cannot import nosuch.jobs.report: no module named 'nosuch'",
    ),
    (
        "schedule:\n  r: {cron: '@hourly', func: app.jobs.missing, queue: default}\n",
        "queues.yml: schedule.r.func: cannot import app.jobs.missing: "
        "module app.jobs has no attribute 'missing'",
    ),
    (
        "schedule:\n  r: {cron: '@hourly', func: app.jobs.SETTING, queue: default}\n",
        "queues.yml: schedule.r.func: cannot import app.jobs.SETTING: "
        "'SETTING' in app.jobs is not a function",
    ),
    (
        "schedule:\n  r: {cron: '@hourly', func: app.broken.f, queue: default}\n",
        "queues.yml: schedule.r.func: cannot import app.broken.f: "
        "importing app.broken raised RuntimeError: database is down",
    ),
    (
        "schedule:\n  r: {cron: '@hourly', func: report, queue: default}\n",
        "queues.yml: schedule.r.func: the string 'report' is not a dotted path to a function",
    ),
    (
        "schedule:\n  r: {cron: '@hourly', func: app.jobs.report, queue: mail}\n",
        "queues.yml: schedule.r.queue: queue 'mail' is not in queues (default)",
    ),
    (
        "schedule:\n  r: {cron: '@hourly', func: app.jobs.report}\n",
        "queues.yml: schedule.r: missing 'queue'",
    ),
    (
        "schedule:\n  r: {cron: '@hourly', func: app.jobs.report, queue: default, args: 1}\n",
        "queues.yml: schedule.r.args: must be a list (got 1)",
    ),
    (
        "schedule:\n  r: {cron: '@hourly', func: app.jobs.report, queue: default, kwargs: [1]}\n",
        "queues.yml: schedule.r.kwargs: must be a mapping of argument names to values (got a list)",
    ),
    (
        "schedule:\n  r: hourly\n",
        "queues.yml: schedule.r: expected a mapping of keys to values, got the string 'hourly'",
    ),
    (
        "schedule: [a]\n",
        "queues.yml: schedule: must be a mapping of job names to jobs (got a list)",
    ),
    ("schedule:\n  'a b': {}\n", "queues.yml: schedule: bad job name the string 'a b'"),
]


@pytest.mark.parametrize(("text", "expected"), EXACT)
def test_exact_messages(text: str, expected: str) -> None:
    assert message(text) == expected


def test_an_entry_with_class_is_sidekiq_schedulers_and_only_warned_about() -> None:
    config = parse("schedule:\n  r: {cron: '@hourly', class: app.jobs.report, queue: default}\n")
    assert config.schedule == ()
    assert config.warnings == (
        "queues.yml: schedule.r: sidekiq-scheduler entry not scheduled: cron '@hourly' is not a "
        "five-field cron string; write cron: (five fields) and func: module.function for "
        "procman to run it",
    )


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("timout: 5\n", "did you mean 'timeout'?"),
        (":concurency: 5\n", "did you mean 'concurrency'?"),
        ("workers: 5\n", "did you mean 'concurrency'?"),
        (
            "colour: true\n",
            "known keys: concurrency, queues, timeout, retry, max_jobs, max_memory, "
            "keyspace_notifications, schedule",
        ),
        (
            "schedule:\n  r: {cron: '@hourly', every: 1h, func: app.jobs.report, queue: default}\n",
            "did you mean 'cron'?",
        ),
        ("retry: 1\nretry: 2\n", "keep one of them"),
    ],
)
def test_hints_suggest_the_fix(text: str, hint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    error = caught.value
    assert (error.errors[0] if isinstance(error, ManyErrors) else error).hint == hint


def test_independent_problems_are_reported_together() -> None:
    found = messages(
        """\
        concurrency: 0
        queues:
          - [critical, 5]
          - [default, -1]
        timout: 5
        retry: true
        schedule:
          a: {cron: "61 * * * *", func: app.jobs.expire, queue: default}
          b: {cron: "@daily", func: nosuch.f, queue: default}
        """
    )
    assert found == [
        "queues.yml: unknown key 'timout'",
        "queues.yml: queues[1]: weight must be a whole number, 0 or more (got -1)",
        "queues.yml: concurrency: must be from 1 to 256 (got 0)",
        "queues.yml: retry: must be a number of retries or false (got true)",
        "queues.yml: schedule.a.cron: '61 * * * *' is not a valid cron string",
        "queues.yml: schedule.b.func: cannot import nosuch.f: no module named 'nosuch'",
    ]


def test_yaml_merge_keys_are_not_duplicates() -> None:
    config = parse(
        """\
        schedule:
          a: &defaults {cron: "@hourly", func: app.jobs.report, queue: default}
          b:
            <<: *defaults
            cron: "@daily"
        """
    )
    assert [(job.name, job.cron) for job in config.schedule] == [("a", "@hourly"), ("b", "@daily")]


def test_the_example_file_loads_through_the_real_validator() -> None:
    config = load_queue_config(ROOT / "examples" / "queues.yml")
    assert config.summary() == "critical(5), default(3), low(1)"
    assert config.concurrency == 2
    assert [job.func for job in config.schedule] == ["snippets.jobs.expire_snippets"]


def test_the_docs_include_the_example_verbatim() -> None:
    example = (ROOT / "examples" / "queues.yml").read_text()
    reference = (ROOT / "docs" / "queues.md").read_text()
    assert f"```yaml\n{example}```" in reference


def test_funcs_are_imported_from_the_app_directory(tmp_path: Path) -> None:
    package = tmp_path / "qcfgapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tasks.py").write_text("def cleanup():\n    return 1\n")
    (tmp_path / "queues.yml").write_text(
        "schedule:\n  c: {cron: '*/5 * * * *', func: qcfgapp.tasks.cleanup, queue: default}\n"
    )
    before = list(sys.path)
    try:
        config = load_queue_config(tmp_path / "queues.yml")
        assert config.schedule[0].func == "qcfgapp.tasks.cleanup"
        assert sys.path == before, "the app directory is taken off sys.path again"
        (tmp_path / "queues.yml").write_text(
            "schedule:\n  c: {cron: '*/5 * * * *', func: qcfgapp.tasks.nope, queue: default}\n"
        )
        with pytest.raises(QueueConfigError) as caught:
            load_queue_config(tmp_path / "queues.yml")
        assert caught.value.message == (
            f"{tmp_path / 'queues.yml'}: schedule.c.func: cannot import qcfgapp.tasks.nope: "
            "module qcfgapp.tasks has no attribute 'nope'"
        )
    finally:
        for name in ("qcfgapp.tasks", "qcfgapp"):
            sys.modules.pop(name, None)


def test_file_problems(tmp_path: Path) -> None:
    with pytest.raises(QueueConfigError, match=r"missing\.yml: no such file"):
        load_queue_config(tmp_path / "missing.yml")
    with pytest.raises(QueueConfigError, match="is a directory"):
        load_queue_config(tmp_path)
    (tmp_path / "bad.yml").write_bytes(b"retry: 1\nqueues: [\xff]\n")
    with pytest.raises(QueueConfigError, match=r"bad\.yml:2: not valid UTF-8"):
        load_queue_config(tmp_path / "bad.yml")


def test_errors_belong_to_procmans_family() -> None:
    with pytest.raises(ProcmanError):
        parse("queues: 5\n")
