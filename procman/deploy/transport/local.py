"""The ``Transport`` interface on this machine, through subprocess: the same argv lists, the same
timeouts and the same atomic file placement as over SSH."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from procman.deploy.transport.base import (
    ClosesOnExit,
    CommandTimeout,
    Result,
    StrPath,
    TransportError,
    command_line,
)


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
