"""Property tests: whatever procman.yml holds, the answer is a config or procman's own error."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from procman.deploy.config import DeployConfig, parse_deploy_config
from procman.errors import ProcmanError
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
