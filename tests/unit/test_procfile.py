"""procman.procfile: foreman/honcho's ``name: command`` lines, read strictly."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from procman.errors import ManyErrors, ProcfileError, ProcmanError
from procman.procfile import load_procfile, parse_procfile


def pairs(text: str) -> list[tuple[str, str]]:
    return [(p.name, p.command) for p in parse_procfile(text).processes]


def messages(text: str, path: str = "Procfile") -> list[str]:
    with pytest.raises(ProcmanError) as caught:
        parse_procfile(text, path)
    error = caught.value
    return [str(e) for e in error.errors] if isinstance(error, ManyErrors) else [str(error)]


def test_name_and_command() -> None:
    assert pairs("web: python -m http.server $PORT\nworker: python worker.py\n") == [
        ("web", "python -m http.server $PORT"),
        ("worker", "python worker.py"),
    ]


def test_names_may_use_letters_digits_underscore_and_dash() -> None:
    assert [n for n, _ in pairs("Web_2-b: x\n_: y\n-1: z\n")] == ["Web_2-b", "_", "-1"]


def test_comments_blank_lines_and_surrounding_whitespace_are_ignored() -> None:
    text = "# the app\n\n   \n  web :   run it  \n\t# indented comment\nworker:\tgo\t\n"
    assert pairs(text) == [("web", "run it"), ("worker", "go")]


def test_line_numbers_count_skipped_lines() -> None:
    procfile = parse_procfile("# c\n\nweb: a\n\nworker: b")
    assert [(p.name, p.line) for p in procfile.processes] == [("web", 3), ("worker", 5)]


def test_only_the_first_colon_separates_name_from_command() -> None:
    assert pairs("web: curl http://localhost:5000/a:b") == [
        ("web", "curl http://localhost:5000/a:b")
    ]


def test_crlf_line_endings() -> None:
    assert pairs("web: a\r\nworker: b\r\n") == [("web", "a"), ("worker", "b")]


def test_procfile_helpers() -> None:
    procfile = parse_procfile("web: a\nworker: b\n", "app/Procfile")
    assert procfile.path == "app/Procfile"
    assert procfile.names == ["web", "worker"]
    assert procfile.position("worker") == 1
    assert procfile.get("web") is not None and procfile.get("web").command == "a"  # type: ignore[union-attr]
    assert procfile.get("clock") is None


def test_malformed_line_exact_message() -> None:
    assert messages("web: a\nnot a process line\n") == [
        "Procfile:2: expected 'name: command', got 'not a process line' "
        "(write it like 'web: python -m http.server $PORT', or comment it out with '#')"
    ]


def test_bad_name_exact_message() -> None:
    assert messages("we.b: a\n") == [
        "Procfile:1: bad process name 'we.b' (names may use only letters, digits, '_' and '-')"
    ]


@pytest.mark.parametrize("name", ["wéb", "web.1", "w$b", "ü"])
def test_bad_names(name: str) -> None:
    [message] = messages(f"{name}: run\n")
    assert message.startswith(f"Procfile:1: bad process name {name!r}")


def test_missing_name() -> None:
    [message] = messages("web: a\n: orphan command\n")
    assert message.startswith("Procfile:2: missing process name before ':'")


def test_name_with_space_is_malformed() -> None:
    [message] = messages("my web: a\n")
    assert message.startswith("Procfile:1: expected 'name: command'")


def test_empty_command_exact_message() -> None:
    assert messages("web:   \n") == [
        "Procfile:1: process 'web' has no command "
        "(give it one after the colon, like 'web: python -m http.server $PORT')"
    ]


def test_duplicate_names_both_lines() -> None:
    assert messages("web: a\n\nworker: b\nweb: c\n") == [
        "Procfile:4: duplicate process name 'web', first defined on line 1 "
        "(rename or remove one of them)"
    ]


def test_every_bad_line_is_reported() -> None:
    found = messages("web a\nweb: ok\nx.y: z\nweb: again\nempty:\n", "app/Procfile")
    assert [m.split(": ", 1)[0] for m in found] == [
        "app/Procfile:1",
        "app/Procfile:3",
        "app/Procfile:4",
        "app/Procfile:5",
    ]


def test_long_bad_line_is_cut_in_the_message() -> None:
    [message] = messages("x" * 500)
    assert "x" * 57 + "..." in message
    assert "x" * 100 not in message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "  \r\n  \r\n"])
def test_empty_procfile(text: str) -> None:
    assert messages(text) == [
        "Procfile: defines no processes (add a line like 'web: python -m http.server $PORT')"
    ]


def test_nul_in_command_is_an_error_not_a_crash_at_spawn() -> None:
    [message] = messages("web: echo a\x00b\n")
    assert message.startswith("Procfile:1: the command for 'web' contains a NUL character")


def test_errors_are_procfile_errors_with_a_hint() -> None:
    with pytest.raises(ProcfileError) as caught:
        parse_procfile("bad")
    assert caught.value.hint


# --- files ------------------------------------------------------------------------------------


def test_load_file(tmp_path: Path) -> None:
    path = tmp_path / "Procfile"
    path.write_text("web: a\n")
    procfile = load_procfile(path)
    assert procfile.path == str(path)
    assert procfile.names == ["web"]


def test_load_file_with_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "Procfile"
    path.write_bytes("\ufeffweb: a\r\nworker: b\r\n".encode())
    assert [(p.name, p.command) for p in load_procfile(path).processes] == [
        ("web", "a"),
        ("worker", "b"),
    ]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "Procfile"
    with pytest.raises(ProcfileError) as caught:
        load_procfile(path)
    assert str(caught.value) == (
        f"{path}: no such file (create a Procfile with lines like "
        "'web: python -m http.server $PORT', or point to one with the procfile option)"
    )


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ProcfileError) as caught:
        load_procfile(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path}: is a directory (pass the Procfile itself to the procfile option)"
    )


def test_non_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "Procfile"
    path.write_bytes(b"web: a\n\nworker: caf\xe9\n")
    with pytest.raises(ProcfileError) as caught:
        load_procfile(path)
    assert str(caught.value) == f"{path}:3: not valid UTF-8 (save the Procfile as UTF-8 text)"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "Procfile"
    path.write_text("web: a\n")
    path.chmod(0)
    with pytest.raises(ProcfileError, match=r"cannot read: Permission denied"):
        load_procfile(path)


def test_errors_in_file_name_the_path(tmp_path: Path) -> None:
    path = tmp_path / "Procfile"
    path.write_text("web: a\nweb: b\n")
    with pytest.raises(ProcfileError, match=rf"^{re.escape(str(path))}:2: duplicate"):
        load_procfile(path)


def test_unreadable_file_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "Procfile"
    path.write_text("web: a\n")

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(ProcfileError) as caught:
        load_procfile(path)
    assert str(caught.value) == f"{path}: cannot read: Permission denied"


@pytest.mark.parametrize("name", ["all", "system"])
def test_names_procman_gives_a_meaning_are_refused(name: str) -> None:
    with pytest.raises(ProcmanError) as refused:
        parse_procfile(f"web: serve\n{name}: run\n", "Procfile")
    assert str(refused.value).startswith(f"Procfile:2: {name!r} cannot name a process type (")
