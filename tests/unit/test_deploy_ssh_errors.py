"""How the SSH transport words an upload the host could not store (narrow: no connection)."""

from __future__ import annotations

import errno
import time
from pathlib import PurePosixPath

import paramiko
import pytest

from procman.deploy.transport.ssh import SSHTransport


@pytest.mark.parametrize(
    "error",
    [
        OSError("size mismatch in put!  258048 != 692198"),
        OSError("Failure"),
        OSError(errno.ENOSPC, "No space left on device"),
    ],
)
def test_a_short_upload_asks_whether_the_disk_is_full(error: OSError) -> None:
    transport = SSHTransport("127.0.0.3", 22, "deploy")
    target = PurePosixPath("/srv/app/.procman/artifacts/R.tar.gz")
    found = transport._upload_error("upload R.tar.gz", error, target)
    assert "the host did not store the whole file" in found.message
    assert "is its disk full?" in found.message
    assert found.hint == (
        "free space under /srv/app/.procman/artifacts (df -h /srv/app/.procman/artifacts) and "
        "deploy again"
    )


def test_other_upload_errors_are_passed_on_as_they_are() -> None:
    transport = SSHTransport("127.0.0.3", 22, "deploy")
    found = transport._upload_error(
        "upload R.tar.gz", paramiko.SSHException("channel closed"), PurePosixPath("/srv/R")
    )
    assert found.message.endswith("upload R.tar.gz: channel closed")
    assert found.hint is None


class _EndArrivesWhileLooking(paramiko.Channel):
    """A finished command's channel as a reader can find it: its end of output, exit status 3
    and close arrive together, in the instant between reading ``eof_received`` (not yet) and
    ``closed`` (already)."""

    def __init__(self) -> None:
        super().__init__(0)
        self.exit_status = 3
        self.status_event.set()
        self._looked = False

    @property  # type: ignore[override]
    def eof_received(self) -> bool:
        looked, self._looked = self._looked, True
        return looked

    @eof_received.setter
    def eof_received(self, value: bool) -> None:
        pass

    @property
    def closed(self) -> bool:
        return self._looked

    @closed.setter
    def closed(self, value: bool) -> None:
        pass


def test_a_command_whose_end_arrives_all_at_once_keeps_its_exit_status() -> None:
    from procman.deploy.transport.ssh import _collect, _Output

    output = _Output()
    status = _collect(_EndArrivesWhileLooking(), time.monotonic() + 5, output)
    assert status == 3
