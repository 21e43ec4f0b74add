"""Property tests: whatever procman.yml holds, the answer is a config or procman's own error."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from procman.deploy import steps
from procman.deploy.config import DeployConfig, parse_deploy_config
from procman.errors import ConfigError, ProcmanError
from procman.procfile import parse_procfile

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROCFILE = parse_procfile("web: a\nworker: b\n")

KEYS = st.sampled_from(
    ["app", "test", "build", "release", "keep_releases", "environments", "staging", "production",
     "hosts", "path", "formation", "env", "healthcheck", "promote_from", "rolling",
     "identity_file", "user", "host", "roles", "port", "timeout", "web", "worker", "x"]
)  # fmt: skip
HOSTISH = ["staging", "production", "/srv/app", "/health", "web", "worker", "deploy@h:22",
           "h:99999", "[::1]", "u@", "@h", "h:", "a b", "snippets"]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 70000),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "staging",
            "production",
            "/srv/app",
            "/health",
            "web",
            "worker",
            "deploy@h:22",
            "h:99999",
            "[::1]",
            "u@",
            "@h",
            "h:",
            "a b",
            "snippets",
        ]
    ),
)
VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(KEYS, st.text(max_size=5), st.integers()), children, max_size=5),
    ),
    max_leaves=30,
)
DOCUMENTS = st.one_of(VALUES, st.dictionaries(KEYS, VALUES, max_size=8))
TEXT = st.one_of(
    st.text(),
    st.lists(
        st.sampled_from([":", "-", " ", "\n", "  ", "[", "{", "}", "]", "app", "&a", "*a"])
    ).map("".join),
)


def outcome(text: str) -> None:
    try:
        config = parse_deploy_config(text, "procman.yml", PROCFILE)
    except ProcmanError as error:
        assert str(error)
        return
    assert isinstance(config, DeployConfig)
    assert config.environments
    assert config.keep_releases >= 2


@FAST
@given(DOCUMENTS)
def test_any_structure_is_a_config_or_a_procman_error(document: Any) -> None:
    outcome(yaml.safe_dump(document))


@FAST
@given(TEXT)
def test_any_text_is_a_config_or_a_procman_error(text: str) -> None:
    outcome(text)


PATH_TEXT = st.one_of(
    st.text(max_size=20),
    st.lists(st.sampled_from(["/", "srv", "..", ".", "a b", "", "\n", "\0", " ", "x"])).map(
        "".join
    ),
)


def loads_with(environment_path: str, shared: str) -> bool:
    """Whether procman.yml with this deploy path and shared entry is accepted (loaded via the
    data structure, so no YAML quoting gets in the way)."""
    document = {
        "app": "demo",
        "shared": [shared],
        "environments": {"staging": {"hosts": ["s1"], "path": environment_path}},
    }
    try:
        parse_deploy_config(yaml.safe_dump(document), "procman.yml", PROCFILE)
    except ProcmanError:
        return False
    return True


@FAST
@given(PATH_TEXT)
def test_the_loader_and_the_steps_agree_on_deploy_paths(root: str) -> None:
    try:
        steps.deploy_root(root)
    except ConfigError:
        accepted_by_steps = False
    else:
        accepted_by_steps = True
    assert loads_with(root, ".env") == accepted_by_steps


@FAST
@given(PATH_TEXT)
def test_the_loader_and_the_steps_agree_on_shared_paths(entry: str) -> None:
    try:
        steps.shared_file(entry)
    except ConfigError:
        accepted_by_steps = False
    else:
        accepted_by_steps = True
    assert loads_with("/srv/demo", entry) == accepted_by_steps
