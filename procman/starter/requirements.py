"""The names of an app's dependencies, from ``requirements.txt`` or ``pyproject.toml``.

Only the names matter here (is gunicorn there? rq?), normalised as PEP 503 does: lower case, runs
of ``-``, ``_`` and ``.`` as one ``-``. Lines that are not requirements (options, URLs, includes)
are ignored; nothing here raises on malformed text.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_SEPARATORS = re.compile(r"[-_.]+")


def normalise(name: str) -> str:
    return _SEPARATORS.sub("-", name).lower()


def requirement_name(line: str) -> str | None:
    """The project name a requirement line names (``gunicorn>=21; python_version>'3'`` ->
    ``gunicorn``); None for blank lines, comments, options (``-r``, ``-e``) and URLs."""
    text = line.split(" #", 1)[0].strip()
    if not text or text.startswith(("#", "-")) or "://" in text.split("@", 1)[0]:
        return None
    match = _NAME.match(text)
    return normalise(match.group()) if match else None


def names_in_requirements(text: str) -> frozenset[str]:
    return frozenset(
        name for line in text.splitlines() if (name := requirement_name(line)) is not None
    )


def names_in_pyproject(text: str) -> frozenset[str]:
    """Dependency names of ``[project]`` (with its optional dependencies) and of Poetry's
    ``[tool.poetry]`` tables; none when the file is not valid TOML."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return frozenset()
    lines: list[str] = []
    project = _table(document.get("project"))
    lines += _strings(project.get("dependencies"))
    for group in _table(project.get("optional-dependencies")).values():
        lines += _strings(group)
    poetry = _table(_table(document.get("tool")).get("poetry"))
    for table in [poetry.get("dependencies"), poetry.get("dev-dependencies")]:
        lines += [key for key in _table(table) if isinstance(key, str)]
    for group in _table(poetry.get("group")).values():
        lines += [key for key in _table(_table(group).get("dependencies")) if isinstance(key, str)]
    return frozenset(name for line in lines if (name := requirement_name(line)) is not None)


def _table(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []
