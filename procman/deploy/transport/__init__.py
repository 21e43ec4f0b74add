"""Where deploy steps run: a host reached over SSH (``SSHTransport``) or this machine
(``LocalTransport``), both behind the ``Transport`` interface. Only ``ssh`` imports paramiko."""

from __future__ import annotations

from procman.deploy.transport.base import (
    AuthenticationFailed,
    CommandTimeout,
    ConnectionLost,
    HostKeyRejected,
    HostUnreachable,
    Result,
    Transport,
    TransportError,
)
from procman.deploy.transport.local import LocalTransport

__all__ = [
    "AuthenticationFailed",
    "CommandTimeout",
    "ConnectionLost",
    "HostKeyRejected",
    "HostUnreachable",
    "LocalTransport",
    "Result",
    "Transport",
    "TransportError",
]
