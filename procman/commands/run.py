"""``procman run``: one command with the app's environment, replacing procman (foreman run)."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from typing import NoReturn

from procman.commands import path_with_own_procman
from procman.errors import UsageError
from procman.procfile import load_procfile
from procman.rundir import RunDir
from procman.settings import AppOptions, load_app, procfile_path
from procman.supervisor.spawn import shell_command

SHELL = "/bin/sh"


def command_line(argv: Sequence[str], procfile_commands: dict[str, str]) -> str:
    """One argument is shell text (``"echo $PORT"``); several are quoted as given; a lone
    Procfile type name runs that type's command, as in foreman."""
    if len(argv) == 1:
        return procfile_commands.get(argv[0], argv[0])
    return shlex.join(argv)


def run(options: AppOptions, argv: Sequence[str]) -> NoReturn:
    if not argv:
        raise UsageError("no command given", "write it after run, like 'procman run python -V'")
    app = load_app(options)
    path = procfile_path(options)
    commands: dict[str, str] = {}
    if path.exists():
        commands = {p.name: p.command for p in load_procfile(path).processes}
    env = app.process_env({"PORT": str(app.base_port), "PS": "run.1"}, unbuffered=False)
    run_dir = RunDir(app.root)
    env["PATH"] = path_with_own_procman(env.get("PATH", os.defpath), run_dir.path / "bin")
    if not (env.get("REDIS_URL") or env.get("REDIS_PROVIDER")):
        private = run_dir.private_redis_url()  # what the app's processes have as REDIS_URL now
        if private is not None:
            env["REDIS_URL"] = private
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(app.root)
    # exec in front of a simple command: the program replaces the shell (its own exit status,
    # its own signals); "--": a command that starts with "-" is the command, not an option of sh
    os.execve(SHELL, [SHELL, "-c", "--", shell_command(command_line(argv, commands))], env)
