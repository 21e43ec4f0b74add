"""Settings, read from the environment that procman builds from examples/.env."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    database: Path
    ttl: float
    """Seconds a snippet is kept."""
    interval: float
    """Seconds between two runs of the clock's clean-up."""


def load_settings(environ: Mapping[str, str] = os.environ) -> Settings:
    return Settings(
        database=Path(environ.get("SNIPPETS_DB", "snippets.db")),
        ttl=_seconds(environ, "SNIPPET_TTL", 86400),
        interval=_seconds(environ, "CLOCK_INTERVAL", 60),
    )


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise SystemExit(f"{name}={raw!r} must be above 0")
    return value
