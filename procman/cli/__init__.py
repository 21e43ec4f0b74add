"""The ``procman`` command. The only package that imports click.

``main`` is the one error funnel: library code raises ProcmanError; here it becomes
``procman: error: ...`` and an exit status. A traceback is shown only with ``--traceback``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from procman.cli.commands import cli
from procman.errors import ManyErrors, ProcmanError
from procman.exitcodes import ExitStatus


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        args = ["--help"]  # bare 'procman' shows what it can do, as git and heroku do (exit 0)
    before_command = args[: next((i for i, a in enumerate(args) if not a.startswith("-")), None)]
    show_traceback = "--traceback" in before_command or bool(os.environ.get("PROCMAN_TRACEBACK"))
    try:
        result = cli.main(args=args, prog_name="procman", standalone_mode=False)
    except ProcmanError as error:
        if show_traceback:
            _print_traceback()
        from procman.cli.flags import speller_for_args  # only on errors: keeps starts light

        spell_option = speller_for_args(cli, args)
        for each in error.errors if isinstance(error, ManyErrors) else [error]:
            _print_error(each.render(spell_option))
        return int(error.exit_status)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.exceptions.Abort:
        return int(ExitStatus.SIGINT)
    except click.UsageError as error:
        if show_traceback:
            _print_traceback()
        command = error.ctx.command_path if error.ctx else "procman"
        _print_error(f"{error.format_message()} (see '{command} --help')")
        return int(ExitStatus.USAGE)
    except click.ClickException as error:
        _print_error(error.format_message())
        return error.exit_code
    except KeyboardInterrupt:
        return int(ExitStatus.SIGINT)
    return result if isinstance(result, int) else int(ExitStatus.OK)


def _print_error(message: str) -> None:
    sys.stderr.write(f"procman: error: {message}\n")
    sys.stderr.flush()


def _print_traceback() -> None:
    import traceback  # only for --traceback: keeps every start a few ms faster

    traceback.print_exc()
