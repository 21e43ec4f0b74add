"""Property tests: whatever the queue YAML holds, the answer is a config or procman's own error."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from procman.errors import ManyErrors, ProcmanError, QueueConfigError
from procman.queues.config import QueueConfig, parse_queue_config

FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = st.sampled_from(
    ["concurrency", "queues", "timeout", "retry", "max_jobs", "max_memory", "schedule",
     "keyspace_notifications",
     ":queues", ":concurrency", "cron", "func", "queue", "args", "kwargs", "timout", "x"]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "512MB",
            "1GB",
            "300kB",
            "0 * * * *",
            "61 * * * *",
            "app.jobs.f",
            "critical",
            "mod.fn",
            "1e999GB",
            "99999999999999999999MB",
        ]
    ),
)
VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(KEYS, st.text(max_size=5), st.integers()), children, max_size=5),
    ),
    max_leaves=25,
)
DOCUMENTS = st.one_of(VALUES, st.dictionaries(KEYS, VALUES, max_size=8))
YAML_SYNTAX = st.sampled_from(
    [":", "-", " ", "  ", "\n", "[", "]", "{", "}", ",", "'", '"', "&a", "*a", "<<", "!!", "?",
     "#", "queues", "concurrency", "1", "\t", "|", ">", "%YAML", "---", "\x00", "\ufeff"]
)  # fmt: skip
TEXT = st.one_of(st.text(), st.lists(st.one_of(YAML_SYNTAX, st.text(max_size=3))).map("".join))


def importer(module: str) -> Any:
    raise ModuleNotFoundError(f"No module named {module!r}", name=module)


def check(text: str) -> None:
    try:
        config = parse_queue_config(text, "queues.yml", importer=importer)
    except ProcmanError as error:
        errors = error.errors if isinstance(error, ManyErrors) else [error]
        assert errors
        for each in errors:
            assert isinstance(each, QueueConfigError)
            assert each.message.startswith("queues.yml")
        return
    assert isinstance(config, QueueConfig)
    assert config.queues
    assert len(set(config.names)) == len(config.names)
    assert config.concurrency >= 1


@FAST
@given(TEXT)
@example("a: &x [*x]")
@example("[" * 5000)
@example("? [a, b]\n: 1")
@example("queues: !!python/object:os.system {}")
def test_any_yaml_text_gives_a_config_or_a_procman_error(text: str) -> None:
    check(text)


@FAST
@given(DOCUMENTS)
def test_any_structure_gives_a_config_or_a_procman_error(document: Any) -> None:
    check(yaml.safe_dump(document, allow_unicode=True))
