"""The ``Transport`` interface on this machine, through subprocess: the same argv lists, the same
timeouts and the same atomic file placement as over SSH."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

from procman.deploy.transport.base import (
    ClosesOnExit,
    CommandTimeout,
    Result,
    StrPath,
    Terminal,
    TransportError,
    command_line,
)


class LocalStream:
    """A streamed child process (``LocalTransport.stream``)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process
        assert process.stdout is not None
        self._stdout = process.stdout
        self._ended = False

    def fileno(self) -> int:
        return self._stdout.fileno()

    @property
    def ended(self) -> bool:
        return self._ended

    def read(self) -> bytes:
        ready, _, _ = select.select([self._stdout], [], [], 0)
        if not ready:
            return b""
        data = os.read(self._stdout.fileno(), 65536)
        self._ended = not data
        return data

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        _kill_group(self._process)
        self._stdout.close()


class LocalTransport(ClosesOnExit):
    """Runs commands as child processes (each in its own session, so a timeout stops the whole
    process group) and copies files with a rename into place."""

    def __init__(self, host: str = "localhost") -> None:
        self._host = host

    @property
    def host(self) -> str:
        return self._host

    def run(self, argv: Sequence[str], *, timeout: float, input: bytes | None = None) -> Result:
        step = f"run `{command_line(argv)}`"
        try:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as error:
            raise TransportError(self._host, step, error.strerror or str(error)) from error
        try:
            stdout, stderr = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            problem = f"no exit within {timeout:g}s; stopped"
            raise CommandTimeout(self._host, step, problem) from None
        return Result(process.returncode, stdout, stderr)

    def stream(self, argv: Sequence[str], *, timeout: float) -> LocalStream:
        try:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as error:
            step = f"run `{command_line(argv)}`"
            raise TransportError(self._host, step, error.strerror or str(error)) from error
        return LocalStream(process)

    def interactive(
        self,
        argv: Sequence[str],
        *,
        terminal: Terminal | None,
        size: Callable[[], tuple[int, int]] | None = None,
        timeout: float,
    ) -> int:
        """This process's terminal is the command's (no pseudo-terminal of its own is needed);
        a Ctrl-C reaches it as it reaches this process."""
        try:
            process = subprocess.Popen(list(argv))
        except OSError as error:
            step = f"run `{command_line(argv)}`"
            raise TransportError(self._host, step, error.strerror or str(error)) from error
        while True:
            try:
                status = process.wait()
                return status if status >= 0 else 128 - status
            except KeyboardInterrupt:
                continue  # the command got it too: wait for it to end

    def put(self, local_path: StrPath, remote_path: str | PurePosixPath) -> None:
        _copy(self._host, f"upload {local_path} to {remote_path}", Path(local_path),
              Path(remote_path))  # fmt: skip

    def get(self, remote_path: str | PurePosixPath, local_path: StrPath) -> None:
        _copy(self._host, f"download {remote_path} to {local_path}", Path(remote_path),
              Path(local_path))  # fmt: skip

    def close(self) -> None:
        pass


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.communicate()


def _copy(host: str, step: str, source: Path, target: Path) -> None:
    temporary = target.with_name(f".{target.name}.procman-{uuid.uuid4().hex[:12]}")
    try:
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise TransportError(host, step, error.strerror or str(error)) from error
