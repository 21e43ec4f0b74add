"""procman.yml: the validator's exact messages, the example file and its copy in the docs."""

from __future__ import annotations

from pathlib import Path

import pytest

from procman.deploy.config import DeployConfig, DeployConfigError, Host, parse_deploy_config
from procman.errors import ManyErrors, ProcmanError
from procman.procfile import Procfile, load_procfile, parse_procfile

ROOT = Path(__file__).resolve().parents[2]
PROCFILE = parse_procfile("web: gunicorn app\nclock: python clock.py\nworker: procman worker\n")
BASE = """\
app: snippets
environments:
  staging:
    hosts: [deploy@staging.example.com]
    path: /srv/snippets
"""


def messages(text: str, procfile: Procfile | None = PROCFILE) -> list[str]:
    with pytest.raises(ProcmanError) as caught:
        parse_deploy_config(text, "procman.yml", procfile)
    error = caught.value
    return [str(e) for e in error.errors] if isinstance(error, ManyErrors) else [str(error)]


def test_the_example_file_loads_through_the_validator() -> None:
    procfile = load_procfile(ROOT / "examples" / "Procfile")
    path = ROOT / "examples" / "procman.yml"
    config = parse_deploy_config(path.read_text(), "procman.yml", procfile)
    assert config.app == "snippets"
    assert config.summary() == "staging (1 host), production (2 hosts, promoted from staging)"
    production = config.environments["production"]
    assert production.hosts == (
        Host("web1.example.com", "deploy", 22, ("web",)),
        Host("jobs1.example.com", "deploy", 22, ("clock", "worker")),
    )
    assert production.rolling is True
    assert config.environments["staging"].healthcheck.path == "/health"


def test_the_docs_quote_the_example_file_verbatim() -> None:
    example = (ROOT / "examples" / "procman.yml").read_text()
    docs = (ROOT / "docs" / "deploy.md").read_text()
    assert f"```yaml\n{example}```" in docs


def test_the_example_file_documents_every_key() -> None:
    from procman.deploy.config import ENVIRONMENT_KEYS, HEALTHCHECK_KEYS, HOST_KEYS, TOP_KEYS

    example = (ROOT / "examples" / "procman.yml").read_text()
    for key in {*TOP_KEYS, *ENVIRONMENT_KEYS, *HEALTHCHECK_KEYS, *HOST_KEYS}:
        assert f"{key}:" in example, key


def test_a_minimal_file_gets_the_defaults() -> None:
    config = parse_deploy_config(BASE, "procman.yml", PROCFILE)
    assert isinstance(config, DeployConfig)
    assert config.keep_releases == 5
    staging = config.environments["staging"]
    assert staging.hosts == (Host("staging.example.com", "deploy", 22, ()),)
    assert staging.formation is None
    assert staging.healthcheck.path == "/"
    assert staging.promote_from is None


def test_a_host_string_that_does_not_parse() -> None:
    text = BASE.replace("[deploy@staging.example.com]", "[web1.example.com, 'x y']")
    assert messages(text) == [
        "procman.yml: environments.staging.hosts[1]: cannot read host 'x y' "
        "(write [user@]host[:port], like deploy@web1.example.com or web1.example.com:2222)"
    ]


def test_host_strings_with_user_port_and_ipv6() -> None:
    text = BASE.replace(
        "[deploy@staging.example.com]", "['ops@10.0.0.1:2222', '[::1]:22', 'web1']"
    ).replace("path:", "user: deploy\n    path:")
    hosts = parse_deploy_config(text, "procman.yml", PROCFILE).environments["staging"].hosts
    assert [host.label() for host in hosts] == ["ops@10.0.0.1:2222", "deploy@[::1]", "deploy@web1"]


def test_unknown_keys_suggest_the_known_one() -> None:
    text = BASE.replace("    path:", "    servers: [x]\n    pth: /srv\n    path:") + "keep: 3\n"
    assert messages(text) == [
        "procman.yml: unknown key 'keep' (did you mean 'keep_releases'?)",
        "procman.yml: environments.staging: unknown key 'servers' (did you mean 'hosts'?)",
        "procman.yml: environments.staging: unknown key 'pth' (did you mean 'path'?)",
    ]


def test_roles_and_formation_must_name_procfile_types() -> None:
    text = BASE.replace(
        "hosts: [deploy@staging.example.com]",
        "hosts:\n      - {host: web1, roles: [web, wrker]}\n"
        "    formation: {web: 1, scheduler: 1, clock: -1}",
    )
    assert messages(text) == [
        "procman.yml: environments.staging.hosts[0].roles[1]: 'wrker' is not a process type in "
        "the Procfile (web, clock, worker) "
        "(name a type the Procfile defines, or add it to the Procfile)",
        "procman.yml: environments.staging.formation.scheduler: 'scheduler' is not a process "
        "type in the Procfile (web, clock, worker) "
        "(name a type the Procfile defines, or add it to the Procfile)",
        "procman.yml: environments.staging.formation.clock: must be a count of 0 or more "
        "(got -1) (0 runs no instance of the type)",
    ]


def test_without_a_procfile_roles_are_not_checked() -> None:
    text = BASE.replace("[deploy@staging.example.com]", "[{host: web1, roles: [anything]}]")
    config = parse_deploy_config(text, "procman.yml", None)
    assert config.environments["staging"].hosts[0].roles == ("anything",)


def test_a_formation_type_no_host_runs() -> None:
    text = BASE.replace(
        "hosts: [deploy@staging.example.com]",
        "hosts: [{host: web1, roles: [web]}]\n    formation: {web: 1, worker: 2, clock: 0}",
    )
    assert messages(text) == [
        "procman.yml: environments.staging.formation.worker: 2 instances but no host has the "
        "role 'worker' (add 'worker' to a host's roles, or set worker: 0)"
    ]


def test_promote_from_must_exist() -> None:
    text = BASE + "  production:\n    promote_from: stagin\n    hosts: [web1]\n    path: /srv/s\n"
    assert messages(text) == [
        "procman.yml: environments.production.promote_from: no environment named 'stagin' "
        "(environments: staging)"
    ]


def test_a_promotion_cycle_is_named() -> None:
    text = (
        BASE.replace("    path:", "    promote_from: production\n    path:")
        + "  production:\n    promote_from: qa\n    hosts: [web1]\n    path: /srv/s\n"
        + "  qa:\n    promote_from: staging\n    hosts: [qa1]\n    path: /srv/s\n"
    )
    assert messages(text) == [
        "procman.yml: environments.staging.promote_from: promotion cycle: "
        "staging -> production -> qa -> staging "
        "(the first environment of a pipeline has no promote_from)"
    ]


def test_keep_releases_healthcheck_and_env_values() -> None:
    text = (
        BASE
        + "    healthcheck: {path: health, timeout: 0}\n"
        + "    env: {WORKERS: 3, NAME: ok}\n"
        + "keep_releases: 1\n"
    )
    assert messages(text) == [
        "procman.yml: keep_releases: must be at least 2 (got 1) "
        "(the current release and the previous one (rollback's target) are always kept)",
        "procman.yml: environments.staging.env.WORKERS: must be a string (got 3) "
        "(quote it, like WORKERS: '...'; env is for non-secret values; "
        "keep secrets out of procman.yml)",
        "procman.yml: environments.staging.healthcheck.path: must start with '/' "
        "(got the string 'health') (like /health)",
        "procman.yml: environments.staging.healthcheck.timeout: must be a positive number of "
        "seconds (got 0)",
    ]


def test_missing_required_keys_and_an_empty_file() -> None:
    assert messages("app: x\nenvironments:\n  staging: {}\n") == [
        "procman.yml: environments.staging.hosts: missing (list the hosts to deploy to; "
        "write [user@]host[:port], like deploy@web1.example.com or web1.example.com:2222)",
        "procman.yml: environments.staging.path: missing "
        "(the absolute directory on each host, like /srv/snippets)",
    ]
    with pytest.raises(DeployConfigError, match=r"procman\.yml: is empty"):
        parse_deploy_config("", "procman.yml")


def test_yaml_errors_name_the_line() -> None:
    assert messages("app: x\napp: y\n") == [
        "procman.yml:2:1: invalid YAML: duplicate key 'app' (first on line 1) (keep one of them)"
    ]


def test_the_same_host_twice() -> None:
    text = BASE.replace("[deploy@staging.example.com]", "[web1, 'ops@web1:22']")
    assert messages(text) == [
        "procman.yml: environments.staging.hosts[1]: host ops@web1 is listed twice "
        "(first at environments.staging.hosts[0]) "
        "(list each host once; give it several roles instead)"
    ]


def test_the_config_is_frozen() -> None:
    config = parse_deploy_config(BASE, "procman.yml", PROCFILE)
    with pytest.raises(AttributeError):
        config.app = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.environments["x"] = config.environments["staging"]  # type: ignore[index]


def test_a_deploy_path_going_up_is_refused_at_load_with_its_key_path() -> None:
    # It used to load, and be refused only by the step builder, after connecting, with no key.
    assert messages(BASE.replace("path: /srv/snippets", "path: /srv/../x")) == [
        "procman.yml: environments.staging.path: must not go up with '..' "
        "(got the string '/srv/../x') (the absolute directory on each host, like /srv/snippets)"
    ]
    assert messages(BASE.replace("path: /srv/snippets", 'path: "/srv/a\\nb"')) == [
        "procman.yml: environments.staging.path: must not contain a NUL or newline character "
        "(got the string '/srv/a') (the absolute directory on each host, like /srv/snippets)"
    ]
