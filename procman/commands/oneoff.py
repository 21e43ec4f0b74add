"""``procman run --env ENV COMMAND...``: a one-off command on a host of a deployed environment
(``procman.deploy.oneoff``), on a pseudo-terminal when run from a terminal (which is put in raw
mode meanwhile, so that Ctrl-C reaches the remote command, and restored after)."""

from __future__ import annotations

import os
import sys
import termios
import tty
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from procman.commands.observe import EnvironmentOptions, load_environment
from procman.deploy.connect import ssh_connector
from procman.deploy.host import DeployHost
from procman.deploy.oneoff import choose_host, run_one_off
from procman.deploy.transport.base import Terminal
from procman.errors import UsageError


@dataclass(frozen=True, slots=True)
class RunOptions:
    environment: EnvironmentOptions
    command: tuple[str, ...]
    host: str | None = None
    """A host of the environment; None for the first one with the role the command needs."""
    tty: bool | None = None
    """A pseudo-terminal: None for one when standard input and output are terminals."""


def run(options: RunOptions) -> int:
    """The command's exit status."""
    if not options.command:
        raise UsageError("no command given", "write it after run, like 'procman run python -V'")
    config, environment = load_environment(options.environment)
    chosen = choose_host(environment, options.command, options.host)
    connect = ssh_connector(config)
    want_tty = options.tty if options.tty is not None else _on_terminal()
    host = DeployHost(chosen, environment, connect(chosen, environment), shared=config.shared)
    try:
        if not want_tty:
            return run_one_off(host, options.command, None)
        with _raw_terminal():
            return run_one_off(host, options.command, _terminal(), _size)
    finally:
        host.transport.close()


def _on_terminal() -> bool:
    return os.isatty(0) and os.isatty(1)


def _size() -> tuple[int, int]:
    try:
        size = os.get_terminal_size(1)
    except OSError:
        return 80, 24
    return size.columns, size.lines


def _terminal() -> Terminal:
    columns, rows = _size()
    return Terminal(os.environ.get("TERM", "xterm"), columns, rows)


@contextmanager
def _raw_terminal() -> Iterator[None]:
    """Standard input in raw mode (keys, Ctrl-C among them, go to the remote terminal as they
    are typed), restored afterwards whatever happens."""
    if not os.isatty(0):
        yield
        return
    saved = termios.tcgetattr(0)
    try:
        tty.setraw(0)
        yield
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)
        sys.stdout.flush()
