"""The CLI's lazily loaded commands: every entry resolves, and ``start`` loads none of them."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from procman.cli.commands import LAZY_COMMANDS, cli


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_each_lazy_command_resolves_to_a_command_of_that_name(name: str) -> None:
    with click.Context(cli) as ctx:
        command = cli.get_command(ctx, name)
    assert isinstance(command, click.Command)
    assert command.name == name


def test_help_lists_the_lazy_commands_with_the_others() -> None:
    with click.Context(cli) as ctx:
        names = cli.list_commands(ctx)
    assert names == sorted(names)
    assert {"start", "check", "run", *LAZY_COMMANDS} == set(names)


def test_resolving_start_imports_no_other_command_module() -> None:
    script = (
        "import sys, click\n"
        "from procman.cli.commands import cli\n"
        "with click.Context(cli) as ctx:\n"
        "    cli.get_command(ctx, 'start')\n"
        "print(sorted(m for m in sys.modules if m.startswith('procman.cli.')))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert loaded.strip() == "['procman.cli.commands', 'procman.cli.lazy']"
