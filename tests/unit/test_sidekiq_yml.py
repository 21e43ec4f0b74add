"""A ``config/sidekiq.yml`` read as Sidekiq 6/7 reads it: mixed queue lists and their modes, the
environment's block, ERB, and the keys of Sidekiq's plugins (warned about, never acted on)."""

from __future__ import annotations

import random
import textwrap
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest

from procman.errors import ConfigError, ManyErrors, QueueConfigError
from procman.queues.config import QueueConfig, QueueSpec, parse_queue_config
from procman.queues.weighting import fetch_order, queue_mode


def fake_importer(module: str) -> Any:
    if module == "app.jobs":
        return type("Module", (), {"report": staticmethod(lambda: None)})
    raise ModuleNotFoundError(f"No module named {module!r}", name=module)


def parse(text: str, env: Mapping[str, str] | None = None, cores: int = 64) -> QueueConfig:
    return parse_queue_config(
        textwrap.dedent(text), "sidekiq.yml", importer=fake_importer, env=env or {}, cores=cores
    )


def messages(text: str, env: Mapping[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, env)
    error = caught.value
    return [e.message for e in (error.errors if isinstance(error, ManyErrors) else [error])]


# -- queues and modes ------------------------------------------------------------------------


def test_a_mixed_list_is_weighted_with_one_copy_for_a_queue_without_weight() -> None:
    config = parse(
        """\
        :queues:
          - [default, 5]
          - sms
          - [pull]
        """
    )
    assert config.queues == (
        QueueSpec("default", 5),
        QueueSpec("sms", None),
        QueueSpec("pull", None),
    )
    assert config.mode == "weighted"
    rng = random.Random(7)
    firsts = Counter(
        fetch_order([(q.name, q.weight) for q in config.queues], rng)[0] for _ in range(7000)
    )
    # default is drawn first 5 times in 7 (5 copies of 7), sms and pull 1 in 7 each
    assert 4700 < firsts["default"] < 5300
    assert 800 < firsts["sms"] < 1200
    assert 800 < firsts["pull"] < 1200


@pytest.mark.parametrize(
    ("weights", "mode"),
    [
        ([None, None], "strict"),
        ([0, None, 0], "strict"),
        ([1, 1], "random"),
        ([3, 3, 3], "random"),
        ([5, None], "weighted"),
        ([2, 1], "weighted"),
        ([1, 0], "weighted"),
    ],
)
def test_sidekiq_7_modes(weights: list[int | None], mode: str) -> None:
    assert queue_mode(weights) == mode


def test_strict_order_is_the_order_written_and_random_is_uniform() -> None:
    rng = random.Random(3)
    assert fetch_order([("a", 0), ("b", None), ("c", 0)], rng) == ["a", "b", "c"]
    firsts = Counter(fetch_order([("a", 1), ("b", 1), ("c", 1)], rng)[0] for _ in range(3000))
    assert all(850 < firsts[name] < 1150 for name in "abc"), firsts


def test_weight_zero_and_a_weight_as_text_are_read_as_sidekiq_reads_them() -> None:
    config = parse("queues:\n  - [a, 0]\n  - [b, '3']\n")
    assert config.queues == (QueueSpec("a", 0), QueueSpec("b", 3))
    assert config.mode == "weighted"


def test_a_queue_listed_twice_is_an_error_as_in_sidekiq_6() -> None:
    assert messages("queues:\n  - [default, 5]\n  - sms\n  - [default]\n") == [
        "sidekiq.yml: queues[2]: queue 'default' is listed twice (first at queues[0])"
    ]


# -- environments ----------------------------------------------------------------------------

ENVIRONMENTS = """\
:concurrency: 3
:queues: [default]
development:
  :concurrency: 1
staging:
  :concurrency: 4
  :queues: [staging_only]
production:
  :concurrency: 8
qa:
  :concurrency: 6
"""


@pytest.mark.parametrize(
    ("env", "name", "source", "concurrency"),
    [
        ({}, "development", "the default", 1),
        ({"RAILS_ENV": "production"}, "production", "RAILS_ENV", 8),
        ({"RACK_ENV": "staging"}, "staging", "RACK_ENV", 4),
        ({"APP_ENV": "production", "RAILS_ENV": "staging"}, "production", "APP_ENV", 8),
        ({"PROCMAN_ENV": "qa", "RAILS_ENV": "production"}, "qa", "PROCMAN_ENV", 6),
        ({"RAILS_ENV": "test"}, "test", "RAILS_ENV", 3),
    ],
)
def test_the_environments_block_is_merged_over_the_top_level(
    env: dict[str, str], name: str, source: str, concurrency: int
) -> None:
    config = parse(ENVIRONMENTS, env)
    assert (config.environment, config.environment_source) == (name, source)
    assert config.concurrency == concurrency
    assert config.names == (["staging_only"] if name == "staging" else ["default"])
    assert config.as_json()["environment"] == {"name": name, "from": source}


def test_the_merge_is_shallow_and_spelling_blind() -> None:
    config = parse(
        """\
        queues: [a, b]
        timeout: 30
        production:
          :queues: [c]
        """,
        {"RAILS_ENV": "production"},
    )
    assert config.names == ["c"]
    assert config.timeout == 30


def test_an_environment_block_is_still_validated_when_it_is_the_one_used() -> None:
    assert messages("production:\n  concurrency: 0\n", {"RAILS_ENV": "production"}) == [
        "sidekiq.yml: concurrency: must be from 1 to 256 (got 0)"
    ]


def test_an_unknown_top_level_key_is_still_an_error() -> None:
    assert messages("queues: [a]\ncolour: blue\n") == ["sidekiq.yml: unknown key 'colour'"]


# -- keys procman does not act on ------------------------------------------------------------


def test_plugin_and_dropped_keys_give_one_warning_each_and_no_error() -> None:
    config = parse(
        """\
        :concurrency: 2
        :queues: [default, mailers]
        :limits: {mailers: 1}
        :dynamic: true
        :labels: [blue]
        :require: ./app.rb
        :max_retries: 3
        :verbose: true
        :daemon: true
        :logfile: log/sidekiq.log
        :pidfile: tmp/pids/sidekiq.pid
        """
    )
    keys = [warning.split(": ")[1] for warning in config.warnings]
    assert keys == [
        "limits", "dynamic", "labels", "require", "max_retries", "verbose", "daemon", "logfile",
        "pidfile",
    ]  # fmt: skip
    assert config.retry == 0  # max_retries is not acted on
    assert all(w.startswith("sidekiq.yml: ") and "\n" not in w for w in config.warnings)
    assert "procman supervises the worker" in config.warnings[-1]
    assert config.as_json()["warnings"] == list(config.warnings)


def test_sidekiqs_timeout_spelling_warns_that_procman_reads_a_job_limit() -> None:
    assert parse(":timeout: 25\n").warnings == (
        "sidekiq.yml: timeout: Sidekiq's ':timeout:' is its shutdown wait; procman reads it as "
        "each job's time limit (a job running longer is stopped and failed)",
    )
    assert parse("timeout: 25\n").warnings == ()


@pytest.mark.parametrize(("cores", "warned"), [(2, True), (8, False)])
def test_a_sidekiq_thread_count_above_the_cores_is_warned_about(cores: int, warned: bool) -> None:
    config = parse(":concurrency: 5\n", cores=cores)
    assert config.concurrency == 5
    assert any("is Sidekiq's number of threads" in w for w in config.warnings) is warned


def test_procmans_own_file_gets_no_thread_warning() -> None:
    assert parse("concurrency: 5\n", cores=2).warnings == ()


# -- sidekiq-scheduler -----------------------------------------------------------------------


def test_sidekiq_scheduler_entries_are_scheduled_when_procman_can_run_them() -> None:
    config = parse(
        """\
        :queues: [default, low]
        :scheduler:
          :enabled: true
          :schedule:
            report:
              cron: '0 3 * * *'
              class: app.jobs.report
              queue: low
              args: [1]
            ruby:
              cron: '0 * * * *'
              class: HardWorker
            every:
              every: 1h
              class: app.jobs.report
            missing:
              cron: '0 * * * *'
              class: app.nosuch.f
            other_queue:
              cron: '0 * * * *'
              class: app.jobs.report
              queue: mail
            paused:
              cron: '0 * * * *'
              class: app.jobs.report
              enabled: false
        """
    )
    assert [(j.name, j.func, j.queue, j.args) for j in config.schedule] == [
        ("report", "app.jobs.report", "low", (1,))
    ]
    assert config.warnings == (
        "sidekiq.yml: scheduler: sidekiq-scheduler's settings (enabled) are ignored: procman's "
        "worker pool enqueues the schedule's due jobs itself",
        "sidekiq.yml: scheduler.schedule.ruby: sidekiq-scheduler entry not scheduled: class "
        "'HardWorker' is not a Python function's dotted path; write cron: (five fields) and "
        "func: module.function for procman to run it",
        "sidekiq.yml: scheduler.schedule.every: sidekiq-scheduler entry not scheduled: procman "
        "schedules by cron only ('every:'); write cron: (five fields) and func: "
        "module.function for procman to run it",
        "sidekiq.yml: scheduler.schedule.missing: sidekiq-scheduler entry not scheduled: cannot "
        "import app.nosuch.f: no module named 'app.nosuch'; write cron: (five fields) and "
        "func: module.function for procman to run it",
        "sidekiq.yml: scheduler.schedule.other_queue: sidekiq-scheduler entry not scheduled: its "
        "queue the string 'mail' is not in queues, so no worker would run it",
        "sidekiq.yml: scheduler.schedule.paused: sidekiq-scheduler entry not scheduled: disabled "
        "(enabled: false)",
    )


def test_a_schedule_key_holds_both_kinds_told_apart_by_class() -> None:
    config = parse(
        """\
        schedule:
          mine: {cron: '0 * * * *', func: app.jobs.report, queue: default}
          theirs: {cron: '0 * * * *', class: RubyJob}
        """
    )
    assert [job.name for job in config.schedule] == ["mine"]
    assert len(config.warnings) == 1 and "schedule.theirs" in config.warnings[0]


def test_procmans_own_schedule_entries_stay_strict() -> None:
    assert messages("schedule:\n  mine: {cron: '0 * * * *', func: nosuch.f, queue: default}\n") == [
        "sidekiq.yml: schedule.mine.func: cannot import nosuch.f: no module named 'nosuch'"
    ]


# -- ERB -------------------------------------------------------------------------------------


def test_erb_reads_the_environment_given() -> None:
    text = """\
    :concurrency: <%= ENV.fetch("SIDEKIQ_CONCURRENCY") { 5 }.to_i %>
    :timeout: <%= ENV["JOB_TIMEOUT"] || 60 %>
    :queues:
      - [<%= ENV.fetch("QUEUE", "default") %>, 2]
      - low
    """
    config = parse(text, {"SIDEKIQ_CONCURRENCY": "3", "QUEUE": "urgent"})
    assert (config.concurrency, config.timeout, config.names) == (3, 60, ["urgent", "low"])
    assert parse(text).concurrency == 5


def test_an_erb_value_left_empty_takes_the_default_as_in_sidekiq() -> None:
    assert parse(':concurrency: <%= ENV["UNSET"] %>\n').concurrency == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "queues: [a]\n:concurrency: <%= Rails.env.production? ? 10 : 2 %>\n",
            "sidekiq.yml:2: cannot evaluate <%= Rails.env.production? ? 10 : 2 %>: 'Rails' is "
            "outside the subset",
        ),
        (
            "<% if ENV['X'] %>\n:concurrency: 3\n<% end %>\n",
            "sidekiq.yml:1: cannot evaluate <% if ENV['X'] %>: only output tags <%= ... %> are "
            "read",
        ),
        (
            ":concurrency: <%= ENV.fetch('WORKERS') %>\n",
            "sidekiq.yml:1: <%= ENV.fetch('WORKERS') %>: WORKERS is not set",
        ),
        (
            ":concurrency: <%= ENV['X'].to_i * 2 %>\n",
            "sidekiq.yml:1: cannot evaluate <%= ENV['X'].to_i * 2 %>: unexpected '* 2'",
        ),
    ],
)
def test_erb_outside_the_subset_is_refused_naming_line_and_expression(
    text: str, expected: str
) -> None:
    with pytest.raises(QueueConfigError) as caught:
        parse(text)
    assert caught.value.message == expected
    assert caught.value.hint is not None


def test_the_raw_tag_is_never_read_as_a_value() -> None:
    with pytest.raises(QueueConfigError) as caught:
        parse("queues:\n  - <%= queue_name %>\n")
    assert "<%= queue_name %>" in caught.value.message
    assert caught.value.message.startswith("sidekiq.yml:2: cannot evaluate")
