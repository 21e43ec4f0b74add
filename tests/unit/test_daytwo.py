"""Day-two changes at the transport seam: config set/unset all or none (the second phase failing
on one host puts the others back), the formation kept and spread; and the pure parts (config
changes, masking, REDIS_PROVIDER, the env file written) with property tests. The same paths over
real sshd hosts are in tests/integration/test_day_two.py."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from procman.deploy.config import Environment, Host
from procman.deploy.configvars import (
    Changes,
    ConfigVarError,
    applied,
    check_redis_provider,
    listing,
    masked,
    parse_assignments,
    parse_shared_env,
    shared_env_text,
)
from procman.deploy.daytwo import change_config, scale
from procman.deploy.hostgroup import HostGroupError
from procman.deploy.pipeline import host_formation, spread
from procman.deploy.transport.base import ConnectionLost, Result
from procman.errors import FormationError, UsageError
from tests.unit.test_deploy_orchestration import Cluster

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def cluster(tmp_path: Path) -> Cluster:
    if shutil.which("git") is None or shutil.which("flock") is None:
        pytest.skip("git and flock are needed")
    return Cluster(tmp_path, rolling=False)


def env_of(cluster: Cluster, name: str) -> bytes:
    return (cluster.hosts[name].directory / "shared" / ".env").read_bytes()


def test_config_set_writes_every_host_with_mode_0600_and_records_names(cluster: Cluster) -> None:
    done = change_config(cluster.pipeline, "staging", Changes({"A": "1", "B": "it's"}),
                         restart=False)  # fmt: skip
    assert done.hosts == ("web1", "web2") and not done.restarted
    for name, host in cluster.hosts.items():
        path = host.directory / "shared" / ".env"
        assert parse_shared_env(path.read_text(), name) == {"A": "1", "B": "it's"}
        assert path.stat().st_mode & 0o777 == 0o600
        assert sorted(p.name for p in path.parent.iterdir()) == [".env"]
        [record] = host.history()
        assert (record["action"], record["flags"], record["release_id"]) == (
            "config", ["set:A,B"], ""
        )  # fmt: skip
    change_config(cluster.pipeline, "staging", Changes({}, ("A",)), restart=False)
    assert parse_shared_env(env_of(cluster, "web2").decode(), "web2") == {"B": "it's"}


def test_a_host_failing_the_rename_has_the_changed_hosts_put_back(cluster: Cluster) -> None:
    before = {name: env_of(cluster, name) for name in cluster.hosts}

    def refuse(step: str) -> None:
        if step == "mv":  # the rename into place, the second phase
            raise ConnectionLost("web2", "mv", "the connection dropped")

    cluster.hosts["web2"].on_step = refuse
    with pytest.raises(HostGroupError) as caught:
        change_config(cluster.pipeline, "staging", Changes({"A": "1"}), restart=False)
    assert caught.value.failed_hosts == ("web2",)
    assert caught.value.message.endswith("the hosts already changed were put back (web1)")
    assert {name: env_of(cluster, name) for name in cluster.hosts} == before
    for host in cluster.hosts.values():
        assert sorted(p.name for p in (host.directory / "shared").iterdir()) == [".env"]
        assert host.history() == []


def test_ctrl_c_during_the_renames_puts_every_host_back(cluster: Cluster) -> None:
    before = {name: env_of(cluster, name) for name in cluster.hosts}

    def interrupt(step: str) -> None:
        if step == "mv":
            raise KeyboardInterrupt

    cluster.hosts["web2"].on_step = interrupt
    with pytest.raises(KeyboardInterrupt):
        change_config(cluster.pipeline, "staging", Changes({"A": "1"}), restart=False)
    assert {name: env_of(cluster, name) for name in cluster.hosts} == before
    assert "interrupted: putting back /srv/app/shared/.env on every host" in cluster.said
    for host in cluster.hosts.values():
        assert sorted(p.name for p in (host.directory / "shared").iterdir()) == [".env"]
        assert not (host.directory / ".procman" / "lock").exists()


def test_a_host_failing_to_stage_leaves_every_host_as_it_was(cluster: Cluster) -> None:
    before = {name: env_of(cluster, name) for name in cluster.hosts}

    def refuse(step: str) -> None:
        if step == "stage":
            raise ConnectionLost("web1", "stage", "the connection dropped")

    cluster.hosts["web1"].on_step = refuse
    with pytest.raises(HostGroupError, match="no host was changed"):
        change_config(cluster.pipeline, "staging", Changes({"A": "1"}), restart=False)
    assert {name: env_of(cluster, name) for name in cluster.hosts} == before
    assert sorted(p.name for p in (cluster.hosts["web2"].directory / "shared").iterdir()) == [
        ".env"
    ]


def test_scale_keeps_the_formation_on_every_host_and_the_next_deploy_uses_it(
    cluster: Cluster,
) -> None:
    release = cluster.deploy()
    done = scale(cluster.pipeline, "staging", ["worker=3"])
    assert done.formation == {"web": 1, "worker": 3}
    assert done.per_host == {"web1": {}, "web2": {"worker": 3}}
    for host in cluster.hosts.values():
        text = (host.directory / ".procman" / "formation.json").read_text()
        assert text == '{"worker": 3}\n'
        assert host.history()[-1]["flags"] == ["worker=3"]
    web2 = cluster.hosts["web2"]
    commands: list[list[str]] = []
    run = web2.run

    def noting(argv: Sequence[str], *, timeout: float, input: bytes | None = None) -> Result:
        commands.append(list(argv))
        return run(argv, timeout=timeout, input=input)

    web2.run = noting  # type: ignore[method-assign]
    cluster.commit("second")
    assert cluster.deploy() != release
    [start] = [argv for argv in commands if argv[3:4] == ["procman-start"]]
    assert start[start.index("-m") + 1] == "web=0,worker=3"
    with pytest.raises(FormationError, match="runs no process type 'wrker'"):
        scale(cluster.pipeline, "staging", ["wrker=1"])


def test_a_scaled_count_is_spread_over_the_hosts_that_run_the_type() -> None:
    hosts = (Host("a", roles=("worker",)), Host("b", roles=("web",)), Host("c", roles=("worker",)))
    environment = Environment("e", hosts, "/srv/app", formation={"web": 1, "worker": 2})
    assert spread(5, environment, "worker") == {hosts[0]: 3, hosts[2]: 2}
    assert host_formation(environment, hosts[2], ["web", "worker"], {"worker": 1}) == {
        "web": 0, "worker": 0
    }  # fmt: skip
    assert host_formation(environment, hosts[0], ["web", "worker"], {}) == {"web": 0, "worker": 2}


def test_assignments_read_values_from_files_and_stdin(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from a file\n")
    values = parse_assignments(
        ["A=1", f"B=@{secret}", "C=@-", "D=@@at", "E=x=y"],
        lambda name: Path(name).read_text(),
        lambda: "from stdin\n",
    )
    assert values == {"A": "1", "B": "from a file", "C": "from stdin", "D": "@at", "E": "x=y"}
    assert parse_assignments(["-"], str, lambda: "X=1\nY='two words'\n") == {
        "X": "1", "Y": "two words"
    }  # fmt: skip
    with pytest.raises(UsageError, match="'1A' is not a variable name"):
        parse_assignments(["1A=x"], str, str)
    with pytest.raises(UsageError, match="'A' is not KEY=VALUE"):
        parse_assignments(["A"], str, str)


def test_secret_looking_values_are_masked() -> None:
    assert masked("SECRET_KEY", "abc") == "***"
    assert masked("API_TOKEN", "abc") == "***"
    assert masked("DB_PASSWORD", "abc") == "***"
    assert masked("REDISTOGO_URL", "redis://:pw@host:6379/0") == "redis://:***@host:6379/0"
    assert masked("GREETING", "hello") == "hello"
    assert masked("MONKEY", "banana") == "banana"
    rows = listing({"A": "yml", "B": "yml"}, {"h1": {"B": "shared"}, "h2": None})
    assert [(v.name, v.value, v.source, v.differs_on) for v in rows] == [
        ("A", "yml", "procman.yml", ()),
        ("B", "shared", "shared/.env", ("h2",)),
    ]


def test_redis_provider_must_name_a_set_variable() -> None:
    check_redis_provider({"REDIS_PROVIDER": "REDISTOGO_URL", "REDISTOGO_URL": "redis://h"}, "e")
    check_redis_provider({}, "e")
    with pytest.raises(ConfigVarError, match="names REDIS_URL, which is not set"):
        check_redis_provider({"REDIS_PROVIDER": "REDIS_URL"}, "e")
    with pytest.raises(ConfigVarError, match=r"not be the URL itself \(got 'redis://:\*\*\*@h'\)"):
        check_redis_provider({"REDIS_PROVIDER": "redis://:pw@h"}, "e")


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
values = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"))


@given(st.dictionaries(names, values, max_size=6))
def test_the_written_env_file_reads_back_exactly(written: dict[str, str]) -> None:
    assert parse_shared_env(shared_env_text(written), ".env") == written


@given(st.dictionaries(names, values, max_size=5), st.dictionaries(names, values, max_size=3),
       st.lists(names, max_size=3))  # fmt: skip
def test_applied_sets_and_unsets(
    current: dict[str, str], new: dict[str, str], gone: list[str]
) -> None:
    result = applied(current, Changes(new, tuple(gone)))
    for key, value in new.items():
        assert result[key] == value
    for key in gone:
        assert key not in result or key in new
    assert set(result) <= set(current) | set(new)


def test_config_set_restarts_one_host_at_a_time_even_when_the_environment_is_not_rolling(
    cluster: Cluster,
) -> None:
    release = cluster.deploy()
    done = change_config(cluster.pipeline, "staging", Changes({"A": "1"}))
    assert done.restarted
    restarting = [line for line in cluster.said if line.startswith("restarting ")]
    assert restarting == [
        f"restarting {release} (git {release[-7:]}) on staging (2 hosts), one host at a time"
    ]
    assert [r["action"] for r in cluster.hosts["web1"].history()] == ["deploy", "config", "restart"]
