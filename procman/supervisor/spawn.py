"""Starting one child: ``sh -c COMMAND`` in its own session, writing to a pipe or a pty."""

from __future__ import annotations

import fcntl
import os
import re
import shlex
import struct
import subprocess
import termios
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SHELL = "/bin/sh"
PIPE_SIZE = 1024 * 1024
"""A bigger pipe lets a fast child run ahead of the reader instead of blocking on every 64 KiB."""


_CONTROL_OPERATORS = {";", "&", "&&", "|", "||", "(", ")", ";;", "|&", "&|"}
_NOT_EXECUTABLE_FIRST = {
    "!", "{", "}", "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done",
    "case", "esac", "exec", "cd", "export", "set", "unset", "trap", "eval", ".", "source",
    "wait", "exit", "return", "shift", "ulimit", "umask", "alias", "readonly", "local",
}  # fmt: skip
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def shell_command(command: str) -> str:
    """The text for ``sh -c``: a simple command gets ``exec`` in front, so the program itself (not
    a waiting shell: dash does not exec the last command) leads the process group, receives our
    signals first and reports its own exit status. Lists, pipelines, compound commands, leading
    assignments and builtins are left as written."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: let sh report it in its own words
        return command
    if not tokens or tokens[0] in _NOT_EXECUTABLE_FIRST or _ASSIGNMENT.match(tokens[0]):
        return command
    if any(token in _CONTROL_OPERATORS for token in tokens):
        return command
    return f"exec {command}"


@dataclass(slots=True)
class Child:
    pid: int
    output_fd: int
    """Read end of the child's merged stdout and stderr (a pipe, or a pty master)."""
    popen: subprocess.Popen[bytes]

    @property
    def pgid(self) -> int:
        return self.pid  # each child leads its own session, so its group id is its pid


class Spawner:
    """Starts commands through ``sh -c`` in ``cwd``, each as the leader of a new session."""

    def __init__(self, cwd: Path, tty: bool = False, columns: int = 80, rows: int = 24) -> None:
        self.cwd = cwd
        self.tty = tty
        self.window = struct.pack("HHHH", rows, max(columns, 20), 0, 0)

    def spawn(self, command: str, env: Mapping[str, str]) -> Child:
        if self.tty:
            return self._spawn_on_pty(command, env)
        return self._spawn_on_pipe(command, env)

    def _spawn_on_pipe(self, command: str, env: Mapping[str, str]) -> Child:
        read_fd, write_fd = os.pipe()
        try:
            _grow_pipe(write_fd)
            popen = subprocess.Popen(
                [SHELL, "-c", shell_command(command)],
                stdin=subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                cwd=self.cwd,
                env=env,
                start_new_session=True,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        os.set_blocking(read_fd, False)
        return Child(pid=popen.pid, output_fd=read_fd, popen=popen)

    def _spawn_on_pty(self, command: str, env: Mapping[str, str]) -> Child:
        master_fd, slave_fd = os.openpty()
        try:
            attributes = termios.tcgetattr(slave_fd)
            attributes[1] &= ~termios.OPOST  # no "\n" -> "\r\n" translation
            attributes[3] &= ~(termios.ECHO | termios.ICANON)
            termios.tcsetattr(slave_fd, termios.TCSANOW, attributes)
            fcntl.ioctl(slave_fd, termios.TIOCSWINSZ, self.window)
            popen = subprocess.Popen(
                [SHELL, "-c", shell_command(command)],
                stdin=slave_fd,
                stdout=slave_fd,
                stderr=slave_fd,
                cwd=self.cwd,
                env=env,
                start_new_session=True,
                preexec_fn=_take_controlling_terminal,  # noqa: PLW1509 (single-threaded)
            )
        except BaseException:
            os.close(master_fd)
            raise
        finally:
            os.close(slave_fd)
        os.set_blocking(master_fd, False)
        return Child(pid=popen.pid, output_fd=master_fd, popen=popen)


def _take_controlling_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _grow_pipe(fd: int) -> None:
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass  # above /proc/sys/fs/pipe-max-size: the default size still works
