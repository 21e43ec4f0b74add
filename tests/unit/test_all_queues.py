"""``*`` for the queues: every queue in Redis (``--queues '*'``, ``queues: ['*']``)."""

from __future__ import annotations

import pytest

from procman.commands.worker import parse_queues_option
from procman.errors import ProcmanError
from procman.queues.config import ALL_QUEUES, parse_queue_config


def test_the_option_takes_a_star_alone() -> None:
    assert parse_queues_option("*") == ((ALL_QUEUES, None),)
    assert parse_queues_option(" * ") == ((ALL_QUEUES, None),)


@pytest.mark.parametrize("spec", ["*,default", "default,*", "*:3,low:1"])
def test_the_option_refuses_a_star_with_other_queues(spec: str) -> None:
    with pytest.raises(ProcmanError, match="cannot be combined"):
        parse_queues_option(spec)


def test_the_yaml_takes_a_quoted_star_alone_and_schedules_on_any_queue() -> None:
    config = parse_queue_config(
        "queues: ['*']\nschedule:\n  tidy:\n    cron: '0 * * * *'\n    func: os.getcwd\n"
        "    queue: anything\n",
        "queues.yml",
    )
    assert config.names == [ALL_QUEUES]
    assert config.schedule[0].queue == "anything"


def test_the_yaml_refuses_a_star_with_other_queues() -> None:
    with pytest.raises(ProcmanError, match=r"queues: '\*' \(every queue in Redis\) cannot be"):
        parse_queue_config("queues:\n  - '*'\n  - default\n", "queues.yml")


def test_check_names_a_star_as_every_queue() -> None:
    assert parse_queue_config("queues: ['*']\n", "queues.yml").summary() == "all queues (*)"
