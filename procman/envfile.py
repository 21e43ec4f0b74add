"""``.env`` files: python-dotenv's parser, with malformed lines reported instead of skipped.

Semantics: ``KEY=value``, optional ``export``, single quotes (literal), double quotes (escapes),
``#`` comments, blank lines and ``${VAR}`` / ``${VAR:-default}`` expansion. Expansion sees the
values defined earlier in the same or an earlier file first, then the shell environment; values
from env files win over the shell, as in foreman and honcho.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from procman.errors import EnvFileError, ProcmanError, collect, excerpt, flag_of, raise_collected
from procman.textfile import FileWords, read_text

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SINGLE_QUOTED = re.compile(r"\s*(?:export\s+)?(?:'[^']*'|[^=#\s]+)\s*=\s*'")


@dataclass(frozen=True, slots=True)
class EnvFile:
    path: str
    values: Mapping[str, str]


def parse_env(text: str, path: str = ".env", base: Mapping[str, str] | None = None) -> EnvFile:
    """Parse env-file text; ``base`` resolves ``${VAR}`` not defined in the file itself."""
    from dotenv.parser import parse_stream  # imported here: most starts have no env file
    from dotenv.variables import parse_variables

    errors: list[ProcmanError] = []
    values: dict[str, str] = {}
    lookup: dict[str, str] = dict(base or {})
    for binding in parse_stream(io.StringIO(text)):
        original = binding.original.string
        leading = original[: len(original) - len(original.lstrip())]
        line = (
            binding.original.line
            + leading.count("\n")
            + leading.count("\r")
            - leading.count("\r\n")
        )
        where = f"{path}:{line}"
        statement = original.strip()
        if binding.error:
            errors.append(
                EnvFileError(
                    f"{where}: cannot parse '{excerpt(statement)}'",
                    "write KEY=value; quote values with spaces or '#'",
                )
            )
            continue
        if binding.key is None:
            continue
        if binding.value is None:
            errors.append(
                EnvFileError(
                    f"{where}: {binding.key!r} has no '='",
                    f"write {binding.key}=value, or {binding.key}= for an empty value",
                )
            )
            continue
        if not _NAME.fullmatch(binding.key):
            errors.append(
                EnvFileError(
                    f"{where}: {excerpt(binding.key)!r} is not a variable name",
                    "names use letters, digits and '_' and do not start with a digit",
                )
            )
            continue
        if "\x00" in binding.value:
            errors.append(EnvFileError(f"{where}: contains a NUL character", "remove it"))
            continue
        if _SINGLE_QUOTED.match(original.lstrip()):
            value = binding.value
        else:
            value = "".join(atom.resolve(lookup) for atom in parse_variables(binding.value))
        values[binding.key] = value
        lookup[binding.key] = value
    raise_collected(errors)
    return EnvFile(path=path, values=values)


def load_env_files(paths: Sequence[Path], shell: Mapping[str, str]) -> dict[str, str]:
    """The variables the env files define, later files winning; ``shell`` only feeds expansion."""
    merged: dict[str, str] = {}
    errors: list[ProcmanError] = []
    for path in paths:
        env_file = collect(
            lambda path=path: parse_env(_read(path), str(path), {**shell, **merged}),  # type: ignore[misc]
            errors,
        )
        if env_file is not None:
            merged.update(env_file.values)
    raise_collected(errors)
    return merged


ENV_FILE_WORDS = FileWords(
    missing="no such env file",
    missing_hint=f"check the path given to {flag_of('env_files')}",
    directory_hint=f"pass a file to {flag_of('env_files')}",
    encoding_hint="save the file as UTF-8",
)


def _read(path: Path) -> str:
    return read_text(path, EnvFileError, ENV_FILE_WORDS)
