"""procman.envfile: python-dotenv's syntax, with every bad line reported as ``file:line``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from procman.envfile import load_env_files, parse_env
from procman.errors import EnvFileError, ManyErrors, ProcmanError


def values(text: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    return dict(parse_env(text, ".env", base).values)


def messages(text: str, path: str = ".env") -> list[str]:
    with pytest.raises(ProcmanError) as caught:
        parse_env(text, path)
    error = caught.value
    return [str(e) for e in error.errors] if isinstance(error, ManyErrors) else [str(error)]


def test_plain_values() -> None:
    assert values("A=1\nB=two words\nC=\n") == {"A": "1", "B": "two words", "C": ""}


def test_single_and_double_quotes() -> None:
    assert values("A='x y'\nB=\"x y\"\nC=''\n") == {"A": "x y", "B": "x y", "C": ""}


def test_escapes_in_double_quotes() -> None:
    assert values(r'A="a\nb\t\"q\"\\"') == {"A": 'a\nb\t"q"\\'}


def test_single_quotes_are_literal() -> None:
    assert values(r"A='a\nb'") == {"A": r"a\nb"}


def test_single_quotes_do_not_expand() -> None:
    assert values("B=1\nA='${B} ${C:-d}'\n", {"C": "shell"}) == {"B": "1", "A": "${B} ${C:-d}"}


def test_export_prefix() -> None:
    assert values("export A=1\n  export   B = 'x'\n") == {"A": "1", "B": "x"}


def test_comments_and_inline_comments() -> None:
    text = "# comment\nA=1 # inline\nB='x # kept'\nC=\"y # kept\"\nD=no#space\n   # indented\n"
    assert values(text) == {"A": "1", "B": "x # kept", "C": "y # kept", "D": "no#space"}


def test_blank_lines_and_crlf() -> None:
    assert values("\n\r\nA=1\r\n\r\nB=2\r\n") == {"A": "1", "B": "2"}


def test_multi_line_double_quoted_value() -> None:
    assert values('A="one\ntwo"\nB=3\n') == {"A": "one\ntwo", "B": "3"}


def test_bom_at_start_of_text() -> None:
    assert values("\ufeffA=1\n") == {"A": "1"}


def test_later_assignment_wins() -> None:
    assert values("A=1\nA=2\n") == {"A": "2"}


# --- expansion -------------------------------------------------------------------------------


def test_expansion_sees_earlier_values_of_the_same_file() -> None:
    assert values('HOST=db\nURL="postgres://${HOST}/app"\n') == {
        "HOST": "db",
        "URL": "postgres://db/app",
    }


def test_unquoted_values_expand() -> None:
    assert values("A=1\nB=${A}2\n") == {"A": "1", "B": "12"}


def test_expansion_falls_back_to_base_then_default_then_empty() -> None:
    assert values("A=${SHELL_VAR}|${MISSING:-fallback}|${MISSING}\n", {"SHELL_VAR": "s"}) == {
        "A": "s|fallback|"
    }


def test_file_value_beats_base_once_defined() -> None:
    assert values("A=${X}\nX=file\nB=${X}\n", {"X": "shell"}) == {
        "A": "shell",
        "X": "file",
        "B": "file",
    }


def test_self_reference_sees_previous_value() -> None:
    assert values("PATH=/app/bin:${PATH}\n", {"PATH": "/usr/bin"}) == {"PATH": "/app/bin:/usr/bin"}


def test_dollar_without_braces_is_literal() -> None:
    assert values("A=$HOME\n", {"HOME": "/root"}) == {"A": "$HOME"}


def test_default_does_not_leak_into_values() -> None:
    assert values("A=${B:-x}\n") == {"A": "x"}


# --- errors ----------------------------------------------------------------------------------


def test_malformed_line_exact_message() -> None:
    assert messages("A=1\nthis is not an assignment\n") == [
        ".env:2: cannot parse 'this is not an assignment' "
        "(write KEY=value; quote values with spaces or '#')"
    ]


def test_bare_key_exact_message() -> None:
    assert messages("A=1\nDEBUG\n") == [
        ".env:2: 'DEBUG' has no '=' (write DEBUG=value, or DEBUG= for an empty value)"
    ]


def test_export_without_value_is_an_error() -> None:
    [message] = messages("export A\n")
    assert message.startswith(".env:1: 'A' has no '='")


def test_line_number_after_blank_lines() -> None:
    [message] = messages("\n\n\nA=1\n\n\nbad line\n")
    assert message.startswith(".env:7: cannot parse 'bad line'")


def test_line_number_after_crlf_blank_lines() -> None:
    [message] = messages("\r\n\r\nA=1\r\n\r\nbad line\r\n")
    assert message.startswith(".env:5: cannot parse 'bad line'")


def test_line_number_after_multi_line_value() -> None:
    [message] = messages('A="one\ntwo\nthree"\n\nbad line\n')
    assert message.startswith(".env:5: cannot parse 'bad line'")


def test_unterminated_quote() -> None:
    [message] = messages('A=1\nB="never closed\n')
    assert message.startswith(".env:2: cannot parse")


def test_text_after_closing_quote() -> None:
    [message] = messages("A='x'y\n")
    assert message.startswith(".env:1: cannot parse")


def test_missing_key() -> None:
    [message] = messages("=1\n")
    assert message.startswith(".env:1: cannot parse '=1'")


def test_nul_character() -> None:
    assert messages("A=x\x00y\n") == [".env:1: contains a NUL character (remove it)"]


def test_every_bad_line_is_reported() -> None:
    found = messages("bad one\nA=1\nKEY\n\nbad two\n", "app/.env")
    assert [m.split(": ", 1)[0] for m in found] == ["app/.env:1", "app/.env:3", "app/.env:5"]


# --- files -----------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_later_files_win(tmp_path: Path) -> None:
    first = write(tmp_path / "a.env", "A=1\nB=1\n")
    second = write(tmp_path / "b.env", "B=2\nC=2\n")
    assert load_env_files([first, second], {}) == {"A": "1", "B": "2", "C": "2"}


def test_expansion_sees_earlier_files_then_shell(tmp_path: Path) -> None:
    first = write(tmp_path / "a.env", "HOST=from-file\n")
    second = write(tmp_path / "b.env", "URL=${HOST}:${PORT}\n")
    merged = load_env_files([first, second], {"HOST": "from-shell", "PORT": "1"})
    assert merged == {"HOST": "from-file", "URL": "from-file:1"}


def test_shell_only_feeds_expansion(tmp_path: Path) -> None:
    env = write(tmp_path / ".env", "A=1\n")
    assert load_env_files([env], {"SHELL_ONLY": "x"}) == {"A": "1"}


def test_no_files() -> None:
    assert load_env_files([], {"A": "1"}) == {}


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.env"
    with pytest.raises(EnvFileError) as caught:
        load_env_files([path], {})
    assert str(caught.value) == (
        f"{path}: no such env file (check the path given to the env-files option)"
    )


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(EnvFileError, match="is a directory"):
        load_env_files([tmp_path], {})


def test_non_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes(b"A=1\nB=caf\xe9\n")
    with pytest.raises(EnvFileError) as caught:
        load_env_files([path], {})
    assert str(caught.value) == f"{path}:2: not valid UTF-8 (save the file as UTF-8)"


def test_bom_file(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_bytes("\ufeffA=1\n".encode())
    assert load_env_files([path], {}) == {"A": "1"}


def test_errors_of_every_file_are_reported(tmp_path: Path) -> None:
    first = write(tmp_path / "a.env", "bad\n")
    missing = tmp_path / "missing.env"
    third = write(tmp_path / "c.env", "A=1\nworse line\n")
    with pytest.raises(ManyErrors) as caught:
        load_env_files([first, missing, third], {})
    assert [str(e).split(": ", 1)[0] for e in caught.value.errors] == [
        f"{first}:1",
        f"{missing}",
        f"{third}:2",
    ]


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "secret.env", "A=1\n")

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(EnvFileError) as caught:
        load_env_files([path], {})
    assert str(caught.value) == f"{path}: cannot read: Permission denied"


def test_default_applies_only_when_unset_as_in_python_dotenv() -> None:
    # python-dotenv's documented order: file, environment, default, "". Unlike POSIX sh, a
    # variable that is set but empty keeps its empty value.
    assert values("A=${EMPTY:-fallback}\n", {"EMPTY": ""}) == {"A": ""}


@pytest.mark.parametrize("line", ['"unterminated=4', "A-B=1", "1X=2"])
def test_a_key_that_is_not_a_variable_name_is_an_error(line: str) -> None:
    [message] = messages(f"GOOD=1\n{line}\n")
    assert message.startswith(".env:2: ")
    assert "is not a variable name" in message
