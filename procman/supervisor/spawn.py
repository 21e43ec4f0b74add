"""Starting one child: ``sh -c COMMAND`` in its own session, writing to a pipe or a pty."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shlex
import signal
import struct
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

    @property
    def pgid(self) -> int:
        return self.pid  # each child leads its own session, so its group id is its pid


class Spawner:
    """Starts commands through ``sh -c`` in ``cwd``, each as the leader of a new session."""

    def __init__(self, cwd: Path, tty: bool = False, columns: int = 80, rows: int = 24) -> None:
        self.cwd = cwd
        self.tty = tty
        self.window = struct.pack("HHHH", rows, max(columns, 20), 0, 0)
        self._devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)

    def spawn(self, command: str, env: Mapping[str, str]) -> Child:
        argv = [SHELL, "-c", shell_command(command)]
        if self.tty:
            return self._spawn_on_pty(argv, env)
        return self._spawn_on_pipe(argv, env)

    def _spawn_on_pipe(self, argv: list[str], env: Mapping[str, str]) -> Child:
        read_fd, write_fd = os.pipe()
        try:
            _grow_pipe(write_fd)
            pid = _fork_exec(argv, env, self.cwd, stdin=self._devnull, output=write_fd)
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        os.set_blocking(read_fd, False)
        return Child(pid=pid, output_fd=read_fd)

    def _spawn_on_pty(self, argv: list[str], env: Mapping[str, str]) -> Child:
        master_fd, slave_fd = os.openpty()
        try:
            attributes = termios.tcgetattr(slave_fd)
            attributes[1] &= ~termios.OPOST  # no "\n" -> "\r\n" translation
            attributes[3] &= ~(termios.ECHO | termios.ICANON)
            termios.tcsetattr(slave_fd, termios.TCSANOW, attributes)
            fcntl.ioctl(slave_fd, termios.TIOCSWINSZ, self.window)
            pid = _fork_exec(
                argv, env, self.cwd, stdin=slave_fd, output=slave_fd, controlling_tty=True
            )
        except BaseException:
            os.close(master_fd)
            raise
        finally:
            os.close(slave_fd)
        os.set_blocking(master_fd, False)
        return Child(pid=pid, output_fd=master_fd)

    def close(self) -> None:
        os.close(self._devnull)


def _fork_exec(
    argv: list[str],
    env: Mapping[str, str],
    cwd: Path,
    *,
    stdin: int,
    output: int,
    controlling_tty: bool = False,
) -> int:
    """fork, then exec in the child without waiting for it: unlike subprocess (which blocks until
    the child has exec'd, to report exec errors), the next child can be forked while this one is
    still loading, so a formation starts in parallel on every core. An exec failure is reported
    by the child itself on its output, with exit status 127, as a shell would."""
    pid = os.fork()
    if pid != 0:
        return pid
    try:  # the child: nothing here may return into the supervisor's code
        signal.set_wakeup_fd(-1)
        os.setsid()
        os.chdir(cwd)
        os.dup2(stdin, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        if controlling_tty:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        os.execve(argv[0], argv, env)
    except BaseException as error:
        with contextlib.suppress(BaseException):
            os.write(2, f"procman: cannot start {argv[0]}: {error}\n".encode())
    finally:
        os._exit(127)


def _grow_pipe(fd: int) -> None:
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass  # above /proc/sys/fs/pipe-max-size: the default size still works
