"""The export escapers: any input gives text or an ExportValueError, and what supervisord and sh
read back is the input itself (their own parsers, in process). systemd's own reading is checked
by tests/integration/test_export_systemd.py with systemd-analyze."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st
from supervisor.options import ServerOptions, UnhosedConfigParser

from procman.errors import ProcmanError
from procman.export import escaping
from procman.export.escaping import ExportValueError

TRICKY = ["it's", 'say "hi"', "100%", "$HOME ${X:-y}", "a && b", "end\\", "a ;b #c", "", " "]


def supervisor_reads(word: str) -> list[str]:
    """The argv supervisord runs for ``command=/bin/sh -c WORD`` (its config reader, its %
    expansion and its shlex.split, as supervisor/process.py does)."""
    text = f"[program:x]\ncommand=/bin/sh -c {word}\n"
    parser = UnhosedConfigParser()
    parser.read_string(text)
    (config,) = ServerOptions().processes_from_section(parser, "program:x", "x")
    return shlex.split(config.command)


@pytest.mark.parametrize("value", TRICKY)
def test_supervisord_reads_back_each_tricky_value(value: str) -> None:
    assert supervisor_reads(escaping.supervisor_word(value)) == ["/bin/sh", "-c", value]


@given(st.text())
def test_supervisor_word_round_trips_or_refuses(value: str) -> None:
    try:
        word = escaping.supervisor_word(value)
    except ExportValueError:
        assert "\x00" in value or "\n" in value or "\r" in value
        return
    assert supervisor_reads(word) == ["/bin/sh", "-c", value]


@given(st.text())
def test_shell_quote_round_trips_or_refuses(value: str) -> None:
    try:
        quoted = escaping.shell_quote(value)
    except ExportValueError:
        assert "\x00" in value
        return
    assert shlex.split(quoted) == [value]


@given(st.text())
def test_systemd_escapers_give_text_or_a_procman_error(value: str) -> None:
    for escape in (
        escaping.systemd_word,
        escaping.systemd_path,
        escaping.systemd_text,
        escaping.supervisor_path,
        lambda v: escaping.systemd_assignment("NAME", v),
    ):
        try:
            escaped = escape(value)
        except ProcmanError:
            continue
        assert "\n" not in escaped and "\x00" not in escaped
        assert "%" not in escaped.replace("%%", "")


@given(st.text())
def test_systemd_word_doubles_every_dollar_and_quotes_the_whole(value: str) -> None:
    try:
        word = escaping.systemd_word(value)
    except ExportValueError:
        assert "\x00" in value
        return
    assert word.startswith('"') and word.endswith('"')
    assert "$" not in word.replace("$$", "")
    inner = word[1:-1].replace("\\\\", "")
    assert '"' not in inner.replace('\\"', "")
