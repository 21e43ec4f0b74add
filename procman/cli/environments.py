"""``--env ENV``: the day-two commands that work both here and on a deployed environment (logs,
scale, restart, run) take the environment's name with ``--env`` and an env file with ``-e FILE``
/ ``--env-file FILE``.

``environment_app_options`` declares them (with the app options -f, -d, -p and the deploy file
-C); ``local_only`` refuses app options given with ``--env``; ``naming_environment`` turns an
environment procman.yml does not have into one line listing the ones it has and saying that env
files go with ``-e``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from procman.cli.commands import (
    QuietAlias,
    env_file_option,
    port_option,
    procfile_option,
    root_option,
    with_options,
)
from procman.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])


environment_option = click.option(
    "--env",
    "--environment",
    "environment",
    cls=QuietAlias,
    metavar="ENV",
    help="Instead of the app running here: the deployed environment ENV of procman.yml.",
)
config_option = click.option(
    "-C",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=Path("procman.yml"),
    show_default=True,
    help="With --env: the deploy file.",
)


def environment_app_options(command: F) -> F:
    """-f, -d, -e/--env-file, -p for the app running here; --env ENV and -C for a deployed
    environment instead."""
    return with_options(
        command,
        [
            procfile_option,
            root_option,
            env_file_option,
            port_option,
            environment_option,
            config_option,
        ],
    )


def local_only(environment: str, given: Mapping[str, object]) -> None:
    """With ``--env``, options that only mean something for the app running here are an error:
    ``given`` maps each such option's flags (``-e/--env-file``) to its value."""
    used = [flag for flag, value in given.items() if value not in (None, (), False, "")]
    if used:
        raise UsageError(
            f"{', '.join(used)}: for the app running here, not with --env {environment}",
            "leave them out: the environment's hosts have their own files",
        )


@contextmanager
def naming_environment(name: str | None, config_path: Path) -> Iterator[None]:
    """Inside: an environment that procman.yml does not have (or no procman.yml at all) is a
    usage error saying which environments there are and that env files go with ``-e``."""
    if name is None:
        yield
        return
    env_file_hint = f"an env file goes with -e {name} or --env-file {name}"
    if not config_path.exists():
        raise UsageError(
            f"--env {name}: there is no {config_path} naming deployed environments",
            f"{env_file_hint}; to deploy, write {config_path} (see docs/deploy.md)",
        )
    from procman.deploy.config import UnknownEnvironment

    try:
        yield
    except UnknownEnvironment as error:
        if error.name != name:
            raise
        known = ", ".join(error.known) or "none"
        raise UsageError(
            f"--env {name}: {config_path} has no environment named {name!r} "
            f"(environments: {known})",
            env_file_hint,
        ) from None
