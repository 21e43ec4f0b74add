"""Formations (how many instances of each process type) and the instances they expand to."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from procman.errors import ConfigError, FormationError, UsageError, did_you_mean, excerpt, flag_of
from procman.procfile import Procfile

ALL = "all"
DEFAULT_PORT = 5000
MAX_PORT = 65535
PORT_STEP = 100
MAX_INSTANCES = 1000
"""Instances of one type: a guard against a typo such as ``worker=60000``, which would fork the
machine out of memory. (Past 100 a type's ports run into the next type's, as in foreman.)"""
_ENTRY = re.compile(r"(?P<name>[A-Za-z0-9_-]+)\s*=\s*(?P<count>\S*)")


@dataclass(frozen=True, slots=True)
class Instance:
    """One process to run: ``web.2`` is instance 2 of type ``web``."""

    type: str
    number: int
    command: str
    port: int

    @property
    def name(self) -> str:
        return f"{self.type}.{self.number}"


def parse_formation(spec: str, option: str = flag_of("formation")) -> dict[str, int]:
    """Parse ``all=1,web=2,worker=3`` into counts; ``all`` sets the default for unnamed types."""
    counts: dict[str, int] = {}
    for raw in spec.split(","):
        part = raw.strip()
        if not part:
            continue
        match = _ENTRY.fullmatch(part)
        if match is None:
            raise FormationError(
                f"{option}: cannot read '{excerpt(part)}'",
                "write TYPE=COUNT pairs separated by commas, like 'web=2,worker=3' or 'all=1'",
            )
        name, count = match["name"], match["count"]
        if not count.isascii() or not count.isdigit():
            raise FormationError(
                f"{option}: count for {name!r} must be a whole number 0 or more, "
                f"got '{excerpt(count)}'",
                f"write it like '{name}=2'",
            )
        if len(count.lstrip("0")) > len(str(MAX_PORT)) or int(count) > MAX_PORT:
            raise FormationError(
                f"{option}: count for {name!r} is {excerpt(count)}, more than the {MAX_PORT} "
                "ports there are",
                f"write a smaller count, like '{name}=2'",
            )
        if name in counts:
            raise FormationError(f"{option}: {name!r} is given twice", "give each type once")
        counts[name] = int(count)
    if not counts:
        raise FormationError(f"{option}: is empty", "write TYPE=COUNT pairs like 'web=2,worker=3'")
    return counts


def unknown_type_hint(name: str, procfile: Procfile, more: str = "") -> str:
    """What to say about a process type the Procfile lacks: the closest name, and all of them."""
    return did_you_mean(
        name, procfile.names, f"{procfile.path} defines: {', '.join(procfile.names)}{more}"
    )


def check_types(counts: Mapping[str, int], procfile: Procfile, option: str) -> None:
    """Reject counts for types the Procfile does not define."""
    for name in counts:
        if name != ALL and procfile.get(name) is None:
            raise FormationError(
                f"{option}: unknown process type {name!r}",
                did_you_mean(
                    name, procfile.names, f"{procfile.path} defines: {', '.join(procfile.names)}"
                ),
            )


def check_names(names: Iterable[str], procfile: Procfile) -> None:
    """Reject process names (as given to ``procman start NAME...``) the Procfile lacks."""
    for name in names:
        if procfile.get(name) is None:
            raise UsageError(
                f"unknown process type {name!r}",
                did_you_mean(
                    name, procfile.names, f"{procfile.path} defines: {', '.join(procfile.names)}"
                ),
            )


def check_port(
    port: int, option: str = flag_of("port"), error: type[ConfigError] = UsageError
) -> int:
    if not 1 <= port <= MAX_PORT:
        raise error(f"{option}: port {port} is out of range", "use a port from 1 to 65535")
    return port


def expand(
    procfile: Procfile,
    counts: Mapping[str, int],
    base_port: int,
    only: Iterable[str] = (),
) -> list[Instance]:
    """The instances to run, in Procfile order, with ports by foreman's rule."""
    selected = set(only)
    instances: list[Instance] = []
    for position, process in enumerate(procfile.processes):
        if selected and process.name not in selected:
            continue
        count = counts.get(process.name, counts.get(ALL, 1))
        if count > MAX_INSTANCES:
            raise FormationError(
                f"{process.name}: {count} instances is more than the {MAX_INSTANCES} a type may "
                "have",
                "ask for fewer; for more, split the type into two Procfile entries",
            )
        for number in range(1, count + 1):
            port = base_port + PORT_STEP * position + number - 1
            if port > MAX_PORT:
                raise FormationError(
                    f"{process.name}.{number} would get port {port}, above {MAX_PORT}",
                    f"pass a lower base port with {flag_of('port')} or fewer instances",
                )
            instances.append(
                Instance(type=process.name, number=number, command=process.command, port=port)
            )
    return instances


_CHANGE = re.compile(r"(?P<name>[A-Za-z0-9_-]+)\s*(?P<op>[=+-])\s*(?P<amount>\S*)")


@dataclass(frozen=True, slots=True)
class ScaleChange:
    """``web=3`` sets a count; ``worker+1`` and ``worker-1`` change it."""

    type: str
    op: str
    amount: int

    def __str__(self) -> str:
        return f"{self.type}{self.op}{self.amount}"


def parse_scale(specs: Iterable[str]) -> list[ScaleChange]:
    changes: list[ScaleChange] = []
    for spec in specs:
        for raw in spec.split(","):
            part = raw.strip()
            if not part:
                continue
            match = _CHANGE.fullmatch(part)
            if match is None:
                raise FormationError(
                    f"cannot read '{excerpt(part)}'",
                    "write TYPE=N, TYPE+N or TYPE-N, like 'worker=3' or 'worker+1'",
                )
            amount = match["amount"]
            if not amount.isascii() or not amount.isdigit():
                raise FormationError(
                    f"{excerpt(part)}: the count must be a whole number 0 or more",
                    f"write it like '{match['name']}=2' or '{match['name']}+1'",
                )
            if len(amount.lstrip("0")) > len(str(MAX_PORT)) or int(amount) > MAX_PORT:
                raise FormationError(
                    f"{excerpt(part)}: {excerpt(amount)} is more than the {MAX_PORT} ports there "
                    "are",
                    f"write a smaller count, like '{match['name']}=2'",
                )
            changes.append(ScaleChange(match["name"], match["op"], int(amount)))
    if not changes:
        raise FormationError("no change given", "write TYPE=N, like 'procman scale worker=3'")
    return changes


def apply_scale(current: Mapping[str, int], changes: Iterable[ScaleChange]) -> dict[str, int]:
    """The formation after ``changes``; a count below zero is an error, nothing half-applied."""
    counts = dict(current)
    for change in _expand_all(changes, counts):
        before = counts.get(change.type, 0)
        if change.op == "=":
            after = change.amount
        elif change.op == "+":
            after = before + change.amount
        else:
            after = before - change.amount
        if after < 0:
            raise FormationError(
                f"{change}: {change.type} has {before} instance{'s' if before != 1 else ''}, "
                "cannot go below 0",
                f"use '{change.type}=0' to stop them all",
            )
        counts[change.type] = after
    return counts


def resolve_counts(procfile: Procfile, counts: Mapping[str, int]) -> dict[str, int]:
    """Explicit counts for every type: ``all=N`` and missing types filled in (default 1)."""
    default = counts.get(ALL, 1)
    return {name: counts.get(name, default) for name in procfile.names}


def format_formation(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name}={count}" for name, count in counts.items())


def scaled(
    procfile: Procfile, current: Mapping[str, int], changes: Iterable[ScaleChange], base_port: int
) -> dict[str, int]:
    """The formation after ``changes``, checked against the Procfile and the port range."""
    counts = apply_scale(current, changes)
    check_types(counts, procfile, "scale")
    try:
        expand(procfile, counts, base_port)
    except FormationError as error:
        raise FormationError(error.message, "ask for fewer instances") from None
    return counts


def _expand_all(changes: Iterable[ScaleChange], counts: Mapping[str, int]) -> list[ScaleChange]:
    """``all=2`` (or ``all+1``) is the same change for every type in ``counts``."""
    expanded: list[ScaleChange] = []
    for change in changes:
        if change.type == ALL:
            expanded += [ScaleChange(name, change.op, change.amount) for name in counts]
        else:
            expanded.append(change)
    return expanded
