"""procman.deploy.history: JSON-line records, robust parsing, and the rollback/promote queries."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from procman.deploy.history import (
    ACTIONS,
    DAY_TWO_ACTIONS,
    OK,
    RESULTS,
    ROLLED_BACK,
    HistoryError,
    HistoryRecord,
    ReleaseRow,
    current_healthy,
    healthy_record,
    parse_history,
    previous_healthy,
    record_rows,
    release_rows,
)
from procman.errors import ProcmanError

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def record(
    release_id: str, result: str = OK, action: str = "deploy", **more: object
) -> HistoryRecord:
    base = HistoryRecord(
        who="dev@laptop",
        when="2026-11-22T13:19:55Z",
        action=action,
        release_id=release_id,
        sha256="a" * 64,
        git_sha="0123456" + "0" * 33,
        result=result,
        duration=12.5,
    )
    return replace(base, **more)  # type: ignore[arg-type]


A, B, C = "20261101T000000Z-aaaaaaa", "20261102T000000Z-bbbbbbb", "20261103T000000Z-ccccccc"


def test_json_line_round_trip() -> None:
    one = record(A, flags=("allow-dirty", "skip-tests"))
    text = one.to_json_line()
    assert "\n" not in text
    assert json.loads(text) == {
        "who": "dev@laptop",
        "when": "2026-11-22T13:19:55Z",
        "action": "deploy",
        "release_id": A,
        "sha256": "a" * 64,
        "git_sha": "0123456" + "0" * 33,
        "result": "ok",
        "duration": 12.5,
        "flags": ["allow-dirty", "skip-tests"],
    }
    assert HistoryRecord.from_json_line(text) == one


def test_the_config_used_round_trips_and_older_records_have_none() -> None:
    one = record(A, config_sha256="c" * 64, config_dirty=True)
    data = json.loads(one.to_json_line())
    assert (data["config_sha256"], data["config_dirty"]) == ("c" * 64, True)
    assert HistoryRecord.from_json_line(one.to_json_line()) == one
    older = json.loads(record(A).to_json_line())
    assert "config_sha256" not in older and "config_dirty" not in older
    parsed = HistoryRecord.from_json_line(json.dumps(older))
    assert (parsed.config_sha256, parsed.config_dirty) == (None, None)


def test_parse_history_skips_blank_lines_and_keeps_order() -> None:
    text = f"{record(A).to_json_line()}\n\n{record(B).to_json_line()}\r\n"
    assert [r.release_id for r in parse_history(text)] == [A, B]
    assert parse_history("") == ()


def test_flags_are_optional_and_unknown_keys_ignored() -> None:
    data = json.loads(record(A).to_json_line())
    del data["flags"]
    data["future"] = 1
    assert parse_history(json.dumps(data)) == (record(A),)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ('{"who": ', "bad JSON at column 9: Expecting value"),
        ("[1, 2]", "not a JSON object"),
        ('{"who": "x"}', "missing when, action, release_id, sha256, git_sha, result, duration"),
        ("WHO", "bad JSON at column 1: Expecting value"),
    ],
)
def test_a_corrupt_line_is_named_by_its_number(bad: str, reason: str) -> None:
    text = f"{record(A).to_json_line()}\n\n{bad}\n{record(B).to_json_line()}\n"
    with pytest.raises(HistoryError) as caught:
        parse_history(text, "web1:/srv/app/.procman/history.jsonl")
    assert caught.value.message == (
        f"web1:/srv/app/.procman/history.jsonl:3: not a history record ({reason})"
    )
    assert caught.value.hint == "fix or delete line 3 of web1:/srv/app/.procman/history.jsonl"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("who", 1, "who is not a string"),
        ("duration", "1", "duration is not a number"),
        ("duration", True, "duration is not a number"),
        ("duration", -1, "not a finite number"),
        ("flags", "x", "flags is not a list of strings"),
        ("action", "explode", "unknown action 'explode'"),
        ("result", "meh", "unknown result 'meh'"),
        ("config_sha256", 3, "config_sha256 is not a string"),
        ("config_dirty", "no", "config_dirty is not true or false"),
    ],
)
def test_bad_fields(field: str, value: object, reason: str) -> None:
    data = json.loads(record(A).to_json_line())
    data[field] = value
    with pytest.raises(HistoryError, match=reason):
        parse_history(json.dumps(data))


def test_infinite_duration() -> None:
    with pytest.raises(HistoryError, match="finite"):
        parse_history(record(A).to_json_line().replace("12.5", "Infinity"))


def test_current_and_previous_healthy() -> None:
    assert current_healthy([]) is None
    assert previous_healthy([]) is None
    history = [record(A), record(B), record(C, ROLLED_BACK), record(C, "failed")]
    assert current_healthy(history) == record(B)
    assert previous_healthy(history) == record(A)
    again = [*history, record(A, action="rollback"), record(B)]
    assert current_healthy(again) == record(B)
    assert previous_healthy(again) == record(A, action="rollback")
    assert previous_healthy([record(A), record(A, action="rollback")]) is None


def test_healthy_record_for_an_older_release() -> None:
    history = [record(A), record(B), record(A, "failed", action="rollback")]
    assert healthy_record(history, A) == record(A)
    assert healthy_record(history, C) is None
    assert healthy_record([record(C, ROLLED_BACK)], C) is None


def test_release_rows_newest_first_with_current_marked() -> None:
    history = [
        record(A),
        record(B, who="ci@runner"),
        record(C, ROLLED_BACK),
        record(A, action="rollback", when="2026-11-23T00:00:00Z"),
    ]
    rows = release_rows(history, current=A)
    git, sha = record(A).git_sha, "a" * 64
    assert rows == [
        ReleaseRow(C, git, record(C).when, "dev@laptop", ROLLED_BACK, False, sha256=sha),
        ReleaseRow(B, git, record(B).when, "ci@runner", OK, False, sha256=sha),
        ReleaseRow(
            A, git, "2026-11-23T00:00:00Z", "dev@laptop", OK, True, action="rollback", sha256=sha
        ),
    ]
    assert rows[2].to_json() == {
        "release_id": A,
        "sha256": sha,
        "git_sha": record(A).git_sha,
        "action": "rollback",
        "when": "2026-11-23T00:00:00Z",
        "who": "dev@laptop",
        "result": OK,
        "flags": [],
        "config_sha256": None,
        "config_dirty": None,
        "current": True,
        "kept": True,
    }
    assert release_rows([], None) == []


def test_record_rows_list_every_record_newest_first() -> None:
    history = [
        record(A),
        record(B, flags=("skip-tests",)),
        record(A, action="rollback"),
        record(A, action="restart", result="failed", flags=("interrupted",)),
    ]
    rows = record_rows(history, current=A, kept=[A])
    assert [(r.release_id, r.action, r.result, r.flags) for r in rows] == [
        (A, "restart", "failed", ("interrupted",)),
        (A, "rollback", OK, ()),
        (B, "deploy", OK, ("skip-tests",)),
        (A, "deploy", OK, ()),
    ]
    assert [(r.current, r.kept) for r in rows] == [(True, True)] * 2 + [
        (False, False),
        (True, True),
    ]


def test_a_dirty_config_shows_as_a_flag_unless_one_says_so_already() -> None:
    def shown(**more: object) -> tuple[str, ...]:
        [row] = release_rows([record(A, **more)], A)
        return row.shown_flags

    assert shown() == ()
    assert shown(config_dirty=False) == ()
    assert shown(config_dirty=True) == ("config-dirty",)
    assert shown(config_dirty=True, flags=("skip-tests",)) == ("skip-tests", "config-dirty")
    assert shown(config_dirty=True, flags=("allow-dirty-config",)) == ("allow-dirty-config",)
    assert shown(config_dirty=True, flags=("allow-dirty",)) == ("allow-dirty",)


def test_release_rows_mark_what_pruning_removed() -> None:
    history = [record(A), record(B), record(C)]
    rows = release_rows(history, current=C, kept=[B, C])
    assert [(row.release_id, row.kept) for row in rows] == [(C, True), (B, True), (A, False)]
    assert rows[2].to_json()["kept"] is False


# -- properties ------------------------------------------------------------------------------------

RECORDS = st.builds(
    HistoryRecord,
    who=st.text(),
    when=st.text(),
    action=st.sampled_from(ACTIONS),
    release_id=st.text(),
    sha256=st.text(),
    git_sha=st.text(),
    result=st.sampled_from(RESULTS),
    duration=st.floats(min_value=0, max_value=1e9, allow_nan=False),
    flags=st.lists(st.text()).map(tuple),
    config_sha256=st.none() | st.text(),
    config_dirty=st.none() | st.booleans(),
)
PIECES = st.sampled_from(
    ["{", "}", "[", "]", '"', ":", ",", "\n", "\r\n", "\\", "null", "1e999", "-1", "true",
     '"who"', '"duration"', '"flags"', '"action"', "\x00", "\udcff", "\u2028", " "]
)  # fmt: skip
TEXT = st.one_of(
    st.text(),
    st.lists(st.one_of(PIECES, st.text(max_size=3))).map("".join),
    st.lists(RECORDS.map(HistoryRecord.to_json_line)).map("\n".join),
)


@FAST
@given(st.lists(RECORDS))
def test_any_records_round_trip_through_a_history_file(records: list[HistoryRecord]) -> None:
    text = "".join(r.to_json_line() + "\n" for r in records)
    parsed = parse_history(text)
    assert [r.to_json_line() for r in parsed] == [r.to_json_line() for r in records]


@FAST
@given(TEXT)
def test_any_text_gives_records_or_a_history_error_with_a_line_number(text: str) -> None:
    try:
        records = parse_history(text, "h")
    except HistoryError as error:
        line = int(error.message.split(":")[1])
        assert 1 <= line <= text.count("\n") + 1
        assert text.split("\n")[line - 1].strip()
    except ProcmanError:  # pragma: no cover - any other error type is a bug
        raise AssertionError("not a HistoryError") from None
    else:
        assert all(isinstance(r, HistoryRecord) for r in records)
        assert len(records) <= text.count("\n") + 1


@FAST
@given(st.lists(RECORDS, min_size=1))
def test_current_healthy_is_the_last_ok_and_previous_differs(records: list[HistoryRecord]) -> None:
    current = current_healthy(records)
    previous = previous_healthy(records)
    # a config or scale record makes no release healthy
    oks = [r for r in records if r.result == OK and r.action not in DAY_TWO_ACTIONS]
    assert current == (oks[-1] if oks else None)
    if previous is not None:
        assert current is not None
        assert previous.healthy
        assert previous.release_id != current.release_id
