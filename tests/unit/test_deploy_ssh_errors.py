"""How the SSH transport words an upload the host could not store (narrow: no connection)."""

from __future__ import annotations

import errno
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
