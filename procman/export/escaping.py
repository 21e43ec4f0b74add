"""Escaping for the files ``procman export`` writes: pure functions, text in, text out.

Each function takes any string and returns text that the reading program (systemd's unit parser,
supervisord's config reader, ``sh``) turns back into exactly that string, or raises
:class:`ExportValueError` for a value that file format cannot carry at all (a NUL, a newline in a
path). The tests check the round trips against systemd-analyze, supervisord and sh themselves.
"""

from __future__ import annotations

import shlex

from procman.errors import ConfigError, excerpt


class ExportValueError(ConfigError):
    """A value that the exported file format cannot hold."""


_SYSTEMD_ESCAPES = {"\\": "\\\\", '"': '\\"', "%": "%%", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _systemd_char(char: str, dollars: bool) -> str:
    if char in _SYSTEMD_ESCAPES:
        return _SYSTEMD_ESCAPES[char]
    if char == "$" and dollars:
        return "$$"
    if ord(char) < 0x20 or ord(char) == 0x7F:
        return f"\\x{ord(char):02x}"
    return char


def _no_nul(value: str, what: str) -> None:
    if "\x00" in value:
        raise ExportValueError(f"{what} contains a NUL character", "remove it")


def systemd_word(value: str, what: str = "a value") -> str:
    """``value`` as one double-quoted word of a systemd command line (``ExecStart=``): systemd
    unquotes it, undoes C escapes, turns ``%%`` into ``%`` and, when it runs the command, ``$$``
    into ``$``: the program gets ``value`` itself."""
    _no_nul(value, what)
    return '"' + "".join(_systemd_char(char, dollars=True) for char in value) + '"'


def systemd_assignment(name: str, value: str, what: str = "a value") -> str:
    """``"NAME=value"`` for ``Environment=``: quoted, C-escaped, ``%`` doubled (systemd does not
    expand ``$`` there, so it stays as it is)."""
    _no_nul(value, what)
    escaped = "".join(_systemd_char(char, dollars=False) for char in f"{name}={value}")
    return f'"{escaped}"'


def systemd_path(path: str, what: str = "a path") -> str:
    """A path for ``WorkingDirectory=`` or ``append:``: taken to the end of the line, with
    specifiers: ``%`` doubled. A newline cannot be written there."""
    _no_nul(path, what)
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        raise ExportValueError(
            f"{what} {excerpt(path)!r} contains a control character (a newline?)",
            "use a path without one",
        )
    return path.replace("%", "%%")


def systemd_text(text: str, what: str = "a value") -> str:
    """Free text such as ``Description=``: ``%`` doubled, control characters as spaces."""
    _no_nul(text, what)
    return "".join(" " if ord(char) < 0x20 else char for char in text).replace("%", "%%")


def supervisor_word(value: str, what: str = "a value") -> str:
    """``value`` as one word of a supervisord ``command=``: supervisord first expands ``%(...)s``
    (so ``%`` is doubled), its config reader cuts a line at a `` ;`` or `` #`` (so no whitespace
    is left bare: every character but letters, digits and ``_-./=:,+@`` is escaped with a
    backslash, and whitespace at the end, which it would strip, is quoted), then it splits the
    command the way ``shlex.split`` does."""
    _no_nul(value, what)
    if "\n" in value or "\r" in value:
        raise ExportValueError(
            f"{what} {excerpt(value)!r} contains a newline, which a supervisord command line "
            "cannot carry",
            "put it on one line",
        )
    if not value:
        return "''"
    body = value.rstrip()
    trailing = value[len(body) :]  # the config reader strips it: quoted instead of escaped
    escaped = "".join(
        char if char.isalnum() or char in "_-./=:,+@" else "\\" + char for char in body
    ).replace("%", "%%")
    return escaped + (f"'{trailing}'" if trailing else "")


def supervisor_path(path: str, what: str = "a path") -> str:
    """A path for ``directory=`` or ``stdout_logfile=``: ``%`` doubled; no control characters,
    and no `` ;`` or `` #`` (the config reader would cut the line there)."""
    checked = systemd_path(path, what)
    if " ;" in path or " #" in path or "\t;" in path or "\t#" in path:
        raise ExportValueError(
            f"{what} {path!r} has ';' or '#' after a space, where supervisord's config reader "
            "starts a comment",
            "use a path without one",
        )
    return checked


def shell_quote(value: str, what: str = "a value") -> str:
    """``value`` as one word for ``sh`` (``shlex.quote``, honcho's ``shellquote`` filter): any
    value but a NUL survives, newlines included."""
    _no_nul(value, what)
    return shlex.quote(value)
