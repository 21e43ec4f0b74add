"""Which commands get ``exec`` in front: only those where it cannot change what runs."""

from __future__ import annotations

import pytest

from procman.supervisor.spawn import shell_command


@pytest.mark.parametrize(
    "command",
    [
        "gunicorn -b 127.0.0.1:$PORT app:app",
        "python -m worker > worker.log 2>&1",
        'python -c "print(1); print(2)"',
        "echo 'a;b && c'",
    ],
)
def test_simple_commands_are_execed(command: str) -> None:
    assert shell_command(command) == f"exec {command}"


@pytest.mark.parametrize(
    "command",
    [
        "echo a; echo b",
        "a && b",
        "a || b",
        "a | b",
        "sleep 1 &",
        "(cd x; y)",
        "while :; do x; done",
        "FOO=1 python app.py",
        "cd web && exec gunicorn app:app",
        "exec gunicorn app:app",
        "trap '' TERM; sleep 1",
        "echo 'unbalanced",
        "echo $(date)",
        "",
    ],
)
def test_everything_else_is_left_as_written(command: str) -> None:
    assert shell_command(command) == command
