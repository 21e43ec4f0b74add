"""The CI pipeline's plan from procman.yml: jobs in promotion order, the test command."""

from __future__ import annotations

import pytest

from procman.deploy.config import parse_deploy_config
from procman.errors import UsageError
from procman.pipeline.plan import PipelineError, plan_pipeline

CONFIG = """
app: shop
test: python -m pytest -q
environments:
  production: {hosts: [p.example.com], path: /srv/shop, promote_from: staging}
  demo.eu: {hosts: [d.example.com], path: /srv/shop, promote_from: production}
  staging: {hosts: [s.example.com], path: /srv/shop}
  test: {hosts: [t.example.com], path: /srv/shop}
"""


def test_environments_come_after_the_one_they_are_promoted_from() -> None:
    plan = plan_pipeline(parse_deploy_config(CONFIG), procman_requirement="procman==1.0")

    assert [(j.job, j.needs, j.stage, j.command) for j in plan.deploys] == [
        ("deploy-staging", "test", "staging", "procman deploy staging --skip-tests"),
        ("deploy-test", "test", "deploy-test", "procman deploy test --skip-tests"),
        ("deploy-production", "deploy-staging", "production", "procman deploy production"),
        ("deploy-demo_eu", "deploy-production", "demo.eu", "procman deploy demo.eu"),
    ]
    assert [j.gated for j in plan.deploys] == [False, False, True, True]
    assert plan.stages == ("test", "staging", "deploy-test", "production", "demo.eu")
    assert (plan.test, plan.python, plan.branch) == ("python -m pytest -q", "3.12", None)


def test_options_override_procman_yml_and_are_checked() -> None:
    config = parse_deploy_config(CONFIG)
    plan = plan_pipeline(
        config, python="3.11", branch="release/2", test="make test", procman_requirement="p>=1"
    )
    assert (plan.python, plan.branch, plan.test, plan.procman_requirement) == (
        "3.11",
        "release/2",
        "make test",
        "'p>=1'",
    )
    with pytest.raises(UsageError, match="bad Python version"):
        plan_pipeline(config, python="3.x", procman_requirement="p")
    with pytest.raises(UsageError, match="bad branch name"):
        plan_pipeline(config, branch="main; rm", procman_requirement="p")


def test_a_pipeline_needs_a_test_command() -> None:
    config = parse_deploy_config(CONFIG.replace("test: python -m pytest -q\n", ""))
    with pytest.raises(PipelineError, match=r"procman.yml: test: missing") as error:
        plan_pipeline(config, procman_requirement="p")
    assert "test: python -m pytest -q" in str(error.value)
