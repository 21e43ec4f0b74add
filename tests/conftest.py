"""Fixtures shared by every test: the installed procman executable, app directories, and a guard
that fails any test leaving a process behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

TAG = "PROCMAN_TEST_TAG"


def procman_executable() -> str:
    """The console script installed next to this interpreter (the real entry point users run)."""
    candidate = Path(sys.executable).with_name("procman")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("procman")
    if found is None:
        raise RuntimeError("procman is not installed: run scripts/test")
    return found


PROCMAN = procman_executable()


def tagged_processes(tag: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(TAG) == tag and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


@pytest.fixture(autouse=True)
def no_process_left_behind(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every process a test starts inherits a unique tag; any still alive afterwards is killed and
    fails the test."""
    tag = uuid.uuid4().hex
    monkeypatch.setenv(TAG, tag)
    yield tag
    deadline = time.monotonic() + 3
    survivors = tagged_processes(tag)
    while survivors and time.monotonic() < deadline:
        time.sleep(0.05)
        survivors = tagged_processes(tag)
    if survivors:
        described = [f"{p.pid} {' '.join(p.cmdline())}" for p in survivors if p.is_running()]
        for process in survivors:
            try:
                process.kill()
            except psutil.Error:
                pass
        if described:
            pytest.fail(f"processes left behind: {described}")


class App:
    """A throwaway app directory with a Procfile, and a way to run procman in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[subprocess.Popen[bytes]] = []

    def procfile(self, text: str) -> Path:
        path = self.root / "Procfile"
        path.write_text(text)
        return path

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text)
        return path

    def run(
        self, *args: str, timeout: float = 20, input: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PROCMAN, *args],
            cwd=self.root,
            capture_output=True,
            check=False,
            text=True,
            timeout=timeout,
            input=input.decode() if input is not None else None,
        )

    def spawn(self, *args: str, **kwargs: object) -> subprocess.Popen[bytes]:
        """Start procman in its own process group, as a shell would start a foreground job."""
        process = subprocess.Popen(
            [PROCMAN, *args],
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            process_group=0,
            **kwargs,  # type: ignore[arg-type]
        )
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait()
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    application = App(tmp_path)
    yield application
    application.stop_all()


class LiveOutput:
    """Reads a running process's stdout without blocking, so a test can wait for a line."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        self.process = process
        self.fd = process.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.data = b""

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    def _pump(self, wait: float) -> bool:
        import select

        ready, _, _ = select.select([self.fd], [], [], wait)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return True
        self.data += chunk
        return bool(chunk)

    def wait_for(self, needle: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{needle!r} not seen within {timeout}s; output:\n{self.text}")
            if not self._pump(min(remaining, 0.1)) and self.process.poll() is not None:
                raise AssertionError(f"process exited before {needle!r}; output:\n{self.text}")
        return self.text

    def wait_for_line(self, name: str, body: str, timeout: float = 10) -> None:
        """Wait for ``name | body`` in the log stream, whatever the padding."""
        import re

        pattern = re.compile(rf"(^|\n)(\d\d:\d\d:\d\d )?{re.escape(name)} +\| {re.escape(body)}\n")
        deadline = time.monotonic() + timeout
        while not pattern.search(self.text):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{name} | {body} not seen in {timeout}s; output:\n{self.text}"
                )
            if not self._pump(min(remaining, 0.1)) and self.process.poll() is not None:
                raise AssertionError(f"exited before {name} | {body}; output:\n{self.text}")

    def finish(self, timeout: float = 15) -> tuple[int, str]:
        """Read to the end and wait for the exit status."""
        deadline = time.monotonic() + timeout
        while self._pump(0.1):
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout}s; output:\n{self.text}")
        return self.process.wait(timeout=max(0.1, deadline - time.monotonic())), self.text


@pytest.fixture
def live() -> type[LiveOutput]:
    return LiveOutput
