"""The one error family every procman failure belongs to.

Library code raises these; only ``procman.cli.main`` turns them into a message and an exit code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TypeVar

from procman.exitcodes import ExitStatus

T = TypeVar("T")


class ProcmanError(Exception):
    """A failure the user can act on: ``message`` says what, ``hint`` says what to do next."""

    exit_status: ExitStatus = ExitStatus.ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self, spell_option: Callable[[str], str] | None = None) -> str:
        """The message and hint, each ``flag_of(NAME)`` in them spelled by ``spell_option`` (the
        CLI spells them as its flags; library code, which knows no flags, in words)."""
        text = f"{self.message} ({self.hint})" if self.hint else self.message
        return spell_options(text, spell_option)

    def __str__(self) -> str:
        return self.render()


class ConfigError(ProcmanError):
    """A file or option the user wrote is wrong (Procfile, env file, formation, port...)."""


class ProcfileError(ConfigError):
    pass


class EnvFileError(ConfigError):
    pass


class QueueConfigError(ConfigError):
    """The queue YAML (queues.yml) is wrong: bad syntax, an unknown key, a bad value."""


class RedisUrlError(ConfigError):
    """The Redis URL, or the variables it is resolved from (REDIS_PROVIDER, REDIS_URL), is wrong."""


class FormationError(ConfigError):
    """A formation or scale change given on the command line is wrong."""

    exit_status = ExitStatus.USAGE


class UsageError(ConfigError):
    """A command-line argument is wrong."""

    exit_status = ExitStatus.USAGE


class ManyErrors(ConfigError):
    """Several independent problems found while validating; each is reported on its own line."""

    def __init__(self, errors: list[ProcmanError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors

    def render(self, spell_option: Callable[[str], str] | None = None) -> str:
        return "; ".join(error.render(spell_option) for error in self.errors)


_OPTION_REFERENCE = re.compile(r"\{option:([a-z][a-z0-9_]*)\}")


def flag_of(name: str) -> str:
    """A reference, inside an error's message or hint, to the option that sets ``name`` (a field
    of a command's options, e.g. ``allow_dirty``): library code does not know how the CLI spells
    its flags, so ``procman.cli.main`` fills them in (``--allow-dirty``) as it prints the error."""
    return f"{{option:{name}}}"


def option_in_words(name: str) -> str:
    """How an option reference reads where no CLI spells it: ``allow_dirty`` -> ``the
    allow-dirty option``."""
    return f"the {name.replace('_', '-')} option"


def spell_options(text: str, spell_option: Callable[[str], str] | None = None) -> str:
    """``text`` with each ``flag_of(NAME)`` in it spelled by ``spell_option`` (default: words)."""
    spell = spell_option or option_in_words
    return _OPTION_REFERENCE.sub(lambda match: spell(match.group(1)), text)


def excerpt(text: str, limit: int = 60) -> str:
    """The first line of ``text``, cut to ``limit`` characters, for quoting in a message."""
    first = text.splitlines()[0] if text else text
    return first if len(first) <= limit else first[: limit - 3] + "..."


def collect(load: Callable[[], T], errors: list[ProcmanError]) -> T | None:
    """Run ``load``; on a config error, note it in ``errors`` and return None."""
    try:
        return load()
    except ManyErrors as many:
        errors.extend(many.errors)
    except ConfigError as error:
        errors.append(error)
    return None


def raise_collected(errors: list[ProcmanError]) -> None:
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ManyErrors(errors)


def one_line_errors_in_scripts() -> None:
    """Make an uncaught ProcmanError end a plain Python script (``python -c 'enqueue(...)'``) the
    way it ends a procman command: ``procman: error: ...``, exit status 1, no traceback
    (``PROCMAN_TRACEBACK=1`` shows it). A hook someone else installed is left alone."""
    import sys

    if sys.excepthook is not sys.__excepthook__:
        return

    def hook(kind: type[BaseException], error: BaseException, traceback: object) -> None:
        import os

        if isinstance(error, ProcmanError) and not os.environ.get("PROCMAN_TRACEBACK"):
            sys.stderr.write(f"procman: error: {error}\n")
        else:
            sys.__excepthook__(kind, error, traceback)  # type: ignore[arg-type]

    sys.excepthook = hook


def did_you_mean(word: str, known: Iterable[str], then: str) -> str:
    """A hint for a misspelt name: ``did you mean 'web'? then`` when one of ``known`` is close
    (as git and click suggest commands), else ``then`` alone."""
    from difflib import get_close_matches

    close = get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? {then}" if close else then
