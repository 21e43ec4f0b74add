"""Property tests: whatever text procman is given, it answers with a result or its own error."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from procman.envfile import parse_env
from procman.errors import ManyErrors, ProcmanError
from procman.formation import parse_formation, parse_scale
from procman.procfile import NAME_PATTERN, RESERVED_NAMES, parse_procfile

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text biased towards the characters the parsers care about, mixed with anything at all.
SYNTAX = st.sampled_from(
    [":", "=", "#", "'", '"', "\\", "$", "{", "}", ":-", ",", " ", "\t", "\n", "\r\n", "\r",
     "export ", "web", "A", "1", "-", "\x00", "\ufeff", "\u2028", "\x85", "\udcff"]
)  # fmt: skip
TEXT = st.one_of(st.text(), st.lists(st.one_of(SYNTAX, st.text(max_size=3))).map("".join))


def assert_well_formed(error: ProcmanError) -> None:
    errors = error.errors if isinstance(error, ManyErrors) else [error]
    assert errors
    for each in errors:
        assert each.message
        assert type(each) is not ProcmanError


@FAST
@given(TEXT)
@example("web: a\x00b")
@example("\ufeff")
def test_any_procfile_text_parses_or_raises_procman_error(text: str) -> None:
    try:
        procfile = parse_procfile(text, "Procfile")
    except ProcmanError as error:
        assert_well_formed(error)
        for each in error.errors if isinstance(error, ManyErrors) else [error]:
            assert each.message.startswith("Procfile")
        return
    assert procfile.processes
    for process in procfile.processes:
        assert NAME_PATTERN.fullmatch(process.name)
        assert process.command and process.command == process.command.strip()
    assert len(set(procfile.names)) == len(procfile.names)


@FAST
@given(TEXT, st.dictionaries(st.sampled_from(["A", "B", "HOME", "web"]), st.text(max_size=5)))
@example('A="unterminated\n\nB', {})
@example("A=${B:-${C}}", {})
def test_any_env_text_parses_or_raises_procman_error(text: str, base: dict[str, str]) -> None:
    try:
        env = parse_env(text, ".env", base)
    except ProcmanError as error:
        assert_well_formed(error)
        for each in error.errors if isinstance(error, ManyErrors) else [error]:
            assert each.message.startswith(".env:")
        return
    for key, value in env.values.items():
        assert isinstance(key, str) and isinstance(value, str)
        assert "\x00" not in key + value


@FAST
@given(TEXT)
@example("web=" + "9" * 5000)
def test_any_formation_spec_parses_or_raises_procman_error(spec: str) -> None:
    try:
        counts = parse_formation(spec)
    except ProcmanError as error:
        assert_well_formed(error)
        assert str(error).startswith("the formation option: ")
        return
    assert counts
    assert all(0 <= count <= 65535 for count in counts.values())


@FAST
@given(st.lists(TEXT, max_size=3))
@example(["web=" + "9" * 5000])
@example(["web+" + "9" * 5000, "all=1"])
def test_any_scale_request_parses_or_raises_procman_error(specs: list[str]) -> None:
    """What ``procman scale`` and the control socket's ``scale`` verb accept: never an exception
    of another kind (one would stop the running supervisor)."""
    try:
        changes = parse_scale(specs)
    except ProcmanError as error:
        assert_well_formed(error)
        return
    assert changes
    assert all(0 <= change.amount <= 65535 for change in changes)


NAMES = st.from_regex(NAME_PATTERN, fullmatch=True).filter(
    lambda n: len(n) <= 20 and n not in RESERVED_NAMES
)
COMMANDS = (
    st.text(
        st.characters(blacklist_categories=["Cs"], blacklist_characters="\n\r\x00"),
        min_size=1,
        max_size=40,
    )
    .map(str.strip)
    .filter(bool)
)
PROCESSES = st.lists(st.tuples(NAMES, COMMANDS), min_size=1, max_size=8, unique_by=lambda p: p[0])


@st.composite
def procfiles(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]], list[int]]:
    """A valid Procfile with comments, blank lines and odd spacing, and what it defines where."""
    processes = draw(PROCESSES)
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    spaces = st.sampled_from(["", " ", "  ", "\t"])
    lines: list[str] = []
    numbers: list[int] = []
    for name, command in processes:
        for _ in range(draw(st.integers(0, 2))):
            lines.append(draw(st.sampled_from(["", "   ", "# a comment", "  # web: not me"])))
        lines.append(f"{draw(spaces)}{name}{draw(spaces)}:{draw(spaces)}{command}{draw(spaces)}")
        numbers.append(len(lines))
    return newline.join(lines) + draw(st.sampled_from(["", newline])), processes, numbers


@FAST
@given(procfiles())
def test_valid_procfiles_round_trip(case: tuple[str, list[tuple[str, str]], list[int]]) -> None:
    text, processes, numbers = case
    procfile = parse_procfile(text)
    assert [(p.name, p.command) for p in procfile.processes] == processes
    assert [p.line for p in procfile.processes] == numbers


@FAST
@given(st.dictionaries(NAMES, st.integers(0, 65535), min_size=1), st.sampled_from([",", " , "]))
def test_valid_formations_round_trip(counts: dict[str, int], separator: str) -> None:
    spec = separator.join(f"{name}={count}" for name, count in counts.items())
    assert parse_formation(spec) == counts
