"""Before the formation starts: is the port each web instance will be given free?

foreman and honcho start a web process on a taken port and let it fail (gunicorn retries for five
seconds, then the whole app stops with no word about the port); procman says which port, who holds
it and what to do, before anything starts.
"""

from __future__ import annotations

import errno
import re
import socket
from collections.abc import Iterable

from procman.errors import ConfigError, flag_of
from procman.formation import Instance

_USES_PORT = re.compile(r"\$\{?PORT\b")


def listens_on_port(instance: Instance) -> bool:
    """A ``web`` instance, or one whose command uses ``$PORT``: the ones that bind their port."""
    return instance.type == "web" or bool(_USES_PORT.search(instance.command))


def check_ports_free(instances: Iterable[Instance]) -> None:
    """ConfigError for the first instance whose port something already listens on."""
    for instance in instances:
        if listens_on_port(instance) and port_in_use(instance.port):
            raise ConfigError(
                f"port {instance.port} (PORT of {instance.name}) is in use{_holder(instance.port)}",
                f"stop what holds it, or pass {flag_of('port')} to start from another port",
            )


def port_in_use(port: int) -> bool:
    """Whether a socket listens on ``port`` (on any IPv4 address). SO_REUSEADDR, as servers set
    it: a port whose last connections linger in TIME_WAIT is free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError as error:
            return error.errno == errno.EADDRINUSE
    return False


def _holder(port: int) -> str:
    """`` (by pid N, 'COMMAND')`` when the listener can be seen (another user's may not be)."""
    import psutil

    try:
        connections = psutil.net_connections(kind="inet")
    except (psutil.Error, OSError):
        return ""
    for connection in connections:
        if (
            connection.status == psutil.CONN_LISTEN
            and connection.laddr
            and connection.laddr.port == port
            and connection.pid
        ):
            try:
                command = " ".join(psutil.Process(connection.pid).cmdline())
            except psutil.Error:
                return f" (by pid {connection.pid})"
            shown = command if len(command) <= 60 else command[:57] + "..."
            return f" (by pid {connection.pid}, {shown!r})"
    return ""
