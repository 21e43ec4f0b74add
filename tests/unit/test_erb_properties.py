"""Property tests: the ERB subset of a sidekiq.yml, and the whole loader with it.

Whatever the text, the answer is a string (ERB) or a config (loader), or procman's own one-line
error naming the file; an expression of the subset gives what Ruby would print."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from procman.errors import ManyErrors, ProcmanError, QueueConfigError
from procman.queues.config import QueueConfig, parse_queue_config
from procman.queues.erb import render

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NAMES = st.sampled_from(["A", "B", "SIDEKIQ_CONCURRENCY"])
ENVS = st.dictionaries(NAMES, st.text("0123456789ab ", max_size=4), max_size=3)
ERB_SYNTAX = st.sampled_from(
    ["<%=", "<%", "%>", "-%>", "<%#", "<%%", "ENV", "[", "]", '"A"', "'B'", ".fetch", "(", ")",
     "{", "}", ",", "||", ".to_i", ".to_s", "5", "-1", "nil", " ", "\n", "#{", "\\", "Rails"]
)  # fmt: skip
ERB_TEXT = st.one_of(st.text(), st.lists(st.one_of(ERB_SYNTAX, st.text(max_size=3))).map("".join))

Model = Callable[[dict[str, str]], Any]
UNSET = object()


def literal() -> st.SearchStrategy[tuple[str, Model]]:
    integers = st.integers(-1000, 10**6).map(lambda n: (str(n), lambda env, n=n: n))
    strings = st.text("abc_ 0-9", max_size=5).map(lambda t: (f'"{t}"', lambda env, t=t: t))
    nil = st.just(("nil", lambda env: None))
    return st.one_of(integers, strings, nil)


def lookup(inner: st.SearchStrategy[tuple[str, Model]]) -> st.SearchStrategy[tuple[str, Model]]:
    def index(name: str) -> tuple[str, Model]:
        return f'ENV["{name}"]', lambda env: env.get(name)

    def fetch_with(name: str, default: tuple[str, Model], block: bool) -> tuple[str, Model]:
        text, model = default
        source = f'ENV.fetch("{name}") {{ {text} }}' if block else f'ENV.fetch("{name}", {text})'

        def modelled(env: dict[str, str]) -> Any:
            if block:  # the block runs only when the variable is unset
                return env[name] if name in env else model(env)
            fallback = model(env)  # an argument: Ruby evaluates it before the call
            if fallback is UNSET:
                return UNSET
            return env.get(name, fallback)

        return source, modelled

    def fetch(name: str) -> tuple[str, Model]:
        return f'ENV.fetch("{name}")', lambda env: env.get(name, UNSET)

    return st.one_of(
        NAMES.map(index), st.builds(fetch_with, NAMES, inner, st.booleans()), NAMES.map(fetch)
    )


def ruby_or(left: tuple[str, Model], right: tuple[str, Model]) -> tuple[str, Model]:
    def model(env: dict[str, str]) -> Any:
        a, b = left[1](env), right[1](env)
        if a is UNSET or b is UNSET:
            return UNSET
        return a if a is not None and a is not False else b

    return f"{left[0]} || {right[0]}", model


def to_i(inner: tuple[str, Model]) -> tuple[str, Model]:
    def model(env: dict[str, str]) -> Any:
        value = inner[1](env)
        if value is UNSET or isinstance(value, int):
            return value
        # Ruby's String#to_i: leading blanks, a sign, digits with single underscores between
        # them ("0_9".to_i is 9); 0 when no digit comes first.
        found = re.match(r"\s*([-+]?)([0-9]+(?:_[0-9]+)*)", value or "")
        return int(found[1] + found[2].replace("_", "")) if found else 0

    return f"({inner[0]}).to_i", model


EXPRESSIONS: st.SearchStrategy[tuple[str, Model]] = st.recursive(
    literal(),
    lambda inner: st.one_of(lookup(inner), st.builds(ruby_or, inner, inner), inner.map(to_i)),
    max_leaves=6,
)


def printed(value: Any) -> str:
    return "" if value is None else str(value)


@FAST
@given(ERB_TEXT, ENVS)
@example("<%= ENV.fetch('A') { <%= %> } %>", {})
@example("<%%= x %>", {})
@example("a <%= 1 -%>\n", {})
def test_any_text_renders_or_is_refused_with_its_line(text: str, env: dict[str, str]) -> None:
    try:
        out = render(text, env, "sidekiq.yml")
    except QueueConfigError as error:
        assert error.message.startswith("sidekiq.yml:")
        line = error.message.split(":")[1]
        assert line.isdigit() and 1 <= int(line) <= text.count("\n") + 1
        assert "\n" not in error.message
        return
    assert isinstance(out, str)
    if "<%" not in text:
        assert out == text


@FAST
@given(EXPRESSIONS, ENVS, st.text("abc: \n", max_size=5))
@example(('(ENV.fetch("A", ENV.fetch("B"))).to_i', lambda env: UNSET), {"A": ""}, "")
@example(('("0_9" || nil).to_i', lambda env: 9), {}, "")
def test_an_expression_of_the_subset_prints_what_ruby_prints(
    expression: tuple[str, Model], env: dict[str, str], around: str
) -> None:
    source, model = expression
    expected = model(env)
    text = f"{around}<%= {source} %>{around}"
    if expected is UNSET:
        try:
            render(text, env, "sidekiq.yml")
        except QueueConfigError as error:
            assert "is not set" in error.message
            return
        raise AssertionError(f"{source}: ENV.fetch of an unset variable was not refused")
    assert render(text, env, "sidekiq.yml") == f"{around}{printed(expected)}{around}"


SIDEKIQ_LINES = st.sampled_from(
    [":concurrency: <%= ENV.fetch('A', 5) %>", ":queues:", "  - [default, 5]", "  - sms",
     "  - [pull]", "  - [x, 0]", ":limits:", "  sms: 1", ":daemon: true", ":logfile: x.log",
     "production:", "  :concurrency: 3", "development:", "  :queues: [a, b]", ":schedule:",
     "  job:", "    class: HardWorker", "    cron: '0 * * * *'", "    every: 1h",
     ":scheduler:", "  :schedule:", "    func: app.jobs.f", "    queue: default", ":verbose: 1",
     "  :timeout: <%= ENV['B'] || 10 %>", "<% x %>", "qa:", "  :max_retries: 2", ":labels: [a]"]
)  # fmt: skip
SIDEKIQ_TEXT = st.one_of(
    st.lists(SIDEKIQ_LINES, max_size=14).map("\n".join),
    st.lists(st.one_of(SIDEKIQ_LINES, ERB_SYNTAX, st.text(max_size=3)), max_size=20).map("".join),
)
ENVIRONMENT = st.fixed_dictionaries(
    {}, optional={"RAILS_ENV": st.sampled_from(["production", "qa", "development"]), "A": NAMES}
)


def importer(module: str) -> Any:
    raise ModuleNotFoundError(f"No module named {module!r}", name=module)


@FAST
@given(SIDEKIQ_TEXT, ENVIRONMENT)
@example(":queues:\n  - [default, 5]\n  - sms\n  - [pull]\n:limits:\n  sms: 1\n", {})
def test_the_loader_gives_a_config_or_its_own_errors(text: str, env: dict[str, str]) -> None:
    try:
        config = parse_queue_config(text, "sidekiq.yml", importer=importer, env=env, cores=2)
    except ProcmanError as error:
        errors = error.errors if isinstance(error, ManyErrors) else [error]
        assert errors
        for each in errors:
            assert isinstance(each, QueueConfigError)
            assert each.message.startswith("sidekiq.yml")
        return
    assert isinstance(config, QueueConfig)
    assert config.queues and len(set(config.names)) == len(config.names)
    assert config.mode in ("strict", "random", "weighted")
    assert all(w.startswith("sidekiq.yml: ") and "\n" not in w for w in config.warnings)
    if "<%%" not in text:  # '<%%' is ERB's literal '<%'
        assert "<%" not in repr(config.as_json())
