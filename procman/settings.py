"""The app procman works on: where its Procfile, directory and env files are, and its environment.

Everything here is resolved and validated before the first process starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from procman.envfile import load_env_files
from procman.errors import ConfigError, UsageError, excerpt, flag_of
from procman.formation import DEFAULT_PORT, MAX_PORT, check_port
from procman.procfile import Procfile, load_procfile

DEFAULT_ENV_FILE = ".env"
VERBOSE_VARIABLE = "PROCMAN_VERBOSE"
"""Set to 1 in every process by ``procman start -v``: procman's own children (the worker) then log
everything."""
STOP_TIMEOUT_VARIABLE = "PROCMAN_STOP_TIMEOUT"
"""``procman start``'s ``-t`` in seconds, in every process: the longest a warm stop can last."""


@dataclass(frozen=True, slots=True)
class AppOptions:
    """What the user told us on the command line; ``None`` means "use the default"."""

    procfile: Path | None = None
    root: Path | None = None
    env_files: tuple[Path, ...] = ()
    port: int | None = None


@dataclass(frozen=True, slots=True)
class App:
    root: Path
    procfile_path: Path
    env_files: tuple[Path, ...]
    env: Mapping[str, str]
    """Variables from the env files only (the shell environment is added at spawn time)."""
    base_port: int
    shell: Mapping[str, str] = field(repr=False)

    def process_env(
        self, extra: Mapping[str, str] | None = None, *, unbuffered: bool = True
    ) -> dict[str, str]:
        """The environment a child gets: shell, then env files, then ``extra`` (PORT, PS).

        Supervised children write to a pipe, where Python would buffer its output for minutes;
        ``unbuffered`` sets PYTHONUNBUFFERED=1 unless the environment already decides.
        """
        env = {**self.shell, **self.env, **(extra or {})}
        if unbuffered:
            env.setdefault("PYTHONUNBUFFERED", "1")
        return env


def procfile_path(options: AppOptions) -> Path:
    if options.procfile is not None:
        return options.procfile
    return (options.root or Path(".")) / "Procfile"


def app_root(options: AppOptions) -> Path:
    return (options.root or procfile_path(options).parent).resolve()


def env_file_paths(options: AppOptions) -> tuple[Path, ...]:
    """Files given with -e must exist; the default ``.env`` in the app directory is optional."""
    if options.env_files:
        return options.env_files
    default = app_root(options) / DEFAULT_ENV_FILE
    return (default,) if default.exists() else ()


def check_root(options: AppOptions) -> None:
    """``-d`` must name a directory (checked first: every other path is under it)."""
    if options.root is not None and not options.root.is_dir():
        raise UsageError(
            f"{flag_of('root')}: {options.root.resolve()} is not a directory",
            "pass the app's directory",
        )


def load_app(options: AppOptions, shell: Mapping[str, str] | None = None) -> App:
    """Resolve the app's paths and environment; raise every problem found (env files, port)."""
    shell = dict(os.environ if shell is None else shell)
    root = app_root(options)
    check_root(options)
    env_files = env_file_paths(options)
    env = load_env_files(env_files, shell)
    return App(
        root=root,
        procfile_path=procfile_path(options),
        env_files=env_files,
        env=env,
        base_port=_base_port(options, env, shell, env_files),
        shell=shell,
    )


def load_procfile_for(app: App) -> Procfile:
    return load_procfile(app.procfile_path)


def _base_port(
    options: AppOptions,
    env: Mapping[str, str],
    shell: Mapping[str, str],
    env_files: Sequence[Path],
) -> int:
    if options.port is not None:
        return check_port(options.port)
    for source, values in (
        (" or ".join(str(p) for p in env_files), env),
        ("the environment", shell),
    ):
        raw = values.get("PORT")
        if raw is None or raw == "":
            continue
        digits = raw.strip()
        if not digits.isascii() or not digits.isdigit():
            raise ConfigError(
                f"PORT={raw!r} from {source} is not a port number",
                f"set PORT to a number from 1 to 65535, or pass {flag_of('port')}",
            )
        if len(digits.lstrip("0")) > len(str(MAX_PORT)):  # int() refuses over 4300 digits
            raise ConfigError(
                f"PORT from {source}: port {excerpt(digits)} is out of range",
                "use a port from 1 to 65535",
            )
        return check_port(int(digits), f"PORT from {source}", ConfigError)
    return DEFAULT_PORT
