"""procman.formation: ``-m`` specs, name checks and foreman's port rule."""

from __future__ import annotations

import pytest

from procman.errors import FormationError, UsageError
from procman.formation import (
    Instance,
    check_names,
    check_port,
    check_types,
    expand,
    parse_formation,
)
from procman.procfile import parse_procfile

PROCFILE = parse_procfile("web: serve\nworker: work\nclock: tick\n")


def summary(instances: list[Instance]) -> list[tuple[str, int]]:
    return [(i.name, i.port) for i in instances]


def test_parse() -> None:
    assert parse_formation("all=1,web=2,worker=3") == {"all": 1, "web": 2, "worker": 3}


def test_parse_allows_spaces_and_empty_parts() -> None:
    assert parse_formation(" web = 2 , worker=0 ,, ") == {"web": 2, "worker": 0}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "web=-1",
            "the formation option: count for 'web' must be a whole number 0 or more, got '-1' "
            "(write it like 'web=2')",
        ),
        (
            "web=two",
            "the formation option: count for 'web' must be a whole number 0 or more, got 'two' "
            "(write it like 'web=2')",
        ),
        (
            "web",
            "the formation option: cannot read 'web' (write TYPE=COUNT pairs separated by commas, "
            "like 'web=2,worker=3' or 'all=1')",
        ),
        ("web=1,web=2", "the formation option: 'web' is given twice (give each type once)"),
        ("", "the formation option: is empty (write TYPE=COUNT pairs like 'web=2,worker=3')"),
        (" , ", "the formation option: is empty (write TYPE=COUNT pairs like 'web=2,worker=3')"),
    ],
)
def test_parse_errors(spec: str, message: str) -> None:
    with pytest.raises(FormationError) as caught:
        parse_formation(spec)
    assert str(caught.value) == message


@pytest.mark.parametrize("spec", ["web=", "web=1.5", "web=\u0663", "web=1 2", "=1", "w.b=1"])
def test_more_parse_errors(spec: str) -> None:
    with pytest.raises(FormationError, match=r"^the formation option: "):
        parse_formation(spec)


def test_parse_error_names_the_option_used() -> None:
    with pytest.raises(FormationError, match=r"^-c/--concurrency: "):
        parse_formation("web=x", "-c/--concurrency")


def test_huge_count_is_an_error_not_a_crash() -> None:
    # int() refuses strings over 4300 digits with ValueError; that must not escape.
    with pytest.raises(FormationError, match=r"count for 'web' is 9+\.\.\., more than the 65535"):
        parse_formation("web=" + "9" * 5000)


def test_count_above_the_number_of_ports() -> None:
    with pytest.raises(FormationError, match=r"count for 'web' is 65536, more than"):
        parse_formation("web=65536")
    assert parse_formation("web=0065535") == {"web": 65535}


def test_check_types_accepts_known_types_and_all() -> None:
    check_types({"all": 2, "web": 1, "clock": 0}, PROCFILE, "-m/--formation")


def test_check_types_lists_known_types() -> None:
    with pytest.raises(FormationError) as caught:
        check_types({"web": 1, "wrker": 2}, PROCFILE, "-m/--formation")
    assert str(caught.value) == (
        "-m/--formation: unknown process type 'wrker' "
        "(did you mean 'worker'? Procfile defines: web, worker, clock)"
    )


def test_check_names_lists_known_types() -> None:
    check_names(["web", "clock"], PROCFILE)
    with pytest.raises(UsageError) as caught:
        check_names(["web", "all"], PROCFILE)
    assert str(caught.value) == "unknown process type 'all' (Procfile defines: web, worker, clock)"


def test_expand_defaults_to_one_of_each_by_foremans_port_rule() -> None:
    assert summary(expand(PROCFILE, {}, 5000)) == [
        ("web.1", 5000),
        ("worker.1", 5100),
        ("clock.1", 5200),
    ]


def test_expand_counts_and_all_default() -> None:
    instances = expand(PROCFILE, {"all": 2, "web": 3, "clock": 0}, 8000)
    assert summary(instances) == [
        ("web.1", 8000),
        ("web.2", 8001),
        ("web.3", 8002),
        ("worker.1", 8100),
        ("worker.2", 8101),
    ]
    assert [(i.type, i.number, i.command) for i in instances[-2:]] == [
        ("worker", 1, "work"),
        ("worker", 2, "work"),
    ]


def test_expand_only_names_keeps_procfile_positions_for_ports() -> None:
    assert summary(expand(PROCFILE, {"clock": 2}, 5000, ["clock", "web"])) == [
        ("web.1", 5000),
        ("clock.1", 5200),
        ("clock.2", 5201),
    ]


def test_expand_all_zero_starts_nothing() -> None:
    assert expand(PROCFILE, {"all": 0}, 5000) == []


def test_expand_port_above_65535() -> None:
    with pytest.raises(FormationError) as caught:
        expand(PROCFILE, {}, 65400)
    assert str(caught.value) == (
        "clock.1 would get port 65600, above 65535 "
        "(pass a lower base port with the port option or fewer instances)"
    )


def test_expand_port_exactly_65535_is_fine() -> None:
    assert summary(expand(PROCFILE, {"web": 0, "worker": 0}, 65335)) == [("clock.1", 65535)]


@pytest.mark.parametrize("port", [1, 5000, 65535])
def test_check_port_accepts(port: int) -> None:
    assert check_port(port) == port


@pytest.mark.parametrize("port", [0, -1, 65536, 70000])
def test_check_port_rejects(port: int) -> None:
    with pytest.raises(UsageError) as caught:
        check_port(port)
    assert str(caught.value) == (
        f"the port option: port {port} is out of range (use a port from 1 to 65535)"
    )


def test_check_port_names_its_source() -> None:
    with pytest.raises(UsageError, match=r"^PORT from \.env: port 0 is out of range"):
        check_port(0, "PORT from .env")


def test_more_than_100_instances_reuse_the_next_types_ports_as_in_foreman() -> None:
    # Foreman's rule gives each type 100 ports; web.101 and worker.1 both get base + 100.
    # Kept for compatibility (workers usually ignore PORT); pinned so a change is deliberate.
    instances = expand(PROCFILE, {"web": 101, "clock": 0}, 5000)
    assert summary(instances)[-2:] == [("web.101", 5100), ("worker.1", 5100)]


def test_more_than_1000_instances_of_a_type_is_refused_as_a_likely_typo() -> None:
    assert len(expand(PROCFILE, {"web": 1000, "clock": 0, "worker": 0}, 1000)) == 1000
    with pytest.raises(FormationError) as refused:
        expand(PROCFILE, {"worker": 60000}, 5000)
    assert refused.value.message == "worker: 60000 instances is more than the 1000 a type may have"
