"""Procfile parsing: ``name: command`` per line, as foreman and honcho read it, but strict.

A malformed line, a duplicate name or an empty file is an error naming ``file:line``; nothing is
skipped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from procman.errors import ProcfileError, ProcmanError, excerpt, flag_of, raise_collected
from procman.textfile import FileWords, read_text

NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
RESERVED_NAMES = {
    "all": f"'all' means every type in {flag_of('formation')}, scale and {flag_of('restart')}; "
    "rename it",
    "system": "procman's own lines in the log are prefixed 'system'; rename it",
}
"""Names procman gives a meaning of its own, with the hint for a Procfile that uses one."""
_LINE = re.compile(r"(?P<name>[^:\s]*)\s*:(?P<command>.*)")
EXAMPLE_LINE = "web: python -m http.server $PORT"


@dataclass(frozen=True, slots=True)
class ProcessType:
    name: str
    command: str
    line: int


@dataclass(frozen=True, slots=True)
class Procfile:
    path: str
    processes: tuple[ProcessType, ...]

    @property
    def names(self) -> list[str]:
        return [process.name for process in self.processes]

    def get(self, name: str) -> ProcessType | None:
        for process in self.processes:
            if process.name == name:
                return process
        return None

    def position(self, name: str) -> int:
        return self.names.index(name)


def parse_procfile(text: str, path: str = "Procfile") -> Procfile:
    """Parse Procfile text; raise ProcfileError (or ManyErrors) naming every bad line."""
    errors: list[ProcmanError] = []
    processes: list[ProcessType] = []
    first_line: dict[str, int] = {}
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{path}:{number}"
        match = _LINE.fullmatch(line)
        if match is None:
            errors.append(
                ProcfileError(
                    f"{where}: expected 'name: command', got '{excerpt(line)}'",
                    f"write it like '{EXAMPLE_LINE}', or comment it out with '#'",
                )
            )
            continue
        name, command = match["name"], match["command"].strip()
        if not name:
            errors.append(
                ProcfileError(
                    f"{where}: missing process name before ':'",
                    f"name the process, like '{EXAMPLE_LINE}'",
                )
            )
            continue
        if not NAME_PATTERN.fullmatch(name):
            errors.append(
                ProcfileError(
                    f"{where}: bad process name {name!r}",
                    "names may use only letters, digits, '_' and '-'",
                )
            )
            continue
        if name in RESERVED_NAMES:
            errors.append(
                ProcfileError(f"{where}: {name!r} cannot name a process type", RESERVED_NAMES[name])
            )
            continue
        if not command:
            errors.append(
                ProcfileError(
                    f"{where}: process {name!r} has no command",
                    f"give it one after the colon, like '{EXAMPLE_LINE}'",
                )
            )
            continue
        if "\x00" in command:
            errors.append(
                ProcfileError(
                    f"{where}: the command for {name!r} contains a NUL character",
                    "remove it; a command line cannot carry one",
                )
            )
            continue
        if name in first_line:
            errors.append(
                ProcfileError(
                    f"{where}: duplicate process name {name!r}, first defined on line "
                    f"{first_line[name]}",
                    "rename or remove one of them",
                )
            )
            continue
        first_line[name] = number
        processes.append(ProcessType(name=name, command=command, line=number))
    if not processes and not errors:
        errors.append(
            ProcfileError(
                f"{path}: defines no processes",
                f"add a line like '{EXAMPLE_LINE}'",
            )
        )
    raise_collected(errors)
    return Procfile(path=path, processes=tuple(processes))


PROCFILE_WORDS = FileWords(
    missing="no such file",
    missing_hint="create a Procfile with lines like "
    f"'{EXAMPLE_LINE}', or point to one with {flag_of('procfile')}",
    directory_hint=f"pass the Procfile itself to {flag_of('procfile')}",
    encoding_hint="save the Procfile as UTF-8 text",
)


def load_procfile(path: Path) -> Procfile:
    """Read and parse the Procfile at ``path``."""
    text = read_text(path, ProcfileError, PROCFILE_WORDS)
    return parse_procfile(text, str(path))
