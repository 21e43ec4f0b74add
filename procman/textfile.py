"""Reading a config file as text, with the same precise errors for every kind of file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from procman.errors import ConfigError


@dataclass(frozen=True, slots=True)
class FileWords:
    """What to tell the user about one kind of file when it cannot be read."""

    missing: str
    """Follows ``PATH: ``, e.g. ``no such file``."""
    missing_hint: str
    directory_hint: str
    encoding_hint: str = "save the file as UTF-8 text"


def read_text(path: Path, error: type[ConfigError], words: FileWords) -> str:
    """The file's text (UTF-8, a BOM dropped); ``error`` naming the path (and the line of a bad
    byte) when it is missing, a directory, unreadable or not UTF-8."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: {words.missing}", words.missing_hint) from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory", words.directory_hint) from None
    except OSError as problem:
        raise error(f"{path}: cannot read: {problem.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as problem:
        line = data[: problem.start].count(b"\n") + 1
        raise error(f"{path}:{line}: not valid UTF-8", words.encoding_hint) from None
