"""The pure parts of the day-two commands on environments: the log reader's argv, reading a host's
log line, choosing the host of a one-off, and what ``hosts trust`` would record."""

from __future__ import annotations

from pathlib import Path

import pytest

from procman.deploy import steps
from procman.deploy.config import Environment, Host, parse_deploy_config
from procman.deploy.observe import LogLine, parse_log_line
from procman.deploy.oneoff import choose_host
from procman.deploy.trust import KeyState, plan_trust, record
from procman.errors import UsageError


def test_follow_logs_reads_the_current_release_log_of_the_types_named() -> None:
    argv = steps.follow_logs("/srv/app/", 20, True, ["web", "worker.2"])
    assert argv[:2] == ["python3", "-c"]
    assert argv[2] == steps.FOLLOW_SCRIPT
    assert argv[3:] == [".procman/procman.log", "/srv/app", "20", "1", "0.2", "web", "worker.2"]
    assert steps.follow_logs("/srv/app", 0, False, [])[3:] == [
        ".procman/procman.log", "/srv/app", "0", "0", "0.2",
    ]  # fmt: skip


def test_a_host_log_line_is_read_back_into_time_instance_type_and_text() -> None:
    line = parse_log_line("h1", "12:00:01 worker.10 | job done\n")
    assert line == LogLine("h1", "12:00:01", "worker.10", "worker", "job done\n")
    assert parse_log_line("h1", "12:00:01 system    | web.1 started\n").type == "system"
    loose = parse_log_line("h1", "procman: error: Procfile: no such file\n")
    assert (loose.name, loose.text) == ("system", "procman: error: Procfile: no such file\n")


ENVIRONMENT = Environment(
    "production",
    (Host("web1", roles=("web",)), Host("jobs1", "deploy", 2222, ("worker", "clock"))),
    "/srv/app",
)


def test_a_one_off_runs_on_the_named_host_or_one_with_the_role_or_the_first() -> None:
    assert choose_host(ENVIRONMENT, ["python", "-V"], None).host == "web1"
    assert choose_host(ENVIRONMENT, ["worker"], None).host == "jobs1"
    assert choose_host(ENVIRONMENT, ["ls"], "jobs1").host == "jobs1"
    assert choose_host(ENVIRONMENT, ["ls"], "deploy@jobs1:2222").host == "jobs1"
    with pytest.raises(UsageError, match=r"production has no host 'db1' \(hosts: web1, "):
        choose_host(ENVIRONMENT, ["ls"], "db1")


class Key:
    def __init__(self, name: str, base64: str) -> None:
        self.name = name
        self.key_type = "ssh-ed25519"
        self.base64 = base64
        self.fingerprint = f"SHA256:{base64}"


def test_trust_records_only_new_keys_and_never_replaces_a_changed_one(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    config = parse_deploy_config(
        "app: a\nknown_hosts: known_hosts\nenvironments:\n  prod:\n    path: /srv/a\n"
        "    hosts: [h1, h2, h3]\n",
        str(tmp_path / "procman.yml"),
    )
    recorded = {"h2": {"ssh-ed25519": "SAME"}, "h3": {"ssh-ed25519": "OLD"}}
    offered = {"h1": "NEW", "h2": "SAME", "h3": "OTHER"}
    plan = plan_trust(
        config,
        config.environments["prod"],
        lambda host, label: Key(host.host, offered[host.host]),
        lambda path, name: recorded.get(name, {}),
    )
    assert [(k.host, k.state) for k in plan.keys] == [
        ("h1", KeyState.NEW),
        ("h2", KeyState.KNOWN),
        ("h3", KeyState.CHANGED),
    ]
    record(plan.known_hosts, plan.keys)
    assert known.read_text() == "h1 ssh-ed25519 NEW\n"
