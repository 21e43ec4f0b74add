"""How the CLI spells the options that library messages refer to (``errors.flag_of``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import click

from procman.errors import option_in_words


def flag_speller(command: click.Command) -> Callable[[str], str]:
    """Spells an option reference as ``command``'s flags, e.g. ``port`` -> ``-p/--port``."""
    flags: dict[str, str] = {}
    for param in command.params:
        if isinstance(param, click.Option) and param.name:
            shorts = [opt for opt in param.opts if not opt.startswith("--")]
            longs = [opt for opt in param.opts if opt.startswith("--")]
            spelled = "/".join(shorts[:1] + longs[:1])  # -e/--env, not -e/--env/--env-file
            # By the option's destination (``env_files``) and by its long name (``--release``,
            # whose value lands in ``release_id``).
            flags[param.name] = spelled
            for opt in param.opts:
                if opt.startswith("--"):
                    flags.setdefault(opt[2:].replace("-", "_"), spelled)
    return lambda name: flags.get(name) or option_in_words(name)


def speller_for_args(group: click.Group, args: Sequence[str]) -> Callable[[str], str]:
    """``flag_speller`` of the (sub)command that ``args`` name under ``group``."""
    command: click.Command = group
    context = click.Context(group)
    for word in args:
        if not isinstance(command, click.Group):
            break
        if word.startswith("-"):
            continue
        subcommand = command.get_command(context, word)
        if subcommand is None:
            break
        command = subcommand
    return flag_speller(command)


def current_speller() -> Callable[[str], str]:
    """``flag_speller`` of the command running now (for lines printed while it runs)."""
    context = click.get_current_context(silent=True)
    if context is None:
        return option_in_words
    return flag_speller(context.command)
